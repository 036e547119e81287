"""count_rejections: every dead letter, from any feed, API or agent, counted by source and reason."""

from __future__ import annotations

import logging
import re

import orjson
from faust.types import StreamT

from stream.runtime import metrics
from stream.worker.app import Worker

log = logging.getLogger("corridor.agents.dead_letters")
LABEL = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _label(value: str) -> str:
    """A label value as written, or ``other``: whoever writes to the topic cannot grow the series."""
    return value if LABEL.fullmatch(value) else "other"


def install(worker: Worker) -> None:
    """Install ``count_rejections`` on ``worker``."""

    @worker.app.agent(worker.rejected_topic, name="agents.dead_letters.count_rejections")
    async def count_rejections(stream: StreamT[bytes]) -> None:
        """Count dead letters in one place, so every producer of them shows on the dashboards."""
        async for batch in stream.take(1000, within=0.2):
            for raw in batch:
                try:
                    record = orjson.loads(raw)
                    source, reason = str(record["source"]), str(record["reason"])
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    source, reason = "unknown", "unreadable_dead_letter"
                metrics.events_rejected.labels(_label(source), _label(reason)).inc()
            worker.health.beat("count_rejections")
