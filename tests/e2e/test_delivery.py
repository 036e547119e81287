"""Driver delivery with real Redis and real gateway processes: resume, isolation, failover, slowness."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest

from stream.commands.listen import follow
from stream.local.services import free_port
from stream.worker.outbox import RedisOutbox
from tests.support.drivers import DriverClient, alert_for, metric, token_for, until
from tests.support.processes import Deployment

pytestmark = pytest.mark.e2e


async def _append(outbox: RedisOutbox, driver: str, *events: str, title: str | None = None) -> list[str]:
    stored = await outbox.append([alert_for(driver, e, title) for e in events])
    ids = [stream_id for _, stream_id in stored]
    assert all(ids), "every alert is new, so every one is stored"
    return [i for i in ids if i]


def _events(client: DriverClient) -> list[str]:
    return [m["alert"]["event_id"] for m in client.alerts]


async def test_reconnect_with_last_id_receives_exactly_the_missed_alerts(
    deployment: Deployment, outbox: RedisOutbox
) -> None:
    """A driver back from a tunnel gets what it missed, once, in order, then live alerts."""
    _, port = deployment.start_gateway()
    token = token_for(deployment.env, "truck-1")
    await _append(outbox, "truck-1", "e1", "e2")
    async with DriverClient(port, "truck-1", token) as first:
        await first.wait_for(lambda a: a["event_id"] == "e2", timeout=10)
    assert _events(first) == ["e1", "e2"]
    missed = await _append(outbox, "truck-1", "e3", "e4", "e5")
    async with DriverClient(port, "truck-1", token, last_id=first.alerts[-1]["id"]) as second:
        await second.wait_for(lambda a: a["event_id"] == "e5", timeout=10)
        await _append(outbox, "truck-1", "live")
        await second.wait_for(lambda a: a["event_id"] == "live", timeout=10)
    assert _events(second) == ["e3", "e4", "e5", "live"]
    assert [m["id"] for m in second.alerts][:3] == missed


async def test_driver_a_token_cannot_read_driver_b(deployment: Deployment, outbox: RedisOutbox) -> None:
    """Driver A's token on driver B's path is refused with 4403 before any of B's alerts is sent."""
    _, port = deployment.start_gateway()
    await _append(outbox, "truck-b", "secret-1", "secret-2")
    token_a = deployment.run("token", "issue", "--driver", "truck-a").stdout.decode().strip()
    async with DriverClient(port, "truck-b", token_a) as intruder:
        await intruder.wait_closed(timeout=10)
    assert intruder.close_code == 4403
    assert "another driver" in intruder.close_reason
    assert intruder.messages == []
    async with DriverClient(port, "truck-a", token_a) as owner:
        await _append(outbox, "truck-a", "mine")
        await owner.wait_for(lambda a: a["event_id"] == "mine", timeout=10)
    assert _events(owner) == ["mine"]


async def test_killed_gateway_driver_resumes_on_the_other_without_loss(
    deployment: Deployment, outbox: RedisOutbox
) -> None:
    """SIGKILL the driver's gateway mid-stream: it resumes on the other, nothing lost or doubled."""
    first, port_1 = deployment.start_gateway("gateway-1")
    _, port_2 = deployment.start_gateway("gateway-2")
    token = token_for(deployment.env, "truck-k")
    seen: list[dict[str, Any]] = []
    stop = asyncio.Event()
    urls = [f"ws://127.0.0.1:{port_1}", f"ws://127.0.0.1:{port_2}"]
    listener = asyncio.create_task(follow(urls, "truck-k", token, seen.append, stop=stop))
    alerts = lambda: [m for m in seen if m["type"] == "alert"]  # noqa: E731
    await until(lambda: any(m["type"] == "hello" for m in seen), 10, "the first hello")
    produced: list[str] = []
    for n in range(120):
        produced += await _append(outbox, "truck-k", f"k{n}")
        if n == 40:
            await until(lambda: len(alerts()) >= 30, 10, "alerts before the kill")
            first.stop(signal.SIGKILL)
        await asyncio.sleep(0.01)  # a steady trickle of alerts, not a synchronisation
    await until(lambda: len(alerts()) >= len(produced), 20, "every alert after the failover")
    stop.set()
    await asyncio.wait_for(listener, 10)
    received = [m["id"] for m in alerts()]
    assert received == produced
    drops = [m for m in seen if m["type"] == "closed"]
    assert drops and drops[0]["url"].endswith(str(port_1))
    hellos = [m for m in seen if m["type"] == "hello"]
    assert len(hellos) == 2 and hellos[1]["last_id"] != "0"


async def test_slow_reader_is_cut_off_and_others_keep_receiving(
    deployment: Deployment, outbox: RedisOutbox
) -> None:
    """A driver that stops reading is closed with 4408 and its last id; a fast one is unaffected."""
    deployment.env.update({"CORRIDOR_GATEWAY_QUEUE_MAX": "128", "CORRIDOR_GATEWAY_WRITE_LIMIT": "8192"})
    metrics_port = free_port()
    _, port = deployment.start_gateway(metrics_port=metrics_port)
    slow = DriverClient(port, "truck-slow", token_for(deployment.env, "truck-slow"), paused=True, rcvbuf=4096)
    fast = DriverClient(port, "truck-fast", token_for(deployment.env, "truck-fast"))
    async with slow, fast:
        latencies: list[float] = []
        big = "x" * 16_000
        for n in range(400):  # at most ~6 MB for the slow one: more than the socket buffers hold
            await _append(outbox, "truck-slow", *(f"s{n}-{i}" for i in range(10)), title=big)
            sent = time.time()
            await _append(outbox, "truck-fast", f"f{n}")
            got = await fast.wait_for(lambda a, n=n: a["event_id"] == f"f{n}", timeout=5)
            latencies.append(fast.received_at[fast.messages.index(got)] - sent)
            if metric(metrics_port, "corridor_gateway_queue_overflows_total") >= 1:
                break
        else:
            pytest.fail("the slow reader was never cut off")
        slow.resume_reading()
        await slow.wait_closed(timeout=10)
        await _append(outbox, "truck-fast", "after")
        await fast.wait_for(lambda a: a["event_id"] == "after", timeout=5)
    assert slow.close_code == 4408
    resume_from = slow.close_reason.split("last_id=", 1)[1]
    assert slow.alerts and slow.alerts[-1]["id"] == resume_from
    assert fast.closed is None or fast.close_code in (1000, None)
    assert max(latencies) < 1.0, f"fast driver delayed: {max(latencies):.2f} s"
    assert _events(fast)[-1] == "after"


async def test_sigterm_drains_drivers_with_service_restart(
    deployment: Deployment, outbox: RedisOutbox
) -> None:
    """SIGTERM closes drivers with 1012 and their last id, and the gateway exits promptly."""
    gateway, port = deployment.start_gateway()
    async with DriverClient(port, "truck-d", token_for(deployment.env, "truck-d")) as driver:
        await _append(outbox, "truck-d", "d1")
        await driver.wait_for(lambda a: a["event_id"] == "d1", timeout=10)
        started = time.monotonic()
        gateway.popen.send_signal(signal.SIGTERM)
        await driver.wait_closed(timeout=10)
        code = await asyncio.to_thread(gateway.popen.wait, 10)
    assert driver.close_code == 1012
    assert driver.close_reason.endswith(f"last_id={driver.alerts[-1]['id']}")
    assert code == 0 and time.monotonic() - started < 8
