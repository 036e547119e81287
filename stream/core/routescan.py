"""The route side of the join, compiled: routes against the events filed in the cells they cross.

An event is filed in the event grid (``EventIndex``) over its bounding box grown by the corridor
plus a reach ``h``; cut a route segment in pieces of at most ``2 h`` and every point of it lies
within ``h`` of a piece's midpoint, so an event within the corridor of the segment is filed in the
cell of one of those midpoints. Each segment is therefore checked against the events of its pieces'
cells only, not against every event near the route. The kernel cuts the pieces and looks their
cells up in the index's hash table itself, and reads the events from the index's columns.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import shapely

from stream.core.celllists import OVER, cell_bucket, cell_home
from stream.core.eventindex import OFF, EventIndex
from stream.core.grid import SegmentGrid
from stream.core.kernels import _grow, nearest_primitive
from stream.core.matching import Rows, first_rows, segment_starts
from stream.core.prefetch import prefetch
from stream.core.tables import RouteTable

Array = np.ndarray[Any, Any]
_AHEAD = 16  # cells the lookups fetch ahead


def routes_rows(
    grid: SegmentGrid, routes: RouteTable, index: EventIndex, slots: Array, ends: Array
) -> tuple[Rows, Array]:
    """Routes (slots, with ``ends`` vertices) ahead of their vehicles against the events filed
    where their segments run: the first rows of each (event, route) pair, and the primitive array
    their ``q`` index."""
    seg_lo = routes.cur_p[slots]
    seg_hi = routes.start[slots] + ends - 1
    reach = index.margin_m - index.corridor_m
    cells = index.cells
    out = scan_route_cells(
        slots,
        seg_lo,
        seg_hi,
        2.0 * reach,
        index.cell_m,
        cells.table,
        cells.spill,
        index.geo,
        index.span,
        index.prims,
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
        inside = shapely.contains_xy(index.objects.polygon[ie], ax, ay)
        ie = ie[inside]
        zeros = np.zeros(len(ie))
        found = Rows(ie, ir[inside], ip[inside], zeros, zeros, index.span[ie, 0])
        rows = first_rows(Rows.concat([rows, found]))
    return rows, index.prims


@numba.njit(cache=True, nogil=True)
def scan_route_cells(
    route_slot: Array,
    seg_lo: Array,
    seg_hi: Array,
    piece_m: float,
    cell_m: float,
    cell_table: Array,
    cell_spill: Array,
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
    from the one its vehicle is on); each segment is cut in pieces of at most ``piece_m`` and meets
    the events filed in the cells of their midpoints (``EventIndex.cells``: the hash table
    ``cell_table`` and its lists in ``cell_spill``): rows of ``ev_geo``
    (bounding box, corridor) and ``ev_span`` (primitives in ``prims``, areal). Returns the
    matching rows (event slot, route slot, segment, distance, parameter, primitive), then the
    candidates for the inside test of areal events (route slot, segment, event slot): segments
    that start in the event's box, up to the first one within its corridor (the later ones
    cannot come first).
    """
    c_k, c_p, c_key = _piece_cells(route_slot, seg_lo, seg_hi, piece_m, cell_m, vx, vy)
    total = len(c_key)
    cap = max(256, total)
    o_ev = np.empty(cap, np.int64)
    o_r = np.empty(cap, np.int64)
    o_p = np.empty(cap, np.int64)
    o_d = np.empty(cap, np.float64)
    o_t = np.empty(cap, np.float64)
    o_q = np.empty(cap, np.int64)
    icap = 256
    i_r = np.empty(icap, np.int64)
    i_p = np.empty(icap, np.int64)
    i_e = np.empty(icap, np.int64)
    here = np.empty(64, np.int64)  # the events of a cell
    # per event: segment that met it last, route that matched it last
    mark = np.full((len(ev_span), 2), -1, np.int64)
    c = n = m = 0
    while True:
        # the arrays are grown here, between calls: reassigned inside the loop over pieces, they
        # would cost reference counting on every piece
        c, n, m, full = _scan_pieces(
            c,
            n,
            m,
            c_k,
            c_p,
            c_key,
            route_slot,
            cell_table,
            cell_spill,
            ev_geo,
            ev_span,
            prims,
            vx,
            vy,
            cur_p,
            has_pos,
            px,
            py,
            mark,
            here,
            o_ev,
            o_r,
            o_p,
            o_d,
            o_t,
            o_q,
            i_r,
            i_p,
            i_e,
        )
        if c == total:
            break
        if full == _FULL_CELL:
            here = np.empty(2 * len(here), np.int64)
        elif full == _FULL_ROWS:
            cap *= 2
            o_ev, o_r, o_p = _grow(o_ev, cap), _grow(o_r, cap), _grow(o_p, cap)
            o_d, o_t, o_q = _grow(o_d, cap), _grow(o_t, cap), _grow(o_q, cap)
        else:
            icap *= 2
            i_r, i_p, i_e = _grow(i_r, icap), _grow(i_p, icap), _grow(i_e, icap)
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


_FULL_CELL, _FULL_ROWS, _FULL_INSIDE = 1, 2, 3


