"""The geometric rule of matching, as a table: within the corridor in metres, or not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from schemas import Alert, Event, Route, Vehicle
from stream.core.config import EngineConfig
from stream.core.engine import Engine
from stream.core.shapes import RING_EDGES_MAX
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


def both_directions(event: Event, *routes: Route) -> tuple[list[Alert], list[Alert]]:
    """The alerts of the routes registered before the event, and of the same routes registered
    after it (in a second engine)."""
    first = Engine()
    for route in routes:
        first.upsert_route(route, AT)
    by_event = first.apply_events([event], AT)
    second = Engine()
    second.apply_events([event], AT)
    by_route = [alert for route in routes for alert in second.upsert_route(route, AT)]
    return by_event, by_route


def test_both_join_directions_agree() -> None:
    """A route registered after the event raises the same alert as the other order."""
    event = Event(id="t:c", source="t", kind="closure", geometry=point(400, 10))
    by_event, by_route = both_directions(event, ROUTE)
    assert [a.alert_id for a in by_event] == [a.alert_id for a in by_route]
    assert by_event[0].distance_ahead_m == pytest.approx(400, abs=1)


@pytest.mark.parametrize("kind", ["perimeter", "closure"])
def test_area_the_route_starts_in_is_zero_ahead_from_both_directions(kind: str) -> None:
    """A route whose first segment starts inside an area and leaves it is concerned from its start,
    whichever side of the join finds it (not at the point where it crosses the edge)."""
    area = Event(id="t:area", source="t", kind=kind, geometry=square(-100, -100, 300))
    by_event, by_route = both_directions(area, ROUTE)
    assert [a.state for a in by_event] == [a.state for a in by_route] == ["raised"]
    assert by_event[0].distance_ahead_m == by_route[0].distance_ahead_m == 0.0


TWO_CROSSINGS = [
    ("square across the route", "perimeter", square(400, -100, 200)),
    ("square across the route, closure", "closure", square(400, -100, 200)),
    (
        "line crossing twice, far crossing first",
        "closure",
        line([(700, -50), (700, 50), (300, 50), (300, -50)]),
    ),
]


@pytest.mark.parametrize(("case", "kind", "geometry"), TWO_CROSSINGS, ids=[c[0] for c in TWO_CROSSINGS])
def test_a_segment_crossing_an_event_twice_meets_it_at_the_first_crossing(
    case: str, kind: str, geometry: dict[str, object]
) -> None:
    """Where a segment crosses several of an event's edges, the event is ahead where the route
    first meets it, from both directions of the join."""
    straight = Route("r1", "d1", tuple(tuple(p) for p in lonlat([(0, 0), (1000, 0)])), Vehicle())
    event = Event(id=f"t:{case}", source="t", kind=kind, geometry=geometry)
    by_event, by_route = both_directions(event, straight)
    expected = 300 if kind == "closure" and geometry["type"] == "LineString" else 400
    assert by_event[0].distance_ahead_m == pytest.approx(expected, abs=0.5)
    assert by_route[0].distance_ahead_m == by_event[0].distance_ahead_m


@pytest.mark.parametrize("wrap", [False, True], ids=["polygon", "geometry collection"])
def test_a_vehicle_inside_an_area_is_concerned_from_both_directions(wrap: bool) -> None:
    """A vehicle already inside an area (on a segment that entered it) is concerned, whether the
    area is tested by its rings in the scan or, as a collection, by its shapely polygon."""
    ring = lonlat([(0, 0), (100, 0), (100, 100), (0, 100), (0, 0)])
    polygon = {"type": "Polygon", "coordinates": [ring]}
    geometry = {"type": "GeometryCollection", "geometries": [polygon]} if wrap else polygon
    event = Event(id="t:area", source="t", kind="closure", geometry=geometry)
    route = Route("r", "d", tuple(tuple(p) for p in lonlat([(-40, 50), (10, 50), (10, 300)])), Vehicle())
    lon, lat = lonlat([(8, 50)])[0]
    vehicle = (lon, lat)
    first = Engine()
    first.upsert_route(route, AT)
    first.route_position("r", vehicle, AT)
    by_event = first.apply_events([event], AT)
    second = Engine()
    second.apply_events([event], AT)
    second.upsert_route(route, AT)
    second.route_position("r", vehicle, AT)
    assert [a.state for a in by_event] == ["raised"]
    assert by_event[0].distance_ahead_m == 0.0
    assert second.alert_count == 1


def test_an_area_that_cannot_be_ring_tested_on_an_engine_without_routes() -> None:
    """A self-intersecting polygon (tested with its repaired shapely polygon) on an engine that
    holds no route yet is stored, with no alert."""
    bow_tie = {"type": "Polygon", "coordinates": [lonlat([(0, 0), (100, 100), (100, 0), (0, 100), (0, 0)])]}
    engine = Engine()
    assert engine.apply_events([Event(id="t:bow", source="t", kind="closure", geometry=bow_tie)], AT) == []
    assert engine.event_count == 1


def test_a_detailed_perimeter_is_matched_as_a_simple_one() -> None:
    """A perimeter with more edges than the scan tests itself (RING_EDGES_MAX) concerns the routes
    that enter it, from both directions, as the same area drawn with few edges does."""
    angles = np.linspace(0, 2 * np.pi, RING_EDGES_MAX * 2, endpoint=False)
    circle = [(500 + 150 * np.cos(a), 150 * np.sin(a)) for a in angles]
    detailed = {"type": "Polygon", "coordinates": [lonlat([*circle, circle[0]])]}
    event = Event(id="t:circle", source="t", kind="perimeter", geometry=detailed)
    inside_start = Route("in", "d", tuple(tuple(p) for p in lonlat([(500, 0), (500, 400)])), Vehicle())
    alerts = both_directions(event, ROUTE, inside_start)
    by_event, by_route = (sorted((a.route_id, a.distance_ahead_m) for a in side) for side in alerts)
    assert by_event == by_route
    assert by_event[0] == ("in", 0.0)
    assert by_event[1][0] == "r1" and by_event[1][1] == pytest.approx(350, abs=1)


def test_a_grid_whose_pieces_would_not_fit_its_entries_is_refused() -> None:
    """Piece endpoints are int16 centimetres from their cell's corner: cells too large are refused
    at construction rather than wrapping silently."""
    with pytest.raises(ValueError, match="int16"):
        Engine(EngineConfig(cell_m=400.0))
    assert Engine(EngineConfig(cell_m=200.0)).grid.cell_m == 200.0


# An area with a notch and a hole, so that its bounding box holds places outside it: an L (the
# square 0..600 without its top-right quarter) with a 200 m hole at (100..300, 100..300).
_L = [(0, 0), (600, 0), (600, 300), (300, 300), (300, 600), (0, 600), (0, 0)]
_HOLE = [(100, 100), (300, 100), (300, 300), (100, 300), (100, 100)]
NOTCHED = {"type": "Polygon", "coordinates": [lonlat(_L), lonlat(_HOLE)]}
FAR_FROM_EDGES = [
    # (case, route in metres, concerned, distance ahead): every route stays > 30 m from every edge
    ("wholly inside the solid part", [(400, 50), (550, 50), (550, 250)], True, 0.0),
    ("wholly inside the hole", [(150, 150), (250, 150), (250, 250)], False, None),
    ("wholly in the notch", [(400, 400), (550, 550)], False, None),
    ("from the notch into the solid part", [(450, 450), (450, 100)], True, 150.0),
    ("from the hole into the solid part", [(200, 200), (200, 50)], True, 100.0),
    # 45 m from an edge in 10 m steps: each step is a segment of its own, in grid cells that the
    # edge's corridor reaches, so the scan decides each one by its start rather than the cell whole
    ("along an edge inside the solid part", [(350 + 10 * i, 255) for i in range(21)], True, 0.0),
    ("along an edge in the notch", [(350 + 10 * i, 345) for i in range(21)], False, None),
]


@pytest.mark.parametrize(
    ("case", "path", "concerned", "ahead"), FAR_FROM_EDGES, ids=[c[0] for c in FAR_FROM_EDGES]
)
def test_routes_far_from_an_areas_edges_are_inside_or_outside_it(
    case: str, path: list[tuple[float, float]], concerned: bool, ahead: float | None
) -> None:
    """Segments far from every edge of an area are in it or out of it as their start is, hole and
    notch included, from both directions of the join; a route concerned from its start is 0 m
    ahead, one that enters it at the first edge it crosses."""
    route = Route("r", "d", tuple(tuple(p) for p in lonlat(path)), Vehicle())
    event = Event(id=f"t:{case}", source="t", kind="perimeter", geometry=NOTCHED)
    by_event, by_route = both_directions(event, route)
    assert [a.state for a in by_event] == [a.state for a in by_route] == (["raised"] if concerned else [])
    if concerned:
        assert by_event[0].distance_ahead_m == pytest.approx(ahead, abs=0.5)
        assert by_route[0].distance_ahead_m == by_event[0].distance_ahead_m


UNREADABLE = [
    ("a null coordinate", {"type": "Point", "coordinates": [None, 48.85]}),
    ("a coordinate that is text", {"type": "Point", "coordinates": ["east", 48.85]}),
    ("a point without its latitude", {"type": "Point", "coordinates": [2.35]}),
    ("a line with a null vertex", {"type": "LineString", "coordinates": [[2.35, 48.85], None]}),
    ("a polygon without coordinates", {"type": "Polygon", "coordinates": []}),
    ("an unsupported type", {"type": "Circle", "coordinates": [2.35, 48.85]}),
    ("a point nested once too deep", {"type": "Point", "coordinates": [[2.35, 48.85]]}),
    (
        "a line with a vertex of one value",
        {"type": "LineString", "coordinates": [[2.35, 48.85, 3.0], [2.36]]},
    ),
    ("a line with a vertex that is a number", {"type": "LineString", "coordinates": [[2.35, 48.85], 2.36]}),
]


def test_unreadable_geometries_are_rejected_and_the_rest_of_the_batch_matches() -> None:
    """Each event whose geometry cannot be read is set aside with its id and the reason; the
    other events of its batch are matched as if it were not there."""
    engine = Engine()
    engine.upsert_route(ROUTE, AT)
    bad = [Event(id=f"t:{case}", source="t", kind="closure", geometry=g) for case, g in UNREADABLE]
    good = Event(id="t:good", source="t", kind="closure", geometry=point(400, 0))
    alerts = engine.apply_events([*bad[:3], good, *bad[3:]], AT)
    assert [(a.event_id, a.state) for a in alerts] == [("t:good", "raised")]
    assert [event_id for event_id, _ in engine.rejected] == [e.id for e in bad]
    assert all(why.startswith("unreadable geometry: ") and len(why) > 21 for _, why in engine.rejected)
    assert engine.event_count == 1


def test_a_changed_event_in_a_batch_with_unreadable_geometries_replaces_its_earlier_version() -> None:
    """The events read after unreadable ones keep their own slots: a changed event replaces its
    earlier version (one event, its alert updated), not a second one beside it."""
    engine = Engine()
    engine.upsert_route(ROUTE, AT)
    engine.apply_events([Event(id="t:moved", source="t", kind="closure", geometry=point(400, 0))], AT)
    moved = Event(id="t:moved", source="t", kind="closure", geometry=point(600, 0))
    bad = [Event(id=f"t:{case}", source="t", kind="closure", geometry=g) for case, g in UNREADABLE]
    alerts = engine.apply_events([*bad[:2], moved, *bad[2:]], AT)
    assert [(a.event_id, a.state) for a in alerts] == [("t:moved", "updated")]
    assert engine.event_count == 1


def test_a_route_meets_hundreds_of_events_in_one_cell_from_either_side() -> None:
    """Three hundred events crowd the same few metres (points on the route and squares around
    it, more than a cell's inline slots, the route scan's first room for rows and for segments
    starting inside an area): the route registered after them is concerned by every one, as
    the events applied after the route are."""
    events = [
        Event(id=f"t:p{i}", source="t", kind="closure", geometry=point(400 + i / 10, (i % 7) - 3))
        for i in range(200)
    ] + [
        Event(id=f"t:s{i}", source="t", kind="perimeter", geometry=square(380 + i / 10, -20, 40))
        for i in range(100)
    ]
    by_event, by_route = both_directions_all(events, ROUTE)
    assert len(by_event) == len(events)
    assert sorted((a.event_id, a.state) for a in by_route) == sorted((a.event_id, a.state) for a in by_event)
    assert {a.event_id for a in by_route} == {e.id for e in events}


def both_directions_all(events: list[Event], route: Route) -> tuple[list[Alert], list[Alert]]:
    """``both_directions`` for several events at once."""
    first = Engine()
    first.upsert_route(route, AT)
    by_event = first.apply_events(events, AT)
    second = Engine()
    second.apply_events(events, AT)
    return by_event, second.upsert_route(route, AT)


def test_event_positions_with_altitude_match_as_without() -> None:
    """A third value in some positions of a batch (altitude) is dropped; the others' positions
    are read as they are (the values of one position never shift into the next)."""
    geometries = [point(400, 0), line([(300, 20), (500, 25), (700, 20)]), square(800, 0, 60)]
    lifted = [_with_altitude(g, k) for k, g in enumerate(geometries)]
    found = []
    for batch in (geometries, lifted):
        engine = Engine()
        engine.upsert_route(ROUTE, AT)
        alerts = engine.apply_events(
            [Event(id=f"t:{k}", source="t", kind="closure", geometry=g) for k, g in enumerate(batch)], AT
        )
        found.append(sorted((a.event_id, a.state, round(a.distance_ahead_m, 6)) for a in alerts))
    assert found[0] == found[1] and len(found[0]) == 3


def _with_altitude(geometry: dict[str, Any], k: int) -> dict[str, Any]:
    """The geometry with an altitude on every other position (from the ``k``-th)."""
    count = [k]

    def lift(position: list[float]) -> list[float]:
        count[0] += 1
        return [*position, 35.0] if count[0] % 2 else list(position)

    coords = geometry["coordinates"]
    if geometry["type"] == "Point":
        return {"type": "Point", "coordinates": lift(coords)}
    if geometry["type"] == "LineString":
        return {"type": "LineString", "coordinates": [lift(c) for c in coords]}
    return {"type": "Polygon", "coordinates": [[lift(c) for c in ring] for ring in coords]}
