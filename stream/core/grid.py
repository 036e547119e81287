"""A dynamic grid of route segments: routes come and go without a rebuild, boxes are queried in bulk.

Vertices live in a pool (numpy arrays, one block per route; a freed block merges with its free
neighbours, and a route takes a free block of its size or the front of a larger one); a route's
segment ``p`` runs from vertex ``p`` to ``p + 1``. Each segment is filed in the grid cell of its
midpoint (a long segment once per piece of at most ``piece_m``), so a query box grown by
``corridor + piece_m / 2`` finds every segment within the corridor of what it covers. Cells are
slices of one arena array that grow by relocation; a removed route's entries are taken out of
its cells at once, so every entry is current.

An arena entry holds the segment and its piece's endpoints in centimetres from the cell's corner
(int16): a scan measures candidates on those sequential bytes and reads the pool, at random, only
for the few that come within a centimetre or two of the corridor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stream.core.blocks import BLOCK, BlockAllocator, size_class
from stream.core.kernels import (
    box_slices_kernel,
    cut_pieces,
    drop_entries,
    file_entries,
    fill_pool,
    move_slices,
)

Array = np.ndarray[Any, Any]
_OFF = 1 << 30  # keeps cell indices positive in the packed key
_SLACK = 0.1  # metres: quantised midpoints are compared with this much margin
QUANTUM = 0.01  # metres per unit of a piece endpoint in the arena
_FREE_VERTEX = (np.nan, np.nan, 0.0)  # x, y, distance along of a pool row that holds no vertex
_TILE_SHIFT = 7
_TILE = 1 << _TILE_SHIFT  # cells are looked up through dense tiles of _TILE x _TILE cells
_WINDOW = 1 << 16  # tiles spanned by a lookup up to which distinct tiles are found by marking


def ragged(starts: Array, counts: Array) -> Array:
    """Concatenated ranges ``starts[i] .. starts[i] + counts[i]`` as one index array."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    shift = np.repeat(starts - (ends - counts), counts)
    out: Array = np.arange(total, dtype=np.int64) + shift
    return out


