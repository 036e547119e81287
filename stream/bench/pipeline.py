"""``corridor bench pipeline``: end to end through the embedded broker, against its own ceiling.

One embedded broker and Redis for the whole benchmark; every run has its own topic prefix,
consumer group and Redis keys. Three measurements:

- ceiling: a plain aiokafka consumer group consumes N pre-produced event messages (msg/s from the
  first record to the last, group join excluded); and the framework's: a Faust agent configured as
  a worker takes them in batches and does nothing else (``stream.bench.faust_drain``);
- throughput: ``corridor worker`` processes (1, then 2) with the reference city's routes registered
  (written to the Redis state the worker rebuilds its index from, the path of every worker start);
  once the group is stable, N city events are produced as fast as the broker takes them (in
  envelopes, by Corridor's ``Publisher``; one message per event with ``--single-events``, the
  interop format), and the clock stops when the workers' ``/metrics`` show every event taken from
  ``<prefix>.events`` and every alert it causes stored in the driver streams
  (``corridor_alerts_stored_total`` plus ``corridor_alerts_deduplicated_total`` reaching the count
  computed offline by the same engine); events/s = N / that time, so it includes fan-out,
  matching, the alerts topic and Redis. Each run also reports the CPU seconds of every process
  (workers, broker, Redis, producer; the gateway in latency windows) and the CPU per event or
  alert derived from them: on a shared 2-core machine CPU per event says more than wall clock;
- latency: one worker and one ``corridor gateway``; the routes of 1,000 drivers, all connected from a
  separate client process; events published at a fixed rate, each a point on one of those routes
  (so every alert goes to a connected driver); a window ends when every event has reached a
  driver (or after 60 s: the events left are counted, not timed); the client
  stamps each alert frame on receipt and the latency is receipt minus the publish time of its event
  (one machine, one clock).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import click
import numpy as np

from schemas import Event, Route, RouteMessage
from schemas.codec import dumps
from stream.bench.city import City, events, make_route, route_chunks
from stream.bench.gateway import open_driver
from stream.bench.matchers import summary
from stream.core import lifecycle as lc
from stream.core.config import EngineConfig
from stream.core.engine import Engine
from stream.local.services import EmbeddedServices, free_port
from stream.local.supervisor import Supervisor, wait_until
from stream.runtime.metrics import STAGES as WORKER_STAGES
from stream.runtime.settings import Settings

PARTITIONS = 8
EVENT_PARTITIONS = 1  # as a deployment's default (CORRIDOR_EVENT_PARTITIONS)
KEY_SPEC = "bench:bench-pipeline-signing-key-0123456789"
# Measured as CPU, not wall clock: the broker, Redis, the producer and the workers share the
# machine's cores, so events/s says more about the neighbours than about a worker.
TARGETS = {
    "worker_events_per_cpu_s": 20_000.0,  # ≤ 50 µs of worker CPU an event, alerts included
    "redis_cpu_us_per_alert": 8.0,
    "two_worker_cpu_ratio": 1.15,  # a second worker adds no duplicated work
    "p50_ms": 30.0,  # publish → driver at 1,000 events/s with 10,000 drivers connected
    "p99_ms": 100.0,
}
DRAIN_TIMEOUT_S = 600.0
LATENCY_DRAIN_S = 60.0
SCRAPE_EVERY_S = 0.25  # each scrape costs the worker CPU: not too often


@dataclass
class Bench:
    """The shared embedded services of one benchmark and the environment of each run."""

    state_dir: Path
    services: EmbeddedServices
    kafka: str
    redis_url: str

    def env(self, prefix: str) -> dict[str, str]:
        """Environment of a deployment with its own topics, group and keys."""
        return {
            **os.environ,
            "CORRIDOR_STATE_DIR": str(self.state_dir),
            "CORRIDOR_TOPIC_PREFIX": prefix,
            "CORRIDOR_APP_ID": prefix,
            "CORRIDOR_PARTITIONS": str(PARTITIONS),
            "CORRIDOR_EVENT_PARTITIONS": str(EVENT_PARTITIONS),
            "CORRIDOR_SIGNING_KEY": KEY_SPEC,
            "CORRIDOR_LOG_FORMAT": "text",
            "CORRIDOR_KAFKA_URL": "",
            "CORRIDOR_REDIS_URL": "",
        }

    def settings(self, prefix: str) -> Settings:
        """Settings of a run's deployment, as its processes read them."""
        return Settings.from_env(self.env(prefix))

    @classmethod
    @contextmanager
    def embedded(cls, name: str) -> Iterator[Bench]:
        """Embedded broker and Redis in a temporary state directory, for one benchmark."""
        with tempfile.TemporaryDirectory(prefix=f"corridor-bench-{name}-") as tmp:
            state = Path(tmp)
            services = EmbeddedServices(state)
            info = services.up()
            try:
                yield cls(state, services, info["kafka_url"].split("://", 1)[1], info["redis_url"])
            finally:
                services.down()


