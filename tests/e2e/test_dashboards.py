"""Every query of every dashboard panel returns data from a real Prometheus scraping a live deployment."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from schemas import Event, Route, Vehicle
from stream.gateway.tokens import Keyring
from stream.ingest.producer import Publisher
from stream.local.services import free_port
from stream.local.supervisor import wait_until
from tests.support.drivers import DriverClient, metric, until
from tests.support.geometry import line, lonlat
from tests.support.processes import Deployment

pytestmark = pytest.mark.e2e

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards" / "grafana"
ENV = "test"
RATE_INTERVAL = "1m"


def _prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.fail(
            "no prometheus binary: `make test` installs it (make tools: apt-get install prometheus)",
            pytrace=False,
        )
    return found


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
        return json.loads(response.read())


class Prometheus:
    """A real Prometheus server on a free loopback port, scraping the given jobs every second."""

    def __init__(self, workdir: Path, jobs: dict[str, list[int]]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": job,
                    "scrape_timeout": "900ms",
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{p}" for p in ports], "labels": {"env": ENV}}
                    ],
                }
                for job, ports in jobs.items()
            ],
        }
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self.log = workdir / "prometheus.log"
        with open(self.log, "wb") as out:
            self.popen = subprocess.Popen(  # noqa: S603 - the Debian package's binary
                [
                    _prometheus_binary(),
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_until(self._ready, 30, "Prometheus to be ready", interval=0.1)

    def _ready(self) -> bool:
        if self.popen.poll() is not None:
            raise RuntimeError(f"prometheus exited:\n{self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:  # noqa: S310
                return bool(response.status == 200)
        except OSError:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector of ``expr`` now (raises on a query error)."""
        answer = _get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def label_values(self, label: str, selector: str) -> list[str]:
        """What Grafana's ``label_values(selector, label)`` lists."""
        query = urllib.parse.urlencode({"match[]": selector})
        values: list[str] = _get(f"{self.url}/api/v1/label/{label}/values?{query}")["data"]
        return values

    def stop(self) -> None:
        """Terminate the server and wait for it."""
        self.popen.terminate()
        try:
            self.popen.wait(15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)


def _panel_queries(instances: str) -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr with template variables substituted) of every target."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                expr = (
                    target["expr"]
                    .replace("$__rate_interval", RATE_INTERVAL)
                    .replace("$__interval", "15s")
                    .replace("$env", ENV)
                    .replace("$instance", instances)
                )
                assert "$" not in expr, f"unsubstituted variable in {panel['title']}: {expr}"
                found.append((board["title"], panel["title"], expr))
    return found


def _finite(series: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(s["value"][1])) for s in series)


def _event(event_id: str, kind: str, geometry: dict[str, object], **extra: Any) -> Event:
    return Event.from_dict(
        {
            "id": event_id,
            "source": "dash",
            "kind": kind,
            "geometry": geometry,
            "valid_from": None,
            "valid_until": None,
            "status": "active",
            "title": event_id,
            **extra,
        }
    )


async def _workload(
    dep: Deployment, port: int, worker_metrics: int, scraped_connected: Callable[[], bool]
) -> None:
    """Routes, drivers, events raised, updated and cleared, a rejection, a resume and a refusal;
    the drivers stay connected until ``scraped_connected`` says a scrape saw them."""
    settings = dep.settings
    keyring = Keyring.parse(dep.env["CORRIDOR_SIGNING_KEY"])
    coords = tuple((a, b) for a, b in lonlat([(0, 0), (800, 0), (1600, 200)]))
    routes = [Route(f"route-{d}", f"driver-{d}", coords, Vehicle(weight_t=19)) for d in ("a", "b")]
    tokens = {r.driver_id: keyring.issue(r.driver_id, time.time(), 600) for r in routes}
    closure = _event("dash:closure", "closure", line([(790, -50), (810, 50)]))
    hazard = _event("dash:hazard", "hazard", line([(390, -50), (410, 50)]))
    async with Publisher(settings) as publisher:
        await publisher.register_routes(routes)
        async with (
            DriverClient(port, "driver-a", tokens["driver-a"]) as driver_a,
            DriverClient(port, "driver-b", tokens["driver-b"]) as driver_b,
        ):
            await until(
                lambda: metric(worker_metrics, "corridor_active_routes") >= 2, 30, "the routes in the index"
            )
            await publisher.events([closure, hazard])
            for driver in (driver_a, driver_b):
                await driver.wait_for(lambda a: a["event_id"] == "dash:hazard", timeout=15)
            await publisher.events([replace(closure, title="closed until further notice")])
            await driver_a.wait_for(lambda a: a["state"] == "updated", timeout=15)
            await publisher.events([replace(hazard, status="cancelled")])
            await driver_a.wait_for(lambda a: a["state"] == "cleared", timeout=15)
            producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers())
            await producer.start()
            try:
                await producer.send_and_wait(settings.topic("events"), b"{not an event", key=b"bad")
            finally:
                await producer.stop()
            first = driver_a.alerts[0]["id"]
            async with DriverClient(port, "driver-a", tokens["driver-a"], last_id=first) as resumed:
                await resumed.wait_for(lambda a: a["state"] == "cleared", timeout=15)
            async with DriverClient(port, "driver-b", tokens["driver-a"]) as refused:
                await refused.wait_closed(10)
            assert refused.closed is not None and refused.closed.rcvd.code == 4403
            await until(scraped_connected, 30, "a scrape of the gateway with both drivers connected")


