"""Durable state of the active routes (per partition) and events (shared), kept in Redis.

A worker rebuilds the index of each partition it is assigned from here, on start and after every
rebalance: it does not rely on the broker's table recovery (see the design notes on the embedded
broker). Ended routes and cancelled events are kept as tombstones for a retention period so that a
replayed older message cannot bring them back; expired entries are pruned by ``prune``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
import redis.asyncio as aioredis

from schemas import RouteMessage
from schemas.codec import to_plain
from schemas.errors import InvalidRecord
from stream.core.partition import StampedEvent
from stream.runtime import redis_keys
from stream.runtime.stamped import decode_stamped, encode_stamped

log = logging.getLogger("corridor.worker")

TOMBSTONE_RETENTION_S = 24 * 3600


@dataclass(frozen=True)
class PartitionSnapshot:
    """What one partition's index is rebuilt from."""

    routes: list[RouteMessage]
    positions: list[RouteMessage]
    bad: list[Quarantined]


@dataclass(frozen=True)
class Quarantined:
    """A stored record that cannot be used (or made the engine fail), moved out of the state."""

    key: str  # ``e:<event id>`` or ``r:<partition>:<route id>``
    why: str
    raw: bytes | None = None


# Append envelopes to the event broadcast (stream.worker.broadcast) as entries n-0, n+1-0, …
# numbered on from its counter. When the stream's last id is already past the counter (the
# counter lost, or an entry another client added), numbering goes on after that id.
_APPEND = """
local n = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
for i = 2, #ARGV do
  n = n + 1
  local added = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], string.format('%d-0', n), 'e', ARGV[i])
  if type(added) == 'table' and added.err then
    local info = redis.call('XINFO', 'STREAM', KEYS[1])
    for j = 1, #info, 2 do
      if info[j] == 'last-generated-id' then n = tonumber(string.match(info[j + 1], '^(%d+)')) + 1 end
    end
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], string.format('%d-0', n), 'e', ARGV[i])
  end
end
redis.call('SET', KEYS[2], n)
return n
"""
BROADCAST_MAXLEN = 2000
"""Entries the broadcast keeps, about (each an envelope of up to ``envelopes.MAX_BYTES``)."""


