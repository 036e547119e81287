"""corridor.events in both its forms reaches drivers: a single event from any producer (the interop
format) and Corridor's envelopes, whose bad records are dead-lettered alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas import Route, Vehicle
from stream.runtime.producer import Publisher
from stream.runtime.services import EmbeddedServices
from tests.support.drivers import DriverClient, token_for
from tests.support.geometry import lonlat, point
from tests.support.processes import Deployment, deployment_env

pytestmark = pytest.mark.e2e

DRIVER = "envelope-driver"


@dataclass
class Stack:
    """A worker and a gateway of one deployment, with the driver's route stored by the worker."""

    deployment: Deployment
    gateway_port: int


async def _register(deployment: Deployment) -> None:
    """Register the driver's route and wait until the worker has stored it."""
    import redis.asyncio as aioredis

    route = Route("envelope-route", DRIVER, tuple(lonlat([(0, 0), (4000, 0)])), Vehicle(weight_t=19))
    async with Publisher(deployment.settings) as pub:
        await pub.register_routes([route])
    client = aioredis.Redis.from_url(deployment.settings.resolved_redis_url())
    prefix = deployment.settings.redis_prefix
    try:
        for _ in range(600):
            found = [await client.hexists(f"{prefix}:state:routes:{p}", route.route_id) for p in range(4)]
            if any(found):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the route was never stored by the worker")
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def stack(embedded_services: EmbeddedServices, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One deployment for the module: a worker, a gateway and the driver's route."""
    workdir = tmp_path_factory.mktemp("envelopes")
    env = deployment_env(embedded_services.info(), workdir / "state")
    with Deployment(env, workdir) as deployment:
        deployment.start_worker()
        _, gateway_port = deployment.start_gateway()
        asyncio.run(_register(deployment))
        yield Stack(deployment, gateway_port)


def _event(event_id: str, at_m: float, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": event_id,
        "source": "interop",
        "kind": "closure",
        "geometry": point(at_m, 5),
        "valid_from": None,
        "valid_until": None,
        "status": "active",
        "title": event_id,
    }
    record.update(changes)
    return record


async def _send(stack: Stack, messages: list[tuple[bytes | None, bytes]]) -> None:
    """Send raw messages to the events topic with a plain aiokafka producer, as any producer could."""
    settings = stack.deployment.settings
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers())
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(settings.topic("events"), value, key=key)
    finally:
        await producer.stop()


async def _dead_letters(stack: Stack, tag: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    """The dead letters whose record names ``tag``, once ``count`` of them arrived (or the timeout)."""
    settings = stack.deployment.settings
    consumer = AIOKafkaConsumer(
        settings.topic("events.rejected"),
        bootstrap_servers=settings.bootstrap_servers(),
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found) < count and loop.time() < deadline:
            for messages in (await consumer.getmany(timeout_ms=300)).values():
                records = [orjson.loads(m.value) for m in messages]
                found += [r for r in records if tag in (r["raw"] or "")]
    finally:
        await consumer.stop()
    return found


async def test_a_single_event_from_a_plain_producer_reaches_the_driver(stack: Stack) -> None:
    """One normalized event keyed by its id, sent by a plain aiokafka producer, alerts the driver."""
    event_id = f"interop:single-{uuid.uuid4().hex[:8]}"
    token = token_for(stack.deployment.env, DRIVER)
    async with DriverClient(stack.gateway_port, DRIVER, token) as driver:
        await _send(stack, [(event_id.encode(), orjson.dumps(_event(event_id, 1500)))])
        alert = await driver.wait_for(lambda a: a["event_id"] == event_id, timeout=30)
    assert alert["alert"]["state"] == "raised" and alert["alert"]["driver_id"] == DRIVER


async def test_an_envelope_half_bad_dead_letters_its_bad_records_and_delivers_the_rest(stack: Stack) -> None:
    """Of an envelope's six records, the three bad ones are dead-lettered with their reasons and
    their index; the three good ones reach the driver."""
    tag = uuid.uuid4().hex[:8]
    good = [f"interop:good{n}-{tag}" for n in range(3)]
    records = [
        _event(good[0], 1000),
        _event(f"interop:tz-{tag}", 1100, timezone="Mars/Olympus", schedule={"everyday": ["08:00-09:00"]}),
        _event(good[1], 2000),
        _event(f"interop:null-{tag}", 1200, geometry={"type": "Point", "coordinates": [0, 0]}),
        _event(f"interop:veh-{tag}", 1300, vehicles="trucks"),
        _event(good[2], 3000),
    ]
    token = token_for(stack.deployment.env, DRIVER)
    async with DriverClient(stack.gateway_port, DRIVER, token) as driver:
        await _send(stack, [(None, orjson.dumps(records))])
        for event_id in good:
            await driver.wait_for(lambda a, event_id=event_id: a["event_id"] == event_id, timeout=30)
    letters = await _dead_letters(stack, tag, 3)
    by_id = {orjson.loads(letter["raw"])["id"]: letter for letter in letters}
    assert {event_id: (r["reason"], r["where"][-3:]) for event_id, r in by_id.items()} == {
        f"interop:tz-{tag}": ("bad_timezone", "[1]"),
        f"interop:null-{tag}": ("null_position", "[3]"),
        f"interop:veh-{tag}": ("schema", "[4]"),
    }
    assert len(letters) == 3 and all(letter["source"] == "stream" for letter in letters)
