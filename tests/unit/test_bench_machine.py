"""The benchmark names the machine it ran on, clock included: figures are comparable only there."""

from __future__ import annotations

from stream.bench import gateway
from stream.bench.all import GATEWAY_ROWS, gateway_result, line, machine


def test_machine_names_the_cpu_its_clock_and_the_measured_versions() -> None:
    """The model and the clock come from /proc/cpuinfo, and the one-line summary shows both."""
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
        clocks = [float(x.split(":", 1)[1]) for x in info if x.startswith("cpu MHz")]
    described = machine()
    assert described["cpu"] != "unknown" and described["cores"] >= 1
    assert described["mhz"] == round(clocks[0])
    summary = line({**described, "mhz": 2246})
    assert summary.startswith(f"{described['cpu']} at 2,246 MHz, {described['cores']} cores")
    assert "at " not in line({**described, "mhz": None}).split(",")[0]


def test_every_gateway_figure_of_the_table_is_kept_from_a_run() -> None:
    """The table reads each gateway figure from what a run keeps (a missing key once failed
    `make bench` at its last step), and each has a target."""
    measured = {key: 1.0 for key in (*gateway.TARGETS, "drivers", "alerts_per_s", "max_ms", "lost")}
    measured |= {"duplicates": 0, "idle_rss_mb": 1.0, "cpu_pct": 1.0, "p50_ms": 1.0, "alerts_per_wakeup": 1.0}
    kept = gateway_result(measured)
    for _, key, _, _ in GATEWAY_ROWS:
        assert key in kept and key in gateway.TARGETS
