"""The event index's grid and columns stay those of its stored events through random batches of
new, replaced, removed and released events (port calls among them), checked against a plain model."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from schemas import Event
from stream.core.celllists import CellLists
from stream.core.eventindex import OFF, EventIndex
from stream.core.geo import DEFAULT_CRS
from stream.core.shapes import shapes_for

AT = datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
CORRIDOR, MARGIN, CELL = 30.0, 60.0, 40.0


def geometry(rng: random.Random) -> dict[str, Any]:
    """A point, a line or a square somewhere in a few kilometres of Paris."""
    x, y = 2.30 + 0.06 * rng.random(), 48.83 + 0.04 * rng.random()
    kind = rng.choice(["point", "line", "square"])
    if kind == "point":
        return {"type": "Point", "coordinates": [x, y]}
    if kind == "line":
        steps = rng.randint(1, 5)
        coords = [[x + 0.001 * rng.random() * k, y + 0.001 * rng.random() * k] for k in range(steps + 1)]
        return {"type": "LineString", "coordinates": coords}
    h = 0.0005 * rng.random() + 1e-5
    ring = [[x - h, y - h], [x + h, y - h], [x + h, y + h], [x - h, y + h], [x - h, y - h]]
    return {"type": "Polygon", "coordinates": [ring]}


def model_cells(bbox: Any) -> set[int]:
    """The grid cells an event with this bounding box is filed in, one by one."""
    x0, y0, x1, y1 = (float(v) for v in bbox)
    cells = set()
    for ix in range(math.floor((x0 - MARGIN) / CELL), math.floor((x1 + MARGIN) / CELL) + 1):
        for iy in range(math.floor((y0 - MARGIN) / CELL), math.floor((y1 + MARGIN) / CELL) + 1):
            cells.add(((ix + OFF) << 32) | (iy + OFF))
    return cells


def check(index: EventIndex, live: dict[str, str], shapes: dict[str, tuple[Any, Any]]) -> None:
    """Grid and columns against the events stored (``live``: event id -> "geo" or "port";
    ``shapes``: event id -> the bounding box and primitives it was stored with)."""
    assert set(index.slot_of) == set(live)
    grid: dict[int, set[int]] = {}
    geo_slots = set()
    for event_id, kind in live.items():
        slot = index.slot_of[event_id]
        event = index.objects.event[slot]
        assert event is not None and event.id == event_id
        if kind == "port":
            assert index.objects.polygon[slot] is None
            assert slot in index.port_calls[event.terminal or ""]
            continue
        geo_slots.add(slot)
        bbox, prims = shapes[event_id]
        for cell in model_cells(bbox):
            grid.setdefault(cell, set()).add(slot)
        lo, hi, areal = index.span[slot].tolist()
        assert hi - lo == len(prims) > 0
        assert np.array_equal(index.prims[lo:hi], prims)
        assert np.array_equal(index.prims_of(slot), prims)
        assert bool(areal) == (index.objects.polygon[slot] is not None)
        assert np.array_equal(index.geo[slot, :4], bbox)
        assert index.geo[slot, 4] == index.table.thr[slot]
    others = np.setdiff1d(np.arange(len(index.span)), np.fromiter(geo_slots, dtype=np.int64))
    assert not index.span[others].any()
    assert np.isnan(index.geo[others]).all()
    assert index.live == int((index.span[:, 1] - index.span[:, 0]).sum()) <= index.top
    assert len(index.cells) == sum(map(len, grid.values()))
    for cell, slots in grid.items():
        found = index.cells.get(np.array([cell], dtype=np.int64)).tolist()
        assert sorted(found) == sorted(slots)
    assert index.near(list(grid)[:5]) == set().union(*list(grid.values())[:5])
    assert index.near([0, 12345]) == set()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_grid_and_columns_follow_the_events(seed: int) -> None:
    rng = random.Random(seed)
    index = EventIndex(CORRIDOR, MARGIN, CELL)
    live: dict[str, str] = {}
    stored: dict[str, tuple[Any, Any]] = {}
    removed: list[int] = []
    pools, tables = {id(index.prims)}, {len(index.cells.table)}
    for step in range(60):
        ids = [f"e{rng.randrange(400)}" for _ in range(rng.randint(1, 40))]
        ids = list(dict.fromkeys(i for i in ids if live.get(i) != "port"))
        batch = [Event(id=i, source="t", kind="closure", geometry=geometry(rng)) for i in ids]
        if batch:
            shapes = shapes_for([e.geometry for e in batch], DEFAULT_CRS, MARGIN)
            index.store(batch, shapes, AT)
            live.update(dict.fromkeys(ids, "geo"))
            for k, event_id in enumerate(ids):
                lo, hi = shapes.prim_lo[k], shapes.prim_hi[k]
                stored[event_id] = (shapes.bbox[k].copy(), shapes.prims[lo:hi].copy())
        if step % 5 == 0:
            port = [f"p{rng.randrange(20)}" for _ in range(3)]
            port = list(dict.fromkeys(p for p in port if p not in live))
            calls = [Event(id=p, source="t", kind="port_call", geometry={}, terminal="T1") for p in port]
            index.store(calls, None, AT)
            live.update(dict.fromkeys(port, "port"))
        for slot in removed:
            index.release(slot)
        removed = []
        for event_id in rng.sample(sorted(live), min(len(live), rng.randint(0, 25))):
            slot = index.slot_of[event_id]
            index.remove(slot)
            removed.append(slot)
            del live[event_id]
        pools.add(id(index.prims))
        tables.add(len(index.cells.table))
        check(index, live, stored)
    assert len(pools) > 1 and len(tables) > 1  # the pool was compacted, the table rehashed


def test_cell_lists_keep_every_pair_through_rehash() -> None:
    rng = np.random.default_rng(5)
    lists = CellLists()
    model: set[tuple[int, int]] = set()
    for _ in range(30):
        cells = rng.integers(0, 3000, 200) + (7 << 32)
        slots = rng.integers(0, 50, 200)
        pairs = set(zip(cells.tolist(), slots.tolist(), strict=True)) - model
        add = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
        lists.add(add[:, 0], add[:, 1])
        model |= pairs
        gone = rng.choice(np.array(sorted(model), dtype=np.int64), size=len(model) // 3, replace=False)
        lists.drop(gone[:, 0], gone[:, 1])
        model -= set(map(tuple, gone.tolist()))
        assert len(lists) == len(model)
    for cell in range(3000):
        key = cell + (7 << 32)
        expected = sorted(s for c, s in model if c == key)
        assert sorted(lists.get(np.array([key], dtype=np.int64)).tolist()) == expected
