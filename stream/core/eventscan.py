"""The event side of the join, compiled: a batch of events against the route segments of the grid
cells under their query boxes.

Three passes, each over a flat list, each fetching ahead the memory its next iterations read
(``prefetch``): the grid cells are at random places of a large arena, the routes and vertices at
random places of their arrays, and waiting for each in turn cost more than all the arithmetic.

1. Candidates: each cell's entries are tested against the box and measured on their quantised
   piece (``aq``, centimetres from the cell's corner, sequential bytes). A piece clearly inside
   the corridor is a sure candidate, one within ``PREFILTER_SLACK`` of its edge is to be measured
   exactly; in an area tested with its rings, a piece far from every edge is inside or outside
   as its quantised start is, which settles it without the vertex pool.
2. First segments: per (event, route), the first candidate segment ahead of the vehicle (unsure
   ones and the vehicle's own segment measured exactly from the pool first).
3. Measures: the kept segments, measured exactly against all their event's primitives, with the
   distance ahead of the vehicle.

Compiled code is cached next to this module (``cache=True``).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from stream.core.kernels import _grow, _inside_rings, _point_segment2, nearest_primitive, segment_distance2
from stream.core.prefetch import prefetch

Array = np.ndarray[Any, Any]
PREFILTER_SLACK = 0.02  # metres: a quantised piece lies within 0.71 cm of the true one
_BLOCK = 16  # grid.BLOCK: vertices per entry of the route map
_AHEAD = 8  # iterations a pass fetches ahead
_UNIT = 0.01  # metres per quantum (grid.QUANTUM)
_LOW = 0xFFFFFFFF


@numba.njit(cache=True, nogil=True)
def scan_cells(
    pair_box: Array,
    pair_row: Array,
    box_ev: Array,
    box_lo: Array,
    box_hi: Array,
    box_rel: Array,
    box_inside: Array,
    box_bbox: Array,
    box_elo: Array,
    box_ehi: Array,
    prims: Array,
    thr: Array,
    origin: Array,
    cell_m: float,
    cix: Array,
    ciy: Array,
    cstart: Array,
    ccount: Array,
    ap: Array,
    aq: Array,
    block_route: Array,
    vx: Array,
    vy: Array,
    vs: Array,
    cur_p: Array,
    has_pos: Array,
    px: Array,
    py: Array,
    base_s: Array,
    reach: float,
) -> tuple[Array, Array, Array, Array, Array, Array, Array]:
    """Per (event, route), the first segment ahead of the vehicle within the event's corridor.

    ``pair_box``/``pair_row`` list the grid cells of each query box, grouped by event
    (``box_ev``: the event of each box, as its slot); a box pairs its candidates with primitives
    ``box_lo .. box_hi`` of ``prims`` (its event's are ``box_elo .. box_ehi``). ``box_rel`` holds
    the boxes relative to the grid ``origin``; a box with ``box_inside`` also matches segments that
    start inside its event's rings (bounding box ``box_bbox``), at distance 0. Returns the columns
    event slot, route slot, segment, distance, parameter on the segment, primitive, and the
    distance ahead of the vehicle (``vs``: distance along the route at each vertex, ``base_s``:
    the vehicle's).
    """
    c_p, c_k, c_x = _candidates(
        pair_box,
        pair_row,
        box_ev,
        box_lo,
        box_hi,
        box_rel,
        box_inside,
        box_bbox,
        prims,
        thr,
        origin,
        cell_m,
        cix,
        ciy,
        cstart,
        ccount,
        ap,
        aq,
        reach,
    )
    o_r, o_p, o_b = _firsts(
        c_p,
        c_k,
        c_x,
        pair_box,
        box_ev,
        box_lo,
        box_hi,
        box_inside,
        box_bbox,
        prims,
        thr,
        block_route,
        vx,
        vy,
        cur_p,
        has_pos,
        px,
        py,
    )
    return _measures(
        o_r,
        o_p,
        o_b,
        box_ev,
        box_inside,
        box_bbox,
        box_elo,
        box_ehi,
        prims,
        thr,
        vx,
        vy,
        vs,
        cur_p,
        has_pos,
        px,
        py,
        base_s,
    )


@numba.njit(cache=True, nogil=True)
def _candidates(
    pair_box: Array,
    pair_row: Array,
    box_ev: Array,
    box_lo: Array,
    box_hi: Array,
    box_rel: Array,
    box_inside: Array,
    box_bbox: Array,
    prims: Array,
    thr: Array,
    origin: Array,
    cell_m: float,
    cix: Array,
    ciy: Array,
    cstart: Array,
    ccount: Array,
    ap: Array,
    aq: Array,
    reach: float,
) -> tuple[Array, Array, Array]:
    """Pass 1: the segments whose quantised piece comes within the corridor of the primitives of a
    box (``c_p``), the (box, cell) pair that found each (``c_k``) and whether it must be measured
    exactly (``c_x``)."""
    npair = len(pair_box)
    cap = 4096
    c_p = np.empty(cap, np.int64)
    c_k = np.empty(cap, np.int64)
    c_x = np.empty(cap, np.bool_)
    m = 0
    half_q = _UNIT / 2
    for k in range(npair):
        if k + 2 * _AHEAD < npair:  # the cell after next: where its entries are
            far = pair_row[k + 2 * _AHEAD]
            prefetch(cstart, far)
            prefetch(ccount, far)
            prefetch(cix, far)
            prefetch(ciy, far)
        if k + _AHEAD < npair:  # the next cells: their entries (three cache lines hold 24)
            near = pair_row[k + _AHEAD]
            at = cstart[near]
            prefetch(aq, at)
            prefetch(aq, at + 8)
            prefetch(ap, at)
            if ccount[near] > 16:
                prefetch(aq, at + 16)
        b = pair_box[k]
        e = box_ev[b]
        row = pair_row[k]
        rx = cix[row] * cell_m
        ry = ciy[row] * cell_m
        cornx = origin[0] + rx
        corny = origin[1] + ry
        # the box in units of half a quantum from the corner: compared with a piece's end sums
        lo2x = (box_rel[b, 0] - rx) / half_q
        lo2y = (box_rel[b, 1] - ry) / half_q
        hi2x = (box_rel[b, 2] - rx) / half_q
        hi2y = (box_rel[b, 3] - ry) / half_q
        limit = thr[e]
        pre = limit + PREFILTER_SLACK
        pre2 = pre * pre
        sure = limit - PREFILTER_SLACK
        sure2 = sure * sure if sure > 0.0 else -1.0
        lo = box_lo[b]
        hi = box_hi[b]
        rings = box_inside[b]
        # the event's bounding box shrunk by the slack: a quantised start in it is in the true one
        bx0 = box_bbox[b, 0] - cornx + PREFILTER_SLACK
        by0 = box_bbox[b, 1] - corny + PREFILTER_SLACK
        bx1 = box_bbox[b, 2] - cornx - PREFILTER_SLACK
        by1 = box_bbox[b, 3] - corny - PREFILTER_SLACK
        if hi - lo == 1 and not rings:  # skip a cell whose pieces cannot reach the primitive
            cx = prims[lo, 0] - cornx
            cy = prims[lo, 1] - corny
            dx = prims[lo, 2] - cornx
            dy = prims[lo, 3] - corny
            half = cell_m / 2
            if cx == dx and cy == dy:  # a point: its exact distance to the cell
                ox = max(0.0, max(-cx, cx - cell_m))
                oy = max(0.0, max(-cy, cy - cell_m))
                gap = ox * ox + oy * oy
            else:  # a segment: from the cell's centre, less the half diagonal (a lower bound)
                d2, _ = _point_segment2(half, half, cx, cy, dx, dy)
                gap = max(0.0, math.sqrt(d2) - half * math.sqrt(2.0)) ** 2
            if gap > (pre + reach) ** 2:
                continue
        for j in range(cstart[row], cstart[row] + ccount[row]):
            q0 = np.float64(aq[j, 0])
            q1 = np.float64(aq[j, 1])
            q2 = np.float64(aq[j, 2])
            q3 = np.float64(aq[j, 3])
            mid = q0 + q2
            if mid < lo2x or mid > hi2x:
                continue
            mid = q1 + q3
            if mid < lo2y or mid > hi2y:
                continue
            sx, sy, ex, ey = q0 * _UNIT, q1 * _UNIT, q2 * _UNIT, q3 * _UNIT
            best = np.inf
            for q in range(lo, hi):
                cx = prims[q, 0] - cornx
                cy = prims[q, 1] - corny
                dx = prims[q, 2] - cornx
                dy = prims[q, 3] - corny
                if min(sx, ex) > max(cx, dx) + pre or max(sx, ex) < min(cx, dx) - pre:
                    continue
                if min(sy, ey) > max(cy, dy) + pre or max(sy, ey) < min(cy, dy) - pre:
                    continue
                d2, _ = segment_distance2(sx, sy, ex, ey, cx, cy, dx, dy)
                if d2 < best:
                    best = d2
                    if d2 <= sure2:
                        break
            if best <= pre2:
                exact = best > sure2
            elif rings and bx0 <= sx <= bx1 and by0 <= sy <= by1:
                # farther than the corridor from every edge: the true piece is inside the rings
                # (the segment is at distance 0) exactly when its quantised start is
                if not _inside_rings(sx + cornx, sy + corny, prims, lo, hi):
                    continue
                exact = False
            else:
                continue
            if m == cap:
                cap *= 2
                c_p, c_k, c_x = _grow(c_p, cap), _grow(c_k, cap), _grow(c_x, cap)
            c_p[m], c_k[m], c_x[m] = ap[j], k, exact
            m += 1
    return c_p[:m], c_k[:m], c_x[:m]


@numba.njit(cache=True, nogil=True)
def _firsts(
    c_p: Array,
    c_k: Array,
    c_x: Array,
    pair_box: Array,
    box_ev: Array,
    box_lo: Array,
    box_hi: Array,
    box_inside: Array,
    box_bbox: Array,
    prims: Array,
    thr: Array,
    block_route: Array,
    vx: Array,
    vy: Array,
    cur_p: Array,
    has_pos: Array,
    px: Array,
    py: Array,
) -> tuple[Array, Array, Array]:
    """Pass 2: per (event, route), the first candidate segment ahead of the vehicle (route slot,
    segment, box)."""
    m = len(c_p)
    cap = 1024
    o_r = np.empty(cap, np.int64)
    o_p = np.empty(cap, np.int64)
    o_b = np.empty(cap, np.int64)
    n = 0
    # per route: the event group that last kept a row for it (high bits) and that row (low bits)
    seen = np.full(len(cur_p), -1, np.int64)
    group = -1
    last_ev = -1
    for i in range(m):
        if i + _AHEAD < m:
            prefetch(block_route, c_p[i + _AHEAD] // _BLOCK)
        if i + _AHEAD // 2 < m:
            soon = block_route[c_p[i + _AHEAD // 2] // _BLOCK]
            if soon >= 0:
                prefetch(cur_p, soon)
                prefetch(seen, soon)
        b = pair_box[c_k[i]]
        e = box_ev[b]
        if e != last_ev:
            last_ev = e
            group += 1
        p = c_p[i]
        r = block_route[p // _BLOCK]
        if r < 0 or p < cur_p[r]:
            continue
        s = seen[r]
        mine = (s >> 32) == group
        if mine and p >= o_p[s & _LOW]:
            continue  # this segment, or one nearer the vehicle, already matched this event
        clipped = p == cur_p[r] and has_pos[r]
        if c_x[i] or clipped:
            ax = vx[p]
            ay = vy[p]
            if clipped:
                ax = px[r]
                ay = py[r]
            bx = vx[p + 1]
            by = vy[p + 1]
            lo = box_lo[b]
            hi = box_hi[b]
            inside = (
                box_inside[b]
                and box_bbox[b, 0] <= ax <= box_bbox[b, 2]
                and box_bbox[b, 1] <= ay <= box_bbox[b, 3]
                and _inside_rings(ax, ay, prims, lo, hi)
            )
            if not inside:
                limit = thr[e]
                d2, _, _ = nearest_primitive(ax, ay, bx, by, prims, lo, hi, limit)
                if not d2 <= limit * limit:
                    continue
        if mine:
            w = s & _LOW
            o_p[w] = p
            o_b[w] = b
            continue
        if n == cap:
            cap *= 2
            o_r, o_p, o_b = _grow(o_r, cap), _grow(o_p, cap), _grow(o_b, cap)
        seen[r] = (group << 32) | n
        o_r[n], o_p[n], o_b[n] = r, p, b
        n += 1
    return o_r[:n], o_p[:n], o_b[:n]


@numba.njit(cache=True, nogil=True)
def _measures(
    o_r: Array,
    o_p: Array,
    o_b: Array,
    box_ev: Array,
    box_inside: Array,
    box_bbox: Array,
    box_elo: Array,
    box_ehi: Array,
    prims: Array,
    thr: Array,
    vx: Array,
    vy: Array,
    vs: Array,
    cur_p: Array,
    has_pos: Array,
    px: Array,
    py: Array,
    base_s: Array,
) -> tuple[Array, Array, Array, Array, Array, Array, Array]:
    """Pass 3: the kept segments measured exactly against all their event's primitives."""
    n = len(o_r)
    o_ev = np.empty(n, np.int64)
    o_d = np.empty(n, np.float64)
    o_t = np.empty(n, np.float64)
    o_q = np.empty(n, np.int64)
    o_a = np.empty(n, np.float64)
    for i in range(n):
        if i + _AHEAD < n:
            prefetch(vx, o_p[i + _AHEAD])
            prefetch(vs, o_p[i + _AHEAD])
            prefetch(cur_p, o_r[i + _AHEAD])
            prefetch(has_pos, o_r[i + _AHEAD])
            prefetch(base_s, o_r[i + _AHEAD])
        r, p, b = o_r[i], o_p[i], o_b[i]
        lo, hi = box_elo[b], box_ehi[b]
        ax = vx[p]
        ay = vy[p]
        s0 = vs[p]
        if p == cur_p[r] and has_pos[r]:
            ax = px[r]
            ay = py[r]
            s0 = base_s[r]
        bx = vx[p + 1]
        by = vy[p + 1]
        o_ev[i] = box_ev[b]
        if (
            box_inside[b]
            and box_bbox[b, 0] <= ax <= box_bbox[b, 2]
            and box_bbox[b, 1] <= ay <= box_bbox[b, 3]
            and _inside_rings(ax, ay, prims, lo, hi)
        ):
            o_d[i], o_t[i], o_q[i] = 0.0, 0.0, lo
        else:
            d2, t, q = nearest_primitive(ax, ay, bx, by, prims, lo, hi, thr[box_ev[b]])
            o_d[i], o_t[i], o_q[i] = math.sqrt(d2), t, q
        o_a[i] = max(0.0, s0 + o_t[i] * math.hypot(bx - ax, by - ay) - base_s[r])
    return o_ev, o_r, o_p, o_d, o_t, o_q, o_a
