"""The gateway against a real Redis: authentication, own alerts only, resume from the last id."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
import websockets

from schemas import Alert, alert_id_for
from stream.gateway.server import run_gateway
from stream.gateway.tokens import Keyring
from stream.local.services import free_port
from stream.worker.outbox import RedisOutbox
from tests.support.drivers import DriverClient

KEYS = Keyring.parse("gw:gateway-test-secret-0123456789abcdef")


def _alert(driver: str, event: str) -> Alert:
    return Alert(
        alert_id=alert_id_for(f"r-{driver}", event),
        route_id=f"r-{driver}",
        driver_id=driver,
        event_id=event,
        kind="closure",
        state="raised",
        distance_ahead_m=50.0,
        valid_from=None,
        valid_until=None,
        title=event,
    )


@pytest.fixture
async def gateway(redis_client: aioredis.Redis, prefix: str) -> AsyncIterator[int]:
    """A gateway served from this test's event loop on a free port."""
    port = free_port()
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_gateway(redis_client, prefix, KEYS, "127.0.0.1", port, stop, ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield port
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def _token(driver: str) -> str:
    return KEYS.issue(driver, time.time(), 600)


async def test_driver_receives_live_alerts_and_only_its_own(
    gateway: int, redis_client: aioredis.Redis, prefix: str
) -> None:
    """Alerts appended while connected arrive in order; another driver's never do."""
    outbox = RedisOutbox(redis_client, prefix)
    async with DriverClient(gateway, "alice", _token("alice")) as alice:
        await alice.wait_hello(5)
        await outbox.append([_alert("alice", "e1"), _alert("bob", "e2"), _alert("alice", "e3")])
        await alice.wait_for(lambda a: a["event_id"] == "e3", timeout=5)
    assert [m["alert"]["event_id"] for m in alice.alerts] == ["e1", "e3"]


async def test_resume_from_last_id_gets_exactly_the_missed_alerts(
    gateway: int, redis_client: aioredis.Redis, prefix: str
) -> None:
    """A driver reconnecting with its last id receives what it missed, once, in order."""
    outbox = RedisOutbox(redis_client, prefix)
    await outbox.append([_alert("carol", "e1"), _alert("carol", "e2")])
    async with DriverClient(gateway, "carol", _token("carol")) as first:
        await first.wait_for(lambda a: a["event_id"] == "e2", timeout=5)
    last_id = first.alerts[-1]["id"]
    await outbox.append([_alert("carol", "e3"), _alert("carol", "e4")])
    async with DriverClient(gateway, "carol", _token("carol"), last_id=last_id) as second:
        await second.wait_for(lambda a: a["event_id"] == "e4", timeout=5)
        await outbox.append([_alert("carol", "e5")])  # a marker: anything sent twice comes first
        await second.wait_for(lambda a: a["event_id"] == "e5", timeout=5)
    assert [m["alert"]["event_id"] for m in second.alerts] == ["e3", "e4", "e5"]


@pytest.mark.parametrize(
    ("case", "token", "code"),
    [
        ("no token", "", 4401),
        ("forged token", _token("dave")[:-3] + "xyz", 4401),
        ("expired token", KEYS.issue("dave", time.time() - 7200, 60), 4401),
        ("another driver's token", _token("erin"), 4403),
    ],
)
async def test_bad_credentials_are_refused(gateway: int, case: str, token: str, code: int) -> None:
    """Missing, forged, expired and foreign tokens are closed with a code and a reason."""
    async with websockets.connect(
        f"ws://127.0.0.1:{gateway}/drivers/dave/alerts",
        additional_headers={"Authorization": f"Bearer {token}"} if token else {},
    ) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code and closed.value.rcvd.reason


async def test_unknown_paths_get_404(gateway: int) -> None:
    """Plain HTTP to an unknown path is a 404 that names the right path; /healthz is 200."""
    with pytest.raises(urllib.error.HTTPError) as missing:
        await asyncio.to_thread(urllib.request.urlopen, f"http://127.0.0.1:{gateway}/nope", timeout=5)
    assert missing.value.code == 404
    assert b"/drivers/" in missing.value.read()
    missing.value.close()
    with await asyncio.to_thread(
        urllib.request.urlopen, f"http://127.0.0.1:{gateway}/healthz", timeout=5
    ) as health:
        assert health.status == 200
