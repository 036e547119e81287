"""The route side of the join, compiled: routes against the events filed in the cells they cross.

An event is filed in the event grid (``EventIndex``) over its bounding box grown by the corridor
plus a reach ``h``; cut a route segment in pieces of at most ``2 h`` and every point of it lies
within ``h`` of a piece's midpoint, so an event within the corridor of the segment is filed in the
cell of one of those midpoints. Each segment is therefore checked against the events of its pieces'
cells only, not against every event near the route. Per batch of routes, the distinct cells of all
the pieces are looked up once and turned into one CSR array (cell -> event rows) for the kernel.
"""

from __future__ import annotations

import math
import weakref
from itertools import chain, repeat
from typing import Any

import numba
import numpy as np
import shapely

from stream.core.eventindex import _OFF, EventIndex
from stream.core.grid import SegmentGrid
from stream.core.kernels import _grow, segment_distance2
from stream.core.matching import Rows, first_rows, segment_starts
from stream.core.tables import EventState, RouteTable

Array = np.ndarray[Any, Any]


class EventColumns:
    """The events' primitives, bounding boxes and areal flags as columns indexed by event slot,
    for the route-side kernel. Filled lazily from the index's event states: an event whose state
    is not the one copied (new, changed, or a reused slot) is copied again when a route batch
    meets it, so a batch costs a copy only for the events that changed since they were last met.
    Primitives of replaced versions are left behind in the pool until it fills up and is compacted."""

    def __init__(self) -> None:
        self.known = np.zeros(0, dtype=object)  # the state each slot's columns were copied from
        self.ident = np.zeros(0, dtype=np.int64)  # id() of those states (0: none)
        # one row per slot each, so that the kernel reads an event in few cache lines:
        self.geo = np.zeros((0, 5))  # bounding box (xmin, ymin, xmax, ymax), corridor
        self.span = np.zeros((0, 3), dtype=np.int64)  # primitives lo .. hi in ``prims``, areal
        self.prims = np.zeros((1024, 4))
        self.top = 0  # rows of ``prims`` used

    def refresh(self, states: list[EventState | None], thr: Array, slots: Array) -> None:
        """Bring the columns of the event ``slots`` (distinct) up to date (``thr``: corridors)."""
        if len(states) > len(self.known):
            self._grow(max(len(states), 2 * len(self.known)))
        now = np.fromiter(map(id, map(states.__getitem__, slots.tolist())), dtype=np.int64, count=len(slots))
        changed = self.ident[slots] != now
        stale = slots[changed]
        if not len(stale):
            return
        fresh = np.empty(len(stale), dtype=object)
        fresh[:] = list(map(states.__getitem__, stale.tolist()))
        if any(state is None for state in fresh.tolist()):  # cannot happen for an event filed in a cell
            raise ValueError("an event slot filed in the event grid has no state")
        sizes = np.fromiter((len(state.prims) for state in fresh.tolist()), dtype=np.int64, count=len(stale))
        total = int(sizes.sum())
        if self.top + total > len(self.prims):
            self._compact(total)
        hi = self.top + np.cumsum(sizes)
        if total:
            self.prims[self.top : self.top + total] = np.concatenate(
                [state.prims for state in fresh.tolist()]
            )
        self.span[stale, 0], self.span[stale, 1] = hi - sizes, hi
        self.span[stale, 2] = [state.polygon is not None for state in fresh.tolist()]
        self.geo[stale, :4] = np.array([state.bbox for state in fresh.tolist()], dtype=np.float64).reshape(
            -1, 4
        )
        self.geo[stale, 4] = thr[stale]
        self.known[stale] = fresh
        self.ident[stale] = now[changed]
        self.top += total

    def _grow(self, size: int) -> None:
        more = size - len(self.known)
        self.known = np.concatenate((self.known, np.full(more, None, dtype=object)))
        self.ident = np.concatenate((self.ident, np.zeros(more, dtype=np.int64)))
        self.geo = np.concatenate((self.geo, np.full((more, 5), np.nan)))
        self.span = np.concatenate((self.span, np.zeros((more, 3), dtype=np.int64)))

    def _compact(self, extra: int) -> None:
        """Copy the primitives of the known states to a new pool with room for ``extra`` more."""
        lo, hi = self.span[:, 0], self.span[:, 1]
        sizes = hi - lo
        prims = np.zeros((max(2 * (int(sizes.sum()) + extra), 1024), 4))
        dst_hi = np.cumsum(sizes)
        dst_lo = dst_hi - sizes
        for slot in np.flatnonzero(sizes).tolist():
            prims[dst_lo[slot] : dst_hi[slot]] = self.prims[lo[slot] : hi[slot]]
        self.prims, self.span[:, 0], self.span[:, 1] = prims, dst_lo, dst_hi
        self.top = int(dst_hi[-1]) if len(dst_hi) else 0


