"""Durable state of the active routes (per partition) and events (shared), kept in Redis.

A worker rebuilds the index of each partition it is assigned from here, on start and after every
rebalance: it does not rely on the broker's table recovery (see the design notes on the embedded
broker). Ended routes and cancelled events are kept as tombstones for a retention period so that a
replayed older message cannot bring them back; expired entries are pruned by ``prune``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis

from schemas import Event, RouteMessage
from schemas.codec import to_plain
from stream.core.partition import StampedEvent
from stream.runtime import envelopes

TOMBSTONE_RETENTION_S = 24 * 3600


@dataclass(frozen=True)
class PartitionSnapshot:
    """What one partition's index is rebuilt from."""

    routes: list[RouteMessage]
    positions: list[RouteMessage]


def encode_stamped(item: StampedEvent) -> bytes:
    """The wire and storage form of a stamped event."""
    return orjson.dumps({"seq": item.seq, "event": item.event}, option=orjson.OPT_NAIVE_UTC)


def _stamped(data: dict[str, Any]) -> StampedEvent:
    return StampedEvent(int(data["seq"]), Event.from_dict(data["event"]))


def decode_stamped(raw: bytes | str) -> StampedEvent:
    """Inverse of encode_stamped."""
    return _stamped(orjson.loads(raw))


def pack_stamped(items: Sequence[StampedEvent], max_bytes: int = envelopes.MAX_BYTES) -> list[bytes]:
    """Stamped events as size-bounded envelopes (one message each)."""
    return envelopes.pack((encode_stamped(item) for item in items), max_bytes)


def unpack_stamped(raw: bytes) -> list[StampedEvent]:
    """The stamped events of one envelope."""
    return [_stamped(data) for data in envelopes.unpack(raw)]


class RedisState:
    """Routes by partition, their last positions, and events with their receipt sequence."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._events = f"{prefix}:state:events"
        self._expiry = f"{prefix}:state:expiry"

    def _routes(self, partition: int) -> str:
        return f"{self._prefix}:state:routes:{partition}"

    def _positions(self, partition: int) -> str:
        return f"{self._prefix}:state:positions:{partition}"

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
        self, stamped: Sequence[StampedEvent], encoded: Sequence[bytes] | None = None
    ) -> None:
        """Keep each event's latest version; schedule cancelled and bounded ones for pruning.

        Three commands per batch whatever its size (the last version of an id in the batch wins).
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
                pipe.zadd(self._expiry, scheduled)  # type: ignore[arg-type]
            if open_ended:
                pipe.zrem(self._expiry, *open_ended)
            await pipe.execute()

    async def load_events(self) -> list[StampedEvent]:
        """Every stored event version (tombstones included)."""
        raw = await self._client.hgetall(self._events)
        return [decode_stamped(v) for v in raw.values()]

    async def load_partition(self, partition: int) -> PartitionSnapshot:
        """The routes and positions of one partition."""
        routes_raw = await self._client.hgetall(self._routes(partition))
        positions_raw = await self._client.hgetall(self._positions(partition))
        routes = [RouteMessage.from_dict(orjson.loads(v)) for v in routes_raw.values()]
        live = {r.route_id for r in routes if r.op != "ended"}
        positions = [RouteMessage.from_dict(orjson.loads(v)) for v in positions_raw.values()]
        return PartitionSnapshot(routes, [p for p in positions if p.route_id in live])

    async def prune(self, now: float | None = None) -> int:
        """Forget tombstones and expired events past their retention; returns how many."""
        due: Iterable[bytes] = await self._client.zrangebyscore(
            self._expiry, "-inf", now or time.time(), start=0, num=10_000
        )
        members = [m.decode() for m in due]
        if not members:
            return 0
        async with self._client.pipeline(transaction=False) as pipe:
            for member in members:
                kind, _, rest = member.partition(":")
                if kind == "e":
                    pipe.hdel(self._events, rest)
                else:
                    partition, _, route_id = rest.partition(":")
                    pipe.hdel(self._routes(int(partition)), route_id)
            pipe.zrem(self._expiry, *members)
            await pipe.execute()
        return len(members)