@pytest.fixture
def started(deployment: Deployment) -> Iterator[tuple[int, int, int]]:
    """A worker and a gateway with known metrics ports: (worker metrics, gateway metrics, gateway)."""
    worker_metrics, gateway_metrics = free_port(), free_port()
    deployment.start_worker(metrics_port=worker_metrics)
    _, port = deployment.start_gateway(metrics_port=gateway_metrics)
    yield worker_metrics, gateway_metrics, port
    deployment.stop_all()


async def test_every_dashboard_panel_shows_data(
    deployment: Deployment, started: tuple[int, int, int], tmp_path: Path
) -> None:
    """Prometheus scrapes a live worker and gateway; every panel query of both boards returns data."""
    worker_metrics, gateway_metrics, port = started
    prometheus = Prometheus(
        tmp_path / f"prometheus-{uuid.uuid4().hex[:6]}",
        {"corridor-worker": [worker_metrics], "corridor-gateway": [gateway_metrics]},
    )
    try:
        instances = f"127.0.0.1:{worker_metrics}|127.0.0.1:{gateway_metrics}"
        # Rates need a sample from before the workload: wait for two scrapes of both processes.
        scraped = f'count_over_time(up{{instance=~"{instances}"}}[1m]) >= 2'
        wait_until(lambda: len(prometheus.query(scraped)) == 2, 30, "two scrapes of the worker and gateway")
        connected = (
            f'max_over_time(corridor_connected_drivers{{instance="127.0.0.1:{gateway_metrics}"}}[1m]) >= 2'
        )
        await _workload(deployment, port, worker_metrics, lambda: bool(prometheus.query(connected)))
        queries = _panel_queries(instances)
        assert len(queries) >= 20

        def no_data() -> list[str]:
            return [
                f"{board} / {title}: {expr}"
                for board, title, expr in queries
                if not _finite(prometheus.query(expr))
            ]

        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not no_data(), 20, "every panel to show data", interval=0.5)
        missing = no_data()
        assert not missing, "panels with no data:\n" + "\n".join(missing)
        assert prometheus.label_values("env", 'up{job=~"corridor-.*"}') == [ENV]
        assert set(prometheus.label_values("instance", f'up{{job=~"corridor-.*", env=~"{ENV}"}}')) == set(
            instances.split("|")
        )

        def lag() -> dict[str, float]:
            return {
                f"{s['metric']['topic']}/{s['metric']['partition']}": float(s["value"][1])
                for s in prometheus.query(f'corridor_consumer_lag{{env="{ENV}"}}')
            }

        topics = {name.split("/")[0] for name in lag()}
        prefix = deployment.settings.topic_prefix
        assert {
            f"{prefix}.routes",
            f"{prefix}.events",
            "broadcast",
            f"{prefix}.alerts.in",
        } <= topics
        assert f"{prefix}.alerts" not in topics  # an output: no worker reads it back
        wait_until(lambda: sum(lag().values()) == 0, 20, "the consumer lag to drain to 0 once idle")
        affected = prometheus.query(f'corridor_event_routes_affected{{env="{ENV}"}}')
        assert {s["metric"]["event_id"]: float(s["value"][1]) for s in affected} == {"dash:closure": 2.0}
        assert float(prometheus.query(f'sum(corridor_drivers_affected{{env="{ENV}"}})')[0]["value"][1]) == 2
    finally:
        prometheus.stop()
