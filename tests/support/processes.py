"""A test deployment: its own topics and Redis keys, with processes started as a user would."""

from __future__ import annotations

import subprocess
from pathlib import Path

from stream.runtime.settings import Settings
from stream.runtime.supervisor import Supervisor, corridor_command, wait_until

__all__ = ["Deployment", "wait_until"]


class Deployment(Supervisor):
    """Environment of one isolated deployment and the processes started in it."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        super().__init__(env, workdir)
        self.workdir = workdir

    @property
    def settings(self) -> Settings:
        """The settings these processes read."""
        return Settings.from_env(self.env)

    def run(self, *args: str, input_bytes: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run a ``corridor`` command to completion."""
        return subprocess.run(
            [corridor_command(), *args],
            env=self.env,
            input=input_bytes,
            capture_output=True,
            timeout=120,
        )
