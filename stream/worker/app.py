"""The Faust application, its topics, and the per-worker runtime (the index, Redis).

Scale-out: ``corridor.routes`` is keyed by route id, so each route (and every alert of it) belongs
to exactly one partition, and each partition to one worker of the group. Events are not
partitioned among the workers: ``fan_out_events`` stores each batch and appends it once to the
event broadcast, a Redis stream every worker reads in full (``stream.worker.broadcast``). A
worker therefore holds only its share of the routes, matches every event against them, and no
(route, event) pair is ever decided in two places.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import faust

from schemas import RejectedRecord, RouteMessage
from schemas.codec import dumps
from stream.core.config import EngineConfig
from stream.core.engine import Engine
from stream.core.partition import PartitionIndex, StampedEvent
from stream.core.wire import WireAlerts
from stream.runtime import envelopes, metrics
from stream.runtime.health import WorkerHealth
from stream.runtime.retry import redis_client, until_done
from stream.runtime.settings import Settings
from stream.worker.affected import affected
from stream.worker.broadcast import BroadcastReader
from stream.worker.faust_tuning import set_fetch_wait
from stream.worker.outbox import RedisOutbox
from stream.worker.state import Quarantined, RedisState

log = logging.getLogger("corridor.worker")

MAX_RAW_BYTES = 4096
PRODUCER_LINGER_S = 0.002  # of a refused record, on the dead-letter topic
# The key of the alert envelopes a worker publishes on ``corridor.alerts``: already in the drivers'
# streams (a reader that mirrors them into ``corridor.alerts.in`` would only be deduplicated).
STORED_KEY = b"stored"

Job = Callable[[], Awaitable[None]]
"""A worker's timer or task: a coroutine function without arguments."""


class _App(faust.App):
    """Faust's application, telling the worker's health when an agent raises."""

    worker: Worker

    async def _on_agent_error(self, agent: Any, exc: BaseException) -> None:
        # Faust's hook for agent errors (it then restarts the agent): counted, logged, reported.
        await self.worker.agent_crashed(agent, exc)
        await super()._on_agent_error(agent, exc)


def take_events(
    stream: faust.StreamT[bytes], most: int, within: float
) -> AsyncIterator[Sequence[faust.EventT[bytes]]]:
    """Batches of up to ``most`` messages of an agent's stream (with their topic, partition and
    offset), each batch after at most ``within`` seconds."""
    # Faust hands agents a Stream; its StreamT protocol does not declare take_events.
    return cast(faust.Stream[bytes], stream).take_events(most, within=within)


