"""Where parsed feed items go: events to ``corridor.events``, rejections to the dead-letter topic."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from schemas import Event, Rejection
from stream.feeds.base import Item
from stream.ingest.producer import Publisher, RecordRefused
from stream.runtime import metrics

log = logging.getLogger("corridor.feeds")


@dataclass
class FeedCounts:
    """Running totals of one feed process."""

    events: int = 0
    rejected: int = 0


class FeedSink:
    """Publishes a feed's items; nothing received is dropped without a trace."""

    def __init__(self, publisher: Publisher, source: str, fmt: str) -> None:
        self.publisher = publisher
        self.source = source
        self.format = fmt
        self.counts = FeedCounts()

    async def publish(self, items: Sequence[Item]) -> FeedCounts:
        """Publish events and dead-letter rejections (each acknowledged by the broker)."""
        events = [i for i in items if isinstance(i, Event)]
        rejections = [i for i in items if isinstance(i, Rejection)]
        if events:
            events = await self._send(events, rejections)
        if rejections:
            await self.publisher.rejected(self.source, self.format, rejections)
            for r in rejections[:5]:
                log.warning("%s record refused at %s: %s (%s)", self.format, r.where, r.error, r.reason)
        self.counts.events += len(events)
        self.counts.rejected += len(rejections)
        metrics.feed_records.labels(self.source, "event").inc(len(events))
        metrics.feed_records.labels(self.source, "rejected").inc(len(rejections))
        return FeedCounts(len(events), len(rejections))

    async def _send(self, events: list[Event], rejections: list[Rejection]) -> list[Event]:
        """Send the events; one the producer refuses (too large for a message, say) becomes a
        rejection and the others are sent, together (they share envelopes). Returns those sent."""
        try:
            await self.publisher.events(events)
            return events
        except RecordRefused:
            sendable: list[Event] = []
            for event in events:  # the producer refuses before sending: find each refused one
                try:
                    self.publisher.encode_event(event)
                    sendable.append(event)
                except RecordRefused as exc:
                    rejections.append(Rejection(exc.error, event.id, exc.reason, None))
            await self.publisher.events(sendable)
            return sendable
