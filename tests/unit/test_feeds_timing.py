"""Weekly schedules as feeds give them (day, minute pairs) read into the event's form."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.feeds.base import RecordError
from stream.feeds.timing import DAYS, schedule

SLOT = re.compile(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d")
MINUTE = st.integers(0, 24 * 60)
DAY = st.tuples(st.sampled_from(DAYS), st.lists(st.tuples(MINUTE, MINUTE), max_size=4))


def minutes(slot: str) -> tuple[int, int]:
    start, end = (int(t[:2]) * 60 + int(t[3:]) for t in slot.split("-"))
    return start, end


@given(st.lists(DAY, max_size=3))  # at most 24 slots a day: none is dropped
def test_slots_within_the_day_come_out_as_hh_mm(days: list[tuple[str, list[tuple[int, int]]]]) -> None:
    """Every slot comes out as HH:MM-HH:MM, start before end; an overnight slot is cut at midnight
    and goes on the next morning; an empty or impossible slot is refused as a record error."""
    try:
        result = schedule(days)
    except RecordError as exc:
        assert exc.reason == "bad_schedule"
        assert any(s == e or s == 24 * 60 for _, pairs in days for s, e in pairs)
        return
    for day, slots in (result or {}).items():
        assert day in DAYS and list(slots) == sorted(set(slots))
        for slot in slots:
            assert SLOT.fullmatch(slot), slot
            start, end = minutes(slot)
            assert start < end
    wanted = {(day, s, e) for day, pairs in days for s, e in pairs if s < e}
    found = {(day, *minutes(slot)) for day, slots in (result or {}).items() for slot in slots}
    assert wanted <= found


@pytest.mark.parametrize("pair", [(-60, 120), (120, 24 * 60 + 1), (24 * 60, 60), (600, 600)])
def test_a_slot_outside_the_day_is_a_record_error(pair: tuple[int, int]) -> None:
    """Minutes outside 0..1440 (from a caller's arithmetic) are refused, never an IndexError."""
    with pytest.raises(RecordError) as caught:
        schedule([("monday", [pair])])
    assert caught.value.reason == "bad_schedule"
