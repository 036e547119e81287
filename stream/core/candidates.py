"""Pass 1 of the event scan (``stream.core.eventscan``): the candidate route pieces of each
query box's grid cells.

Each cell's entries are tested against the box and measured on their quantised piece (``aq``,
centimetres from the cell's corner, sequential bytes). A piece clearly inside the corridor is a
sure candidate, one within ``PREFILTER_SLACK`` of its edge is to be measured exactly. A box of one
point or one segment (most events) is measured without a branch per entry: each entry is written
as a candidate and the count advances only for those that are. A segment's cells are first
copied, entry by entry, to staging columns, then measured in one loop over all of them, which the
compiler vectorises (a cell holds about 12 entries, too few for a vectorised loop of its own); for
a point, the copy costs more than it saves. An area tested with its rings measures a cell's
entries against the edges that can reach the cell only; a piece far from every edge is inside or
outside as its quantised start is, and a cell far from every edge is settled whole by its centre,
without the vertex pool.

The loops over a cell's entries for one point or a cell inside an area are inlined into the pass
(no call per cell: ~0.2 ms of a 1,000-event batch at 100k routes); an area's cell, tested in
columns, is not (inlined, it made the pass slower).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from stream.core.kernels import _inside_rings, _point_segment2
from stream.core.prefetch import AHEAD, prefetch

Array = np.ndarray[Any, Any]
PREFILTER_SLACK = 0.02  # metres: a quantised piece lies within 0.71 cm of the true one
_UNIT = 0.01  # metres per quantum (grid.QUANTUM)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def candidates(
    pair_box: Array,
    pair_start: Array,
    pair_count: Array,
    pair_cx: Array,
    pair_cy: Array,
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
    ap: Array,
    aq: Array,
    reach: float,
) -> tuple[Array, Array, Array]:
    """Pass 1: the segments whose quantised piece comes within the corridor of the primitives of a
    box (``c_p``), the (box, cell) pair that found each (``c_k``) and whether it must be measured
    exactly (``c_x``). A box of one point or one segment, the most common, is measured without a
    branch per entry (each entry is written, the count advances for the candidates); an area's
    box measures each cell's entries against the edges that can reach that cell only."""
    npair = len(pair_box)
    most = 0  # entries of the fullest cell: the room an area's cell needs for its columns
    total = 0  # entries of all cells: each gives at most one candidate
    run = 0
    most_box = 0  # entries of the fullest box: the room a segment's cells need to be staged
    for k in range(npair):
        most = max(most, pair_count[k])
        total += pair_count[k]
        if k and pair_box[k] != pair_box[k - 1]:
            run = 0
        run += pair_count[k]
        most_box = max(most_box, run)
    staged = np.empty((8, most_box))
    st_in = np.empty(most_box, np.bool_)
    st_p = np.empty(most_box, np.int64)
    st_k = np.empty(most_box, np.int64)
    st_d = np.empty(most_box)
    n_st = 0
    st_bounds = (0.0, 0.0)
    # sized once: arrays reassigned inside the loop would cost reference counting per cell
    c_p = np.empty(total, np.int64)
    c_k = np.empty(total, np.int64)
    c_x = np.empty(total, np.bool_)
    edges = np.empty(len(prims), np.int64)
    columns = np.empty((6, most))
    inside = np.empty(most, np.bool_)
    pinv = np.empty(len(prims))  # per primitive: 1 / squared length, and dx / dy for ring tests
    slope = np.zeros(len(prims))
    for q in range(len(prims)):
        rx, ry = prims[q, 2] - prims[q, 0], prims[q, 3] - prims[q, 1]
        pinv[q] = _inverse_norm2(rx, ry)
        if ry != 0.0:
            slope[q] = rx / ry
    m = 0
    half_q = _UNIT / 2
    half = cell_m / 2
    for k in range(npair):
        if k + AHEAD < npair:  # the next cells: their entries (three cache lines hold 24)
            at = pair_start[k + AHEAD]
            prefetch(aq, at)
            prefetch(aq, at + 8)
            prefetch(ap, at)
            if pair_count[k + AHEAD] > 16:
                prefetch(aq, at + 16)
        b = pair_box[k]
        if n_st and b != pair_box[k - 1]:  # the segment before: its staged entries
            m = _flush_segment(staged, st_in, st_p, st_k, st_d, n_st, st_bounds, c_p, c_k, c_x, m)
            n_st = 0
        start = pair_start[k]
        count = pair_count[k]
        rx = pair_cx[k] * cell_m
        ry = pair_cy[k] * cell_m
        cornx = origin[0] + rx
        corny = origin[1] + ry
        # the box in units of half a quantum from the corner: compared with a piece's end sums
        box = (
            (box_rel[b, 0] - rx) / half_q,
            (box_rel[b, 1] - ry) / half_q,
            (box_rel[b, 2] - rx) / half_q,
            (box_rel[b, 3] - ry) / half_q,
        )
        limit = thr[box_ev[b]]
        pre = limit + PREFILTER_SLACK
        sure = limit - PREFILTER_SLACK
        bounds = (pre * pre, sure * sure if sure > 0.0 else -1.0)
        lo = box_lo[b]
        hi = box_hi[b]
        if box_inside[b]:
            # the edges that a piece filed in this cell can come within the corridor of: farther
            # from the cell's centre than the corridor, a piece's reach and the half diagonal,
            # an edge is farther than the corridor from every piece of the cell
            grow = pre + reach + 0.1
            rad = grow + half * math.sqrt(2.0)
            n_edges = 0
            for q in range(lo, hi):
                cx = prims[q, 0] - cornx
                cy = prims[q, 1] - corny
                dx = prims[q, 2] - cornx
                dy = prims[q, 3] - corny
                if min(cx, dx) > cell_m + grow or max(cx, dx) < -grow:
                    continue
                if min(cy, dy) > cell_m + grow or max(cy, dy) < -grow:
                    continue
                if _point_segment2(half, half, cx, cy, dx, dy)[0] <= rad * rad:
                    edges[n_edges] = q
                    n_edges += 1
            if n_edges == 0:  # the whole cell is inside the area or outside it, as its centre
                if _inside_rings(cornx + half, corny + half, prims, lo, hi):
                    m = _cell_inside(aq, ap, start, count, box, k, c_p, c_k, c_x, m)
                continue
            shrunk = (  # the event's bounding box shrunk by the slack
                box_bbox[b, 0] - cornx + PREFILTER_SLACK,
                box_bbox[b, 1] - corny + PREFILTER_SLACK,
                box_bbox[b, 2] - cornx - PREFILTER_SLACK,
                box_bbox[b, 3] - corny - PREFILTER_SLACK,
            )
            m = _cell_rings(
                aq,
                ap,
                start,
                count,
                box,
                bounds,
                prims,
                pinv,
                slope,
                lo,
                hi,
                edges[:n_edges],
                cornx,
                corny,
                shrunk,
                k,
                c_p,
                c_k,
                c_x,
                m,
                columns,
                inside,
            )
            continue
        if hi - lo > 1:
            m = _cell_primitives(
                aq, ap, start, count, box, bounds, pre, prims, pinv, lo, hi, cornx, corny, k, c_p, c_k, c_x, m
            )
            continue
        cx = prims[lo, 0] - cornx
        cy = prims[lo, 1] - corny
        dx = prims[lo, 2] - cornx
        dy = prims[lo, 3] - corny
        if cx == dx and cy == dy:  # a point: its exact distance to the cell
            ox = max(0.0, max(-cx, cx - cell_m))
            oy = max(0.0, max(-cy, cy - cell_m))
            gap = ox * ox + oy * oy
        else:  # a segment: from the cell's centre, less the half diagonal (a lower bound)
            d2 = _point_segment2(half, half, cx, cy, dx, dy)[0]
            gap = max(0.0, math.sqrt(d2) - half * math.sqrt(2.0)) ** 2
        if gap > (pre + reach) ** 2:  # no piece of the cell can reach the primitive
            continue
        if cx == dx and cy == dy:
            m = _cell_point(aq, ap, start, count, box, bounds, cx, cy, k, c_p, c_k, c_x, m)
        else:
            st_bounds = bounds
            n_st = _stage(aq, ap, start, count, box, cx, cy, dx, dy, k, staged, st_in, st_p, st_k, n_st)
    if n_st:
        m = _flush_segment(staged, st_in, st_p, st_k, st_d, n_st, st_bounds, c_p, c_k, c_x, m)
    return c_p[:m], c_k[:m], c_x[:m]


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _stage(
    aq: Array,
    ap: Array,
    start: int,
    count: int,
    box: tuple[float, float, float, float],
    cx: float,
    cy: float,
    dx: float,
    dy: float,
    k: int,
    staged: Array,
    st_in: Array,
    st_p: Array,
    st_k: Array,
    n: int,
) -> int:
    """Copy a cell's entries, with the segment from the cell's corner, to the staging columns."""
    for j in range(start, start + count):
        q0, q1, q2, q3 = _entry(aq, j)
        staged[0, n] = q0 * _UNIT
        staged[1, n] = q1 * _UNIT
        staged[2, n] = q2 * _UNIT
        staged[3, n] = q3 * _UNIT
        staged[4, n] = cx
        staged[5, n] = cy
        staged[6, n] = dx
        staged[7, n] = dy
        st_in[n] = _in_box(q0, q1, q2, q3, box)
        st_p[n] = ap[j]
        st_k[n] = k
        n += 1
    return n


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _flush_segment(
    staged: Array,
    st_in: Array,
    st_p: Array,
    st_k: Array,
    st_d: Array,
    n: int,
    bounds: tuple[float, float],
    c_p: Array,
    c_k: Array,
    c_x: Array,
    m: int,
) -> int:
    """The staged entries of one segment's cells measured in one loop (which the compiler
    vectorises), then written as candidates in order."""
    sx, sy, ex, ey = staged[0], staged[1], staged[2], staged[3]
    cx, cy, dx, dy = staged[4], staged[5], staged[6], staged[7]
    for i in range(n):
        inv_cd = _inverse_norm2(dx[i] - cx[i], dy[i] - cy[i])
        inv_ab = _inverse_norm2(ex[i] - sx[i], ey[i] - sy[i])
        st_d[i] = _segment_d2(sx[i], sy[i], ex[i], ey[i], inv_ab, cx[i], cy[i], dx[i], dy[i], inv_cd)
    pre2, sure2 = bounds
    for i in range(n):
        d2 = st_d[i]
        m = _keep(c_p, c_k, c_x, m, st_p[i], st_k[i], d2 > sure2, st_in[i] & (d2 <= pre2))
    return m


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _inverse_norm2(rx: float, ry: float) -> float:
    """1 / |r|^2 (1 for a zero vector: a projection on a point is the point)."""
    rr = rx * rx + ry * ry
    return 1.0 / rr if rr > 0.0 else 1.0


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _end_d2(px: float, py: float, ax: float, ay: float, rx: float, ry: float, inv: float) -> float:
    """Squared distance from P to the segment from A along r (``inv``: 1 / |r|^2)."""
    t = min(1.0, max(0.0, ((px - ax) * rx + (py - ay) * ry) * inv))
    dx = ax + t * rx - px
    dy = ay + t * ry - py
    return dx * dx + dy * dy


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _segment_d2(
    ax: float,
    ay: float,
    bx: float,
    by: float,
    inv_ab: float,
    cx: float,
    cy: float,
    dx: float,
    dy: float,
    inv_cd: float,
) -> float:
    """Squared distance between segments AB and CD without a branch (``inv_ab``, ``inv_cd``: their
    inverse squared lengths): 0 if they cross, else the nearest of the four ends to the other
    segment; ``kernels.segment_distance2``'s value up to rounding, which the prefilter's slack
    covers."""
    rx = bx - ax
    ry = by - ay
    sx = dx - cx
    sy = dy - cy
    o1 = rx * (cy - ay) - ry * (cx - ax)
    o2 = rx * (dy - ay) - ry * (dx - ax)
    o3 = sx * (ay - cy) - sy * (ax - cx)
    o4 = sx * (by - cy) - sy * (bx - cx)
    ends = min(
        min(_end_d2(cx, cy, ax, ay, rx, ry, inv_ab), _end_d2(dx, dy, ax, ay, rx, ry, inv_ab)),
        min(_end_d2(ax, ay, cx, cy, sx, sy, inv_cd), _end_d2(bx, by, cx, cy, sx, sy, inv_cd)),
    )
    return 0.0 if (o1 * o2 < 0.0) & (o3 * o4 < 0.0) else ends


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _keep(c_p: Array, c_k: Array, c_x: Array, m: int, p: int, k: int, exact: bool, keep: bool) -> int:
    """Write candidate ``m`` (segment ``p`` found by pair ``k``) and count it if ``keep``: written
    whatever the test, a cell's loop has no branch on it (the caller left room for every entry)."""
    c_p[m] = p
    c_k[m] = k
    c_x[m] = exact
    return m + 1 if keep else m


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _entry(aq: Array, j: int) -> tuple[float, float, float, float]:
    """An arena entry's piece: start and end, in quanta from its cell's corner."""
    return np.float64(aq[j, 0]), np.float64(aq[j, 1]), np.float64(aq[j, 2]), np.float64(aq[j, 3])


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _in_box(q0: float, q1: float, q2: float, q3: float, box: tuple[float, float, float, float]) -> bool:
    """Whether a piece's midpoint (its end sums, in half quanta) lies in the box."""
    return (q0 + q2 >= box[0]) & (q0 + q2 <= box[2]) & (q1 + q3 >= box[1]) & (q1 + q3 <= box[3])


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _cell_point(
    aq: Array,
    ap: Array,
    start: int,
    count: int,
    box: tuple[float, float, float, float],
    bounds: tuple[float, float],
    cx: float,
    cy: float,
    k: int,
    c_p: Array,
    c_k: Array,
    c_x: Array,
    m: int,
) -> int:
    """A cell's entries against one point (``cx, cy`` from the cell's corner)."""
    pre2, sure2 = bounds
    for j in range(start, start + count):
        q0, q1, q2, q3 = _entry(aq, j)
        d2 = _point_segment2(cx, cy, q0 * _UNIT, q1 * _UNIT, q2 * _UNIT, q3 * _UNIT)[0]
        m = _keep(c_p, c_k, c_x, m, ap[j], k, d2 > sure2, _in_box(q0, q1, q2, q3, box) & (d2 <= pre2))
    return m


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _cell_inside(
    aq: Array,
    ap: Array,
    start: int,
    count: int,
    box: tuple[float, float, float, float],
    k: int,
    c_p: Array,
    c_k: Array,
    c_x: Array,
    m: int,
) -> int:
    """A cell inside an area, far from its edges: every piece in the box is a sure candidate."""
    for j in range(start, start + count):
        q0, q1, q2, q3 = _entry(aq, j)
        m = _keep(c_p, c_k, c_x, m, ap[j], k, False, _in_box(q0, q1, q2, q3, box))
    return m


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cell_rings(
    aq: Array,
    ap: Array,
    start: int,
    count: int,
    box: tuple[float, float, float, float],
    bounds: tuple[float, float],
    prims: Array,
    pinv: Array,
    slope: Array,
    lo: int,
    hi: int,
    edges: Array,
    cornx: float,
    corny: float,
    shrunk: tuple[float, float, float, float],
    k: int,
    c_p: Array,
    c_k: Array,
    c_x: Array,
    m: int,
    columns: Array,
    parity: Array,
) -> int:
    """A cell's entries against an area tested with its rings (``prims[lo:hi]``), measured on the
    ``edges`` near the cell: a piece within the corridor of one is a candidate; one farther from
    all of them is inside the rings or outside them, as its quantised start is.

    The entries are first copied to ``columns`` (start and end in metres, inverse squared
    length, nearest squared distance so far), so that each edge's distances and each ring edge's
    crossings are one loop over the cell without a branch, which the compiler vectorises;
    ``parity`` gathers the crossings. Then the candidates are written in entry order."""
    pre2, sure2 = bounds
    sx, sy, ex, ey, inv, best = columns[0], columns[1], columns[2], columns[3], columns[4], columns[5]
    for i in range(count):
        q0, q1, q2, q3 = _entry(aq, start + i)
        sx[i], sy[i], ex[i], ey[i] = q0 * _UNIT, q1 * _UNIT, q2 * _UNIT, q3 * _UNIT
        inv[i] = _inverse_norm2(ex[i] - sx[i], ey[i] - sy[i])
        best[i] = np.inf
        parity[i] = False
    for q in edges:
        cx = prims[q, 0] - cornx
        cy = prims[q, 1] - corny
        dx = prims[q, 2] - cornx
        dy = prims[q, 3] - corny
        inv_q = pinv[q]
        for i in range(count):
            best[i] = min(best[i], _segment_d2(sx[i], sy[i], ex[i], ey[i], inv[i], cx, cy, dx, dy, inv_q))
    for q in range(lo, hi):  # even-odd over the rings at each start (``kernels._inside_rings``)
        cx, cy, dy, sl = prims[q, 0], prims[q, 1], prims[q, 3], slope[q]
        for i in range(count):
            x = sx[i] + cornx
            y = sy[i] + corny
            parity[i] ^= ((cy > y) != (dy > y)) & (x < cx + (y - cy) * sl)
    for i in range(count):
        j = start + i
        q0, q1, q2, q3 = _entry(aq, j)
        # farther than the corridor from every edge, the true piece is inside the rings (the
        # segment is at distance 0) exactly when its quantised start is
        x, y = sx[i], sy[i]
        inside = parity[i] & (shrunk[0] <= x) & (x <= shrunk[2]) & (shrunk[1] <= y) & (y <= shrunk[3])
        near = best[i] <= pre2
        keep = bool(_in_box(q0, q1, q2, q3, box) & (near | inside))
        m = _keep(c_p, c_k, c_x, m, ap[j], k, near & (best[i] > sure2), keep)
    return m


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cell_primitives(
    aq: Array,
    ap: Array,
    start: int,
    count: int,
    box: tuple[float, float, float, float],
    bounds: tuple[float, float],
    pre: float,
    prims: Array,
    pinv: Array,
    lo: int,
    hi: int,
    cornx: float,
    corny: float,
    k: int,
    c_p: Array,
    c_k: Array,
    c_x: Array,
    m: int,
) -> int:
    """A cell's entries against several primitives (a compact line or multi-point event)."""
    pre2, sure2 = bounds
    for j in range(start, start + count):
        q0, q1, q2, q3 = _entry(aq, j)
        if not _in_box(q0, q1, q2, q3, box):
            continue
        sx, sy, ex, ey = q0 * _UNIT, q1 * _UNIT, q2 * _UNIT, q3 * _UNIT
        inv = _inverse_norm2(ex - sx, ey - sy)
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
            best = min(best, _segment_d2(sx, sy, ex, ey, inv, cx, cy, dx, dy, pinv[q]))
            if best <= sure2:
                break
        if best > pre2:
            continue
        m = _keep(c_p, c_k, c_x, m, ap[j], k, best > sure2, True)
    return m
