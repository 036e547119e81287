"""``corridor demo`` delivers the alerts its scenario implies, stops on Ctrl-C, and leaves nothing running."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from stream.core.engine import Engine
from stream.demo.scenario import build
from stream.local.supervisor import corridor_command

pytestmark = pytest.mark.e2e

SCENARIO = re.compile(r"^scenario: seed=(\d+) trucks=(\d+) day=(\S+) reslot=(-?\d+)$", re.MULTILINE)
ALERT = re.compile(r"^\d\d:\d\d:\d\d (\S+) (RAISED|CLEARED|UPDATED)\s+(\w+): .* (\S+)$", re.MULTILINE)
DELIVERED = re.compile(r"^alerts delivered: (\d+)$", re.MULTILINE)


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


def _environment(tmp_path: Path) -> tuple[dict[str, str], str]:
    value = uuid.uuid4().hex
    env = {**os.environ, "CORRIDOR_TEST_MARK": value, "CORRIDOR_STATE_DIR": str(tmp_path / "state")}
    env["COLUMNS"] = "240"
    env.pop("CORRIDOR_KAFKA_URL", None)
    env.pop("CORRIDOR_REDIS_URL", None)
    return env, value


def _expected_raised(printed: str, started: datetime) -> set[tuple[str, str]]:
    """(driver, event) pairs the scenario raises from the start, by the engine in process.

    The scenario is rebuilt from the line the demo printed; trucks at their first positions, the
    city's events; pairs found at the demo's launch, 30 s and 60 s later. A pair whose event opens
    or closes while the demo starts up (a perimeter opening on the hour, say) is raised at some of
    those moments only: it is left out, whichever side of the boundary the demo's own clock fell.
    """
    seed, trucks, day, reslot = SCENARIO.search(printed).groups()  # type: ignore[union-attr]
    pairs: list[set[tuple[str, str]]] = []
    for later in (0, 30, 60):
        now = started + timedelta(seconds=later)
        scenario = build(now, int(seed), int(trucks), date.fromisoformat(day), int(reslot))
        engine = Engine()
        for truck in scenario.trucks:
            engine.upsert_route(truck.route, now)
            engine.route_position(truck.route.route_id, truck.position(truck.started_s), now)
        alerts = engine.apply_events(scenario.events, now)
        pairs.append({(a.driver_id, a.event_id) for a in alerts if a.state == "raised"})
    return set.intersection(*pairs)


def test_demo_delivers_the_scenarios_alerts_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """Every alert the scenario implies at the start reaches its driver; bridge lifts and port calls too."""
    env, mark = _environment(tmp_path)
    started = datetime.now(UTC)
    result = subprocess.run(
        [corridor_command(), "demo", "--duration", "35"], env=env, capture_output=True, timeout=240
    )
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    delivered = DELIVERED.search(out)
    assert delivered, out[-3000:]
    lines = ALERT.findall(out)
    raised = {(driver, event) for driver, state, _, event in lines if state == "RAISED"}
    expected = _expected_raised(out, started)
    assert expected, "the scenario should raise alerts from its first seconds"
    missing = expected - raised
    assert not missing, f"{len(missing)} of {len(expected)} expected alerts never reached their driver"
    assert int(delivered[1]) >= len(lines)
    kinds = {(kind, state) for _, state, kind, _ in lines}
    wanted = {("bridge_lift", "RAISED"), ("port_call", "RAISED"), ("closure", "CLEARED")}
    assert wanted <= kinds, f"missing {wanted - kinds}:\n{out[-3000:]}"
    assert "dispatcher map: http://127.0.0.1:" in out
    token = re.search(r"#token=([\w-]+\.[\w-]+\.[\w-]+)", out)
    assert token is not None, out[-3000:]
    assert jwt.decode(token[1], options={"verify_signature": False})["role"] == "dispatcher"
    assert _processes_with(mark) == []


def test_ctrl_c_stops_the_demo_cleanly(tmp_path: Path) -> None:
    """SIGINT after the first alert: the demo prints its summary, exits 0, and stops every process."""
    env, mark = _environment(tmp_path)
    demo = subprocess.Popen(
        [corridor_command(), "demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert demo.stdout is not None
    out = b""
    deadline = time.monotonic() + 120
    try:
        while b" RAISED " not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([demo.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(demo.stdout.fileno(), 65536)
                assert chunk, f"the demo ended before its first alert:\n{out.decode()[-2000:]}"
                out += chunk
        assert b" RAISED " in out, out.decode()[-2000:]
        demo.send_signal(signal.SIGINT)
        rest, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    text = (out + rest).decode()
    assert demo.returncode == 0, err.decode()[-3000:]
    assert DELIVERED.search(text), text[-2000:]
    assert _processes_with(mark) == []
