"""Hostile records on the worker's topics and in its Redis state cost only themselves.

Each bad record is sent in the same batch as a good event, and another good event follows it: both
good events reach their driver's websocket, the bad record is on the dead-letter topic with its
reason, and the worker that received it is the same process, healthy.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from schemas import Event, Route, Vehicle
from stream.ingest.producer import Publisher
from stream.local.services import EmbeddedServices, free_port
from tests.support.drivers import DriverClient, token_for
from tests.support.geometry import line, lonlat, point
from tests.support.processes import Deployment, wait_until
from tests.support.stack import Stack, dead_letters, east_route, event_record, worker_stack

pytestmark = pytest.mark.e2e

DRIVER = "hostile-driver"
BIG = 35 * 1024 * 1024


@pytest.fixture(scope="module")
def stack(embedded_services: EmbeddedServices, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One deployment for the module: a worker, a gateway and the hostile driver's route."""
    with worker_stack(embedded_services.info(), tmp_path_factory.mktemp("hostile"), _route()) as running:
        yield running


def _route() -> Route:
    return east_route("hostile-route", DRIVER)


def _event(event_id: str, **changes: Any) -> dict[str, Any]:
    return event_record(event_id, "hostile", **changes)


def _deep(depth: int) -> bytes:
    body = b'{"x":' * depth + b"1" + b"}" * depth
    return (
        b'{"id":"hostile:deep","source":"hostile","kind":"closure","geometry":'
        + json.dumps(point(1000, 5)).encode()
        + b',"valid_from":null,"valid_until":null,"status":"active","details":'
        + body
        + b"}"
    )


PARIS_LINE = lonlat([(0, 0), (100, 0)])
# (case, the bad message's bytes, the reason its dead letter gives)
CASES: list[tuple[str, bytes, str]] = [
    ("a number", b"5", "not_an_object"),
    ("a number in an envelope", b"[5]", "not_an_object"),
    ("not JSON", b"\xff\xfe{garbage", "undecodable"),
    ("schedule a list", orjson.dumps(_event("hostile:sched", schedule=["08:00-12:00"])), "bad_schedule"),
    ("vehicles a string", orjson.dumps(_event("hostile:veh", vehicles="trucks")), "schema"),
    (
        "geometry not an object",
        orjson.dumps(_event("hostile:geom", geometry="POINT(2 48)")),
        "invalid_geometry",
    ),
    (
        "time zone on Mars",
        orjson.dumps(_event("hostile:tz", schedule={"everyday": ["00:00-24:00"]}, timezone="Mars/Olympus")),
        "bad_timezone",
    ),
    (
        "a vertex at 0,0",
        orjson.dumps(
            _event("hostile:null", geometry={"type": "LineString", "coordinates": [*PARIS_LINE, [0, 0]]})
        ),
        "null_position",
    ),
    (
        "a 300 km line",
        orjson.dumps(
            _event(
                "hostile:long", geometry={"type": "LineString", "coordinates": [[2.35, 48.85], [6.4, 48.85]]}
            )
        ),
        "too_large",
    ),
    ("a 35 MB event", orjson.dumps(_event("hostile:big", title="x" * BIG)), "too_large"),
    ("details nested 255 deep", _deep(255), "details_too_deep"),
]


async def _send_events(settings: Any, messages: list[tuple[bytes, bytes]]) -> None:
    """Send raw messages to the events topic in one batch, as any producer could."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers(), max_request_size=BIG + 1024 * 1024, linger_ms=50
    )
    await producer.start()
    try:
        futures = [await producer.send(settings.topic("events"), value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _dead_letter(settings: Any, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first dead letter ``match`` accepts, waiting for it."""
    found = await dead_letters(settings, match)
    assert found, "no such dead letter"
    return found[0]


def _health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _assert_same_healthy_worker(stack: Stack) -> None:
    assert stack.worker.popen.poll() is None, stack.worker.output()[-2000:]
    assert stack.worker.popen.pid == stack.worker_pid
    status, body = _health(stack.metrics_port)
    assert status == 200, body
    assert all(agent["running"] for agent in body["agents"].values())


@pytest.mark.parametrize(("case", "bad", "reason"), CASES, ids=[c[0] for c in CASES])
async def test_bad_event_costs_only_itself(stack: Stack, case: str, bad: bytes, reason: str) -> None:
    """The bad record is dead-lettered with its reason; the good events beside and after it arrive."""
    settings = stack.deployment.settings
    tag = uuid.uuid4().hex[:8]
    beside, after = f"hostile:beside-{tag}", f"hostile:after-{tag}"
    token = token_for(stack.deployment.env, DRIVER)
    async with DriverClient(stack.gateway_port, DRIVER, token) as driver:
        await _send_events(
            settings,
            [(b"bad", bad), (beside.encode(), orjson.dumps(_event(beside, geometry=point(1500, 5))))],
        )
        await _send_events(settings, [(after.encode(), orjson.dumps(_event(after, geometry=point(2500, 5))))])
        await driver.wait_for(lambda a: a["event_id"] == beside, timeout=30)
        await driver.wait_for(lambda a: a["event_id"] == after, timeout=30)
    raw = bad[1:-1] if bad.startswith(b"[") else bad  # a record of an envelope travels alone
    letter = await _dead_letter(
        settings, lambda r: r["reason"] == reason and r["raw"][:64] == raw[:64].decode("utf-8", "replace")
    )
    assert letter["source"] == "stream" and letter["error"]
    assert len(letter["raw"]) <= 4096
    _assert_same_healthy_worker(stack)


