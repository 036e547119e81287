"""The worker's agents against the real broker and Redis: both join directions, clearing, restarts."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis

from schemas import Event, Route, Vehicle
from stream.ingest.producer import Publisher
from stream.local.services import EmbeddedServices
from stream.runtime.redis_keys import driver_stream_key, partitions_key
from tests.support.facts import index_holds, taken
from tests.support.geometry import line, lonlat, point
from tests.support.kafka import read_topic
from tests.support.processes import Deployment


def _route(route_id: str, driver_id: str, y_m: float) -> Route:
    coords = tuple((a, b) for a, b in lonlat([(0, y_m), (1000, y_m)]))
    return Route(route_id, driver_id, coords, Vehicle(weight_t=19))


def _closure(event_id: str, x_m: float, y_m: float) -> Event:
    return Event(id=event_id, source="it", kind="closure", geometry=point(x_m, y_m), title=event_id)


async def _stream(client: aioredis.Redis, prefix: str, driver: str) -> list[tuple[str, str]]:
    entries = await client.xrange(driver_stream_key(prefix, driver))
    alerts = [orjson.loads(fields[b"a"]) for _, fields in entries]
    return [(a["event_id"], a["state"]) for a in alerts]


async def _wait_stream(
    client: aioredis.Redis,
    prefix: str,
    driver: str,
    expected: list[tuple[str, str]],
    timeout: float = 15,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    got: list[tuple[str, str]] = []
    while loop.time() < deadline:
        got = await _stream(client, prefix, driver)
        if len(got) >= len(expected):
            break
        await asyncio.sleep(0.05)
    assert got == expected


async def test_both_join_directions(deployment: Deployment, redis_client: aioredis.Redis) -> None:
    """An event on a registered route alerts; a route registered over an active event alerts too.

    Each direction is made certain: the events are published once the index holds route ``ra``
    (the event side of the join finds it), and route ``rb`` once the index holds both events (the
    route side finds ``on-b``)."""
    worker = deployment.start_worker()
    prefix = deployment.settings.topic_prefix
    async with Publisher(deployment.settings) as pub:
        await pub.register_routes([_route("ra", "da", 0)])
        await index_holds(worker, routes=1)
        await pub.events([_closure("it:on-a", 500, 10), _closure("it:on-b", 500, 3010)])
        await _wait_stream(redis_client, prefix, "da", [("it:on-a", "raised")])
        await index_holds(worker, routes=1, events=2)
        await pub.register_routes([_route("rb", "db", 3000)])
        await _wait_stream(redis_client, prefix, "db", [("it:on-b", "raised")])
    # rb's batch stored every alert it made in one call: nothing more for da came with it
    assert await _stream(redis_client, prefix, "da") == [("it:on-a", "raised")]
    # the worker noted how many route partitions there are, for the dispatch map
    assert await redis_client.get(partitions_key(prefix)) == str(deployment.settings.partitions).encode()


async def test_cancel_clears_and_replays_do_not_duplicate(
    deployment: Deployment, redis_client: aioredis.Redis
) -> None:
    """The same event published twice raises once; cancelling it clears the alert once."""
    worker = deployment.start_worker()
    prefix = deployment.settings.topic_prefix
    closure = _closure("it:c", 300, 0)
    async with Publisher(deployment.settings) as pub:
        await pub.register_routes([_route("r1", "d1", 0)])
        await index_holds(worker, routes=1)
        await pub.events([closure])
        await pub.events([closure])
        await _wait_stream(redis_client, prefix, "d1", [("it:c", "raised")])
        await pub.events([replace(closure, status="cancelled")])
        await _wait_stream(redis_client, prefix, "d1", [("it:c", "raised"), ("it:c", "cleared")])


async def test_killed_worker_rebuilds_its_index_from_redis(
    deployment: Deployment, redis_client: aioredis.Redis
) -> None:
    """After kill -9 and a restart, routes are still known and old alerts are not sent again."""
    worker = deployment.start_worker()
    prefix = deployment.settings.topic_prefix
    async with Publisher(deployment.settings) as pub:
        await pub.register_routes([_route("r1", "d1", 0)])
        await index_holds(worker, routes=1)
        await pub.events([_closure("it:before", 200, 0)])
        await _wait_stream(redis_client, prefix, "d1", [("it:before", "raised")])
        worker.stop(signal.SIGKILL)
        deployment.start_worker("worker-2")
        await pub.events(
            [
                Event(
                    id="it:after",
                    source="it",
                    kind="closure",
                    title="after",
                    geometry=line([(700, -40), (700, 40)]),
                    valid_until=datetime(2100, 1, 1, tzinfo=UTC),
                ),
            ]
        )
        # what the rebuild sent again would stand before it:after (alerts of the rebuild are
        # stored before the new worker reads the broadcast): the stream holds exactly these two
        await _wait_stream(redis_client, prefix, "d1", [("it:before", "raised"), ("it:after", "raised")])


async def test_malformed_messages_go_to_the_dead_letter_topic(
    deployment: Deployment, redis_client: aioredis.Redis
) -> None:
    """Garbage on the events and routes topics is dead-lettered with its reason; good records flow."""
    from aiokafka import AIOKafkaProducer

    worker = deployment.start_worker()
    settings = deployment.settings
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers())
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic("events"), b"{not json", key=b"junk")
        await producer.send_and_wait(settings.topic("routes"), b'{"op": "teleported"}', key=b"r9")
    finally:
        await producer.stop()
    async with Publisher(settings) as pub:
        await pub.register_routes([_route("r1", "d1", 0)])
        await index_holds(worker, routes=1)
        await pub.events([_closure("it:good", 400, 0)])
    await _wait_stream(redis_client, settings.topic_prefix, "d1", [("it:good", "raised")])
    records = await read_topic(settings, "events.rejected", 2)
    by_source = {r["source"]: r for r in records}
    assert set(by_source) == {"stream", "routes"}
    assert by_source["stream"]["raw"] == "{not json" and by_source["stream"]["reason"] == "undecodable"
    assert "teleported" in by_source["routes"]["error"] and by_source["routes"]["where"].startswith(
        settings.topic("routes")
    )


async def test_malformed_alerts_are_dead_lettered_and_the_rest_stored(
    deployment: Deployment, redis_client: aioredis.Redis
) -> None:
    """An alert envelope that is not JSON, or an alert without a driver or a known state, is
    dead-lettered with its reason; the good alerts of the same envelope reach their driver."""
    from aiokafka import AIOKafkaProducer

    from schemas import Alert, alert_id_for
    from schemas.codec import to_plain

    deployment.start_worker()
    settings = deployment.settings
    good = to_plain(
        Alert(alert_id_for("rz", "it:z"), "rz", "dz", "it:z", "closure", "raised", 10.0, None, None, "z")
    )
    envelope = orjson.dumps([{**good, "driver_id": None}, good, {**good, "state": "exploded"}])
    async with Publisher(settings) as pub:  # the worker is up once it has created its topics
        await pub.register_routes([_route("r1", "d1", 0)])
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers())
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic("alerts.in"), b"[{not json", key=b"alerts")
        await producer.send_and_wait(settings.topic("alerts.in"), envelope, key=b"alerts")
    finally:
        await producer.stop()
    await _wait_stream(redis_client, settings.topic_prefix, "dz", [("it:z", "raised")])
    records = await read_topic(settings, "events.rejected", 3)
    assert sorted(r["reason"] for r in records) == ["invalid_alert"] * 3
    errors = " ".join(r["error"] for r in records)
    assert "not an alert envelope" in errors and "driver_id" in errors and "exploded" in errors
    assert all(r["where"].startswith(settings.topic("alerts.in")) for r in records)


async def test_a_worker_reads_alerts_in_and_never_its_own_alerts(
    deployment: Deployment, redis_client: aioredis.Redis
) -> None:
    """A worker's own alerts reach their driver and ``corridor.alerts`` (an output); another
    producer's alert on ``corridor.alerts.in`` reaches its driver; the worker took messages from
    the input only, never fetching its own output back."""
    from aiokafka import AIOKafkaProducer

    from schemas import Alert, alert_id_for
    from schemas.codec import to_plain
    from stream.local.services import free_port
    from tests.support.drivers import metric

    metrics_port = free_port()
    deployment.start_worker(metrics_port=metrics_port)
    settings, prefix = deployment.settings, deployment.settings.topic_prefix
    async with Publisher(settings) as pub:
        await pub.register_routes([_route("ro", "do", 0)])
        await pub.events([_closure("it:own", 500, 0)])
    await _wait_stream(redis_client, prefix, "do", [("it:own", "raised")])
    published = await read_topic(settings, "alerts", 1)
    assert published[0]["event_id"] == "it:own"  # the output topic has the worker's alert
    foreign = to_plain(
        Alert(alert_id_for("rf", "it:f"), "rf", "df", "it:f", "closure", "raised", 10.0, None, None, "f")
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers())
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic("alerts.in"), orjson.dumps(foreign), key=b"df")
    finally:
        await producer.stop()
    await _wait_stream(redis_client, prefix, "df", [("it:f", "raised")])

    def taken(topic: str) -> float:
        return metric(metrics_port, "corridor_messages_processed_total", f'topic="{settings.topic(topic)}"')

    assert taken("alerts.in") >= 1
    assert taken("alerts") == 0  # never fetched back: no sample at all


async def test_redis_restart_loses_nothing(
    deployment: Deployment, redis_client: aioredis.Redis, embedded_services: EmbeddedServices
) -> None:
    """Events published while Redis restarts are matched and delivered once Redis is back."""
    worker = deployment.start_worker()
    settings = deployment.settings
    prefix = settings.topic_prefix
    async with Publisher(settings) as pub:
        await pub.register_routes([_route("r1", "d1", 0)])
        await index_holds(worker, routes=1)
        await pub.events([_closure("it:first", 100, 0)])
        await _wait_stream(redis_client, prefix, "d1", [("it:first", "raised")])
        await asyncio.to_thread(embedded_services.redis.stop)
        await pub.events([_closure("it:during", 500, 0)])
        await taken(worker, settings.topic("events"), 2)  # taken while Redis is down
        await asyncio.to_thread(embedded_services.restart_redis)
        await pub.events([_closure("it:after", 900, 0)])
        expected = [("it:first", "raised"), ("it:during", "raised"), ("it:after", "raised")]
        await _wait_stream(redis_client, prefix, "d1", expected, timeout=30)
        # a marker after them: anything stored twice on the way would stand before it
        await pub.events([_closure("it:marker", 950, 0)])
        await _wait_stream(redis_client, prefix, "d1", [*expected, ("it:marker", "raised")], timeout=30)
