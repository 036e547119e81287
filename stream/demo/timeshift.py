"""Re-timing the bundled data to now: a day of the Paris 2024 Games replayed today, closures re-slotted.

Perimeters: the whole data set moves by a whole number of weeks, in Paris wall-clock time, so that
one day of the Games (the one with today's weekday that has the most perimeters in force over the
next hours) falls on today: weekdays and local times of the data are kept. DiaLog's CIFS closures
(June 2023) move by one constant offset too, chosen so that their daily evening slot opens a few
minutes before now; their weekly schedules move with it (slots keep their length and order).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from schemas import Event
from schemas.event import WEEKDAYS
from stream.feeds import timing

PARIS = ZoneInfo("Europe/Paris")
OLYMPICS = (date(2024, 7, 26), date(2024, 8, 11))
PARALYMPICS = (date(2024, 8, 28), date(2024, 9, 8))
SCORE_WINDOW = timedelta(hours=2)
SLOT_LEAD = timedelta(minutes=10)


def games_days() -> list[date]:
    """Every day of the Olympic and Paralympic Games, in order."""
    days: list[date] = []
    for first, last in (OLYMPICS, PARALYMPICS):
        days += [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return days


def shift_local(moment: datetime | None, delta: timedelta) -> datetime | None:
    """``moment`` moved by ``delta`` on Paris wall clocks (08:00 stays 08:00 across a DST change)."""
    if moment is None:
        return None
    wall = moment.astimezone(PARIS).replace(tzinfo=None) + delta
    return wall.replace(tzinfo=PARIS)


def active_between(event: Event, start: datetime, end: datetime) -> bool:
    """True when the event's validity window overlaps [start, end)."""
    after = event.valid_until is None or event.valid_until > start
    return after and (event.valid_from is None or event.valid_from < end)


@dataclass(frozen=True)
class Replay:
    """A day of the Games replayed on ``today``: the data moves by ``today - day`` (whole weeks)."""

    day: date
    today: date

    @property
    def delta(self) -> timedelta:
        """The wall-clock offset applied to every perimeter."""
        return timedelta(days=(self.today - self.day).days)

    @property
    def games_day(self) -> str:
        """'Olympics day 7' or 'Paralympics day 3'."""
        first = OLYMPICS[0] if self.day <= OLYMPICS[1] else PARALYMPICS[0]
        name = "Olympics" if first == OLYMPICS[0] else "Paralympics"
        return f"{name} day {(self.day - first).days + 1}"

    def shift(self, events: Iterable[Event]) -> list[Event]:
        """The events with their validity windows moved to today."""
        return [
            replace(
                e,
                valid_from=shift_local(e.valid_from, self.delta),
                valid_until=shift_local(e.valid_until, self.delta),
            )
            for e in events
        ]


def choose_replay(perimeters: Sequence[Event], now: datetime, day: date | None = None) -> Replay:
    """Today's weekday's Games day with the most perimeters in force over the next two hours."""
    local = now.astimezone(PARIS)
    today = local.date()
    if day is not None:
        return Replay(day, today)
    best: tuple[int, date] | None = None
    for candidate in games_days():
        if candidate.weekday() != today.weekday():
            continue
        start = datetime.combine(candidate, local.time().replace(tzinfo=None), tzinfo=PARIS)
        score = sum(active_between(p, start, start + SCORE_WINDOW) for p in perimeters)
        if best is None or score > best[0]:
            best = (score, candidate)
    assert best is not None  # noqa: S101 - every weekday occurs during the Games
    return Replay(best[1], today)


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def shift_schedule(
    schedule: dict[str, tuple[str, ...]] | None, delta: timedelta
) -> dict[str, tuple[str, ...]] | None:
    """A weekly schedule moved by ``delta`` (whole weeks are no-ops; slots may cross midnight)."""
    if not schedule:
        return schedule
    offset = int(delta.total_seconds() // 60) % (7 * 1440)
    days, minutes = divmod(offset, 1440)
    pairs: list[tuple[str, list[tuple[int, int]]]] = []
    for key, slots in schedule.items():
        for slot in slots:
            start_text, end_text = slot.split("-")
            start, end = _minutes(start_text) + minutes, _minutes(end_text) + minutes
            carry, start = divmod(start, 1440)
            end -= carry * 1440
            if end > 1440:
                end -= 1440  # runs past midnight: timing.schedule continues it on the next day
            day = key if key == "everyday" else WEEKDAYS[(WEEKDAYS.index(key) + days + carry) % 7]
            pairs.append((day, [(start, end)]))
    return timing.schedule(pairs)


@dataclass(frozen=True)
class Reslot:
    """One constant offset for a data set of scheduled closures."""

    delta: timedelta

    def shift(self, events: Iterable[Event]) -> list[Event]:
        """The events moved by ``delta``: windows on wall clocks, schedules with them."""
        return [
            replace(
                e,
                valid_from=shift_local(e.valid_from, self.delta),
                valid_until=shift_local(e.valid_until, self.delta),
                schedule=shift_schedule(e.schedule, self.delta),
            )
            for e in events
        ]


def reference_slot(events: Sequence[Event]) -> datetime:
    """Where a closure data set "starts": the first daily slot on the first day of its window."""
    for event in events:
        daily = (event.schedule or {}).get("everyday")
        if daily and event.valid_from is not None:
            first = event.valid_from.astimezone(PARIS)
            opens = datetime.combine(first.date(), datetime.min.time(), tzinfo=PARIS)
            opens += timedelta(minutes=_minutes(sorted(daily)[0].split("-")[0]))
            return opens if opens >= first else opens + timedelta(days=1)
    starts = [e.valid_from for e in events if e.valid_from is not None]
    return min(starts).astimezone(PARIS)


def choose_reslot(closures: Sequence[Event], now: datetime, lead: timedelta = SLOT_LEAD) -> Reslot:
    """The offset that opens the closures' reference slot ``lead`` before now (whole minutes)."""
    target = (now.astimezone(PARIS) - lead).replace(second=0, microsecond=0, tzinfo=None)
    reference = reference_slot(closures).replace(tzinfo=None)
    return Reslot(target - reference)
