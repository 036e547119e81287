"""notify_drivers: alerts other producers send to ``corridor.alerts.in``, into each driver's Redis
stream (deduplicated). A worker stores its own alerts itself (``publish_alerts``) and publishes them
on ``corridor.alerts``, which no worker reads back."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import orjson
from faust.types import StreamT
from redis.exceptions import ResponseError

from stream.runtime import envelopes, metrics
from stream.runtime.retry import until_done
from stream.worker.app import Worker, take_events
from stream.worker.outbox import InvalidAlert, Storable, storable_alert

log = logging.getLogger("corridor.agents.notify")


def install(worker: Worker) -> None:
    """Install ``notify_drivers`` on ``worker``."""

    @worker.app.agent(worker.alerts_in_topic, name="agents.notify.notify_drivers")
    async def notify_drivers(stream: StreamT[bytes]) -> None:
        """Append alerts to driver streams in batches; replays are absorbed by the outbox.

        Each alert is decoded from its envelope, checked and written once in the stored layout
        (``storable_alert``); one that cannot be stored (or an envelope that is not a JSON array of
        objects) is dead-lettered, and the rest of the batch goes on.
        """
        async for batch in take_events(stream, 64, 0.02):  # envelopes of up to ~1,000 alerts
            metrics.messages_processed.labels(worker.alerts_in_topic.get_topic_name()).inc(len(batch))
            alerts: list[tuple[Storable, str]] = []
            for message in batch:
                where = f"{message.message.topic}/{message.message.partition}@{message.message.offset}"
                try:
                    records = envelopes.unpack(message.value)
                except orjson.JSONDecodeError as exc:
                    await worker.dead_letter(
                        "stream", "alert", where, f"not an alert envelope: {exc}", message.value
                    )
                    continue
                for record in records:
                    try:
                        alerts.append((storable_alert(record), where))
                    except InvalidAlert as exc:
                        await worker.dead_letter("stream", "alert", where, str(exc), _raw(record))
            stored = await _store(worker, alerts)
            states = Counter(alert.plain["state"] for alert, stream_id in stored if stream_id is not None)
            for state, count in states.items():
                metrics.alerts_stored.labels(state).inc(count)
            metrics.alerts_deduplicated.inc(len(stored) - states.total())
            worker.health.beat("notify_drivers")


async def _store(worker: Worker, alerts: list[tuple[Storable, str]]) -> list[tuple[Storable, str | None]]:
    """Append a batch; when Redis refuses it (an error about its content, not a lost connection),
    the halves are tried in turn so that only the alert at fault is dead-lettered (order kept)."""
    if not alerts:
        return []
    try:
        return await until_done(
            "storing alerts", worker.runtime.outbox.append, [alert for alert, _ in alerts]
        )
    except ResponseError as exc:
        if len(alerts) == 1:
            alert, where = alerts[0]
            await worker.dead_letter(
                "stream", "alert", where, f"redis refused it: {exc}", alert.payload, "refused_by_redis"
            )
            return []
        log.warning("redis refused a batch of %d alerts (%s): storing it in halves", len(alerts), exc)
        half = len(alerts) // 2
        return [*await _store(worker, alerts[:half]), *await _store(worker, alerts[half:])]


def _raw(record: Any) -> bytes:
    try:
        return orjson.dumps(record)
    except (orjson.JSONEncodeError, TypeError):
        return repr(record)[:4096].encode()