class RedisState:
    """Routes by partition, their last positions, and events with their receipt sequence."""

    def __init__(self, client: aioredis.Redis, prefix: str, broadcast_maxlen: int = BROADCAST_MAXLEN) -> None:
        self._client = client
        self._prefix = prefix
        self._events = redis_keys.events_key(prefix)
        self._expiry = redis_keys.expiry_key(prefix)
        self._quarantine = redis_keys.quarantine_key(prefix)
        self._partitions = redis_keys.partitions_key(prefix)
        self.broadcast_stream = redis_keys.broadcast_stream_key(prefix)
        self.broadcast_counter = redis_keys.broadcast_counter_key(prefix)
        self._broadcast_maxlen = max(1, broadcast_maxlen)
        self._append = client.register_script(_APPEND)  # EVALSHA, loaded when missing

    def _routes(self, partition: int) -> str:
        return redis_keys.routes_key(self._prefix, partition)

    def _positions(self, partition: int) -> str:
        return redis_keys.positions_key(self._prefix, partition)

    async def save_routes(self, partition: int, messages: Sequence[RouteMessage]) -> None:
        """Keep each route's latest registration (or its end) and its last position."""
        if not messages:
            return
        removable_at = time.time() + TOMBSTONE_RETENTION_S
        async with self._client.pipeline(transaction=False) as pipe:
            for msg in messages:
                member = f"r:{partition}:{msg.route_id}"
                payload = orjson.dumps(to_plain(msg))
                if msg.op == "position":
                    pipe.hset(self._positions(partition), msg.route_id, payload)
                    continue
                pipe.hset(self._routes(partition), msg.route_id, payload)
                if msg.op == "ended":
                    pipe.hdel(self._positions(partition), msg.route_id)
                    pipe.zadd(self._expiry, {member: removable_at})
                else:
                    pipe.zrem(self._expiry, member)
            await pipe.execute()

    async def save_events(
        self,
        stamped: Sequence[StampedEvent],
        encoded: Sequence[bytes] | None = None,
        broadcast: Sequence[bytes] = (),
    ) -> None:
        """Keep each event's latest version; schedule cancelled and bounded ones for pruning; then
        append ``broadcast`` (the envelopes of the same events) to the event broadcast.

        One round trip and four commands per batch whatever its size (the last version of an id
        in the batch wins); the events are stored before they are broadcast (see broadcast).
        ``encoded``: the items' ``encode_stamped`` forms, when the caller has them already.
        """
        if not stamped:
            return
        now = time.time()
        fields: dict[str, bytes] = {}
        removable_at: dict[str, float | None] = {}
        for item, value in zip(stamped, encoded or [encode_stamped(item) for item in stamped], strict=True):
            event = item.event
            fields[event.id] = value
            if event.status == "cancelled":
                removable_at[f"e:{event.id}"] = now + TOMBSTONE_RETENTION_S
            elif event.valid_until is not None:
                removable_at[f"e:{event.id}"] = event.valid_until.timestamp() + TOMBSTONE_RETENTION_S
            else:
                removable_at[f"e:{event.id}"] = None
        scheduled = {member: at for member, at in removable_at.items() if at is not None}
        open_ended = [member for member, at in removable_at.items() if at is None]
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hset(self._events, mapping=fields)  # type: ignore[arg-type]
            if scheduled:
                pipe.zadd(self._expiry, scheduled)
            if open_ended:
                pipe.zrem(self._expiry, *open_ended)
            if broadcast:
                await self._append(
                    keys=[self.broadcast_stream, self.broadcast_counter],
                    args=[self._broadcast_maxlen, *broadcast],
                    client=pipe,
                )
            await pipe.execute()

    async def load_events(self) -> tuple[list[StampedEvent], list[Quarantined]]:
        """Every stored event version (tombstones included), and those that cannot be read (the
        caller quarantines them: a rebuild never replays a bad record)."""
        raw = await self._client.hgetall(self._events)
        events: list[StampedEvent] = []
        bad: list[Quarantined] = []
        for field_, value in raw.items():
            try:
                events.append(decode_stamped(value))
            except InvalidRecord as exc:
                bad.append(Quarantined(f"e:{_text(field_)}", exc.error, _bytes(value)))
        return events, bad

    async def load_partition(self, partition: int) -> PartitionSnapshot:
        """The routes and positions of one partition (unreadable ones listed in ``bad``)."""
        routes_raw = await self._client.hgetall(self._routes(partition))
        positions_raw = await self._client.hgetall(self._positions(partition))
        bad: list[Quarantined] = []

        def read(items: Mapping[bytes | str, bytes | str], kind: str) -> list[RouteMessage]:
            out: list[RouteMessage] = []
            for field_, value in items.items():
                try:
                    out.append(RouteMessage.from_dict(_json(value)))
                except InvalidRecord as exc:
                    bad.append(Quarantined(f"{kind}:{partition}:{_text(field_)}", exc.error, _bytes(value)))
            return out

        routes = read(routes_raw, "r")
        live = {r.route_id for r in routes if r.op != "ended"}
        positions = read(positions_raw, "p")
        return PartitionSnapshot(routes, [p for p in positions if p.route_id in live], bad)

    async def quarantine(self, entries: Sequence[Quarantined]) -> None:
        """Move records out of the state into ``<prefix>:state:quarantine`` (kept for the
        tombstone retention, for an operator to look at): no rebuild reads them again."""
        if not entries:
            return
        removable_at = time.time() + TOMBSTONE_RETENTION_S
        async with self._client.pipeline(transaction=False) as pipe:
            for entry in entries:
                kind, _, rest = entry.key.partition(":")
                if kind == "e":
                    pipe.hdel(self._events, rest)
                else:
                    partition, _, route_id = rest.partition(":")
                    hash_key = (
                        self._routes(int(partition)) if kind == "r" else self._positions(int(partition))
                    )
                    pipe.hdel(hash_key, route_id)
                record = {
                    "why": entry.why,
                    "at": time.time(),
                    "raw": (entry.raw or b"")[:4096].decode("utf-8", "replace"),
                }
                pipe.hset(self._quarantine, entry.key, orjson.dumps(record))
                pipe.zadd(self._expiry, {f"q:{entry.key}": removable_at})
            await pipe.execute()

    async def broadcast_last(self) -> int:
        """The number of the last entry appended to the event broadcast (0 when none was)."""
        raw = await self._client.get(self.broadcast_counter)
        try:
            return max(0, int(raw)) if raw is not None else 0
        except ValueError:
            log.warning("the broadcast's counter %.40r is not a number: reading from the start", raw)
            return 0

    async def note_partitions(self, count: int) -> None:
        """Record how many partitions the routes topic has, for readers of the routes (the
        dispatch map) that are not workers."""
        await self._client.set(self._partitions, count)

    async def prune(self, now: float | None = None) -> int:
        """Forget tombstones and expired events past their retention; returns how many."""
        due = cast(
            "list[bytes | str]",
            await self._client.zrangebyscore(self._expiry, "-inf", now or time.time(), start=0, num=10_000),
        )
        members = [_text(m) for m in due]
        if not members:
            return 0
        async with self._client.pipeline(transaction=False) as pipe:
            for member in members:
                kind, _, rest = member.partition(":")
                if kind == "e":
                    pipe.hdel(self._events, rest)
                elif kind == "q":
                    pipe.hdel(self._quarantine, rest)
                else:
                    partition, _, route_id = rest.partition(":")
                    pipe.hdel(self._routes(int(partition)), route_id)
            pipe.zrem(self._expiry, *members)
            await pipe.execute()
        return len(members)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _json(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord(f"(record): not JSON: {exc}", "undecodable") from None
