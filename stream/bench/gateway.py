"""``corridor bench gateway``: many drivers on one gateway process, alerts at a fixed rate.

Starts its own Redis and a real ``corridor gateway`` process, connects the drivers from a separate
client process (the open-files limit is per process), appends alerts through the real RedisOutbox
at the target rate, and measures on the clients the time from the alert's append to Redis (the
millisecond of its stream id, Redis's clock, same host) until the client has read it. Reports
lost and duplicated alerts (by stream id, per driver), the gateway's RSS (with the drivers connected
and idle, and at the end of the load) and its CPU per delivered alert (CPU seconds of the gateway
process over the alerts the clients received: less sensitive to other load on the machine than
latency).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import resource
import statistics
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from schemas import Alert
from stream.commands.output import console
from stream.local.services import EmbeddedServices, free_port
from stream.local.supervisor import Supervisor
from stream.worker.outbox import RedisOutbox

KEY_SPEC = "bench:bench-signing-key-0123456789abcdefgh"
PREFIX = "bench"
TARGETS = {
    "p50_ms": 2.0,
    "p99_ms": 10.0,
    "lost": 0,
    "duplicates": 0,
    "rss_mb": 250.0,
    "gateway_cpu_us_per_alert": 60.0,
}
CONNECT_CONCURRENCY = 200
# The producer makes one append call per millisecond, as a worker makes one per batch of events (all
# of a batch's alerts in one call): ~12 alerts a call at 5,000 alerts/s, fewer than a worker's (~20
# alerts a wake-up message in bench pipeline's latency windows, 1,000 events/s). With a call as soon
# as each alert is due (--call-every-ms 0, ~2 alerts a call) a wake-up message per alert or two
# dominates the gateway's CPU per alert (~100 µs against ~60).
CALL_EVERY_MS = 1.0
_ID_AT = len(b'{"type":"alert","id":"')


def raise_open_files() -> None:
    """Raise this process's soft open-files limit to its hard limit (sockets are files)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def open_driver(port: int, name: str, token: str, open_timeout: float) -> Any:
    """A benchmark driver's socket (no compression, no pings), past its hello message."""
    import websockets  # noqa: PLC0415 - only in the client process

    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/drivers/{name}/alerts",
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,
        ping_interval=None,
        open_timeout=open_timeout,
        max_size=2**16,
    )
    await ws.recv()  # hello
    return ws


def driver_id(n: int) -> str:
    """The n-th bench driver."""
    return f"bench-{n:05d}"


# --- the client process ------------------------------------------------------------------------


def _clients_main(pipe: Connection, port: int, drivers: int) -> None:
    """Entry point of the client process: connect, report, collect until told to stop."""
    raise_open_files()
    asyncio.run(_clients(pipe, port, drivers))


async def _clients(pipe: Connection, port: int, drivers: int) -> None:
    import gc

    import websockets

    from stream.gateway.tokens import Keyring

    keyring = Keyring.parse(KEY_SPEC)
    received: list[list[bytes]] = [[] for _ in range(drivers)]
    latencies: list[float] = []
    closes: dict[str, int] = {}
    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
    connected = 0

    async def one(n: int) -> None:
        nonlocal connected
        name = driver_id(n)
        token = keyring.issue(name, time.time(), 3600)
        async with sem:
            ws = await open_driver(port, name, token, open_timeout=120)
        connected += 1
        mine = received[n]
        try:
            while True:
                frame = await ws.recv(decode=False)
                now_ms = time.time() * 1000
                end = frame.index(b'"', _ID_AT)
                stream_id = frame[_ID_AT:end]
                mine.append(stream_id)
                latencies.append(now_ms - int(stream_id.split(b"-", 1)[0]))
        except websockets.ConnectionClosed as exc:
            key = str(exc.rcvd.code if exc.rcvd else "none")
            closes[key] = closes.get(key, 0) + 1

    started = time.monotonic()
    tasks = [asyncio.create_task(one(n)) for n in range(drivers)]
    while connected < drivers:
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            pipe.send({"error": repr(failed[0].exception()), "connected": connected})
            return
        await asyncio.sleep(0.05)
    gc.collect()
    gc.freeze()  # the harness's own 10k connections must not pause its clock,
    gc.disable()  # nor any collection while it measures (it lives for a minute)
    pauses: list[float] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - gc_started[0])

    gc.callbacks.append(on_gc)
    cpu0 = _cpu_seconds(os.getpid())
    pipe.send({"connected": connected, "connect_s": time.monotonic() - started})
    expected = await asyncio.to_thread(pipe.recv)
    deadline = time.monotonic() + 15.0
    while len(latencies) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    pipe.send(
        {
            "latencies": latencies,
            "received": [[i.decode() for i in ids] for ids in received],
            "closes": closes,
            "cpu_s": _cpu_seconds(os.getpid()) - cpu0,
            "gc_max_pause_s": max(pauses, default=0.0),
        }
    )
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- the producer ------------------------------------------------------------------------------


