"""The drivers connected to one gateway, and the pump from their Redis streams to their sockets.

Wake-ups (one pub/sub message per alert appended) only mark a driver dirty. A single reader task
takes every driver marked since its last round trip and reads all their streams at once (``XREAD``
over many keys, pipelined in chunks): at 5,000 alerts/s that is a few hundred reads per second
instead of one per alert. Entries go into each connection's bounded queue; the connection's own
handler task writes them to its socket. A connection whose queue would overflow is cut off with
4408 and the last id written in the reason, so that memory stays bounded whatever the clients do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from stream.runtime import metrics
from stream.runtime.redis_outbox import driver_stream_key, wake_channel

log = logging.getLogger("corridor.gateway")

PAGE = 64  # entries per stream per read; a resume of a long stream is read page by page
READ_EVERY_S = 0.002  # at most one read round trip per window: under load, wake-ups coalesce
STREAMS_PER_XREAD = 500
CLOSE_TOO_SLOW = 4408
REDIS_ERRORS = (aioredis.ConnectionError, aioredis.TimeoutError, OSError)
_CREATED = b'"created_at":"'

# (stream id, frame, appended at [epoch s], created at [epoch s, 0 when unknown])
Entry = tuple[str, bytes, float, float]


def id_key(stream_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair (``"0"`` is the start)."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(eq=False, slots=True)
class DriverConnection:
    """One open socket of a driver: what has been queued for it and what was written."""

    ws: ServerConnection
    driver_id: str
    cursor: str  # last stream id taken from Redis for this socket
    sent: str  # last stream id written to the socket
    backlog: deque[Entry] = field(default_factory=deque)
    waiter: asyncio.Future[None] | None = None
    more: bool = False  # the last read filled a page: read again once the queue drains
    done: bool = False
    end_reason: str | None = None

    def wake(self) -> None:
        """Let the connection's handler look at its queue."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Hub:
    """Registry of connected drivers; reads their streams when woken and fills their queues."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        queue_max: int = 256,
        read_every_s: float = READ_EVERY_S,
    ) -> None:
        self._redis = client
        self.read_every_s = read_every_s
        self._prefix = prefix
        self.queue_max = max(queue_max, 2 * PAGE)
        self._low_water = PAGE // 2
        self._drivers: dict[str, list[DriverConnection]] = {}
        self._dirty: set[str] = set()
        self._dirty_waiter: asyncio.Future[None] | None = None
        self._closers: set[asyncio.Task[None]] = set()
        self._stop_listening = False
        self.opened = 0
        self.closed = 0
        self.sent = 0

    @property
    def connection_count(self) -> int:
        """Open driver connections."""
        return sum(len(c) for c in self._drivers.values())

    def connections(self) -> Iterator[DriverConnection]:
        """Every registered connection."""
        for conns in list(self._drivers.values()):
            yield from list(conns)

    def count(self, driver_id: str) -> int:
        """Open connections of one driver on this gateway."""
        return len(self._drivers.get(driver_id, ()))

    def add(self, conn: DriverConnection) -> None:
        """Register a connection and read its stream from its cursor."""
        self._drivers.setdefault(conn.driver_id, []).append(conn)
        self.opened += 1
        metrics.connected_drivers.inc()
        conn.ws.connection_lost_waiter.add_done_callback(lambda _: self._lost(conn))
        self.mark(conn.driver_id)

    def remove(self, conn: DriverConnection) -> None:
        """Forget a connection (its handler is ending)."""
        conns = self._drivers.get(conn.driver_id)
        if conns is None or conn not in conns:
            return
        conns.remove(conn)
        if not conns:
            del self._drivers[conn.driver_id]
        self.closed += 1
        metrics.connected_drivers.dec()
        conn.backlog.clear()

    def _lost(self, conn: DriverConnection) -> None:
        conn.done = True
        conn.wake()

    def mark(self, driver_id: str) -> None:
        """Note that a driver's stream may have grown; the reader picks it up on its next turn."""
        self._dirty.add(driver_id)
        waiter = self._dirty_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def mark_all(self) -> None:
        """Re-read every connected driver (after wake-ups may have been lost)."""
        for driver_id in list(self._drivers):
            self.mark(driver_id)

    async def listen_wakeups(self) -> None:
        """Follow the wake-up channel until ``stop_listening``; after an outage, re-read everyone."""
        channel = wake_channel(self._prefix)
        backoff = 0.1
        drivers = self._drivers
        while not self._stop_listening:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(channel)
                    self.mark_all()
                    backoff = 0.1
                    while not self._stop_listening:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                        if message is None:
                            continue
                        metrics.gateway_wakeups.inc()
                        data = message["data"]
                        driver_id = data.decode() if isinstance(data, bytes) else str(data)
                        if driver_id in drivers:
                            self.mark(driver_id)
            except REDIS_ERRORS as exc:
                log.warning("redis wake-up channel lost (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def stop_listening(self) -> None:
        """Let the wake-up listener leave its loop (and close its connection) by itself."""
        self._stop_listening = True

    async def read_forever(self) -> None:
        """Read the streams of every dirty driver, one pipelined round trip per turn."""
        loop = asyncio.get_running_loop()
        backoff = 0.1
        last_read = 0.0
        while True:
            if not self._dirty:
                self._dirty_waiter = loop.create_future()
                await self._dirty_waiter
                self._dirty_waiter = None
            wait = last_read + self.read_every_s - loop.time()
            if wait > 0:  # busy: let more wake-ups join this read (idle: read at once)
                await asyncio.sleep(wait)
            last_read = loop.time()
            batch, self._dirty = self._dirty, set()
            try:
                await self._read(batch)
                backoff = 0.1
            except REDIS_ERRORS as exc:
                log.warning("redis read failed (%s); retrying in %.1fs", exc, backoff)
                self._dirty |= batch
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _read(self, batch: set[str]) -> None:
        keys: list[str] = []
        ids: list[str] = []
        by_key: dict[bytes, str] = {}
        for driver_id in batch:
            conns = self._drivers.get(driver_id)
            if not conns:
                continue
            cursor = min((c.cursor for c in conns if not c.done), key=id_key, default=None)
            if cursor is None:
                continue
            key = driver_stream_key(self._prefix, driver_id)
            keys.append(key)
            ids.append(cursor)
            by_key[key.encode()] = driver_id
        if not keys:
            return
        replies: list[Any]
        if len(keys) <= STREAMS_PER_XREAD:
            command = ("XREAD", "COUNT", PAGE, "STREAMS", *keys, *ids)
            replies = [await self._redis.execute_command(*command)]  # type: ignore[no-untyped-call]
        else:
            async with self._redis.pipeline(transaction=False) as pipe:
                for start in range(0, len(keys), STREAMS_PER_XREAD):
                    chunk = slice(start, start + STREAMS_PER_XREAD)
                    pipe.execute_command("XREAD", "COUNT", PAGE, "STREAMS", *keys[chunk], *ids[chunk])
                replies = await pipe.execute()
        metrics.gateway_stream_reads.inc()
        metrics.gateway_streams_per_read.observe(len(keys))
        for reply in replies:
            for key, entries in reply or ():
                owner = by_key.get(key if isinstance(key, bytes) else str(key).encode())
                if owner is not None and entries:
                    self._dispatch(owner, entries)

    def _dispatch(self, driver_id: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        conns = self._drivers.get(driver_id)
        if not conns:
            return
        batch: list[Entry] = []
        for raw_id, fields in entries:
            stream_id = raw_id.decode()
            body = fields[b"a"]
            frame = b'{"type":"alert","id":"' + raw_id + b'","alert":' + body + b"}"
            batch.append((stream_id, frame, int(fields.get(b"t", b"0")) / 1000, _created_at(body)))
        full = len(entries) >= PAGE
        for conn in conns:
            if conn.done:
                continue
            mine = batch
            if len(conns) > 1:
                floor = id_key(conn.cursor)
                mine = [e for e in batch if id_key(e[0]) > floor]
            if not mine:
                continue
            if len(conn.backlog) + len(mine) > self.queue_max:
                self.cut_off(conn)
                continue
            conn.backlog.extend(mine)
            conn.cursor = mine[-1][0]
            conn.more = full
            conn.wake()

    def cut_off(self, conn: DriverConnection) -> None:
        """Close a connection that cannot keep up; it resumes from the last id it received."""
        metrics.queue_overflows.inc()
        conn.done = True
        conn.end_reason = "too_slow"
        conn.backlog.clear()
        log.info("cut off slow driver=%s last_id=%s", conn.driver_id, conn.sent)
        reason = f"too slow: reconnect with last_id={conn.sent}"
        task = asyncio.get_running_loop().create_task(conn.ws.close(CLOSE_TOO_SLOW, reason))
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)
        conn.wake()

    async def pump(self, conn: DriverConnection) -> None:
        """Write a connection's queue to its socket until it closes (runs in its handler task)."""
        loop = asyncio.get_running_loop()
        backlog = conn.backlog
        ws = conn.ws
        while True:
            while backlog and not conn.done:
                stream_id, frame, appended, created = backlog.popleft()
                # The frame is in the socket's buffer once send() starts (it only waits to drain),
                # and a close frame would follow it: this is the id a resume starts after.
                conn.sent = stream_id
                try:
                    await ws.send(frame, text=True)
                except ConnectionClosed:
                    return
                self.sent += 1
                now = time.time()
                metrics.alerts_sent.inc()
                if appended:
                    metrics.delivery_seconds.observe(max(0.0, now - appended))
                if created:
                    metrics.created_to_sent_seconds.observe(max(0.0, now - created))
                metrics.observe_end_to_end(frame, now)
                if conn.more and len(backlog) <= self._low_water:
                    conn.more = False
                    self.mark(conn.driver_id)
            if conn.done:
                return
            conn.waiter = loop.create_future()
            try:
                await conn.waiter
            finally:
                conn.waiter = None


def _created_at(body: bytes) -> float:
    """The alert's ``created_at`` as epoch seconds, without parsing the whole alert (0: absent)."""
    start = body.find(_CREATED)
    if start < 0:
        return 0.0
    start += len(_CREATED)
    end = body.find(b'"', start)
    try:
        return datetime.fromisoformat(body[start:end].decode()).timestamp()
    except ValueError:
        return 0.0
