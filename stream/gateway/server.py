"""The driver gateway: websockets that push each driver its own alerts from Redis.

A driver connects to ``/drivers/{driver_id}/alerts`` with a signed token (``Authorization:
Bearer …`` or ``?token=``) and optionally ``?last_id=`` (the last stream id it saw). It then
receives every retained alert after that id, in order, and live alerts as they are appended.
Gateways are stateless: any of them serves any driver; Redis announces new alerts on a wake-up
channel and each gateway reads the streams of the drivers it holds (see gateway_hub).

Close codes: 4401 no or bad token, 4403 another driver's token, 4408 too slow (the reason says
``last_id=…`` to resume from), 4429 too many connections for this driver, 1008 bad ``last_id`` (or
a stream Redis refuses to read), 1009 message too big, 1011 heartbeat lost, 1012 service restart
(reconnect, to any gateway). ``/healthz`` is 200 only while Redis answers, the gateway is not
draining, and its reader and wake-up listener run (503 with the reason otherwise).

The same server serves dispatchers: the map page at ``/`` and its data and live alert feed under
``/dispatch/`` (see dispatch), with dispatcher tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.protocol import State

from stream.gateway.dispatch import ALERTS_PATH, Dispatch
from stream.gateway.gc_policy import GcPolicy
from stream.gateway.hub import CLOSE_POLICY, CLOSE_TOO_SLOW, DriverConnection, Hub, is_stream_id
from stream.gateway.tokens import Keyring, TokenError
from stream.runtime import metrics
from stream.runtime.settings import Settings

log = logging.getLogger("corridor.gateway")

PATH = re.compile(r"^/drivers/(?P<driver>[A-Za-z0-9_.:@-]{1,128})/alerts$")
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY = 4429
CLOSE_RESTART = 1012
__all__ = ["CLOSE_FORBIDDEN", "CLOSE_TOO_MANY", "CLOSE_TOO_SLOW", "CLOSE_UNAUTHORIZED"]
__all__ += ["Gateway", "GatewayOptions", "run_gateway"]


@dataclass(frozen=True)
class GatewayOptions:
    """Limits of one gateway process (``CORRIDOR_GATEWAY_*``)."""

    origins: tuple[str, ...] = ()
    max_connections_per_driver: int = 3
    queue_max: int = 256
    write_limit: int = 32768
    max_message_bytes: int = 4096
    ping_interval_s: float | None = 20.0
    ping_timeout_s: float | None = 20.0
    drain_s: float = 5.0
    close_timeout_s: float = 2.0
    open_timeout_s: float = 10.0
    partitions: int = 8  # of the routes topic: where the dispatch map finds the routes in Redis

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayOptions:
        """The options a deployment configured."""
        return cls(
            origins=settings.gateway_origins,
            max_connections_per_driver=settings.gateway_max_connections_per_driver,
            queue_max=settings.gateway_queue_max,
            write_limit=settings.gateway_write_limit,
            max_message_bytes=settings.gateway_max_message_bytes,
            ping_interval_s=settings.gateway_ping_interval_s or None,
            ping_timeout_s=settings.gateway_ping_timeout_s or None,
            drain_s=settings.gateway_drain_s,
            partitions=settings.partitions,
        )


class Gateway:
    """Accepts drivers, authenticates them, and hands them to the hub that feeds their sockets."""

    def __init__(
        self, client: aioredis.Redis, prefix: str, keyring: Keyring, options: GatewayOptions
    ) -> None:
        self._redis = client
        self._keyring = keyring
        self.options = options
        self.hub = Hub(client, prefix, options.queue_max)
        self.dispatch = Dispatch(client, prefix, keyring, options.partitions)
        self.sockets: weakref.WeakSet[ServerConnection] = weakref.WeakSet()
        self.draining = False
        self._closers: set[asyncio.Future[None]] = set()

    @property
    def connection_count(self) -> int:
        """Open driver connections."""
        return self.hub.connection_count

    def connection_class(self) -> type[ServerConnection]:
        """A ServerConnection that registers itself, so that shutdown can abort stragglers, and
        spreads its heartbeats."""
        sockets = self.sockets

        class TrackedConnection(ServerConnection):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sockets.add(self)
                super().connection_made(transport)

            async def keepalive(self) -> None:
                # Connections that open together (a reconnect wave, a gateway restart) would ping
                # together for ever, and each wave holds the loop: with 10,000 drivers a p99 of
                # 28-42 ms against 6-9 ms without pings (corridor bench gateway). A random first
                # wait spreads their heartbeats over the interval.
                if self.ping_interval:
                    await asyncio.sleep(random.uniform(0.0, self.ping_interval))  # noqa: S311
                await super().keepalive()

        return TrackedConnection

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Route plain HTTP: health check, dispatcher page, 404, origin check; sockets go on to upgrade."""
        path = urlsplit(request.path).path
        if path == "/healthz":
            if self.draining:
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "draining\n")
            problems = self.hub.problems()
            if problems:  # up but not delivering: the load balancer should send drivers elsewhere
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "; ".join(problems) + "\n")
            try:
                await self._redis.ping()
            except aioredis.RedisError:
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "redis unreachable\n")
            return connection.respond(HTTPStatus.OK, "ok\n")
        if self.dispatch.owns(path):
            answer = await self.dispatch.respond(request)
            if answer is not None:
                return answer
        elif not PATH.match(path):
            return connection.respond(HTTPStatus.NOT_FOUND, "try /drivers/{driver_id}/alerts\n")
        origin = request.headers.get("Origin")
        if self.options.origins and origin is not None and origin not in self.options.origins:
            metrics.refusals.labels("origin").inc()
            return connection.respond(HTTPStatus.FORBIDDEN, f"origin {origin[:100]} not allowed\n")
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

    async def _refuse(self, ws: ServerConnection, driver_id: str, reason: str, code: int, text: str) -> None:
        metrics.refusals.labels(reason).inc()
        log.info("refused driver=%s reason=%s", driver_id, reason)
        await ws.close(code, text)

    async def handle(self, ws: ServerConnection) -> None:
        """Serve one driver connection until it closes."""
        assert ws.request is not None  # noqa: S101 - set once the handshake is done
        parts = urlsplit(ws.request.path)
        if parts.path == ALERTS_PATH:
            await self.dispatch.handle(ws)
            return
        match = PATH.match(parts.path)
        assert match is not None  # noqa: S101 - process_request rejected other paths
        driver_id = match["driver"]
        query = parse_qs(parts.query)
        try:
            self._authenticate(ws.request.headers, query, driver_id)
        except TokenError as exc:
            code = CLOSE_FORBIDDEN if exc.reason == "wrong_driver" else CLOSE_UNAUTHORIZED
            await self._refuse(ws, driver_id, exc.reason, code, str(exc))
            return
        last_id = (query.get("last_id") or ["0"])[0]
        if not is_stream_id(last_id):
            text = "last_id must be a stream id like 1700000000000-0"
            await self._refuse(ws, driver_id, "bad_last_id", CLOSE_POLICY, text)
            return
        limit = self.options.max_connections_per_driver
        if self.hub.count(driver_id) >= limit:
            text = f"too many connections for this driver (at most {limit})"
            await self._refuse(ws, driver_id, "too_many_connections", CLOSE_TOO_MANY, text)
            return
        if last_id != "0":
            metrics.resumes.inc()
        conn = DriverConnection(ws, driver_id, cursor=last_id, sent=last_id)
        await ws.send(f'{{"type":"hello","driver_id":"{driver_id}","last_id":"{last_id}"}}')
        self.hub.add(conn)
        try:
            await self.hub.pump(conn)
        finally:
            self.hub.remove(conn)
            metrics.gateway_disconnects.labels(_end_reason(conn)).inc()

    async def drain(self, server: Server) -> None:
        """Stop accepting; close every driver with 1012 and its last id; abort what lingers."""
        self.draining = True
        server.close(close_connections=False)
        for conn in self.hub.connections():
            if conn.ws.protocol.state is not State.OPEN:
                continue  # already closing for its own reason
            conn.end_reason = conn.end_reason or "shutdown"
            reason = f"service restart: reconnect with last_id={conn.sent}"
            self._closing(conn.ws.close(CLOSE_RESTART, reason))
        for ws in list(self.sockets):
            if ws.protocol.state is State.OPEN:
                self._closing(ws.close(CLOSE_RESTART, "service restart"))
        try:
            await asyncio.wait_for(server.wait_closed(), self.options.drain_s)
        except TimeoutError:
            log.warning("drain: aborting %d connections still open", len(self.sockets))
            for ws in list(self.sockets):
                if ws.transport is not None:
                    ws.transport.abort()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    def _closing(self, closing: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(closing)
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)


