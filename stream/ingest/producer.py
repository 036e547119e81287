"""Publishing to Corridor's topics with a plain Kafka producer (feeds, API, demo, tools).

Every record is encoded and measured before anything is sent: a record that cannot be encoded
(nested deeper than the encoder allows) or whose message the broker would refuse for size raises
``RecordRefused`` naming it, and nothing of that call is sent. Such a record is refused for good:
callers dead-letter it, they do not retry it.

Events travel in envelopes (``stream.runtime.envelopes``): the events of every call made within a
short linger are grouped by the partition of their id (the same stable hash in every process, so
every version of an event lands on one partition, in order) and sent as one envelope per partition
per flush, bounded in bytes and in count. Each call returns once the broker acknowledged all of
its events.
"""

from __future__ import annotations

import asyncio
import logging
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
from stream.runtime import envelopes
from stream.runtime.settings import Settings

log = logging.getLogger("corridor.producer")

MAX_REQUEST_BYTES = 1_048_576
# A produce request wraps a record batch in its header, client id, topic name and partition: this
# bounds that envelope (plus the topic name's length) so the whole request stays under the limit.
REQUEST_ENVELOPE_BYTES = 128
Message = tuple[bytes, bytes]
# How long a flush of events waits for other calls' events to share its envelopes: short, so that
# a long-running producer's latency does not grow, long enough to gather concurrent requests.
EVENTS_LINGER_S = 0.005
ENVELOPE_KEY = b"envelope"


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

    def __init__(
        self,
        settings: Settings,
        max_request_size: int = MAX_REQUEST_BYTES,
        linger_s: float = EVENTS_LINGER_S,
    ) -> None:
        self.settings = settings
        self.max_request_size = max_request_size
        self.linger_s = linger_s
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers(),
            acks="all",
            # no linger of its own: a flush hands all its envelopes over at once (one request),
            # after the publisher's own linger has grouped the calls
            linger_ms=0,
            max_request_size=max_request_size,
        )
        self._events_topic = settings.topic("events")
        self._queued: list[tuple[list[Message], asyncio.Future[None]]] = []
        self._queued_count = 0
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._enqueue = asyncio.Lock()  # envelopes of successive flushes reach the producer in order

    async def __aenter__(self) -> Publisher:
        await self._producer.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._flush_now()
        if self._flushes:
            await asyncio.wait(self._flushes)
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
        # An event travels in an envelope: measured as the smallest one, itself between brackets.
        size = (
            self.message_size(topic, ENVELOPE_KEY, b"[" + value + b"]")
            if topic == self._events_topic
            else self.message_size(topic, key, value)
        )
        if size > self.max_request_size:
            raise RecordTooLarge(record_id, size, self.max_request_size)
        return key, value

    def encode_event(self, event: Event) -> Message:
        """(key, value) of an event on the events topic; RecordRefused when it cannot be sent."""
        return self.encode(self._events_topic, event.id, event)

    async def send(self, topic: str, messages: Sequence[Message]) -> int:
        """Send encoded messages; returns how many, once the broker acknowledged them all.

        Events (keyed by their id) go in envelopes, like ``events``."""
        if topic == self._events_topic:
            return await self._send_events(messages)
        futures = [await self._producer.send(topic, key=k, value=v) for k, v in messages]
        for future in futures:
            await future
        return len(futures)

    async def events(self, events: Iterable[Event]) -> int:
        """Publish events in envelopes, acknowledged; RecordRefused (nothing sent) for one that cannot be."""
        messages = [self.encode_event(e) for e in events]
        return await self._send_events(messages)

    async def _send_events(self, messages: Sequence[Message]) -> int:
        """Queue encoded events for the next flush and wait until the broker acknowledged them."""
        if not messages:
            return 0
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((list(messages), done))
        self._queued_count += len(messages)
        if self._queued_count >= envelopes.MAX_EVENTS:  # a full envelope's worth: no reason to wait
            self._flush_now()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger_s, self._flush_now)
        await done
        return len(messages)

    def _flush_now(self) -> None:
        """Start sending everything queued (the linger's timer, a full queue, or closing)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._queued:
            return
        queued, self._queued, self._queued_count = self._queued, [], 0
        task = asyncio.ensure_future(self._flush(queued))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self, queued: list[tuple[list[Message], asyncio.Future[None]]]) -> None:
        """Send queued events as one envelope per partition (or more, at the bounds); tell each
        caller once the broker acknowledged them, or why not."""
        try:
            async with self._enqueue:
                partitions = sorted(await self._producer.partitions_for(self._events_topic))
                futures = [
                    await self._producer.send(
                        self._events_topic, key=ENVELOPE_KEY, value=envelope, partition=partitions[index]
                    )
                    for index, envelope in self.envelopes(
                        [m for messages, _ in queued for m in messages], len(partitions)
                    )
                ]
            await asyncio.gather(*futures)
        except asyncio.CancelledError:
            for _, done in queued:
                done.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - every caller hears of it and decides (retry, 503)
            for _, done in queued:
                if not done.done():
                    done.set_exception(exc)
            return
        for _, done in queued:
            if not done.done():
                done.set_result(None)

    def envelopes(self, messages: Sequence[Message], partitions: int) -> list[tuple[int, bytes]]:
        """(partition index, envelope) for encoded events: grouped by the partition of their id,
        in order, each envelope within the broker's message and the worker's event bounds."""
        overhead = self.message_size(self._events_topic, ENVELOPE_KEY, b"") + 16  # varints may grow
        max_bytes = min(self.max_request_size - overhead, self.settings.event_max_bytes)
        records = ((key.decode("utf-8", "surrogatepass"), value) for key, value in messages)
        return envelopes.pack_by_partition(records, partitions, max_bytes, envelopes.MAX_EVENTS)

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
