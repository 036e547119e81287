"""The Redis outbox against a real Redis: one stream per driver, deduplicated by alert id."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import orjson
import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from schemas import Alert, alert_id_for
from schemas.codec import to_plain
from stream.runtime.redis_keys import dispatch_stream_key, driver_seen_key, driver_stream_key
from stream.runtime.wake import wake_lines
from stream.worker.outbox import LIVE_MAX_BYTES, InvalidAlert, RedisOutbox


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


async def test_the_state_is_rewritten_where_it_is_and_nowhere_else(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """A title that quotes a state is left as written when the alert's own state is rewritten, by
    the engine's encoding and by an outside producer's (another key order)."""
    outbox = RedisOutbox(redis_client, prefix)
    quoted = 'says "state":"raised" and "state":"updated"'
    await outbox.append([_alert(title="first")])
    await outbox.append([_alert(title=quoted)])  # raised again with news: updated
    foreign = {"title": quoted + "!", **to_plain(_alert(event="e2", state="updated")), "state": "updated"}
    foreign["title"] = quoted + "!"
    await outbox.append([foreign])  # an update of an alert the driver never had: raised
    entries = [orjson.loads(f[b"a"]) for _, f in await redis_client.xrange(driver_stream_key(prefix, "d1"))]
    assert [(a["event_id"], a["state"], a["title"]) for a in entries] == [
        ("e1", "raised", "first"),
        ("e1", "updated", quoted),
        ("e2", "raised", quoted + "!"),
    ]


async def test_clear_of_unseen_alert_is_dropped(redis_client: aioredis.Redis, prefix: str) -> None:
    """A driver never receives a 'cleared' for an alert it never had."""
    outbox = RedisOutbox(redis_client, prefix)
    [(_, stream_id)] = await outbox.append([_alert(state="cleared")])
    assert stream_id is None
    assert await _states(redis_client, prefix, "d1") == []


Line = tuple[str, bytes | None, bytes | None]


async def _wakeups(pubsub: aioredis.client.PubSub, count: int) -> tuple[int, list[Line]]:
    """The wake-up messages received until ``count`` lines came: how many, and their lines."""
    lines: list[Line] = []
    messages = 0
    deadline = asyncio.get_running_loop().time() + 5.0
    while len(lines) < count and asyncio.get_running_loop().time() < deadline:
        message = await pubsub.get_message(timeout=0.2)
        if message is not None:
            messages += 1
            lines += wake_lines(message["data"])
    return messages, lines


async def _stored(client: aioredis.Redis, prefix: str, driver: str) -> list[tuple[bytes, bytes]]:
    return [(sid, fields[b"a"]) for sid, fields in await client.xrange(driver_stream_key(prefix, driver))]


async def test_drivers_are_kept_apart(redis_client: aioredis.Redis, prefix: str) -> None:
    """Each driver's stream holds only its own alerts; a batch wakes each driver it wrote to once."""
    outbox = RedisOutbox(redis_client, prefix)
    async with redis_client.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(f"{prefix}:wake")
        await outbox.append([_alert("d1"), _alert("d2", "e2"), replace(_alert("d1"), title="y")])
        messages, lines = await _wakeups(pubsub, 3)
    assert await _states(redis_client, prefix, "d1") == [("e1", "raised"), ("e1", "updated")]
    assert await _states(redis_client, prefix, "d2") == [("e2", "raised")]
    assert messages == 1  # the wake-up carries each entry as stored, in each driver's order
    for driver in ("d1", "d2"):
        assert [(sid, body) for d, sid, body in lines if d == driver] == await _stored(
            redis_client, prefix, driver
        )