def _end_reason(conn: DriverConnection) -> str:
    if conn.end_reason:
        return conn.end_reason
    protocol = conn.ws.protocol
    if protocol.close_sent is not None and protocol.close_sent.code == 1011:
        return "heartbeat"
    if protocol.close_rcvd is not None:
        return "client"
    return "dropped"


async def run_gateway(
    client: aioredis.Redis,
    prefix: str,
    keyring: Keyring,
    host: str,
    port: int,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
    options: GatewayOptions | None = None,
) -> None:
    """Serve drivers on host:port until ``stop`` is set (or forever), then drain."""
    opts = options or GatewayOptions()
    gateway = Gateway(client, prefix, keyring, opts)
    gc_policy = GcPolicy()
    server = await serve(
        gateway.handle,
        host,
        port,
        process_request=gateway.process_request,
        create_connection=gateway.connection_class(),
        compression=None,
        max_size=opts.max_message_bytes,
        max_queue=4,
        write_limit=opts.write_limit,
        ping_interval=opts.ping_interval_s,
        ping_timeout=opts.ping_timeout_s,
        close_timeout=opts.close_timeout_s,
        open_timeout=opts.open_timeout_s,
    )
    hub = gateway.hub
    tasks = [
        asyncio.create_task(hub.listen_wakeups(), name="gateway-wakeups"),
        asyncio.create_task(hub.read_forever(), name="gateway-reader"),
        asyncio.create_task(gc_policy.run(hub), name="gateway-gc"),
    ]
    try:
        gc_policy.install()
        bound = ", ".join(f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in server.sockets)
        log.info("gateway listening on %s", bound)
        if ready is not None:
            ready.set()
        await (stop.wait() if stop is not None else asyncio.Future())
        log.info("gateway draining %d connections", gateway.connection_count)
        await gateway.drain(server)
    finally:
        gc_policy.uninstall()
        hub.stop_listening()  # redis-py's pub/sub can hang when cancelled mid-connect: let it end
        listener, *others = tasks
        await asyncio.wait([listener], timeout=1.0)
        for task in tasks:
            task.cancel()
        _, stuck = await asyncio.wait(tasks, timeout=2.0)
        if stuck:
            log.warning("gateway tasks still stopping: %s", ", ".join(t.get_name() for t in stuck))
        if server.close_task is None:
            server.close()
