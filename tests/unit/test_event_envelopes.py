"""Events on corridor.events: packed per partition of their id in bounded envelopes, read one by one."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.geometry import DEFAULT_LIMITS
from stream.runtime.envelopes import pack_by_partition, partition_of, read_events, unpack

IDS = [f"city:{n}" for n in range(12)]


def _event(event_id: str, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": event_id,
        "source": "city",
        "kind": "closure",
        "geometry": {"type": "Point", "coordinates": [2.35, 48.85]},
        "valid_from": None,
        "valid_until": None,
        "status": "active",
    }
    record.update(changes)
    return record


@settings(max_examples=200, deadline=None)
@given(
    sends=st.lists(st.tuples(st.sampled_from(IDS), st.integers(0, 300)), max_size=120),
    partitions=st.integers(1, 8),
    max_bytes=st.integers(40, 2_000),
    max_count=st.integers(1, 20),
)
def test_packing_keeps_every_id_on_one_partition_in_order(
    sends: list[tuple[str, int]], partitions: int, max_bytes: int, max_count: int
) -> None:
    """Whatever the mix and sizes, each id's versions are on its partition, in order, none lost or
    repeated, and every envelope keeps its bounds (a record over the byte bound travels alone)."""
    records = [
        (event_id, orjson.dumps({"id": event_id, "seq": seq, "pad": "x" * pad}))
        for seq, (event_id, pad) in enumerate(sends)
    ]
    packed = pack_by_partition(records, partitions, max_bytes, max_count)
    arrived: dict[str, list[int]] = {}
    partition_of_id: dict[str, int] = {}
    for partition, envelope in packed:
        items = unpack(envelope)
        assert 1 <= len(items) <= max_count
        assert len(envelope) <= max_bytes or len(items) == 1
        for item in items:
            assert partition_of_id.setdefault(item["id"], partition) == partition
            assert partition == partition_of(item["id"], partitions)
            arrived.setdefault(item["id"], []).append(item["seq"])
    expected: dict[str, list[int]] = {}
    for seq, (event_id, _) in enumerate(sends):
        expected.setdefault(event_id, []).append(seq)
    assert arrived == expected


def test_an_envelope_half_bad_refuses_exactly_its_bad_records() -> None:
    """Of six records, the three bad ones are refused by index with their reasons; the rest are read."""
    records = [
        _event("city:a"),
        _event("city:b", timezone="Mars/Olympus", schedule={"everyday": ["08:00-09:00"]}),
        _event("city:c"),
        5,
        _event("city:d", geometry={"type": "Point", "coordinates": [0, 0]}),
        _event("city:e"),
    ]
    decoded = read_events(orjson.dumps(records), DEFAULT_LIMITS, 900_000)
    assert [e.id for e in decoded.events] == ["city:a", "city:c", "city:e"]
    assert [(index, exc.reason) for index, exc, _ in decoded.refused] == [
        (1, "bad_timezone"),
        (3, "not_an_object"),
        (4, "null_position"),
    ]
    assert [orjson.loads(raw) for _, _, raw in decoded.refused] == [records[1], 5, records[4]]


def test_a_single_event_is_read_as_before() -> None:
    """A message that is one event object (the interop format) is read as that event."""
    decoded = read_events(orjson.dumps(_event("city:one")))
    assert [e.id for e in decoded.events] == ["city:one"] and decoded.refused == []


def test_an_envelope_over_its_bounds_is_refused_whole() -> None:
    """An envelope over the byte bound, over the count bound, or not JSON is one refusal, unread."""
    many = orjson.dumps([_event(f"city:{n}") for n in range(4)])
    assert [(i, e.reason) for i, e, _ in read_events(many, max_bytes=100).refused] == [(None, "too_large")]
    refused = read_events(many, max_count=3).refused
    assert [(i, e.reason) for i, e, _ in refused] == [(None, "too_many_records")]
    refused = read_events(b'[{"id": "x",').refused
    assert [(i, e.reason) for i, e, _ in refused] == [(None, "undecodable")]


def test_a_kind_filter_skips_other_kinds_unread() -> None:
    """With a kind, records of other kinds are neither read nor refused."""
    records = [_event("city:a"), {"kind": "closure", "id": 5}, _event("ais:1", kind="vessel")]
    decoded = read_events(orjson.dumps(records), kind="vessel")
    assert [e.id for e in decoded.events] == ["ais:1"] and decoded.refused == []
