"""Timestamps and weekly schedules as feeds write them, read into the event's forms."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache

from schemas.event import WEEKDAYS
from stream.feeds.base import RecordError

_SLOT = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::\d{2})?\s*-\s*(\d{1,2}):(\d{2})(?::\d{2})?\s*$")
DAYS = ("everyday", *WEEKDAYS)
MAX_SLOTS = 24


def instant(value: str | None, field: str) -> datetime | None:
    """An ISO 8601 timestamp with offset (None when absent); naive or bad values raise."""
    if value is None or not value.strip():
        return None
    return _instant(value, field)


@lru_cache(maxsize=4096)
def _instant(value: str, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise RecordError(f"{field} {value[:64]!r} is not an ISO 8601 time", "bad_time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise RecordError(f"{field} {value[:64]!r} has no UTC offset", "bad_time")
    return parsed


def window(start: datetime | None, end: datetime | None) -> None:
    """Refuse a validity window whose end is before its start."""
    if start is not None and end is not None and end < start:
        raise RecordError(f"end {end.isoformat()} is before start {start.isoformat()}", "bad_time")


def _hhmm(hour: int, minute: int, text: str) -> int:
    if hour > 24 or minute > 59 or (hour == 24 and minute):
        raise RecordError(f"time slot {text!r} has an impossible time", "bad_schedule")
    return hour * 60 + minute


def _fmt(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def slots(text: str) -> list[tuple[int, int]]:
    """'12:00-14:00,19:00-21:00' as (start, end) minute pairs; end may be before start."""
    found = []
    for part in text.split(","):
        if not part.strip():
            continue
        match = _SLOT.match(part)
        if match is None:
            raise RecordError(f"time slot {part.strip()[:32]!r} is not HH:MM-HH:MM", "bad_schedule")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        found.append((_hhmm(h1, m1, part), _hhmm(h2, m2, part)))
    if not found or len(found) > MAX_SLOTS:
        raise RecordError(f"schedule {text[:64]!r} has no usable time slot", "bad_schedule")
    return found


Schedule = dict[str, tuple[str, ...]]


def schedule(days: Iterable[tuple[str, list[tuple[int, int]]]]) -> Schedule | None:
    """Day -> slots (minutes of the day, 0 to 1440) as the event's schedule; overnight slots
    continue on the next day."""
    table: dict[str, list[str]] = {}
    for day, pairs in days:
        if day not in DAYS:
            raise RecordError(f"schedule day {day[:32]!r} is not a weekday or everyday", "bad_schedule")
        entry = table.setdefault(day, [])
        for start, end in pairs:
            if start == end or not (0 <= start < 24 * 60 and 0 <= end <= 24 * 60):
                slot = f"{_fmt(start)}-{_fmt(end)}"
                raise RecordError(f"time slot {slot} is empty or not within a day", "bad_schedule")
            if start < end:
                _add(entry, f"{_CLOCK[start]}-{_CLOCK[end]}")
                continue
            _add(entry, f"{_CLOCK[start]}-24:00")
            if end:
                nxt = day if day == "everyday" else WEEKDAYS[(WEEKDAYS.index(day) + 1) % 7]
                _add(table.setdefault(nxt, []), f"00:00-{_CLOCK[end]}")
    return {day: tuple(sorted(v)) for day, v in table.items() if v} or None


def _add(entry: list[str], slot: str) -> None:
    if slot not in entry and len(entry) < MAX_SLOTS:
        entry.append(slot)


_CLOCK = [_fmt(minutes) for minutes in range(24 * 60 + 1)]
"""'HH:MM' of each minute of the day, and '24:00' (read, not formatted, per slot)."""
