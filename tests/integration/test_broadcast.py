"""The event broadcast: read from a position kept in Redis, and from the start after a lost log."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.runtime.broadcast import BroadcastReader
from stream.runtime.redis_state import RedisState


async def _topic_with(bootstrap: str, count: int) -> str:
    """A new one-partition topic holding messages b'0' .. b'<count - 1>'."""
    name = f"broadcast-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for n in range(count):
            await producer.send_and_wait(name, str(n).encode(), partition=0)
    finally:
        await producer.stop()
    return name


async def _read_from(
    bootstrap: str, topic: str, position: int, count: int
) -> tuple[list[bytes], BroadcastReader]:
    """The first ``count`` messages a reader started at ``position`` gives (within 30 s), and the
    reader (stopped)."""
    reader = BroadcastReader(bootstrap, topic, 10, "test")
    await reader.start(position)
    got: list[bytes] = []

    async def read() -> None:
        async for batch in reader.batches():
            got.extend(m.value for m in batch)
            if len(got) >= count:
                return

    try:
        await asyncio.wait_for(read(), 30)
    finally:
        await reader.stop()
    return got, reader


async def test_reader_starts_at_its_position_and_moves_on(services: dict[str, str]) -> None:
    """A reader gives the messages from its position on, and its position and lag follow."""
    bootstrap = services["kafka_url"].split("://", 1)[-1]
    topic = await _topic_with(bootstrap, 10)
    got, reader = await _read_from(bootstrap, topic, 4, 6)
    assert got == [str(n).encode() for n in range(4, 10)]
    assert reader.position == 10
    assert reader.lag() == 0


async def test_a_position_past_the_end_reads_the_partition_from_its_start(services: dict[str, str]) -> None:
    """A broker that lost its log holds fewer messages than the stored position: read them all."""
    bootstrap = services["kafka_url"].split("://", 1)[-1]
    topic = await _topic_with(bootstrap, 5)
    got, _ = await _read_from(bootstrap, topic, 1000, 5)
    assert got == [str(n).encode() for n in range(5)]


async def test_the_stored_position_only_moves_forward(redis_client: aioredis.Redis, prefix: str) -> None:
    """Workers note how far they applied the broadcast; a starting worker reads the furthest."""
    state = RedisState(redis_client, prefix)
    assert await state.broadcast_position() == 0
    await state.note_broadcast(120)
    await state.note_broadcast(80)  # a worker behind the others
    assert await state.broadcast_position() == 120
    await redis_client.set(f"{prefix}:state:broadcast", b"garbage")
    assert await state.broadcast_position() == 0  # unreadable: read everything again, lose nothing
