"""``corridor worker`` refuses a configuration it cannot run with, naming what to fix."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from stream.local.supervisor import corridor_command


def test_an_unreadable_port_infrastructure_is_named_and_the_worker_exits(tmp_path: Path) -> None:
    bad = tmp_path / "infrastructure.json"
    bad.write_text('{"structures": 5}')
    env = {
        **os.environ,
        "CORRIDOR_PORT_INFRASTRUCTURE": str(bad),
        "CORRIDOR_KAFKA_URL": "kafka://127.0.0.1:1",  # never reached: the worker stops before
        "CORRIDOR_REDIS_URL": "redis://127.0.0.1:1/0",
        "CORRIDOR_STATE_DIR": str(tmp_path / "state"),
    }
    done = subprocess.run(
        [corridor_command(), "worker"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"CORRIDOR_PORT_INFRASTRUCTURE={bad}" in done.stderr and "FeatureCollection" in done.stderr
    assert "Traceback" not in done.stderr