async def _produce(
    redis_url: str, drivers: int, rate: int, seconds: float, call_every_s: float = 0.0
) -> tuple[dict[str, set[str]], float]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    outbox = RedisOutbox(client, PREFIX)
    rng = random.Random(7)  # noqa: S311 - load spread, not security
    expected: dict[str, set[str]] = {}
    produced = 0
    started = time.perf_counter()
    try:
        while (elapsed := time.perf_counter() - started) < seconds:
            due = int(rate * elapsed) - produced
            if due <= 0:
                await asyncio.sleep(0.005)
                continue
            now = datetime.now(UTC)
            batch = []
            for seq in range(produced, produced + due):
                name = driver_id(rng.randrange(drivers))
                batch.append(
                    Alert(
                        alert_id=f"bench-{seq}",
                        route_id=f"r-{name}",
                        driver_id=name,
                        event_id=f"e-{seq}",
                        kind="closure",
                        state="raised",
                        distance_ahead_m=float(seq % 5000),
                        valid_from=None,
                        valid_until=None,
                        title="Rue de Rivoli fermée",
                        street="Rue de Rivoli",
                        created_at=now,
                    )
                )
            for alert, stream_id in await outbox.append(batch):
                if stream_id is not None:
                    expected.setdefault(alert.driver_id, set()).add(stream_id)
            produced += due
            if call_every_s:  # a worker's shape: one append call per batch (see CALL_EVERY_MS)
                await asyncio.sleep(call_every_s)
        return expected, produced / (time.perf_counter() - started)
    finally:
        await client.aclose()


# --- measurement helpers -----------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _scrape(port: int) -> dict[str, float]:
    """A few sums from the gateway's /metrics (gc pauses, reads)."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        if name.startswith("corridor_delivery_seconds_bucket"):
            out[name] = float(value)
        for wanted in (
            "corridor_gateway_stream_reads_total",
            "corridor_gateway_wakeups_total",
            "corridor_gateway_live_alerts_total",
            'corridor_gc_pause_seconds_count{generation="2"}',
            'corridor_gc_pause_seconds_sum{generation="2"}',
            "corridor_gateway_queue_overflows_total",
        ):
            if name == wanted:
                out[wanted] = float(value)
    return out


def _bucket_quantile(scraped: dict[str, float], q: float) -> float | None:
    """Upper bound (ms) of the gateway's appended→sent histogram bucket holding quantile ``q``."""
    buckets = sorted(
        (float(k.split('le="', 1)[1].split('"', 1)[0]), v)
        for k, v in scraped.items()
        if k.startswith("corridor_delivery_seconds_bucket")
    )
    if not buckets or buckets[-1][1] <= 0:
        return None
    for bound, count in buckets:
        if count >= q * buckets[-1][1]:
            return bound * 1000
    return None


def measure(drivers: int, rate: int, seconds: float, call_every_ms: float = CALL_EVERY_MS) -> dict[str, Any]:
    """Run one benchmark; returns the numbers printed by the command."""
    raise_open_files()
    load_at_start = [round(x, 2) for x in os.getloadavg()]  # other work on the machine, before ours
    with tempfile.TemporaryDirectory(prefix="corridor-bench-") as tmp:
        services = EmbeddedServices(Path(tmp))
        redis_url = services.start_redis()
        metrics_port = free_port()
        env = {
            **os.environ,
            "CORRIDOR_STATE_DIR": tmp,
            "CORRIDOR_REDIS_URL": redis_url,
            "CORRIDOR_TOPIC_PREFIX": PREFIX,
            "CORRIDOR_SIGNING_KEY": KEY_SPEC,
            "CORRIDOR_LOG_FORMAT": "text",
        }
        try:
            with Supervisor(env, Path(tmp) / "logs") as supervisor:
                gateway, port = supervisor.start_gateway(metrics_port=metrics_port)
                result = _run(
                    gateway.log,
                    gateway.popen.pid,
                    port,
                    metrics_port,
                    redis_url,
                    drivers,
                    rate,
                    seconds,
                    services,
                    call_every_ms / 1000,
                )
                return {**result, "load_at_start": load_at_start}
        finally:
            services.redis.stop()


