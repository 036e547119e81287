"""Property: on random small cities the engine finds exactly the pairs brute-force shapely finds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import Event, Route, Vehicle
from stream.core.config import EngineConfig
from stream.core.engine import Engine
from stream.core.geo import line_metric, to_metric, unproject_xy

X0, Y0 = 652_000.0, 6_862_000.0
AT = datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
EDGE = 1e-6  # pairs this close to the corridor's edge may go either way in floating point

coord = st.floats(min_value=0.0, max_value=600.0, allow_nan=False)
walk = st.lists(st.tuples(coord, coord), min_size=2, max_size=12)
shape = st.one_of(
    st.tuples(st.just("point"), st.tuples(coord, coord)),
    st.tuples(st.just("line"), st.lists(st.tuples(coord, coord), min_size=2, max_size=4)),
    st.tuples(
        st.sampled_from(["square", "perimeter"]),
        st.tuples(coord, coord, st.floats(min_value=1.0, max_value=120.0)),
    ),
)


def lonlat(xy: Any) -> list[list[float]]:
    """Local metres as lon/lat pairs."""
    arr = np.asarray(xy, dtype=float).reshape(-1, 2)
    lon, lat = unproject_xy(arr[:, 0] + X0, arr[:, 1] + Y0)
    return [[a, b] for a, b in zip(lon.tolist(), lat.tolist(), strict=True)]


def make_event(i: int, spec: tuple[str, Any]) -> Event:
    """An event from a drawn shape."""
    kind, data = spec
    if kind == "point":
        geometry: dict[str, Any] = {"type": "Point", "coordinates": lonlat(data)[0]}
    elif kind == "line":
        geometry = {"type": "LineString", "coordinates": lonlat(data)}
    else:
        x, y, h = data
        ring = [(x - h, y - h), (x + h, y - h), (x + h, y + h), (x - h, y + h), (x - h, y - h)]
        geometry = {"type": "Polygon", "coordinates": [lonlat(ring)]}
    label = "perimeter" if kind == "perimeter" else "closure"
    return Event(id=f"e{i}", source="prop", kind=label, geometry=geometry)  # type: ignore[arg-type]


def make_route(i: int, xy: list[tuple[float, float]]) -> Route:
    """A route from a drawn walk."""
    coords = tuple(tuple(c) for c in lonlat(xy))
    return Route(f"r{i}", f"d{i}", coords, Vehicle(), AT)  # type: ignore[arg-type]


def brute_force(routes: list[Route], events: list[Event], corridor: float) -> tuple[set[Any], set[Any]]:
    """(sure pairs, pairs on the edge) by shapely on every route x event."""
    sure, edge = set(), set()
    for r in routes:
        line = line_metric(r.coordinates)
        for e in events:
            geom = to_metric(e.geometry)
            limit = 0.0 if e.kind == "perimeter" else corridor
            d = float(shapely.distance(line, geom))
            if abs(d - limit) <= EDGE:
                edge.add((r.route_id, e.id))
            elif d <= limit:
                sure.add((r.route_id, e.id))
    return sure, edge


def active_pairs(engine: Engine) -> set[tuple[str, str]]:
    """The (route, event) pairs with a raised alert, read from the engine's alert book."""
    out = set()
    for ev, r in zip(*engine.book.pairs(), strict=True):
        event = engine.index.objects.event[int(ev)]
        assert event is not None
        out.add((engine.route_state(int(r)).route.route_id, event.id))
    return out


def check(found: set[Any], sure: set[Any], edge: set[Any]) -> None:
    """Every sure pair is found, nothing beyond the edge is."""
    assert sure <= found, f"missed {sure - found}"
    assert found <= sure | edge, f"extra {found - sure - edge}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    walks=st.lists(walk, min_size=1, max_size=6),
    shapes=st.lists(shape, min_size=1, max_size=8),
    corridor=st.floats(min_value=1.0, max_value=60.0),
    cell=st.sampled_from([7.0, 25.0, 40.0]),
)
def test_index_matches_brute_force(
    walks: list[list[tuple[float, float]]], shapes: list[tuple[str, Any]], corridor: float, cell: float
) -> None:
    """Routes then events, events then routes (one by one or in a batch), and a churned grid all give
    the brute-force pairs."""
    routes = [make_route(i, w) for i, w in enumerate(walks)]
    events = [make_event(i, s) for i, s in enumerate(shapes)]
    sure, edge = brute_force(routes, events, corridor)
    config = EngineConfig(corridor_m=corridor, cell_m=cell, piece_m=cell * 1.3)

    by_event = Engine(config)
    for r in routes:
        by_event.upsert_route(r, AT)
    raised = {(a.route_id, a.event_id) for a in by_event.apply_events(events, AT) if a.state == "raised"}
    check(raised, sure, edge)

    by_route = Engine(config)
    by_route.apply_events(events, AT)
    raised = {(a.route_id, a.event_id) for r in routes for a in by_route.upsert_route(r, AT)}
    check(raised, sure, edge)

    in_one_batch = Engine(config)
    in_one_batch.apply_events(events, AT)
    raised = {(a.route_id, a.event_id) for a in in_one_batch.upsert_routes(routes, AT) if a.state == "raised"}
    check(raised, sure, edge)

    churned = Engine(config)
    churned.grid.compact_slack = 0  # compact the arena whenever it fills up
    churned.apply_events(events, AT)
    for r in routes:  # first file every route reversed and shifted, then the real one
        moved = make_route(int(r.route_id[1:]), [(x + 50.0, y) for x, y in walks[int(r.route_id[1:])][::-1]])
        churned.upsert_route(moved, AT)
    for r in routes[::2]:
        churned.end_route(r.route_id, AT)
    churned.upsert_routes(routes, AT)  # re-filed together, over the stale entries of the first ones
    check(active_pairs(churned), sure, edge)

    compacted = Engine(config)  # cells renumbered in spatial order between changes, as a worker does
    compacted.upsert_routes(routes[::2], AT)
    compacted.compact()
    compacted.upsert_routes(routes[1::2], AT)  # new cells after the renumbering, old ones grown
    compacted.end_route(routes[0].route_id, AT)
    compacted.compact()
    compacted.upsert_route(routes[0], AT)
    raised = {(a.route_id, a.event_id) for a in compacted.apply_events(events, AT) if a.state == "raised"}
    check(raised, sure, edge)
