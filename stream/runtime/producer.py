"""Publishing to Corridor's topics with a plain Kafka producer (feeds, API, demo, tools).

Every record is encoded and measured before anything is sent: a record that cannot be encoded
(nested deeper than the encoder allows) or whose message the broker would refuse for size raises
``RecordRefused`` naming it, and nothing of that call is sent. Such a record is refused for good:
callers dead-letter it, they do not retry it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from types import TracebackType

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from schemas import Event, RejectedRecord, Rejection, Route, RouteMessage
from schemas.codec import dumps
from stream.runtime.settings import Settings

MAX_REQUEST_BYTES = 1_048_576
# A produce request wraps a record batch in its header, client id, topic name and partition: this
# bounds that envelope (plus the topic name's length) so the whole request stays under the limit.
REQUEST_ENVELOPE_BYTES = 128
Message = tuple[bytes, bytes]


class RecordRefused(ValueError):
    """A record that will never be accepted as is (unencodable, too large): dead-letter it."""

    def __init__(self, record_id: str, reason: str, error: str) -> None:
        super().__init__(f"{record_id}: {error}")
        self.record_id, self.reason, self.error = record_id, reason, error


class RecordTooLarge(RecordRefused):
    """A record whose message is larger than the broker accepts."""

    def __init__(self, record_id: str, size: int, limit: int) -> None:
        error = (
            f"encoded message is {size} bytes, over the {limit} byte limit of a broker message: "
            "send less geometry or details"
        )
        super().__init__(record_id, "too_large", error)
        self.size, self.limit = size, limit


class RecordUnencodable(RecordRefused):
    """A record the encoder refuses (e.g. nested too deep)."""

    def __init__(self, record_id: str, why: str) -> None:
        super().__init__(record_id, "unencodable", f"cannot be encoded as JSON ({why})")


class Publisher:
    """An async producer bound to one deployment's topic names."""

    def __init__(self, settings: Settings, max_request_size: int = MAX_REQUEST_BYTES) -> None:
        self.settings = settings
        self.max_request_size = max_request_size
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers(),
            acks="all",
            linger_ms=5,
            max_request_size=max_request_size,
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

    def message_size(self, topic: str, key: bytes, value: bytes) -> int:
        """Bytes of the produce request carrying this one message (its batch and envelope)."""
        batch: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])
        return batch + REQUEST_ENVELOPE_BYTES + len(topic.encode())

    def encode(self, topic: str, record_id: str, record: object) -> Message:
        """(key, value) of a record for ``topic``; RecordRefused when it cannot be sent as is."""
        try:
            value = dumps(record)
        except orjson.JSONEncodeError as exc:
            raise RecordUnencodable(record_id, str(exc)) from None
        key = record_id.encode("utf-8", "surrogatepass")
        size = self.message_size(topic, key, value)
        if size > self.max_request_size:
            raise RecordTooLarge(record_id, size, self.max_request_size)
        return key, value

    def encode_event(self, event: Event) -> Message:
        """(key, value) of an event on the events topic; RecordRefused when it cannot be sent."""
        return self.encode(self.settings.topic("events"), event.id, event)

    async def send(self, topic: str, messages: Sequence[Message]) -> int:
        """Send encoded messages; returns how many, once the broker acknowledged them all."""
        futures = [await self._producer.send(topic, key=k, value=v) for k, v in messages]
        for future in futures:
            await future
        return len(futures)

    async def events(self, events: Iterable[Event]) -> int:
        """Publish events keyed by id, acknowledged; RecordRefused (nothing sent) for one that cannot be."""
        messages = [self.encode_event(e) for e in events]
        return await self.send(self.settings.topic("events"), messages)

    async def routes(self, messages: Iterable[RouteMessage]) -> int:
        """Publish route messages keyed by route id, acknowledged; RecordRefused as for events."""
        topic = self.settings.topic("routes")
        return await self.send(topic, [self.encode(topic, m.route_id, m) for m in messages])

    async def register_routes(self, routes: Sequence[Route]) -> int:
        """Publish ``registered`` messages for whole routes."""
        now = datetime.now(UTC)
        return await self.routes(RouteMessage("registered", r.route_id, now, route=r) for r in routes)

    async def rejected(self, source: str, fmt: str, rejections: Iterable[Rejection]) -> int:
        """Dead-letter rejected records with their source and reason (raw cut short to fit a message)."""
        topic = self.settings.topic("events.rejected")
        now = datetime.now(UTC)
        messages = []
        for r in rejections:
            record = RejectedRecord(source, fmt, r.error, r.where, r.reason, r.raw, now)
            messages.append(self._dead_letter(topic, source, record))
        return await self.send(topic, messages)

    def _dead_letter(self, topic: str, source: str, record: RejectedRecord) -> Message:
        """A dead letter that fits: its raw text and error are cut until the message does."""
        for _ in range(8):
            try:
                return self.encode(topic, source, record)
            except RecordTooLarge as exc:
                keep = max(0, len(record.raw or "") - (exc.size - exc.limit) - 64) // 2
                record = replace(
                    record,
                    raw=(record.raw or "")[:keep] + "…[truncated to fit a message]",
                    error=record.error[:4096],
                )
            except RecordUnencodable:
                record = replace(record, raw=None)
        return self.encode(topic, source, replace(record, raw=None, error=record.error[:1024]))

    async def reachable(self, timeout: float) -> str | None:
        """None when a broker answers a metadata request within ``timeout`` s, else why not.

        The request names no topic (not all of them), so it stays cheap on a broker with many.
        """
        client = self._producer.client
        node = client.get_random_node()
        try:
            if node is None:  # no broker known yet: ask the bootstrap servers
                await asyncio.wait_for(client.fetch_all_metadata(), timeout)
            else:
                await asyncio.wait_for(client.send(node, MetadataRequest([])), timeout)
        except TimeoutError:
            return f"no metadata answer within {timeout:g} s"
        except Exception as exc:  # any failure to reach it is the answer, not an error of ours
            return type(exc).__name__
        return None
