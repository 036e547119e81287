"""The producer never sends what the broker would refuse: records too large or unencodable are named."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from schemas import Event, Rejection
from schemas.codec import dumps
from stream.ingest.producer import Publisher, RecordTooLarge, RecordUnencodable
from tests.support.kafka import read_topic
from tests.support.processes import Deployment


def _event(event_id: str, **changes: Any) -> Event:
    event = Event.from_dict(
        {
            "id": event_id,
            "source": "havre",
            "kind": "roadworks",
            "geometry": {"type": "Point", "coordinates": [0.12, 49.47]},
            "valid_from": datetime(2030, 6, 1, tzinfo=UTC).isoformat(),
            "valid_until": None,
            "status": "active",
            "title": "one lane",
        }
    )
    return replace(event, **changes)


def _nested(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["a"] = {}
        node = node["a"]
    return root


async def test_a_record_too_large_is_refused_by_name_and_nothing_of_the_call_is_sent(
    deployment: Deployment,
) -> None:
    """An event over a broker message raises RecordTooLarge (id, sizes); nothing of that call is sent."""
    async with Publisher(deployment.settings) as publisher:
        huge = _event("havre:huge", details={"text": "x" * 1_100_000})
        with pytest.raises(RecordTooLarge) as caught:
            await publisher.events([_event("havre:fine"), huge])
        assert caught.value.record_id == "havre:huge" and caught.value.reason == "too_large"
        assert caught.value.size > caught.value.limit == 1_048_576 and "havre:huge" in str(caught.value)
        empty = DefaultRecordBatchBuilder.estimate_size_in_bytes(
            b"havre:edge", dumps(_event("havre:edge", details={"text": ""})), []
        )
        edge = _event("havre:edge", details={"text": "x" * (1_048_576 - empty - 40)})
        assert DefaultRecordBatchBuilder.estimate_size_in_bytes(b"havre:edge", dumps(edge), []) < 1_048_576
        with pytest.raises(RecordTooLarge):  # passes aiokafka's own check, not with the request envelope
            publisher.encode_event(edge)
        await publisher.events([_event("havre:after")])
        arrived = await read_topic(deployment.settings, "events", 2, timeout=5)
    assert [e["id"] for e in arrived] == ["havre:after"]


async def test_a_record_nested_too_deep_is_refused_by_name(deployment: Deployment) -> None:
    """An event the encoder refuses (details 255 deep) raises RecordUnencodable naming it."""
    async with Publisher(deployment.settings) as publisher:
        with pytest.raises(RecordUnencodable) as caught:
            await publisher.events([_event("havre:deep", details=_nested(255))])
    assert caught.value.record_id == "havre:deep" and "cannot be encoded" in caught.value.error


async def test_a_dead_letter_too_large_is_cut_to_fit(deployment: Deployment) -> None:
    """A rejection whose raw text would exceed a message is still dead-lettered, its raw cut short."""
    async with Publisher(deployment.settings) as publisher:
        rejection = Rejection("too big", "request", "too_large", None)
        object.__setattr__(rejection, "raw", "y" * 2_000_000)  # past Rejection's own cut, as a caller could
        assert await publisher.rejected("havre", "native", [rejection]) == 1
    (letter,) = await read_topic(deployment.settings, "events.rejected", 1)
    assert letter["reason"] == "too_large" and letter["raw"].endswith("[truncated to fit a message]")
