"""A worker's /healthz: 503 until its index is rebuilt and whenever an agent is not running."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from stream.local.services import free_port
from stream.local.supervisor import wait_until
from stream.runtime import metrics
from stream.runtime.health import WorkerHealth


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_health_report_tells_rebuild_and_stopped_agents() -> None:
    """Not rebuilt: unhealthy; rebuilt with every agent running: healthy; one agent stopped: unhealthy."""
    running = {"match_events": True, "keep_routes": True}
    health = WorkerHealth(agents=lambda: running.items())
    ok, body = health.report()
    assert not ok and "index not rebuilt" in json.loads(body)["problems"][0]
    health.ready = True
    health.beat("match_events")
    ok, body = health.report()
    assert ok and json.loads(body)["agents"]["match_events"]["last_batch_at"] is not None
    running["keep_routes"] = False
    health.crashed("keep_routes", RuntimeError("boom"))
    ok, body = health.report()
    report = json.loads(body)
    assert not ok and report["problems"] == ["agent keep_routes is not running"]
    assert report["agents"]["keep_routes"] == {
        "running": False,
        "last_batch_at": None,
        "crashes": 1,
        "last_error": "RuntimeError: boom",
    }


def test_metrics_port_serves_healthz_beside_metrics() -> None:
    """/healthz answers 200 or 503 from the report (503 when the check fails); /metrics is unchanged."""
    state = {"ok": False}

    def report() -> tuple[bool, bytes]:
        if state.get("raise"):
            raise RuntimeError("broken check")
        return state["ok"], b'{"status":"x"}'

    port = free_port()
    metrics.serve(port, report)
    wait_until(lambda: _get(port, "/metrics")[0] == 200, 10, "the metrics server")
    assert b"corridor_events_rejected_total" in _get(port, "/metrics")[1]
    assert _get(port, "/healthz")[0] == 503
    state["ok"] = True
    assert _get(port, "/healthz") == (200, b'{"status":"x"}')
    state["raise"] = True
    status, body = _get(port, "/healthz")
    assert status == 503 and b"RuntimeError" in body