def _prefix(kind: str) -> str:
    return f"bench{kind}{uuid.uuid4().hex[:8]}"


# --- inputs ------------------------------------------------------------------------------------


def city_routes(count: int, seed: int = 7) -> list[Route]:
    """The reference city's first ``count`` routes, departing now (so that all of them are active)."""
    now = datetime.now(UTC)
    out: list[Route] = []
    for first, lon, lat in route_chunks(City(routes=count, events=0, seed=seed)):
        out += [replace(make_route(first + i, lon[i], lat[i]), depart_at=now) for i in range(len(lon))]
    return out


def expected_alerts(routes: Sequence[Route], evs: Sequence[Event]) -> int:
    """Alerts these events raise on these routes, by the engine the workers run."""
    engine = Engine(EngineConfig(corridor_m=30.0))
    now = datetime.now(UTC)
    for route in routes:
        engine.upsert_route(route, now)
    raised = 0
    for start in range(0, len(evs), 2_000):
        raised += engine.apply_events_delta(list(evs[start : start + 2_000]), now).count(lc.RAISED)
    return raised


# --- broker and Redis helpers ------------------------------------------------------------------


async def create_topic(bootstrap: str, name: str, partitions: int = EVENT_PARTITIONS) -> None:
    """Create a topic with ``partitions`` partitions."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, items: Sequence[tuple[bytes, bytes]]) -> float:
    """Send (key, value) pairs as fast as the broker acknowledges them; returns the seconds taken."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=262_144)
    await producer.start()
    started = time.perf_counter()
    try:
        for start in range(0, len(items), 5_000):
            futures = [await producer.send(topic, key=k, value=v) for k, v in items[start : start + 5_000]]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def produce_events(settings: Settings, evs: Sequence[Event], single: bool) -> float:
    """Send events as fast as the broker acknowledges them, encoded here: in envelopes by
    Corridor's ``Publisher``, or one message per event keyed by its id (``single``, the interop
    format); returns the seconds taken."""
    from stream.ingest.producer import Publisher

    topic = settings.topic("events")
    if single:
        return await produce(settings.bootstrap_servers(), topic, [(e.id.encode(), dumps(e)) for e in evs])
    async with Publisher(settings) as publisher:
        started = time.perf_counter()
        chunks = [evs[start : start + 1_000] for start in range(0, len(evs), 1_000)]
        await asyncio.gather(*(publisher.events(chunk) for chunk in chunks))
        return time.perf_counter() - started