async def test_an_alert_too_large_to_travel_in_the_wakeup_names_its_driver(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """An entry over LIVE_MAX_BYTES is announced by its driver alone (its stream must be read),
    the entries beside it travel whole."""
    outbox = RedisOutbox(redis_client, prefix)
    big = replace(_alert("d1", "e1"), title="x" * (LIVE_MAX_BYTES + 1))
    async with redis_client.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(f"{prefix}:wake")
        await outbox.append([big, _alert("d2", "e2")])
        messages, lines = await _wakeups(pubsub, 2)
    assert messages == 1
    assert ("d1", None, None) in lines
    assert [(sid, body) for d, sid, body in lines if d == "d2"] == await _stored(redis_client, prefix, "d2")
    assert len(lines) == 2


def test_wake_lines_read_entries_bare_drivers_and_the_earlier_format() -> None:
    """Entries, a bare driver, and a line of space-separated driver ids (earlier versions)."""
    message = b'd1 1-0 {"a":1}\nd2\nd3 d4 d5\nd6 2-0 {"b":"x y"}'
    assert wake_lines(message) == [
        ("d1", b"1-0", b'{"a":1}'),
        ("d2", None, None),
        ("d3", None, None),
        ("d4", None, None),
        ("d5", None, None),
        ("d6", b"2-0", b'{"b":"x y"}'),
    ]


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


async def test_one_call_stores_a_drivers_alerts_in_order_with_mixed_dedupe(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """Several alerts of one driver in one batch: each decided against the ones before it, in order."""
    outbox = RedisOutbox(redis_client, prefix)
    await outbox.append([_alert(event="e0")])
    batch = [
        _alert(event="e1"),
        _alert(event="e1"),  # a replay inside the batch
        _alert(event="e2", state="cleared"),  # never seen by the driver
        _alert(event="e0", title="closed until 18:00"),  # news for an alert the driver holds
        _alert(event="e0", state="raised", title="closed until 18:00"),  # and its replay
        _alert(event="e3", state="updated"),  # the driver never had it: raised
        _alert(event="e1", state="cleared"),
        _alert(event="e1", state="cleared"),
    ]
    async with redis_client.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(f"{prefix}:wake")
        results = await outbox.append(batch)
        messages, lines = await _wakeups(pubsub, 4)
    assert [alert for alert, _ in results] == batch
    assert [sid is not None for _, sid in results] == [True, False, False, True, False, True, True, False]
    entries = await redis_client.xrange(driver_stream_key(prefix, "d1"))
    assert [e[0].decode() for e in entries][1:] == [sid for _, sid in results if sid is not None]
    assert await _states(redis_client, prefix, "d1") == [
        ("e0", "raised"),
        ("e1", "raised"),
        ("e0", "updated"),
        ("e3", "raised"),
        ("e1", "cleared"),
    ]
    assert messages == 1  # one wake-up for the whole batch, with the entries as stored
    assert [(sid, body) for _, sid, body in lines] == (await _stored(redis_client, prefix, "d1"))[1:]


async def test_a_replayed_batch_stores_nothing_and_adds_no_dispatch_entry(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """Replaying a batch of several drivers (a restart re-raises everything) is absorbed entirely."""
    outbox = RedisOutbox(redis_client, prefix)
    batch = [_alert(d, e) for d in ("d1", "d2", "d3") for e in ("e1", "e2")]
    first = await outbox.append(batch)
    again = await outbox.append(list(reversed(batch)))
    assert all(sid is not None for _, sid in first)
    assert all(sid is None for _, sid in again)
    assert await redis_client.xlen(dispatch_stream_key(prefix)) == len(batch)
    for driver in ("d1", "d2", "d3"):
        assert await _states(redis_client, prefix, driver) == [("e1", "raised"), ("e2", "raised")]


async def test_plain_dicts_are_stored_as_records_are(redis_client: aioredis.Redis, prefix: str) -> None:
    """A decoded wire dict is stored byte for byte as its Alert would be, and deduplicated against it."""
    record = _alert("d1", "e1")
    plain = orjson.loads(orjson.dumps(to_plain(record)))
    await RedisOutbox(redis_client, prefix).append([record])
    [(returned, sid)] = await RedisOutbox(redis_client, prefix + "b").append([plain])
    assert returned is plain and sid is not None
    [(_, replay)] = await RedisOutbox(redis_client, prefix).append([plain])
    assert replay is None
    one = await redis_client.xrange(driver_stream_key(prefix, "d1"))
    two = await redis_client.xrange(driver_stream_key(prefix + "b", "d1"))
    assert [f[b"a"] for _, f in one] == [f[b"a"] for _, f in two] == [orjson.dumps(plain)]


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"driver_id": None}, "driver_id"),
        ({"alert_id": ""}, "alert_id"),
        ({"state": "exploded"}, "state"),
    ],
)
async def test_an_alert_that_cannot_be_stored_is_refused_before_any_write(
    redis_client: aioredis.Redis, prefix: str, change: dict[str, object], complaint: str
) -> None:
    """A batch with an alert lacking its driver, id or a known state writes nothing and says why."""
    outbox = RedisOutbox(redis_client, prefix)
    bad = {**to_plain(_alert("d2")), **change}
    with pytest.raises(InvalidAlert, match=complaint):
        await outbox.append([to_plain(_alert("d1")), bad])
    with pytest.raises(InvalidAlert, match="JSON object"):
        await outbox.append(["not an alert"])  # type: ignore[list-item]
    assert await redis_client.exists(driver_stream_key(prefix, "d1"), driver_seen_key(prefix, "d1")) == 0


