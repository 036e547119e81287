"""The vertex pool's allocator: blocks of vertices for routes, free blocks merged and reused.

A route takes a block of its size class (``size_class``: multiples of ``BLOCK`` up to 1,024
vertices, powers of two beyond), from a free block of that size, else from the front of the
smallest larger free block, else from the top of the pool. A block given back merges with the
free blocks just before and after it, and returns to the top of the pool when it ends there, so
that re-plans of other lengths reuse the room instead of taking more.
"""

from __future__ import annotations

import bisect

BLOCK = 16  # vertex blocks are multiples of this size, the route map has one entry per BLOCK


def size_class(n: int) -> int:
    """The size of the block that holds a route of ``n`` vertices."""
    return BLOCK * -(-n // BLOCK) if n <= 1024 else 1 << (n - 1).bit_length()


class BlockAllocator:
    """Which blocks of a pool are free, by size, by start and by end; ``top``: the end of the used
    part of the pool."""

    def __init__(self) -> None:
        self.top = 0
        # free blocks: by size, and the size of each by its start and its end, so that a freed
        # block merges with free neighbours (and a free block at the top gives it back)
        self._free: dict[int, set[int]] = {}
        self._sizes: list[int] = []  # the keys of ``_free``, sorted
        self._free_at: dict[int, int] = {}
        self._free_end: dict[int, int] = {}

    def allocate(self, cap: int) -> int:
        """A free block of ``cap`` vertices: one of that size, else the front of the smallest larger
        free block (the rest stays free), else new room at the top of the pool (the caller makes the
        pool that large)."""
        at = bisect.bisect_left(self._sizes, cap)
        if at < len(self._sizes):
            return self._take(self._sizes[at], cap)
        start = self.top
        self.top += cap
        return start

    def _take(self, size: int, cap: int) -> int:
        """The front ``cap`` vertices of a free block of ``size``; the rest stays free."""
        start = next(iter(self._free[size]))
        self._unfile_free(start)
        if size > cap:
            self._file_free(start + cap, size - cap)
        return start

    def _file_free(self, start: int, size: int) -> None:
        if size not in self._free:
            self._free[size] = set()
            bisect.insort(self._sizes, size)
        self._free[size].add(start)
        self._free_at[start] = size
        self._free_end[start + size] = start

    def _unfile_free(self, start: int) -> int:
        size = self._free_at.pop(start)
        del self._free_end[start + size]
        self._free[size].discard(start)
        if not self._free[size]:
            del self._free[size]
            self._sizes.pop(bisect.bisect_left(self._sizes, size))
        return size

    def release(self, start: int, cap: int) -> None:
        """Give a block back: merged with the free blocks just before and after it, and returned
        to the top of the pool when it ends there (re-plans of other lengths reuse the room
        instead of taking more)."""
        if start + cap in self._free_at:
            cap += self._unfile_free(start + cap)
        before = self._free_end.get(start)
        if before is not None:
            cap += self._unfile_free(before)
            start = before
        if start + cap == self.top:
            self.top = start
        else:
            self._file_free(start, cap)