async def consume_ceiling(bootstrap: str, topic: str, count: int) -> dict[str, float]:
    """A plain consumer group loop over ``count`` messages: msg/s from the fetch of the first record on."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}.ceiling",
        auto_offset_reset="earliest",
        session_timeout_ms=6_000,
        heartbeat_interval_ms=1_000,
        rebalance_timeout_ms=2_000,
    )
    joined = time.perf_counter()
    await consumer.start()
    seen = 0
    first = 0.0
    try:
        while seen < count:
            asked = time.perf_counter()
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            got = sum(len(records) for records in batch.values())
            if got and not first:
                first = asked
            seen += got
        done = time.perf_counter()
        await consumer.commit()
    finally:
        await consumer.stop()
    return {"msg_per_s": count / (done - first), "with_join_s": done - joined}


def route_partition(route_id: str, partitions: int = PARTITIONS) -> int:
    """The partition the default Kafka partitioner gives a route id (as ``corridor publish`` does)."""
    from aiokafka.partitioner import DefaultPartitioner

    all_partitions = list(range(partitions))
    return int(DefaultPartitioner()(route_id.encode(), all_partitions, all_partitions))


async def seed_routes(redis_url: str, prefix: str, routes: Sequence[Route]) -> None:
    """Register routes in the Redis state of a deployment, each under its partition."""
    from stream.runtime.retry import redis_client
    from stream.worker.state import RedisState

    client = redis_client(redis_url)
    state = RedisState(client, prefix)
    now = datetime.now(UTC)
    by_partition: dict[int, list[RouteMessage]] = {}
    for route in routes:
        message = RouteMessage("registered", route.route_id, now, route=route)
        by_partition.setdefault(route_partition(route.route_id), []).append(message)
    try:
        for partition, messages in by_partition.items():
            for start in range(0, len(messages), 500):
                await state.save_routes(partition, messages[start : start + 500])
    finally:
        await client.aclose()


def scrape(port: int) -> dict[str, float]:
    """Every sample of a process's /metrics, by its full name with labels."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def _sum(samples: Sequence[dict[str, float]], name: str) -> float:
    return sum(v for s in samples for k, v in s.items() if k == name or k.startswith(name + "{"))


# --- throughput --------------------------------------------------------------------------------


def ceiling_run(bench: Bench, payloads: Sequence[tuple[bytes, bytes]]) -> dict[str, float]:
    """Produce the events to a fresh topic and consume them with a plain aiokafka group."""
    topic = _prefix("ceil") + ".events"
    asyncio.run(create_topic(bench.kafka, topic))
    asyncio.run(produce(bench.kafka, topic, payloads))
    return asyncio.run(consume_ceiling(bench.kafka, topic, len(payloads)))


