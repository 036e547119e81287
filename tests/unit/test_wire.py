"""Transitions encoded straight from the engine's columns are the bytes of their records' encoding."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from schemas import Event, Route, Vehicle, VehicleConditions
from schemas.alert import mark_of, state_offset
from stream.core.engine import Engine
from stream.core.lifecycle import Delta
from stream.core.wire import WireAlerts, encode_alert
from tests.support.geometry import line, lonlat, point, square

AT = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))
TITLES = [None, "Rue de Rivoli fermée", 'quoted "state":"raised" inside', "é\u2028\x00 control", ""]


def _event(rng: random.Random, i: int, version: int) -> Event:
    geometry = rng.choice(
        [
            point(rng.uniform(0, 1000), rng.uniform(-40, 40)),
            line([(rng.uniform(0, 900), -60), (rng.uniform(0, 900), 60)]),
            square(rng.uniform(0, 900), rng.uniform(-80, 20), rng.uniform(10, 100)),
        ]
    )
    start = AT - timedelta(hours=1) if rng.random() < 0.5 else None
    return Event(
        id=f"t:e{i}",
        source="t",
        kind=rng.choice(["closure", "perimeter", "roadworks", "hazard"]),  # type: ignore[arg-type]
        geometry=geometry,
        valid_from=start.astimezone(PARIS) if start and rng.random() < 0.5 else start,
        valid_until=AT + timedelta(days=rng.randint(1, 3)) if rng.random() < 0.5 else None,
        status="cancelled" if version > 0 and rng.random() < 0.2 else "active",
        title=rng.choice(TITLES),
        street=rng.choice([None, "A13"]),
        severity=rng.choice([None, "high"]),
        vehicles=VehicleConditions(max_height_m=3.5) if rng.random() < 0.2 else None,
        updated_at=AT + timedelta(minutes=version),
    )


def _route(rng: random.Random, i: int) -> Route:
    ys = [rng.uniform(-30, 30) for _ in range(4)]
    coords = lonlat([(0, ys[0]), (300, ys[1]), (700, ys[2]), (1000, ys[3])])
    vehicle = Vehicle(height_m=rng.choice([None, 3.0, 4.2]))
    return Route(f"r{i}", f"driver-{i % 3}", tuple(tuple(c) for c in coords), vehicle, AT)


def _check(engine: Engine, delta: Delta, received: dict[str, datetime] | None) -> int:
    records = engine.alerts(delta)
    wire = engine.wire(delta, received)
    expected = [encode_alert(a, received.get(a.event_id) if received else None) for a in records]
    assert wire.payloads == expected
    assert wire.drivers == [a.driver_id for a in records]
    assert wire.kinds == [a.kind for a in records]
    assert wire.states == [a.state for a in records]
    assert wire.ids == [a.alert_id.encode() for a in records]
    # the marks computed without decoding are those of the decoded alerts, as an outside producer's
    # alerts get them; and equal only when what the driver is told is equal
    assert wire.marks == [mark_of(orjson.loads(payload)) for payload in wire.payloads]
    for alert, mark in zip(records, wire.marks, strict=True):
        assert (mark == b"C") == (alert.state == "cleared")
    # where the state's value starts, computed from the pieces, is where it is (the outbox's script
    # rewrites it there), and where the generic reader finds it (titles quote "state":"raised")
    for payload, at, state in zip(wire.payloads, wire.state_at, wire.states, strict=True):
        assert payload[at - len(b'"state":"') : at + len(state) + 1] == b'"state":"%b"' % state.encode()
        assert state_offset(payload) == at
    stamped = [replace(a, event_received_at=received.get(a.event_id)) if received else a for a in records]
    assert list(wire) == stamped  # and they decode to the same records
    return len(records)


@pytest.mark.parametrize("seed", range(6))
def test_encoded_transitions_equal_the_records_encoding(seed: int) -> None:
    """Raised, updated and cleared transitions, with every reason, odd titles, offsets other than
    UTC and receipt times for some events, encode to the same bytes either way."""
    rng = random.Random(seed)
    engine = Engine()
    seen = 0
    for i in range(8):
        seen += _check(engine, engine.upsert_routes_delta([_route(rng, i)], AT), None)
    for version in range(4):
        events = [_event(rng, i, version) for i in range(12)]
        received = {e.id: AT + timedelta(seconds=rng.randint(0, 60)) for e in events if rng.random() < 0.7}
        seen += _check(engine, engine.apply_events_delta(events, AT), received)
        moved = [_route(rng, i) for i in rng.sample(range(8), 3)]
        seen += _check(engine, engine.upsert_routes_delta(moved, AT), None)
        lon, lat = lonlat([(rng.uniform(0, 1000), 0)])[0]
        seen += _check(engine, engine.route_position_delta("r0", (lon, lat), AT), None)
    assert seen > 20  # the scenario did produce transitions to compare


def test_records_with_a_receipt_time_already_keep_the_new_one() -> None:
    """A record that already carries a receipt time is encoded with the one given, if any."""
    engine = Engine()
    engine.upsert_route(_route(random.Random(1), 0), AT)
    event = Event(id="t:p", source="t", kind="closure", geometry=point(500, 0))
    [alert] = engine.apply_events([event], AT)
    stamped = replace(alert, event_received_at=AT)
    later = AT + timedelta(seconds=5)
    assert orjson.loads(encode_alert(stamped))["event_received_at"] == AT.isoformat()
    wire = WireAlerts.of([stamped], {"t:p": later})
    assert orjson.loads(wire.payloads[0])["event_received_at"] == later.isoformat()
    assert (wire.drivers, wire.kinds, wire.states) == ([alert.driver_id], ["closure"], ["raised"])


def test_the_mark_ignores_only_what_is_not_news() -> None:
    """Times of the computation and the state do not change an alert's mark; its distance, its
    validity or its title do; a clearing is always ``C``."""
    rng = random.Random(3)
    engine = Engine()
    engine.upsert_routes_delta([_route(rng, 0)], AT)
    wire = engine.wire(engine.apply_events_delta([replace(_event(rng, 1, 0), status="active")], AT))
    assert wire.payloads, "the event must concern the route"
    alert = orjson.loads(wire.payloads[0])
    base = mark_of(alert)
    for same in (
        {"state": "updated"},
        {"created_at": "2026-03-10T10:00:00Z"},
        {"expected_at": None},
        {"event_received_at": "2026-03-10T09:00:01Z"},
    ):
        assert mark_of({**alert, **same}) == base, same
    for news in ({"distance_ahead_m": 12.5}, {"title": "another"}, {"valid_until": "2026-03-11T00:00:00Z"}):
        assert mark_of({**alert, **news}) != base, news
    assert mark_of({**alert, "state": "cleared"}) == b"C"


def _fields_of(record: bytes) -> list[bytes]:
    """Length-prefixed fields read as the outbox's script reads them."""
    out, pos = [], 0
    while pos < len(record):
        colon = record.index(b":", pos)
        stop = colon + 1 + int(record[pos:colon])
        out.append(record[colon + 1 : stop])
        pos = stop
    return out


@pytest.mark.parametrize("state_at", [0, 157, 99_999, 100_000, 123_456])
def test_an_outbox_record_carries_the_state_offset_as_a_number(state_at: int) -> None:
    from stream.worker.outbox import _record

    fields = _fields_of(_record(b"id", b"mark", b'{"state":"raised"}', state_at))
    assert fields[:3] == [b"id", b"mark", b'{"state":"raised"}']
    assert int(fields[3]) == state_at and len(fields) == 4