def _run(
    gateway_log: Path,
    gw_pid: int,
    port: int,
    metrics_port: int,
    redis_url: str,
    drivers: int,
    rate: int,
    seconds: float,
    services: EmbeddedServices,
    call_every_s: float = 0.0,
) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    clients = ctx.Process(target=_clients_main, args=(child, port, drivers), daemon=True)
    clients.start()
    try:
        hello = parent.recv()
        if "error" in hello:
            raise click.ClickException(f"clients failed after {hello['connected']}: {hello['error']}")
        time.sleep(2.0)  # let the gateway settle (and freeze) its new connections
        load_before = round(os.getloadavg()[0], 2)
        redis_pid = services.redis.pid() or 0
        rss_idle = _rss_mb(gw_pid)
        before = _scrape(metrics_port)
        gw_cpu0, redis_cpu0, wall0 = _cpu_seconds(gw_pid), _cpu_seconds(redis_pid), time.monotonic()
        expected, achieved = asyncio.run(_produce(redis_url, drivers, rate, seconds, call_every_s))
        wall = time.monotonic() - wall0
        gw_cpu, redis_cpu = _cpu_seconds(gw_pid) - gw_cpu0, _cpu_seconds(redis_pid) - redis_cpu0
        rss = _rss_mb(gw_pid)
        total = sum(len(ids) for ids in expected.values())
        parent.send(total)
        result = parent.recv()
        after = _scrape(metrics_port)
        scraped = {k: v - before.get(k, 0.0) for k, v in after.items()}
        gc_log = [line[-120:] for line in gateway_log.read_text().splitlines() if "gc:" in line]
    finally:
        clients.join(10)
        if clients.is_alive():
            clients.kill()
    latencies: list[float] = result["latencies"]
    lost = duplicates = 0
    for n, got in enumerate(result["received"]):
        want = expected.get(driver_id(n), set())
        lost += len(want - set(got))
        duplicates += len(got) - len(set(got))
    reads = scraped.get("corridor_gateway_stream_reads_total", 0.0)
    wakeups = scraped.get("corridor_gateway_wakeups_total", 0.0)
    live = scraped.get("corridor_gateway_live_alerts_total", 0.0)
    return {
        "drivers": drivers,
        "connected": hello["connected"],
        "connect_s": round(hello["connect_s"], 1),
        "seconds": round(wall, 1),
        "alerts": total,
        "alerts_per_s": round(achieved),
        "received": len(latencies),
        "p50_ms": round(_percentile(latencies, 0.50), 1),
        "p99_ms": round(_percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies, default=float("nan")), 1),
        "mean_ms": round(statistics.fmean(latencies), 2) if latencies else None,
        "lost": lost,
        "duplicates": duplicates,
        "rss_mb": round(rss, 1),
        "rss_idle_mb": round(rss_idle, 1),
        "rss_peak_mb": round(_rss_mb(gw_pid, "VmHWM"), 1) if Path(f"/proc/{gw_pid}").exists() else None,
        "idle_rss_mb": round(rss_idle, 1),
        "cpu_pct": round(100 * gw_cpu / wall, 1),
        "gateway_cpu_us_per_alert": round(1e6 * gw_cpu / len(latencies), 1) if latencies else None,
        "redis_cpu_pct": round(100 * redis_cpu / wall, 1),
        "alerts_per_read": round((total - live) / reads, 1) if reads else None,
        "alerts_per_wakeup": round(total / wakeups, 1) if wakeups else None,
        "live_share": round(live / total, 3) if total else None,
        "full_gc": int(scraped.get('corridor_gc_pause_seconds_count{generation="2"}', 0)),
        "full_gc_s": round(scraped.get('corridor_gc_pause_seconds_sum{generation="2"}', 0.0), 3),
        "gateway_sent_p50_le_ms": _bucket_quantile(scraped, 0.50),
        "gateway_sent_p99_le_ms": _bucket_quantile(scraped, 0.99),
        "load_before": load_before,
        "overflows": int(scraped.get("corridor_gateway_queue_overflows_total", 0)),
        "clients_cpu_pct": round(100 * result["cpu_s"] / wall, 1),
        "clients_gc_max_ms": round(1000 * result["gc_max_pause_s"], 1),
        "closes": result["closes"],
        "gateway_gc_log": gc_log,
    }


