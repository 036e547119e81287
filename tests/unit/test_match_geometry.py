"""The geometric rule of matching, as a table: within the corridor in metres, or not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas import Event, Route, Vehicle
from stream.core.engine import Engine, EngineConfig
from tests.support.geometry import line, lonlat, point, square

AT = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
# A straight 1 km route along the x axis, from (0, 0) to (1000, 0) metres.
ROUTE = Route("r1", "d1", tuple(tuple(p) for p in lonlat([(0, 0), (500, 0), (1000, 0)])), Vehicle())

CASES = [
    # (case, geometry, concerned)
    ("point on the route", point(400, 0), True),
    ("point 29 m aside", point(400, 29), True),
    ("point 31 m aside", point(400, 31), False),
    ("point 31 m below", point(700, -31), False),
    ("closure crossing the route", line([(300, -200), (300, 200)]), True),
    ("closure parallel 25 m away", line([(100, 25), (900, 25)]), True),
    ("closure parallel 40 m away", line([(100, 40), (900, 40)]), False),
    ("closure touching the route's end", line([(1000, 0), (1000, 300)]), True),
    ("point 20 m beyond the end", point(1020, 0), True),
    ("point 35 m beyond the end", point(1035, 0), False),
    ("square containing a stretch", square(200, -50, 100), True),
    ("square 50 m away", square(200, 50, 100), False),
    ("point 2 km away", point(500, 2000), False),
]


@pytest.mark.parametrize(("case", "geometry", "concerned"), CASES, ids=[c[0] for c in CASES])
def test_corridor_rule(case: str, geometry: dict[str, object], concerned: bool) -> None:
    """An event concerns the route exactly when it comes within 30 m of it."""
    engine = Engine(EngineConfig(corridor_m=30.0))
    engine.upsert_route(ROUTE, AT)
    event = Event(id=f"t:{case}", source="t", kind="closure", geometry=geometry)
    alerts = engine.apply_events([event], AT)
    assert [a.state for a in alerts] == (["raised"] if concerned else [])
    if concerned:
        assert alerts[0].route_id == "r1" and alerts[0].driver_id == "d1"


def test_both_join_directions_agree() -> None:
    """A route registered after the event raises the same alert as the other order."""
    event = Event(id="t:c", source="t", kind="closure", geometry=point(400, 10))
    first = Engine()
    first.upsert_route(ROUTE, AT)
    by_event = first.apply_events([event], AT)
    second = Engine()
    second.apply_events([event], AT)
    by_route = second.upsert_route(ROUTE, AT)
    assert [a.alert_id for a in by_event] == [a.alert_id for a in by_route]
    assert by_event[0].distance_ahead_m == pytest.approx(400, abs=1)


@pytest.mark.parametrize("kind", ["perimeter", "closure"])
def test_area_the_route_starts_in_is_zero_ahead_from_both_directions(kind: str) -> None:
    """A route whose first segment starts inside an area and leaves it is concerned from its start,
    whichever side of the join finds it (not at the point where it crosses the edge)."""
    area = Event(id="t:area", source="t", kind=kind, geometry=square(-100, -100, 300))
    first = Engine()
    first.upsert_route(ROUTE, AT)
    by_event = first.apply_events([area], AT)
    second = Engine()
    second.apply_events([area], AT)
    by_route = second.upsert_route(ROUTE, AT)
    assert [a.state for a in by_event] == [a.state for a in by_route] == ["raised"]
    assert by_event[0].distance_ahead_m == by_route[0].distance_ahead_m == 0.0
