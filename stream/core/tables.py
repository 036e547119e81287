"""Columnar tables of the active routes and events, indexed by slot (slots are reused)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from shapely.geometry.base import BaseGeometry

from schemas import Event, Route
from stream.core.rules import Slots

Array = np.ndarray[Any, Any]


class Table:
    """Numpy columns that grow by doubling; a slot is a row, freed slots are reused."""

    columns: dict[str, tuple[Any, Any]] = {}

    def __init__(self) -> None:
        self._size = 64
        for name, (dtype, fill) in self.columns.items():
            setattr(self, name, np.full(self._size, fill, dtype=dtype))
        self._next = 0
        self._free: list[int] = []
        self._sentinel()

    def allocate(self) -> int:
        """A free slot, its columns reset to their defaults."""
        if self._free:
            slot = self._free.pop()
        else:
            slot = self._next
            self._next += 1
            if slot >= self._size - 1:  # the last row is never handed out (see RouteTable)
                self._grow()
        for name, (_, fill) in self.columns.items():
            getattr(self, name)[slot] = fill
        return slot

    def allocate_many(self, k: int) -> Array:
        """``k`` free slots at once, their columns reset to their defaults."""
        reuse = [self._free.pop() for _ in range(min(k, len(self._free)))]
        fresh = np.arange(self._next, self._next + k - len(reuse), dtype=np.int64)
        self._next += len(fresh)
        while self._next > self._size - 1:
            self._grow()
        slots = np.concatenate((np.asarray(reuse, dtype=np.int64), fresh))
        for name, (_, fill) in self.columns.items():
            getattr(self, name)[slots] = fill
        return slots

    def release(self, slot: int) -> None:
        """Give a slot back."""
        self._free.append(slot)

    def _grow(self) -> None:
        new = self._size * 2
        for name, (dtype, fill) in self.columns.items():
            arr = np.full(new, fill, dtype=dtype)
            arr[: self._size] = getattr(self, name)
            setattr(self, name, arr)
        self._size = new
        self._sentinel()

    def _sentinel(self) -> None:
        """Set up the last row, which is never handed out."""


class EventTable(Table):
    """Per-event rule inputs."""

    thr: Array
    vf: Array
    vu: Array
    has_sched: Array
    max_w: Array
    max_h: Array
    max_wd: Array
    max_l: Array
    crit_mask: Array
    hazmat: Array
    has_cond: Array
    forward: Array

    columns = {
        "thr": (np.float64, 0.0),  # corridor in metres (0 for a perimeter: the route must enter)
        "vf": (np.float64, np.nan),
        "vu": (np.float64, np.nan),
        "has_sched": (np.bool_, False),
        "max_w": (np.float64, np.nan),
        "max_h": (np.float64, np.nan),
        "max_wd": (np.float64, np.nan),
        "max_l": (np.float64, np.nan),
        "crit_mask": (np.int64, 0),
        "hazmat": (np.bool_, False),
        "has_cond": (np.bool_, False),
        "forward": (np.bool_, False),
    }


class RouteTable(Table):
    """Per-route vehicle, timing and progress."""

    w: Array
    h: Array
    wd: Array
    ln: Array
    crit: Array
    hazmat: Array
    speed: Array
    base_t: Array
    base_s: Array
    start: Array
    cur_p: Array
    has_pos: Array
    px: Array
    py: Array

    columns = {
        "w": (np.float64, np.nan),
        "h": (np.float64, np.nan),
        "wd": (np.float64, np.nan),
        "ln": (np.float64, np.nan),
        "crit": (np.int64, -1),
        "hazmat": (np.bool_, False),
        "speed": (np.float64, 1.0),  # metres per second
        "base_t": (np.float64, 0.0),  # when the vehicle is at base_s
        "base_s": (np.float64, 0.0),  # distance along the route of the vehicle
        "start": (np.int64, -1),  # first vertex in the segment pool
        "cur_p": (np.int64, -1),  # segment the vehicle is on (the first one before a position)
        "has_pos": (np.bool_, False),
        "px": (np.float64, np.nan),  # the vehicle's position snapped to the route
        "py": (np.float64, np.nan),
    }

    def _sentinel(self) -> None:
        """Row -1 stands for "no route": its vehicle is past every segment, so a segment without
        a route (slot -1 in the grid's route map) can never take part in a match."""
        self.cur_p[-1] = np.iinfo(np.int64).max


class EventObjects:
    """Per event slot, what does not fit a numeric column (None for a free slot): the event
    record, its metric polygon (areas: their primitives are in the event index), its compiled
    weekly schedule, and its fields of its alerts' wire form once encoded.

    Object arrays written for a whole batch at once: an object per event (a dataclass
    instance) cost ~0.3 us to build and was a third of the storing of a batch."""

    def __init__(self) -> None:
        self.event: Array = np.full(64, None, dtype=object)  # Event
        self.polygon: Array = np.full(64, None, dtype=object)  # BaseGeometry
        self.schedule: Array = np.full(64, None, dtype=object)  # Slots
        self.wire: Array = np.full(64, None, dtype=object)  # tuple[bytes, bytes]

    def put(
        self,
        slots: Array,
        events: Sequence[Event],
        polygons: Sequence[BaseGeometry | None] | None,
        schedules: Sequence[Slots | None],
    ) -> None:
        """Store the events at their slots (distinct), without a polygon if ``polygons`` is None."""
        top = int(slots.max()) + 1 if len(slots) else 0
        if top > len(self.event):
            more = max(top, 2 * len(self.event)) - len(self.event)
            for name in ("event", "polygon", "schedule", "wire"):
                setattr(self, name, np.concatenate((getattr(self, name), np.full(more, None, dtype=object))))
        self.event[slots] = objects(events)
        self.polygon[slots] = None if polygons is None else objects(polygons)
        self.schedule[slots] = objects(schedules)
        self.wire[slots] = None

    def clear(self, slot: int) -> None:
        """Free a slot."""
        self.event[slot] = self.polygon[slot] = self.schedule[slot] = self.wire[slot] = None


def objects(items: Sequence[Any]) -> Array:
    """An object array of the items, as they are (a record is not read as a sequence; a tenth of
    the time of assigning the list to an empty object array, which inspects every item)."""
    out: Array = np.fromiter(items, dtype=object, count=len(items))
    return out


@dataclass(slots=True)
class RouteState:
    """An active route: its record without coordinates (those live, projected, in the grid's
    vertex pool)."""

    route: Route
    slot: int
    n: int
    length_m: float
    position: tuple[float, float, float] | None = None  # last lon, lat, POSIX time
    wire: bytes | None = None  # its fields of its alerts' wire form, once encoded (``wire``)
