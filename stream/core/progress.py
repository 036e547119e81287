"""Route progress and the speed model: where the vehicle is along its route, and when it gets on.

A position is snapped to the nearest segment at or after the one the vehicle was last on (it
never goes back); from then on only the route ahead of that point counts. The vehicle is expected
``ahead / speed`` seconds after its last position (or after ``depart_at``, or after it was
registered), at the route's planned speed (length over ``arrive_by - depart_at``) when it has
one, else at the configured speed.
"""

from __future__ import annotations

import numpy as np

from schemas import Route
from stream.core.distance import point_segment
from stream.core.grid import SegmentGrid
from stream.core.tables import RouteTable

MIN_SPEED, MAX_SPEED = 1.0, 40.0  # m/s bounds on a planned speed


def travel_speed(route: Route, length_m: float, default_kmh: float) -> float:
    """Metres per second along the route."""
    if route.depart_at is not None and route.arrive_by is not None:
        seconds = (route.arrive_by - route.depart_at).total_seconds()
        if seconds > 0:
            return min(MAX_SPEED, max(MIN_SPEED, length_m / seconds))
    return default_kmh / 3.6


def snap(grid: SegmentGrid, table: RouteTable, slot: int, n: int, x: float, y: float, when: float) -> None:
    """Move a route's vehicle to the point of the route ahead nearest to metric (x, y)."""
    start = int(table.start[slot])
    first = int(table.cur_p[slot])
    p = np.arange(first, start + n - 1)
    ax, ay, bx, by = grid.vx[p], grid.vy[p], grid.vx[p + 1], grid.vy[p + 1]
    dist, t = point_segment(np.full(len(p), x), np.full(len(p), y), ax, ay, bx, by)
    i = int(np.argmin(dist))
    if t[i] >= 1.0 and i + 1 < len(p):  # at a vertex: stand at the start of the next segment
        i += 1
        t[i] = 0.0
    seg = int(p[i])
    s = float(grid.vs[seg] + t[i] * np.hypot(bx[i] - ax[i], by[i] - ay[i]))
    if bool(table.has_pos[slot]) and seg == first and s < float(table.base_s[slot]):
        table.base_t[slot] = when
        return
    table.cur_p[slot] = seg
    table.px[slot] = ax[i] + t[i] * (bx[i] - ax[i])
    table.py[slot] = ay[i] + t[i] * (by[i] - ay[i])
    table.base_s[slot] = s
    table.base_t[slot] = when
    table.has_pos[slot] = True
