"""The event grid's cells: an open-addressing hash table in numpy arrays, cell key -> event slots.

A bucket holds a cell's key and its first events inline; further events go on a linked list in a
spill array. All arrays, so that a compiled kernel (the route side's scan) walks a cell's events
itself (``cell_home``, ``cell_bucket``).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

Array = np.ndarray[Any, Any]
_MULT = -7046029254386353131  # 0x9E3779B97F4A7C15 as int64: Fibonacci hashing of cell keys
# a row of ``CellLists.table``: cell key (-1: free bucket), events inline, their slots, the head
# of the list of the cell's further events in ``CellLists.spill`` (-1: none)
_INLINE = 5
_COLS = _INLINE + 3
OVER = _COLS - 1
# ``CellLists.meta``: head of the free spill entries, spill entries ever used, buckets with a
# key, (cell, event) pairs filed
_FREE, _USED, _KEYED, _LIVE = 0, 1, 2, 3


@numba.njit(cache=True, nogil=True, inline="always")
def cell_home(table: Array, key: int | np.int64) -> int:
    """The row where probing for ``key`` in the hash table ``table`` starts (its hash)."""
    return int(((key * _MULT) >> 32) & (len(table) - 1))


@numba.njit(cache=True, nogil=True)
def cell_bucket(table: Array, key: int | np.int64) -> int:
    """Row of ``key`` in the hash table ``table`` (a power of two rows, key in column 0, -1 for
    a free row): where it is, or the free row where it would go."""
    mask = len(table) - 1
    h = cell_home(table, key)
    while table[h, 0] != key and table[h, 0] != -1:
        h = (h + 1) & mask
    return int(h)


@numba.njit(cache=True, nogil=True)
def _add(table: Array, spill: Array, meta: Array, cells: Array, slots: Array) -> None:
    for k in range(len(cells)):
        key = cells[k]
        h = cell_bucket(table, key)
        if table[h, 0] == -1:
            table[h, 0] = key
            table[h, 1] = 0
            table[h, OVER] = -1
            meta[_KEYED] += 1
        n = table[h, 1]
        if n < _INLINE:
            table[h, 2 + n] = slots[k]
            table[h, 1] = n + 1
        else:
            j = meta[_FREE]
            if j >= 0:
                meta[_FREE] = spill[j, 1]
            else:
                j = meta[_USED]
                meta[_USED] += 1
            spill[j, 0] = slots[k]
            spill[j, 1] = table[h, OVER]
            table[h, OVER] = j
        meta[_LIVE] += 1


@numba.njit(cache=True, nogil=True)
def _drop(table: Array, spill: Array, meta: Array, cells: Array, slots: Array) -> None:
    for k in range(len(cells)):
        key, slot = cells[k], slots[k]
        h = cell_bucket(table, key)
        if table[h, 0] != key:
            continue
        n = table[h, 1]
        at = -1
        for t in range(n):
            if table[h, 2 + t] == slot:
                at = t
                break
        if at >= 0:
            j = table[h, OVER]
            if j >= 0:  # the inline slots stay full while the cell spills
                table[h, 2 + at] = spill[j, 0]
                table[h, OVER] = spill[j, 1]
                spill[j, 1] = meta[_FREE]
                meta[_FREE] = j
            else:
                table[h, 2 + at] = table[h, 1 + n]
                table[h, 1] = n - 1
            meta[_LIVE] -= 1
            continue
        prev = -1
        j = table[h, OVER]
        while j >= 0 and spill[j, 0] != slot:
            prev = j
            j = spill[j, 1]
        if j < 0:
            continue
        if prev < 0:
            table[h, OVER] = spill[j, 1]
        else:
            spill[prev, 1] = spill[j, 1]
        spill[j, 1] = meta[_FREE]
        meta[_FREE] = j
        meta[_LIVE] -= 1


@numba.njit(cache=True, nogil=True)
def _rehash(table: Array, new: Array) -> int:
    """Move the rows of the cells that hold events to a new table; returns how many."""
    n = 0
    for h in range(len(table)):
        if table[h, 0] != -1 and table[h, 1] > 0:
            new[cell_bucket(new, table[h, 0])] = table[h]
            n += 1
    return n


@numba.njit(cache=True, nogil=True)
def _gather(table: Array, spill: Array, cells: Array) -> Array:
    out = np.empty(16, np.int64)
    n = 0
    for k in range(len(cells)):
        h = cell_bucket(table, cells[k])
        if table[h, 0] != cells[k]:
            continue
        count, t, j = table[h, 1], 0, table[h, OVER]
        while True:
            if t < count:
                e = table[h, 2 + t]
                t += 1
            elif j >= 0:
                e = spill[j, 0]
                j = spill[j, 1]
            else:
                break
            if n == len(out):
                out = np.concatenate((out, np.empty(n, np.int64)))
            out[n] = e
            n += 1
    return out[:n]


def _rows(size: int) -> Array:
    """A free hash table of ``size`` rows, each row on one cache line (64 bytes)."""
    flat = np.full(size * _COLS + _COLS, -1, dtype=np.int64)
    skip = (-flat.ctypes.data % 64) // 8
    rows: Array = flat[skip : skip + size * _COLS].reshape(size, _COLS)
    return rows


class CellLists:
    """The event grid: cell key -> event slots, as an open-addressing hash table (linear probing)
    with one row per cell: its key, its first events inline and the head of a linked list of the
    rest in ``spill`` (rows: event slot, next entry or -1; freed entries form a free list). A
    lookup reads one cache line for most cells. A cell whose events all left keeps its row until
    the next rehash. All arrays, so a compiled kernel walks a cell's events (see ``cell_bucket``)."""

    def __init__(self) -> None:
        self.table = _rows(1024)
        self.spill = np.full((1024, 2), -1, dtype=np.int64)
        self.meta = np.array([-1, 0, 0, 0], dtype=np.int64)

    def __len__(self) -> int:
        """Number of (cell, event) pairs."""
        return int(self.meta[_LIVE])

    def add(self, cells: Array, slots: Array) -> None:
        """File event ``slots[k]`` in cell ``cells[k]`` (pairs not filed yet)."""
        k = len(cells)
        if int(self.meta[_KEYED]) + k > len(self.table) // 2:
            self._rehash(k)
        if int(self.meta[_USED]) + k > len(self.spill):
            more = max(len(self.spill), int(self.meta[_USED]) + k - len(self.spill))
            self.spill = np.concatenate((self.spill, np.full((more, 2), -1, dtype=np.int64)))
        _add(self.table, self.spill, self.meta, cells, slots)

    def drop(self, cells: Array, slots: Array) -> None:
        """Take event ``slots[k]`` out of cell ``cells[k]`` (pairs not filed are ignored)."""
        _drop(self.table, self.spill, self.meta, cells, slots)

    def get(self, cells: Array) -> Array:
        """Event slots filed in the cells (with repeats for an event in several of them)."""
        out: Array = _gather(self.table, self.spill, cells)
        return out

    def _rehash(self, extra: int) -> None:
        """A table for the cells holding events and ``extra`` more, at most a quarter full."""
        live = int(np.count_nonzero((self.table[:, 0] != -1) & (self.table[:, 1] > 0)))
        size = 1024
        while size < 4 * (live + extra):
            size *= 2
        table = _rows(size)
        self.meta[_KEYED] = _rehash(self.table, table)
        self.table = table
