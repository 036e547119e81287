"""Fault scenarios on real processes: a burst, a killed worker, a Redis restart, a poison flood.

Each scenario runs three workers on the embedded broker and Redis, registers the reference city's
routes, publishes its events while the fault happens, and then compares the alerts in the drivers'
Redis streams with what one in-process engine raises for the same routes and events (the oracle):
every expected alert delivered exactly once, nothing else. Peak memory of every process and the
largest consumer lag are sampled once a second. ``make soak`` runs the long versions; the
integration tests run the same code at a few thousand events.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import click
import orjson
from aiokafka import AIOKafkaProducer
from rich.table import Table

from schemas import Event, Route
from stream.bench import city as reference
from stream.commands import output
from stream.core.engine import Engine
from stream.ingest.producer import Publisher
from stream.local.services import EmbeddedServices, free_port
from stream.local.supervisor import Proc, Supervisor, wait_until
from stream.runtime.redis_keys import driver_stream_key
from stream.runtime.retry import redis_client
from stream.runtime.settings import Settings

SCENARIOS = ("burst", "kill-worker", "restart-redis", "poison-flood")
PUBLISH_CHUNK = 2_000
_LAG = re.compile(rb"^corridor_consumer_lag\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)


@dataclass
class Result:
    """One scenario's row of the table."""

    scenario: str
    events: int
    poison: int
    alerts_expected: int
    delivered: int
    lost: int
    duplicated: int
    unexpected: int
    seconds: float
    max_lag: int
    peak_rss_mb: dict[str, float] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        """Every expected alert delivered once, nothing else."""
        return self.lost == self.duplicated == self.unexpected == 0


def expected_alerts(routes: Sequence[Route], events: Sequence[Event]) -> set[str]:
    """The alert ids one in-process engine raises for these routes and events (the oracle)."""
    engine = Engine()
    now = datetime.now(UTC)
    for route in routes:
        engine.upsert_route(route, now)
    found: set[str] = set()
    for start in range(0, len(events), 5_000):
        found |= {a.alert_id for a in engine.apply_events(events[start : start + 5_000], now)}
    return found


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Sampler(threading.Thread):
    """Samples peak RSS per named process and the total consumer lag of the workers, every second."""

    def __init__(self, pids: Callable[[], dict[str, int]], metrics_urls: Callable[[], list[str]]) -> None:
        super().__init__(daemon=True)
        self._pids = pids
        self._urls = metrics_urls
        self.peak: dict[str, float] = {}
        self.max_lag = 0
        self.last_lag = -1
        self._stop_event = threading.Event()

    def run(self) -> None:
        """Sample until stopped."""
        while not self._stop_event.wait(1.0):
            self.sample()

    def sample(self) -> None:
        """One sample of memory and lag."""
        for name, pid in self._pids().items():
            self.peak[name] = max(self.peak.get(name, 0.0), _rss_mb(pid))
        total = 0
        for url in self._urls():
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                    total += sum(int(float(v)) for v in _LAG.findall(response.read()))
            except OSError:
                continue
        self.last_lag = total
        self.max_lag = max(self.max_lag, total)

    def stop(self) -> None:
        """Stop sampling."""
        self._stop_event.set()


async def delivered_alerts(settings: Settings, drivers: Sequence[str]) -> Counter[str]:
    """How many times each alert id was raised in the drivers' streams."""
    client = redis_client(settings.resolved_redis_url())
    seen: Counter[str] = Counter()
    try:
        for start in range(0, len(drivers), 200):
            async with client.pipeline(transaction=False) as pipe:
                for driver in drivers[start : start + 200]:
                    pipe.xrange(driver_stream_key(settings.redis_prefix, driver))
                streams = await pipe.execute()
            for entries in streams:
                for _, fields in entries:
                    alert = orjson.loads(fields[b"a"])
                    if alert["state"] == "raised":
                        seen[alert["alert_id"]] += 1
    finally:
        await client.aclose()
    return seen


class Soak:
    """One scenario's deployment: services, three workers, and what they are fed."""

    def __init__(self, workdir: Path, routes: int, events: int, poison: int, workers: int = 3) -> None:
        self.workdir = workdir
        self.city = reference.City(routes=routes, events=events, seed=11)
        self.poison = poison
        self.services = EmbeddedServices(workdir / "state")
        self.env = {
            **os.environ,
            "CORRIDOR_STATE_DIR": str(workdir / "state"),
            "CORRIDOR_PARTITIONS": "8",
            "CORRIDOR_STREAM_MAXLEN": "1000000",
            "CORRIDOR_LOG_FORMAT": "json",
        }
        for key in ("CORRIDOR_KAFKA_URL", "CORRIDOR_REDIS_URL"):
            self.env.pop(key, None)
        self.supervisor = Supervisor(self.env, workdir / "logs")
        self.workers: dict[str, Proc] = {}
        self.metrics_ports: dict[str, int] = {}
        self.worker_count = workers

    @property
    def settings(self) -> Settings:
        """The deployment's settings."""
        return Settings.from_env(self.env)

    def start(self) -> None:
        """Services and workers up."""
        self.services.up()
        for n in range(1, self.worker_count + 1):
            self.start_worker(f"worker-{n}")

    def start_worker(self, name: str) -> None:
        """Start (or restart) one worker with a known metrics port."""
        port = self.metrics_ports.get(name) or free_port()
        self.metrics_ports[name] = port
        self.workers[name] = self.supervisor.start_worker(name, timeout=90, metrics_port=port)

    def pids(self) -> dict[str, int]:
        """Live processes to watch, by name."""
        found = {name: proc.popen.pid for name, proc in self.workers.items() if proc.popen.poll() is None}
        for service in (self.services.broker, self.services.redis):
            pid = service.pid()
            if pid:
                found[service.name] = pid
        return found

    def metrics_urls(self) -> list[str]:
        """The workers' /metrics endpoints."""
        return [f"http://127.0.0.1:{port}/metrics" for port in self.metrics_ports.values()]

    def stop(self) -> None:
        """Everything down."""
        self.supervisor.stop_all()
        self.services.down()


