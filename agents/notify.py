"""notify_drivers: alert transitions into each driver's Redis stream (deduplicated)."""

from __future__ import annotations

import logging
from typing import Any

from schemas import Alert
from stream.runtime import envelopes, metrics
from stream.runtime.app import alerts_topic, app, runtime
from stream.runtime.retry import until_done

log = logging.getLogger("corridor.agents.notify")


@app.agent(alerts_topic)
async def notify_drivers(stream: Any) -> None:
    """Append alerts to driver streams in batches; replays are absorbed by the outbox."""
    async for batch in stream.take(64, within=0.02):  # envelopes of up to ~1,000 alerts
        metrics.messages_processed.labels(alerts_topic.get_topic_name()).inc(len(batch))
        alerts = [Alert.from_dict(data) for raw in batch for data in envelopes.unpack(raw)]
        stored = await until_done("storing alerts", runtime.outbox.append, alerts)
        for alert, stream_id in stored:
            if stream_id is None:
                metrics.alerts_deduplicated.inc()
            else:
                metrics.alerts_stored.labels(alert.state).inc()
