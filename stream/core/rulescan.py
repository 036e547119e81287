"""The rules of ``matching.decide`` over a batch of pairs in one compiled pass.

For each (event, route) pair, with its first segment ahead and its closest point: not passed
already, crossed in the event's direction (a one-way event), valid when the vehicle gets there
(validity window; NaN is an open bound) and applying to the vehicle (an event with conditions
applies to a vehicle over a limit, of a listed Crit'Air class, or carrying dangerous goods when
it bans them; an unknown value counts as over a known limit, to be warned about). A pair reads a
few values of its event's and its route's rows; with numpy each rule was a dozen passes over the
batch's columns. Weekly schedules are left to ``rules.in_schedule`` (they need the local
calendar), for the pairs the kernel lets through.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from stream.core.prefetch import prefetch
from stream.core.tables import EventTable, RouteTable

Array = np.ndarray[Any, Any]
PASSED_TOLERANCE_M = 0.5  # an event nearest to the vehicle itself, further than this, is behind
_AHEAD = 16
_NO_POOL = np.zeros(2)[::2]  # strided like the vertex pool's views: one compiled version serves both


def rule_mask(
    routes: RouteTable,
    events: EventTable,
    ev: Array,
    r: Array,
    ahead: Array,
    when: tuple[float, bool],
    geometry: tuple[Array, Array, Array, Array, Array, Array, Array] | None = None,
) -> tuple[Array, Array]:
    """Which pairs pass the rules but schedules, and when each vehicle is expected at its event.

    ``geometry`` is ``(p, t, dist, q, prims, vx, vy)`` for pairs found geometrically (segment,
    parameter and distance of the closest point, primitive in ``prims``, the vertex pool): they are
    also tested for having been passed and for direction. Without it (port calls), only time and
    vehicle count.
    """
    at, at_only = when
    n = len(ev)
    if geometry is None:
        zeros = np.zeros(n, dtype=np.int64)
        p, t, dist, q = zeros, np.zeros(n), np.zeros(n), zeros
        prims, vx, vy, spatial = np.zeros((1, 4)), _NO_POOL, _NO_POOL, False
    else:
        p, t, dist, q, prims, vx, vy = geometry
        spatial = True
    return _rules(
        np.ascontiguousarray(ev, dtype=np.int64),
        np.ascontiguousarray(r, dtype=np.int64),
        np.ascontiguousarray(ahead, dtype=np.float64),
        np.ascontiguousarray(p, dtype=np.int64),
        np.ascontiguousarray(t, dtype=np.float64),
        np.ascontiguousarray(dist, dtype=np.float64),
        np.ascontiguousarray(q, dtype=np.int64),
        prims,
        vx,
        vy,
        spatial,
        routes.cur_p,
        routes.has_pos,
        routes.px,
        routes.py,
        routes.base_t,
        routes.speed,
        routes.w,
        routes.h,
        routes.wd,
        routes.ln,
        routes.crit,
        routes.hazmat,
        events.forward,
        events.vf,
        events.vu,
        events.has_cond,
        events.max_w,
        events.max_h,
        events.max_wd,
        events.max_l,
        events.crit_mask,
        events.hazmat,
        float(at),
        bool(at_only),
    )


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _exceeds(value: float, limit: float) -> bool:
    """A vehicle value over an event's limit; an unknown value is taken as over a known limit
    (it is warned about, never exempted); no limit is never exceeded."""
    if math.isnan(limit):
        return False
    return math.isnan(value) or value > limit


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rules(
    ev: Array,
    r: Array,
    ahead: Array,
    p: Array,
    t: Array,
    dist: Array,
    q: Array,
    prims: Array,
    vx: Array,
    vy: Array,
    spatial: bool,
    cur_p: Array,
    has_pos: Array,
    px: Array,
    py: Array,
    base_t: Array,
    speed: Array,
    w: Array,
    h: Array,
    wd: Array,
    ln: Array,
    crit: Array,
    v_hazmat: Array,
    forward: Array,
    vf: Array,
    vu: Array,
    has_cond: Array,
    max_w: Array,
    max_h: Array,
    max_wd: Array,
    max_l: Array,
    crit_mask: Array,
    e_hazmat: Array,
    at: float,
    at_only: bool,
) -> tuple[Array, Array]:
    n = len(ev)
    ok = np.empty(n, np.bool_)
    expected = np.empty(n, np.float64)
    for i in range(n):
        if i + _AHEAD < n:  # routes are at random rows: start reading the coming ones
            soon = r[i + _AHEAD]
            prefetch(base_t, soon)
            prefetch(speed, soon)
            prefetch(cur_p, soon)
            prefetch(has_pos, soon)
        e = ev[i]
        v = r[i]
        good = True
        if spatial:
            clipped = has_pos[v] and p[i] == cur_p[v]
            if clipped and t[i] == 0.0 and dist[i] > PASSED_TOLERANCE_M:
                good = False  # nearest to the vehicle itself: it is past the event
            elif forward[e]:
                k = q[i]
                cx, cy, dx, dy = prims[k, 0], prims[k, 1], prims[k, 2], prims[k, 3]
                if not (cx == dx and cy == dy):  # a point has no direction
                    seg = p[i]
                    ax = px[v] if clipped else vx[seg]
                    ay = py[v] if clipped else vy[seg]
                    dot = (vx[seg + 1] - ax) * (dx - cx) + (vy[seg + 1] - ay) * (dy - cy)
                    good = dot > 0.0
        x = max(at, base_t[v] + ahead[i] / speed[v])
        expected[i] = x
        if good:
            moment = at if at_only else x
            good = (math.isnan(vf[e]) or vf[e] <= moment) and (math.isnan(vu[e]) or moment < vu[e])
        if good and has_cond[e]:
            code = crit[v]
            mask = crit_mask[e]
            good = (
                _exceeds(w[v], max_w[e])
                or _exceeds(h[v], max_h[e])
                or _exceeds(wd[v], max_wd[e])
                or _exceeds(ln[v], max_l[e])
                or (code >= 0 and (mask >> code) & 1 == 1)
                or (code < 0 and mask != 0)
                or (e_hazmat[e] and v_hazmat[v])
            )
        ok[i] = good
    return ok, expected
