"""keep_routes: routes registered, moved and ended; each change matched against active events."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas import RouteMessage
from stream.core.apply import apply_route_messages
from stream.runtime import metrics
from stream.runtime.app import app, publish_alerts, routes_topic, runtime

log = logging.getLogger("corridor.agents.routes")


@app.agent(routes_topic)
async def keep_routes(stream: Any) -> None:
    """Decode route messages in batches, persist them, and emit the alerts they cause."""
    async for batch in stream.take(500, within=0.05):
        messages: list[RouteMessage] = []
        for raw in batch:
            try:
                messages.append(RouteMessage.from_dict(orjson.loads(raw)))
            except (ValueError, KeyError, TypeError) as exc:
                metrics.events_rejected.labels("routes", "invalid_route").inc()
                log.warning("route message refused: %s", exc)
        started = time.perf_counter()
        await runtime.state.save_routes(messages)
        alerts = apply_route_messages(runtime.engine, messages, datetime.now(UTC))
        metrics.match_batch_seconds.labels("routes").observe(time.perf_counter() - started)
        runtime.refresh_gauges()
        await publish_alerts(alerts)
