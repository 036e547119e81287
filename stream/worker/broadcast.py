"""Every stamped event to every worker, once: a Redis stream each worker reads in full.

Routes are partitioned across the workers (the consumer group of ``corridor.routes``); events are
not: each worker matches every event against its own routes. ``fan_out_events`` stores each batch
of events in Redis and, in the same round trip, appends it in envelopes to the broadcast stream
(``<prefix>:state:broadcast:stream``, ``RedisState.save_events``), which every worker reads from its
own position.

Entries are numbered 1, 2, 3… (entry ``n`` has the id ``n-0``; a reader's position is the number of
the last entry it applied, 0 before any), so a reader knows when entries it did not read were
trimmed: the stream keeps the last ``CORRIDOR_BROADCAST_MAXLEN`` entries (about that many), and a
worker that falls further behind loads the stored events again instead (``BroadcastGap``). An
entry another client added is read like any other (its caller dead-letters what is not an
envelope), and numbering goes on after it.

A worker that starts reads the number of the last entry appended (``RedisState.broadcast_last``),
then loads the stored events, then reads the entries after that number. Every entry was stored
before it was appended, so nothing falls between the two, and what it reads twice is skipped by
the events' receipt sequence. A position past the last entry (a Redis that lost its data) is read
as the start of a new stream.

A read answers as soon as an entry is appended (``XREAD BLOCK``). Through the embedded broker the
same hop, a one-partition topic, waited 1.5 fetch waits on average (the broker answers a fetch with
what it found when the fetch began, after its whole wait) and cost the broker more as its log grew.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger("corridor.worker")

MAX_RECORDS = 64  # entries per batch (each an envelope of up to a thousand events)
BLOCK_MS = 1000  # how long one read waits for an entry (the client's socket timeout is longer)
FIELD = b"e"  # the field of an entry that holds its envelope


class BroadcastGap(Exception):  # noqa: N818 - a signal to reload, not a failure
    """Entries after the reader's position were trimmed before it read them."""

    def __init__(self, position: int, first: int) -> None:
        super().__init__(
            f"broadcast entries {position + 1}..{first - 1} were trimmed before this worker read them"
        )
        self.position, self.first = position, first


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of the broadcast: its number and its value (an envelope of stamped events)."""

    number: int
    value: bytes


class BroadcastReader:
    """One worker's reader of the broadcast stream, from a position it is given."""

    def __init__(
        self,
        client: aioredis.Redis,
        stream: str,
        last: Callable[[], Awaitable[int]],
        block_ms: int = BLOCK_MS,
    ) -> None:
        self._client = client
        self._stream = stream
        self.last = last  # the number of the last entry appended (RedisState.broadcast_last)
        self._block_ms = block_ms
        self.position = 0
        self._cursor = "0-0"  # the id of the last entry read (read after it)

    async def start(self, position: int) -> None:
        """Read the entries after ``position`` on."""
        self.position = max(0, position)
        self._cursor = f"{self.position}-0"

    async def stop(self) -> None:
        """Nothing to release: the reader borrows the worker's Redis client."""

    async def lag(self) -> int:
        """Entries appended that this reader has not read yet."""
        return max(0, await self.last() - self.position)

    async def _trimmed(self) -> bool:
        """Whether entries after this reader's cursor were trimmed: the oldest entry the stream
        keeps is past it. (Numbers that jump without a trim are entries another client added.)"""
        oldest: Any = await self._client.xrange(self._stream, count=1)
        return bool(oldest) and _id(oldest[0][0]) > _id(self._cursor)

    async def batches(self) -> AsyncIterator[list[Entry]]:
        """Batches of entries as they come; ``position`` is the last one yielded. Raises
        ``BroadcastGap`` when entries after the position were trimmed unread."""
        while True:
            reply: Any = await self._client.xread(
                {self._stream: self._cursor}, count=MAX_RECORDS, block=self._block_ms
            )
            items = [item for _, found in reply or () for item in found]
            entries = [_entry(ident, fields) for ident, fields in items]
            if entries:
                if entries[0].number > self.position + 1 and self.position and await self._trimmed():
                    raise BroadcastGap(self.position, entries[0].number)
                self.position = entries[-1].number
                last = items[-1][0]
                self._cursor = last.decode() if isinstance(last, bytes) else last
                yield entries
                continue
            last = await self.last()
            if self.position > last:
                log.warning(
                    "broadcast position %d is past the last entry (%d): Redis lost its data; "
                    "reading the stream from its start",
                    self.position,
                    last,
                )
                self.position, self._cursor = 0, "0-0"


def _id(ident: bytes | str) -> tuple[int, int]:
    text = ident.decode() if isinstance(ident, bytes) else ident
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _entry(ident: bytes | str, fields: dict[bytes, bytes]) -> Entry:
    """An entry as read; an id that is not ``<n>-0`` (not written by Corridor) reads as its
    first number, and a missing field as an empty value (dead-lettered by the reader's caller)."""
    return Entry(_id(ident)[0], fields.get(FIELD, b""))
