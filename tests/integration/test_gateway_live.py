"""Alerts written straight from wake-up messages: exactly once and in stream order, whatever the
interleaving of appends, wake-ups, reads and reconnects."""

from __future__ import annotations

import asyncio
import random
from typing import Any, cast

import orjson
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.server import ServerConnection

from stream.gateway.hub import DriverConnection, Hub
from stream.runtime import metrics
from stream.worker.outbox import RedisOutbox, driver_stream_key, wake_channel
from tests.integration.test_gateway_writes import _Socket
from tests.support.drivers import alert_for


def _connect(hub: Hub, socket: _Socket, driver: str, cursor: str = "0") -> DriverConnection:
    """A registered connection whose pump waits for work, as a handler's does between alerts."""
    conn = DriverConnection(cast(ServerConnection, socket), driver, cursor=cursor, sent=cursor)
    hub.add(conn)
    conn.waiter = asyncio.get_running_loop().create_future()
    return conn


def _ids(socket: _Socket, conn: DriverConnection) -> list[str]:
    """Stream ids of what reached the socket, written at once or through the queue."""
    written = [orjson.loads(frame)["id"] for frame in socket.protocol.frames]
    return written + [entry[0] for entry in conn.backlog]


async def _stream_ids(client: aioredis.Redis, prefix: str, driver: str) -> list[str]:
    return [sid.decode() for sid, _ in await client.xrange(driver_stream_key(prefix, driver))]


class _Wakeups:
    """The wake-up channel, as a gateway's subscription receives it: messages in publication order."""

    def __init__(self, pubsub: aioredis.client.PubSub) -> None:
        self._pubsub = pubsub
        self.pending: list[bytes] = []

    async def take(self, count: int = 1) -> None:
        """Wait for ``count`` more messages (each append call publishes one)."""
        for _ in range(count):
            while True:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                if message is not None:
                    self.pending.append(message["data"])
                    break


