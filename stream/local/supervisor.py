"""Start and stop Corridor's own processes (worker, gateway) as a user would, and wait for them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from stream.local.services import free_port

WORKER_READY_LINE = "index rebuilt from redis"


def corridor_command() -> str:
    """The ``corridor`` executable next to this interpreter (or on PATH)."""
    return shutil.which("corridor", path=str(Path(sys.executable).parent)) or "corridor"


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``predicate`` until true; raise TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Proc:
    """One started process and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    metrics_port: int | None = None  # where its /metrics answers, when it serves them

    def output(self) -> str:
        """Everything it printed so far."""
        return self.log.read_text(errors="replace")

    def check_alive(self) -> None:
        """Raise with the end of its log when it has exited."""
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.output()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal its process group and wait; SIGKILL if it lingers. Returns the exit code."""
        if self.popen.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        return self.popen.returncode


@dataclass
class Supervisor:
    """Processes of one deployment: started with its environment, stopped together at the end."""

    env: dict[str, str]
    log_dir: Path
    procs: list[Proc] = field(default_factory=list)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    def stop_all(self) -> None:
        """Stop every process, last started first."""
        for proc in reversed(self.procs):
            proc.stop()

    def start(self, name: str, *args: str, extra_env: dict[str, str] | None = None) -> Proc:
        """Start a long-running ``corridor`` command in its own process group."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(  # noqa: S603 - our own executable
                [corridor_command(), *args],
                env={**self.env, **(extra_env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def start_worker(self, name: str = "worker", timeout: float = 60.0, metrics_port: int = 0) -> Proc:
        """Start ``corridor worker`` and wait until it has its partitions and its index."""
        port = str(metrics_port or free_port())
        proc = self.start(name, "worker", extra_env={"CORRIDOR_METRICS_PORT": port})
        proc.metrics_port = int(port)

        def ready() -> bool:
            proc.check_alive()
            return WORKER_READY_LINE in proc.output()

        wait_until(ready, timeout, f"{name} to join its group")
        return proc

    def start_gateway(
        self, name: str = "gateway", timeout: float = 30.0, port: int = 0, metrics_port: int = 0
    ) -> tuple[Proc, int]:
        """Start ``corridor gateway`` (free port by default) and wait for its health check."""
        port = port or free_port()
        metrics_port = metrics_port or free_port()
        proc = self.start(
            name, "gateway", "--port", str(port), extra_env={"CORRIDOR_METRICS_PORT": str(metrics_port)}
        )
        proc.metrics_port = metrics_port

        def healthy() -> bool:
            proc.check_alive()
            url = f"http://127.0.0.1:{port}/healthz"
            try:
                with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback
                    return bool(response.status == 200)
            except OSError:
                return False

        wait_until(healthy, timeout, f"{name}'s health check")
        return proc, port
