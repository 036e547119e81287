"""``corridor demo`` delivers alerts over websockets, then exits cleanly with nothing left running."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stream.core.engine import Engine
from stream.demo.scenario import closures, trucks
from stream.runtime.supervisor import corridor_command

pytestmark = pytest.mark.e2e


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _expected_alerts() -> int:
    """Raised alerts of the scenario, computed by the engine in process, plus the cleared ones."""
    now = datetime.now(UTC)
    engine = Engine()
    for truck in trucks():
        engine.upsert_route(truck.route, now)
    events = closures(now)
    raised = engine.apply_events(events, now)
    cleared = [a for a in raised if a.event_id == events[0].id]
    return len(raised) + len(cleared)


def test_demo_delivers_alerts_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """The demo prints alerts delivered: N with every expected alert, exits 0, no process remains."""
    marker = f"CORRIDOR_TEST_MARK={uuid.uuid4().hex}"
    key, value = marker.split("=")
    env = {
        **os.environ,
        key: value,
        "CORRIDOR_STATE_DIR": str(tmp_path / "state"),
        "COLUMNS": "200",
    }
    env.pop("CORRIDOR_KAFKA_URL", None)
    env.pop("CORRIDOR_REDIS_URL", None)
    result = subprocess.run(
        [corridor_command(), "demo", "--duration", "30"], env=env, capture_output=True, timeout=180
    )
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    found = re.search(r"^alerts delivered: (\d+)$", out, re.MULTILINE)
    assert found, out[-2000:]
    assert int(found[1]) == _expected_alerts() > 0
    assert out.count("RAISED") >= 1 and out.count("CLEARED") >= 1
    assert _processes_with(value) == []