_COLUMNS: weakref.WeakKeyDictionary[EventIndex, EventColumns] = weakref.WeakKeyDictionary()


def routes_rows(
    grid: SegmentGrid, routes: RouteTable, index: EventIndex, slots: Array, ends: Array
) -> tuple[Rows, Array]:
    """Routes (slots, with ``ends`` vertices) ahead of their vehicles against the events filed
    where their segments run: the first rows of each (event, route) pair, and the primitive array
    their ``q`` index."""
    seg_lo = routes.cur_p[slots]
    seg_hi = routes.start[slots] + ends - 1
    reach = index.margin_m - index.corridor_m
    seg_ptr, keys = piece_cells(seg_lo, seg_hi, grid.vx, grid.vy, 2.0 * reach, index.cell_m)
    cells, seg_cell = np.unique(keys, return_inverse=True)
    hits = list(map(index.cells.get, cells.tolist(), repeat(())))
    cell_ptr = np.zeros(len(hits) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, hits), dtype=np.int64, count=len(hits)), out=cell_ptr[1:])
    cell_ev = np.fromiter(chain.from_iterable(hits), dtype=np.int64, count=int(cell_ptr[-1]))
    columns = _COLUMNS.get(index)
    if columns is None:
        columns = _COLUMNS[index] = EventColumns()
    columns.refresh(index.states, index.table.thr, np.unique(cell_ev))
    out = scan_route_cells(
        slots,
        seg_lo,
        seg_hi,
        seg_ptr,
        seg_cell.ravel().astype(np.int64),
        cell_ptr,
        cell_ev,
        columns.geo,
        columns.span,
        columns.prims,
        grid.vx,
        grid.vy,
        routes.cur_p,
        routes.has_pos,
        routes.px,
        routes.py,
    )
    rows = Rows(*out[:6])
    ir, ip, ie = out[6:]
    if len(ir):
        ax, ay, _ = segment_starts(grid, routes, ip, ir, along=False)
        polygons = np.empty(len(ie), dtype=object)
        polygons[:] = [columns.known[e].polygon for e in ie.tolist()]
        inside = shapely.contains_xy(polygons, ax, ay)
        ie = ie[inside]
        zeros = np.zeros(len(ie))
        found = Rows(ie, ir[inside], ip[inside], zeros, zeros, columns.span[ie, 0])
        rows = first_rows(Rows.concat([rows, found]))
    return rows, columns.prims


@numba.njit(cache=True, nogil=True)
def piece_cells(
    seg_lo: Array, seg_hi: Array, vx: Array, vy: Array, piece_m: float, cell_m: float
) -> tuple[Array, Array]:
    """Event-grid cells of the pieces (at most ``piece_m`` long) of the segments
    ``seg_lo[k] .. seg_hi[k]`` of each route: segment ``i`` (in that order, all routes one after
    the other) has cells ``keys[ptr[i] : ptr[i + 1]]``, keyed as ``EventIndex.cells_of``."""
    total = 0
    nseg = 0
    for k in range(len(seg_lo)):
        for p in range(seg_lo[k], seg_hi[k]):
            length = math.hypot(vx[p + 1] - vx[p], vy[p + 1] - vy[p])
            total += max(1, int(math.ceil(length / piece_m)))
            nseg += 1
    ptr = np.empty(nseg + 1, np.int64)
    keys = np.empty(total, np.int64)
    n = 0
    i = 0
    for k in range(len(seg_lo)):
        for p in range(seg_lo[k], seg_hi[k]):
            ptr[i] = n
            i += 1
            ax, ay, bx, by = vx[p], vy[p], vx[p + 1], vy[p + 1]
            count = max(1, int(math.ceil(math.hypot(bx - ax, by - ay) / piece_m)))
            for j in range(count):
                frac = (j + 0.5) / count
                ix = np.int64(math.floor((ax + frac * (bx - ax)) / cell_m)) + _OFF
                iy = np.int64(math.floor((ay + frac * (by - ay)) / cell_m)) + _OFF
                key = (ix << 32) | iy
                if n > ptr[i - 1] and keys[n - 1] == key:
                    continue  # the piece before is in the same cell
                keys[n] = key
                n += 1
    ptr[nseg] = n
    return ptr, keys[:n]


