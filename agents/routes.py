"""keep_routes: routes registered, moved and ended; each change matched against active events."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas import RouteMessage
from stream.runtime import metrics
from stream.runtime.app import app, dead_letter, publish_alerts, routes_topic, runtime
from stream.runtime.retry import until_done

log = logging.getLogger("corridor.agents.routes")


@app.agent(routes_topic)
async def keep_routes(stream: Any) -> None:
    """Decode route messages in batches, persist them per partition, emit the alerts they cause."""
    async for batch in stream.take_events(500, within=0.05):
        metrics.messages_processed.labels(routes_topic.get_topic_name()).inc(len(batch))
        by_partition: dict[int, list[RouteMessage]] = defaultdict(list)
        for event in batch:
            try:
                message = RouteMessage.from_dict(orjson.loads(event.value))
            except (ValueError, KeyError, TypeError) as exc:
                where = f"{event.message.topic}/{event.message.partition}@{event.message.offset}"
                await dead_letter("routes", "route", where, f"not a route message: {exc!r}", event.value)
                continue
            by_partition[event.message.partition].append(message)
        for partition, messages in by_partition.items():
            started = time.perf_counter()
            await until_done("saving routes", runtime.state.save_routes, partition, messages)
            runtime.track(partition, messages)
            alerts = runtime.index.apply_routes(messages, datetime.now(UTC))
            metrics.match_batch_seconds.labels("routes").observe(time.perf_counter() - started)
            metrics.count_matches("routes", alerts)
            await publish_alerts(alerts)
        runtime.refresh_gauges()
