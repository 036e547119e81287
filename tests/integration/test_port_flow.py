"""AIS sentences through the real broker and worker: a predicted bridge lift alerts the right drivers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pyais
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer

from schemas import Event, Route, Vehicle
from stream.core.geo import project_xy, unproject_xy
from stream.core.port.infrastructure import Approach, load
from stream.feeds.ais import parse_ais
from stream.ingest.producer import Publisher
from stream.runtime import envelopes
from stream.runtime.redis_keys import driver_stream_key
from stream.runtime.settings import Settings
from tests.support.facts import index_holds
from tests.support.processes import Deployment

BRIDGE = "FRURO-GUSTAVE-FLAUBERT"
MMSI = 227000001
LIFT_ID = f"port:bridge_lift:{BRIDGE}:{MMSI}"
SPEED_KN = 10.0


def _along(approach: Approach, remaining_m: float) -> tuple[float, float]:
    """The lon/lat on an approach axis ``remaining_m`` before the structure (negative: beyond it)."""
    x, y = np.asarray(approach.x), np.asarray(approach.y)
    if remaining_m < 0:  # extend the last segment past the crossing
        dx, dy = x[-1] - x[-2], y[-1] - y[-2]
        norm = float(np.hypot(dx, dy))
        px, py = x[-1] - dx / norm * remaining_m, y[-1] - dy / norm * remaining_m
    else:
        cum = np.concatenate(([0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))))
        s = cum[-1] - remaining_m
        px, py = float(np.interp(s, cum, x)), float(np.interp(s, cum, y))
    lon, lat = unproject_xy(np.array([px]), np.array([py]))
    return float(lon[0]), float(lat[0])


def _ais(approach: Approach, remaining: list[float]) -> str:
    """Static data of a 150 m cargo ship, then its positions heading up the Seine toward the bridge."""
    lines = pyais.encode_dict(
        {
            "type": 5,
            "mmsi": MMSI,
            "shipname": "SEINE TRADER",
            "ship_type": 70,
            "to_bow": 120,
            "to_stern": 30,
            "to_port": 10,
            "to_starboard": 12,
            "destination": "ROUEN",
            "imo": 9000001,
            "month": 3,
            "day": 14,
            "hour": 12,
            "minute": 0,
        }
    )
    for metres in remaining:
        lon, lat = _along(approach, metres)
        position = {"type": 1, "mmsi": MMSI, "lon": lon, "lat": lat, "speed": SPEED_KN, "course": 131.0}
        lines += pyais.encode_dict({**position, "heading": 131, "status": 0})
    return "\n".join(lines) + "\n"


def _crossing_route(route_id: str, driver_id: str, depart_at: datetime, road: dict[str, Any]) -> Route:
    """A route that drives 1 km toward the bridge, over its road deck, and 300 m beyond."""
    coords = np.asarray(road["coordinates"], dtype=float)
    x, y = project_xy(coords[:, 0], coords[:, 1])
    ux, uy = (x[0] - x[-1]), (y[0] - y[-1])
    norm = float(np.hypot(ux, uy))
    ux, uy = ux / norm, uy / norm
    xs = np.concatenate(([x[0] + ux * 1000], x, [x[-1] - ux * 300]))
    ys = np.concatenate(([y[0] + uy * 1000], y, [y[-1] - uy * 300]))
    lon, lat = unproject_xy(xs, ys)
    points = tuple((float(a), float(b)) for a, b in zip(lon, lat, strict=True))
    return Route(route_id, driver_id, points, Vehicle(weight_t=40), depart_at=depart_at, destination="FRURO")


async def _alerts(client: aioredis.Redis, prefix: str, driver: str) -> list[tuple[str, str]]:
    entries = await client.xrange(driver_stream_key(prefix, driver))
    return [(a["event_id"], a["state"]) for a in (orjson.loads(f[b"a"]) for _, f in entries)]


async def _wait_alerts(
    client: aioredis.Redis, prefix: str, driver: str, count: int, timeout: float = 30, until_state: str = ""
) -> list[tuple[str, str]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    got: list[tuple[str, str]] = []
    while loop.time() < deadline:
        got = await _alerts(client, prefix, driver)
        if len(got) >= count and (not until_state or got[-1][1] == until_state):
            break
        await asyncio.sleep(0.1)
    return got


async def _lift_events(settings: Settings, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        settings.topic("events"), bootstrap_servers=settings.bootstrap_servers(), auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found) < count and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            values = [v for msgs in batch.values() for m in msgs for v in envelopes.unpack(m.value)]
            found += [v for v in values if v["id"] == LIFT_ID]
    finally:
        await consumer.stop()
    return found


def _vessel_events(text: str) -> list[Event]:
    events = [item for item in parse_ais(text) if isinstance(item, Event)]
    assert events and all(e.kind == "vessel" for e in events)
    return events


async def test_ais_ship_up_the_seine_lifts_the_bridge_for_drivers_in_the_window(
    deployment: Deployment, redis_client: aioredis.Redis
) -> None:
    """A cargo ship heading for the Gustave-Flaubert bridge alerts the driver crossing in the window only."""
    infra = load()
    bridge = infra.structures[BRIDGE]
    downstream = next(a for a in bridge.approaches if a.id.endswith("downstream"))
    worker = deployment.start_worker()
    settings = deployment.settings
    prefix = settings.topic_prefix
    now = datetime.now(UTC)
    during = _crossing_route("r-during", "d-during", now, bridge.road)
    after = _crossing_route("r-after", "d-after", now + timedelta(hours=2), bridge.road)
    async with Publisher(settings) as pub:
        await pub.register_routes([during, after])
        await index_holds(worker, routes=2)
        await pub.events(_vessel_events(_ais(downstream, [3000, 2900])))
        raised = await _wait_alerts(redis_client, prefix, "d-during", 1)
        assert raised == [(LIFT_ID, "raised")]
        (lift,) = (await _lift_events(settings, 1))[:1]
        assert lift["kind"] == "bridge_lift" and lift["status"] == "active"
        assert lift["geometry"] == bridge.road
        eta = datetime.fromisoformat(lift["details"]["vessel_eta"])
        expected_eta = now + timedelta(seconds=3000 / (SPEED_KN * 1852 / 3600))
        assert abs((eta - expected_eta).total_seconds()) < 90
        valid_from = datetime.fromisoformat(lift["valid_from"])
        valid_until = datetime.fromisoformat(lift["valid_until"])
        assert valid_from == eta - timedelta(minutes=20) and valid_until == eta + timedelta(minutes=40)
        assert valid_from < now + timedelta(minutes=2) < valid_until  # the first driver is on the bridge
        assert await _alerts(redis_client, prefix, "d-after") == []
        await pub.events(_vessel_events(_ais(downstream, [150, -400])))
        later = await _wait_alerts(redis_client, prefix, "d-during", 2, until_state="cleared")
        # the ETA moved as the ship neared the bridge (an update, unless folded into the same batch
        # as the cancellation), then it passed: the alert is cleared
        assert later[0] == (LIFT_ID, "raised") and later[-1] == (LIFT_ID, "cleared")
        assert {state for _, state in later[1:-1]} <= {"updated"} and len(later) <= 3
    cancelled = [e for e in await _lift_events(settings, 3) if e["status"] == "cancelled"]
    assert cancelled and cancelled[-1]["details"]["cancel_reason"] == "passed"
    assert await _alerts(redis_client, prefix, "d-after") == []
