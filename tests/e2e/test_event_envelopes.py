"""corridor.events in both its forms reaches drivers: a single event from any producer (the interop
format) and Corridor's envelopes, whose bad records are dead-lettered alone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from stream.local.services import EmbeddedServices
from tests.support.drivers import DriverClient, token_for
from tests.support.stack import Stack, dead_letters, east_route, event_record, topic_records, worker_stack

pytestmark = pytest.mark.e2e

DRIVER = "envelope-driver"


@pytest.fixture(scope="module")
def stack(embedded_services: EmbeddedServices, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One deployment for the module: a worker, a gateway and the driver's route."""
    route = east_route("envelope-route", DRIVER)
    with worker_stack(embedded_services.info(), tmp_path_factory.mktemp("envelopes"), route) as running:
        yield running


def _event(event_id: str, at_m: float, **changes: Any) -> dict[str, Any]:
    return event_record(event_id, "interop", at_m, **changes)


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
    letters = await dead_letters(stack.deployment.settings, lambda r: tag in (r["raw"] or ""), 3)
    by_id = {orjson.loads(letter["raw"])["id"]: letter for letter in letters}
    assert {event_id: (r["reason"], r["where"][-3:]) for event_id, r in by_id.items()} == {
        f"interop:tz-{tag}": ("bad_timezone", "[1]"),
        f"interop:null-{tag}": ("null_position", "[3]"),
        f"interop:veh-{tag}": ("schema", "[4]"),
    }
    assert len(letters) == 3 and all(letter["source"] == "stream" for letter in letters)


async def test_the_workers_alerts_are_also_published_once_each_as_stored(stack: Stack) -> None:
    """A worker stores its alerts in the drivers' streams itself and still publishes each on
    corridor.alerts (for other readers), keyed ``stored`` so that its own reader passes them over:
    the driver gets the alert once, and the topic carries that same alert once."""
    event_id = f"interop:out-{uuid.uuid4().hex[:8]}"
    token = token_for(stack.deployment.env, DRIVER)
    async with DriverClient(stack.gateway_port, DRIVER, token) as driver:
        await _send(stack, [(event_id.encode(), orjson.dumps(_event(event_id, 2500)))])
        received = await driver.wait_for(lambda a: a["event_id"] == event_id, timeout=30)
        published = await topic_records(
            stack.deployment.settings, "alerts", lambda r: r.get("event_id") == event_id, 2, timeout=5
        )
    assert [key for key, _ in published] == [b"stored"]
    assert published[0][1] == received["alert"]
    assert [a["alert"]["event_id"] for a in driver.alerts].count(event_id) == 1
