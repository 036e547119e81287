"""The dispatch map's data against bad records stored in Redis: skipped, counted, the rest served."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from schemas import Event
from stream.core.partition import StampedEvent
from stream.gateway.server import GatewayOptions, run_gateway
from stream.gateway.tokens import Keyring
from stream.local.services import free_port
from stream.runtime.stamped import encode_stamped

KEYS = Keyring.parse("gw:gateway-records-secret-0123456789abcdef")


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


async def test_snapshot_skips_bad_records_and_serves_the_rest(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """Stored records that cannot be read are skipped and counted once; the good ones are served."""
    now = datetime.now(UTC)
    good = Event(
        id="good",
        source="test",
        kind="closure",
        geometry={"type": "Point", "coordinates": [2.35, 48.85]},
        valid_until=now + timedelta(hours=1),
    )
    route = {"route_id": "r-good", "driver_id": "ann", "coordinates": [[2.3, 48.8], [2.4, 48.9]]}
    await redis_client.hset(
        f"{prefix}:state:events",
        mapping={
            "good": encode_stamped(StampedEvent(1, good)),
            "list-geometry": orjson.dumps(
                {"seq": 2, "event": {**_plain(good), "id": "list-geometry", "geometry": [1, 2]}}
            ),
            "not-json": b"{not json",
            "naive-until": orjson.dumps(
                {"seq": 3, "event": {**_plain(good), "id": "naive-until", "valid_until": "2999-01-01T00:00"}}
            ),
        },
    )
    await redis_client.hset(
        f"{prefix}:state:routes:0",
        mapping={
            "r-good": orjson.dumps({"op": "registered", "route_id": "r-good", "route": route}),
            "r-no-keys": orjson.dumps({"op": "registered", "route_id": "r-no-keys", "route": {"x": 1}}),
            "r-int-id": orjson.dumps({"op": "registered", "route": {**route, "route_id": 7}}),
        },
    )
    await redis_client.hset(
        f"{prefix}:state:positions:1",
        mapping={
            "r-good": orjson.dumps({"route_id": "r-good", "position": [2.31, 48.81], "at": "now"}),
            "r-text": orjson.dumps({"route_id": "r-text", "position": "abc"}),
            "r-list": b"[1, 2]",
        },
    )
    await redis_client.set(f"{prefix}:dispatch:scene", b"{broken")
    counted = {k: _sample("corridor_gateway_bad_records_total", kind=k) for k in ("event", "route")}
    counted["position"] = _sample("corridor_gateway_bad_records_total", kind="position")
    token = KEYS.issue_dispatcher("ops", time.time(), 600)
    auth = {"Authorization": f"Bearer {token}"}
    port = free_port()
    stop, ready = asyncio.Event(), asyncio.Event()
    options = GatewayOptions(partitions=2)
    task = asyncio.create_task(
        run_gateway(redis_client, prefix, KEYS, "127.0.0.1", port, stop, ready, options)
    )
    try:
        await asyncio.wait_for(ready.wait(), 10)
        base = f"http://127.0.0.1:{port}"
        status, body = await asyncio.to_thread(_get, f"{base}/dispatch/snapshot", auth)
        positions_status, positions = await asyncio.to_thread(_get, f"{base}/dispatch/positions", auth)
        again, _ = await asyncio.to_thread(_get, f"{base}/dispatch/positions", auth)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert status == 200, body
    snapshot = orjson.loads(body)
    assert [e["id"] for e in snapshot["events"]] == ["good"]
    assert [r["route_id"] for r in snapshot["routes"]] == ["r-good"] and snapshot["scene"] is None
    assert positions_status == again == 200
    assert orjson.loads(positions)["vehicles"] == {"r-good": [2.31, 48.81, "now"]}
    assert _sample("corridor_gateway_bad_records_total", kind="event") == counted["event"] + 3
    assert _sample("corridor_gateway_bad_records_total", kind="route") == counted["route"] + 2
    assert _sample("corridor_gateway_bad_records_total", kind="position") == counted["position"] + 2


def _plain(event: Event) -> dict[str, Any]:
    stored: dict[str, Any] = orjson.loads(encode_stamped(StampedEvent(1, event)))["event"]
    return stored


async def _vehicles(redis_client: aioredis.Redis, prefix: str, configured: int) -> dict[str, Any]:
    token = KEYS.issue_dispatcher("ops", time.time(), 600)
    port = free_port()
    stop, ready = asyncio.Event(), asyncio.Event()
    options = GatewayOptions(partitions=configured)
    task = asyncio.create_task(
        run_gateway(redis_client, prefix, KEYS, "127.0.0.1", port, stop, ready, options)
    )
    try:
        await asyncio.wait_for(ready.wait(), 10)
        url = f"http://127.0.0.1:{port}/dispatch/positions"
        status, body = await asyncio.to_thread(_get, url, {"Authorization": f"Bearer {token}"})
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert status == 200, body
    vehicles: dict[str, Any] = orjson.loads(body)["vehicles"]
    return vehicles


async def test_the_map_reads_as_many_partitions_as_the_workers_noted(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """The workers note the routes' partition count in Redis: a gateway configured with fewer
    still finds every route; a noted count that is not a sane number is not believed."""
    for partition in range(6):
        await redis_client.hset(
            f"{prefix}:state:positions:{partition}",
            f"r{partition}",
            orjson.dumps({"route_id": f"r{partition}", "position": [2.3, 48.8], "at": "now"}),
        )
    await redis_client.set(f"{prefix}:state:partitions", 6)
    assert sorted(await _vehicles(redis_client, prefix, configured=2)) == [f"r{p}" for p in range(6)]
    for hostile in (b"junk", b"-3", b"0", b"99999999"):
        await redis_client.set(f"{prefix}:state:partitions", hostile)
        assert sorted(await _vehicles(redis_client, prefix, configured=2)) == ["r0", "r1"], hostile
