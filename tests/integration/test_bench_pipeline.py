"""``corridor bench pipeline`` at a tiny size: every event processed, the JSON has its figures."""

from __future__ import annotations

import json
import subprocess

from stream.local.supervisor import corridor_command


def test_pipeline_bench_processes_every_event_and_reports_its_figures() -> None:
    """A few hundred events go through 1 and 2 workers and a gateway; the figures are all there."""
    done = subprocess.run(
        [corridor_command(), "bench", "pipeline", "--events", "300", "--routes", "100", "--runs", "1"]
        + ["--drivers", "20", "--rate", "100", "--seconds", "2", "--json"],
        capture_output=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert result["bench"] == "pipeline"
    assert result["events"] == 300
    run = result["details"][0]
    for key in ("one", "two"):
        assert run[key]["events"] == 300
        assert run[key]["alerts"] == result["alerts_per_run"] > 0
        assert run[key]["events_per_s"] > 0
        assert run[key]["worker_cpu_us_per_event"] > 0 and run[key]["worker_events_per_cpu_s"] > 0
        for figure in ("broker_cpu_us_per_event", "redis_cpu_us_per_alert", "producer_cpu_s"):
            assert run[key][figure] >= 0  # a few hundred events may take less than a clock tick
    assert run["ceiling"]["msg_per_s"] > 0
    assert run["faust"]["msg_per_s"] > 0 and run["faust"]["cpu_us_per_msg"] > 0
    figures = (
        "ceiling_msg_per_s",
        "faust_ceiling_msg_per_s",
        "one_worker_events_per_s",
        "two_worker_scaling",
        "one_worker_of_ceiling",
        "one_worker_of_faust_ceiling",
        "worker_cpu_us_per_event",
        "worker_events_per_cpu_s",
        "redis_cpu_us_per_alert",
        "broker_cpu_us_per_event",
        "two_worker_cpu_ratio",
    )
    for figure in figures:
        assert set(result[figure]) == {"median", "min", "max", "runs"}
    window = result["latency"]["windows"][0]
    assert window["events"] == 200
    assert window["events_without_alert"] == 0
    assert 0 < window["p50_ms"] <= window["p99_ms"]
    assert window["worker_cpu_us_per_event"] > 0 and window["gateway_cpu_s"] >= 0
