"""The Redis outbox against a real Redis: one stream per driver, deduplicated by alert id."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import orjson
import redis.asyncio as aioredis

from schemas import Alert, alert_id_for
from stream.runtime.redis_outbox import RedisOutbox, dispatch_stream_key, driver_stream_key


def _alert(driver: str = "d1", event: str = "e1", state: str = "raised", title: str = "x") -> Alert:
    return Alert(
        alert_id=alert_id_for(f"r-{driver}", event),
        route_id=f"r-{driver}",
        driver_id=driver,
        event_id=event,
        kind="closure",
        state=state,
        distance_ahead_m=120.0,  # type: ignore[arg-type]
        valid_from=None,
        valid_until=None,
        title=title,
    )


async def _states(client: aioredis.Redis, prefix: str, driver: str) -> list[tuple[str, str]]:
    entries = await client.xrange(driver_stream_key(prefix, driver))
    return [(orjson.loads(f[b"a"])["event_id"], orjson.loads(f[b"a"])["state"]) for _, f in entries]


async def test_replayed_alert_is_stored_once(redis_client: aioredis.Redis, prefix: str) -> None:
    """The same raised alert appended three times (replays) is in the driver's stream once."""
    outbox = RedisOutbox(redis_client, prefix)
    results = await outbox.append([_alert(), _alert()])
    results += await outbox.append([_alert()])
    assert [sid is not None for _, sid in results] == [True, False, False]
    assert await _states(redis_client, prefix, "d1") == [("e1", "raised")]


async def test_lifecycle_is_rewritten_from_the_drivers_view(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """A second 'raised' with new content becomes 'updated'; a clear lands once."""
    outbox = RedisOutbox(redis_client, prefix)
    await outbox.append([_alert(title="closed")])
    await outbox.append([_alert(title="closed until 18:00")])  # a restart re-raises with news
    await outbox.append([_alert(state="cleared"), _alert(state="cleared")])
    assert await _states(redis_client, prefix, "d1") == [
        ("e1", "raised"),
        ("e1", "updated"),
        ("e1", "cleared"),
    ]


async def test_clear_of_unseen_alert_is_dropped(redis_client: aioredis.Redis, prefix: str) -> None:
    """A driver never receives a 'cleared' for an alert it never had."""
    outbox = RedisOutbox(redis_client, prefix)
    [(_, stream_id)] = await outbox.append([_alert(state="cleared")])
    assert stream_id is None
    assert await _states(redis_client, prefix, "d1") == []


async def test_drivers_are_kept_apart(redis_client: aioredis.Redis, prefix: str) -> None:
    """Each driver's stream holds only its own alerts, and each append wakes its driver."""
    outbox = RedisOutbox(redis_client, prefix)
    async with redis_client.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(f"{prefix}:wake")
        await outbox.append([_alert("d1"), _alert("d2", "e2"), replace(_alert("d1"), title="y")])
        woken: list[str] = []
        deadline = asyncio.get_running_loop().time() + 5.0
        while len(woken) < 3 and asyncio.get_running_loop().time() < deadline:
            message = await pubsub.get_message(timeout=0.5)
            if message is not None:
                woken.append(message["data"].decode())
    assert await _states(redis_client, prefix, "d1") == [("e1", "raised"), ("e1", "updated")]
    assert await _states(redis_client, prefix, "d2") == [("e2", "raised")]
    assert sorted(woken) == ["d1", "d1", "d2"]


async def test_streams_are_bounded_by_age(redis_client: aioredis.Redis, prefix: str) -> None:
    """An append trims entries older than the retention and the stream expires with it."""
    key = driver_stream_key(prefix, "d1")
    await redis_client.xadd(key, {"a": b"{}", "t": b"1"}, id="1-1")  # an entry from 1970
    [(_, stream_id)] = await RedisOutbox(redis_client, prefix, retention_s=3600).append([_alert()])
    entries = await redis_client.xrange(key)
    assert [e[0].decode() for e in entries] == [stream_id]
    assert 0 < await redis_client.ttl(key) <= 3600


async def test_dispatch_stream_gets_every_stored_transition_as_delivered(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """The dispatchers' stream holds what drivers received (rewritten states), never a deduped replay."""
    outbox = RedisOutbox(redis_client, prefix)
    await outbox.append([_alert("d1"), _alert("d2"), _alert("d1")])
    await outbox.append([_alert("d1", title="closed until 18:00"), _alert("d2", state="cleared")])
    entries = await redis_client.xrange(dispatch_stream_key(prefix))
    seen = [(f[b"d"].decode(), orjson.loads(f[b"a"])["state"]) for _, f in entries]
    assert seen == [("d1", "raised"), ("d2", "raised"), ("d1", "updated"), ("d2", "cleared")]
    driver_ids = [i.decode() for i, _ in await redis_client.xrange(driver_stream_key(prefix, "d1"))]
    assert [f[b"s"].decode() for _, f in entries if f[b"d"] == b"d1"] == driver_ids
