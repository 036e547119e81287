"""The active events, for the other direction of the join: which events lie near a route.

Events are filed in a coarse grid (cell -> event slots) over their bounding box grown by the
search margin; a route looks up the cells of its segment pieces. Port calls are filed by
terminal instead: they concern routes by destination, whatever their geometry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from schemas import Event
from stream.core.rules import compile_schedule, epoch, event_conditions
from stream.core.shapes import ShapeBatch
from stream.core.tables import EventState, EventTable

Array = np.ndarray[Any, Any]
_OFF = 1 << 30


class EventIndex:
    """Active events: rule columns, shapes, a coarse grid and the port calls by terminal."""

    def __init__(self, corridor_m: float, margin_m: float, cell_m: float = 150.0) -> None:
        self.corridor_m = corridor_m
        self.margin_m = margin_m
        self.cell_m = cell_m
        self.table = EventTable()
        self.states: list[EventState | None] = []
        self.slot_of: dict[str, int] = {}
        self.cells: dict[int, set[int]] = {}
        self.port_calls: dict[str, set[int]] = {}

    def __len__(self) -> int:
        return len(self.slot_of)

    def cells_of(self, x: Array, y: Array) -> Array:
        """Distinct coarse cells of metric points."""
        ix = np.floor(x / self.cell_m).astype(np.int64) + _OFF
        iy = np.floor(y / self.cell_m).astype(np.int64) + _OFF
        return np.unique((ix << 32) | iy)

    def near(self, cells: Iterable[int]) -> set[int]:
        """Event slots filed in any of the cells."""
        found: set[int] = set()
        for cell in cells:
            hit = self.cells.get(cell)
            if hit:
                found |= hit
        return found

    def store(self, events: Sequence[Event], shapes: ShapeBatch | None, at: datetime) -> Array:
        """File new or changed events (replacing earlier versions); returns their slots."""
        table = self.table
        slots = np.empty(len(events), dtype=np.int64)
        new: list[int] = []
        for i, event in enumerate(events):
            slot = self.slot_of.get(event.id)
            if slot is None:
                new.append(i)
            else:
                self._unfile(slot)
                slots[i] = slot
        if new:
            fresh = table.allocate_many(len(new))
            slots[new] = fresh
            self.slot_of.update(zip((events[i].id for i in new), fresh.tolist(), strict=True))
            top = int(fresh.max()) + 1
            if top > len(self.states):
                self.states.extend([None] * (top - len(self.states)))
        table.vf[slots] = [epoch(e.valid_from) for e in events]
        table.vu[slots] = [epoch(e.valid_until) for e in events]
        schedules = [compile_schedule(e.schedule) if e.schedule else None for e in events]
        table.has_sched[slots] = [s is not None for s in schedules]
        conds = [event_conditions(e) for e in events]
        for k, name in enumerate(("max_w", "max_h", "max_wd", "max_l", "crit_mask", "hazmat", "has_cond")):
            getattr(table, name)[slots] = [c[k] for c in conds]
        if shapes is None:  # port calls: they concern routes by destination
            empty, none = np.zeros((0, 4)), np.zeros(0, dtype=np.int64)
            for event, slot, schedule in zip(events, slots.tolist(), schedules, strict=True):
                self.states[slot] = EventState(event, slot, empty, None, empty, schedule, none)
                self.port_calls.setdefault(event.terminal or "", set()).add(slot)
            return slots
        areal = [p is not None for p in shapes.polygons]
        perimeter = [a and e.kind == "perimeter" for a, e in zip(areal, events, strict=True)]
        table.thr[slots] = np.where(perimeter, 0.0, self.corridor_m)
        table.forward[slots] = [
            e.direction == "forward" and not a for e, a in zip(events, areal, strict=True)
        ]
        self._file(events, slots, shapes, schedules)
        return slots

    def _file(self, events: Sequence[Event], slots: Array, shapes: ShapeBatch, schedules: list[Any]) -> None:
        """Keep the events' states and file them in the coarse grid (the (event, cell) pairs are
        built with array operations)."""
        m, c = self.margin_m, self.cell_m
        span = np.floor((shapes.bbox + np.array([-m, -m, m, m])) / c).astype(np.int64) + _OFF
        nx = span[:, 2] - span[:, 0] + 1
        ny = span[:, 3] - span[:, 1] + 1
        per = nx * ny
        owner = np.repeat(np.arange(len(slots)), per)
        k = np.arange(len(owner)) - np.repeat(np.cumsum(per) - per, per)
        keys = ((span[owner, 0] + k // ny[owner]) << 32) | (span[owner, 1] + k % ny[owner])
        cells_map = self.cells
        get = cells_map.get
        for cell, slot in zip(keys.tolist(), slots[owner].tolist(), strict=True):
            hit = get(cell)
            if hit is None:
                cells_map[cell] = {slot}
            else:
                hit.add(slot)
        ends = np.cumsum(per).tolist()
        lo, hi, polygons, bbox, prims = (
            shapes.prim_lo.tolist(),
            shapes.prim_hi.tolist(),
            shapes.polygons,
            shapes.bbox,
            shapes.prims,
        )
        states, start = self.states, 0
        for i, slot in enumerate(slots.tolist()):
            states[slot] = EventState(
                events[i],
                slot,
                prims[lo[i] : hi[i]],
                polygons[i],
                bbox[i],
                schedules[i],
                keys[start : ends[i]],
            )
            start = ends[i]

    def _unfile(self, slot: int) -> None:
        state = self.states[slot]
        if state is None:
            return
        for cell in state.cells.tolist():
            hit = self.cells.get(cell)
            if hit is not None:
                hit.discard(slot)
                if not hit:
                    del self.cells[cell]
        if state.polygon is None and not len(state.prims):
            self.port_calls.get(state.event.terminal or "", set()).discard(slot)

    def remove(self, slot: int) -> None:
        """Forget an event; the slot is reusable once ``release`` is called."""
        state = self.states[slot]
        if state is not None:
            self._unfile(slot)
            self.slot_of.pop(state.event.id, None)

    def release(self, slot: int) -> None:
        """Reuse a removed event's slot."""
        self.states[slot] = None
        self.table.release(slot)
