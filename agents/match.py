"""match_events: new, updated and cancelled events matched against the active routes."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas import Event
from stream.core.apply import latest_events
from stream.runtime import metrics
from stream.runtime.app import app, events_topic, publish_alerts, runtime

log = logging.getLogger("corridor.agents.match")

EXPIRE_EVERY_S = 15.0


@app.agent(events_topic)
async def match_events(stream: Any) -> None:
    """Decode events in batches, persist them, match the batch at once, emit alerts."""
    async for batch in stream.take(1000, within=0.05):
        events: list[Event] = []
        for raw in batch:
            try:
                events.append(Event.from_dict(orjson.loads(raw)))
            except (ValueError, KeyError, TypeError) as exc:
                metrics.events_rejected.labels("stream", "invalid_event").inc()
                log.warning("event refused: %s", exc)
        events = latest_events(events)
        started = time.perf_counter()
        await runtime.state.save_events(events)
        alerts = runtime.engine.apply_events(events, datetime.now(UTC))
        metrics.match_batch_seconds.labels("events").observe(time.perf_counter() - started)
        runtime.refresh_gauges()
        await publish_alerts(alerts)


@app.timer(EXPIRE_EVERY_S)
async def expire_events() -> None:
    """Clear the alerts of events whose validity has ended."""
    before = {e.id for e in runtime.engine.events()}
    alerts = runtime.engine.expire(datetime.now(UTC))
    gone = before - {e.id for e in runtime.engine.events()}
    await runtime.state.forget_events(sorted(gone))
    runtime.refresh_gauges()
    await publish_alerts(alerts)
