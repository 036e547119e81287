"""The event broadcast: entries numbered in Redis, read from a position, trims and losses seen."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from schemas import Event
from stream.core.partition import StampedEvent
from stream.worker.broadcast import BroadcastGap, BroadcastReader, Entry
from stream.worker.state import RedisState


def _stamped(n: int) -> StampedEvent:
    return StampedEvent(n, Event(id=f"b:{n}", source="b", kind="closure", geometry=_POINT))


_POINT = {"type": "Point", "coordinates": [1.09, 49.44]}


async def _append(state: RedisState, *values: bytes) -> None:
    """Store one event and append ``values`` to the broadcast, as the fan-out does."""
    await state.save_events([_stamped(len(values))], broadcast=values)


async def _read(
    state: RedisState, client: aioredis.Redis, position: int, count: int
) -> tuple[BroadcastReader, list[Entry]]:
    """A reader started at ``position`` once it has yielded ``count`` entries (within 10 s), and
    the entries."""
    reader = BroadcastReader(client, state.broadcast_stream, state.broadcast_last)
    await reader.start(position)
    got: list[Entry] = []

    async def read() -> None:
        async for batch in reader.batches():
            got.extend(batch)
            if len(got) >= count:
                return

    await asyncio.wait_for(read(), 10)
    return reader, got


async def test_entries_are_numbered_and_read_from_a_position(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """Appends number the entries 1, 2, …; a reader gives those after its position, in order."""
    state = RedisState(redis_client, prefix)
    await _append(state, *(str(n).encode() for n in range(1, 6)))
    await _append(state, *(str(n).encode() for n in range(6, 11)))
    assert await state.broadcast_last() == 10
    reader, got = await _read(state, redis_client, 4, 6)
    assert [(e.number, e.value) for e in got] == [(n, str(n).encode()) for n in range(5, 11)]
    assert reader.position == 10
    assert await reader.lag() == 0
    await _append(state, b"11", b"12")
    assert await reader.lag() == 2


async def test_a_read_answers_as_soon_as_an_entry_is_appended(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """A reader blocked at the end of the stream gets an entry appended meanwhile at once, not
    when its read's wait (10 s here) runs out."""
    state = RedisState(redis_client, prefix)
    await _append(state, b"1")
    reader = BroadcastReader(redis_client, state.broadcast_stream, state.broadcast_last, block_ms=10_000)
    await reader.start(1)
    batches = reader.batches()
    waiting = asyncio.create_task(anext(batches))
    await _blocked_on_xread(redis_client)
    await _append(state, b"2")
    batch = await asyncio.wait_for(waiting, 5)
    assert [e.value for e in batch] == [b"2"]
    await batches.aclose()


async def _blocked_on_xread(client: aioredis.Redis) -> None:
    """Return once a client of this Redis is blocked in an XREAD."""
    for _ in range(500):
        clients = await client.client_list()
        if any(c.get("cmd") == "xread" and "b" in c.get("flags", "") for c in clients):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no reader got blocked in XREAD")


async def test_a_position_past_the_end_reads_the_stream_from_its_start(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """A Redis that lost its data holds fewer entries than a worker's position: read them all."""
    state = RedisState(redis_client, prefix)
    await _append(state, b"1", b"2", b"3")
    _, got = await _read(state, redis_client, 1000, 3)
    assert [e.value for e in got] == [b"1", b"2", b"3"]


async def test_entries_trimmed_before_they_were_read_are_a_gap(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """A reader further behind than the stream keeps learns it (and reloads the stored events)."""
    state = RedisState(redis_client, prefix, broadcast_maxlen=1)
    for n in range(300):  # MAXLEN ~ trims whole nodes: enough entries that some are gone
        await _append(state, str(n).encode())
    first = int((await redis_client.xrange(state.broadcast_stream, count=1))[0][0].split(b"-")[0])
    assert first > 2
    with pytest.raises(BroadcastGap) as caught:
        await _read(state, redis_client, 1, 1)
    assert caught.value.position == 1 and caught.value.first == first
    _, got = await _read(state, redis_client, first - 1, 1)  # a reader that kept up reads on
    assert got[0].number == first


async def test_numbering_goes_on_after_a_lost_counter_or_a_foreign_entry(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """Entries another client added, or a counter lost while the stream stayed, do not stop the
    appends: numbering goes on after the stream's last id, and a reader gives the foreign entry
    (its caller dead-letters it) and what follows."""
    state = RedisState(redis_client, prefix)
    await _append(state, b"1", b"2")
    await redis_client.delete(state.broadcast_counter)
    await _append(state, b"3")
    assert await state.broadcast_last() == 3
    await redis_client.xadd(state.broadcast_stream, {"other": "x"}, id="50-7")
    await _append(state, b"51")
    assert await state.broadcast_last() == 51
    _, got = await _read(state, redis_client, 3, 2)
    assert [(e.number, e.value) for e in got] == [(50, b""), (51, b"51")]
    await redis_client.set(state.broadcast_counter, b"garbage")
    assert await state.broadcast_last() == 0  # unreadable: a new worker reads everything
