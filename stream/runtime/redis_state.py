"""Durable state of the active routes and events, kept in Redis hashes.

The in-memory index of a worker is rebuilt from here on start and on every rebalance: it does
not rely on the broker's table recovery (see the design notes on the embedded broker).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import redis.asyncio as aioredis

from schemas import Event, RouteMessage
from schemas.codec import dumps


class RedisState:
    """Routes (their latest message) and events by id."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._routes = f"{prefix}:state:routes"
        self._events = f"{prefix}:state:events"

    async def save_routes(self, messages: Sequence[RouteMessage]) -> None:
        """Keep the latest state of each route; an ``ended`` route is forgotten."""
        if not messages:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for msg in messages:
                if msg.op == "ended":
                    pipe.hdel(self._routes, msg.route_id)
                    pipe.hdel(self._routes + ":pos", msg.route_id)
                elif msg.op == "position":
                    pipe.hset(self._routes + ":pos", msg.route_id, dumps(msg))
                else:
                    pipe.hset(self._routes, msg.route_id, dumps(msg))
                    pipe.hdel(self._routes + ":pos", msg.route_id)
            await pipe.execute()

    async def save_events(self, events: Sequence[Event]) -> None:
        """Keep active events; cancelled ones are forgotten."""
        if not events:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for event in events:
                if event.status == "cancelled":
                    pipe.hdel(self._events, event.id)
                else:
                    pipe.hset(self._events, event.id, dumps(event))
            await pipe.execute()

    async def forget_events(self, event_ids: Sequence[str]) -> None:
        """Drop expired events."""
        if event_ids:
            await self._client.hdel(self._events, *event_ids)

    async def load(self) -> tuple[list[RouteMessage], list[RouteMessage], list[Event]]:
        """Every saved route registration, last position, and event."""
        routes_raw = await self._client.hgetall(self._routes)
        positions_raw = await self._client.hgetall(self._routes + ":pos")
        events_raw = await self._client.hgetall(self._events)
        routes = [RouteMessage.from_dict(orjson.loads(v)) for v in routes_raw.values()]
        known = {r.route_id for r in routes}
        positions = [RouteMessage.from_dict(orjson.loads(v)) for v in positions_raw.values()]
        positions = [p for p in positions if p.route_id in known]
        events = [Event.from_dict(orjson.loads(v)) for v in events_raw.values()]
        return routes, positions, events