@numba.njit(cache=True, nogil=True)
def scan_route_cells(
    route_slot: Array,
    seg_lo: Array,
    seg_hi: Array,
    seg_ptr: Array,
    seg_cell: Array,
    cell_ptr: Array,
    cell_ev: Array,
    ev_geo: Array,
    ev_span: Array,
    prims: Array,
    vx: Array,
    vy: Array,
    cur_p: Array,
    has_pos: Array,
    px: Array,
    py: Array,
) -> tuple[Array, Array, Array, Array, Array, Array, Array, Array, Array]:
    """Per (event, route), the first segment ahead of the vehicle within the event's corridor, at
    its closest point.

    Route ``k`` (slot ``route_slot[k]``) runs segments ``seg_lo[k] .. seg_hi[k]`` (pool indices,
    from the one its vehicle is on); segment ``i`` of the batch (all routes in order) meets the
    events of cells ``seg_cell[seg_ptr[i] : seg_ptr[i + 1]]``, cell ``c`` holding the event slots
    ``cell_ev[cell_ptr[c] : cell_ptr[c + 1]]``: rows of ``ev_geo`` (bounding box, corridor) and
    ``ev_span`` (primitives in ``prims``, areal). Returns the matching rows (event slot, route
    slot, segment, distance, parameter, primitive), then the candidates for the inside test of
    areal events (route slot, segment, event slot): segments that start in the event's box.
    """
    cap = 256
    o_ev = np.empty(cap, np.int64)
    o_r = np.empty(cap, np.int64)
    o_p = np.empty(cap, np.int64)
    o_d = np.empty(cap, np.float64)
    o_t = np.empty(cap, np.float64)
    o_q = np.empty(cap, np.int64)
    n = 0
    icap = 256
    i_r = np.empty(icap, np.int64)
    i_p = np.empty(icap, np.int64)
    i_e = np.empty(icap, np.int64)
    m = 0
    # per event: segment that met it last, route that matched it last, that match's output row
    mark = np.full((len(ev_span), 3), -1, np.int64)
    i = 0
    for k in range(len(route_slot)):
        r = route_slot[k]
        for p in range(seg_lo[k], seg_hi[k]):
            ax = vx[p]
            ay = vy[p]
            if p == cur_p[r] and has_pos[r]:
                ax = px[r]
                ay = py[r]
            bx = vx[p + 1]
            by = vy[p + 1]
            for ci in range(seg_ptr[i], seg_ptr[i + 1]):
                c = seg_cell[ci]
                for ei in range(cell_ptr[c], cell_ptr[c + 1]):
                    e = cell_ev[ei]
                    if mark[e, 0] == i:
                        continue  # met in another cell of this segment
                    mark[e, 0] = i
                    x0, y0, x1, y1, limit = (
                        ev_geo[e, 0],
                        ev_geo[e, 1],
                        ev_geo[e, 2],
                        ev_geo[e, 3],
                        ev_geo[e, 4],
                    )
                    if ev_span[e, 2] and x0 <= ax <= x1 and y0 <= ay <= y1:
                        if m == icap:
                            icap *= 2
                            i_r, i_p, i_e = _grow(i_r, icap), _grow(i_p, icap), _grow(i_e, icap)
                        i_r[m], i_p[m], i_e[m] = r, p, e
                        m += 1
                    matched = mark[e, 1] == k
                    if matched and p > o_p[mark[e, 2]]:
                        continue  # matched on an earlier segment of this route
                    if min(ax, bx) > x1 + limit or max(ax, bx) < x0 - limit:
                        continue  # the event's primitives all lie within its box
                    if min(ay, by) > y1 + limit or max(ay, by) < y0 - limit:
                        continue
                    for q in range(ev_span[e, 0], ev_span[e, 1]):
                        cx, cy, dx, dy = prims[q, 0], prims[q, 1], prims[q, 2], prims[q, 3]
                        if min(ax, bx) > max(cx, dx) + limit or max(ax, bx) < min(cx, dx) - limit:
                            continue
                        if min(ay, by) > max(cy, dy) + limit or max(ay, by) < min(cy, dy) - limit:
                            continue
                        d2, t = segment_distance2(ax, ay, bx, by, cx, cy, dx, dy)
                        if not d2 <= limit * limit:
                            continue
                        d = math.sqrt(d2)
                        if matched:
                            j = mark[e, 2]
                            if d < o_d[j]:
                                o_d[j], o_t[j], o_q[j] = d, t, q
                            continue
                        if n == cap:
                            cap *= 2
                            o_ev, o_r, o_p = _grow(o_ev, cap), _grow(o_r, cap), _grow(o_p, cap)
                            o_d, o_t, o_q = _grow(o_d, cap), _grow(o_t, cap), _grow(o_q, cap)
                        matched = True
                        mark[e, 1] = k
                        mark[e, 2] = n
                        o_ev[n], o_r[n], o_p[n], o_d[n], o_t[n], o_q[n] = e, r, p, d, t, q
                        n += 1
            i += 1
    return (
        o_ev[:n],
        o_r[:n],
        o_p[:n],
        o_d[:n],
        o_t[:n],
        o_q[:n],
        i_r[:m],
        i_p[:m],
        i_e[:m],
    )
