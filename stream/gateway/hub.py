"""The drivers connected to one gateway, and the pump from their Redis streams to their sockets.

Each append call announces on the wake-up channel the entries it appended, as stored (driver, stream
id, payload). A driver whose connections are in step with its stream (nothing being read, nothing
left to read) gets them written straight from that message: one hop from the append to the socket.
Pub/sub delivers a connection's messages in the order Redis ran the appends, so an entry that comes
after a driver's cursor while the driver is in step is the next one of its stream. Any other driver
(just connected, resuming, being read, with a page left, or named without its entry) is only marked
dirty: a single reader task takes every driver marked since its last round trip and reads all their
streams at once (``XREAD`` over many keys, pipelined in chunks). Entries a read brings that the
channel also brings are recognised by their stream id and written once. When the channel is
(re)subscribed, every driver is read again, which recovers whatever was published meanwhile. Who can
publish on the channel can write to drivers, as who can append to their streams: access to Redis is
full trust (its credentials belong to Corridor's processes only).

Entries go to an idle socket in one write, or into the connection's bounded queue, which the
connection's own handler task writes as the socket drains. A connection whose queue would overflow
is cut off with 4408 and the last id written in the reason, so that memory stays bounded whatever
the clients do.

One driver never stops the others: cursors are checked as Redis reads them before they are used
(``is_stream_id``); if Redis still refuses a read of many streams, the streams are read one by one
and only the drivers whose stream Redis refuses are closed (1008); an entry that cannot be framed
is skipped. The reader and the wake-up listener restart themselves after any unexpected error, and
``problems()`` tells the health check while either is not running.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from schemas.alert import created_at_text, received_at_text
from stream.runtime import metrics
from stream.runtime.redis_keys import driver_stream_key, wake_channel
from stream.runtime.wake import wake_lines

log = logging.getLogger("corridor.gateway")

PAGE = 64  # entries per stream per read; a resume of a long stream is read page by page
READ_EVERY_S = 0.002  # at most one read round trip per window: under load, wake-ups coalesce
STREAMS_PER_XREAD = 500
CLOSE_TOO_SLOW = 4408
CLOSE_POLICY = 1008
RESTART_MIN_S = 0.1  # first wait before a crashed loop restarts; doubles up to RESTART_MAX_S
RESTART_MAX_S = 5.0
U64_MAX = 2**64 - 1
_STREAM_ID = re.compile(r"0|([0-9]{1,20})-([0-9]{1,20})", re.ASCII)
REDIS_ERRORS = (aioredis.ConnectionError, aioredis.TimeoutError, OSError)
# (stream id, frame, appended at, created at, event received at): epoch seconds, 0 when unknown
Entry = tuple[str, bytes, float, float, float]


def is_stream_id(text: str) -> bool:
    """True for ``0`` or ``<ms>-<seq>`` as Redis reads them: ASCII digits only, each part < 2**64.

    A looser check (``\\d``, ``$``) lets through ids that Redis refuses, and one refused id fails
    a read shared by many drivers.
    """
    found = _STREAM_ID.fullmatch(text)
    if found is None:
        return False
    return found[0] == "0" or (int(found[1]) <= U64_MAX and int(found[2]) <= U64_MAX)


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
        self._reading: set[str] = set()  # drivers whose streams the reader is reading now
        self._dirty_waiter: asyncio.Future[None] | None = None
        self._closers: set[asyncio.Task[None]] = set()
        self._stop_listening = False
        # Per loop ("reader", "wakeups"): None while it runs, else why it does not.
        self._down: dict[str, str | None] = {"reader": "not started", "wakeups": "not started"}
        self._restart_s = {"reader": RESTART_MIN_S, "wakeups": RESTART_MIN_S}
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
        """Follow the wake-up channel until ``stop_listening``, restarting after any crash."""
        await self._supervise("wakeups", self._listen)

    async def _listen(self) -> None:
        channel = wake_channel(self._prefix)
        backoff = 0.1
        while not self._stop_listening:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(channel)
                    self._up("wakeups")
                    self.mark_all()
                    backoff = 0.1
                    # The subscription's own connection is read directly: pub/sub's get_message
                    # costs ~12 µs a message in its layers, the connection's read ~2 µs (a wake-up
                    # comes with nearly every append call). Health checks run while it is idle.
                    connection = pubsub.connection
                    if connection is None:  # subscribe() connects; never None past it
                        raise aioredis.ConnectionError("pub/sub has no connection after subscribing")
                    while not self._stop_listening:
                        response = await connection.read_response(
                            timeout=0.5, disconnect_on_error=False, push_request=True
                        )
                        if response is None:
                            await pubsub.check_health()
                            continue
                        if not _is_message(response):
                            continue  # (un)subscribe confirmations, health-check replies
                        metrics.gateway_wakeups.inc()
                        data = response[2]
                        self.take_wakeup(data if isinstance(data, bytes) else str(data).encode())
            except REDIS_ERRORS as exc:
                self._down["wakeups"] = f"wake-up channel lost ({exc}); reconnecting"
                log.warning("redis wake-up channel lost (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def take_wakeup(self, message: bytes) -> None:
        """Write a wake-up message's entries to the drivers in step with their streams; mark the
        other drivers it names for the reader."""
        drivers = self._drivers
        live: dict[str, list[Entry]] = {}
        for driver_id, raw_id, body in wake_lines(message):
            if driver_id not in drivers:
                continue
            if raw_id is None or body is None:
                self.mark(driver_id)
                continue
            entry = _live_entry(raw_id, body)
            if entry is None:
                metrics.gateway_bad_records.labels("wakeup").inc()
                self.mark(driver_id)
            else:
                live.setdefault(driver_id, []).append(entry)
        dirty, reading = self._dirty, self._reading
        for driver_id, entries in live.items():
            conns = drivers[driver_id]
            if driver_id in dirty or driver_id in reading or any(c.more for c in conns):
                self.mark(driver_id)  # not in step: the reader reads these entries in order
                continue
            metrics.gateway_live_alerts.inc(len(entries))
            try:
                self._deliver(driver_id, conns, entries, full=False, fresh=True)
            except Exception:  # noqa: BLE001 - one driver's data must not stop everyone's delivery
                log.exception("cannot queue the alerts of driver=%s; closing its connections", driver_id)
                self._close_all(driver_id)

    def stop_listening(self) -> None:
        """Let the wake-up listener leave its loop (and close its connection) by itself."""
        self._stop_listening = True

    async def read_forever(self) -> None:
        """Read the streams of every dirty driver, one pipelined round trip per turn, for ever."""
        await self._supervise("reader", self._read_rounds)

    def problems(self) -> list[str]:
        """Why this hub cannot deliver right now (empty when it can): what /healthz reports."""
        return [f"{name}: {why}" for name, why in self._down.items() if why is not None]

    def _up(self, name: str) -> None:
        self._down[name] = None
        self._restart_s[name] = RESTART_MIN_S

    async def _supervise(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run one of the hub's loops; after an unexpected error, log it, count it, and run it again."""
        self._up(name)  # running from here; after a crash, only once it works again
        try:
            while True:
                try:
                    await loop()
                    return
                except Exception as exc:  # noqa: BLE001 - a crash must never end delivery for good
                    wait = self._restart_s[name]
                    self._restart_s[name] = min(wait * 2, RESTART_MAX_S)
                    self._down[name] = f"crashed ({type(exc).__name__}: {str(exc)[:100]}); restarting"
                    metrics.gateway_task_restarts.labels(name).inc()
                    log.exception("gateway %s crashed; restarting in %.1fs", name, wait)
                    await asyncio.sleep(wait)
                    if name == "reader":
                        self.mark_all()  # the batch it was reading is lost: read everyone again
        finally:
            self._down[name] = "stopped"

    async def _read_rounds(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.1
        last_read = 0.0
        while True:
            if not self._dirty:
                self._up("reader")
                self._dirty_waiter = loop.create_future()
                await self._dirty_waiter
                self._dirty_waiter = None
            wait = last_read + self.read_every_s - loop.time()
            if wait > 0:  # busy: let more wake-ups join this read (idle: read at once)
                await asyncio.sleep(wait)
            last_read = loop.time()
            try:
                await self.read_dirty()
                self._up("reader")
                backoff = 0.1
            except REDIS_ERRORS as exc:
                log.warning("redis read failed (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def read_dirty(self) -> None:
        """Read the streams of every driver marked so far (one round trip); on a Redis error they
        stay marked."""
        batch, self._dirty = self._dirty, set()
        self._reading = batch  # a wake-up for these drivers meanwhile marks them again
        try:
            await self._read(batch)
        except REDIS_ERRORS:
            self._dirty |= batch
            raise
        finally:
            self._reading = set()

    async def _read(self, batch: set[str]) -> None:
        reads: list[tuple[str, str, str]] = []  # (driver id, stream key, cursor)
        for driver_id in batch:
            conns = self._drivers.get(driver_id)
            if not conns:
                continue
            cursor = min((c.cursor for c in conns if not c.done), key=id_key, default=None)
            if cursor is None:
                continue
            reads.append((driver_id, driver_stream_key(self._prefix, driver_id), cursor))
        if not reads:
            return
        chunks = [
            reads[start : start + STREAMS_PER_XREAD] for start in range(0, len(reads), STREAMS_PER_XREAD)
        ]
        replies = await self._xread(chunks)
        metrics.gateway_stream_reads.inc()
        metrics.gateway_streams_per_read.observe(len(reads))
        for chunk, reply in zip(chunks, replies, strict=True):
            if isinstance(reply, aioredis.ResponseError):
                reply = await self._read_one_by_one(chunk, reply)
            by_key = {key.encode(): driver_id for driver_id, key, _ in chunk}
            for key, entries in reply or ():
                owner = by_key.get(key if isinstance(key, bytes) else str(key).encode())
                if owner is not None and entries:
                    self._dispatch_safely(owner, entries)

    async def _xread(self, chunks: list[list[tuple[str, str, str]]]) -> list[Any]:
        """One XREAD per chunk in one round trip; a chunk Redis refuses gives its ResponseError."""
        if len(chunks) == 1:
            try:
                return [await self._redis.execute_command(*_xread_command(chunks[0]))]  # type: ignore[no-untyped-call]
            except aioredis.ResponseError as exc:
                return [exc]
        async with self._redis.pipeline(transaction=False) as pipe:
            for chunk in chunks:
                pipe.execute_command(*_xread_command(chunk))
            return await pipe.execute(raise_on_error=False)

    async def _read_one_by_one(
        self, chunk: list[tuple[str, str, str]], error: aioredis.ResponseError
    ) -> list[Any]:
        """Find the streams Redis refuses in a chunk it refused; close their drivers, read the rest."""
        log.warning("redis refused a read of %d streams (%s); reading them one by one", len(chunk), error)
        async with self._redis.pipeline(transaction=False) as pipe:
            for read in chunk:
                pipe.execute_command(*_xread_command([read]))
            replies = await pipe.execute(raise_on_error=False)
        merged: list[Any] = []
        for (driver_id, _, cursor), reply in zip(chunk, replies, strict=True):
            if isinstance(reply, aioredis.ResponseError):
                self._unreadable(driver_id, cursor, reply)
            elif reply:
                merged.extend(reply)
        return merged

    def _unreadable(self, driver_id: str, cursor: str, error: aioredis.ResponseError) -> None:
        """Close a driver whose stream Redis refuses to read, so that the others' reads go on."""
        log.warning(
            "closing driver=%s: redis refused its stream from cursor=%.64r (%s)", driver_id, cursor, error
        )
        reason = _close_reason(f"redis refused to read your alerts after last_id ({error})")
        for conn in self._drivers.get(driver_id, ()):
            if not conn.done:
                self._close(conn, CLOSE_POLICY, reason, "unreadable_stream")

    def _dispatch_safely(self, driver_id: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Queue one driver's entries; an error there closes that driver (1011), not the reader."""
        try:
            self._dispatch(driver_id, entries)
        except Exception:  # noqa: BLE001 - one driver's data must not stop everyone's delivery
            log.exception("cannot queue the alerts of driver=%s; closing its connections", driver_id)
            self._close_all(driver_id)

    def _close_all(self, driver_id: str) -> None:
        for conn in self._drivers.get(driver_id, ()):
            if not conn.done:
                self._close(conn, 1011, "internal error: reconnect with your last_id", "error")

    def _dispatch(self, driver_id: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        conns = self._drivers.get(driver_id)
        if not conns:
            return
        batch: list[Entry] = []
        for raw_id, fields in entries:
            entry = _entry(raw_id, fields)
            if entry is None:
                metrics.gateway_bad_records.labels("stream_entry").inc()
                log.warning("skipped a malformed entry id=%.64r of driver=%s", raw_id, driver_id)
                continue
            batch.append(entry)
        self._deliver(driver_id, conns, batch, full=len(entries) >= PAGE, last_id=entries[-1][0].decode())

    def _deliver(
        self,
        driver_id: str,
        conns: list[DriverConnection],
        batch: list[Entry],
        *,
        full: bool,
        fresh: bool = False,
        last_id: str | None = None,
    ) -> None:
        """Queue or write a driver's entries (in stream order) to each of its connections, past
        each one's cursor. ``fresh``: entries from a wake-up, which a read may already have brought;
        ``last_id``: the last entry read, skipped ones included (the cursor moves past it)."""
        filter_each = fresh or len(conns) > 1
        keys = [id_key(e[0]) for e in batch] if filter_each else []
        if last_id is None:
            last_id, last = batch[-1][0], keys[-1] if keys else id_key(batch[-1][0])
        else:
            last = id_key(last_id)
        for conn in conns:
            if conn.done:
                continue
            floor = id_key(conn.cursor)
            mine = batch
            if keys and keys[0] <= floor:
                mine = [e for e, key in zip(batch, keys, strict=True) if key > floor]
            if len(conn.backlog) + len(mine) > self.queue_max:
                self.cut_off(conn)
                continue
            if last > floor:
                conn.cursor = last_id  # past skipped entries too, so that they are not read again
            if not mine:
                if full:  # a page of nothing to send: read the next page now
                    self.mark(driver_id)
                continue
            if self._write_now(conn, mine):
                if full:
                    self.mark(driver_id)
                continue
            conn.backlog.extend(mine)
            conn.more = full
            conn.wake()

    def _write_now(self, conn: DriverConnection, entries: list[Entry]) -> bool:
        """Write entries straight to an idle, unclogged socket (one write); False: queue them instead.

        Most alerts find their socket idle: writing them here spares a task switch, a send context
        and a system call per alert. Anything else (a queue not yet written, a socket over its write
        limit, a closing one) goes through the queue and the connection's pump, which waits for the
        socket to drain, so that order, back-pressure and the 4408 cut-off are the pump's as before.
        """
        waiter = conn.waiter
        if conn.backlog or waiter is None or waiter.done():
            return False
        ws = conn.ws
        protocol = ws.protocol
        if ws.paused or protocol.state is not State.OPEN or ws.transport.is_closing():
            return False
        for _, frame, _, _, _ in entries:
            protocol.send_text(frame)
        # The frames are in the socket's buffer from here on: the last one is where a resume starts.
        conn.sent = entries[-1][0]
        ws.send_data()
        self.sent += len(entries)
        _observe_sent(entries, time.time())
        return True

    def cut_off(self, conn: DriverConnection) -> None:
        """Close a connection that cannot keep up; it resumes from the last id it received."""
        metrics.queue_overflows.inc()
        log.info("cut off slow driver=%s last_id=%s", conn.driver_id, conn.sent)
        self._close(conn, CLOSE_TOO_SLOW, f"too slow: reconnect with last_id={conn.sent}", "too_slow")

    def _close(self, conn: DriverConnection, code: int, reason: str, end_reason: str) -> None:
        """Stop feeding a connection and close it in the background (the reader must not wait)."""
        conn.done = True
        conn.end_reason = end_reason
        conn.backlog.clear()
        task = asyncio.get_running_loop().create_task(conn.ws.close(code, reason))
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
                entry = backlog.popleft()
                stream_id, frame = entry[0], entry[1]
                # The frame is in the socket's buffer once send() starts (it only waits to drain),
                # and a close frame would follow it: this is the id a resume starts after.
                conn.sent = stream_id
                try:
                    await ws.send(frame, text=True)
                except ConnectionClosed:
                    return
                self.sent += 1
                _observe_sent([entry], time.time())
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


def _observe_sent(entries: list[Entry], now: float) -> None:
    """Count alerts just written to a socket and observe their latencies."""
    metrics.alerts_sent.inc(len(entries))
    for _, _, appended, created, received in entries:
        if appended:
            metrics.delivery_seconds.observe(max(0.0, now - appended))
        if created:
            metrics.created_to_sent_seconds.observe(max(0.0, now - created))
        if received:
            metrics.end_to_end_seconds.observe(max(0.0, now - received))


def _xread_command(reads: list[tuple[str, str, str]]) -> tuple[Any, ...]:
    keys = [key for _, key, _ in reads]
    ids = [cursor for _, _, cursor in reads]
    return ("XREAD", "COUNT", PAGE, "STREAMS", *keys, *ids)


def _entry(raw_id: bytes, fields: dict[bytes, bytes]) -> Entry | None:
    """An alert entry as a frame ready to send, or None when it lacks its alert."""
    body = fields.get(b"a") if isinstance(fields, dict) else None
    if not isinstance(body, bytes) or not body.startswith(b"{"):
        return None
    return _framed(raw_id, raw_id.decode(), body)


def _is_message(response: Any) -> bool:
    """A published message as a subscription reads it: ``[b"message", channel, data]``."""
    return isinstance(response, list) and len(response) == 3 and response[0] == b"message"


def _live_entry(raw_id: bytes, body: bytes) -> Entry | None:
    """An entry of a wake-up message as a frame ready to send, or None when its id is not one."""
    try:
        stream_id = raw_id.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not is_stream_id(stream_id) or stream_id == "0":
        return None
    return _framed(raw_id, stream_id, body)


def _framed(raw_id: bytes, stream_id: str, body: bytes) -> Entry:
    """An alert as the frame a driver gets, with its append and creation times for the metrics."""
    frame = b'{"type":"alert","id":"' + raw_id + b'","alert":' + body + b"}"
    appended = raw_id.partition(b"-")[0]  # a stream id's first part: when Redis appended it (ms)
    at = int(appended) / 1000 if appended.isdigit() and len(appended) < 16 else 0.0
    return stream_id, frame, at, _epoch(created_at_text(body)), _epoch(received_at_text(body))


def _close_reason(text: str) -> str:
    """A close reason within the 123 bytes a close frame allows."""
    return text.encode()[:123].decode(errors="ignore")


def _epoch(text: bytes | None) -> float:
    """A time of the alert as epoch seconds, read without parsing the whole alert (0: absent)."""
    return metrics.epoch_of(text) if text else 0.0
