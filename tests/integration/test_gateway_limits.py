"""The gateway's limits against a real Redis: connections per driver, origins, sizes, heartbeats, drain."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import redis.asyncio as aioredis
import websockets
from prometheus_client import REGISTRY

from stream.gateway.server import GatewayOptions, run_gateway
from stream.gateway.tokens import Keyring
from stream.local.services import free_port
from stream.worker.outbox import RedisOutbox
from tests.support.drivers import DriverClient, alert_for, until

KEYS = Keyring.parse("gw:gateway-limits-secret-0123456789abcdef")
Start = Callable[..., Awaitable[int]]


def _token(driver: str) -> str:
    return KEYS.issue(driver, time.time(), 600)


@asynccontextmanager
async def _serving(
    client: aioredis.Redis, prefix: str, options: GatewayOptions
) -> AsyncIterator[tuple[int, asyncio.Event, asyncio.Task[None]]]:
    port = free_port()
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_gateway(client, prefix, KEYS, "127.0.0.1", port, stop, ready, options))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield port, stop, task
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_extra_connection_of_a_driver_is_refused_with_4429(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """Past max connections per driver the newcomer gets 4429; the open ones keep receiving."""
    async with _serving(redis_client, prefix, GatewayOptions(max_connections_per_driver=2)) as (port, _, _):
        async with (
            DriverClient(port, "ann", _token("ann")) as one,
            DriverClient(port, "ann", _token("ann")) as two,
        ):
            await until(lambda: len(one.messages) == len(two.messages) == 1, 5, "both hellos")
            async with DriverClient(port, "ann", _token("ann")) as three:
                await three.wait_closed(timeout=5)
            await RedisOutbox(redis_client, prefix).append([alert_for("ann", "e1")])
            await one.wait_for(lambda a: a["event_id"] == "e1", timeout=5)
            await two.wait_for(lambda a: a["event_id"] == "e1", timeout=5)
    assert three.close_code == 4429 and "at most 2" in three.close_reason
    assert three.messages == []


async def test_two_connections_of_a_driver_each_resume_from_their_own_id(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """A phone and a tablet of one driver, at different last ids, each get exactly what follows."""
    outbox = RedisOutbox(redis_client, prefix)
    ids = [sid for _, sid in await outbox.append([alert_for("bo", f"e{n}") for n in range(4)])]
    async with _serving(redis_client, prefix, GatewayOptions()) as (port, _, _):
        async with (
            DriverClient(port, "bo", _token("bo"), last_id=ids[0]) as phone,
            DriverClient(port, "bo", _token("bo"), last_id=ids[2]) as tablet,
        ):
            await outbox.append([alert_for("bo", "e4")])
            await phone.wait_for(lambda a: a["event_id"] == "e4", timeout=5)
            await tablet.wait_for(lambda a: a["event_id"] == "e4", timeout=5)
    assert [m["alert"]["event_id"] for m in phone.alerts] == ["e1", "e2", "e3", "e4"]
    assert [m["alert"]["event_id"] for m in tablet.alerts] == ["e3", "e4"]


async def test_origin_check(redis_client: aioredis.Redis, prefix: str) -> None:
    """With origins configured, a foreign Origin gets HTTP 403; a listed one or none connects."""
    options = GatewayOptions(origins=("https://app.example",))
    before = _sample("corridor_connection_refusals_total", reason="origin")
    async with _serving(redis_client, prefix, options) as (port, _, _):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with DriverClient(port, "cy", _token("cy"), origin="https://evil.example"):
                pass
        async with (
            DriverClient(port, "cy", _token("cy"), origin="https://app.example") as listed,
            DriverClient(port, "cy", _token("cy")) as native,
        ):
            await until(lambda: len(listed.messages) == len(native.messages) == 1, 5, "both hellos")
    assert refused.value.response.status_code == 403
    assert _sample("corridor_connection_refusals_total", reason="origin") == before + 1


async def test_oversized_client_message_closes_with_1009(redis_client: aioredis.Redis, prefix: str) -> None:
    """A client message over the size limit closes the connection with 1009 (message too big)."""
    async with _serving(redis_client, prefix, GatewayOptions(max_message_bytes=1024)) as (port, _, _):
        async with DriverClient(port, "di", _token("di")) as driver:
            await until(lambda: len(driver.messages) == 1, 5, "the hello")
            await driver._ws.send("x" * 2048)
            await driver.wait_closed(timeout=5)
    assert driver.close_code == 1009


@pytest.mark.parametrize(
    ("last_id", "code"),
    [("yesterday", 1008), ("1700000000000-0", None), ("0", None)],
)
async def test_last_id_must_be_a_stream_id(
    redis_client: aioredis.Redis, prefix: str, last_id: str, code: int | None
) -> None:
    """A malformed last_id is refused with 1008; stream ids and 0 are accepted."""
    async with _serving(redis_client, prefix, GatewayOptions()) as (port, _, _):
        async with DriverClient(port, "ed", _token("ed"), last_id=last_id) as driver:
            await until(lambda: driver.messages or driver.closed, 5, "a hello or a close")
            if code is not None:
                await driver.wait_closed(timeout=5)
    assert driver.close_code == code if code else driver.messages[0]["type"] == "hello"


async def _raw_upgrade(port: int, driver: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a websocket by hand and then never answer anything (a phone gone dark)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /drivers/{driver}/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {_token(driver)}\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer


async def test_heartbeat_closes_dead_connections(redis_client: aioredis.Redis, prefix: str) -> None:
    """A client that never answers pings is disconnected after ping interval + timeout."""
    options = GatewayOptions(ping_interval_s=0.2, ping_timeout_s=0.3, close_timeout_s=0.5)
    before = _sample("corridor_gateway_disconnects_total", reason="heartbeat")
    async with _serving(redis_client, prefix, options) as (port, _, _):
        reader, writer = await _raw_upgrade(port, "fay")
        started = time.monotonic()
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            while True:  # reads the pings without ever answering them, until the gateway hangs up
                if not await asyncio.wait_for(reader.read(65536), 5):
                    raise asyncio.IncompleteReadError(b"", None)
        elapsed = time.monotonic() - started
        writer.close()
        await until(
            lambda: _sample("corridor_gateway_disconnects_total", reason="heartbeat") == before + 1,
            5,
            "the disconnect to be counted as a heartbeat loss",
        )
    assert elapsed < 3


async def test_shutdown_is_not_held_by_lingering_http_clients(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """A 404 client that keeps its socket open and a driver do not hold shutdown past the drain."""
    options = GatewayOptions(drain_s=2.0, close_timeout_s=1.0)
    async with _serving(redis_client, prefix, options) as (port, stop, task):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)).startswith(b"HTTP/1.1 404")
        async with DriverClient(port, "gus", _token("gus")) as driver:
            await until(lambda: len(driver.messages) == 1, 5, "the hello")
            started = time.monotonic()
            stop.set()
            await asyncio.wait_for(task, 10)
            elapsed = time.monotonic() - started
            await driver.wait_closed(timeout=5)
        writer.close()
    assert elapsed < 3.0, f"shutdown took {elapsed:.1f} s"
    assert driver.close_code == 1012 and "last_id=0" in driver.close_reason


async def test_heartbeats_of_connections_opened_together_are_spread(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """Drivers that connect at the same moment are not pinged at the same moment: their first pings
    are spread over the interval (a wave of pings holds the gateway's loop)."""
    from websockets.asyncio.client import ClientConnection  # noqa: PLC0415
    from websockets.frames import Opcode  # noqa: PLC0415

    first_ping: dict[int, float] = {}

    class Recording(ClientConnection):
        def process_event(self, event: object) -> None:
            if getattr(event, "opcode", None) is Opcode.PING:
                first_ping.setdefault(id(self), time.monotonic())
            super().process_event(event)  # type: ignore[arg-type]

    interval = 2.0
    options = GatewayOptions(ping_interval_s=interval, ping_timeout_s=interval)
    async with _serving(redis_client, prefix, options) as (port, _, _):
        sockets = await asyncio.gather(
            *(
                websockets.connect(
                    f"ws://127.0.0.1:{port}/drivers/d{n}/alerts",
                    additional_headers={"Authorization": f"Bearer {_token(f'd{n}')}"},
                    create_connection=Recording,
                    ping_interval=None,
                )
                for n in range(24)
            )
        )
        opened = time.monotonic()
        try:
            await until(lambda: len(first_ping) == len(sockets), 3 * interval, "every first ping")
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))
    times = sorted(first_ping.values())
    # Without the spread all 24 come within a few ms of one interval after opening.
    assert times[-1] - times[0] > interval / 3, [round(t - opened, 3) for t in times]
