"""A test deployment: its own topics and Redis keys, with processes started as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

from stream.local.supervisor import Supervisor, corridor_command, wait_until
from stream.runtime.settings import Settings

__all__ = ["Deployment", "deployment_env", "wait_until"]


def deployment_env(services: dict[str, str], state: Path) -> dict[str, str]:
    """The environment of a deployment of its own (topics, consumer group, Redis keys, signing key)
    on running services: their URLs go to ``state/services.json``, as ``corridor services up`` writes."""
    state.mkdir(parents=True, exist_ok=True)
    (state / "services.json").write_text(json.dumps(services))
    name = f"t{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "CORRIDOR_STATE_DIR": str(state),
        "CORRIDOR_TOPIC_PREFIX": name,
        "CORRIDOR_APP_ID": name,
        "CORRIDOR_PARTITIONS": "4",
        "CORRIDOR_SIGNING_KEY": "test:" + uuid.uuid4().hex,
    }
    env.pop("CORRIDOR_KAFKA_URL", None)
    env.pop("CORRIDOR_REDIS_URL", None)
    return env


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
