"""A port's bulk publish through `corridor api`: every accepted event reaches corridor.events once."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from stream.bench.api import UNLIMITED, batch_body
from stream.runtime.envelopes import partition_of
from stream.runtime.settings import Settings
from tests.integration.test_hostile_api import _start
from tests.support.processes import Deployment

SOURCE = "benchport"  # the source batch_body writes under


def _sentinels(partitions: int) -> list[dict[str, Any]]:
    """One event on each partition (by the id's crc32, as the publisher places them)."""
    found: dict[int, dict[str, Any]] = {}
    n = 0
    while len(found) < partitions:
        event = orjson.loads(batch_body(0, 1))[0]
        event["id"] = f"{SOURCE}:sentinel-{n}"
        found.setdefault(partition_of(event["id"], partitions), event)
        n += 1
    return list(found.values())


async def _ids_until(settings: Settings, last: set[str], timeout: float = 60.0) -> Counter[str]:
    """Every event id on corridor.events, read until each id of ``last`` has been seen."""
    consumer = AIOKafkaConsumer(
        settings.topic("events"), bootstrap_servers=settings.bootstrap_servers(), auto_offset_reset="earliest"
    )
    await consumer.start()
    seen: Counter[str] = Counter()
    try:
        async with asyncio.timeout(timeout):
            while not last <= seen.keys():
                batch = await consumer.getmany(timeout_ms=300)
                for value in (orjson.loads(m.value) for msgs in batch.values() for m in msgs):
                    seen.update(e["id"] for e in (value if isinstance(value, list) else [value]))
    finally:
        await consumer.stop()
    return seen


async def test_ten_thousand_events_in_a_hundred_requests_arrive_exactly_once(deployment: Deployment) -> None:
    """100 concurrent requests of 100 events each are all accepted (202 after the broker's ack), and
    corridor.events then holds each of the 10,000 ids once: read up to one sentinel event per
    partition posted after them, so that nothing accepted earlier can still be on its way."""
    async for api in _start(deployment, UNLIMITED):
        await api.add(SOURCE)
        answers = await asyncio.gather(
            *(api.post("/v1/events", None, SOURCE, raw=batch_body(100 * n, 100)) for n in range(100))
        )
        assert [status for status, _, _ in answers] == [202] * 100
        accepted = [i for _, body, _ in answers for i in body["accepted"]]
        assert len(accepted) == len(set(accepted)) == 10_000
        sentinels = _sentinels(deployment.settings.partitions)
        status, _, _ = await api.post("/v1/events", sentinels, SOURCE)
        assert status == 202
        seen = await _ids_until(deployment.settings, {e["id"] for e in sentinels})
        counts = Counter(seen[i] for i in accepted)
        assert counts == Counter({1: 10_000}), counts
        assert set(seen) == set(accepted) | {e["id"] for e in sentinels}
        await api.still_serving()
