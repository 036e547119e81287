"""A dynamic grid of route segments: routes come and go without a rebuild, boxes are queried in bulk.

Vertices live in a pool (numpy arrays, one block per route, blocks reused by size class); a route's
segment ``p`` runs from vertex ``p`` to ``p + 1``. Each segment is filed in the grid cell of its
midpoint (a long segment once per piece of at most ``piece_m``), so a query box grown by
``corridor + piece_m / 2`` finds every segment within the corridor of what it covers. Cells are
slices of one arena array that grow by relocation; removed routes leave stale entries behind (their
vertices become NaN, so they never match) that are swept when their cell next grows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]
_OFF = 1 << 30  # keeps cell indices positive in the packed key
_SLACK = 0.1  # metres: float32 midpoints are compared with this much margin


def ragged(starts: Array, counts: Array) -> Array:
    """Concatenated ranges ``starts[i] .. starts[i] + counts[i]`` as one index array."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    shift = np.repeat(starts - (ends - counts), counts)
    out: Array = np.arange(total, dtype=np.int64) + shift
    return out


def pieces(x: Array, y: Array, lengths: Array, piece_m: float) -> tuple[Array, Array, Array]:
    """Midpoints of a polyline cut in pieces of at most ``piece_m``: (segment, x, y)."""
    count = np.maximum(1, np.ceil(lengths / piece_m).astype(np.int64))
    if len(count) and int(count.max()) == 1:
        seg = np.arange(len(lengths), dtype=np.int64)
        frac = np.full(len(lengths), 0.5)
    else:
        seg = np.repeat(np.arange(len(lengths), dtype=np.int64), count)
        first = np.repeat(np.cumsum(count) - count, count)
        frac = (np.arange(len(seg)) - first + 0.5) / count[seg]
    return seg, x[seg] + frac * (x[seg + 1] - x[seg]), y[seg] + frac * (y[seg + 1] - y[seg])


