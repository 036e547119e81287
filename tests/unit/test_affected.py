"""Drivers affected and the events concerning most routes, from an engine's raised alerts."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from schemas import Event, Route, Vehicle
from stream.core.engine import Engine
from stream.worker.affected import affected
from tests.support.geometry import lonlat, point

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def _route(route_id: str, driver_id: str, y_m: float) -> Route:
    return Route(route_id, driver_id, tuple((a, b) for a, b in lonlat([(0, y_m), (3000, y_m)])), Vehicle())


def _closure(event_id: str, x_m: float, y_m: float) -> Event:
    return Event(id=event_id, source="t", kind="closure", geometry=point(x_m, y_m), title=event_id)


def _naive(engine: Engine) -> tuple[Counter[str], int]:
    routes_by_event: Counter[str] = Counter()
    drivers: set[str] = set()
    for ev, r in zip(*engine.book.pairs(), strict=True):
        routes_by_event[engine.index.objects.event[int(ev)].id] += 1
        drivers.add(engine.route_state(int(r)).route.driver_id)
    return routes_by_event, len(drivers)


def _engine() -> Engine:
    engine = Engine()
    # Routes 0 and 1 (driver a, two routes) run along y=0 and y=10; route 2 (driver b) along y=20;
    # route 3 (driver c) far away, alerted by nothing.
    for route in (_route("r0", "a", 0), _route("r1", "a", 10), _route("r2", "b", 20), _route("r3", "c", 900)):
        engine.upsert_route(route, T0)
    engine.apply_events(
        [
            _closure("e-all", 100, 10),  # near r0, r1, r2
            _closure("e-two", 600, 5),  # r0, r1
            _closure("e-b", 1200, 22),  # r2
            _closure("e-a", 1800, 0),  # r0 (and r1, 10 m away)
            _closure("e-none", 1000, 500),
        ],
        T0,
    )
    return engine


def test_counts_and_drivers_match_a_walk_over_every_alert() -> None:
    """Every event's route count and the distinct drivers are those of a walk over all alerts."""
    engine = _engine()
    every, drivers = _naive(engine)
    assert drivers == 2 and every["e-all"] == 3
    assert affected(engine, 100) == (every, drivers)


def test_only_the_top_events_are_returned_ties_by_id() -> None:
    """With ``top`` smaller than the events alerting, the largest counts win, ties broken by id."""
    engine = _engine()
    every, drivers = _naive(engine)
    for top in range(1, len(every) + 1):
        expected = sorted(every.items(), key=lambda item: (-item[1], item[0]))[:top]
        assert affected(engine, top) == (Counter(dict(expected)), drivers)


def test_nothing_raised_is_nothing_affected() -> None:
    """An engine without alerts affects nobody."""
    engine = Engine()
    engine.upsert_route(_route("r0", "a", 0), T0)
    assert affected(engine, 10) == (Counter(), 0)
    assert affected(_engine(), 0) == (Counter(), 2)