class SegmentGrid:
    """Route polylines (metric) in a vertex pool, their segments filed by grid cell."""

    def __init__(self, cell_m: float = 40.0, piece_m: float = 52.0) -> None:
        if (cell_m + piece_m / 2.0) / QUANTUM + 1 > np.iinfo(np.int16).max:
            raise ValueError(
                f"cell {cell_m} m and pieces of {piece_m} m do not fit the arena's int16 centimetres"
            )
        self.cell_m = cell_m
        self.piece_m = piece_m
        self.reach_m = piece_m / 2.0  # how far a filed midpoint can be from its segment's points
        self.origin: tuple[float, float] | None = None
        self.compact_slack = 1_000_000  # arena entries wasted beyond 2x the live ones before compacting
        # per vertex: x, y and the distance along its route, side by side: the event scan's
        # measures read a segment's two ends and its start's distance in one or two cache lines
        # (three or four in separate arrays)
        self.pool = np.full((1024, 3), _FREE_VERTEX)
        # route slot of the vertices p .. p + 15 (blocks start and end on multiples of 16), -1 if
        # none: 4 bytes per 16 vertices, small enough to stay in cache while a scan reads it
        self.block_route = np.full(1024 // BLOCK, -1, dtype=np.int32)
        self._dying = np.zeros(1024 // BLOCK, dtype=np.uint8)  # blocks being removed (1 byte each)
        self.blocks = BlockAllocator()  # which blocks of the pool are free
        self._tile_of: dict[int, int] = {}  # tile key -> tile index
        self._tiles = np.full((4, _TILE * _TILE), -1, dtype=np.int32)  # cell -> row, per tile
        # per cell: its slice of the arena (start, count) side by side, one cache line for both
        self._cslice = np.zeros((1024, 2), dtype=np.int64)
        self._ccap = np.zeros(1024, dtype=np.int64)
        self._cix = np.zeros(1024, dtype=np.int32)  # cell column, from the origin
        self._ciy = np.zeros(1024, dtype=np.int32)
        self._ncells = 0
        self._ap = np.zeros(8192, dtype=np.int32)
        self._aq = np.zeros((8192, 4), dtype=np.int16)  # piece x0, y0, x1, y1 in cm from the corner
        self._atop = 0

    @property
    def _cstart(self) -> Array:
        """First arena entry of each cell (a view)."""
        return self._cslice[:, 0]

    @property
    def _ccount(self) -> Array:
        """Arena entries of each cell (a view)."""
        return self._cslice[:, 1]

    @property
    def vx(self) -> Array:
        """Vertex x (a view)."""
        return self.pool[:, 0]

    @property
    def vy(self) -> Array:
        """Vertex y (a view)."""
        return self.pool[:, 1]

    @property
    def vs(self) -> Array:
        """Distance along its route at each vertex (a view)."""
        return self.pool[:, 2]

    # -- vertex pool -------------------------------------------------------------------------
    def insert_many(self, route_slots: list[int], x: Array, y: Array, counts: Array) -> tuple[Array, Array]:
        """File several routes' polylines at once (concatenated in ``x``, ``y``, ``counts``
        vertices each). Returns the pool index of each route's first vertex, and its length."""
        starts = np.empty(len(route_slots), dtype=np.int64)
        for k, (route_slot, n) in enumerate(zip(route_slots, counts.tolist(), strict=True)):
            cap = size_class(n)
            top = self.blocks.top
            start = self.blocks.allocate(cap)
            self._grow_pool(self.blocks.top, top)
            self.block_route[start // BLOCK : (start + cap) // BLOCK] = route_slot
            self.pool[start + n : start + cap] = _FREE_VERTEX  # the block's rows beyond the route
            starts[k] = start
        if not len(starts):
            return starts, np.zeros(0)
        if self.origin is None:
            self.origin = (float(np.floor(x[0])), float(np.floor(y[0])))
        fill_pool(x, y, counts, starts, self.pool)
        first = np.cumsum(counts) - counts
        p, mx, my, hx, hy, ix, iy, total = self._pieces(x, y, first, counts, starts)
        self._add_entries(ix, iy, p, mx, my, hx, hy)
        return starts, total

    def _pieces(self, x: Array, y: Array, offsets: Array, counts: Array, pool: Array) -> tuple[Array, ...]:
        """``kernels.cut_pieces`` with this grid's piece length, origin and cells."""
        assert self.origin is not None  # noqa: S101 - set by the first insert
        ox, oy = self.origin
        out: tuple[Array, ...] = cut_pieces(
            x, y, offsets, counts, pool, self.piece_m, ox, oy, self.cell_m, _OFF
        )
        return out

    def route_of(self, p: Array) -> Array:
        """Route slot of segments ``p`` (-1 for none)."""
        out: Array = self.block_route[p // BLOCK]
        return out

    def remove_many(self, starts: list[int], ns: list[int]) -> None:
        """Forget the routes whose blocks start at ``starts`` (``ns`` vertices each): their entries
        leave their cells, their blocks are free for reuse."""
        if not starts:
            return
        first, counts = np.asarray(starts, dtype=np.int64), np.asarray(ns, dtype=np.int64)
        _, _, _, _, _, ix, iy, _ = self._pieces(self.vx, self.vy, first, counts, first)
        dying = self._dying
        for start, n in zip(starts, ns, strict=True):
            dying[start // BLOCK : (start + size_class(n)) // BLOCK] = 1
        rows = self._lookup(ix, iy)
        rows = rows[rows >= 0]
        if len(rows) > self._ncells // 64:  # many: distinct and in order by marking, no sort
            marks = np.zeros(self._ncells, dtype=bool)
            marks[rows] = True
            rows = np.flatnonzero(marks)
        else:  # few (a route ended): sorted, repeats skipped by the sweep
            rows = np.sort(rows)
        # in row order, the cells are swept in about arena order: far fewer cache misses
        drop_entries(rows, self._cslice, self._ap, self._aq, dying)
        for start, n in zip(starts, ns, strict=True):
            cap = size_class(n)
            dying[start // BLOCK : (start + cap) // BLOCK] = 0
            self.pool[start : start + cap] = _FREE_VERTEX
            self.block_route[start // BLOCK : (start + cap) // BLOCK] = -1
            self.blocks.release(start, cap)

    def remove(self, start: int, n: int) -> None:
        """Forget the route whose block starts at ``start`` (``n`` vertices)."""
        self.remove_many([start], [n])

    def _grow_pool(self, need: int, used: int) -> None:
        """Room for ``need`` vertices, the first ``used`` kept. The pool doubles, but only its
        rows up to the top are ever written (``insert_many`` writes a block's rows when it takes
        it: the route's vertices, the rest marked free): the rows beyond are address space, not
        memory, until a route takes them. Each growth is a new allocation, which numpy puts on
        huge pages (a large array): the scans read the pool at random, and with 4 kB pages nearly
        every read also misses the TLB (the pool grown in place by ``ndarray.resize`` kept its
        small pages: scans ~10 % slower)."""
        size = len(self.pool)
        if need <= size:
            return
        new = BLOCK * -(-max(need, 2 * size) // BLOCK)
        pool = np.empty((new, 3))
        pool[:used] = self.pool[:used]
        self.pool = pool
        blocks = np.full(new // BLOCK, -1, dtype=np.int32)
        blocks[: len(self.block_route)] = self.block_route
        self.block_route = blocks
        self._dying = np.zeros(new // BLOCK, dtype=np.uint8)

    # -- cells -------------------------------------------------------------------------------
    def _lookup(self, ix: Array, iy: Array, create: bool = False) -> Array:
        """Row of each cell (-1 where there is none); ``create`` adds the missing tiles."""
        if not len(ix):
            return np.zeros(0, dtype=np.int64)
        tid = self._tile_ids(ix // _TILE, iy // _TILE, create)
        flat = tid * (_TILE * _TILE) + (ix % _TILE) * _TILE + iy % _TILE
        rows: Array = np.where(tid >= 0, self._tiles.ravel()[np.maximum(flat, 0)], -1).astype(np.int64)
        return rows

    def _tile_ids(self, tx: Array, ty: Array, create: bool = False) -> Array:
        """Index of each tile (-1 where there is none; ``create`` adds them): one dictionary
        lookup per distinct tile."""
        x0, y0 = int(tx.min()), int(ty.min())
        w, h = int(tx.max()) - x0 + 1, int(ty.max()) - y0 + 1
        if w * h <= _WINDOW:  # the tiles' window is small: distinct tiles by marking, not sorting
            local = (tx - x0) * h + (ty - y0)
            used = np.zeros(w * h, dtype=bool)
            used[local] = True
            at = np.flatnonzero(used)
            uniq = ((at // h + x0) << 32) | (at % h + y0)
            where = np.zeros(w * h, dtype=np.int64)
            where[at] = np.arange(len(at))
            inv = where[local]
        else:
            uniq, inv = np.unique((tx << 32) | ty, return_inverse=True)
        get = self._tile_of.get
        tids = np.fromiter((get(k, -1) for k in uniq.tolist()), dtype=np.int64, count=len(uniq))
        if create and (tids < 0).any():
            for i in np.nonzero(tids < 0)[0].tolist():
                tids[i] = self._tile_of[int(uniq[i])] = len(self._tile_of)
            if len(self._tile_of) > len(self._tiles):
                grown = np.full((2 * len(self._tile_of), _TILE * _TILE), -1, dtype=np.int32)
                grown[: len(self._tiles)] = self._tiles
                self._tiles = grown
        out: Array = tids[inv.ravel()]
        return out

    def _add_entries(
        self, ix: Array, iy: Array, p: Array, mx: Array, my: Array, hx: Array, hy: Array
    ) -> None:
        assert self.origin is not None  # noqa: S101
        rows = self._lookup(ix, iy, create=True)
        missing = np.nonzero(rows < 0)[0]
        if len(missing):
            keys = (ix[missing] << 32) | iy[missing]
            uniq, inv, counts = np.unique(keys, return_inverse=True, return_counts=True)
            rows[missing] = self._new_rows(uniq >> 32, uniq & 0xFFFFFFFF, counts)[inv.ravel()]
        cx, cy = ix - _OFF, iy - _OFF
        args = (self.origin[0], self.origin[1], self.cell_m, QUANTUM)
        over = file_entries(rows, p, mx, my, hx, hy, cx, cy, *args, *self._cells_state())
        if len(over):  # cells without room for all their new entries: moved, then filed again
            full, counts = np.unique(rows[over], return_counts=True)
            self._make_room(full, counts)
            r, pp, mx, my, hx, hy, cx, cy = (a[over] for a in (rows, p, mx, my, hx, hy, cx, cy))
            file_entries(r, pp, mx, my, hx, hy, cx, cy, *args, *self._cells_state())

    def _cells_state(self) -> tuple[Array, ...]:
        return self._cslice, self._ccap, self._ap, self._aq

    def _new_rows(self, ix: Array, iy: Array, counts: Array) -> Array:
        """Create cells, each with room for its first entries and as many more."""
        n = len(ix)
        first = self._ncells
        self._ncells += n
        while self._ncells > len(self._cslice):
            for name in ("_cslice", "_ccap", "_cix", "_ciy"):
                old = getattr(self, name)
                setattr(self, name, np.concatenate([old, np.zeros_like(old)]))
        caps = np.maximum(6, counts + (counts + 1) // 2)
        base = self._reserve(int(caps.sum()))
        rows = np.arange(first, first + n, dtype=np.int64)
        self._cstart[rows] = base + np.cumsum(caps) - caps
        self._ccap[rows] = caps
        self._cix[rows] = ix - _OFF
        self._ciy[rows] = iy - _OFF
        tid = self._tile_ids(ix // _TILE, iy // _TILE, create=True)
        self._tiles.ravel()[tid * (_TILE * _TILE) + (ix % _TILE) * _TILE + iy % _TILE] = rows
        return rows

    def _reserve(self, n: int) -> int:
        if self._atop + n > len(self._ap):
            live = int(self._ccount[: self._ncells].sum())
            if self._atop > 2 * live + self.compact_slack:
                self._compact()
            if self._atop + n > len(self._ap):
                new = max(len(self._ap) + len(self._ap) // 4, self._atop + n)
                for name in ("_ap", "_aq"):
                    old = getattr(self, name)
                    arr = np.zeros((new, *old.shape[1:]), dtype=old.dtype)
                    arr[: self._atop] = old[: self._atop]
                    setattr(self, name, arr)
        start = self._atop
        self._atop += n
        return start

    def _midpoints(self, idx: Array, rows: Array) -> tuple[Array, Array]:
        """Metric midpoints of the pieces in arena entries ``idx`` (held by cells ``rows``)."""
        assert self.origin is not None  # noqa: S101
        q = self._aq[idx].astype(np.float64)
        mx = self.origin[0] + self._cix[rows] * self.cell_m + (q[:, 0] + q[:, 2]) * (QUANTUM / 2)
        my = self.origin[1] + self._ciy[rows] * self.cell_m + (q[:, 1] + q[:, 3]) * (QUANTUM / 2)
        return mx, my

    def _make_room(self, rows: Array, incoming: Array) -> None:
        """Move full cells to the top of the arena, with room to spare."""
        live = self._ccount[rows]
        need = live + incoming
        caps = need + need // 2 + 8  # room to spare: a busy cell is not moved often
        base = self._reserve(int(caps.sum()))
        starts = base + np.cumsum(caps) - caps
        src = self._cstart[rows]  # read after _reserve: it may have compacted
        move_slices(self._ap, self._aq, src, live, self._ap, self._aq, starts)
        self._cstart[rows] = starts
        self._ccap[rows] = caps

    def compact(self) -> None:
        """Renumber the cells by column, then row, and lay their entries out in that order with
        room to spare: the cells under a query box then lie in a few runs of the arena and of the
        cell columns, which a scan reads in sequence rather than at random places. Call it between
        operations (after loading a partition, say): row numbers held by a caller change."""
        n = self._ncells
        order = self._cell_order()  # new row i is old row order[i]
        for name in ("_cslice", "_ccap", "_cix", "_ciy"):
            column = getattr(self, name)
            column[:n] = column[:n][order]
        renumber = np.empty(n, dtype=np.int32)
        renumber[order] = np.arange(n, dtype=np.int32)
        filed = self._tiles >= 0
        self._tiles[filed] = renumber[self._tiles[filed]]
        self._compact(in_order=True)

    def _cell_order(self) -> Array:
        """The cells' rows by column, then row: one sort of a packed key (a cell's column and row
        are its own), a third of the time of sorting by the two columns."""
        n = self._ncells
        key = (self._cix[:n].astype(np.int64) << 32) | (self._ciy[:n].astype(np.int64) + (1 << 31))
        order: Array = np.argsort(key)
        return order

    def _compact(self, in_order: bool = False) -> None:
        """Lay the cells' entries out again with room to spare, by column then row (a box's
        column of cells is one run of the arena), keeping the cells' row numbers (``in_order``:
        the rows are in that order already)."""
        n = self._ncells
        counts = self._ccount[:n]
        caps = counts + counts // 2 + 4
        order = np.arange(n) if in_order else self._cell_order()
        placed = np.cumsum(caps[order]) - caps[order]
        starts = np.empty(n, dtype=np.int64)
        starts[order] = placed
        size = int(caps.sum()) * 5 // 4
        ap, aq = np.zeros(size, dtype=self._ap.dtype), np.zeros((size, 4), dtype=self._aq.dtype)
        move_slices(self._ap, self._aq, self._cstart[order], counts[order], ap, aq, placed)
        self._ap, self._aq = ap, aq
        self._cstart[:n] = starts
        self._ccap[:n] = caps
        self._atop = int(caps.sum())

    # -- queries -----------------------------------------------------------------------------
    def box_cells(self, boxes: Array) -> tuple[Array, Array, Array]:
        """The existing cells under each box: ``(box index, cell row)`` pairs in box order, and the
        boxes relative to the grid origin, grown by a hair (the slack of quantised midpoints)."""
        box, rows, _, _, grown = self._box_rows(boxes)
        return box, rows, grown

    def box_slices(self, boxes: Array) -> tuple[Array, Array, Array, Array, Array, Array]:
        """``box_cells`` as the event scan reads it: per (box, cell) pair, the box, the cell's
        slice of the arena (start, count) and its column and row from the origin, in pair order,
        so that the scan reads them in sequence rather than at each cell's row."""
        if self.origin is not None and len(boxes):
            ox, oy, cell = self.origin[0], self.origin[1], self.cell_m
            rel = boxes - np.array([ox, oy, ox, oy])
            lo = np.floor(rel[:, :2].min(axis=0) / cell).astype(np.int64) + _OFF
            hi = np.floor(rel[:, 2:].max(axis=0) / cell).astype(np.int64) + _OFF
            (tx0, ty0), (tx1, ty1) = lo // _TILE, hi // _TILE
            w, h = int(tx1 - tx0) + 1, int(ty1 - ty0) + 1
            if w * h <= _WINDOW:  # one compiled pass over the boxes, cells found through their tiles
                window = self._tile_window(int(tx0), int(ty0), w, h)
                args = (window, int(tx0), int(ty0), self._tiles, self._cslice)
                box, start, count, cx, cy = box_slices_kernel(rel, cell, _OFF, _TILE_SHIFT, *args)
                return box, start, count, cx, cy, rel + np.array([-_SLACK, -_SLACK, _SLACK, _SLACK])
        box, rows, cx, cy, grown = self._box_rows(boxes)
        return box, self._cstart[rows], self._ccount[rows], cx, cy, grown

    def _tile_window(self, tx0: int, ty0: int, w: int, h: int) -> Array:
        """Tile index of each tile of a window (-1 where none), from the window or the tiles,
        whichever is smaller."""
        window = np.full((w, h), -1, dtype=np.int64)
        if w * h <= len(self._tile_of):
            get = self._tile_of.get
            for x in range(w):
                for y in range(h):
                    window[x, y] = get(((tx0 + x) << 32) | (ty0 + y), -1)
            return window
        for key, tid in self._tile_of.items():
            x, y = (key >> 32) - tx0, (key & 0xFFFFFFFF) - ty0
            if 0 <= x < w and 0 <= y < h:
                window[x, y] = tid
        return window

    def _box_rows(self, boxes: Array) -> tuple[Array, Array, Array, Array, Array]:
        """Per existing cell under each box: box index, cell row, column and row from the origin;
        and the grown relative boxes."""
        empty = np.zeros(0, dtype=np.int64)
        if self.origin is None or len(boxes) == 0:
            return empty, empty, empty, empty, np.zeros((0, 4))
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
        cx, cy = ix0[box] + k // nyb, iy0[box] + k % nyb
        rows = self._lookup(cx + _OFF, cy + _OFF)
        found = np.flatnonzero(rows >= 0)
        grown = rel + np.array([-_SLACK, -_SLACK, _SLACK, _SLACK])
        return box[found], rows[found], cx[found], cy[found], grown

    def query(self, boxes: Array) -> tuple[Array, Array]:
        """Segments whose filed midpoint lies in each box (``xmin, ymin, xmax, ymax`` rows).

        Returns ``(box index, segment)`` pairs; grow boxes by ``reach_m`` plus the corridor to
        find every segment within the corridor of what the box covers.
        """
        if self.origin is None:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        box, rows, _ = self.box_cells(boxes)
        counts = self._ccount[rows]
        idx = ragged(self._cstart[rows], counts)
        ebox = np.repeat(box, counts)
        mx, my = self._midpoints(idx, np.repeat(rows, counts))
        grown = boxes + np.array([-_SLACK, -_SLACK, _SLACK, _SLACK])
        lox, loy, hix, hiy = (grown[:, k] for k in range(4))
        keep = (mx >= lox[ebox]) & (mx <= hix[ebox]) & (my >= loy[ebox]) & (my <= hiy[ebox])
        return ebox[keep], self._ap[idx[keep]].astype(np.int64)

    def arena(self) -> tuple[Array, Array]:
        """The arena's columns: segment, piece endpoints (cm from the cell's corner); the cells'
        slices of it come with their pairs from ``box_slices``."""
        return self._ap, self._aq