class Worker:
    """One worker process: its Faust app and topics, its runtime (index and Redis), its health.

    Built by ``build`` at start-up; the agents (top-level ``agents/``) are installed on it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The embedded broker rebalances in seconds with these; Faust's defaults suit a real cluster.
        fast_group: dict[str, Any] = (
            {"broker_rebalance_timeout": 2, "broker_session_timeout": 6, "broker_heartbeat_interval": 1}
            if settings.kafka_url is None
            else {}
        )
        datadir = settings.state_dir.resolve() / "faust" / settings.app_id
        datadir.parent.mkdir(parents=True, exist_ok=True)
        self.app = _App(
            settings.app_id,
            broker=settings.resolved_kafka_url(),
            key_serializer="raw",
            value_serializer="raw",
            topic_partitions=settings.partitions,
            processing_guarantee="at_least_once",
            consumer_auto_offset_reset="earliest",
            # A batch's alert envelopes leave in one produce request instead of one
            # each: a request costs the broker as much as its messages.
            producer_linger=PRODUCER_LINGER_S,
            web_enabled=False,
            store="memory://",
            datadir=str(datadir),
            **fast_group,
        )
        self.app.worker = self
        self.routes_topic = self._topic("routes")
        self.events_topic = self._topic("events", partitions=settings.event_partitions)
        # Alerts out: every transition a worker made, for other readers (no worker reads it back).
        self.alerts_topic = self._topic("alerts")
        # Alerts in (what other producers send to drivers, for notify_drivers) and dead letters: a
        # trickle each, so one partition. Every partition a worker's consumer reads is named in each
        # of its fetches, and the embedded broker spends about 20 us on each even when it holds
        # nothing (14 fewer here).
        self.alerts_in_topic = self._topic("alerts.in", partitions=1)
        self.rejected_topic = self._topic("events.rejected", partitions=1)
        self._sent_to: dict[str, int] = {}  # partition counts of the topics only sent to
        # The worker's tasks that are not Faust agents (the event broadcast's reader), by name.
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.health = WorkerHealth(agents=self._agent_states)
        self.runtime = Runtime(settings, self)
        # One batch of alerts stored at a time: the transitions of two agents reach a driver in
        # the order they were made.
        self._storing = asyncio.Lock()
        # Faust sends the assigned partitions positionally, which mode's handler type does not show.
        self.app.on_partitions_assigned.connect(self._rebuild_indexes)  # type: ignore[arg-type]

    def timer(self, seconds: float) -> Callable[[Job], Job]:
        """Run the decorated coroutine function every ``seconds`` (Faust's ``app.timer``)."""
        return cast(Callable[[Job], Job], self.app.timer(seconds))

    def task(self, fun: Job) -> Job:
        """Run ``fun`` once the worker has started (Faust's ``app.task``)."""
        self.app.task(fun)
        return fun

    def _topic(
        self, name: str, retention: timedelta | None = None, partitions: int | None = None
    ) -> faust.TopicT:
        # internal=True: the worker creates the topic with this partition count when it is missing
        # (a broker's auto-creation would use its own default).
        return self.app.topic(
            self.settings.topic(name),
            key_type=bytes,
            value_type=bytes,
            partitions=partitions or self.settings.partitions,
            internal=True,
            retention=retention,
        )

    def partition_count(self, topic: faust.TopicT) -> int:
        """How many partitions the broker reports for a topic (its declared count until it is known)."""
        name = topic.get_topic_name()
        known = self.app.consumer.topic_partitions(name) or self._sent_to.get(name)
        return known or topic.partitions or self.settings.partitions

    async def _declare_outputs(self) -> None:
        """Create the topics no agent consumes (Faust creates only those its agents read) and learn
        their partition counts: a send to a partition the producer does not know fails."""
        for topic in (self.alerts_topic,):
            await topic.maybe_declare()
            name = topic.get_topic_name()
            # Faust keeps the client private.
            producer = cast(Any, self.app.producer)._ensure_producer()
            partitions = await producer.partitions_for(name)
            if partitions:
                self._sent_to[name] = len(partitions)

    def _agent_states(self) -> list[tuple[str, bool]]:
        """(name, running) of every agent: running while one of its actors' tasks is alive (and of
        the worker's own tasks, while theirs is)."""
        states = [(name, not task.done()) for name, task in self.tasks.items()]
        for agent in list(self.app.agents.values()):
            actors = list(agent._actors)  # noqa: SLF001 - Faust keeps no public accessor
            running = any(
                a.actor_task is not None and not a.actor_task.done() and not a.crashed for a in actors
            )
            states.append((agent.name.rsplit(".", 1)[-1], running))
        return states

    async def agent_crashed(self, agent: Any, exc: BaseException) -> None:
        """Faust calls this when an agent raises (it then restarts the agent): count it, log it."""
        name = agent.name.rsplit(".", 1)[-1]
        self.health.crashed(name, exc)
        metrics.agent_crashes.labels(name).inc()
        log.error("agent %s crashed and is restarted: %s", name, exc, exc_info=exc)

    async def dead_letter(
        self, source: str, fmt: str, where: str, error: str, raw: bytes | None, reason: str | None = None
    ) -> None:
        """Send a refused message to the dead-letter topic with its reason (counted by its agent);
        only the start of a large record travels with it (nothing of a tombstone, which has none)."""
        raw = raw or b""
        reason = reason or f"invalid_{fmt}"
        log.warning("refused %s message at %s: %s (%s)", fmt, where, error, reason)
        record = RejectedRecord(
            source=source,
            format=fmt,
            error=error[:2000],
            where=where[:300],
            reason=reason,
            raw=raw[:MAX_RAW_BYTES].decode("utf-8", "replace"),
            received_at=datetime.now(UTC),
        )
        await self.rejected_topic.send(key=source.encode(), value=dumps(record))

    async def publish_alerts(self, alerts: WireAlerts) -> None:
        """Store alert transitions in the drivers' Redis streams, then send them (in their wire form)
        in envelopes per driver partition of the alerts topic, for any other reader.

        Storing here rather than in a reader of the alerts topic takes a broker hop (a fetch wait) off
        every alert's way to the driver, and the decoding and checking of alerts the engine has just
        encoded. The guarantees are the outbox's (deduplicated by alert id and content mark); the
        caller's offsets are committed only after this returns, so a crash replays, never loses. One
        batch at a time: the transitions of two agents reach a driver in the order they were made.
        All the alerts of a driver go to one partition of the alerts topic, in order.
        """
        if not alerts:
            return
        for (kind, state), count in alerts.counts().items():
            metrics.alerts_emitted.labels(kind, state).inc(count)
        async with self._storing:
            ids = await until_done("storing alerts", self.runtime.outbox.append_wire, alerts)
            stored = Counter(state for state, sid in zip(alerts.states, ids, strict=True) if sid is not None)
            for state, count in stored.items():
                metrics.alerts_stored.labels(state).inc(count)
            metrics.alerts_deduplicated.inc(len(ids) - stored.total())
            partitions = self.partition_count(self.alerts_topic)
            with metrics.stage("publish_alerts"):
                partition_of: dict[str, int] = {}
                by_partition: dict[int, list[bytes]] = {}
                for driver, encoded in zip(alerts.drivers, alerts.payloads, strict=True):
                    partition = partition_of.get(driver)
                    if partition is None:
                        partition = partition_of[driver] = envelopes.partition_of(driver, partitions)
                    by_partition.setdefault(partition, []).append(encoded)
                packed = [
                    (partition, envelope)
                    for partition, encoded_alerts in by_partition.items()
                    for envelope in envelopes.pack(encoded_alerts)
                ]
            for partition, envelope in packed:
                await self.alerts_topic.send(key=STORED_KEY, value=envelope, partition=partition)

    def consumer_lags(self) -> dict[tuple[str, int], int]:
        """Highwater (from fetch responses) minus committed offset of every assigned partition.

        The highwater comes from the broker's fetch responses, not ``end_offsets()`` (ListOffsets),
        which the embedded broker answers wrongly; a partition not fetched yet is left out.
        """
        consumer = self.app.consumer
        lags: dict[tuple[str, int], int] = {}
        for tp in consumer.assignment():
            try:
                highwater = consumer.highwater(tp)
            except AssertionError:  # revoked between assignment() and highwater()
                continue
            if highwater is None:
                continue
            committed = cast(Any, consumer)._committed_offset.get(tp)  # Faust keeps no public accessor
            lags[(tp.topic, tp.partition)] = highwater - (committed or 0)
        return lags

    async def _rebuild_indexes(self, sender: Any, assigned: Any, **kwargs: Any) -> None:
        # The alerts are only sent to, never consumed by an agent, so Faust does not create them at
        # start; created here, before any agent runs, a first send does not wait on missing
        # metadata (it held the fan-out ~30 s, and the dead letters produced meanwhile, on a busy
        # broker), nor fail on a partition the producer does not know.
        await self._declare_outputs()
        routes = self.routes_topic.get_topic_name()
        await self.runtime.rebuild(tp.partition for tp in assigned if tp.topic == routes)


def build(settings: Settings) -> Worker:
    """The worker of this process: consumers tuned (``CORRIDOR_FETCH_WAIT_MS``), collector pauses
    measured, the Faust app and its topics made. Install the agents on it, then run its app."""
    set_fetch_wait(settings.fetch_wait)
    if _measure_gc not in gc.callbacks:
        gc.callbacks.append(_measure_gc)
    return Worker(settings)


class Runtime:
    """What the agents of one worker share: one index over its partitions' routes and every event,
    and Redis."""

    def __init__(self, config: Settings, worker: Worker) -> None:
        self.settings = config
        self._worker = worker
        self.index = PartitionIndex(Engine(EngineConfig(corridor_m=config.corridor_m, crs=config.metric_crs)))
        self.owned: set[int] = set()
        self.route_partition: dict[str, int] = {}
        # Where this worker reads the event broadcast from, once the stored events are loaded.
        self.broadcast_from: int | None = None
        self.events_loaded = asyncio.Event()
        self.broadcast: BroadcastReader | None = None  # while the broadcast is read
        self.redis = redis_client(config.resolved_redis_url())
        self.state = RedisState(self.redis, config.redis_prefix, config.broadcast_maxlen)
        self.outbox = RedisOutbox(
            self.redis, config.redis_prefix, config.stream_maxlen, retention_s=config.stream_retention_s
        )

    def track(self, partition: int, messages: Iterable[RouteMessage]) -> None:
        """Remember which partition each route lives in (to forget them when it moves away)."""
        for msg in messages:
            if msg.op == "ended":
                self.route_partition.pop(msg.route_id, None)
            else:
                self.route_partition[msg.route_id] = partition

    def refresh_gauges(self) -> None:
        """Publish the index sizes."""
        metrics.active_routes.set(self.index.engine.route_count)
        metrics.active_events.set(self.index.engine.event_count)

    def affected(self, top: int = metrics.TOP_EVENTS) -> tuple[Counter[str], int]:
        """Routes concerned by the ``top`` events concerning most, and distinct drivers alerted here."""
        return affected(self.index.engine, top)

    async def rebuild(self, partitions: Iterable[int]) -> None:
        """Forget the routes of revoked partitions; load those of new ones from Redis, and the
        events once (then the event broadcast keeps them current).

        A stored record that cannot be read, or that the engine refuses, is quarantined and
        dead-lettered instead of stopping the rebuild: a rebuild never replays a crash.
        """
        worker = self._worker
        wanted = set(partitions)
        now = datetime.now(UTC)
        gone = self.owned - wanted
        for route_id in [r for r, p in self.route_partition.items() if p in gone]:
            self.index.forget_route(route_id, now)
            del self.route_partition[route_id]
        new = sorted(wanted - self.owned)
        alerts = WireAlerts()
        events: list[StampedEvent] = []
        first = self.broadcast_from is None
        count = worker.partition_count(worker.routes_topic)
        await until_done("noting the partition count", self.state.note_partitions, count)
        if first:  # the position first: every event sent before it is stored (see broadcast)
            position = await until_done("reading the broadcast's last entry", self.state.broadcast_last)
            events, bad = await until_done("loading events", self.state.load_events)
            await self.quarantine(bad)
        for partition in new:
            snapshot = await until_done("loading routes", self.state.load_partition, partition)
            await self.quarantine(snapshot.bad)
            self.track(partition, snapshot.routes)
            alerts.extend(self.index.apply_routes([*snapshot.routes, *snapshot.positions], now))
            await self.refuse_failed_routes(partition)
        if events:
            alerts.extend(self.index.apply_events(events, now, receipts=False))
            await self.refuse_failed_events()
        self.owned = wanted
        log.info(
            "index rebuilt from redis: partitions=%s routes=%d events=%d alerts=%d",
            sorted(self.owned),
            self.index.engine.route_count,
            self.index.engine.event_count,
            len(alerts),
        )
        self.refresh_gauges()
        if new or first:
            self.index.engine.compact()
        settle_heap()
        await worker.publish_alerts(alerts)
        worker.health.ready = True
        if first:
            self.broadcast_from = position
            self.events_loaded.set()

    async def reload_events(self) -> int:
        """Load every stored event again (after broadcast entries were trimmed before this worker
        read them, see ``BroadcastGap``); returns the broadcast position to read on from."""
        position = await until_done("reading the broadcast's last entry", self.state.broadcast_last)
        events, bad = await until_done("loading events", self.state.load_events)
        await self.quarantine(bad)
        now = datetime.now(UTC)
        alerts = self.index.apply_events(events, now, receipts=False)
        await self.refuse_failed_events()
        log.warning("events reloaded from redis: events=%d alerts=%d", len(events), len(alerts))
        await self._worker.publish_alerts(alerts)
        self.refresh_gauges()
        return position

    async def quarantine(self, entries: list[Quarantined]) -> None:
        """Move unusable stored records out of the state, and dead-letter each with its reason."""
        if not entries:
            return
        await until_done("quarantining records", self.state.quarantine, entries)
        for entry in entries:
            kind = "event" if entry.key.startswith("e:") else "route"
            metrics.records_quarantined.labels(kind).inc()
            log.warning("quarantined stored %s %s: %s", kind, entry.key, entry.why)
            await self._worker.dead_letter(
                "stream", kind, f"redis {entry.key}", entry.why, entry.raw or b"", "quarantined"
            )

    async def refuse_failed_events(self) -> None:
        """Quarantine and dead-letter the events the engine refused since the last call."""
        failed = self.index.take_failed()
        await self.quarantine([Quarantined(f"e:{event_id}", why) for event_id, why in failed])

    async def refuse_failed_routes(self, partition: int) -> None:
        """Quarantine and dead-letter the routes of a partition the engine refused."""
        failed = self.index.take_failed_routes()
        await self.quarantine([Quarantined(f"r:{partition}:{route_id}", why) for route_id, why in failed])


def settle_heap() -> None:
    """Collect everything, then freeze what survives (the index) out of the collector's scans.

    A full collection walks every tracked object: with an index of 10,000 routes each one paused the
    worker ~80 ms, about once a second under load. Frozen objects are still freed by reference
    counting; cyclic garbage among them waits for the next ``settle_heap``.
    """
    started = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    metrics.gc_freezes.inc()
    log.info("gc: %d objects frozen (%.0f ms)", gc.get_freeze_count(), (time.perf_counter() - started) * 1000)


_gc_started: list[float] = []


def _measure_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started[:] = [time.perf_counter()]
    elif _gc_started:
        metrics.gc_pause_seconds.labels(str(info.get("generation", "?"))).observe(
            time.perf_counter() - _gc_started.pop()
        )
