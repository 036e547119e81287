"""Events in: ``fan_out_events`` stamps, stores and copies them; ``match_events`` matches them."""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas import Event
from stream.core.partition import StampedEvent
from stream.runtime import envelopes, metrics
from stream.runtime.app import (
    app,
    consumer_lags,
    dead_letter,
    events_topic,
    fanout_topic,
    partition_count,
    publish_alerts,
    runtime,
    settle_heap,
)
from stream.runtime.redis_state import encode_stamped, unpack_stamped
from stream.runtime.retry import until_done

log = logging.getLogger("corridor.agents.match")

EXPIRE_EVERY_S = 15.0
OBSERVE_EVERY_S = 2.0
PRUNE_EVERY_S = 300.0


@app.agent(events_topic)
async def fan_out_events(stream: Any) -> None:
    """Stamp each event with its receipt time, store it, and copy the batch to every partition."""
    async for batch in stream.take_events(1000, within=0.02):
        metrics.messages_processed.labels(events_topic.get_topic_name()).inc(len(batch))
        stamped: list[StampedEvent] = []
        for message in batch:
            try:
                event = Event.from_dict(orjson.loads(message.value))
            except (ValueError, KeyError, TypeError) as exc:
                where = f"{message.message.topic}/{message.message.partition}@{message.message.offset}"
                await dead_letter("stream", "event", where, f"not a normalized event: {exc!r}", message.value)
                continue
            stamped.append(StampedEvent(time.time_ns(), event))
        for (source, kind), count in Counter((s.event.source, s.event.kind) for s in stamped).items():
            metrics.events_in.labels(source, kind).inc(count)
        encoded = [encode_stamped(item) for item in stamped]
        await until_done("saving events", runtime.state.save_events, stamped, encoded)
        partitions = partition_count(fanout_topic)
        for envelope in envelopes.pack(encoded):
            for partition in range(partitions):
                await fanout_topic.send(key=b"events", value=envelope, partition=partition)


@app.agent(fanout_topic)
async def match_events(stream: Any) -> None:
    """Match each new batch of events against this worker's routes at once (copies are skipped)."""
    async for batch in stream.take(16, within=0.02):  # envelopes of up to ~1,000 events
        metrics.messages_processed.labels(fanout_topic.get_topic_name()).inc(len(batch))
        stamped = [item for raw in batch if runtime.first_copy(raw) for item in unpack_stamped(raw)]
        if not stamped:
            continue
        started = time.perf_counter()
        alerts = runtime.index.apply_events(stamped, datetime.now(UTC))
        metrics.match_batch_seconds.labels("events").observe(time.perf_counter() - started)
        metrics.count_matches("events", alerts)
        await publish_alerts(alerts)
        runtime.refresh_gauges()


@app.timer(EXPIRE_EVERY_S)
async def expire_events() -> None:
    """Clear the alerts of events whose validity has ended."""
    now = datetime.now(UTC)
    await publish_alerts(runtime.index.expire(now))
    runtime.refresh_gauges()


@app.timer(OBSERVE_EVERY_S)
async def observe_worker() -> None:
    """Publish consumer lag per partition, drivers affected and the events concerning most routes."""
    metrics.set_consumer_lag(consumer_lags())
    routes_by_event, drivers = runtime.affected()
    metrics.set_affected(routes_by_event, drivers)


@app.timer(PRUNE_EVERY_S)
async def prune_state() -> None:
    """Forget tombstones and expired events whose retention has passed; let the collector see the index."""
    pruned = await until_done("pruning state", runtime.state.prune)
    if pruned:
        log.info("pruned %d stored tombstones and expired events", pruned)
    settle_heap()
