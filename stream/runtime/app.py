"""The Faust application, its topics, and the per-worker runtime (engine, Redis)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import faust
import redis.asyncio as aioredis

from schemas import Alert
from schemas.codec import dumps
from stream.core.apply import apply_route_messages
from stream.core.engine import Engine, EngineConfig
from stream.runtime import metrics
from stream.runtime.redis_outbox import RedisOutbox
from stream.runtime.redis_state import RedisState
from stream.runtime.settings import Settings

log = logging.getLogger("corridor.worker")

settings = Settings.from_env()

# The embedded broker rebalances in seconds with these; Faust's defaults suit a real cluster.
_FAST_GROUP: dict[str, Any] = (
    {"broker_rebalance_timeout": 2, "broker_session_timeout": 6, "broker_heartbeat_interval": 1}
    if settings.kafka_url is None
    else {}
)

app = faust.App(
    settings.app_id,
    broker=settings.resolved_kafka_url(),
    key_serializer="raw",
    value_serializer="raw",
    topic_partitions=settings.partitions,
    processing_guarantee="at_least_once",
    consumer_auto_offset_reset="earliest",
    web_enabled=False,
    store="memory://",
    **_FAST_GROUP,
)


def _topic(name: str) -> faust.TopicT:
    return app.topic(
        settings.topic(name), key_type=bytes, value_type=bytes, partitions=settings.partitions
    )


routes_topic = _topic("routes")
events_topic = _topic("events")
alerts_topic = _topic("alerts")
rejected_topic = _topic("events.rejected")


class Runtime:
    """What the agents of one worker share: the engine and the Redis adapters."""

    def __init__(self, config: Settings) -> None:
        self.settings = config
        self.engine = Engine(EngineConfig(corridor_m=config.corridor_m, crs=config.metric_crs))
        self.redis = aioredis.Redis.from_url(config.resolved_redis_url())
        self.state = RedisState(self.redis, config.redis_prefix)
        self.outbox = RedisOutbox(self.redis, config.redis_prefix, config.stream_maxlen)

    def refresh_gauges(self) -> None:
        """Publish the index sizes."""
        metrics.active_routes.set(self.engine.route_count)
        metrics.active_events.set(self.engine.event_count)

    async def reload(self) -> None:
        """Rebuild the index from Redis (on start and after every rebalance)."""
        routes, positions, events = await self.state.load()
        self.engine = Engine(self.engine.config)
        now = datetime.now(UTC)
        alerts = apply_route_messages(self.engine, [*routes, *positions], now)
        alerts += self.engine.apply_events(events, now)
        log.info(
            "index rebuilt from redis: routes=%d events=%d alerts=%d",
            self.engine.route_count,
            self.engine.event_count,
            len(alerts),
        )
        self.refresh_gauges()
        await publish_alerts(alerts)


runtime = Runtime(settings)


async def publish_alerts(alerts: list[Alert]) -> None:
    """Send alert transitions to the alerts topic, keyed by driver."""
    for alert in alerts:
        metrics.alerts_emitted.labels(alert.kind, alert.state).inc()
        await alerts_topic.send(key=alert.driver_id.encode(), value=dumps(alert))


@app.on_partitions_assigned.connect
async def _rebuild_index(sender: Any, assigned: Any, **kwargs: Any) -> None:
    await runtime.reload()
