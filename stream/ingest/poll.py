"""Polling an HTTP feed (CIFS, DATEX II): conditional requests, backoff, snapshot lifecycle.

Each poll that returns a new document is parsed (record by record, from a temporary file once it
is over 8 MiB) and compared with the previous snapshot (kept in Redis so a restarted poller
resumes where it was): new and changed events are published, events gone from the feed are
published as cancelled. An unchanged document (304, or the same bytes)
publishes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO, cast

import aiohttp
import orjson
import redis.asyncio as aioredis

from schemas import Event, Rejection
from schemas.codec import to_plain
from stream.feeds.base import CHUNK_BYTES, MAX_DOCUMENT_BYTES, MAX_RECORD_BYTES, FeedFormatError, Item
from stream.feeds.registry import iter_parse
from stream.feeds.snapshot import Entry, diff
from stream.ingest.sink import FeedSink
from stream.runtime.redis_keys import feed_snapshot_key

log = logging.getLogger("corridor.feeds.poll")

MAX_BACKOFF_S = 600.0


class FeedHttpError(RuntimeError):
    """The feed answered with an error status or could not be reached."""


@dataclass
class PollState:
    """What a poller remembers between two polls."""

    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    snapshot: dict[str, Entry] = field(default_factory=dict)


class SnapshotStore:
    """The last snapshot of a feed, in Redis, so that a restart does not forget cancellations."""

    def __init__(self, client: aioredis.Redis, prefix: str, feed_name: str) -> None:
        self._client = client
        self._key = feed_snapshot_key(prefix, feed_name)

    async def load(self) -> PollState:
        """The stored state, or an empty one."""
        raw = await self._client.get(self._key)
        if raw is None:
            return PollState()
        data = orjson.loads(raw)
        snapshot = {k: Entry(v["hash"], Event.from_dict(v["event"])) for k, v in data["snapshot"].items()}
        return PollState(data.get("etag"), data.get("last_modified"), data.get("body_hash"), snapshot)

    async def save(self, state: PollState) -> None:
        """Keep the state of the last successful poll."""
        snapshot = {k: {"hash": e.hash, "event": to_plain(e.event)} for k, e in state.snapshot.items()}
        data = {
            "etag": state.etag,
            "last_modified": state.last_modified,
            "body_hash": state.body_hash,
            "snapshot": snapshot,
        }
        await self._client.set(self._key, orjson.dumps(data))


async def fetch(session: aiohttp.ClientSession, url: str, state: PollState) -> Body | None:
    """GET the feed conditionally; None when unchanged (304). Bounded in size, spooled to disk.

    The body is hashed as it arrives and kept in memory only up to MAX_RECORD_BYTES: a large
    feed is parsed from a temporary file, record by record.
    """
    headers = {"Accept": "application/xml, application/json;q=0.9, */*;q=0.5"}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    async with session.get(url, headers=headers) as response:
        if response.status == 304:
            return None
        if response.status != 200:
            raise FeedHttpError(f"{url} answered HTTP {response.status}")
        body = Body()
        try:
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                body.write(chunk)
                if body.size > MAX_DOCUMENT_BYTES:
                    raise FeedHttpError(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes")
        except BaseException:
            body.close()
            raise
        state.etag = response.headers.get("ETag")
        state.last_modified = response.headers.get("Last-Modified")
        body.seek(0)
        return body


class Body:
    """A downloaded document: hashed as written, in memory up to MAX_RECORD_BYTES, then on disk."""

    def __init__(self) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=MAX_RECORD_BYTES)  # noqa: SIM115
        self._hash = hashlib.blake2b(digest_size=16)
        self.size = 0

    def write(self, chunk: bytes) -> None:
        """Append a chunk of the body."""
        self.file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def hexdigest(self) -> str:
        """The hash of the whole body, to tell an unchanged document."""
        return self._hash.hexdigest()

    def seek(self, offset: int) -> None:
        """Move the read position (0: start again)."""
        self.file.seek(offset)

    def close(self) -> None:
        """Drop the body (removes its temporary file)."""
        self.file.close()


def _parse(fmt: str, body: Body) -> list[Item]:
    """Every item of the document, read from its file record by record."""
    return list(iter_parse(fmt, cast(BinaryIO, body.file)))


async def poll_once(
    session: aiohttp.ClientSession, url: str, fmt: str, state: PollState, sink: FeedSink
) -> tuple[int, int, int]:
    """One poll: returns (published changes, rejections, unchanged).

    A document that turns unreadable part-way is refused whole, as one that is unreadable from
    its start: diffing only its first records would cancel every event after them.
    """
    body = await fetch(session, url, state)
    if body is None:
        return 0, 0, len(state.snapshot)
    try:
        body_hash = body.hexdigest()
        if body_hash == state.body_hash:
            return 0, 0, len(state.snapshot)
        try:
            items = await asyncio.to_thread(_parse, fmt, body)
        except FeedFormatError as exc:
            body.seek(0)
            raw = body.file.read(4096).decode("utf-8", "replace")
            await sink.publish([Rejection(str(exc), where=url, reason="unreadable_document", raw=raw)])
            state.body_hash = body_hash
            raise
    finally:
        body.close()
    events = [i for i in items if isinstance(i, Event)]
    rejections = [i for i in items if not isinstance(i, Event)]
    result = diff(state.snapshot, events, datetime.now(UTC))
    batch: list[Item] = [c.event for c in result.changes]
    batch.extend(rejections)
    await sink.publish(batch)
    state.snapshot = result.snapshot
    state.body_hash = body_hash
    return len(result.changes), len(rejections), result.unchanged


async def poll_forever(
    url: str, fmt: str, every_s: float, sink: FeedSink, store: SnapshotStore, stop: asyncio.Event
) -> None:
    """Poll until ``stop``; on errors back off exponentially (up to 10 min), then resume the rhythm."""
    state = await store.load()
    failures = 0
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while not stop.is_set():
            try:
                changes, rejected, unchanged = await poll_once(session, url, fmt, state, sink)
                await store.save(state)
                failures = 0
                log.info(
                    "polled %s: %d changes, %d rejected, %d unchanged", url, changes, rejected, unchanged
                )
                delay = every_s
            except (aiohttp.ClientError, FeedHttpError, FeedFormatError, TimeoutError) as exc:
                failures += 1
                delay = min(every_s * 2**failures, MAX_BACKOFF_S) if every_s else 0
                log.warning("poll of %s failed (%s); next try in %.0f s", url, exc, delay)
            if not every_s:
                return
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
