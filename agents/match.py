"""Events in: ``fan_out_events`` stamps, stores and broadcasts them; ``match_events`` matches them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from datetime import UTC, datetime

from faust.types import EventT, StreamT
from redis.exceptions import RedisError

from stream.core.partition import StampedEvent
from stream.runtime import envelopes, metrics
from stream.runtime.retry import until_done
from stream.runtime.stamped import encode_stamped, unpack_stamped
from stream.worker.app import Worker, settle_heap, take_events
from stream.worker.broadcast import BroadcastGap, BroadcastReader, Entry

log = logging.getLogger("corridor.agents.match")

EXPIRE_EVERY_S = 15.0
OBSERVE_EVERY_S = 2.0
PRUNE_EVERY_S = 300.0
# How long a batch waits for more messages: Faust's take() wakes every window whether or not a
# message came, so each agent on an event's way adds half of it on average.
BATCH_WINDOW_S = 0.005
# Events stored and fanned out together: envelopes make a batch of messages up to a million events.
FAN_OUT_CHUNK = 2000


def install(worker: Worker) -> None:
    """Install ``fan_out_events``, ``match_events`` and the worker's timers on ``worker``."""
    app, runtime = worker.app, worker.runtime

    @app.agent(worker.events_topic, name="agents.match.fan_out_events")
    async def fan_out_events(stream: StreamT[bytes]) -> None:
        """Stamp each event with its receipt time, store it, and broadcast the batch to every worker.

        A message is an envelope of events or a single event (the interop format); every event is
        read alone: one that is not usable is dead-lettered with its reason (named by message and
        index in its envelope) and the rest goes on.
        """
        limits, max_bytes = worker.settings.event_limits, worker.settings.event_max_bytes
        async for batch in take_events(stream, 1000, BATCH_WINDOW_S):
            metrics.messages_processed.labels(worker.events_topic.get_topic_name()).inc(len(batch))
            stamped: list[StampedEvent] = []
            encoded: list[bytes] = []
            for message in batch:
                try:
                    with metrics.stage("decode_events"):
                        decoded = envelopes.read_events(message.value or b"", limits, max_bytes)
                except Exception as exc:  # noqa: BLE001 - a reader fault costs one message, not the batch
                    log.exception("reading events failed at %s", _where(message))
                    await worker.dead_letter(
                        "stream", "event", _where(message), repr(exc)[:500], message.value, "unreadable"
                    )
                    continue
                for index, invalid, raw in decoded.refused:
                    where = _where(message) if index is None else f"{_where(message)}[{index}]"
                    await worker.dead_letter("stream", "event", where, invalid.error, raw, invalid.reason)
                with metrics.stage("stamp_events"):
                    for event in decoded.events:
                        item = StampedEvent(time.time_ns(), event)
                        encoded.append(encode_stamped(item))
                        stamped.append(item)
                if len(stamped) >= FAN_OUT_CHUNK:
                    await _fan_out(worker, stamped, encoded)
                    stamped, encoded = [], []
            await _fan_out(worker, stamped, encoded)
            worker.health.beat("fan_out_events")

    @worker.task
    async def match_events() -> None:
        """Match each batch of the event broadcast against this worker's routes, from where the
        stored events it loaded end (``stream.worker.broadcast``); restarted after a failure."""
        worker.tasks["match_events"] = asyncio.current_task()  # type: ignore[assignment]
        await runtime.events_loaded.wait()
        position = runtime.broadcast_from or 0
        while True:
            state = runtime.state
            reader = BroadcastReader(runtime.redis, state.broadcast_stream, state.broadcast_last)
            try:
                await reader.start(position)
                runtime.broadcast = reader
                async for batch in reader.batches():
                    await _match(worker, batch)
                    position = reader.position
                    worker.health.beat("match_events")
            except asyncio.CancelledError:
                raise
            except BroadcastGap as gap:
                log.warning("%s: loading the stored events again", gap)
                position = await runtime.reload_events()
            except Exception as exc:  # noqa: BLE001 - reported, then read again from the last batch applied
                worker.health.crashed("match_events", exc)
                metrics.agent_crashes.labels("match_events").inc()
                log.exception("reading the event broadcast failed at %d; starting again", position)
                await asyncio.sleep(RESTART_AFTER_S)
            finally:
                runtime.broadcast = None
                await reader.stop()

    @worker.timer(EXPIRE_EVERY_S)
    async def expire_events() -> None:
        """Clear the alerts of events whose validity has ended."""
        now = datetime.now(UTC)
        await worker.publish_alerts(runtime.index.expire(now))
        runtime.refresh_gauges()

    @worker.timer(OBSERVE_EVERY_S)
    async def observe_worker() -> None:
        """Publish consumer lag per partition, drivers affected and the events concerning most routes."""
        lags = worker.consumer_lags()
        reader = runtime.broadcast
        if reader is not None:
            with contextlib.suppress(RedisError):  # reported at the next tick
                lags[(BROADCAST, 0)] = await reader.lag()
        metrics.set_consumer_lag(lags)
        routes_by_event, drivers = runtime.affected()
        metrics.set_affected(routes_by_event, drivers)

    @worker.timer(PRUNE_EVERY_S)
    async def prune_state() -> None:
        """Forget tombstones and expired events whose retention has passed; let the collector see
        the index."""
        pruned = await until_done("pruning state", runtime.state.prune)
        if pruned:
            log.info("pruned %d stored tombstones and expired events", pruned)
        settle_heap()


async def _fan_out(worker: Worker, stamped: list[StampedEvent], encoded: list[bytes]) -> None:
    """Store stamped events in Redis and append them in envelopes to the event broadcast, in one
    round trip (stored first: a worker that starts loads what was appended before it reads)."""
    if not stamped:
        return
    for (source, kind), count in Counter((s.event.source, s.event.kind) for s in stamped).items():
        metrics.events_in.labels(source, kind).inc(count)
    with metrics.stage("stamp_events"):
        packed = envelopes.pack(encoded)
    await until_done("saving events", worker.runtime.state.save_events, stamped, encoded, packed)


def _where(message: EventT[bytes]) -> str:
    return f"{message.message.topic}/{message.message.partition}@{message.message.offset}"


RESTART_AFTER_S = 1.0
BROADCAST = "broadcast"  # how the event broadcast is named in metrics and dead letters


async def _match(worker: Worker, batch: list[Entry]) -> None:
    """Match one batch of broadcast envelopes (each read alone: a bad one costs only itself)."""
    metrics.messages_processed.labels(BROADCAST).inc(len(batch))
    stamped: list[StampedEvent] = []
    for entry in batch:
        where, raw = f"{BROADCAST}#{entry.number}", entry.value
        try:
            with metrics.stage("decode_copies"):
                items, refused = unpack_stamped(raw)
        except Exception as exc:  # noqa: BLE001 - a message of another producer costs only itself
            log.exception("reading the event broadcast failed at %s", where)
            await worker.dead_letter("stream", "event", where, repr(exc)[:500], raw, "unreadable")
            continue
        stamped += items
        for invalid in refused:
            await worker.dead_letter("stream", "event", where, invalid.error, raw, invalid.reason)
    if not stamped:
        return
    started = time.perf_counter()
    with metrics.stage("match"):
        alerts = worker.runtime.index.apply_events(stamped, datetime.now(UTC))
    metrics.match_batch_seconds.labels("events").observe(time.perf_counter() - started)
    metrics.count_matches("events", alerts)
    await worker.runtime.refuse_failed_events()
    await worker.publish_alerts(alerts)
    worker.runtime.refresh_gauges()
