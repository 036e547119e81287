"""A running worker and gateway of one deployment, with a driver's route stored, and its dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer

from schemas import Route, Vehicle
from stream.ingest.producer import Publisher
from stream.local.services import free_port
from stream.local.supervisor import Proc
from stream.runtime.settings import Settings
from tests.support.geometry import lonlat, point
from tests.support.processes import Deployment, deployment_env


@dataclass
class Stack:
    """A worker and a gateway of one deployment, with a driver's route stored by the worker."""

    deployment: Deployment
    worker: Proc
    worker_pid: int
    metrics_port: int
    gateway_port: int


def east_route(route_id: str, driver_id: str, length_m: float = 4000) -> Route:
    """A straight route eastward from the test origin, for a truck of 19 t."""
    return Route(
        route_id, driver_id, tuple((a, b) for a, b in lonlat([(0, 0), (length_m, 0)])), Vehicle(weight_t=19)
    )


def event_record(event_id: str, source: str, at_m: float = 1000, **changes: Any) -> dict[str, Any]:
    """A closure's JSON record at ``at_m`` metres along ``east_route``, titled by its id, with
    ``changes`` (good or bad) over it."""
    record: dict[str, Any] = {
        "id": event_id,
        "source": source,
        "kind": "closure",
        "geometry": point(at_m, 5),
        "valid_from": None,
        "valid_until": None,
        "status": "active",
        "title": event_id,
    }
    record.update(changes)
    return record


async def register_stored(deployment: Deployment, route: Route, timeout: float = 30) -> None:
    """Register a route and wait until the worker has stored it (so it has taken it)."""
    async with Publisher(deployment.settings) as pub:
        await pub.register_routes([route])
    client = aioredis.Redis.from_url(deployment.settings.resolved_redis_url())
    prefix, partitions = deployment.settings.redis_prefix, deployment.settings.partitions
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while loop.time() < deadline:
            for p in range(partitions):
                if await client.hexists(f"{prefix}:state:routes:{p}", route.route_id):
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"route {route.route_id} was never stored by the worker")
    finally:
        await client.aclose()


@contextmanager
def worker_stack(services: dict[str, str], workdir: Path, route: Route) -> Iterator[Stack]:
    """A deployment of its own with a worker (metrics and /healthz on a free port), a gateway and
    ``route`` stored; everything stops on exit."""
    with Deployment(deployment_env(services, workdir / "state"), workdir) as deployment:
        metrics_port = free_port()
        worker = deployment.start_worker(metrics_port=metrics_port)
        _, gateway_port = deployment.start_gateway()
        asyncio.run(register_stored(deployment, route))
        yield Stack(deployment, worker, worker.popen.pid, metrics_port, gateway_port)


async def dead_letters(
    settings: Settings, match: Callable[[dict[str, Any]], bool], count: int = 1, timeout: float = 30
) -> list[dict[str, Any]]:
    """The records of the dead-letter topic that ``match`` accepts, once ``count`` arrived (fewer
    at the timeout: the caller's assertion says what is missing)."""
    found = await topic_records(settings, "events.rejected", match, count, timeout)
    return [record for _, record in found]


async def topic_records(
    settings: Settings,
    topic: str,
    match: Callable[[dict[str, Any]], bool],
    count: int = 1,
    timeout: float = 30,
) -> list[tuple[bytes | None, dict[str, Any]]]:
    """(message key, record) of the records of a topic that ``match`` accepts, a message being one
    record or an envelope of them, once ``count`` arrived (fewer at the timeout)."""
    consumer = AIOKafkaConsumer(
        settings.topic(topic),
        bootstrap_servers=settings.bootstrap_servers(),
        auto_offset_reset="earliest",
        # A topic's partitions missing from the first metadata answer are found within a second,
        # not after aiokafka's default five minutes.
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    found: list[tuple[bytes | None, dict[str, Any]]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found) < count and loop.time() < deadline:
            for messages in (await consumer.getmany(timeout_ms=300)).values():
                for message in messages:
                    data = orjson.loads(message.value)
                    records = data if isinstance(data, list) else [data]
                    found += [(message.key, r) for r in records if match(r)]
    finally:
        await consumer.stop()
    return found
