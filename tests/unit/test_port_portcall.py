"""Port-call delays: a new time versus the previous estimate gives delay_minutes and a clear title."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas import Event
from stream.core.port.portcall import event_time, with_delay

T0 = datetime(2025, 3, 14, 13, 0, tzinfo=UTC)


def _call(when: datetime) -> Event:
    return Event(
        id="tdf:PC1:BERTH:ARRI",
        source="tdf",
        kind="port_call",
        geometry={"type": "Point", "coordinates": [0.108, 49.468]},
        valid_from=when,
        title="CMA CGM X: berth arrival (estimated) at FRLEH-TDF",
        terminal="FRLEH-TDF",
        details={"event_time": when.isoformat()},
    )


@pytest.mark.parametrize(
    ("shift_min", "delay", "word"),
    [(45, 45, "delayed by 45 min"), (-30, -30, "advanced by 30 min"), (0, 0, None)],
)
def test_delay_versus_previous_estimate(shift_min: int, delay: int, word: str | None) -> None:
    """A later time is a delay, an earlier one an advance; the title says so in local time."""
    event = with_delay(_call(T0 + timedelta(minutes=shift_min)), T0)
    assert event.details["delay_minutes"] == delay
    assert event.details["previous_time"] == T0.isoformat()
    if word is None:
        assert event.title == _call(T0).title
    else:
        assert word in (event.title or "") and "was 14/03 14:00" in (event.title or "")


def test_first_estimate_has_no_delay_and_gets_the_terminal_name() -> None:
    """The first time of a port call carries no delay; a known terminal name is filled in."""
    event = with_delay(_call(T0), None, "Terminal de France")
    assert "delay_minutes" not in event.details and event.details["terminal_name"] == "Terminal de France"


def test_event_time_falls_back_to_valid_from() -> None:
    """Without details.event_time, the announced time is valid_from."""
    event = Event(id="a:1", source="a", kind="port_call", geometry={}, valid_from=T0)
    assert event_time(event) == T0
