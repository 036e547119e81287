"""Re-timing the bundled data: a Games day replayed today, closures re-slotted, schedules moved."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from stream.demo.scenario import in_force_at, load_closures, load_perimeters
from stream.demo.timeshift import PARIS, Replay, choose_replay, choose_reslot, shift_local, shift_schedule

NOW = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)  # a Monday, 15:30 in Paris (CET)


@pytest.mark.parametrize(
    ("schedule", "minutes", "expected"),
    [
        ({"everyday": ("18:00-22:00",)}, 0, {"everyday": ("18:00-22:00",)}),
        ({"everyday": ("18:00-22:00",)}, 7 * 1440, {"everyday": ("18:00-22:00",)}),
        ({"everyday": ("18:00-22:00",)}, -150, {"everyday": ("15:30-19:30",)}),
        ({"tuesday": ("12:00-14:00",)}, 1440 + 60, {"wednesday": ("13:00-15:00",)}),
        ({"tuesday": ("22:00-23:30",)}, 60, {"tuesday": ("23:00-24:00",), "wednesday": ("00:00-00:30",)}),
        ({"sunday": ("23:30-24:00",)}, 60, {"monday": ("00:30-01:00",)}),
    ],
)
def test_shift_schedule(
    schedule: dict[str, tuple[str, ...]], minutes: int, expected: dict[str, tuple[str, ...]]
) -> None:
    """Slots move by the offset, keep their length, and continue on the next day past midnight."""
    assert shift_schedule(schedule, timedelta(minutes=minutes)) == expected


def test_shift_local_keeps_wall_clock_across_daylight_saving() -> None:
    """08:00 in Paris in July is 08:00 in Paris in November after a whole-week shift."""
    july = datetime(2024, 7, 29, 8, 0, tzinfo=PARIS)
    moved = shift_local(july, timedelta(weeks=121))
    assert moved is not None
    assert moved.astimezone(PARIS).hour == 8 and moved.utcoffset() == timedelta(hours=1)


def test_replay_picks_a_games_day_with_todays_weekday_and_perimeters_in_force() -> None:
    """The replayed day has today's weekday, falls during the Games, and puts perimeters in force now."""
    perimeters = load_perimeters()
    replay = choose_replay(perimeters, NOW)
    assert replay.day.weekday() == NOW.astimezone(PARIS).weekday()
    assert date(2024, 7, 26) <= replay.day <= date(2024, 9, 8)
    assert replay.delta.days % 7 == 0 and replay.today == date(2026, 11, 23)
    live = [p for p in replay.shift(perimeters) if in_force_at(p, NOW)]
    assert len(live) >= 10


def test_replay_moves_each_perimeter_by_whole_days_on_the_wall_clock() -> None:
    """A perimeter's local start and end times are those of the original data."""
    perimeters = load_perimeters()[:50]
    replay = Replay(date(2024, 8, 1), date(2026, 11, 26))
    for before, after in zip(perimeters, replay.shift(perimeters), strict=True):
        assert before.valid_from is not None and after.valid_from is not None
        old, new = before.valid_from.astimezone(PARIS), after.valid_from.astimezone(PARIS)
        assert (new.date() - old.date()).days == replay.delta.days and new.time() == old.time()


def test_reslot_opens_the_daily_closures_just_before_now() -> None:
    """After re-slotting, DiaLog's daily closures are in force now and were not ten minutes earlier."""
    closures = choose_reslot(load_closures(), NOW).shift(load_closures())
    daily = [c for c in closures if c.schedule and "everyday" in c.schedule]
    assert daily and all(in_force_at(c, NOW) for c in daily)
    assert not any(in_force_at(c, NOW - timedelta(minutes=11)) for c in daily)