async def test_an_in_step_driver_gets_its_alert_from_the_wakeup_without_a_read(
    redis_client: aioredis.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a driver's connection has read its stream, the next alert is written from the wake-up
    message alone: no stream read, the cursor and sent id move to it."""
    outbox = RedisOutbox(redis_client, prefix)
    hub = Hub(redis_client, prefix)
    socket = _Socket()
    conn = _connect(hub, socket, "ann")
    await hub.read_dirty()  # the connection's first read: nothing yet, now in step
    reads = 0
    real_xread = hub._xread

    async def counting(chunks: list[Any]) -> list[Any]:
        nonlocal reads
        reads += 1
        return await real_xread(chunks)

    monkeypatch.setattr(hub, "_xread", counting)
    live_before = metrics.gateway_live_alerts._value.get()
    async with redis_client.pubsub() as pubsub:
        await pubsub.subscribe(wake_channel(prefix))
        wakeups = _Wakeups(pubsub)
        [(_, sid)] = await outbox.append([alert_for("ann", "e1")])
        await wakeups.take()
    hub.take_wakeup(wakeups.pending[0])
    assert _ids(socket, conn) == [sid] and conn.sent == conn.cursor == sid
    assert orjson.loads(socket.protocol.frames[0])["alert"]["event_id"] == "e1"
    assert reads == 0 and not hub._dirty
    assert metrics.gateway_live_alerts._value.get() == live_before + 1


async def test_a_driver_not_yet_read_is_marked_not_written(redis_client: aioredis.Redis, prefix: str) -> None:
    """A connection that has not read its stream yet (it may resume from an older id) gets nothing
    from a wake-up: its driver is marked, and the read brings everything in order."""
    outbox = RedisOutbox(redis_client, prefix)
    await outbox.append([alert_for("bob", "e0")])
    hub = Hub(redis_client, prefix)
    socket = _Socket()
    conn = _connect(hub, socket, "bob")
    async with redis_client.pubsub() as pubsub:
        await pubsub.subscribe(wake_channel(prefix))
        wakeups = _Wakeups(pubsub)
        await outbox.append([alert_for("bob", "e1")])
        await wakeups.take()
    hub.take_wakeup(wakeups.pending[0])
    assert socket.protocol.frames == [] and "bob" in hub._dirty
    await hub.read_dirty()
    assert _ids(socket, conn) == await _stream_ids(redis_client, prefix, "bob")


async def test_a_wakeup_for_other_drivers_or_with_a_bad_id_writes_nothing(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """Entries of drivers not connected here are ignored; an entry whose id is not a stream id is
    counted and its driver read instead."""
    hub = Hub(redis_client, prefix)
    socket = _Socket()
    conn = _connect(hub, socket, "cy")
    await hub.read_dirty()
    bad = metrics.gateway_bad_records.labels("wakeup")._value.get()
    hub.take_wakeup(b'other 1-0 {"a":1}\ncy 99999999999999999999999-0 {"a":2}')
    assert socket.protocol.frames == [] and conn.cursor == "0"
    assert hub._dirty == {"cy"}
    assert metrics.gateway_bad_records.labels("wakeup")._value.get() == bad + 1


@pytest.mark.parametrize("seed", range(12))
async def test_wakeups_and_reads_interleaved_deliver_each_entry_once_in_order(
    redis_client: aioredis.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Random schedules of appends, wake-ups (some arriving while a read is in flight), reads, lost
    wake-ups followed by a re-read of everyone, and connections that join late: every connection
    ends with exactly its driver's stream after its starting point, in order."""
    rng = random.Random(seed)
    outbox = RedisOutbox(redis_client, prefix)
    hub = Hub(redis_client, prefix, queue_max=10_000)
    drivers = ["ann", "bob"]
    sockets: list[tuple[str, _Socket, DriverConnection]] = []
    async with redis_client.pubsub() as pubsub:
        await pubsub.subscribe(wake_channel(prefix))
        wakeups = _Wakeups(pubsub)
        real_xread = hub._xread

        async def in_flight(chunks: list[Any]) -> list[Any]:
            """Wake-ups may arrive before the read runs on Redis, or after, before its reply."""
            for _ in range(rng.randrange(3)):
                if wakeups.pending:
                    hub.take_wakeup(wakeups.pending.pop(0))
            if appending and rng.random() < 0.5:
                await append()
            reply = await real_xread(chunks)
            for _ in range(rng.randrange(3)):
                if wakeups.pending:
                    hub.take_wakeup(wakeups.pending.pop(0))
            return reply

        async def append() -> None:
            batch = [
                alert_for(rng.choice(drivers), f"e{rng.randrange(50)}", title=f"t{rng.randrange(3)}")
                for _ in range(rng.randrange(1, 4))
            ]
            stored = await outbox.append(batch)
            if any(sid is not None for _, sid in stored):
                await wakeups.take()

        appending = True
        monkeypatch.setattr(hub, "_xread", in_flight)
        for _ in range(60):
            step = rng.random()
            if step < 0.35:
                await append()
            elif step < 0.65 and wakeups.pending:
                hub.take_wakeup(wakeups.pending.pop(0))
            elif step < 0.8:
                await hub.read_dirty()
            elif step < 0.85 and wakeups.pending:
                wakeups.pending.pop(0)  # lost with the subscription: a new one re-reads everyone
                hub.mark_all()
            elif step < 0.92 or not sockets:
                driver = rng.choice(drivers)
                stream = await _stream_ids(redis_client, prefix, driver)
                start = rng.choice(["0", *stream])  # a fresh connection or one that resumes
                socket = _Socket()
                sockets.append((start, socket, _connect(hub, socket, driver, cursor=start)))
        appending = False
        while wakeups.pending or hub._dirty:
            while wakeups.pending:
                hub.take_wakeup(wakeups.pending.pop(0))
            await hub.read_dirty()
    assert sockets
    for start, socket, conn in sockets:
        stream = await _stream_ids(redis_client, prefix, conn.driver_id)
        expected = stream[stream.index(start) + 1 :] if start != "0" else stream
        assert _ids(socket, conn) == expected, (conn.driver_id, start)
