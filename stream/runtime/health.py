"""A worker's health, as its ``/healthz`` tells it: its index rebuilt, every agent running.

The metrics port serves it (``GET /healthz`` beside ``GET /metrics``), so that a container's
health check and a supervisor see a worker whose agent stopped, instead of a process that merely
exists. The report also says when each agent last finished a batch, and how often one crashed
(a crashed agent is restarted by Faust; its count shows here and on the dashboards).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

AgentStates = Callable[[], Iterable[tuple[str, bool]]]
"""(agent name, running) for every agent of the process."""


@dataclass
class WorkerHealth:
    """What the agents report as they go; ``report`` judges it with the agents' running state."""

    ready: bool = False  # the index was rebuilt from Redis at least once
    last_batch: dict[str, float] = field(default_factory=dict)
    crashes: Counter[str] = field(default_factory=Counter)
    last_error: dict[str, str] = field(default_factory=dict)
    agents: AgentStates | None = None

    def beat(self, agent: str) -> None:
        """An agent finished a batch."""
        self.last_batch[agent] = time.time()

    def crashed(self, agent: str, error: BaseException) -> None:
        """An agent raised (Faust restarts it); kept for the report."""
        self.crashes[agent] += 1
        self.last_error[agent] = f"{type(error).__name__}: {error}"[:300]

    def report(self) -> tuple[bool, bytes]:
        """(healthy, JSON body): healthy once rebuilt and while every agent runs."""
        states = dict(self.agents()) if self.agents is not None else {}
        problems = [] if self.ready else ["index not rebuilt from Redis yet"]
        problems += [
            f"agent {name} is not running" for name, running in sorted(states.items()) if not running
        ]
        body: dict[str, Any] = {
            "status": "ok" if not problems else "unhealthy",
            "problems": problems,
            "agents": {
                name: {
                    "running": running,
                    "last_batch_at": self.last_batch.get(name),
                    "crashes": self.crashes.get(name, 0),
                    "last_error": self.last_error.get(name),
                }
                for name, running in sorted(states.items())
            },
        }
        return not problems, orjson.dumps(body)
