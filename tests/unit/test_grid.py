"""The segment grid: its vertex pool reuses blocks (split when no block of the size is free, merged
with free neighbours when freed); its cells are looked up alike by the compiled and the array
paths, before and after a compaction."""

from __future__ import annotations

import numpy as np

from stream.core.blocks import BLOCK
from stream.core.grid import SegmentGrid


def _lines(count: int, n: int, y0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` straight east-going polylines of ``n`` vertices 10 m apart, 100 m between them."""
    x = np.tile(np.arange(n) * 10.0, count) + 700_000.0
    y = np.repeat(np.arange(count) * 100.0, n) + 6_600_000.0 + y0
    return x, y, np.full(count, n, dtype=np.int64)


def test_shorter_routes_reuse_the_blocks_of_longer_ones() -> None:
    """Routes removed and filed again shorter take the room the longer ones freed: the pool does
    not grow, and every new route's segments are found where they lie, owned by the right route."""
    grid = SegmentGrid()
    starts, _ = grid.insert_many(list(range(20)), *_lines(20, 300, 0.0))
    grid.insert_many([99], *_lines(1, 300, 5_000.0))  # a route after them: their room is not the top
    top = grid.blocks.top
    grid.remove_many(starts.tolist(), [300] * 20)
    x, y, counts = _lines(40, 100, 0.0)
    again, lengths = grid.insert_many(list(range(40)), x, y, counts)
    assert grid.blocks.top == top  # 40 blocks of 112 fit in the 20 x 304 vertices freed
    assert len(set(again.tolist())) == 40 and int(again.max()) < int(starts.max()) + 304
    assert np.allclose(lengths, 990.0)
    box = np.array([[x[0] + 5, y[0] - 1, x[0] + 15, y[0] + 1]])  # around route 0's second segment
    owner, p = grid.query(box)
    assert set(grid.route_of(p).tolist()) == {0} and len(owner) >= 1
    for k, start in enumerate(again.tolist()):
        assert grid.route_of(np.array([start, start + 98])).tolist() == [k, k]


def test_longer_routes_take_merged_free_room_or_new_room() -> None:
    """Two neighbouring freed blocks merge: a route longer than either takes their room; one longer
    than both takes new room at the top, and the merged room stays available."""
    grid = SegmentGrid()
    starts, _ = grid.insert_many([0, 1], *_lines(2, 50, 0.0))  # two blocks of 64
    grid.insert_many([9], *_lines(1, 50, 5_000.0))
    top = grid.blocks.top
    grid.remove_many(starts.tolist(), [50, 50])
    merged, _ = grid.insert_many([2], *_lines(1, 120, 0.0))  # 128 vertices: the two freed blocks
    assert int(merged[0]) == int(starts.min()) and grid.blocks.top == top
    grid.remove_many(merged.tolist(), [120])
    long_start, _ = grid.insert_many([3], *_lines(1, 500, 0.0))
    assert int(long_start[0]) == top and grid.blocks.top > top
    short, _ = grid.insert_many([4, 5], *_lines(2, 40, 0.0))
    assert sorted(short.tolist()) == [int(starts.min()), int(starts.min()) + 48]


def test_freed_blocks_at_the_top_give_the_room_back() -> None:
    """Removing the last routes of the pool lowers its top, whatever order they leave in."""
    grid = SegmentGrid()
    starts, _ = grid.insert_many([0, 1, 2], *_lines(3, 50, 0.0))
    grid.remove_many([int(starts[1])], [50])
    grid.remove_many([int(starts[2])], [50])
    assert grid.blocks.top == int(starts[1])
    grid.remove_many([int(starts[0])], [50])
    assert grid.blocks.top == 0


def test_replanned_routes_of_random_lengths_keep_the_pool_bounded() -> None:
    """Routes re-planned again and again at random lengths: free neighbours merge, so the pool
    stays within half again the room its live routes take (it grew past twice that, and kept
    growing, when freed blocks never merged), and every route is still found where it lies."""
    rng = np.random.default_rng(5)
    grid = SegmentGrid()
    held: dict[int, tuple[int, int]] = {}
    for rnd in range(60):
        for k in range(120):
            if k in held:
                grid.remove_many([held[k][0]], [held[k][1]])
            n = int(rng.integers(10, 400))
            start, _ = grid.insert_many([k], *_lines(1, n, 100.0 * k))
            held[k] = (int(start[0]), n)
        live = sum(BLOCK * -(-n // BLOCK) for _, n in held.values())
        assert grid.blocks.top <= 1.5 * live + 1024, (rnd, grid.blocks.top, live)
    for k, (start, n) in held.items():
        assert grid.route_of(np.array([start, start + n - 2])).tolist() == [k, k]
        x0, y0 = 700_000.0 + 5.0, 6_600_000.0 + 100.0 * k
        _, p = grid.query(np.array([[x0 - 1, y0 - 1, x0 + 1, y0 + 1]]))
        assert k in set(grid.route_of(p).tolist())


def _slices_by_rows(grid: SegmentGrid, boxes: np.ndarray) -> tuple[np.ndarray, ...]:
    """``box_slices`` as the array path computes it, from the cells' rows."""
    box, rows, cx, cy, grown = grid._box_rows(boxes)
    return box, grid._cstart[rows], grid._ccount[rows], cx, cy, grown


def test_box_slices_agree_with_the_cells_rows_before_and_after_compaction() -> None:
    """The compiled lookup through the tiles gives the same (box, slice, cell) pairs as the rows'
    lookup, for boxes near the routes, far outside them (no tile at all) and spread so widely that
    the lookup falls back to the array path; the same after ``compact`` renumbers the cells."""
    rng = np.random.default_rng(3)
    grid = SegmentGrid()
    x = np.cumsum(rng.normal(0.0, 30.0, 6000)) + 652_000.0
    y = np.cumsum(rng.normal(0.0, 30.0, 6000)) + 6_862_000.0
    for k in range(60):  # one by one: each adds its new cells at the end of the arena
        grid.insert_many([k], x[k * 100 : (k + 1) * 100], y[k * 100 : (k + 1) * 100], np.array([100]))
    centres = rng.uniform([x.min() - 300, y.min() - 300], [x.max() + 300, y.max() + 300], (400, 2))
    half = rng.uniform(0.0, 200.0, (400, 2))
    near = np.column_stack((centres - half, centres + half))
    far = np.array([[x[0] - 2e6, y[0], x[0] - 2e6 + 50, y[0] + 50], [x[0], y[0], x[0] + 80, y[0] + 80]])
    before = grid.box_slices(near)
    for boxes in (near, far):
        for ours, theirs in zip(grid.box_slices(boxes), _slices_by_rows(grid, boxes), strict=True):
            assert np.array_equal(ours, theirs)
    assert len(before[0]) > 1000 and len(grid.box_slices(far)[0]) >= 1
    grid.compact()
    after = grid.box_slices(near)
    for ours, theirs in zip(after, _slices_by_rows(grid, near), strict=True):
        assert np.array_equal(ours, theirs)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[2], after[2])  # same cells, counts
    cells, first = np.unique(np.column_stack((after[3], after[4])), axis=0, return_index=True)
    assert len(cells) > 100 and np.all(np.diff(after[1][first]) > 0)  # laid out by column, then row


def _near(a: object, b: object) -> bool:
    """Equal to a micrometre (metric coordinates are ~1e6: a relative tolerance would allow metres)."""
    return bool(np.allclose(a, b, rtol=0.0, atol=1e-6))


def test_pieces_tile_each_segment_and_name_their_cells() -> None:
    """Each segment is cut in the fewest pieces of at most ``piece_m`` (a point-like segment in one):
    the pieces, end to end, run from the segment's start to its end; each is filed in the cell of
    its midpoint, with the pool index of its segment; each polyline's length is its segments'."""
    rng = np.random.default_rng(11)
    grid = SegmentGrid(cell_m=40.0, piece_m=52.0)
    counts = np.array([2, 5, 3], dtype=np.int64)
    x = np.cumsum(rng.uniform(-130.0, 130.0, int(counts.sum()))) + 652_000.0
    y = np.cumsum(rng.uniform(-130.0, 130.0, int(counts.sum()))) + 6_862_000.0
    x[3] = x[2]  # a segment of length 0 in the second polyline
    y[3] = y[2]
    starts, lengths = grid.insert_many([0, 1, 2], x, y, counts)
    offsets = np.cumsum(counts) - counts
    p, mx, my, hx, hy, ix, iy, total = grid._pieces(x, y, offsets, counts, starts)
    assert _near(total, lengths)
    seen = 0
    for k in range(len(counts)):
        expected = 0.0
        for j in range(int(offsets[k]), int(offsets[k] + counts[k] - 1)):
            length = float(np.hypot(x[j + 1] - x[j], y[j + 1] - y[j]))
            expected += length
            n = max(1, int(np.ceil(length / 52.0)))
            mine = slice(seen, seen + n)
            seen += n
            assert np.all(p[mine] == starts[k] + j - offsets[k])
            assert np.all(np.hypot(2 * hx[mine], 2 * hy[mine]) <= 52.0 + 1e-9)
            assert _near(mx[mine][0] - hx[mine][0], x[j]) and np.allclose(
                my[mine][-1] + hy[mine][-1], y[j + 1]
            )
            assert _near(mx[mine][1:] - hx[mine][1:], mx[mine][:-1] + hx[mine][:-1])  # end to end
        assert _near(total[k], expected)
    assert seen == len(p)
    origin = grid.origin
    assert origin is not None
    assert np.array_equal(ix - (1 << 30), np.floor((mx - origin[0]) / 40.0).astype(np.int64))
    assert np.array_equal(iy - (1 << 30), np.floor((my - origin[1]) / 40.0).astype(np.int64))


def test_the_pool_grows_and_keeps_every_vertex() -> None:
    """The vertex pool doubles when routes need more room than it has: every vertex and its
    distance along are as filed, a block's rows beyond its route are free (NaN), and a view kept
    by a caller still reads the vertices it saw."""
    grid = SegmentGrid()
    first, _ = grid.insert_many([0], *_lines(1, 50, 0.0))
    view = grid.vx
    x, y, counts = _lines(300, 60, 1_000.0)  # 300 blocks of 64 rows: beyond the first 1,024
    starts, lengths = grid.insert_many(list(range(1, 301)), x, y, counts)
    assert len(grid.pool) >= grid.blocks.top >= 300 * 64 + 64
    assert np.allclose(lengths, 590.0)
    rows = np.concatenate([np.arange(s, s + 60) for s in starts.tolist()])
    assert np.array_equal(grid.vx[rows], x) and np.array_equal(grid.vy[rows], y)
    assert np.allclose(grid.vs[rows], np.tile(np.arange(60) * 10.0, 300))
    assert np.array_equal(grid.vx[first[0] : first[0] + 50], np.arange(50) * 10.0 + 700_000.0)
    padding = np.concatenate([np.arange(s + 60, s + 64) for s in starts.tolist()])
    assert np.isnan(grid.pool[padding, :2]).all()
    assert np.array_equal(view[first[0] : first[0] + 50], grid.vx[first[0] : first[0] + 50])
