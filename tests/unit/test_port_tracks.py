"""Vessel track table: positions and static data from vessel events, out-of-order reports, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas import Event
from stream.core.port.tracks import TrackTable, mmsi_of

T0 = datetime(2025, 3, 14, 10, 0, tzinfo=UTC)


def _vessel(mmsi: int = 227000001, at: datetime | None = T0, lon: float = 1.0, **details: Any) -> Event:
    return Event(
        id=f"ais:{mmsi}",
        source="ais",
        kind="vessel",
        geometry={"type": "Point", "coordinates": [lon, 49.4]},
        updated_at=at,
        details={"mmsi": mmsi, **details},
    )


@pytest.mark.parametrize(
    ("event_id", "details", "expected"),
    [
        ("ais:227000001", {"mmsi": 227000001}, 227000001),
        ("ais:227000002", {}, 227000002),
        ("operator:vessel-x", {}, None),
        ("ais:0", {}, None),
    ],
)
def test_mmsi_of(event_id: str, details: dict[str, Any], expected: int | None) -> None:
    """The MMSI comes from details.mmsi, else from the id's last part; nonsense gives None."""
    event = Event(id=event_id, source="x", kind="vessel", geometry={}, details=details)
    assert mmsi_of(event) == expected


def test_update_keeps_motion_and_static_data() -> None:
    """A position report after a static report keeps name, length, destination and ETA."""
    table = TrackTable()
    table.update(
        _vessel(name="SEINE TRADER", length_m=150, ship_type=70, destination="ROUEN", eta="--03-14T12:00Z"),
        T0,
    )
    track = table.update(
        _vessel(at=T0 + timedelta(seconds=10), lon=1.01, sog=10.5, cog=120.0, heading=121), T0
    )
    assert track is not None
    assert (track.lon, track.sog_kn, track.cog_deg, track.heading_deg) == (1.01, 10.5, 120.0, 121.0)
    assert (track.name, track.length_m, track.ship_type, track.destination) == (
        "SEINE TRADER",
        150.0,
        70,
        "ROUEN",
    )
    assert track.eta == "--03-14T12:00Z" and len(table) == 1


def test_out_of_order_report_is_ignored_but_its_static_data_kept() -> None:
    """An older position does not move the track back; its static data is still learnt."""
    table = TrackTable()
    table.update(_vessel(at=T0, lon=1.02, sog=9.0), T0)
    assert table.update(_vessel(at=T0 - timedelta(seconds=30), lon=1.0, name="LATE NAME"), T0) is None
    track = table.get(227000001)
    assert track is not None and track.lon == 1.02 and track.name == "LATE NAME"


def test_receipt_time_used_when_the_event_has_none() -> None:
    """A vessel event without updated_at is stamped with its receipt time."""
    track = TrackTable().update(_vessel(at=None), T0 + timedelta(minutes=3))
    assert track is not None and track.seen_at == T0 + timedelta(minutes=3)


def test_non_vessel_and_unusable_events_are_ignored() -> None:
    """Closures, cancelled vessels and vessels without a point geometry make no track."""
    table = TrackTable()
    closure = Event(id="x:1", source="x", kind="closure", geometry={"type": "Point", "coordinates": [1, 2]})
    line = Event(id="ais:5", source="ais", kind="vessel", geometry={"type": "LineString", "coordinates": []})
    assert table.update(closure, T0) is None and table.update(line, T0) is None
    assert len(table) == 0


def test_stale_tracks_expire() -> None:
    """Tracks not heard from within max_age are removed and returned; fresh ones stay."""
    table = TrackTable(max_age=timedelta(minutes=10))
    table.update(_vessel(mmsi=227000001, at=T0), T0)
    table.update(_vessel(mmsi=227000002, at=T0 + timedelta(minutes=8)), T0)
    stale = table.expire(T0 + timedelta(minutes=11))
    assert [t.mmsi for t in stale] == [227000001]
    assert table.mmsis() == [227000002]


def test_table_is_bounded() -> None:
    """Beyond max_tracks, the vessel updated least recently is dropped."""
    table = TrackTable(max_tracks=2)
    for mmsi in (227000001, 227000002, 227000003):
        table.update(_vessel(mmsi=mmsi), T0)
    assert table.mmsis() == [227000002, 227000003]