@numba.njit(cache=True, nogil=True)
def _scan_pieces(
    c: int,
    n: int,
    m: int,
    c_k: Array,
    c_p: Array,
    c_key: Array,
    route_slot: Array,
    cell_table: Array,
    cell_spill: Array,
    ev_geo: Array,
    ev_span: Array,
    prims: Array,
    vx: Array,
    vy: Array,
    cur_p: Array,
    has_pos: Array,
    px: Array,
    py: Array,
    mark: Array,
    here: Array,
    o_ev: Array,
    o_r: Array,
    o_p: Array,
    o_d: Array,
    o_t: Array,
    o_q: Array,
    i_r: Array,
    i_p: Array,
    i_e: Array,
) -> tuple[int, int, int, int]:
    """``scan_route_cells`` from piece ``c`` (``n`` rows and ``m`` inside candidates written):
    returns where it stopped, the counts, and what was too small to go on (0 when done). A cell
    is taken whole or not at all: it stops before one whose events do not all fit."""
    total = len(c_key)
    h = 0
    start = c
    while c < total:
        if c + _AHEAD < total:  # the cell table's rows are at random places of a large table
            prefetch(cell_table, cell_home(cell_table, c_key[c + _AHEAD]))
        k, p, key = c_k[c], c_p[c], c_key[c]
        if c == start or key != c_key[c - 1]:  # the cell of the piece before is often this one's
            h = cell_bucket(cell_table, key)
        if cell_table[h, 0] != key:
            c += 1
            continue  # no event there
        held = cell_table[h, 1]
        for w in range(held):
            here[w] = cell_table[h, 2 + w]
        sp = cell_table[h, OVER]
        while sp >= 0:  # the cell's events beyond those held inline
            if held == len(here):
                return c, n, m, _FULL_CELL
            here[held] = cell_spill[sp, 0]
            held += 1
            sp = cell_spill[sp, 1]
        if n + held > len(o_ev):
            return c, n, m, _FULL_ROWS
        if m + held > len(i_r):
            return c, n, m, _FULL_INSIDE
        r = route_slot[k]
        ax = vx[p]
        ay = vy[p]
        if p == cur_p[r] and has_pos[r]:
            ax = px[r]
            ay = py[r]
        bx = vx[p + 1]
        by = vy[p + 1]
        for w in range(held):
            e = here[w]
            if mark[e, 0] == p:
                continue  # met in another cell of this segment
            mark[e, 0] = p
            if mark[e, 1] == k:
                continue  # matched on an earlier segment of this route: that one is first
            x0, y0, x1, y1, limit = (
                ev_geo[e, 0],
                ev_geo[e, 1],
                ev_geo[e, 2],
                ev_geo[e, 3],
                ev_geo[e, 4],
            )
            if ev_span[e, 2] and x0 <= ax <= x1 and y0 <= ay <= y1:
                i_r[m], i_p[m], i_e[m] = r, p, e
                m += 1
            if min(ax, bx) > x1 + limit or max(ax, bx) < x0 - limit:
                continue  # the event's primitives all lie within its box
            if min(ay, by) > y1 + limit or max(ay, by) < y0 - limit:
                continue
            d2, t, q = nearest_primitive(ax, ay, bx, by, prims, ev_span[e, 0], ev_span[e, 1], limit)
            if not d2 <= limit * limit:
                continue
            mark[e, 1] = k
            o_ev[n], o_r[n], o_p[n], o_d[n], o_t[n], o_q[n] = e, r, p, math.sqrt(d2), t, q
            n += 1
        c += 1
    return c, n, m, 0


@numba.njit(cache=True, nogil=True)
def _piece_cells(
    route_slot: Array, seg_lo: Array, seg_hi: Array, piece_m: float, cell_m: float, vx: Array, vy: Array
) -> tuple[Array, Array, Array]:
    """The event-grid cells of the routes' segment pieces, in route and segment order, each cell
    once per segment (route index, segment, cell key): computed before any cell is looked up, so
    that the lookups can be fetched ahead. Pieces are cut from the vertices (not the vehicle), as
    the events were filed for."""
    size = 0  # pieces in all: the most cells there can be (sized once, not grown in the loop)
    for k in range(len(route_slot)):
        for p in range(seg_lo[k], seg_hi[k]):
            size += max(1, int(math.ceil(math.hypot(vx[p + 1] - vx[p], vy[p + 1] - vy[p]) / piece_m)))
    c_k = np.empty(size, np.int64)
    c_p = np.empty(size, np.int64)
    c_key = np.empty(size, np.int64)
    n = 0
    for k in range(len(route_slot)):
        for p in range(seg_lo[k], seg_hi[k]):
            sx, sy, ex, ey = vx[p], vy[p], vx[p + 1], vy[p + 1]
            count = max(1, int(math.ceil(math.hypot(ex - sx, ey - sy) / piece_m)))
            last = np.int64(-1)
            for piece in range(count):
                frac = (piece + 0.5) / count
                ix = np.int64(math.floor((sx + frac * (ex - sx)) / cell_m)) + OFF
                iy = np.int64(math.floor((sy + frac * (ey - sy)) / cell_m)) + OFF
                key = (ix << 32) | iy
                if key == last:
                    continue  # the piece before is in the same cell
                last = key
                c_k[n], c_p[n], c_key[n] = k, p, key
                n += 1
    return c_k[:n], c_p[:n], c_key[:n]
