"""Closure predictions from vessel tracks: ETA, window, no lift for small or departing vessels, lifecycle."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from stream.core.geo import project_xy, unproject_xy
from stream.core.port.infrastructure import parse
from stream.core.port.predict import KNOT_MS, ClosurePredictor, approaching
from stream.core.port.tracks import VesselTrack

T0 = datetime(2025, 3, 14, 10, 0, tzinfo=UTC)
# A bridge at the origin with one approach from 5 km west, along the x axis (due east).
_OX, _OY = (float(v[0]) for v in project_xy(np.array([1.0]), np.array([49.4])))


def _ll(x_m: float, y_m: float) -> list[float]:
    lon, lat = unproject_xy(np.array([_OX + x_m]), np.array([_OY + y_m]))
    return [float(lon[0]), float(lat[0])]


def _infra(kind: str = "bridge") -> dict[str, object]:
    road = {"type": "LineString", "coordinates": [_ll(0, 300), _ll(0, -300)]}
    axis = {"type": "LineString", "coordinates": [_ll(-5000, 0), _ll(-2000, 0), _ll(0, 0)]}
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": road,
                "properties": {
                    "type": kind,
                    "id": "B1",
                    "name": "Test bridge",
                    "lead_minutes": 20,
                    "closure_minutes": 40,
                    "opening": {"min_length_m": 80, "ship_types": [[70, 79]], "clearance_m": 7},
                },
            },
            {
                "type": "Feature",
                "geometry": axis,
                "properties": {"type": "approach", "id": "B1-west", "structure": "B1", "half_width_m": 150},
            },
        ],
    }


def _track(x_m: float, y_m: float = 0.0, **kw: object) -> VesselTrack:
    lon, lat = _ll(x_m, y_m)
    base: dict[str, object] = {"sog_kn": 10.0, "cog_deg": 90.0, "length_m": 150.0, "name": "SEINE TRADER"}
    base.update(kw)
    return VesselTrack(mmsi=227000001, lon=lon, lat=lat, seen_at=T0, **base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("x_m", "sog_kn", "expected_eta_s"),
    [
        (-3000, 10.0, 3000 / (10 * KNOT_MS)),
        (-1000, 10.0, 1000 / (10 * KNOT_MS)),
        (-1000, 5.0, 1000 / (5 * KNOT_MS)),
        (-4500, 12.0, 4500 / (12 * KNOT_MS)),
    ],
)
def test_eta_is_distance_along_water_over_speed(x_m: float, sog_kn: float, expected_eta_s: float) -> None:
    """ETA = metres left along the approach axis / speed over ground, to the second."""
    infra = parse(_infra())
    found = approaching(infra.structures["B1"], _track(x_m, sog_kn=sog_kn), infra.crs)
    assert found is not None
    assert abs(found.remaining_m - abs(x_m)) < 1.0
    assert abs((found.eta - T0).total_seconds() - expected_eta_s) <= 1.0


def test_closure_window_is_eta_minus_lead_to_eta_plus_duration() -> None:
    """The event covers [ETA - 20 min, ETA + 40 min] on the road geometry, with a deterministic id."""
    infra = parse(_infra())
    (event,) = ClosurePredictor(infra).observe(_track(-3000))
    eta = T0 + timedelta(seconds=round(3000 / (10 * KNOT_MS)))
    assert event.id == "port:bridge_lift:B1:227000001"
    assert event.kind == "bridge_lift" and event.status == "active" and event.source == "port"
    assert event.geometry == infra.structures["B1"].road
    assert event.valid_from is not None and event.valid_until is not None
    assert abs((event.valid_from - (eta - timedelta(minutes=20))).total_seconds()) <= 1
    assert abs((event.valid_until - (eta + timedelta(minutes=40))).total_seconds()) <= 1
    assert "SEINE TRADER" in (event.title or "")


@pytest.mark.parametrize(
    ("why", "changes"),
    [
        ("small boat", {"length_m": 12.0, "ship_type": 37}),
        ("pleasure craft of unknown length", {"length_m": None, "ship_type": 37}),
        ("low air draught", {"air_draught_m": 5.0}),
        ("heading away", {"cog_deg": 270.0}),
        ("crossing the channel", {"cog_deg": 0.0}),
        ("too slow", {"sog_kn": 0.5}),
        ("moored", {"nav_status": "moored"}),
        ("no course", {"cog_deg": None}),
    ],
)
def test_no_lift(why: str, changes: dict[str, object]) -> None:
    """No closure for vessels that do not need an opening or are not approaching."""
    infra = parse(_infra())
    assert ClosurePredictor(infra).observe(replace(_track(-3000), **changes)) == [], why  # type: ignore[arg-type]


@pytest.mark.parametrize(("x_m", "y_m"), [(-3000, 400), (-6500, 0), (1500, 0)])
def test_no_lift_outside_the_approach_zone(x_m: float, y_m: float) -> None:
    """A vessel off the channel, before the zone or beyond the bridge raises nothing."""
    assert ClosurePredictor(parse(_infra())).observe(_track(x_m, y_m)) == []


def test_unknown_length_cargo_needs_a_lift_and_lock_gives_lock_closure() -> None:
    """A cargo ship of unknown length needs an opening; a lock produces a lock_closure event."""
    infra = parse(_infra("lock"))
    (event,) = ClosurePredictor(infra).observe(_track(-2000, length_m=None, ship_type=70))
    assert event.kind == "lock_closure" and event.id == "port:lock_closure:B1:227000001"


def test_update_when_eta_moves_and_not_for_jitter() -> None:
    """The event is re-published when the ETA moves by 2 min or more, not for small changes."""
    predictor = ClosurePredictor(parse(_infra()))
    (first,) = predictor.observe(_track(-3000))
    assert predictor.observe(replace(_track(-2990), seen_at=T0 + timedelta(seconds=1))) == []
    (slower,) = predictor.observe(replace(_track(-2900, sog_kn=5.0), seen_at=T0 + timedelta(seconds=20)))
    assert slower.id == first.id and slower.status == "active"
    assert slower.valid_from is not None and first.valid_from is not None
    assert slower.valid_from - first.valid_from > timedelta(minutes=2)


@pytest.mark.parametrize(
    ("last", "reason"),
    [
        ({"x_m": 300.0}, "passed"),
        ({"x_m": -2500.0, "sog_kn": 0.2}, "stopped"),
        ({"x_m": -2500.0, "cog_deg": 270.0}, "turned away"),
        ({"x_m": -2500.0, "y_m": 2000.0}, "left the approach zone"),
    ],
)
def test_cancelled_when_passed_stopped_or_turned_away(last: dict[str, float], reason: str) -> None:
    """A prediction is cancelled, with its reason, once the vessel passed, stopped or turned away."""
    predictor = ClosurePredictor(parse(_infra()))
    predictor.observe(_track(-2600))
    if reason == "passed":
        predictor.observe(replace(_track(-200), seen_at=T0 + timedelta(minutes=5)))
    x_m, y_m = last.pop("x_m"), last.pop("y_m", 0.0)
    (event,) = predictor.observe(replace(_track(x_m, y_m, **last), seen_at=T0 + timedelta(minutes=6)))
    assert event.status == "cancelled" and event.id == "port:bridge_lift:B1:227000001"
    assert event.details["cancel_reason"] == reason
    assert predictor.active == {}


def test_expired_track_cancels_and_forget_does_not() -> None:
    """A vessel no longer reported has its closures cancelled; a forgotten one is dropped silently."""
    predictor = ClosurePredictor(parse(_infra()))
    predictor.observe(_track(-3000))
    (gone,) = predictor.vessel_gone(227000001, T0 + timedelta(minutes=20))
    assert gone.status == "cancelled" and gone.details["cancel_reason"] == "no longer reported"
    predictor.observe(_track(-3000))
    predictor.forget_vessel(227000001)
    assert predictor.active == {} and predictor.vessel_gone(227000001, T0) == []
