"""Corridor processes started as a user starts them, and stopped at the end of a test."""

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

from stream.runtime.services import free_port
from stream.runtime.settings import Settings

CORRIDOR = shutil.which("corridor", path=str(Path(sys.executable).parent)) or "corridor"


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``predicate`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Proc:
    """One started process and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """Everything it printed so far."""
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal it and wait; SIGKILL if it lingers. Returns the exit code."""
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
class Deployment:
    """Environment of one isolated deployment and the processes started in it."""

    env: dict[str, str]
    workdir: Path
    procs: list[Proc] = field(default_factory=list)

    def __enter__(self) -> Deployment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    @property
    def settings(self) -> Settings:
        """The settings these processes read."""
        saved = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update(self.env)
            return Settings.from_env()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def run(
        self, *args: str, input_bytes: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a ``corridor`` command to completion."""
        return subprocess.run(
            [CORRIDOR, *args], env=self.env, input=input_bytes, capture_output=True, timeout=120
        )

    def start(self, name: str, *args: str, extra_env: dict[str, str] | None = None) -> Proc:
        """Start a long-running ``corridor`` command in its own process group."""
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                [CORRIDOR, *args],
                env={**self.env, **(extra_env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def start_worker(self, name: str = "worker", timeout: float = 60.0) -> Proc:
        """Start ``corridor worker`` and wait until its index is loaded and it consumes."""
        proc = self.start(name, "worker", extra_env={"CORRIDOR_METRICS_PORT": str(free_port())})

        def ready() -> bool:
            if proc.popen.poll() is not None:
                raise AssertionError(f"worker exited:\n{proc.output()[-3000:]}")
            return "index rebuilt from redis" in proc.output()

        wait_until(ready, timeout, "the worker to join its group")
        return proc

    def start_gateway(self, name: str = "gateway", timeout: float = 30.0) -> tuple[Proc, int]:
        """Start ``corridor gateway`` on a free port and wait for its health check."""
        port = free_port()
        proc = self.start(name, "gateway", "--port", str(port))

        def healthy() -> bool:
            if proc.popen.poll() is not None:
                raise AssertionError(f"gateway exited:\n{proc.output()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:  # noqa: S310
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_until(healthy, timeout, "the gateway health check")
        return proc, port
