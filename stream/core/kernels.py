"""Compiled inner loops shared by the join (numba): exact distances between a route segment and
an event's primitives, the even-odd inside test, and the grid's own filing, removal and pool
writes. The scans themselves are ``eventscan`` (a batch of events) and ``routescan`` (a batch of
routes). Compiled code is cached next to this module (``cache=True``), so a process pays the
compilation once per machine, not once per start.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from stream.core.prefetch import prefetch, prefetch_write

Array = np.ndarray[Any, Any]


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _point_segment2(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> tuple[float, float]:
    """Squared distance from P to segment AB, and the parameter on AB of the closest point. No
    branch (the divisor is never 0: no check for it either), so that loops over many segments
    vectorise."""
    rx = bx - ax
    ry = by - ay
    rr = rx * rx + ry * ry
    t = ((px - ax) * rx + (py - ay) * ry) / (rr if rr > 0.0 else 1.0)
    t = min(1.0, max(0.0, t))
    dx = ax + t * rx - px
    dy = ay + t * ry - py
    return dx * dx + dy * dy, t


@numba.njit(cache=True, nogil=True, inline="always")
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


_BLOCK = 16  # blocks.BLOCK: vertices per entry of the route map
_AHEAD = 16  # iterations a loop over cells fetches ahead


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
def move_slices(
    ap: Array, aq: Array, starts: Array, counts: Array, to_ap: Array, to_aq: Array, to: Array
) -> None:
    """Copy the arena slices ``starts[i] .. starts[i] + counts[i]`` of ``ap``/``aq`` to ``to[i]``
    of ``to_ap``/``to_aq`` (the same arena when no destination overlaps a source): slice by
    slice, in sequence, rather than gathering every entry through an index array."""
    for i in range(len(starts)):
        s, d = starts[i], to[i]
        for j in range(counts[i]):
            to_ap[d + j] = ap[s + j]
            to_aq[d + j, 0] = aq[s + j, 0]
            to_aq[d + j, 1] = aq[s + j, 1]
            to_aq[d + j, 2] = aq[s + j, 2]
            to_aq[d + j, 3] = aq[s + j, 3]


@numba.njit(cache=True, nogil=True)
def fill_pool(x: Array, y: Array, counts: Array, starts: Array, pool: Array) -> None:
    """Write polylines concatenated in ``x``, ``y`` (``counts`` vertices each) to the vertex
    pool (rows x, y, distance along) at ``starts``."""
    i = 0
    for k in range(len(counts)):
        d = starts[k]
        s = 0.0
        for j in range(counts[k]):
            if j:
                s += math.hypot(x[i] - x[i - 1], y[i] - y[i - 1])
            pool[d + j, 0] = x[i]
            pool[d + j, 1] = y[i]
            pool[d + j, 2] = s
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
    cslice: Array,
    ccap: Array,
    ap: Array,
    aq: Array,
) -> Array:
    """File pieces (segment ``p``, midpoint ``mx, my``, half extent ``hx, hy``) in the free room
    of their cells (``rows``, at column ``ix``, row ``iy`` from the grid origin ``ox, oy``), their
    endpoints quantised from the cell's corner. Returns the pieces whose cell had no room left."""
    over = np.empty(len(rows), np.int64)
    m = 0
    n = len(rows)
    for i in range(n):
        if i + 2 * _AHEAD < n:  # cells are at random places: their slices, then their free room
            far = rows[i + 2 * _AHEAD]
            prefetch(cslice, far)
            prefetch(ccap, far)
        if i + _AHEAD < n:
            near = rows[i + _AHEAD]
            prefetch_write(ap, cslice[near, 0] + cslice[near, 1])
            prefetch_write(aq, cslice[near, 0] + cslice[near, 1])
        row = rows[i]
        k = cslice[row, 1]
        if k >= ccap[row]:
            over[m] = i
            m += 1
            continue
        j = cslice[row, 0] + k
        cslice[row, 1] = k + 1
        ap[j] = p[i]
        cx = mx[i] - (ox + ix[i] * cell_m)
        cy = my[i] - (oy + iy[i] * cell_m)
        aq[j, 0] = math.floor((cx - hx[i]) / quantum + 0.5)
        aq[j, 1] = math.floor((cy - hy[i]) / quantum + 0.5)
        aq[j, 2] = math.floor((cx + hx[i]) / quantum + 0.5)
        aq[j, 3] = math.floor((cy + hy[i]) / quantum + 0.5)
    return over[:m]


