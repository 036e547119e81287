"""The Redis state the worker rebuilds from: latest versions, tombstones, pruning."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from schemas import Event
from stream.core.partition import StampedEvent
from stream.worker.state import RedisState

POINT = {"type": "Point", "coordinates": [2.35, 48.85]}


def _event(n: int, **changes: object) -> Event:
    return replace(Event(id=f"t:{n}", source="t", kind="closure", geometry=POINT), **changes)  # type: ignore[arg-type]


async def test_last_version_in_a_batch_wins(redis_client: aioredis.Redis, prefix: str) -> None:
    """Two versions of an event in one batch: the later one is stored, and is what a rebuild loads."""
    state = RedisState(redis_client, prefix)
    await state.save_events(
        [
            StampedEvent(1, _event(1, title="first")),
            StampedEvent(2, _event(1, title="second")),
            StampedEvent(3, _event(2)),
        ]
    )
    loaded = {s.event.id: s for s in (await state.load_events())[0]}
    assert set(loaded) == {"t:1", "t:2"}
    assert loaded["t:1"].seq == 2 and loaded["t:1"].event.title == "second"


async def test_tombstones_and_expired_events_are_pruned(redis_client: aioredis.Redis, prefix: str) -> None:
    """Cancelled and ended events are kept for the retention, then pruned; open-ended ones stay."""
    state = RedisState(redis_client, prefix)
    past = datetime.now(UTC) - timedelta(days=3)
    await state.save_events(
        [
            StampedEvent(1, _event(1, status="cancelled")),
            StampedEvent(2, _event(2, valid_until=past)),
            StampedEvent(3, _event(3)),
        ]
    )
    assert {s.event.id for s in (await state.load_events())[0]} == {"t:1", "t:2", "t:3"}
    assert await state.prune(time.time()) == 1  # the long-ended event; the tombstone is kept a day
    assert {s.event.id for s in (await state.load_events())[0]} == {"t:1", "t:3"}
    assert await state.prune(time.time() + 2 * 24 * 3600) == 1
    assert {s.event.id for s in (await state.load_events())[0]} == {"t:3"}


async def test_an_event_reopened_is_no_longer_scheduled(redis_client: aioredis.Redis, prefix: str) -> None:
    """A cancelled event published again as active is not pruned with the tombstones."""
    state = RedisState(redis_client, prefix)
    await state.save_events([StampedEvent(1, _event(1, status="cancelled"))])
    await state.save_events([StampedEvent(2, _event(1))])
    assert await state.prune(time.time() + 2 * 24 * 3600) == 0
    assert [s.event.status for s in (await state.load_events())[0]] == ["active"]
