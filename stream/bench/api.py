"""``corridor bench api``: events/s one ``corridor api`` process accepts, on the embedded broker.

Concurrent clients post arrays of valid events (``--batch``, 100) for ``--seconds`` (20); an event
counts when its request got 202, which the API answers only once the broker acknowledged it. Reports
accepted events/s, request latency (p50, p99) and the API process's CPU per accepted event. The
publisher's rate limits are lifted for the run: the ceiling measured is the API's, not a quota's.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import orjson
from aiohttp import ClientSession, ClientTimeout, TCPConnector

from stream.bench.pipeline import Bench, _cpu_seconds
from stream.local.services import free_port, port_free
from stream.local.supervisor import Supervisor, corridor_command, wait_until

TARGETS = {"events_per_s": 20_000.0, "p99_ms": 50.0}
SOURCE = "benchport"
UNLIMITED = {
    "CORRIDOR_API_RATE": "1000000",
    "CORRIDOR_API_BURST": "1000000",
    "CORRIDOR_API_EVENT_RATE": "100000000",
    "CORRIDOR_API_EVENT_BURST": "1000000",
    "CORRIDOR_API_VERTEX_RATE": "1000000000",
    "CORRIDOR_API_VERTEX_BURST": "10000000",
}


def batch_body(first: int, size: int) -> bytes:
    """``size`` valid roadworks events (ids ``first`` on) as one JSON array, as a port would post them."""
    start = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)
    events = [
        {
            "id": f"{SOURCE}:{first + n}",
            "source": SOURCE,
            "kind": "roadworks",
            "geometry": {
                "type": "LineString",
                "coordinates": [[0.1 + (n % 97) * 1e-3, 49.47], [0.1 + (n % 97) * 1e-3, 49.471]],
            },
            "valid_from": start.isoformat(),
            "valid_until": (start + timedelta(hours=4)).isoformat(),
            "status": "active",
            "title": "one lane closed",
        }
        for n in range(size)
    ]
    return orjson.dumps(events)


async def _load(url: str, credential: str, clients: int, batch: int, seconds: float) -> dict[str, Any]:
    """Each client posts batch after batch until ``seconds`` have passed; latencies and statuses."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    headers = {"Authorization": f"Bearer {credential}", "Content-Type": "application/json"}
    counter = iter(range(10**9))

    async def client(session: ClientSession, deadline: float) -> None:
        while time.perf_counter() < deadline:
            body = batch_body(next(counter) * batch, batch)
            started = time.perf_counter()
            async with session.post(f"{url}/v1/events", data=body, headers=headers) as response:
                await response.read()
            latencies.append(time.perf_counter() - started)
            statuses[response.status] = statuses.get(response.status, 0) + 1

    connector = TCPConnector(limit=clients)
    async with ClientSession(connector=connector, timeout=ClientTimeout(total=30)) as session:
        # warm-up: the API's first requests open its producer and load the schemas
        for _ in range(3):
            async with session.post(f"{url}/v1/events", data=batch_body(10**8, batch), headers=headers) as r:
                await r.read()
        started = time.perf_counter()
        await asyncio.gather(*(client(session, started + seconds) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {"latencies": latencies, "statuses": statuses, "seconds": elapsed}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run_once(bench: Bench, clients: int, batch: int, seconds: float) -> dict[str, Any]:
    """One API process on its own topics, loaded by ``clients`` for ``seconds``."""
    prefix = f"benchapi{uuid.uuid4().hex[:8]}"
    env = bench.env(prefix)
    added = subprocess.run(
        [corridor_command(), "publisher", "add", SOURCE, "--source", SOURCE],
        env=env,
        capture_output=True,
        timeout=120,
        check=True,
    )
    credential = added.stdout.decode().strip()
    port = free_port()
    with Supervisor(env, bench.state_dir / "logs" / prefix) as supervisor:
        proc = supervisor.start("api", "api", "--port", str(port), extra_env=UNLIMITED)

        def listening() -> bool:
            proc.check_alive()
            return not port_free(port)

        wait_until(listening, 60, "the api to listen")
        url = f"http://127.0.0.1:{port}"
        cpu_before = _cpu_seconds(proc.popen.pid)
        load = asyncio.run(_load(url, credential, clients, batch, seconds))
        api_cpu = _cpu_seconds(proc.popen.pid) - cpu_before
    accepted = load["statuses"].get(202, 0) * batch
    latencies = load["latencies"]
    return {
        "events_per_s": accepted / load["seconds"],
        "p50_ms": 1000 * _percentile(latencies, 0.50),
        "p99_ms": 1000 * _percentile(latencies, 0.99),
        "api_cpu_us_per_event": 1e6 * api_cpu / accepted if accepted else None,
        "api_cpu_share": api_cpu / load["seconds"],
        "requests": len(latencies),
        "statuses": {str(k): v for k, v in sorted(load["statuses"].items())},
    }


def measure(clients: int = 6, batch: int = 100, seconds: float = 20.0, runs: int = 1) -> dict[str, Any]:
    """Medians of ``runs`` runs, each with its own API process, on one set of embedded services."""
    with Bench.embedded("api") as bench:
        rounds = [run_once(bench, clients, batch, seconds) for _ in range(runs)]

    def median(key: str, digits: int = 1) -> float | None:
        values = [r[key] for r in rounds if r[key] is not None]
        return round(statistics.median(values), digits) if values else None

    result: dict[str, Any] = {
        "clients": clients,
        "batch": batch,
        "seconds": seconds,
        "runs": runs,
        "events_per_s": median("events_per_s", 0),
        "p50_ms": median("p50_ms"),
        "p99_ms": median("p99_ms"),
        "api_cpu_us_per_event": median("api_cpu_us_per_event"),
        "api_cpu_share": median("api_cpu_share", 2),
        "rounds": rounds,
        "targets": TARGETS,
    }
    result["meets_target"] = bool(
        (result["events_per_s"] or 0) >= TARGETS["events_per_s"]
        and (result["p99_ms"] or 1e9) <= TARGETS["p99_ms"]
    )
    return result


@click.command("api")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a summary.")
@click.option("--clients", default=6, show_default=True, help="Concurrent HTTP clients.")
@click.option("--batch", default=100, show_default=True, help="Events per request.")
@click.option("--seconds", default=20.0, show_default=True, help="Load duration of each run.")
@click.option("--runs", default=1, show_default=True, help="Runs (a new API process each; medians).")
def api(as_json: bool, clients: int, batch: int, seconds: float, runs: int) -> None:
    """Accepted events/s, request latency and CPU per event of one `corridor api` process."""
    result = measure(clients, batch, seconds, runs)
    if as_json:
        click.echo(json.dumps({"bench": "api", **result}))
        return
    verdict = "ok" if result["meets_target"] else "UNDER"
    click.echo(
        f"corridor bench api: {result['events_per_s']:,.0f} events/s accepted, p50 {result['p50_ms']} ms, "
        f"p99 {result['p99_ms']} ms, {result['api_cpu_us_per_event']} us of API CPU an event "
        f"({clients} clients x {batch} events, {seconds:g} s, median of {runs}) "
        f"[target >= {TARGETS['events_per_s']:,.0f}/s, p99 <= {TARGETS['p99_ms']:g} ms: {verdict}]"
    )
