"""Events fanned out to partitions travel in size-bounded envelopes and come back unchanged."""

from __future__ import annotations

from schemas import Event
from stream.core.partition import StampedEvent
from stream.runtime.redis_state import pack_stamped, unpack_stamped


def _stamped(n: int) -> StampedEvent:
    geometry = {"type": "LineString", "coordinates": [[2.3 + i * 1e-4, 48.8] for i in range(20)]}
    return StampedEvent(1_000 + n, Event(id=f"t:{n}", source="t", kind="closure", geometry=geometry))


def test_envelopes_are_bounded_and_lose_nothing() -> None:
    """300 events split into envelopes under the byte limit, in order, none lost or repeated."""
    items = [_stamped(n) for n in range(300)]
    envelopes = pack_stamped(items, max_bytes=20_000)
    assert len(envelopes) > 1
    assert all(len(e) <= 20_000 for e in envelopes)
    assert [s for e in envelopes for s in unpack_stamped(e)] == items


def test_an_event_larger_than_the_limit_travels_alone() -> None:
    """An event bigger than the limit is not dropped: it gets an envelope of its own."""
    items = [_stamped(1), _stamped(2)]
    envelopes = pack_stamped(items, max_bytes=100)
    assert len(envelopes) == 2
    assert [s for e in envelopes for s in unpack_stamped(e)] == items


def test_no_events_no_envelope() -> None:
    """An empty batch sends nothing."""
    assert pack_stamped([]) == []


def test_driver_partition_is_stable_and_spread() -> None:
    """A driver always maps to the same partition, in any process; drivers spread over all of them."""
    import subprocess
    import sys

    from stream.runtime.envelopes import partition_of

    code = "from stream.runtime.envelopes import partition_of; print(partition_of('truck-001', 8))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == partition_of("truck-001", 8)
    assert {partition_of(f"d{n}", 8) for n in range(200)} == set(range(8))


def test_a_single_record_reads_as_a_batch_of_one() -> None:
    """An envelope holding one bare object (not an array) still unpacks to one record."""
    from stream.runtime.envelopes import unpack

    assert unpack(b'{"a": 1}') == [{"a": 1}]
    assert unpack(b'[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]