async def _publish_poison(settings: Settings, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers(), linger_ms=5)
    await producer.start()
    try:
        for n in range(count):
            await producer.send(settings.topic("events"), b'{"id": "poison", "kind": ' + str(n).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _feed(
    soak: Soak, routes: list[Route], events: list[Event], fault: Callable[[], object] | None
) -> None:
    settings = soak.settings
    async with Publisher(settings) as publisher:
        for start in range(0, len(routes), PUBLISH_CHUNK):
            await publisher.register_routes(routes[start : start + PUBLISH_CHUNK])
        await asyncio.sleep(2.0)  # routes are in before the events start
        fault_at = len(events) // 3
        for start in range(0, len(events), PUBLISH_CHUNK):
            if fault is not None and start <= fault_at < start + PUBLISH_CHUNK:
                await asyncio.to_thread(fault)
            await publisher.events(events[start : start + PUBLISH_CHUNK])
            if soak.poison:
                share = soak.poison * PUBLISH_CHUNK // max(1, len(events))
                await _publish_poison(settings, max(1, share))


def run_scenario(scenario: str, routes: int, events: int, workdir: Path, timeout_s: float = 900) -> Result:
    """Run one scenario end to end and compare the delivered alerts with the oracle."""
    poison = events if scenario == "poison-flood" else 0
    soak = Soak(workdir, routes, events, poison)
    route_list = list(reference.routes(soak.city))
    event_list = reference.events(soak.city)
    expected = expected_alerts(route_list, event_list)
    faults: dict[str, Callable[[], object]] = {
        "kill-worker": lambda: soak.workers["worker-2"].stop(signal.SIGKILL),
        "restart-redis": soak.services.restart_redis,
    }
    sampler = Sampler(soak.pids, soak.metrics_urls)
    started = time.monotonic()
    try:
        soak.start()
        sampler.start()
        asyncio.run(_feed(soak, route_list, event_list, faults.get(scenario)))
        drivers = [r.driver_id for r in route_list]

        def settled() -> bool:
            sampler.sample()
            if sampler.last_lag != 0:
                return False
            return sum(asyncio.run(delivered_alerts(soak.settings, drivers)).values()) >= len(expected)

        try:
            wait_until(settled, timeout_s, f"{scenario}: every alert delivered", interval=2.0)
        except TimeoutError:
            pass
        time.sleep(2.0)  # a duplicate would have landed by now
        seen = asyncio.run(delivered_alerts(soak.settings, drivers))
    finally:
        sampler.stop()
        soak.stop()
    delivered = set(seen)
    return Result(
        scenario=scenario,
        events=len(event_list),
        poison=poison,
        alerts_expected=len(expected),
        delivered=len(delivered & expected),
        lost=len(expected - delivered),
        duplicated=sum(n - 1 for n in seen.values() if n > 1),
        unexpected=len(delivered - expected),
        seconds=round(time.monotonic() - started, 1),
        max_lag=sampler.max_lag,
        peak_rss_mb={k: round(v, 1) for k, v in sorted(sampler.peak.items())},
    )


def _table(results: Sequence[Result]) -> Table:
    table = Table(title="corridor soak: alerts expected vs delivered under faults (3 workers)")
    columns = ("scenario", "events", "poison", "expected", "delivered", "lost", "dup", "extra", "max lag")
    for column in columns:
        table.add_column(column, justify="right")
    for column in ("broker MB", "redis MB", "worker MB", "s"):
        table.add_column(column, justify="right")
    for r in results:
        workers = max((v for k, v in r.peak_rss_mb.items() if k.startswith("worker")), default=0.0)
        table.add_row(
            r.scenario,
            f"{r.events:,}",
            f"{r.poison:,}",
            f"{r.alerts_expected:,}",
            f"{r.delivered:,}",
            str(r.lost),
            str(r.duplicated),
            str(r.unexpected),
            f"{r.max_lag:,}",
            f"{r.peak_rss_mb.get('broker', 0):.0f}",
            f"{r.peak_rss_mb.get('redis', 0):.0f}",
            f"{workers:.0f}",
            f"{r.seconds:.0f}",
        )
    return table


@click.command()
@click.option("--events", type=int, default=250_000, show_default=True, help="Events per scenario.")
@click.option("--routes", type=int, default=2_000, show_default=True, help="Active routes.")
@click.option("--scenario", "scenarios", type=click.Choice(SCENARIOS), multiple=True, help="Default: all.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def soak(events: int, routes: int, scenarios: tuple[str, ...], as_json: bool) -> None:
    """Faults under load on three workers; exits 1 unless every alert arrived exactly once."""
    console = output.console(stderr=as_json)
    results = []
    for name in scenarios or SCENARIOS:
        workdir = Path(tempfile.mkdtemp(prefix=f"corridor-soak-{name}-"))
        try:
            console.print(f"[bold]{name}[/]: {events:,} events over {routes:,} routes, three workers…")
            results.append(run_scenario(name, routes, events, workdir))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    if as_json:
        click.echo(json.dumps([{**asdict(r), "exact": r.exact} for r in results]))
    else:
        console.print(_table(results))
    if not all(r.exact for r in results):
        raise SystemExit(1)
