"""Times read from an alert's bytes for the latency histograms."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stream.runtime.metrics import epoch_of


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"2026-12-07T15:00:00.250000+00:00", datetime(2026, 12, 7, 15, 0, 0, 250000, UTC).timestamp()),
        (b"2026-12-07T15:00:00Z", datetime(2026, 12, 7, 15, tzinfo=UTC).timestamp()),
        (b"2026-12-07T16:00:00+01:00", datetime(2026, 12, 7, 15, tzinfo=UTC).timestamp()),
        (b"2026-12-07T15:00:00", 0.0),  # naive: its instant is unknown
        (b"yesterday", 0.0),
        (b"\xff\xfe", 0.0),
        (b"", 0.0),
    ],
)
def test_epoch_of_reads_times_with_an_offset_and_nothing_else(text: bytes, expected: float) -> None:
    assert epoch_of(text) == expected
