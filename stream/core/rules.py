"""Matching rules other than geometry: validity in time, weekly schedules, vehicle conditions.

Times are POSIX seconds (floats) and vehicle conditions numbers, kept in the tables' columns, so
that ``rulescan`` evaluates the rules of a whole batch in one compiled pass. Vehicle conditions
follow ``schemas.VehicleConditions``: an event with conditions applies to a vehicle that exceeds
any limit, whose Crit'Air class is listed, or that carries dangerous goods when ``hazmat`` is set.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from schemas import Event, Vehicle
from schemas.event import WEEKDAYS

Array = np.ndarray[Any, Any]
_CRITAIR: dict[str, int] = {c: i for i, c in enumerate(("0", "1", "2", "3", "4", "5", "nc"))}

Slots = tuple[tuple[tuple[int, int], ...], ...]  # per weekday (Monday first): (start, end) minutes


def epoch(value: datetime | None) -> float:
    """A datetime as POSIX seconds; None as NaN (an open bound)."""
    return float("nan") if value is None else value.timestamp()


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def compile_schedule(schedule: dict[str, tuple[str, ...]] | None) -> Slots | None:
    """Weekday slots as minutes of the day; a slot ending before it starts runs past midnight."""
    if not schedule:
        return None
    days: list[list[tuple[int, int]]] = [[] for _ in WEEKDAYS]
    for key, slots in schedule.items():
        targets = range(7) if key == "everyday" else [WEEKDAYS.index(key.lower())]
        for slot in slots:
            start_text, end_text = slot.split("-")
            start, end = _minutes(start_text), _minutes(end_text)
            for day in targets:
                if end > start:
                    days[day].append((start, end))
                else:  # overnight: until midnight, then the next morning
                    days[day].append((start, 1440))
                    days[(day + 1) % 7].append((0, end))
    return tuple(tuple(d) for d in days)


@cache
def zone(name: str) -> ZoneInfo:
    """The time zone of that IANA name (ZoneInfoNotFoundError for an unknown one)."""
    return ZoneInfo(name)


def in_schedule(slots: Slots, timezone: str, when: float) -> bool:
    """True when POSIX time ``when`` falls in one of the weekly slots (local time of timezone)."""
    local = datetime.fromtimestamp(when, zone(timezone))
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in slots[local.weekday()])


def critair_code(vehicle: Vehicle) -> int:
    """The vehicle's Crit'Air class as a bit position (-1 when unknown)."""
    if vehicle.critair is None:
        return -1
    return _CRITAIR.get(vehicle.critair.lower(), -1)


def event_conditions(event: Event) -> tuple[float, float, float, float, int, bool, bool]:
    """(max weight, height, width, length, Crit'Air mask, hazmat, has conditions) of an event."""
    cond = event.vehicles
    if cond is None or cond.is_empty():
        nan = float("nan")
        return nan, nan, nan, nan, 0, False, False
    mask = 0
    for c in cond.critair or ():
        code = _CRITAIR.get(str(c).lower())
        if code is not None:
            mask |= 1 << code
    limits = (cond.max_weight_t, cond.max_height_m, cond.max_width_m, cond.max_length_m)
    w, h, wd, ln = (float("nan") if v is None else float(v) for v in limits)
    return w, h, wd, ln, mask, bool(cond.hazmat), True


def vehicle_values(vehicle: Vehicle) -> tuple[float, float, float, float, int, bool]:
    """(weight, height, width, length, Crit'Air code, hazmat) of a vehicle; NaN when unknown."""
    values = (vehicle.weight_t, vehicle.height_m, vehicle.width_m, vehicle.length_m)
    w, h, wd, ln = (float("nan") if v is None else float(v) for v in values)
    return w, h, wd, ln, critair_code(vehicle), vehicle.hazmat
