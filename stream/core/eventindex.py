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

    def __init__(self, corridor_m: float, margin_m: float, cell_m: float = 250.0) -> None:
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
        slots = np.empty(len(events), dtype=np.int64)
        table = self.table
        for i, event in enumerate(events):
            slot = self.slot_of.get(event.id)
            if slot is None:
                slot = table.allocate()
                self.slot_of[event.id] = slot
                if slot >= len(self.states):
                    self.states.extend([None] * (slot + 1 - len(self.states)))
            else:
                self._unfile(slot)
            slots[i] = slot
            table.vf[slot] = epoch(event.valid_from)
            table.vu[slot] = epoch(event.valid_until)
            schedule = compile_schedule(event.schedule)
            table.has_sched[slot] = schedule is not None
            cond = event_conditions(event)
            table.max_w[slot], table.max_h[slot], table.max_wd[slot], table.max_l[slot] = cond[:4]
            table.crit_mask[slot], table.hazmat[slot], table.has_cond[slot] = cond[4:]
            if shapes is None:  # port call: concerns routes by destination
                empty = np.zeros((0, 4))
                state = EventState(event, slot, empty, None, empty, schedule, ())
                self.port_calls.setdefault(event.terminal or "", set()).add(slot)
            else:
                lo, hi = int(shapes.prim_lo[i]), int(shapes.prim_hi[i])
                polygon = shapes.polygons[i]
                areal = polygon is not None
                perimeter = areal and event.kind == "perimeter"
                table.thr[slot] = 0.0 if perimeter else self.corridor_m
                table.forward[slot] = event.direction == "forward" and not areal
                state = EventState(event, slot, shapes.prims[lo:hi], polygon, shapes.bbox[i], schedule, ())
                self._file(state)
            self.states[slot] = state
        return slots

    def _file(self, state: EventState) -> None:
        b, m, c = state.bbox, self.margin_m, self.cell_m
        x0, y0 = int(np.floor((b[0] - m) / c)), int(np.floor((b[1] - m) / c))
        x1, y1 = int(np.floor((b[2] + m) / c)), int(np.floor((b[3] + m) / c))
        cells = tuple(
            ((ix + _OFF) << 32) | (iy + _OFF) for ix in range(x0, x1 + 1) for iy in range(y0, y1 + 1)
        )
        for cell in cells:
            self.cells.setdefault(cell, set()).add(state.slot)
        state.cells = cells

    def _unfile(self, slot: int) -> None:
        state = self.states[slot]
        if state is None:
            return
        for cell in state.cells:
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