async def test_large_batches_are_split_into_calls_in_order(
    redis_client: aioredis.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver with more alerts than one script call takes keeps them in order across calls."""
    monkeypatch.setattr("stream.worker.outbox.ALERTS_PER_CALL", 3)
    outbox = RedisOutbox(redis_client, prefix)
    batch = [_alert("d1", f"e{n}") for n in range(8)] + [_alert("d1", "e2", state="cleared")]
    results = await outbox.append(batch)
    assert all(sid is not None for _, sid in results)
    expected = [(f"e{n}", "raised") for n in range(8)] + [("e2", "cleared")]
    assert await _states(redis_client, prefix, "d1") == expected


async def test_scripts_are_loaded_again_after_redis_forgets_them(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """After a Redis restart (an empty script cache) the next append loads its scripts and stores."""
    outbox = RedisOutbox(redis_client, prefix)
    await outbox.append([_alert("d1", "e1")])
    await redis_client.script_flush()
    [(_, sid)] = await outbox.append([_alert("d1", "e2")])
    assert sid is not None
    assert await _states(redis_client, prefix, "d1") == [("e1", "raised"), ("e2", "raised")]
    assert await redis_client.xlen(dispatch_stream_key(prefix)) == 2


async def test_ids_and_texts_of_any_content_are_stored_exactly(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """Separators, digits, line breaks and multi-byte characters in ids and texts reach Redis unchanged;
    a driver id no socket could ask for is refused before anything is written."""
    outbox = RedisOutbox(redis_client, prefix)
    with pytest.raises(InvalidAlert):
        await outbox.append([{**to_plain(_alert(event="e0")), "driver_id": "dé:12:\n{x}"}])
    driver = "d:12:3@x.y_-"
    alerts = [
        {**to_plain(_alert(event="e1")), "driver_id": driver, "alert_id": "3:abc", "title": "10:€€€ fermé\n"},
        {**to_plain(_alert(event="e2")), "driver_id": driver, "alert_id": "€:\n:", "title": ""},
    ]
    results = await outbox.append([*alerts, alerts[0]])
    assert [sid is not None for _, sid in results] == [True, True, False]
    entries = await redis_client.xrange(driver_stream_key(prefix, driver))
    assert [orjson.loads(f[b"a"]) for _, f in entries] == alerts
    assert set(await redis_client.hkeys(driver_seen_key(prefix, driver))) == {b"3:abc", "€:\n:".encode()}
    dispatched = await redis_client.xrange(dispatch_stream_key(prefix))
    assert [(f[b"d"].decode(), f[b"s"].decode()) for _, f in dispatched] == [
        (driver, sid) for _, sid in results if sid is not None
    ]


async def test_drivers_of_a_batch_share_script_calls(
    redis_client: aioredis.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a single Redis, a batch's drivers share calls of up to ALERTS_PER_CALL alerts: each still
    gets its own alerts in order, deduplicated, and one wake-up."""
    monkeypatch.setattr("stream.worker.outbox.ALERTS_PER_CALL", 7)
    outbox = RedisOutbox(redis_client, prefix)
    sizes: list[int] = []
    run = outbox._run

    async def counting(sha: str, script: str, calls: list[tuple[int, list[object]]]) -> list[object]:
        sizes.append(len(calls))
        return await run(sha, script, calls)

    monkeypatch.setattr(outbox, "_run", counting)
    drivers = [f"d{n}" for n in range(10)]
    batch = [_alert(d, f"e{k}") for k in range(3) for d in drivers] + [_alert("d3", "e1")]
    async with redis_client.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(f"{prefix}:wake")
        results = await outbox.append(batch)
        messages, lines = await _wakeups(pubsub, 30)
    assert sizes[0] == 5  # 31 alerts in calls of at most 7 (a driver's three stay together)
    assert [sid is not None for _, sid in results] == [True] * 30 + [False]
    assert messages == 5  # one wake-up per call
    assert sorted({d for d, _, _ in lines}) == sorted(drivers)
    for d in drivers:
        assert await _states(redis_client, prefix, d) == [
            ("e0", "raised"),
            ("e1", "raised"),
            ("e2", "raised"),
        ]


def test_on_a_cluster_only_drivers_of_one_slot_share_a_call() -> None:
    """A script's keys must share a hash slot on a Redis Cluster: calls group drivers by slot."""
    outbox = RedisOutbox(RedisCluster(host="127.0.0.1", port=1), "p")
    by_driver = {f"d{n}": [n] for n in range(20_000)}  # more drivers than slots: some share one
    groups = outbox._groups(by_driver)
    slots = [{key_slot(driver_stream_key("p", d).encode()) for d, _ in group} for group in groups]
    assert all(len(s) == 1 for s in slots)
    assert len(groups) == len({s.pop() for s in slots}) < 20_000
    assert sorted(d for group in groups for d, _ in group) == sorted(by_driver)
    single = RedisOutbox(aioredis.Redis(), "p")._groups(by_driver)
    assert len(single) == 1 and len(single[0]) == 20_000