async def test_bad_route_message_costs_only_itself(stack: Stack) -> None:
    """A route with a vertex at 0,0 is dead-lettered; the good route beside it is matched."""
    settings = stack.deployment.settings
    tag = uuid.uuid4().hex[:8]
    driver_id = f"hostile-{tag}"
    good = Route(
        f"route-{tag}", driver_id, tuple((a, b) for a, b in lonlat([(0, 20), (4000, 20)])), Vehicle()
    )
    bad = {
        "op": "registered",
        "route_id": f"bad-{tag}",
        "at": "2026-05-04T08:00:00Z",
        "route": {"route_id": f"bad-{tag}", "driver_id": "x", "coordinates": [lonlat([(0, 0)])[0], [0, 0]]},
    }
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers())
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic("routes"), orjson.dumps(bad), key=bad["route_id"].encode()
        )
    finally:
        await producer.stop()
    async with Publisher(settings) as pub:
        await pub.register_routes([good])
        await pub.events([Event(f"hostile:r-{tag}", "hostile", "closure", point(3000, 20), title="on it")])
    async with DriverClient(
        stack.gateway_port, driver_id, token_for(stack.deployment.env, driver_id)
    ) as driver:
        await driver.wait_for(lambda a: a["event_id"] == f"hostile:r-{tag}", timeout=30)
    letter = await _dead_letter(settings, lambda r: f"bad-{tag}" in (r["raw"] or ""))
    assert letter["reason"] == "null_position" and letter["source"] == "routes"
    _assert_same_healthy_worker(stack)


async def test_poisoned_state_is_quarantined_and_never_replayed(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Bad records already in Redis (an older version's, or written by hand) do not stop a rebuild:
    they are quarantined and dead-lettered, and the good stored event still reaches its driver."""
    settings = deployment.settings
    prefix = settings.redis_prefix
    client = aioredis.Redis.from_url(settings.resolved_redis_url())
    poison = _event("hostile:poison", schedule={"everyday": ["00:00-24:00"]}, timezone="Mars/Olympus")
    good = _event("hostile:stored", geometry=line([(900, -20), (900, 20)]))
    try:
        await client.hset(
            f"{prefix}:state:events",
            mapping={
                "hostile:poison": orjson.dumps({"seq": 1, "event": poison}),
                "hostile:junk": b"{not json",
                "hostile:stored": orjson.dumps({"seq": 2, "event": good}),
            },
        )
        await client.hset(f"{prefix}:state:routes:0", "bad-route", b'{"op": "registered", "route_id": 5}')
        metrics_port = free_port()
        worker = deployment.start_worker(metrics_port=metrics_port)
        _, gateway_port = deployment.start_gateway()
        quarantined = await client.hkeys(f"{prefix}:state:quarantine")
        assert sorted(quarantined) == [b"e:hostile:junk", b"e:hostile:poison", b"r:0:bad-route"]
        assert await client.hkeys(f"{prefix}:state:events") == [b"hostile:stored"]
        async with Publisher(settings) as pub:
            await pub.register_routes([_route()])
        async with DriverClient(gateway_port, DRIVER, token_for(deployment.env, DRIVER)) as driver:
            await driver.wait_for(lambda a: a["event_id"] == "hostile:stored", timeout=30)
        letter = await _dead_letter(settings, lambda r: r["where"] == "redis e:hostile:poison")
        assert letter["reason"] == "quarantined" and "time zone" in letter["error"]
        worker.stop()
        again_port = free_port()
        again = deployment.start_worker("worker-again", metrics_port=again_port)  # rebuilds from the state
        wait_until(lambda: _health(again_port)[0] == 200, 30, "the restarted worker's health")
        assert "quarantined stored" not in again.output()  # nothing bad was left to replay
    finally:
        await client.aclose()


async def test_foreign_entries_on_the_broadcast_cost_only_themselves(stack: Stack) -> None:
    """Entries another client adds to the event broadcast (not JSON, empty, without the envelope
    field), and a tombstone on the events topic, are dead-lettered; the worker goes on reading
    both, numbering goes on after them, and the next event reaches the driver."""
    settings = stack.deployment.settings
    tag = uuid.uuid4().hex[:8]
    after = f"hostile:after-broadcast-{tag}"
    token = token_for(stack.deployment.env, DRIVER)
    client = aioredis.Redis.from_url(settings.resolved_redis_url())
    stream = f"{settings.redis_prefix}:state:broadcast:stream"
    try:
        for fields in ({"e": f"not json {tag}"}, {"e": ""}, {"other": tag}):
            await client.xadd(stream, fields)  # type: ignore[arg-type]
    finally:
        await client.aclose()
    async with DriverClient(stack.gateway_port, DRIVER, token) as driver:
        await _send_events(settings, [(tag.encode(), None)])  # type: ignore[list-item]
        await _send_events(settings, [(after.encode(), orjson.dumps(_event(after, geometry=point(3500, 5))))])
        await driver.wait_for(lambda a: a["event_id"] == after, timeout=30)
    letter = await _dead_letter(settings, lambda r: r["raw"] == f"not json {tag}")
    assert letter["reason"] == "undecodable" and letter["where"].startswith("broadcast#")
    empty = await dead_letters(settings, lambda r: r["raw"] == "" and r["reason"] == "undecodable", 3)
    assert {r["where"].split("#")[0].split("/")[0].rsplit(".", 1)[-1] for r in empty} == {
        "broadcast",
        "events",
    }
    _assert_same_healthy_worker(stack)
