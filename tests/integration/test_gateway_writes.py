"""How the hub writes alerts: at once to an idle socket, through the queue to a busy or clogged one."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

from stream.gateway.hub import DriverConnection, Hub
from stream.worker.outbox import RedisOutbox
from tests.support.drivers import alert_for


class _Protocol:
    """The frames a connection's protocol was given, and its state."""

    def __init__(self) -> None:
        self.state = State.OPEN
        self.frames: list[bytes] = []

    def send_text(self, frame: bytes) -> None:
        self.frames.append(frame)


class _Transport:
    def is_closing(self) -> bool:
        return False


class _Socket:
    """The parts of a server connection the hub writes through; counts the writes to the socket."""

    def __init__(self, paused: bool = False) -> None:
        self.protocol = _Protocol()
        self.transport = _Transport()
        self.paused = paused
        self.writes = 0
        self.connection_lost_waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def send_data(self) -> None:
        self.writes += 1


def _idle(hub: Hub, socket: _Socket, driver: str) -> DriverConnection:
    """A registered connection whose pump waits for work, as a handler's does between alerts."""
    conn = DriverConnection(cast(ServerConnection, socket), driver, cursor="0", sent="0")
    hub.add(conn)
    conn.waiter = asyncio.get_running_loop().create_future()
    return conn


def _event_ids(frames: list[bytes]) -> list[Any]:
    return [orjson.loads(frame)["alert"]["event_id"] for frame in frames]


async def test_idle_socket_gets_its_alerts_in_one_write(redis_client: aioredis.Redis, prefix: str) -> None:
    """Alerts read for an idle socket are written at once, in order, in one write; sent is the last id."""
    ids = await RedisOutbox(redis_client, prefix).append([alert_for("ann", e) for e in ("e1", "e2", "e3")])
    hub = Hub(redis_client, prefix)
    socket = _Socket()
    conn = _idle(hub, socket, "ann")
    await hub._read({"ann"})
    assert _event_ids(socket.protocol.frames) == ["e1", "e2", "e3"]
    assert socket.writes == 1 and not conn.backlog and hub.sent == 3
    assert conn.sent == ids[-1][1] == conn.cursor
    assert conn.waiter is not None and not conn.waiter.done()  # the pump was not needed


async def test_clogged_socket_gets_its_alerts_through_the_queue(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """A socket over its write limit gets nothing written now: its alerts wait in the queue, in order."""
    await RedisOutbox(redis_client, prefix).append([alert_for("bob", e) for e in ("e1", "e2")])
    hub = Hub(redis_client, prefix)
    socket = _Socket(paused=True)
    conn = _idle(hub, socket, "bob")
    await hub._read({"bob"})
    assert socket.protocol.frames == [] and socket.writes == 0 and conn.sent == "0"
    assert _event_ids([entry[1] for entry in conn.backlog]) == ["e1", "e2"]
    assert conn.waiter is not None and conn.waiter.done()  # its pump is woken to wait for the drain


async def test_queued_alerts_keep_their_place(redis_client: aioredis.Redis, prefix: str) -> None:
    """While alerts wait in a connection's queue, newer ones join the queue instead of overtaking them."""
    outbox = RedisOutbox(redis_client, prefix)
    await outbox.append([alert_for("cy", "e1")])
    hub = Hub(redis_client, prefix)
    socket = _Socket(paused=True)
    conn = _idle(hub, socket, "cy")
    await hub._read({"cy"})
    socket.paused = False  # drained, but the pump has not run yet
    await outbox.append([alert_for("cy", "e2")])
    await hub._read({"cy"})
    assert socket.protocol.frames == []
    assert _event_ids([entry[1] for entry in conn.backlog]) == ["e1", "e2"]
