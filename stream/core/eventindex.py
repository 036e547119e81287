"""The active events, for the other direction of the join: which events lie near a route.

Events are filed in a coarse grid (cell -> event slots, ``celllists.CellLists``) over their
bounding box grown by the search margin; a route looks up the cells of its segment pieces inside
its compiled scan. Besides their states, the events' bounding boxes,
corridors and primitives are kept as columns indexed by slot for that scan, written when an event
is stored and cleared when it is removed. Port calls are filed by terminal instead: they concern
routes by destination, whatever their geometry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numba
import numpy as np

from schemas import Event
from stream.core.celllists import CellLists
from stream.core.rules import Slots, compile_schedule, event_conditions
from stream.core.shapes import ShapeBatch
from stream.core.tables import EventObjects, EventTable

Array = np.ndarray[Any, Any]
OFF = 1 << 30  # keeps cell indices positive in the packed key


@numba.njit(cache=True, nogil=True)
def _cells_of_boxes(bbox: Array, margin: float, cell: float) -> tuple[Array, Array]:
    """``EventIndex._cells_of``: cell keys (column then row within a box) and owning box."""
    n = 0
    for b in range(len(bbox)):
        nx = math.floor((bbox[b, 2] + margin) / cell) - math.floor((bbox[b, 0] - margin) / cell) + 1
        ny = math.floor((bbox[b, 3] + margin) / cell) - math.floor((bbox[b, 1] - margin) / cell) + 1
        n += int(nx) * int(ny)
    keys = np.empty(n, np.int64)
    owner = np.empty(n, np.int64)
    k = 0
    for b in range(len(bbox)):
        x0 = np.int64(math.floor((bbox[b, 0] - margin) / cell)) + OFF
        y0 = np.int64(math.floor((bbox[b, 1] - margin) / cell)) + OFF
        x1 = np.int64(math.floor((bbox[b, 2] + margin) / cell)) + OFF
        y1 = np.int64(math.floor((bbox[b, 3] + margin) / cell)) + OFF
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                keys[k] = (x << 32) | y
                owner[k] = b
                k += 1
    return keys, owner


class EventIndex:
    """Active events: rule columns, shapes, a coarse grid, the columns the route scan reads, and
    the port calls by terminal."""

    def __init__(self, corridor_m: float, margin_m: float, cell_m: float = 150.0) -> None:
        self.corridor_m = corridor_m
        self.margin_m = margin_m
        self.cell_m = cell_m
        self.table = EventTable()
        self.objects = EventObjects()
        self.slot_of: dict[str, int] = {}
        self.cells = CellLists()
        self.port_calls: dict[str, set[int]] = {}
        # per slot, one row each so that the route scan reads an event in few cache lines (NaN and
        # zeros for a free slot or a port call):
        self.geo = np.full((64, 5), np.nan)  # bounding box (xmin, ymin, xmax, ymax), corridor
        self.span = np.zeros((64, 3), dtype=np.int64)  # primitives lo .. hi in ``prims``, areal
        self.prims = np.zeros((1024, 4))  # the events' primitives; replaced ones until compaction
        self.top = 0  # rows of ``prims`` written
        self.live = 0  # rows of ``prims`` that belong to a stored event

    def __len__(self) -> int:
        return len(self.slot_of)

    def near(self, cells: Iterable[int]) -> set[int]:
        """Event slots filed in any of the cells."""
        keys = np.fromiter(cells, dtype=np.int64)
        return set(self.cells.get(keys).tolist())

    def store(
        self,
        events: Sequence[Event],
        shapes: ShapeBatch | None,
        at: datetime,
        held: list[int] | None = None,
    ) -> Array:
        """File new or changed events (replacing earlier versions); returns their slots.
        ``held``: each event's current slot (-1 if new), when the caller looked them up."""
        table = self.table
        if held is None:
            get = self.slot_of.get
            held = [get(event.id, -1) for event in events]
        slots = np.asarray(held, dtype=np.int64)
        if len(slots) and slots.max() >= 0:
            self._unfile(slots[slots >= 0].tolist())
        new = np.flatnonzero(slots < 0)
        if len(new):
            fresh = table.allocate_many(len(new))
            slots[new] = fresh
            self.slot_of.update(zip([events[i].id for i in new.tolist()], fresh.tolist(), strict=True))
            top = int(fresh.max()) + 1
            if top > len(self.span):
                more = max(top, 2 * len(self.span)) - len(self.span)
                self.geo = np.concatenate((self.geo, np.full((more, 5), np.nan)))
                self.span = np.concatenate((self.span, np.zeros((more, 3), dtype=np.int64)))
        # one pass over the events: their validity, and those with a rule beyond it (few)
        nan = float("nan")
        valid_from: list[float] = []
        valid_until: list[float] = []
        ruled: list[int] = []
        for i, e in enumerate(events):
            start, end = e.valid_from, e.valid_until
            valid_from.append(nan if start is None else start.timestamp())
            valid_until.append(nan if end is None else end.timestamp())
            if e.schedule or e.vehicles is not None or e.direction == "forward" or e.kind == "perimeter":
                ruled.append(i)
        table.vf[slots] = valid_from
        table.vu[slots] = valid_until
        table.max_w[slots] = table.max_h[slots] = table.max_wd[slots] = table.max_l[slots] = nan
        table.crit_mask[slots], table.hazmat[slots], table.has_cond[slots] = 0, False, False
        table.has_sched[slots] = False
        schedules: list[Slots | None] = [None] * len(events)
        forward = np.zeros(len(events), dtype=bool)
        perimeter = np.zeros(len(events), dtype=bool)
        for i in ruled:
            event, slot = events[i], slots[i]
            forward[i] = event.direction == "forward"
            perimeter[i] = event.kind == "perimeter"
            if event.schedule:
                schedules[i] = compile_schedule(event.schedule)
                table.has_sched[slot] = schedules[i] is not None
            if event.vehicles is not None:
                w, h, wd, ln, crit, hazmat, has_cond = event_conditions(event)
                table.max_w[slot], table.max_h[slot], table.max_wd[slot], table.max_l[slot] = w, h, wd, ln
                table.crit_mask[slot], table.hazmat[slot], table.has_cond[slot] = crit, hazmat, has_cond
        if shapes is None:  # port calls: they concern routes by destination
            table.forward[slots] = False
            self.objects.put(slots, events, None, schedules)
            for event, slot in zip(events, slots.tolist(), strict=True):
                self.port_calls.setdefault(event.terminal or "", set()).add(slot)
            return slots
        areal = np.fromiter((p is not None for p in shapes.polygons), dtype=bool, count=len(events))
        table.thr[slots] = np.where(perimeter & areal, 0.0, self.corridor_m)
        table.forward[slots] = forward & ~areal
        self._file(events, slots, shapes, schedules, areal)
        return slots

    def _file(
        self, events: Sequence[Event], slots: Array, shapes: ShapeBatch, schedules: list[Any], areal: Array
    ) -> None:
        """Keep the events' objects, write their columns and file them in the coarse grid (the
        (event, cell) pairs are built with array operations)."""
        keys, owner = self._cells_of(shapes.bbox)
        self.cells.add(keys, slots[owner])
        need = len(shapes.prims)
        if self.top + need > len(self.prims):
            self._compact(need)
        top = self.top
        self.prims[top : top + need] = shapes.prims
        self.span[slots, 0] = top + shapes.prim_lo
        self.span[slots, 1] = top + shapes.prim_hi
        self.span[slots, 2] = areal
        self.geo[slots, :4] = shapes.bbox
        self.geo[slots, 4] = self.table.thr[slots]
        self.top += need
        self.live += int((shapes.prim_hi - shapes.prim_lo).sum())
        self.objects.put(slots, events, shapes.polygons, schedules)

    def _cells_of(self, bbox: Array) -> tuple[Array, Array]:
        """The event-grid cells over bounding boxes grown by the margin, and the box of each."""
        out: tuple[Array, Array] = _cells_of_boxes(np.ascontiguousarray(bbox), self.margin_m, self.cell_m)
        return out

    def prims_of(self, slot: int) -> Array:
        """An event's primitives (metric segments; a point is a segment of length 0)."""
        lo, hi = self.span[slot, 0], self.span[slot, 1]
        out: Array = self.prims[lo:hi]
        return out

    def _compact(self, extra: int) -> None:
        """Move the stored events' primitives to a new pool with room for ``extra`` more."""
        lo, hi = self.span[:, 0], self.span[:, 1]
        sizes = hi - lo
        dst_hi = np.cumsum(sizes)
        dst_lo = dst_hi - sizes
        live = int(dst_hi[-1]) if len(dst_hi) else 0
        prims = np.zeros((max(2 * (live + extra), 1024), 4))
        src = np.arange(live) - np.repeat(dst_lo - lo, sizes)
        prims[:live] = self.prims[src]
        self.prims = prims
        self.span[:, 0], self.span[:, 1] = np.where(sizes > 0, dst_lo, 0), np.where(sizes > 0, dst_hi, 0)
        self.top = self.live = live

    def _unfile(self, slots: list[int]) -> None:
        """Take events out of the coarse grid, the port calls and the route scan's columns."""
        rows = np.asarray(slots, dtype=np.int64)
        rows = rows[self.objects.event[rows] != None]  # noqa: E711 - an object array's test
        if not len(rows):
            return
        geo = self.span[rows, 1] > self.span[rows, 0]  # port calls have no primitives
        if geo.any():  # the same cells as filed: from the same bounding boxes
            keys, owner = self._cells_of(self.geo[rows[geo], :4])
            self.cells.drop(keys, rows[geo][owner])
        for slot in rows[~geo].tolist():
            self.port_calls.get(self.objects.event[slot].terminal or "", set()).discard(slot)
        self.live -= int((self.span[rows, 1] - self.span[rows, 0]).sum())
        self.span[rows] = 0
        self.geo[rows] = np.nan

    def remove(self, slot: int) -> None:
        """Forget an event; the slot is reusable once ``release`` is called."""
        event = self.objects.event[slot]
        if event is not None:
            self._unfile([slot])
            self.slot_of.pop(event.id, None)

    def release(self, slot: int) -> None:
        """Reuse a removed event's slot."""
        self.objects.clear(slot)
        self.table.release(slot)