def _size_class(n: int) -> int:
    return 16 * -(-n // 16) if n <= 1024 else 1 << (n - 1).bit_length()


class SegmentGrid:
    """Route polylines (metric) in a vertex pool, their segments filed by grid cell."""

    def __init__(self, cell_m: float = 40.0, piece_m: float = 52.0) -> None:
        self.cell_m = cell_m
        self.piece_m = piece_m
        self.reach_m = piece_m / 2.0  # how far a filed midpoint can be from its segment's points
        self.origin: tuple[float, float] | None = None
        self.vx = np.full(1024, np.nan)
        self.vy = np.full(1024, np.nan)
        self.vs = np.zeros(1024)  # distance along the route at each vertex
        self.vroute = np.full(1024, -1, dtype=np.int64)  # route slot of segment p, -1 if none
        self._top = 0
        self._free: dict[int, list[int]] = {}
        self._rows: dict[int, int] = {}
        self._cstart = np.zeros(1024, dtype=np.int64)
        self._ccap = np.zeros(1024, dtype=np.int64)
        self._ccount = np.zeros(1024, dtype=np.int64)
        self._ncells = 0
        self._ap = np.zeros(8192, dtype=np.int64)
        self._amx = np.zeros(8192, dtype=np.float32)
        self._amy = np.zeros(8192, dtype=np.float32)
        self._atop = 0
        self._keys: Array | None = None
        self._keyrows: Array = np.zeros(0, dtype=np.int64)

    # -- vertex pool -------------------------------------------------------------------------
    def insert(self, route_slot: int, x: Array, y: Array) -> int:
        """File a route's polyline; returns the pool index of its first vertex."""
        n = len(x)
        cap = _size_class(n)
        free = self._free.get(cap)
        if free:
            start = free.pop()
        else:
            start = self._top
            self._top += cap
            self._grow_pool(self._top)
        if self.origin is None:
            self.origin = (float(np.floor(x[0])), float(np.floor(y[0])))
        end = start + n
        self.vx[start:end] = x
        self.vy[start:end] = y
        lengths = np.hypot(np.diff(x), np.diff(y))
        self.vs[start] = 0.0
        np.cumsum(lengths, out=self.vs[start + 1 : end])
        self.vroute[start : end - 1] = route_slot
        self._file(start, x, y, lengths)
        return start

    def remove(self, start: int, n: int) -> None:
        """Forget the route whose block starts at ``start`` (``n`` vertices)."""
        cap = _size_class(n)
        self.vx[start : start + cap] = np.nan
        self.vy[start : start + cap] = np.nan
        self.vroute[start : start + cap] = -1
        self._free.setdefault(cap, []).append(start)

    def _grow_pool(self, need: int) -> None:
        size = len(self.vx)
        if need <= size:
            return
        new = max(need, size * 2)
        for name, fill in (("vx", np.nan), ("vy", np.nan), ("vs", 0.0), ("vroute", -1)):
            old = getattr(self, name)
            arr = np.full(new, fill, dtype=old.dtype)
            arr[:size] = old
            setattr(self, name, arr)

    # -- cells -------------------------------------------------------------------------------
    def _cells(self, mx: Array, my: Array) -> Array:
        assert self.origin is not None  # noqa: S101 - set by the first insert
        ix = np.floor((mx - self.origin[0]) / self.cell_m).astype(np.int64) + _OFF
        iy = np.floor((my - self.origin[1]) / self.cell_m).astype(np.int64) + _OFF
        return (ix << 32) | iy

    def _file(self, start: int, x: Array, y: Array, lengths: Array) -> None:
        seg, mx, my = pieces(x, y, lengths, self.piece_m)
        self._add_entries(self._cells(mx, my), seg + start, mx, my)

    def _add_entries(self, keys: Array, p: Array, mx: Array, my: Array) -> None:
        assert self.origin is not None  # noqa: S101
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        uniq, first, counts = np.unique(keys, return_index=True, return_counts=True)
        rows = np.fromiter((self._row(k) for k in uniq.tolist()), dtype=np.int64, count=len(uniq))
        over = np.nonzero(self._ccount[rows] + counts > self._ccap[rows])[0]
        for i in over.tolist():
            self._make_room(int(rows[i]), int(counts[i]))
        base = self._cstart[rows] + self._ccount[rows]
        pos = np.repeat(base - first, counts) + np.arange(len(keys))
        self._ap[pos] = p[order]
        self._amx[pos] = (mx[order] - self.origin[0]).astype(np.float32)
        self._amy[pos] = (my[order] - self.origin[1]).astype(np.float32)
        self._ccount[rows] += counts

    def _row(self, key: int) -> int:
        row = self._rows.get(key)
        if row is not None:
            return row
        row = self._ncells
        self._ncells += 1
        if row >= len(self._cstart):
            for name in ("_cstart", "_ccap", "_ccount"):
                old = getattr(self, name)
                setattr(self, name, np.concatenate([old, np.zeros_like(old)]))
        self._cstart[row] = self._reserve(8)
        self._ccap[row] = 8
        self._rows[key] = row
        self._keys = None
        return row

    def _reserve(self, n: int) -> int:
        if self._atop + n > len(self._ap):
            live = int(self._ccount[: self._ncells].sum())
            if self._atop > 3 * live + 1_000_000:
                self._compact()
            if self._atop + n > len(self._ap):
                new = max(len(self._ap) * 2, self._atop + n)
                for name in ("_ap", "_amx", "_amy"):
                    old = getattr(self, name)
                    arr = np.zeros(new, dtype=old.dtype)
                    arr[: self._atop] = old[: self._atop]
                    setattr(self, name, arr)
        start = self._atop
        self._atop += n
        return start

    def _sweep(self, row: int) -> int:
        """Drop a cell's stale entries (their segment no longer passes through the midpoint)."""
        assert self.origin is not None  # noqa: S101
        s, c = int(self._cstart[row]), int(self._ccount[row])
        p = self._ap[s : s + c]
        mx = self._amx[s : s + c].astype(np.float64) + self.origin[0]
        my = self._amy[s : s + c].astype(np.float64) + self.origin[1]
        ax, ay, bx, by = self.vx[p], self.vy[p], self.vx[p + 1], self.vy[p + 1]
        cross = np.abs((bx - ax) * (my - ay) - (by - ay) * (mx - ax))
        inside = (np.minimum(ax, bx) - 1 <= mx) & (mx <= np.maximum(ax, bx) + 1)
        inside &= (np.minimum(ay, by) - 1 <= my) & (my <= np.maximum(ay, by) + 1)
        keep = (self.vroute[p] >= 0) & inside & (cross <= np.hypot(bx - ax, by - ay) + 1e-9)
        kept = int(keep.sum())
        if kept < c:
            for arr in (self._ap, self._amx, self._amy):
                arr[s : s + kept] = arr[s : s + c][keep]
            self._ccount[row] = kept
        return kept

    def _make_room(self, row: int, incoming: int) -> None:
        live = self._sweep(row)
        if live + incoming <= self._ccap[row]:
            return
        cap = 1 << (2 * (live + incoming) - 1).bit_length()
        new = self._reserve(cap)
        s = int(self._cstart[row])  # read after _reserve: it may have compacted the arena
        for arr in (self._ap, self._amx, self._amy):
            arr[new : new + live] = arr[s : s + live]
        self._cstart[row] = new
        self._ccap[row] = cap

    def _compact(self) -> None:
        n = self._ncells
        counts = self._ccount[:n]
        caps = np.maximum(8, counts * 2)
        starts = np.cumsum(caps) - caps
        src = ragged(self._cstart[:n], counts)
        dst = ragged(starts, counts)
        for name in ("_ap", "_amx", "_amy"):
            old = getattr(self, name)
            arr = np.zeros(max(len(old), int(caps.sum()) * 2), dtype=old.dtype)
            arr[dst] = old[src]
            setattr(self, name, arr)
        self._cstart[:n] = starts
        self._ccap[:n] = caps
        self._atop = int(caps.sum())

    # -- queries -----------------------------------------------------------------------------
    def query(self, boxes: Array) -> tuple[Array, Array]:
        """Segments whose filed midpoint lies in each box (``xmin, ymin, xmax, ymax`` rows).

        Returns ``(box index, segment)`` pairs; grow boxes by ``reach_m`` plus the corridor to
        find every segment within the corridor of what the box covers.
        """
        empty = np.zeros(0, dtype=np.int64)
        if self.origin is None or len(boxes) == 0:
            return empty, empty
        if self._keys is None:
            keys = np.fromiter(self._rows.keys(), dtype=np.int64, count=len(self._rows))
            rows = np.fromiter(self._rows.values(), dtype=np.int64, count=len(self._rows))
            order = np.argsort(keys)
            self._keys, self._keyrows = keys[order], rows[order]
        ox, oy, cell = self.origin[0], self.origin[1], self.cell_m
        rel = boxes - np.array([ox, oy, ox, oy])
        ix0 = np.floor(rel[:, 0] / cell).astype(np.int64)
        iy0 = np.floor(rel[:, 1] / cell).astype(np.int64)
        nx = np.floor(rel[:, 2] / cell).astype(np.int64) - ix0 + 1
        ny = np.floor(rel[:, 3] / cell).astype(np.int64) - iy0 + 1
        per = nx * ny
        box = np.repeat(np.arange(len(boxes), dtype=np.int64), per)
        k = np.arange(len(box), dtype=np.int64) - np.repeat(np.cumsum(per) - per, per)
        nyb = ny[box]
        keys = ((ix0[box] + k // nyb + _OFF) << 32) | (iy0[box] + k % nyb + _OFF)
        at = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        found = self._keys[at] == keys
        rows = self._keyrows[at[found]]
        box = box[found]
        counts = self._ccount[rows]
        idx = ragged(self._cstart[rows], counts)
        ebox = np.repeat(box, counts)
        lo = (rel[:, :2] - _SLACK).astype(np.float32)
        hi = (rel[:, 2:] + _SLACK).astype(np.float32)
        mx, my = self._amx[idx], self._amy[idx]
        keep = (mx >= lo[ebox, 0]) & (mx <= hi[ebox, 0]) & (my >= lo[ebox, 1]) & (my <= hi[ebox, 1])
        return ebox[keep], self._ap[idx[keep]]

    @property
    def nbytes(self) -> int:
        """Memory held by the pool and the arena."""
        arrays = (self.vx, self.vy, self.vs, self.vroute, self._ap, self._amx, self._amy)
        return sum(a.nbytes for a in arrays)
