"""Every stamped event to every worker, once: a one-partition topic each worker reads in full.

Routes are partitioned across the workers (the consumer group of ``corridor.routes``); events are
not: each worker matches every event against its own routes. ``fan_out_events`` stores each batch
of events in Redis, then sends it once to ``corridor.events.broadcast``, which every worker reads
from its own position, outside the group, with no offset committed to the broker.

Where a worker starts reading is kept in Redis, not by the broker. After applying a batch, a
worker records the position after it (``RedisState.note_broadcast``: the highest one any worker
reached). Every message before that position was stored in Redis before it was sent, so a worker
that starts reads the position first, then loads the stored events, then reads the topic from the
position: nothing falls between the two, and what it reads twice is skipped by the events'
receipt sequence. The broker is never asked for offsets (the embedded one answers ListOffsets
wrongly); a position past the end of the partition (a broker that lost its log) is read as the
start of a new one.

This replaced one copy of every event per partition of a co-partitioned topic (8 by default): on
the same host, one `corridor bench pipeline --runs 1 --events 30000 --drivers 10000 --rate 1000`
each, the broker's CPU per event went from 49 to 31 µs, two workers from 5,117 to 8,067 events/s,
and publish→driver p50 / p99 from 266 / 788 to 188 / 389 ms.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger("corridor.worker")

FETCH_MAX_BYTES = 16 * 1024 * 1024
MAX_RECORDS = 64  # envelopes per batch (each up to about a thousand events)


class BroadcastReader:
    """One worker's reader of the broadcast partition, from a position it is given."""

    def __init__(self, bootstrap: str, topic: str, fetch_wait_ms: int, client_id: str) -> None:
        self._partition = TopicPartition(topic, 0)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=max(1, fetch_wait_ms),
            fetch_max_bytes=FETCH_MAX_BYTES,
            max_partition_fetch_bytes=FETCH_MAX_BYTES,
        )
        self.position = 0

    async def start(self, position: int) -> None:
        """Connect and read from ``position`` on."""
        await self._consumer.start()
        self._consumer.assign([self._partition])
        self.position = position
        self._consumer.seek(self._partition, position)

    async def stop(self) -> None:
        """Disconnect."""
        await self._consumer.stop()

    def lag(self) -> int | None:
        """Messages on the partition not read yet (None before the first fetch answered)."""
        highwater = self._consumer.highwater(self._partition)
        return None if highwater is None else max(0, highwater - self.position)

    async def batches(self) -> AsyncIterator[list[Any]]:
        """Batches of messages as they come; ``position`` is after the last one yielded."""
        while True:
            fetched = await self._consumer.getmany(self._partition, timeout_ms=1000, max_records=MAX_RECORDS)
            messages = fetched.get(self._partition, [])
            if messages:
                self.position = messages[-1].offset + 1
                yield messages
                continue
            highwater = self._consumer.highwater(self._partition)
            if highwater is not None and self.position > highwater:
                log.warning(
                    "broadcast position %d is past the end of %s (%d): the broker lost its log; "
                    "reading the partition from its start",
                    self.position,
                    self._partition.topic,
                    highwater,
                )
                self.position = 0
                self._consumer.seek(self._partition, 0)
