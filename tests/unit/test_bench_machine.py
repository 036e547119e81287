"""The benchmark names the machine it ran on, clock included: figures are comparable only there."""

from __future__ import annotations

from stream.bench.all import line, machine


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
