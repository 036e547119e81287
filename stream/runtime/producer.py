"""Publishing to Corridor's topics with a plain Kafka producer (feeds, API, demo, tools)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from types import TracebackType

from aiokafka import AIOKafkaProducer

from schemas import Event, RejectedRecord, Rejection, Route, RouteMessage
from schemas.codec import dumps
from stream.runtime.settings import Settings


class Publisher:
    """An async producer bound to one deployment's topic names."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers(),
            acks="all",
            linger_ms=5,
            max_request_size=1_048_576,
        )

    async def __aenter__(self) -> Publisher:
        await self._producer.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._producer.stop()

    async def events(self, events: Iterable[Event]) -> int:
        """Publish events keyed by id; returns how many, once the broker acknowledged them all."""
        topic = self.settings.topic("events")
        futures = [await self._producer.send(topic, key=e.id.encode(), value=dumps(e)) for e in events]
        for future in futures:
            await future
        return len(futures)

    async def routes(self, messages: Iterable[RouteMessage]) -> int:
        """Publish route messages keyed by route id, acknowledged."""
        topic = self.settings.topic("routes")
        futures = [
            await self._producer.send(topic, key=m.route_id.encode(), value=dumps(m)) for m in messages
        ]
        for future in futures:
            await future
        return len(futures)

    async def register_routes(self, routes: Sequence[Route]) -> int:
        """Publish ``registered`` messages for whole routes."""
        now = datetime.now(UTC)
        return await self.routes(RouteMessage("registered", r.route_id, now, route=r) for r in routes)

    async def rejected(self, source: str, fmt: str, rejections: Iterable[Rejection]) -> int:
        """Dead-letter rejected records with their source and reason."""
        topic = self.settings.topic("events.rejected")
        now = datetime.now(UTC)
        futures = []
        for r in rejections:
            record = RejectedRecord(source, fmt, r.error, r.where, r.reason, r.raw, now)
            futures.append(await self._producer.send(topic, key=source.encode(), value=dumps(record)))
        for future in futures:
            await future
        return len(futures)
