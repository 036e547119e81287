"""Publisher.events on a real broker: concurrent calls share envelopes, each id on its partition, in order."""

from __future__ import annotations

import asyncio
import random

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas import Event
from stream.ingest.producer import Publisher
from stream.runtime.envelopes import MAX_EVENTS, partition_of
from tests.support.processes import Deployment

PARTITIONS = 4


def _version(event_id: str, seq: int) -> Event:
    geometry = {"type": "Point", "coordinates": [2.35, 48.85]}
    return Event(event_id, "city", "closure", geometry, title=f"{seq}")


async def test_concurrent_calls_keep_each_id_on_its_partition_in_order(deployment: Deployment) -> None:
    """Sixty concurrent calls of mixed ids arrive as fewer envelopes; every version of an id is on
    the partition its id gives, in the order the calls were made, none lost or repeated."""
    settings = deployment.settings
    topic = settings.topic("events")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    rng = random.Random(7)  # noqa: S311 - a test's mix, not a secret
    calls: list[list[Event]] = []
    seq = 0
    for _ in range(60):
        calls.append([])
        for _ in range(rng.randint(1, 40)):
            calls[-1].append(_version(f"city:{rng.randint(0, 15)}", seq))
            seq += 1
    async with Publisher(settings) as publisher:
        sent = await asyncio.gather(*(publisher.events(call) for call in calls))
    assert sum(sent) == seq
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.bootstrap_servers(), auto_offset_reset="earliest"
    )
    await consumer.start()
    arrived: dict[str, list[int]] = {}
    messages = received = 0
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while received < seq and loop.time() < deadline:
            for tp, batch in (await consumer.getmany(timeout_ms=300)).items():
                for message in sorted(batch, key=lambda m: m.offset):
                    records = orjson.loads(message.value)
                    assert isinstance(records, list) and len(records) <= MAX_EVENTS
                    messages += 1
                    for record in records:
                        assert tp.partition == partition_of(record["id"], PARTITIONS)
                        arrived.setdefault(record["id"], []).append(int(record["title"]))
                        received += 1
    finally:
        await consumer.stop()
    expected: dict[str, list[int]] = {}
    for event in (e for call in calls for e in call):
        expected.setdefault(event.id, []).append(int(event.title or ""))
    assert arrived == expected
    assert messages < len(calls)  # calls made together share envelopes
