"""Passes 2 and 3 of the event scan (``stream.core.eventscan``): the first segment ahead of each
vehicle, and its measures.

2. First segments: per (event, route), the first candidate segment ahead of the vehicle (unsure
   ones and the vehicle's own segment measured exactly from the pool first).
3. Measures: the kept segments, measured exactly against all their event's primitives, with the
   distance ahead of the vehicle: gathered to columns first (the loop that waits on memory), then
   measured without a branch against an event of one primitive (the compiler vectorises it).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from stream.core.kernels import _inside_rings, _point_segment2, nearest_primitive
from stream.core.prefetch import AHEAD, prefetch

Array = np.ndarray[Any, Any]
_BLOCK = 16  # blocks.BLOCK: vertices per entry of the route map
_LOW = 0xFFFFFFFF


@numba.njit(cache=True, nogil=True)
def firsts(
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
    o_r = np.empty(m, np.int64)  # one row per candidate at most
    o_p = np.empty(m, np.int64)
    o_b = np.empty(m, np.int64)
    n = 0
    # per route: the event group that last kept a row for it (high bits) and that row (low bits)
    seen = np.full(len(cur_p), -1, np.int64)
    group = -1
    last_ev = -1
    for i in range(m):
        if i + AHEAD < m:
            prefetch(block_route, c_p[i + AHEAD] // _BLOCK)
        if i + AHEAD // 2 < m:
            soon = block_route[c_p[i + AHEAD // 2] // _BLOCK]
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
        seen[r] = (group << 32) | n
        o_r[n], o_p[n], o_b[n] = r, p, b
        n += 1
    return o_r[:n], o_p[:n], o_b[:n]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def measures(
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
    """Pass 3: the kept segments measured exactly against all their event's primitives.

    The segments are first gathered to columns (the vertices are at random places of the pool:
    this loop waits on memory, and does nothing else), then measured box by box: against an
    event of one primitive (a point or a segment, most rows) in one loop without a branch, which
    the compiler vectorises; against several (an area), one row at a time."""
    n = len(o_r)
    o_ev = np.empty(n, np.int64)
    o_d = np.empty(n, np.float64)
    o_t = np.empty(n, np.float64)
    o_q = np.empty(n, np.int64)
    o_a = np.empty(n, np.float64)
    seg = np.empty((6, n))
    sax, say, sbx, sby, s_s, s_base = seg[0], seg[1], seg[2], seg[3], seg[4], seg[5]
    for i in range(n):
        if i + AHEAD < n:
            # the segment's first and last bytes (x at p, y at p + 1): both lines when it spans two
            prefetch(vx, o_p[i + AHEAD])
            prefetch(vy, o_p[i + AHEAD] + 1)
            prefetch(cur_p, o_r[i + AHEAD])
            prefetch(has_pos, o_r[i + AHEAD])
            prefetch(base_s, o_r[i + AHEAD])
        r, p = o_r[i], o_p[i]
        ax = vx[p]
        ay = vy[p]
        s0 = vs[p]
        if p == cur_p[r] and has_pos[r]:
            ax = px[r]
            ay = py[r]
            s0 = base_s[r]
        sax[i], say[i], sbx[i], sby[i] = ax, ay, vx[p + 1], vy[p + 1]
        s_s[i] = s0
        s_base[i] = base_s[r]
        o_ev[i] = box_ev[o_b[i]]
    i = 0
    while i < n:  # runs of rows found by the same box
        b = o_b[i]
        j = i + 1
        while j < n and o_b[j] == b:
            j += 1
        lo, hi = box_elo[b], box_ehi[b]
        limit = thr[box_ev[b]]
        if hi - lo == 1 and not box_inside[b]:
            c = prims[lo]
            one_primitive(sax, say, sbx, sby, c[0], c[1], c[2], c[3], limit, i, j, o_d, o_t)
            o_q[i:j] = lo
        else:
            for k in range(i, j):
                ax, ay, bx, by = sax[k], say[k], sbx[k], sby[k]
                if (
                    box_inside[b]
                    and box_bbox[b, 0] <= ax <= box_bbox[b, 2]
                    and box_bbox[b, 1] <= ay <= box_bbox[b, 3]
                    and _inside_rings(ax, ay, prims, lo, hi)
                ):
                    o_d[k], o_t[k], o_q[k] = 0.0, 0.0, lo
                else:
                    d2, t, q = nearest_primitive(ax, ay, bx, by, prims, lo, hi, limit)
                    o_d[k], o_t[k], o_q[k] = math.sqrt(d2), t, q
        i = j
    for i in range(n):
        ax, ay, bx, by = sax[i], say[i], sbx[i], sby[i]
        length = math.sqrt((bx - ax) * (bx - ax) + (by - ay) * (by - ay))  # as matching.decide
        o_a[i] = max(0.0, s_s[i] + o_t[i] * length - s_base[i])
    return o_ev, o_r, o_p, o_d, o_t, o_q, o_a


@numba.njit(cache=True, nogil=True, error_model="numpy")
def one_primitive(
    sax: Array,
    say: Array,
    sbx: Array,
    sby: Array,
    cx: float,
    cy: float,
    dx: float,
    dy: float,
    limit: float,
    i0: int,
    i1: int,
    o_d: Array,
    o_t: Array,
) -> None:
    """Segments ``i0 .. i1`` of the columns against primitive CD: ``nearest_primitive``'s distance
    (not squared) and parameter, with the same arithmetic, every choice made by selection rather
    than by a branch (both sides computed), so that the compiler vectorises the loop."""
    if cx == dx and cy == dy:  # a point
        for i in range(i0, i1):
            ax, ay, bx, by = sax[i], say[i], sbx[i], sby[i]
            far = (min(ax, bx) > cx + limit) | (max(ax, bx) < cx - limit)
            far |= (min(ay, by) > cy + limit) | (max(ay, by) < cy - limit)
            d2, t = _point_segment2(cx, cy, ax, ay, bx, by)
            o_d[i] = np.inf if far else math.sqrt(d2)
            o_t[i] = 0.0 if far else t
        return
    sx = dx - cx
    sy = dy - cy
    for i in range(i0, i1):  # a segment: ``kernels.segment_distance2``
        ax, ay, bx, by = sax[i], say[i], sbx[i], sby[i]
        far = (min(ax, bx) > max(cx, dx) + limit) | (max(ax, bx) < min(cx, dx) - limit)
        far |= (min(ay, by) > max(cy, dy) + limit) | (max(ay, by) < min(cy, dy) - limit)
        rx = bx - ax
        ry = by - ay
        den = rx * sy - ry * sx
        qx, qy = cx - ax, cy - ay
        u = (qx * sy - qy * sx) / den  # inf or nan when parallel: then not crossing
        v = (qx * ry - qy * rx) / den
        cross = (den != 0.0) & (0.0 <= u) & (u <= 1.0) & (0.0 <= v) & (v <= 1.0)
        dist, t = _point_segment2(cx, cy, ax, ay, bx, by)
        d2, t2 = _point_segment2(dx, dy, ax, ay, bx, by)
        t = t2 if d2 < dist else t
        dist = min(d2, dist)
        d2 = _point_segment2(ax, ay, cx, cy, dx, dy)[0]
        t = 0.0 if d2 < dist else t
        dist = min(d2, dist)
        d2 = _point_segment2(bx, by, cx, cy, dx, dy)[0]
        t = 1.0 if d2 < dist else t
        dist = min(d2, dist)
        o_d[i] = np.inf if far else (0.0 if cross else math.sqrt(dist))
        o_t[i] = 0.0 if far else (u if cross else t)
