"""The join: candidate (route segment, event primitive) pairs to concerned pairs.

Both directions find, per (event, route), the first segment ahead of the vehicle that comes within
the event's corridor, at its closest point (compiled scans: ``eventscan.scan_cells`` for a batch of
events, ``routescan`` for a batch of routes; ``first_rows`` where rows from several sources meet),
then apply the rules (``decide``): not already passed, valid when the vehicle gets there, vehicle
conditions, direction. Only segments ahead of the vehicle take part; the one it is on starts at
its position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from stream.core.eventscan import scan_cells
from stream.core.grid import SegmentGrid
from stream.core.rules import in_schedule
from stream.core.rulescan import PASSED_TOLERANCE_M, rule_mask
from stream.core.shapes import ShapeBatch
from stream.core.tables import EventObjects, EventTable, RouteTable, objects

Array = np.ndarray[Any, Any]


@dataclass(slots=True)
class Rows:
    """Matching (event slot, route slot) rows with the segment and closest point found."""

    ev: Array
    r: Array
    p: Array
    dist: Array
    t: Array
    q: Array  # primitive index (in the primitive array of this query)

    def take(self, sel: Array) -> Rows:
        """The rows selected by a mask or an index array."""
        return Rows(self.ev[sel], self.r[sel], self.p[sel], self.dist[sel], self.t[sel], self.q[sel])

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        """Rows of several queries, one after the other."""
        if not parts:
            i, f = np.zeros(0, dtype=np.int64), np.zeros(0)
            return Rows(i, i, i, f, f, i)
        cols = [np.concatenate([getattr(x, f) for x in parts]) for f in Rows.__slots__]
        return Rows(*cols)


def segment_starts(
    grid: SegmentGrid, routes: RouteTable, p: Array, r: Array, along: bool = True
) -> tuple[Array, ...]:
    """Start x, y (and distance along) of segments ``p``, clipped at the vehicle on its segment."""
    a = grid.pool[p]
    ax, ay = a[:, 0], a[:, 1]
    s0 = a[:, 2] if along else ax
    clip = np.flatnonzero(p == routes.cur_p[r])
    if len(clip):
        clip = clip[routes.has_pos[r[clip]]]
        rc = r[clip]
        ax[clip], ay[clip] = routes.px[rc], routes.py[rc]
        if along:
            s0[clip] = routes.base_s[rc]
    return ax, ay, s0


def inside_rows(
    grid: SegmentGrid, routes: RouteTable, polygons: Array, slots: Array, qs: Array, owner: Array, p: Array
) -> Rows:
    """Segments (ahead of the vehicle) starting inside their areal event ``owner``: distance 0."""
    r = grid.route_of(p)
    live = np.flatnonzero(p >= routes.cur_p[r])
    p, r, owner = p[live], r[live], owner[live]
    ax, ay, _ = segment_starts(grid, routes, p, r, along=False)
    inside = shapely.contains_xy(polygons[owner], ax, ay)
    n = int(inside.sum())
    zeros = np.zeros(n)
    return Rows(slots[owner[inside]], r[inside], p[inside], zeros, zeros, qs[owner[inside]])


def batch_rows(
    grid: SegmentGrid, routes: RouteTable, events: EventTable, batch: ShapeBatch, slots: Array
) -> tuple[Rows, Array | None]:
    """Per (event, route) of a batch, the first segment ahead within the corridor (``first_rows``),
    sorted by event slot: one compiled scan of the grid cells under the events' boxes (boxes taken
    in event slot order, so the rows come out sorted), plus, for areas the scan cannot test with
    their rings, the segments that start inside them. Also the distance ahead of each row, when
    the scan measured them all (``None`` otherwise)."""
    order = np.argsort(slots[batch.box_event], kind="stable")
    box_event = batch.box_event[order]
    box, start, count, cx, cy, rel = grid.box_slices(batch.boxes[order])
    ap, aq = grid.arena()
    cols = scan_cells(
        box,
        start,
        count,
        cx,
        cy,
        slots[box_event],
        batch.box_lo[order],
        batch.box_hi[order],
        rel,
        batch.box_inside[order],
        batch.bbox[box_event],
        batch.prim_lo[box_event],
        batch.prim_hi[box_event],
        batch.prims,
        events.thr,
        np.asarray(grid.origin or (0.0, 0.0)),
        grid.cell_m,
        ap,
        aq,
        grid.block_route,
        grid.vx,
        grid.vy,
        grid.vs,
        routes.cur_p,
        routes.has_pos,
        routes.px,
        routes.py,
        routes.base_s,
        grid.reach_m,
    )
    rows = Rows(*cols[:6])
    other = [i for i, poly in enumerate(batch.polygons) if poly is not None and not batch.rings[i]]
    if other:
        areal = np.asarray(other, dtype=np.int64)
        reach = grid.reach_m  # a segment starting inside files a piece within reach of its start
        owner, p = grid.query(batch.bbox[areal] + np.array([-reach, -reach, reach, reach]))
        polygons = objects([batch.polygons[i] for i in other])
        inside = inside_rows(grid, routes, polygons, slots[areal], batch.prim_lo[areal], owner, p)
        if len(inside.ev):
            return first_rows(Rows.concat([rows, inside])), None
    return rows, cols[6]


def first_rows(rows: Rows) -> Rows:
    """Per (event, route), the first segment ahead within the corridor, at its closest point (the
    nearest the segment's start among equally close ones: a segment that starts inside an area
    and also crosses its edge is taken at its start, as the event-side scan takes it)."""
    if len(rows.ev) == 0:
        return rows
    order = np.lexsort((rows.t, rows.dist, rows.p, rows.ev))  # a route's segments are consecutive
    ev, r = rows.ev[order], rows.r[order]
    first = np.ones(len(ev), dtype=bool)
    first[1:] = (ev[1:] != ev[:-1]) | (r[1:] != r[:-1])
    return rows.take(order[first])


def behind(routes: RouteTable, rows: Rows) -> Array:
    """Rows whose nearest point ahead is the vehicle itself: the vehicle is past the event."""
    clipped = routes.has_pos[rows.r] & (rows.p == routes.cur_p[rows.r])
    out: Array = clipped & (rows.t == 0.0) & (rows.dist > PASSED_TOLERANCE_M)
    return out


@dataclass(slots=True)
class Concerned:
    """(event, route) pairs that concern the driver, with distance ahead and expected time."""

    ev: Array
    r: Array
    ahead: Array
    expected: Array

    def take(self, sel: Array | slice) -> Concerned:
        """The pairs selected by a mask or an index array."""
        return Concerned(self.ev[sel], self.r[sel], self.ahead[sel], self.expected[sel])


def decide(
    grid: SegmentGrid,
    routes: RouteTable,
    events: EventTable,
    stored: EventObjects,
    rows: Rows,
    prims: Array,
    when: tuple[float, bool],
    ahead: Array | None = None,
) -> Concerned:
    """Apply progress, direction, time and vehicle rules to the first rows of each pair (whose
    distance ahead is computed here unless given)."""
    ev, r, p, t = rows.ev, rows.r, rows.p, rows.t
    if ahead is None:
        ax, ay, s0 = segment_starts(grid, routes, p, r)
        bx, by = grid.vx[p + 1], grid.vy[p + 1]
        length = np.sqrt((bx - ax) * (bx - ax) + (by - ay) * (by - ay))  # as the compiled scan
        ahead = np.maximum(0.0, s0 + t * length - routes.base_s[r])
    geometry = (p, t, rows.dist, rows.q, prims, grid.vx, grid.vy)
    ok, expected = rule_mask(routes, events, ev, r, ahead, when, geometry)
    return _scheduled(events, stored, Concerned(ev, r, ahead, expected), ok, when)


def apply_rules(
    routes: RouteTable,
    events: EventTable,
    stored: EventObjects,
    pairs: Concerned,
    ok: Array,
    when: tuple[float, bool],
) -> Concerned:
    """Keep the pairs valid when the vehicle gets there (or at ``at``) and whose vehicle applies.

    ``when`` is ``(at, at_only)``; ``pairs.expected`` is ignored and recomputed from the speed
    model: the vehicle reaches ``ahead`` metres further at ``base_t + ahead / speed``.
    """
    passed, expected = rule_mask(routes, events, pairs.ev, pairs.r, pairs.ahead, when)
    return _scheduled(events, stored, Concerned(pairs.ev, pairs.r, pairs.ahead, expected), ok & passed, when)


def _scheduled(
    events: EventTable, stored: EventObjects, pairs: Concerned, ok: Array, when: tuple[float, bool]
) -> Concerned:
    """The pairs that ``ok`` keeps and whose event's weekly schedule (if any) is open at the
    moment of the rules (the expected time, or ``at``)."""
    at, at_only = when
    scheduled = events.has_sched[pairs.ev]
    if scheduled.any():
        for i in np.nonzero(scheduled & ok)[0].tolist():
            e = int(pairs.ev[i])
            moment = at if at_only else float(pairs.expected[i])
            ok[i] = in_schedule(stored.schedule[e], stored.event[e].timezone, moment)
    return pairs if ok.all() else pairs.take(ok)
