"""The driver gateway: websockets that push each driver its own alerts from Redis.

A driver connects to ``/drivers/{driver_id}/alerts`` with a signed token (``Authorization:
Bearer …`` or ``?token=``) and optionally ``?last_id=`` (the last stream id it saw). It then
receives every retained alert after that id, in order, and live alerts as they are appended.
Gateways are stateless: any of them serves any driver; Redis announces new alerts on a wake-up
channel and each gateway reads the streams of the drivers it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from stream.core.tokens import Keyring, TokenError
from stream.runtime import metrics
from stream.runtime.redis_outbox import driver_stream_key, wake_channel

log = logging.getLogger("corridor.gateway")

PATH = re.compile(r"^/drivers/(?P<driver>[A-Za-z0-9_.:@-]{1,128})/alerts$")
STREAM_ID = re.compile(r"^(0|\d{1,20}-\d{1,20})$")
PAGE = 200
SEND_TIMEOUT_S = 10.0
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = 4408


@dataclass(eq=False)
class DriverConnection:
    """One open socket of a driver, and how far its stream has been sent."""

    ws: ServerConnection
    driver_id: str
    last_id: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class Gateway:
    """Accepts drivers, authenticates them, and pumps their Redis streams to their sockets."""

    def __init__(self, client: aioredis.Redis, prefix: str, keyring: Keyring) -> None:
        self._redis = client
        self._prefix = prefix
        self._keyring = keyring
        self._drivers: dict[str, set[DriverConnection]] = {}

    @property
    def connection_count(self) -> int:
        """Open driver connections."""
        return sum(len(c) for c in self._drivers.values())

    async def process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """Route plain HTTP: health check, 404 for unknown paths; driver paths go on to upgrade."""
        path = urlsplit(request.path).path
        if path == "/healthz":
            try:
                await self._redis.ping()
            except aioredis.RedisError:
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "redis unreachable\n")
            return connection.respond(HTTPStatus.OK, "ok\n")
        if not PATH.match(path):
            return connection.respond(HTTPStatus.NOT_FOUND, "try /drivers/{driver_id}/alerts\n")
        return None

    def _authenticate(self, headers: Headers, query: dict[str, list[str]], driver_id: str) -> None:
        auth = headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        token = token or (query.get("token") or [""])[0]
        if not token:
            raise TokenError("missing", "no token: connect with Authorization: Bearer <token>")
        owner = self._keyring.verify(token, time.time())
        if owner != driver_id:
            raise TokenError("wrong_driver", "this token belongs to another driver")

    async def handle(self, ws: ServerConnection) -> None:
        """Serve one driver connection until it closes."""
        assert ws.request is not None  # noqa: S101 - set once the handshake is done
        parts = urlsplit(ws.request.path)
        match = PATH.match(parts.path)
        assert match is not None  # noqa: S101 - process_request rejected other paths
        driver_id = match["driver"]
        query = parse_qs(parts.query)
        try:
            self._authenticate(ws.request.headers, query, driver_id)
        except TokenError as exc:
            metrics.refusals.labels(exc.reason).inc()
            code = CLOSE_FORBIDDEN if exc.reason == "wrong_driver" else CLOSE_UNAUTHORIZED
            log.info("refused driver=%s reason=%s", driver_id, exc.reason)
            await ws.close(code, str(exc))
            return
        last_id = (query.get("last_id") or ["0"])[0]
        if not STREAM_ID.match(last_id):
            await ws.close(1008, "last_id must be a stream id like 1700000000000-0")
            return
        if last_id != "0":
            metrics.resumes.inc()
        conn = DriverConnection(ws, driver_id, last_id)
        self._drivers.setdefault(driver_id, set()).add(conn)
        metrics.connected_drivers.inc()
        try:
            await ws.send(f'{{"type":"hello","driver_id":"{driver_id}","last_id":"{last_id}"}}')
            conn.wake.set()
            pump = asyncio.create_task(self._pump(conn))
            await ws.wait_closed()
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        finally:
            metrics.connected_drivers.dec()
            holders = self._drivers.get(driver_id)
            if holders is not None:
                holders.discard(conn)
                if not holders:
                    del self._drivers[driver_id]

    async def _pump(self, conn: DriverConnection) -> None:
        key = driver_stream_key(self._prefix, conn.driver_id)
        while True:
            await conn.wake.wait()
            conn.wake.clear()
            entries = await self._redis.xrange(key, min=f"({conn.last_id}", count=PAGE)
            for entry_id, fields in entries:
                stream_id = entry_id.decode()
                body = fields[b"a"].decode()
                message = f'{{"type":"alert","id":"{stream_id}","alert":{body}}}'
                try:
                    await asyncio.wait_for(conn.ws.send(message), SEND_TIMEOUT_S)
                except TimeoutError:
                    metrics.refusals.labels("too_slow").inc()
                    await conn.ws.close(
                        CLOSE_TOO_SLOW, f"too slow: reconnect with last_id={conn.last_id}"
                    )
                    return
                except ConnectionClosed:
                    return
                conn.last_id = stream_id
                appended_ms = int(fields.get(b"t", b"0"))
                if appended_ms:
                    metrics.delivery_seconds.observe(max(0.0, time.time() - appended_ms / 1000))
                metrics.observe_end_to_end(body)
                metrics.alerts_sent.inc()
            if len(entries) == PAGE:
                conn.wake.set()

    def _kick(self, driver_id: str) -> None:
        for conn in self._drivers.get(driver_id, ()):
            conn.wake.set()

    async def listen_wakeups(self) -> None:
        """Follow the wake-up channel; after a Redis outage, re-read every connected driver."""
        channel = wake_channel(self._prefix)
        backoff = 0.1
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(channel)
                    for driver_id in list(self._drivers):
                        self._kick(driver_id)
                    backoff = 0.1
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self._kick(message["data"].decode())
            except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as exc:
                log.warning("redis wake-up channel lost (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)


async def run_gateway(
    client: aioredis.Redis,
    prefix: str,
    keyring: Keyring,
    host: str,
    port: int,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Serve drivers on host:port until ``stop`` is set (or forever)."""
    gateway = Gateway(client, prefix, keyring)
    listener = asyncio.create_task(gateway.listen_wakeups())
    server: Server
    async with serve(
        gateway.handle,
        host,
        port,
        process_request=gateway.process_request,
        compression=None,
        max_size=4096,
        ping_interval=20,
        ping_timeout=20,
    ) as server:
        gc.collect()
        gc.freeze()
        bound = ", ".join(f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in server.sockets)
        log.info("gateway listening on %s", bound)
        if ready is not None:
            ready.set()
        await (stop.wait() if stop is not None else asyncio.Future())
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