@numba.njit(cache=True, nogil=True)
def drop_entries(rows: Array, cslice: Array, ap: Array, aq: Array, dying: Array) -> None:
    """Take out of cells ``rows`` (sorted, repeats allowed) the arena entries of segments in blocks
    marked in ``dying`` (one byte per block of the route map: routes being removed); a cell's last
    entry fills each hole."""
    last = -1
    n = len(rows)
    for k in range(n):
        if k + 2 * _AHEAD < n:  # cells are at random places: their slices, then their entries
            prefetch(cslice, rows[k + 2 * _AHEAD])
        if k + _AHEAD < n:
            at = cslice[rows[k + _AHEAD], 0]
            prefetch(ap, at)
            prefetch(aq, at)
            prefetch(aq, at + 8)
        row = rows[k]
        if row == last:
            continue
        last = row
        i = cslice[row, 0]
        end = i + cslice[row, 1]
        while i < end:
            if dying[ap[i] // _BLOCK]:
                end -= 1
                ap[i] = ap[end]
                aq[i, 0], aq[i, 1], aq[i, 2], aq[i, 3] = aq[end, 0], aq[end, 1], aq[end, 2], aq[end, 3]
            else:
                i += 1
        cslice[row, 1] = end - cslice[row, 0]


@numba.njit(cache=True, nogil=True)
def _grow(arr: Array, cap: int) -> Array:
    out = np.empty(cap, arr.dtype)
    out[: len(arr)] = arr
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _fetch_columns(
    box: Array,
    cell_m: float,
    off: int,
    shift: int,
    window: Array,
    tx0: int,
    ty0: int,
    flat: Array,
    cslice: Array,
    slices: bool,
) -> None:
    """Ask for the memory ``box_slices_kernel`` reads for each column of a box: where its first
    row lies in the tile directory (``flat``: the tiles' rows end to end), or (``slices``) the
    arena slice of the cell it names."""
    ix0 = int(math.floor(box[0] / cell_m))
    ix1 = int(math.floor(box[2] / cell_m))
    iy = int(math.floor(box[1] / cell_m)) + off
    mask = (1 << shift) - 1
    for cx in range(ix0, ix1 + 1):
        ix = cx + off
        tid = window[(ix >> shift) - tx0, (iy >> shift) - ty0]
        if tid < 0:
            continue
        at = (tid << (2 * shift)) + ((ix & mask) << shift) + (iy & mask)
        if not slices:
            prefetch(flat, at)
            continue
        row = flat[at]
        if row >= 0:
            prefetch(cslice, row)


@numba.njit(cache=True, nogil=True)
def box_slices_kernel(
    rel: Array,
    cell_m: float,
    off: int,
    shift: int,
    window: Array,
    tx0: int,
    ty0: int,
    tiles: Array,
    cslice: Array,
) -> tuple[Array, Array, Array, Array, Array]:
    """Per existing cell under each box (``rel``: boxes from the grid's origin), in box order and
    by column then row within a box: the box, the cell's arena slice (start, count), its column
    and row. ``window`` holds the tile index of each tile of the boxes' window (rows of
    ``tiles``, -1 for none), ``tx0``/``ty0`` its first tile; ``off`` is the grid's cell offset."""
    n = 0
    for b in range(len(rel)):
        nx = int(math.floor(rel[b, 2] / cell_m)) - int(math.floor(rel[b, 0] / cell_m)) + 1
        ny = int(math.floor(rel[b, 3] / cell_m)) - int(math.floor(rel[b, 1] / cell_m)) + 1
        n += max(0, nx) * max(0, ny)
    o_b = np.empty(n, np.int64)
    o_s = np.empty(n, np.int64)
    o_c = np.empty(n, np.int64)
    o_x = np.empty(n, np.int64)
    o_y = np.empty(n, np.int64)
    m = 0
    flat = tiles.reshape(-1)
    mask = (1 << shift) - 1
    nbox = len(rel)
    for b in range(nbox):
        # fetch ahead: the tile entries of the columns of the box after next, then the cell
        # slices of the next box's columns (their rows are read from the tiles fetched before)
        if b + 2 < nbox:
            _fetch_columns(rel[b + 2], cell_m, off, shift, window, tx0, ty0, flat, cslice, False)
        if b + 1 < nbox:
            _fetch_columns(rel[b + 1], cell_m, off, shift, window, tx0, ty0, flat, cslice, True)
        ix0 = int(math.floor(rel[b, 0] / cell_m))
        iy0 = int(math.floor(rel[b, 1] / cell_m))
        ix1 = int(math.floor(rel[b, 2] / cell_m))
        iy1 = int(math.floor(rel[b, 3] / cell_m))
        for cx in range(ix0, ix1 + 1):
            ix = cx + off
            wx = (ix >> shift) - tx0
            for cy in range(iy0, iy1 + 1):
                iy = cy + off
                tid = window[wx, (iy >> shift) - ty0]
                if tid < 0:
                    continue
                row = tiles[tid, ((ix & mask) << shift) + (iy & mask)]
                if row < 0:
                    continue
                o_b[m], o_s[m], o_c[m], o_x[m], o_y[m] = b, cslice[row, 0], cslice[row, 1], cx, cy
                m += 1
    return o_b[:m], o_s[:m], o_c[:m], o_x[:m], o_y[:m]


@numba.njit(cache=True, nogil=True)
def cut_pieces(
    x: Array,
    y: Array,
    offsets: Array,
    counts: Array,
    pool_starts: Array,
    piece_m: float,
    ox: float,
    oy: float,
    cell_m: float,
    off: int,
) -> tuple[Array, Array, Array, Array, Array, Array, Array, Array]:
    """The pieces of at most ``piece_m`` of polylines (polyline ``k``: ``counts[k]`` vertices of
    ``x``, ``y`` from ``offsets[k]``; in the pool from ``pool_starts[k]``): for each piece, its
    segment (pool index of its first vertex), midpoint, half extent (x, y) and grid cell (column
    and row from the origin ``ox, oy``, plus ``off``); and each polyline's length. Filing and
    removal both cut with this one function, so a removal finds every cell a filing chose."""
    lengths = np.empty(max(0, int(counts.sum()) - len(counts)), np.float64)  # per segment, in order
    size = 0
    at = 0
    for k in range(len(counts)):
        for j in range(offsets[k], offsets[k] + counts[k] - 1):
            dx, dy = x[j + 1] - x[j], y[j + 1] - y[j]
            lengths[at] = math.sqrt(dx * dx + dy * dy)
            size += max(1, int(math.ceil(lengths[at] / piece_m)))
            at += 1
    o_p = np.empty(size, np.int64)
    o_mx = np.empty(size, np.float64)
    o_my = np.empty(size, np.float64)
    o_hx = np.empty(size, np.float64)
    o_hy = np.empty(size, np.float64)
    o_ix = np.empty(size, np.int64)
    o_iy = np.empty(size, np.int64)
    total = np.zeros(len(counts), np.float64)
    n = 0
    at = 0
    for k in range(len(counts)):
        first = offsets[k]
        for j in range(first, first + counts[k] - 1):
            ax, ay = x[j], y[j]
            dx, dy = x[j + 1] - ax, y[j + 1] - ay
            length = lengths[at]
            at += 1
            total[k] += length
            count = max(1, int(math.ceil(length / piece_m)))
            half = 0.5 / count
            for piece in range(count):
                frac = (piece + 0.5) / count
                mx = ax + frac * dx
                my = ay + frac * dy
                o_p[n] = pool_starts[k] + j - first
                o_mx[n], o_my[n], o_hx[n], o_hy[n] = mx, my, half * dx, half * dy
                o_ix[n] = int(math.floor((mx - ox) / cell_m)) + off
                o_iy[n] = int(math.floor((my - oy) / cell_m)) + off
                n += 1
    return o_p, o_mx, o_my, o_hx, o_hy, o_ix, o_iy, total
