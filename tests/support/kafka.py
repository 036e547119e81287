"""Reading a topic of a test deployment from the start, as an outside consumer would."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from stream.runtime.settings import Settings


async def read_topic(settings: Settings, name: str, count: int, timeout: float = 15.0) -> list[Any]:
    """Decoded records of ``<prefix>.<name>`` until ``count`` arrived or ``timeout`` passed (the
    records of an envelope, a JSON array, are counted one by one)."""
    consumer = AIOKafkaConsumer(
        settings.topic(name), bootstrap_servers=settings.bootstrap_servers(), auto_offset_reset="earliest"
    )
    await consumer.start()
    values: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(values) < count and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for value in (orjson.loads(m.value) for msgs in batch.values() for m in msgs):
                values += value if isinstance(value, list) else [value]
    finally:
        await consumer.stop()
    return values
