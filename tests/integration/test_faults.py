"""CI-sized fault scenarios on real processes: the exact set of expected alerts, each once."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.bench.soak import SCENARIOS, run_scenario


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_expected_alert_arrives_exactly_once(scenario: str, tmp_path: Path) -> None:
    """Under a burst, a killed worker, a Redis restart or a poison flood, nothing is lost or repeated."""
    result = run_scenario(scenario, routes=200, events=2_000, workdir=tmp_path, timeout_s=120)
    assert result.alerts_expected > 50
    assert (result.lost, result.duplicated, result.unexpected) == (0, 0, 0)
    assert result.delivered == result.alerts_expected
    assert set(result.peak_rss_mb) >= {"broker", "redis", "worker-1"}
    if scenario == "poison-flood":
        assert result.poison == result.events
