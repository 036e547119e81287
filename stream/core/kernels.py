"""Compiled inner loops of the join (numba): the event-side scan of grid cells, and the grid's
own filing, removal and pool writes.

The scan reads each grid entry once, checks it against its query box and measures it on its
quantised piece; only the candidates near the corridor's edge, on the vehicle's segment or tested
for being inside an area are read from the vertex pool and measured exactly, and only the first
segment of each route within the corridor is kept (the rows ``matching.first_rows`` would pick).
Compiled code is cached next to this module (``cache=True``), so a process pays the compilation
once per machine, not once per start.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

Array = np.ndarray[Any, Any]


@numba.njit(cache=True, nogil=True, inline="always")
def _point_segment2(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> tuple[float, float]:
    """Squared distance from P to segment AB, and the parameter on AB of the closest point."""
    rx = bx - ax
    ry = by - ay
    rr = rx * rx + ry * ry
    t = ((px - ax) * rx + (py - ay) * ry) / (rr if rr > 0.0 else 1.0)
    t = min(1.0, max(0.0, t))
    dx = ax + t * rx - px
    dy = ay + t * ry - py
    return dx * dx + dy * dy, t


@numba.njit(cache=True, nogil=True)
def segment_distance2(
    ax: float, ay: float, bx: float, by: float, cx: float, cy: float, dx: float, dy: float
) -> tuple[float, float]:
    """Squared distance between segment AB and primitive CD (a point when C == D), and the
    parameter on AB of AB's closest point. Crossing segments are at distance 0, as in
    ``distance.segment_segment``, with the same choice among equally close points."""
    if cx == dx and cy == dy:
        return _point_segment2(cx, cy, ax, ay, bx, by)
    rx, ry, sx, sy = bx - ax, by - ay, dx - cx, dy - cy
    den = rx * sy - ry * sx
    if den != 0.0:
        qx, qy = cx - ax, cy - ay
        u = (qx * sy - qy * sx) / den
        v = (qx * ry - qy * rx) / den
        if 0.0 <= u <= 1.0 and 0.0 <= v <= 1.0:
            return 0.0, u
    dist, t = _point_segment2(cx, cy, ax, ay, bx, by)
    d2, t2 = _point_segment2(dx, dy, ax, ay, bx, by)
    if d2 < dist:
        dist, t = d2, t2
    da, _ = _point_segment2(ax, ay, cx, cy, dx, dy)
    if da < dist:
        dist, t = da, 0.0
    db, _ = _point_segment2(bx, by, cx, cy, dx, dy)
    if db < dist:
        dist, t = db, 1.0
    return dist, t


PREFILTER_SLACK = 0.02  # metres: a quantised piece lies within 0.71 cm of the true one
_BLOCK = 16  # grid.BLOCK: vertices per entry of the route map


@numba.njit(cache=True, nogil=True, inline="always")
def _inside_rings(x: float, y: float, prims: Array, lo: int, hi: int) -> bool:
    """Even-odd test of a point against the ring edges ``prims[lo:hi]`` (holes and several
    polygons included)."""
    inside = False
    for q in range(lo, hi):
        cy, dy = prims[q, 1], prims[q, 3]
        if (cy > y) != (dy > y):
            cx, dx = prims[q, 0], prims[q, 2]
            if x < cx + (y - cy) * (dx - cx) / (dy - cy):
                inside = not inside
    return inside


@numba.njit(cache=True, nogil=True, inline="always")
def nearest_primitive(
    ax: float, ay: float, bx: float, by: float, prims: Array, lo: int, hi: int, limit: float
) -> tuple[float, float, int]:
    """Squared distance from segment AB to the nearest of ``prims[lo:hi]`` within ``limit`` (inf
    if none), the parameter on AB of its closest point, and that primitive. Among equally near
    primitives (a segment crossing several edges of an area) the closest point nearest A wins:
    where the route first meets the event."""
    best = np.inf
    best_t = 0.0
    best_q = lo
    for q in range(lo, hi):
        cx, cy, dx, dy = prims[q, 0], prims[q, 1], prims[q, 2], prims[q, 3]
        if min(ax, bx) > max(cx, dx) + limit or max(ax, bx) < min(cx, dx) - limit:
            continue
        if min(ay, by) > max(cy, dy) + limit or max(ay, by) < min(cy, dy) - limit:
            continue
        d2, t = segment_distance2(ax, ay, bx, by, cx, cy, dx, dy)
        if d2 < best or (d2 == best and t < best_t):
            best, best_t, best_q = d2, t, q
    return best, best_t, best_q


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
    start inside its event's rings (bounding box ``box_bbox``), at distance 0.

    Two passes: the candidates under each box are measured on their quantised piece (``aq``,
    centimetres from the cell's corner), sequential bytes; those near the corridor are then looked
    up (route, vehicle), one clearly inside it taken as it is, one within ``PREFILTER_SLACK`` of its
    edge (or on the vehicle's segment, or to be tested for being inside) measured exactly first.
    Only the first segment of each (event, route) is kept, then measured exactly against all its
    event's primitives. Returns the columns event slot, route slot, segment, distance, parameter
    on the segment, primitive, and the distance ahead of the vehicle (``vs``: distance along the
    route at each vertex, ``base_s``: the vehicle's).
    """
    cap = 1024
    o_r = np.empty(cap, np.int64)
    o_p = np.empty(cap, np.int64)
    o_b = np.empty(cap, np.int64)
    n = 0
    stamp = np.full(len(cur_p), -1, np.int64)
    where = np.zeros(len(cur_p), np.int64)
    ncap = 4096
    c_j = np.empty(ncap, np.int64)
    c_k = np.empty(ncap, np.int64)
    c_x = np.empty(ncap, np.bool_)
    m = 0
    unit = 0.01  # metres per quantum (grid.QUANTUM)
    for k in range(len(pair_box)):  # first: the candidates near on their quantised piece
        b = pair_box[k]
        e = box_ev[b]
        row = pair_row[k]
        rx = cix[row] * cell_m
        ry = ciy[row] * cell_m
        cornx = origin[0] + rx
        corny = origin[1] + ry
        # the box in units of half a quantum from the corner: compared with a piece's end sums
        lo2x = (box_rel[b, 0] - rx) / (unit / 2)
        lo2y = (box_rel[b, 1] - ry) / (unit / 2)
        hi2x = (box_rel[b, 2] - rx) / (unit / 2)
        hi2y = (box_rel[b, 3] - ry) / (unit / 2)
        limit = thr[e]
        pre = limit + PREFILTER_SLACK
        pre2 = pre * pre
        sure = limit - PREFILTER_SLACK
        sure2 = sure * sure if sure > 0.0 else -1.0
        lo = box_lo[b]
        hi = box_hi[b]
        inside_test = box_inside[b]
        bx0 = box_bbox[b, 0] - cornx - PREFILTER_SLACK
        by0 = box_bbox[b, 1] - corny - PREFILTER_SLACK
        bx1 = box_bbox[b, 2] - cornx + PREFILTER_SLACK
        by1 = box_bbox[b, 3] - corny + PREFILTER_SLACK
        if hi - lo == 1 and not inside_test:  # skip a cell whose pieces cannot reach the primitive
            cx = prims[lo, 0] - cornx
            cy = prims[lo, 1] - corny
            dx = prims[lo, 2] - cornx
            dy = prims[lo, 3] - corny
            half = cell_m / 2
            if cx == dx and cy == dy:  # a point: its exact distance to the cell
                ox = max(0.0, max(-cx, cx - cell_m))
                oy = max(0.0, max(-cy, cy - cell_m))
                far = ox * ox + oy * oy
            else:  # a segment: from the cell's centre, less the half diagonal (a lower bound)
                d2, _ = _point_segment2(half, half, cx, cy, dx, dy)
                far = max(0.0, math.sqrt(d2) - half * math.sqrt(2.0)) ** 2
            if far > (pre + reach) ** 2:
                continue
        for j in range(cstart[row], cstart[row] + ccount[row]):
            q0 = np.float64(aq[j, 0])
            q1 = np.float64(aq[j, 1])
            q2 = np.float64(aq[j, 2])
            q3 = np.float64(aq[j, 3])
            m2 = q0 + q2
            if m2 < lo2x or m2 > hi2x:
                continue
            m2 = q1 + q3
            if m2 < lo2y or m2 > hi2y:
                continue
            sx, sy, ex, ey = q0 * unit, q1 * unit, q2 * unit, q3 * unit
            exact = inside_test and bx0 <= sx <= bx1 and by0 <= sy <= by1
            if not exact:
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
                if not best <= pre2:
                    continue
                exact = best > sure2
            if m == ncap:
                ncap *= 2
                c_j, c_k, c_x = _grow(c_j, ncap), _grow(c_k, ncap), _grow(c_x, ncap)
            c_j[m], c_k[m], c_x[m] = j, k, exact
            m += 1
    group = -1
    last_ev = -1
    for i in range(m):  # then: ahead of the vehicle, first of its route, exactly near if unsure
        k = c_k[i]
        b = pair_box[k]
        e = box_ev[b]
        if e != last_ev:
            last_ev = e
            group += 1
        p = ap[c_j[i]]
        r = block_route[p // _BLOCK]
        if r < 0 or p < cur_p[r]:
            continue
        if stamp[r] == group and p >= o_p[where[r]]:
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
        if stamp[r] == group:
            w = where[r]
            o_p[w] = p
            o_b[w] = b
            continue
        if n == cap:
            cap *= 2
            o_r, o_p, o_b = _grow(o_r, cap), _grow(o_p, cap), _grow(o_b, cap)
        stamp[r] = group
        where[r] = n
        o_r[n], o_p[n], o_b[n] = r, p, b
        n += 1
    o_ev = np.empty(n, np.int64)
    o_d = np.empty(n, np.float64)
    o_t = np.empty(n, np.float64)
    o_q = np.empty(n, np.int64)
    o_a = np.empty(n, np.float64)
    for i in range(n):  # the kept segments, measured exactly against all their event's primitives
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
    return o_ev, o_r[:n], o_p[:n], o_d, o_t, o_q, o_a


@numba.njit(cache=True, nogil=True)
def fill_pool(x: Array, y: Array, counts: Array, starts: Array, vxy: Array, vs: Array) -> None:
    """Write polylines concatenated in ``x``, ``y`` (``counts`` vertices each) to the vertex
    pool at ``starts``, with the distance along each at every vertex."""
    i = 0
    for k in range(len(counts)):
        d = starts[k]
        s = 0.0
        for j in range(counts[k]):
            if j:
                s += math.hypot(x[i] - x[i - 1], y[i] - y[i - 1])
            vxy[d + j] = complex(x[i], y[i])
            vs[d + j] = s
            i += 1


@numba.njit(cache=True, nogil=True)
def file_entries(
    rows: Array,
    p: Array,
    mx: Array,
    my: Array,
    hx: Array,
    hy: Array,
    ix: Array,
    iy: Array,
    ox: float,
    oy: float,
    cell_m: float,
    quantum: float,
    cstart: Array,
    ccount: Array,
    ccap: Array,
    ap: Array,
    aq: Array,
) -> Array:
    """File pieces (segment ``p``, midpoint ``mx, my``, half extent ``hx, hy``) in the free room
    of their cells (``rows``, at column ``ix``, row ``iy`` from the grid origin ``ox, oy``), their
    endpoints quantised from the cell's corner. Returns the pieces whose cell had no room left."""
    over = np.empty(len(rows), np.int64)
    m = 0
    for i in range(len(rows)):
        row = rows[i]
        k = ccount[row]
        if k >= ccap[row]:
            over[m] = i
            m += 1
            continue
        j = cstart[row] + k
        ccount[row] = k + 1
        ap[j] = p[i]
        cx = mx[i] - (ox + ix[i] * cell_m)
        cy = my[i] - (oy + iy[i] * cell_m)
        aq[j, 0] = math.floor((cx - hx[i]) / quantum + 0.5)
        aq[j, 1] = math.floor((cy - hy[i]) / quantum + 0.5)
        aq[j, 2] = math.floor((cx + hx[i]) / quantum + 0.5)
        aq[j, 3] = math.floor((cy + hy[i]) / quantum + 0.5)
    return over[:m]


@numba.njit(cache=True, nogil=True)
def drop_entries(rows: Array, cstart: Array, ccount: Array, ap: Array, aq: Array, dying: Array) -> None:
    """Take out of cells ``rows`` (sorted, repeats allowed) the arena entries of segments in blocks
    marked in ``dying`` (one byte per block of the route map: routes being removed); a cell's last
    entry fills each hole."""
    last = -1
    for row in rows:
        if row == last:
            continue
        last = row
        i = cstart[row]
        end = i + ccount[row]
        while i < end:
            if dying[ap[i] // _BLOCK]:
                end -= 1
                ap[i] = ap[end]
                aq[i, 0], aq[i, 1], aq[i, 2], aq[i, 3] = aq[end, 0], aq[end, 1], aq[end, 2], aq[end, 3]
            else:
                i += 1
        ccount[row] = end - cstart[row]


@numba.njit(cache=True, nogil=True)
def _grow(arr: Array, cap: int) -> Array:
    out = np.empty(cap, arr.dtype)
    out[: len(arr)] = arr
    return out
