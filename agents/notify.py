"""notify_drivers: alert transitions into each driver's Redis stream (deduplicated)."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import orjson

from stream.runtime import envelopes, metrics
from stream.runtime.app import alerts_topic, app, dead_letter, runtime
from stream.runtime.redis_outbox import InvalidAlert, plain_alert
from stream.runtime.retry import until_done

log = logging.getLogger("corridor.agents.notify")


@app.agent(alerts_topic)
async def notify_drivers(stream: Any) -> None:
    """Append alerts to driver streams in batches; replays are absorbed by the outbox.

    The alerts stay the plain dicts decoded from their envelopes; one that cannot be stored (or an
    envelope that is not a JSON array of objects) is dead-lettered, and the rest of the batch goes on.
    """
    async for batch in stream.take_events(64, within=0.02):  # envelopes of up to ~1,000 alerts
        metrics.messages_processed.labels(alerts_topic.get_topic_name()).inc(len(batch))
        alerts: list[dict[str, Any]] = []
        for message in batch:
            where = f"{message.message.topic}/{message.message.partition}@{message.message.offset}"
            try:
                records = envelopes.unpack(message.value)
            except orjson.JSONDecodeError as exc:
                await dead_letter("stream", "alert", where, f"not an alert envelope: {exc}", message.value)
                continue
            for record in records:
                try:
                    alerts.append(plain_alert(record))
                except InvalidAlert as exc:
                    await dead_letter("stream", "alert", where, str(exc), orjson.dumps(record))
        stored = await until_done("storing alerts", runtime.outbox.append, alerts)
        states = Counter(alert["state"] for alert, stream_id in stored if stream_id is not None)
        for state, count in states.items():
            metrics.alerts_stored.labels(state).inc(count)
        metrics.alerts_deduplicated.inc(len(stored) - states.total())
