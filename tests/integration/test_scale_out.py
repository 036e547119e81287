"""Several workers share the partitions: each route is matched once, and a killed worker loses nothing."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis

from schemas import Event, Route, Vehicle
from stream.core.engine import Engine
from stream.ingest.producer import Publisher
from stream.runtime.redis_keys import driver_stream_key
from tests.support.facts import routes_held
from tests.support.geometry import lonlat, point
from tests.support.processes import Deployment

ROUTES = [
    Route(f"r{i}", f"d{i % 7}", tuple((a, b) for a, b in lonlat([(0, 200 * i), (3000, 200 * i)])), Vehicle())
    for i in range(24)
]


def _events(tag: str, count: int) -> list[Event]:
    """Closures spread over the routes' area; some fall between routes and concern none."""
    return [
        Event(
            id=f"it:{tag}{n}",
            source="it",
            kind="closure",
            title=f"{tag}{n}",
            geometry=point(100 + (n * 379) % 2900, (n * 137) % (200 * 24)),
        )
        for n in range(count)
    ]


def _expected(events: list[Event]) -> set[tuple[str, str, str]]:
    """What a single in-process engine raises for these routes and events: the oracle."""
    engine = Engine()
    now = datetime.now(UTC)
    for route in ROUTES:
        engine.upsert_route(route, now)
    return {(a.driver_id, a.route_id, a.event_id) for a in engine.apply_events(events, now)}


async def _delivered(client: aioredis.Redis, prefix: str) -> list[tuple[str, str, str]]:
    found = []
    for driver in sorted({r.driver_id for r in ROUTES}):
        for _, fields in await client.xrange(driver_stream_key(prefix, driver)):
            alert = orjson.loads(fields[b"a"])
            assert alert["state"] == "raised", alert
            found.append((alert["driver_id"], alert["route_id"], alert["event_id"]))
    return found


MARKERS = ("it:m", "it:n")  # the event ids of the markers of both phases


def _markers(tag: str, x_m: float) -> list[Event]:
    """One closure at the far end of each route, concerning that route only (they are 200 m apart)."""
    return [
        Event(id=f"it:{tag}{i}", source="it", kind="closure", title=f"{tag}{i}", geometry=point(x_m, 200 * i))
        for i in range(len(ROUTES))
    ]


async def _wait_for(client: aioredis.Redis, prefix: str, count: int, timeout: float = 40) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and len(await _delivered(client, prefix)) < count:
        await asyncio.sleep(0.1)


async def _settled(
    pub: Publisher, client: aioredis.Redis, prefix: str, count: int, tag: str, x_m: float
) -> list[tuple[str, str, str]]:
    """What was delivered once ``count`` alerts are there, without the markers then published on
    every route: a route's worker matches its marker after everything before it, so an alert
    stored twice would stand before the marker in its driver's stream."""
    await _wait_for(client, prefix, count)
    markers = _markers(tag, x_m)
    await pub.events(markers)
    await _wait_for(client, prefix, count + len(markers), timeout=60)
    return [d for d in await _delivered(client, prefix) if not d[2].startswith(MARKERS)]


async def test_two_workers_then_one_killed(deployment: Deployment, redis_client: aioredis.Redis) -> None:
    """Two workers deliver exactly the oracle's alerts; after kill -9 of one, the other takes over."""
    prefix = deployment.settings.topic_prefix
    first = deployment.start_worker("worker-1")
    second = deployment.start_worker("worker-2")
    before, after = _events("a", 40), _events("b", 40)
    expected_before = _expected(before)
    assert len(expected_before) > 10
    async with Publisher(deployment.settings) as pub:
        await pub.register_routes(ROUTES)
        await routes_held([first, second], len(ROUTES))
        await pub.events(before)
        delivered = await _settled(pub, redis_client, prefix, len(expected_before), "m", 2990)
        assert sorted(delivered) == sorted(expected_before)
        first.stop(signal.SIGKILL)
        await pub.events(after)
        expected_all = expected_before | _expected(after)
        count = len(expected_all) + len(ROUTES)  # with the first markers
        delivered = await _settled(pub, redis_client, prefix, count, "n", 2980)
    assert len(delivered) == len(set(delivered)), "an alert was delivered twice"
    assert set(delivered) == expected_all
