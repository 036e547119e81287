"""The gateway against hostile input and its own faults, on a real Redis: nothing stops delivery."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import orjson
import pytest
import redis.asyncio as aioredis
import websockets
from prometheus_client import REGISTRY
from redis.asyncio.client import PubSub
from websockets.asyncio.server import ServerConnection

from stream.gateway import hub as gateway_hub
from stream.gateway.hub import DriverConnection, Hub, is_stream_id
from stream.gateway.server import GatewayOptions, run_gateway
from stream.gateway.tokens import Keyring
from stream.local.services import free_port
from stream.runtime.retry import redis_client as make_redis_client
from stream.worker.outbox import RedisOutbox, driver_stream_key
from tests.support.drivers import DriverClient, alert_for, until

KEYS = Keyring.parse("gw:gateway-hostile-secret-0123456789abcdef")
GOOD = KEYS.issue("ann", time.time(), 600)
HOSTILE_TOKENS = [
    ("non-ASCII signature", GOOD[:-2] + "%C3%A9"),
    ("Arabic-Indic signature", GOOD[:-1] + "%D9%A1"),
    ("non-ASCII claims", GOOD.split(".", 1)[0] + ".%C3%A9t%C3%A9." + GOOD.rsplit(".", 1)[1]),
    ("bytes that are not UTF-8", GOOD[:-1] + "%FF"),
    ("oversized", GOOD + "A" * 3000),
]


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def _serving(client: aioredis.Redis, prefix: str) -> AsyncIterator[int]:
    port = free_port()
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        run_gateway(client, prefix, KEYS, "127.0.0.1", port, stop, ready, GatewayOptions(partitions=2))
    )
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield port
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


async def _health(port: int) -> tuple[int, bytes]:
    return await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz")


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("0", True),
        ("1700000000000-0", True),
        ("18446744073709551615-18446744073709551615", True),
        ("00000000000000000001-0", True),
        ("18446744073709551616-0", False),
        ("1-18446744073709551616", False),
        ("99999999999999999999-0", False),
        ("0\n", False),
        ("1-0\n", False),
        ("\u0661-0", False),
        ("1700000000000", False),
        ("1-", False),
        ("-1-0", False),
        (" 1-0", False),
        ("+1-0", False),
        ("", False),
        ("$", False),
    ],
)
async def test_stream_ids_are_checked_as_redis_reads_them(
    redis_client: aioredis.Redis, prefix: str, text: str, valid: bool
) -> None:
    """Every id accepted is one Redis reads; refused ones include all that Redis refuses."""
    assert is_stream_id(text) is valid
    if valid:  # Redis agrees: reading from it is no error
        await redis_client.xread({f"{prefix}:s": text}, count=1)


class _Socket:
    """The part of a server connection the hub uses: its close, and a future for its loss."""

    def __init__(self) -> None:
        self.connection_lost_waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed_with: tuple[int, str] | None = None

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


@pytest.mark.parametrize("chunk", [500, 1], ids=["one XREAD", "pipelined XREADs"])
@pytest.mark.parametrize(
    ("fault", "error"),
    [("wrong type", "WRONGTYPE"), ("cursor Redis refuses", "Invalid stream ID")],
)
async def test_stream_redis_refuses_closes_only_its_driver(
    redis_client: aioredis.Redis,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    chunk: int,
    fault: str,
    error: str,
) -> None:
    """A read Redis refuses because of one driver closes that driver with 1008; the batch is read."""
    monkeypatch.setattr(gateway_hub, "STREAMS_PER_XREAD", chunk)
    await RedisOutbox(redis_client, prefix).append([alert_for(d, "e1") for d in ("ann", "bob", "cy")])
    cursor = "0"
    if fault == "wrong type":
        await redis_client.set(driver_stream_key(prefix, "bob"), "not a stream")
    else:
        cursor = "0\n"  # as if it had slipped past the handshake's check
    hub = Hub(redis_client, prefix)
    sockets = {d: _Socket() for d in ("ann", "bob", "cy")}
    conns = {
        d: DriverConnection(cast(ServerConnection, s), d, cursor=cursor if d == "bob" else "0", sent="0")
        for d, s in sockets.items()
    }
    for conn in conns.values():
        hub.add(conn)
    await hub._read({"ann", "bob", "cy"})
    await until(lambda: sockets["bob"].closed_with is not None, 5, "bob to be closed")
    code, reason = sockets["bob"].closed_with or (0, "")
    assert code == 1008 and error in reason and len(reason.encode()) <= 123
    assert conns["bob"].end_reason == "unreadable_stream"
    for driver in ("ann", "cy"):
        assert sockets[driver].closed_with is None
        assert [entry[0] for entry in conns[driver].backlog] == [conns[driver].cursor]


async def test_malformed_stream_entries_are_skipped(redis_client: aioredis.Redis, prefix: str) -> None:
    """Entries without an alert are skipped, counted, and read past; the alerts around them go out."""
    outbox = RedisOutbox(redis_client, prefix)
    key = driver_stream_key(prefix, "dee")
    await outbox.append([alert_for("dee", "before")])
    await redis_client.xadd(key, {"x": "no alert"})
    await redis_client.xadd(key, {"a": "not an object", "t": "soon"})
    await outbox.append([alert_for("dee", "after")])
    bad = await redis_client.xadd(key, {"a": "[]"})
    before = _sample("corridor_gateway_bad_records_total", kind="stream_entry")
    hub = Hub(redis_client, prefix)
    socket = _Socket()
    conn = DriverConnection(cast(ServerConnection, socket), "dee", cursor="0", sent="0")
    hub.add(conn)
    await hub._read({"dee"})
    frames = [orjson.loads(entry[1]) for entry in conn.backlog]
    assert [f["alert"]["event_id"] for f in frames] == ["before", "after"]
    assert conn.cursor == (bad.decode() if isinstance(bad, bytes) else bad) and socket.closed_with is None
    assert _sample("corridor_gateway_bad_records_total", kind="stream_entry") == before + 3


class _FaultyRedis(aioredis.Redis):
    """A real client whose first XREAD (or pub/sub) fails unexpectedly; the next waits for ``release``."""

    fault = "XREAD"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failed = False
        self.release = asyncio.Event()

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.fault == "XREAD" and args and args[0] == "XREAD":
            if not self.failed:
                self.failed = True
                raise RuntimeError("injected fault")
            await self.release.wait()
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def pubsub(self, **kwargs: Any) -> PubSub:
        if self.fault != "pubsub":
            return super().pubsub(**kwargs)
        if not self.failed:
            self.failed = True
            raise RuntimeError("injected fault")
        pubsub = super().pubsub(**kwargs)
        subscribe = pubsub.subscribe

        async def gated(*channels: Any, **named: Any) -> Any:
            await self.release.wait()
            return await subscribe(*channels, **named)

        pubsub.subscribe = gated  # type: ignore[method-assign]
        return pubsub


@pytest.mark.parametrize(("fault", "task"), [("XREAD", "reader"), ("pubsub", "wakeups")])
async def test_crashed_loop_restarts_and_health_is_503_until_it_works(
    services: dict[str, str], prefix: str, fault: str, task: str
) -> None:
    """The reader or wake-up listener dies once: /healthz says 503 and why, then it restarts and delivers."""
    client = cast(_FaultyRedis, _FaultyRedis.from_url(services["redis_url"]))
    client.fault = fault
    writer = make_redis_client(services["redis_url"])
    before = _sample("corridor_gateway_task_restarts_total", task=task)
    try:
        async with _serving(client, prefix) as port, DriverClient(port, "ann", _token("ann")) as ann:
            await until(lambda: ann.messages, 5, "the hello")
            await until(lambda: client.failed, 5, "the injected fault")
            body = await _health_becomes(port, 503)
            assert f"{task}: crashed (RuntimeError: injected fault)".encode() in body
            assert _sample("corridor_gateway_task_restarts_total", task=task) == before + 1
            client.release.set()
            await _health_becomes(port, 200)
            await RedisOutbox(writer, prefix).append([alert_for("ann", "after-restart")])
            await ann.wait_for(lambda a: a["event_id"] == "after-restart", timeout=5)
    finally:
        await client.aclose()
        await writer.aclose()


async def _health_becomes(port: int, status: int, timeout: float = 10.0) -> bytes:
    """Poll /healthz until it answers ``status``; its body."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got, body = await _health(port)
        if got == status:
            return body
        assert loop.time() < deadline, f"/healthz stayed {got} ({body!r}), not {status}"


