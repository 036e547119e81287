"""`corridor services up` after a service died: back on its recorded port, or a clear refusal."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stream.local.services import kafka_ready, url_port
from stream.local.supervisor import corridor_command, wait_until


class Services:
    """``corridor services`` run as a user would, on a state directory of the test's own."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.env = {**os.environ, "CORRIDOR_STATE_DIR": str(state)}
        self.env.pop("CORRIDOR_KAFKA_URL", None)
        self.env.pop("CORRIDOR_REDIS_URL", None)

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        """Run ``corridor services ARGS`` to completion."""
        return subprocess.run(  # noqa: S603 - our own executable
            [corridor_command(), "services", *args], env=self.env, capture_output=True, timeout=60
        )

    def up(self) -> dict[str, str]:
        """``services up``; the URLs it printed."""
        done = self.run("up")
        assert done.returncode == 0, done.stderr
        urls: dict[str, str] = json.loads(done.stdout)
        return urls

    def kill(self, name: str) -> int:
        """SIGKILL a service (no clean shutdown) and wait until it is gone; returns its port."""
        status = json.loads(self.run("status").stdout)[name]
        os.kill(status["pid"], signal.SIGKILL)
        wait_until(lambda: not json.loads(self.run("status").stdout)[name]["running"], 10, f"{name} to die")
        port = url_port(status["url"])
        assert port is not None
        return port


@pytest.fixture
def services_dir(tmp_path: Path) -> Iterator[Services]:
    """A broker and Redis of the test's own, stopped at the end."""
    own = Services(tmp_path / "state")
    try:
        yield own
    finally:
        own.run("down")


def test_dead_redis_comes_back_on_its_port_with_its_data(services_dir: Services) -> None:
    """Redis killed, then `services up`: same URL, and what was written before is still there (AOF)."""
    before = services_dir.up()
    client = redis.Redis.from_url(before["redis_url"])
    client.set("kept", b"across a crash")
    aof = services_dir.state / "redis"
    wait_until(
        lambda: any(b"across a crash" in p.read_bytes() for p in aof.rglob("*.aof*") if p.is_file()),
        10,
        "the write to reach the append-only file",
    )
    services_dir.kill("redis")
    after = services_dir.up()
    assert after == before
    assert redis.Redis.from_url(after["redis_url"]).get("kept") == b"across a crash"


def test_dead_broker_comes_back_on_its_port(services_dir: Services) -> None:
    """The broker killed, then `services up`: same URL, answering Kafka requests (its topics are gone)."""
    before = services_dir.up()
    port = services_dir.kill("broker")
    after = services_dir.up()
    assert after == before
    assert kafka_ready("127.0.0.1", port)


def test_a_taken_port_is_refused_with_what_to_do(services_dir: Services) -> None:
    """When another process took a dead service's port, `up` fails and says how to get out, never moves."""
    before = services_dir.up()
    port = services_dir.kill("redis")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        refused = services_dir.run("up")
        assert refused.returncode != 0
        message = refused.stderr.decode()
        assert f"port {port}" in message and "taken" in message and "services down" in message
        assert json.loads((services_dir.state / "services.json").read_text()) == before
    assert services_dir.up() == before