def _verdict(r: dict[str, Any]) -> bool:
    cpu = r["gateway_cpu_us_per_alert"]
    return bool(
        r["p50_ms"] <= TARGETS["p50_ms"]
        and r["p99_ms"] <= TARGETS["p99_ms"]
        and r["lost"] == TARGETS["lost"]
        and r["duplicates"] == TARGETS["duplicates"]
        and r["rss_mb"] <= TARGETS["rss_mb"]
        and cpu is not None
        and cpu <= TARGETS["gateway_cpu_us_per_alert"]
    )


@click.command("gateway")
@click.option("--drivers", default=10_000, show_default=True, help="Concurrent driver connections.")
@click.option("--rate", default=5_000, show_default=True, help="Alerts per second, spread over drivers.")
@click.option("--seconds", default=30.0, show_default=True, help="How long alerts are produced.")
@click.option(
    "--call-every-ms",
    default=CALL_EVERY_MS,
    show_default=True,
    help="Wait between append calls (0: a call as soon as an alert is due, ~2 alerts a call).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def gateway(drivers: int, rate: int, seconds: float, call_every_ms: float, as_json: bool) -> None:
    """Alert appended to Redis → read by the driver: latency, loss, duplicates, gateway RSS and CPU."""
    result = measure(drivers, rate, seconds, call_every_ms)
    result["meets_targets"] = _verdict(result)
    if as_json:
        click.echo(json.dumps({"bench": "gateway", "targets": TARGETS, **result}))
        return
    table = Table(title=f"corridor bench gateway ({drivers:,} drivers, {rate:,} alerts/s, {seconds:.0f} s)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    rows = [
        ("drivers connected", f"{result['connected']:,} in {result['connect_s']} s", ""),
        ("alerts/s produced", f"{result['alerts_per_s']:,}", f"{rate:,}"),
        ("alerts appended / received", f"{result['alerts']:,} / {result['received']:,}", ""),
        ("p50 appended→received", f"{result['p50_ms']} ms", f"≤ {TARGETS['p50_ms']:g} ms"),
        ("p99 appended→received", f"{result['p99_ms']} ms", f"≤ {TARGETS['p99_ms']:g} ms"),
        ("max appended→received", f"{result['max_ms']} ms", ""),
        ("lost", str(result["lost"]), "0"),
        ("duplicates", str(result["duplicates"]), "0"),
        ("gateway RSS (idle → loaded)", f"{result['idle_rss_mb']} → {result['rss_mb']} MB", "≤ 250 MB"),
        ("gateway CPU", f"{result['cpu_pct']} % of a core", ""),
        (
            "gateway CPU per delivered alert",
            f"{result['gateway_cpu_us_per_alert']} µs",
            f"≤ {TARGETS['gateway_cpu_us_per_alert']:g} µs",
        ),
        ("load average (1 min) before", str(result["load_before"]), ""),
        ("Redis CPU", f"{result['redis_cpu_pct']} % of a core", ""),
        ("alerts per wake-up message (per append call)", str(result["alerts_per_wakeup"]), ""),
        ("share written straight from wake-ups", str(result["live_share"]), ""),
        ("alerts per XREAD round trip (the rest)", str(result["alerts_per_read"]), ""),
        ("full GC in gateway (count, total)", f"{result['full_gc']}, {result['full_gc_s']} s", ""),
        ("verdict", "ok" if result["meets_targets"] else "MISSED", ""),
    ]
    for row in rows:
        table.add_row(*row)
    console().print(table)
