"""Alerts into Redis: one durable, bounded stream per driver, deduplicated, with a wake-up.

Each alert transition is appended atomically (a Lua script) to the driver's stream unless the
driver already has it: the same content for an alert id is never appended twice, a ``raised``
for an alert the driver already holds becomes ``updated``, and a ``cleared`` for an alert the
driver never saw is dropped. Every append publishes the driver id on the wake-up channel, which
gateways listen to.

A stream is bounded by length (``MAXLEN ~ maxlen``) and by age: every append trims entries older
than ``retention_s`` by Redis's clock (``XTRIM MINID``, exact, so that a short stream loses its
old entries too), and the whole stream expires ``retention_s`` after its last append.

Every stored transition is also appended, as the driver received it, to one global stream bounded
by length (``<prefix>:dispatch``): the dispatchers' live feed of every driver's alerts. It is
written after the per-driver appends (a separate key, so that the per-driver script stays on one
Redis Cluster slot); a lost dispatch entry never affects what drivers receive.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis

from schemas import Alert
from schemas.codec import to_plain

SEEN_TTL_S = 7 * 24 * 3600
RETENTION_S = 24 * 3600
DISPATCH_MAXLEN = 5000

_APPEND = """
local prev = redis.call('HGET', KEYS[1], ARGV[1])
local mark = ARGV[2]
local payload = ARGV[3]
if mark == 'C' then
  if (not prev) or prev == 'C' then return false end
elseif prev == mark then
  return false
elseif prev and prev ~= 'C' then
  payload = string.gsub(payload, '"state":"%a+"', '"state":"updated"', 1)
else
  payload = string.gsub(payload, '"state":"%a+"', '"state":"raised"', 1)
end
redis.call('HSET', KEYS[1], ARGV[1], mark)
redis.call('EXPIRE', KEYS[1], ARGV[7])
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'a', payload, 't', ARGV[5])
if ARGV[9] ~= '0' then
  local now = redis.call('TIME')
  local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[9])
  redis.call('XTRIM', KEYS[2], 'MINID', string.format('%d', oldest))
end
redis.call('EXPIRE', KEYS[2], ARGV[10])
redis.call('PUBLISH', ARGV[6], ARGV[8])
return {id, payload}
"""


def driver_stream_key(prefix: str, driver_id: str) -> str:
    """The Redis stream of a driver's alerts (hash-tagged by driver for Redis Cluster)."""
    return f"{prefix}:drv:{{{driver_id}}}:alerts"


def driver_seen_key(prefix: str, driver_id: str) -> str:
    """What each alert id of a driver last delivered (a content mark)."""
    return f"{prefix}:drv:{{{driver_id}}}:seen"


def dispatch_stream_key(prefix: str) -> str:
    """The bounded stream of every driver's delivered alerts, for dispatchers."""
    return f"{prefix}:dispatch"


def wake_channel(prefix: str) -> str:
    """The pub/sub channel on which driver ids are announced when their stream grows."""
    return f"{prefix}:wake"


# Fields that change on every recomputation without telling the driver anything new: a replay or an
# index rebuild that differs only in these is the same alert. (The engine decides what is news.)
_NOT_NEWS = frozenset({"state", "created_at", "event_received_at", "expected_at"})


def _mark(alert: dict[str, Any]) -> str:
    if alert["state"] == "cleared":
        return "C"
    view = {k: v for k, v in alert.items() if k not in _NOT_NEWS}
    return "A" + hashlib.blake2b(orjson.dumps(view, option=orjson.OPT_SORT_KEYS), digest_size=10).hexdigest()


class RedisOutbox:
    """Appends alert transitions to per-driver streams; returns what was stored."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        maxlen: int = 1000,
        retention_s: int = RETENTION_S,
        dispatch_maxlen: int = DISPATCH_MAXLEN,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._maxlen = maxlen
        self._retention_s = retention_s
        self._dispatch_maxlen = dispatch_maxlen
        self._script = client.register_script(_APPEND)

    async def append(self, alerts: Sequence[Alert]) -> list[tuple[Alert, str | None]]:
        """Append a batch in one round trip; each alert gets its stream id, or None if deduped."""
        if not alerts:
            return []
        now_ms = str(int(time.time() * 1000))
        retention_ms = str(max(0, self._retention_s * 1000))
        stream_ttl = min(SEEN_TTL_S, self._retention_s) if self._retention_s > 0 else SEEN_TTL_S
        channel = wake_channel(self._prefix)
        async with self._client.pipeline(transaction=False) as pipe:
            for alert in alerts:
                plain = to_plain(alert)
                await self._script(
                    keys=[
                        driver_seen_key(self._prefix, alert.driver_id),
                        driver_stream_key(self._prefix, alert.driver_id),
                    ],
                    args=[
                        alert.alert_id,
                        _mark(plain),
                        orjson.dumps(plain),
                        self._maxlen,
                        now_ms,
                        channel,
                        SEEN_TTL_S,
                        alert.driver_id,
                        retention_ms,
                        stream_ttl,
                    ],
                    client=pipe,
                )
            results = await pipe.execute()
        stored = [(alert, _text(r[0]) if r else None) for alert, r in zip(alerts, results, strict=True)]
        if self._dispatch_maxlen > 0 and any(sid for _, sid in stored):
            key = dispatch_stream_key(self._prefix)
            async with self._client.pipeline(transaction=False) as pipe:
                for (alert, sid), r in zip(stored, results, strict=True):
                    if sid is not None:
                        fields = {"a": r[1], "d": alert.driver_id, "s": sid}
                        pipe.xadd(key, fields, maxlen=self._dispatch_maxlen, approximate=True)  # type: ignore[arg-type]
                await pipe.execute()
        return stored


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
