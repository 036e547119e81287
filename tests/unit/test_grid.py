"""The segment grid's vertex pool: blocks are reused, split when no block of the size is free."""

from __future__ import annotations

import numpy as np

from stream.core.grid import SegmentGrid


def _lines(count: int, n: int, y0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` straight east-going polylines of ``n`` vertices 10 m apart, 100 m between them."""
    x = np.tile(np.arange(n) * 10.0, count) + 700_000.0
    y = np.repeat(np.arange(count) * 100.0, n) + 6_600_000.0 + y0
    return x, y, np.full(count, n, dtype=np.int64)


def test_shorter_routes_reuse_the_blocks_of_longer_ones() -> None:
    """Routes removed and filed again shorter take the front of the freed blocks: the pool does not
    grow, and every new route's segments are found where they lie, owned by the right route."""
    grid = SegmentGrid()
    starts, _ = grid.insert_many(list(range(20)), *_lines(20, 300, 0.0))
    top = grid._top
    grid.remove_many(starts.tolist(), [300] * 20)
    x, y, counts = _lines(40, 100, 0.0)
    again, lengths = grid.insert_many(list(range(40)), x, y, counts)
    assert grid._top == top  # 40 blocks of 112 fit in the 20 freed blocks of 304
    assert len(set(again.tolist())) == 40
    assert np.allclose(lengths, 990.0)
    box = np.array([[x[0] + 5, y[0] - 1, x[0] + 15, y[0] + 1]])  # around route 0's second segment
    owner, p = grid.query(box)
    assert set(grid.route_of(p).tolist()) == {0} and len(owner) >= 1
    for k, start in enumerate(again.tolist()):
        assert grid.route_of(np.array([start, start + 98])).tolist() == [k, k]


def test_longer_routes_than_any_free_block_take_new_room() -> None:
    """No free block is large enough: the pool grows, and the freed blocks stay available."""
    grid = SegmentGrid()
    starts, _ = grid.insert_many([0, 1], *_lines(2, 50, 0.0))
    top = grid._top
    grid.remove_many(starts.tolist(), [50, 50])
    long_start, _ = grid.insert_many([2], *_lines(1, 500, 0.0))
    assert int(long_start[0]) == top and grid._top > top
    short, _ = grid.insert_many([3, 4], *_lines(2, 40, 0.0))
    assert sorted(short.tolist()) == sorted(starts.tolist())