def _token(driver: str) -> str:
    return KEYS.issue(driver, time.time(), 600)


@pytest.mark.parametrize(("case", "token"), HOSTILE_TOKENS, ids=[case for case, _ in HOSTILE_TOKENS])
async def test_hostile_tokens_close_drivers_with_4401_and_get_401_on_dispatch(
    redis_client: aioredis.Redis, prefix: str, case: str, token: str
) -> None:
    """Odd bytes in a token give 4401 to a driver and 401 on the dispatch data, never an error."""
    before = _sample("corridor_connection_refusals_total", reason="malformed")
    async with _serving(redis_client, prefix) as port:
        async with websockets.connect(f"ws://127.0.0.1:{port}/drivers/ann/alerts?token={token}") as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
        async with websockets.connect(f"ws://127.0.0.1:{port}/dispatch/alerts?token={token}") as ws:
            with pytest.raises(websockets.ConnectionClosed) as dispatcher_closed:
                await asyncio.wait_for(ws.recv(), 5)
        for path in ("/dispatch/snapshot", "/dispatch/positions"):
            status, _ = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}{path}?token={token}")
            assert status == 401, (case, path)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401, case
    assert dispatcher_closed.value.rcvd is not None and dispatcher_closed.value.rcvd.code == 4401, case
    assert _sample("corridor_connection_refusals_total", reason="malformed") == before + 1


async def test_raw_non_ascii_header_token_is_4401(redis_client: aioredis.Redis, prefix: str) -> None:
    """A token with raw non-ASCII bytes in the Authorization header is refused with 4401."""
    async with _serving(redis_client, prefix) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /drivers/ann/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer " + GOOD[:-1].encode() + b"\xc3\xa9\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        frame = await asyncio.wait_for(reader.readexactly(4), 5)
        writer.close()
    assert head.startswith(b"HTTP/1.1 101")
    assert frame[0] == 0x88 and int.from_bytes(frame[2:4], "big") == 4401  # close frame, code 4401