def faust_ceiling_run(bench: Bench, payloads: Sequence[tuple[bytes, bytes]]) -> dict[str, float]:
    """Produce the events to a fresh topic and take them with a Faust agent that does nothing
    (``stream.bench.faust_drain``, configured as a worker): the framework's own ceiling."""
    import subprocess
    import sys

    prefix = _prefix("faust")
    topic = f"{prefix}.events"
    asyncio.run(create_topic(bench.kafka, topic))
    asyncio.run(produce(bench.kafka, topic, payloads))
    env = {**bench.env(prefix), "CORRIDOR_DRAIN_TOPIC": topic, "CORRIDOR_DRAIN_COUNT": str(len(payloads))}
    done = subprocess.run(
        [sys.executable, "-m", "stream.bench.faust_drain"],
        env=env,
        capture_output=True,
        text=True,
        timeout=DRAIN_TIMEOUT_S,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise click.ClickException(f"the Faust drain failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(lines[-1])
    return result


def throughput_run(
    bench: Bench,
    routes: Sequence[Route],
    evs: Sequence[Event],
    expected: int,
    workers: int,
    single: bool = False,
) -> dict[str, Any]:
    """Events/s through ``workers`` worker processes: first event produced to last alert stored."""
    prefix = _prefix(f"w{workers}")
    asyncio.run(seed_routes(bench.redis_url, prefix, routes))
    asyncio.run(create_topic(bench.kafka, f"{prefix}.events"))
    ports = [free_port() for _ in range(workers)]
    with Supervisor(bench.env(prefix), bench.state_dir / "logs" / prefix) as supervisor:
        procs = [supervisor.start_worker(f"worker{n}", metrics_port=ports[n]) for n in range(workers)]

        def routes_loaded() -> bool:
            return _sum([scrape(p) for p in ports], "corridor_active_routes") >= len(routes)

        wait_until(routes_loaded, 120, "the workers to load their routes")
        time.sleep(3.0)  # the group settles (rebalance timeout 2 s) before the clock starts
        pids = {"broker": bench.services.broker.pid(), "redis": bench.services.redis.pid()}
        stages_before = [scrape(p) for p in ports]
        cpu_before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
        worker_before = [_cpu_seconds(p.popen.pid) for p in procs]
        started = time.perf_counter()
        producer_before = time.process_time()
        produce_s = asyncio.run(produce_events(bench.settings(prefix), evs, single))
        producer_cpu = time.process_time() - producer_before
        ingested_at = 0.0
        deadline = started + DRAIN_TIMEOUT_S
        while True:
            for proc in procs:
                proc.check_alive()
            samples = [scrape(p) for p in ports]
            taken = _sum(samples, "corridor_events_in_total")
            if taken >= len(evs) and not ingested_at:
                ingested_at = time.perf_counter()
            stored = _sum(samples, "corridor_alerts_stored_total")
            stored += _sum(samples, "corridor_alerts_deduplicated_total")
            if taken >= len(evs) and stored >= expected:
                break
            if time.perf_counter() > deadline:
                raise click.ClickException(
                    f"{workers} worker(s): {taken:.0f} events, {stored:.0f}/{expected} alerts"
                )
            time.sleep(SCRAPE_EVERY_S)
        elapsed = time.perf_counter() - started
        cpu = [_cpu_seconds(p.popen.pid) - before for p, before in zip(procs, worker_before, strict=True)]
        services_cpu = {name: _cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    n = len(evs)
    return {
        "workers": workers,
        "events": n,
        "alerts": expected,
        "seconds": round(elapsed, 2),
        "events_per_s": n / elapsed,
        "ingest_events_per_s": n / (ingested_at - started),
        "produce_s": round(produce_s, 2),
        **cpu_fields(n, expected, cpu, services_cpu["broker"], services_cpu["redis"], producer_cpu),
        "stages_us_per_event": stage_costs(stages_before, samples, sum(cpu), n),
    }


def stage_costs(
    before: Sequence[dict[str, float]], after: Sequence[dict[str, float]], worker_cpu_s: float, events: int
) -> dict[str, float]:
    """µs of worker CPU per event in each stage of the event path (``metrics.STAGES``, summed over
    the workers, from their ``corridor_stage_cpu_seconds_total`` before and after the run), and the
    rest of the workers' CPU: Faust, aiokafka (its consumer thread included), sockets, the event loop."""
    out: dict[str, float] = {}
    for name in WORKER_STAGES:
        key = f'corridor_stage_cpu_seconds_total{{stage="{name}"}}'
        spent = sum(s.get(key, 0.0) for s in after) - sum(s.get(key, 0.0) for s in before)
        out[name] = round(spent * 1e6 / max(1, events), 1)
    out["rest"] = round(worker_cpu_s * 1e6 / max(1, events) - sum(out.values()), 1)
    return out


def cpu_fields(
    events: int,
    alerts: int,
    workers: Sequence[float],
    broker: float,
    redis: float,
    producer: float,
    gateway: float | None = None,
) -> dict[str, Any]:
    """CPU seconds of each process of a run, and the CPU per event (per alert for Redis)."""
    worker = sum(workers)
    out: dict[str, Any] = {
        "worker_cpu_s": [round(c, 3) for c in workers],
        "broker_cpu_s": round(broker, 3),
        "redis_cpu_s": round(redis, 3),
        "producer_cpu_s": round(producer, 3),
        "worker_cpu_us_per_event": worker * 1e6 / max(1, events),
        "worker_events_per_cpu_s": events / worker if worker else float("nan"),
        "events_per_worker_cpu_s": events / worker if worker else float("nan"),
        "redis_cpu_us_per_alert": redis * 1e6 / max(1, alerts),
        "broker_cpu_us_per_event": broker * 1e6 / max(1, events),
        "producer_cpu_us_per_event": producer * 1e6 / max(1, events),
    }
    if gateway is not None:
        out["gateway_cpu_s"] = round(gateway, 3)
        out["gateway_cpu_us_per_alert"] = gateway * 1e6 / max(1, alerts)
    return out


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a live process has used (0 when there is none)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- latency -----------------------------------------------------------------------------------


def _clients_main(pipe: Connection, port: int, drivers: Sequence[str]) -> None:
    """Client process: connect every driver, then stamp each alert frame until told to stop."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(_clients(pipe, port, drivers))


async def _clients(pipe: Connection, port: int, drivers: Sequence[str]) -> None:
    import gc

    import orjson
    import websockets

    from stream.gateway.tokens import Keyring

    keyring = Keyring.parse(KEY_SPEC)
    received: list[tuple[str, float, str | None, str | None]] = []
    sem = asyncio.Semaphore(200)
    connected = 0

    async def one(name: str) -> None:
        nonlocal connected
        token = keyring.issue(name, time.time(), 3600)
        async with sem:
            ws = await open_driver(port, name, token, open_timeout=60)
        connected += 1
        try:
            while True:
                frame = await ws.recv(decode=False)
                now = time.time()
                message = orjson.loads(frame)
                if message.get("type") == "alert":
                    alert = message["alert"]
                    received.append((alert["event_id"], now, alert["event_received_at"], alert["created_at"]))
        except websockets.ConnectionClosed:
            return

    tasks = [asyncio.create_task(one(name)) for name in drivers]
    while connected < len(drivers):
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            pipe.send({"error": repr(failed[0].exception())})
            return
        await asyncio.sleep(0.05)
    gc.collect()
    gc.freeze()
    pipe.send({"connected": connected})
    while True:
        command = await asyncio.to_thread(pipe.recv)
        if command == "stop":
            break
        await asyncio.sleep(float(command))  # let the last alerts arrive
        pipe.send(received[:])
        received.clear()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def latency_events(routes: Sequence[Route], drivers: int, count: int, tag: str) -> list[Event]:
    """``count`` point events, each on a vertex of one of the first ``drivers`` routes (round robin)."""
    out: list[Event] = []
    for seq in range(count):
        route = routes[seq % drivers]
        lon, lat = route.coordinates[(37 * seq) % len(route.coordinates)]
        event = Event(
            id=f"bench:{tag}:{seq}",
            source="bench",
            kind="closure",
            geometry={"type": "Point", "coordinates": [lon, lat]},
            title="bench closure",
        )
        out.append(event)
    return out


async def publish_at_rate(
    settings: Settings, items: Sequence[Event], rate: int, single: bool = False
) -> dict[str, float]:
    """Publish at ``rate`` per second (in 10 ms slices: each slice one ``Publisher.events`` call, or
    one message per event with ``single``); returns the publish time of each event id."""
    from aiokafka import AIOKafkaProducer

    from stream.ingest.producer import Publisher

    topic = settings.topic("events")
    sent_at: dict[str, float] = {}
    pending: list[Any] = []
    if single:
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers(), acks="all", linger_ms=1)
        await producer.start()
    else:
        publisher = Publisher(settings)
        await publisher.__aenter__()
    started = time.perf_counter()
    sent = 0
    try:
        while sent < len(items):
            due = min(len(items), int(rate * (time.perf_counter() - started)) + 1)
            now = time.time()
            for event in items[sent:due]:
                sent_at[event.id] = now
            if single:
                for event in items[sent:due]:
                    pending.append(await producer.send(topic, key=event.id.encode(), value=dumps(event)))
            elif due > sent:
                pending.append(asyncio.ensure_future(publisher.events(items[sent:due])))
            sent = max(sent, due)
            await asyncio.sleep(0.01)
        await asyncio.gather(*pending)
    finally:
        if single:
            await producer.stop()
        else:
            await publisher.__aexit__(None, None, None)
    return sent_at


STAGES = (
    ("publish_to_fan_out", "publish → stamped by fan_out_events (producer linger, events topic)"),
    ("fan_out_to_match", "stamped → match begins (Redis save, fan-out topic, batching)"),
    ("match_to_socket", "match begins → driver's socket (matching, Redis append, wake-up, gateway)"),
)


def stage_latencies(
    received: Sequence[tuple[str, float, str | None, str | None]], sent_at: dict[str, float]
) -> dict[str, dict[str, float]]:
    """p50/p99 (ms) of each stage of the path, from the times an alert carries: its event's
    receipt (``event_received_at``, stamped by ``fan_out_events``) and its making (``created_at``).
    One machine, one clock; the times an alert carries have millisecond precision."""
    spans: dict[str, list[float]] = {name: [] for name, _ in STAGES}
    for event_id, at, stamped, created in received:
        if stamped is None or created is None:
            continue
        t1 = datetime.fromisoformat(stamped).timestamp()
        t2 = datetime.fromisoformat(created).timestamp()
        spans["publish_to_fan_out"].append((t1 - sent_at[event_id]) * 1000)
        spans["fan_out_to_match"].append((t2 - t1) * 1000)
        spans["match_to_socket"].append((at - t2) * 1000)
    return {
        name: {"p50": round(_percentile(v, 0.50), 1), "p99": round(_percentile(v, 0.99), 1)}
        for name, v in spans.items()
    }


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def latency_runs(
    bench: Bench,
    routes: Sequence[Route],
    drivers: int,
    rate: int,
    seconds: float,
    runs: int,
    single: bool = False,
) -> list[dict[str, Any]]:
    """Publish→websocket latency windows on one worker and one gateway with ``drivers`` connected."""
    prefix = _prefix("lat")
    asyncio.run(seed_routes(bench.redis_url, prefix, routes))
    asyncio.run(create_topic(bench.kafka, f"{prefix}.events"))
    names = [r.driver_id for r in routes[:drivers]]
    results: list[dict[str, Any]] = []
    with Supervisor(bench.env(prefix), bench.state_dir / "logs" / prefix) as supervisor:
        worker_port = free_port()
        worker = supervisor.start_worker(metrics_port=worker_port)
        wait_until(
            lambda: _sum([scrape(worker_port)], "corridor_active_routes") >= len(routes), 120, "routes"
        )
        gateway, port = supervisor.start_gateway()
        pids = {
            "worker": worker.popen.pid,
            "gateway": gateway.popen.pid,
            "broker": bench.services.broker.pid(),
            "redis": bench.services.redis.pid(),
        }
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        clients = ctx.Process(target=_clients_main, args=(child, port, names), daemon=True)
        clients.start()
        pids["clients"] = clients.pid
        try:
            hello = parent.recv()
            if "error" in hello:
                raise click.ClickException(f"driver clients failed: {hello['error']}")
            time.sleep(2.0)
            for run in range(runs + 1):  # window 0 warms the path up and is not kept
                items = latency_events(routes, drivers, int(rate * seconds), f"{run}")
                cpu_before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
                window_started = time.monotonic()
                producer_before = time.process_time()
                sent_at = asyncio.run(publish_at_rate(bench.settings(prefix), items, rate, single))
                producer_cpu = time.process_time() - producer_before
                received: list[tuple[str, float, str | None, str | None]] = []
                deadline = time.monotonic() + LATENCY_DRAIN_S
                while time.monotonic() < deadline:
                    worker.check_alive()
                    parent.send("0.5")
                    received += [r for r in parent.recv() if r[0] in sent_at]
                    if len({r[0] for r in received}) >= len(items):
                        break
                if run == 0:
                    continue
                cpu = {name: _cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
                latencies = [(r[1] - sent_at[r[0]]) * 1000 for r in received]
                own = {r[0] for r in received}
                results.append(
                    {
                        "events": len(items),
                        "alerts_received": len(latencies),
                        "events_without_alert": sum(1 for e in items if e.id not in own),
                        "p50_ms": _percentile(latencies, 0.50),
                        "p99_ms": _percentile(latencies, 0.99),
                        "max_ms": max(latencies, default=float("nan")),
                        "stages_ms": stage_latencies(received, sent_at),
                        # the benchmark's own driver sockets, on the same two cores
                        "clients_cpu_s": round(cpu["clients"], 3),
                        "window_s": round(time.monotonic() - window_started, 2),
                        **cpu_fields(
                            len(items),
                            len(latencies),
                            [cpu["worker"]],
                            cpu["broker"],
                            cpu["redis"],
                            producer_cpu,
                            cpu["gateway"],
                        ),
                    }
                )
            parent.send("stop")
        finally:
            clients.join(10)
            if clients.is_alive():
                clients.kill()
    return results


# --- the whole benchmark -----------------------------------------------------------------------


def measure(
    n_events: int = 10_000,
    n_routes: int = 10_000,
    runs: int = 3,
    drivers: int = 10_000,
    rate: int = 1_000,
    seconds: float = 10.0,
    latency: bool = True,
    single: bool = False,
) -> dict[str, Any]:
    """Ceiling, 1- and 2-worker throughput (runs of each, ratios pair by pair), latency windows."""
    routes = city_routes(n_routes)
    evs = events(City(routes=n_routes, events=n_events, seed=7))
    payloads = [(e.id.encode(), dumps(e)) for e in evs]
    expected = expected_alerts(routes, evs)
    with Bench.embedded("pipeline") as bench:
        rounds: list[dict[str, Any]] = []
        for _ in range(runs):
            ceiling = ceiling_run(bench, payloads)
            framework = faust_ceiling_run(bench, payloads)
            one = throughput_run(bench, routes, evs, expected, 1, single)
            two = throughput_run(bench, routes, evs, expected, 2, single)
            rounds.append({"ceiling": ceiling, "faust": framework, "one": one, "two": two})
        drivers = min(drivers, n_routes)
        windows = (
            latency_runs(bench, routes[:drivers], drivers, rate, seconds, runs, single) if latency else []
        )
        broker_rss = _rss_mb(bench.services.broker.pid())

    def per_run(key: str, field: str, digits: int = 1) -> dict[str, Any]:
        return summary([r[key][field] for r in rounds], digits)

    return {
        "events": n_events,
        "routes": n_routes,
        "partitions": PARTITIONS,
        "event_partitions": EVENT_PARTITIONS,
        "producer": "single events" if single else "envelopes",
        "alerts_per_run": expected,
        "runs": runs,
        "ceiling_msg_per_s": summary([r["ceiling"]["msg_per_s"] for r in rounds]),
        "faust_ceiling_msg_per_s": summary([r["faust"]["msg_per_s"] for r in rounds]),
        "faust_cpu_us_per_msg": summary([r["faust"]["cpu_us_per_msg"] for r in rounds], 1),
        "one_worker_of_faust_ceiling": summary(
            [r["one"]["events_per_s"] / r["faust"]["msg_per_s"] for r in rounds], 3
        ),
        "one_worker_events_per_s": summary([r["one"]["events_per_s"] for r in rounds]),
        "two_workers_events_per_s": summary([r["two"]["events_per_s"] for r in rounds]),
        "two_worker_scaling": summary(
            [r["two"]["events_per_s"] / r["one"]["events_per_s"] for r in rounds], 2
        ),
        "one_worker_of_ceiling": summary(
            [r["one"]["events_per_s"] / r["ceiling"]["msg_per_s"] for r in rounds], 4
        ),
        "one_worker_ingest_events_per_s": summary([r["one"]["ingest_events_per_s"] for r in rounds]),
        "one_worker_events_per_cpu_s": summary([r["one"]["events_per_worker_cpu_s"] for r in rounds]),
        "one_worker_cpu_share": summary(
            [sum(r["one"]["worker_cpu_s"]) / r["one"]["seconds"] for r in rounds], 2
        ),
        "redis_cpu_us_per_alert": per_run("one", "redis_cpu_us_per_alert"),
        "worker_cpu_us_per_event": per_run("one", "worker_cpu_us_per_event"),
        "worker_events_per_cpu_s": per_run("one", "worker_events_per_cpu_s", 0),
        "broker_cpu_us_per_event": per_run("one", "broker_cpu_us_per_event"),
        "producer_cpu_us_per_event": per_run("one", "producer_cpu_us_per_event"),
        "two_workers_worker_cpu_us_per_event": per_run("two", "worker_cpu_us_per_event"),
        "two_worker_cpu_ratio": summary(
            [r["two"]["worker_cpu_us_per_event"] / r["one"]["worker_cpu_us_per_event"] for r in rounds], 2
        ),
        "latency": {
            "drivers": drivers,
            "routes": drivers,
            "rate": rate,
            "seconds": seconds,
            "p50_ms": summary([w["p50_ms"] for w in windows], 1),
            "p99_ms": summary([w["p99_ms"] for w in windows], 1),
            "max_ms": summary([w["max_ms"] for w in windows], 1),
            "worker_cpu_us_per_event": summary([w["worker_cpu_us_per_event"] for w in windows], 1),
            "redis_cpu_us_per_alert": summary([w["redis_cpu_us_per_alert"] for w in windows], 1),
            "gateway_cpu_us_per_alert": summary([w["gateway_cpu_us_per_alert"] for w in windows], 1),
            "windows": windows,
        },
        "broker_rss_mb": round(broker_rss),
        "details": rounds,
    }


def _rss_mb(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def as_plain(value: Any) -> Any:
    """Round floats for JSON (NaN becomes null)."""
    if isinstance(value, float):
        return None if value != value else round(value, 2)  # noqa: PLR0124 - NaN check
    if isinstance(value, dict):
        return {k: as_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_plain(v) for v in value]
    if isinstance(value, np.generic):
        return as_plain(value.item())
    return value


@click.command("pipeline")
@click.option("--events", "n_events", default=10_000, show_default=True, help="Events per throughput run.")
@click.option("--routes", "n_routes", default=10_000, show_default=True, help="Routes registered.")
@click.option("--runs", default=3, show_default=True, help="Runs of each measurement (median kept).")
@click.option("--drivers", default=10_000, show_default=True, help="Drivers connected for the latency runs.")
@click.option("--rate", default=1_000, show_default=True, help="Events/s published in the latency runs.")
@click.option("--seconds", default=10.0, show_default=True, help="Length of each latency window.")
@click.option("--no-latency", is_flag=True, help="Skip the latency runs.")
@click.option(
    "--single-events",
    is_flag=True,
    help="Produce one message per event (the interop format) instead of Corridor's envelopes.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def pipeline(
    n_events: int,
    n_routes: int,
    runs: int,
    drivers: int,
    rate: int,
    seconds: float,
    no_latency: bool,
    single_events: bool,
    as_json: bool,
) -> None:
    """End to end through the embedded broker: workers vs a plain consumer, publish→driver latency."""
    result = as_plain(
        measure(n_events, n_routes, runs, drivers, rate, seconds, not no_latency, single_events)
    )
    if as_json:
        click.echo(json.dumps({"bench": "pipeline", "targets": TARGETS, **result}))
        return
    from rich.table import Table

    from stream.commands.output import console

    table = Table(
        title=f"corridor bench pipeline ({n_events:,} events, {n_routes:,} routes, median of {runs})"
    )
    for column in ("measure", "median", "min–max"):
        table.add_column(column, justify="right")
    rows = [
        ("plain consumer (msg/s)", result["ceiling_msg_per_s"]),
        ("Faust agent doing nothing (msg/s)", result["faust_ceiling_msg_per_s"]),
        ("Faust agent: CPU per message (µs)", result["faust_cpu_us_per_msg"]),
        ("1 worker (events/s)", result["one_worker_events_per_s"]),
        ("2 workers (events/s)", result["two_workers_events_per_s"]),
        ("2 workers / 1 worker", result["two_worker_scaling"]),
        ("1 worker / plain consumer", result["one_worker_of_ceiling"]),
        ("1 worker / Faust agent doing nothing", result["one_worker_of_faust_ceiling"]),
        ("1 worker: events per CPU second", result["one_worker_events_per_cpu_s"]),
        ("1 worker: CPU share of a core", result["one_worker_cpu_share"]),
        ("1 worker: CPU per event (µs)", result["worker_cpu_us_per_event"]),
        ("2 workers: CPU per event (µs)", result["two_workers_worker_cpu_us_per_event"]),
        ("2 workers / 1 worker: CPU per event", result["two_worker_cpu_ratio"]),
        ("Redis CPU per alert (µs)", result["redis_cpu_us_per_alert"]),
        ("broker CPU per event (µs)", result["broker_cpu_us_per_event"]),
        ("producer CPU per event (µs)", result["producer_cpu_us_per_event"]),
        ("p50 publish→driver (ms)", result["latency"]["p50_ms"]),
        ("p99 publish→driver (ms)", result["latency"]["p99_ms"]),
    ]
    for name, s in rows:
        table.add_row(name, str(s["median"]), f"{s['min']}–{s['max']}")
    console().print(table)
