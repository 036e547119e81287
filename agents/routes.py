"""keep_routes: routes registered, moved and ended; each change matched against active events."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import UTC, datetime

import orjson
from faust.types import StreamT

from schemas import RouteMessage
from schemas.errors import InvalidRecord
from stream.runtime import metrics
from stream.runtime.retry import until_done
from stream.worker.app import Worker, take_events

log = logging.getLogger("corridor.agents.routes")

MAX_ROUTE_MESSAGE_BYTES = 8 * 1024 * 1024  # a route of 100,000 positions with its properties


def install(worker: Worker) -> None:
    """Install ``keep_routes`` on ``worker``."""

    @worker.app.agent(worker.routes_topic, name="agents.routes.keep_routes")
    async def keep_routes(stream: StreamT[bytes]) -> None:
        """Decode route messages in batches, persist them per partition, emit the alerts they cause.

        Each message is read alone: one that is not a usable route message is dead-lettered with its
        reason; a route that makes the engine fail is refused alone and kept out of the rebuilds.
        """
        async for batch in take_events(stream, 500, 0.05):
            metrics.messages_processed.labels(worker.routes_topic.get_topic_name()).inc(len(batch))
            by_partition: dict[int, list[RouteMessage]] = defaultdict(list)
            for event in batch:
                where = f"{event.message.topic}/{event.message.partition}@{event.message.offset}"
                try:
                    if len(event.value) > MAX_ROUTE_MESSAGE_BYTES:
                        raise InvalidRecord(
                            f"(record): {len(event.value):,} bytes, over {MAX_ROUTE_MESSAGE_BYTES:,}",
                            "too_large",
                        )
                    message = RouteMessage.from_dict(orjson.loads(event.value))
                except (InvalidRecord, orjson.JSONDecodeError) as exc:
                    error = exc.error if isinstance(exc, InvalidRecord) else f"not JSON: {exc}"
                    reason = exc.reason if isinstance(exc, InvalidRecord) else "undecodable"
                    await worker.dead_letter("routes", "route", where, error, event.value, reason)
                    continue
                except Exception as exc:  # noqa: BLE001 - a reader fault costs one record, not the batch
                    log.exception("reading a route message failed at %s", where)
                    await worker.dead_letter(
                        "routes", "route", where, repr(exc)[:500], event.value, "unreadable"
                    )
                    continue
                by_partition[event.message.partition].append(message)
            for partition, messages in by_partition.items():
                started = time.perf_counter()
                await until_done("saving routes", worker.runtime.state.save_routes, partition, messages)
                worker.runtime.track(partition, messages)
                alerts = worker.runtime.index.apply_routes(messages, datetime.now(UTC))
                metrics.match_batch_seconds.labels("routes").observe(time.perf_counter() - started)
                metrics.count_matches("routes", alerts)
                await worker.runtime.refuse_failed_routes(partition)
                await worker.publish_alerts(alerts)
            worker.runtime.refresh_gauges()
            worker.health.beat("keep_routes")
