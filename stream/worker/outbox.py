"""Alerts into Redis: one durable, bounded stream per driver, deduplicated, with a wake-up.

The alerts of a batch are appended by Lua script calls, each driver's in order, unless the driver
already has them: the same content for an alert id is never appended twice, a ``raised`` for an
alert the driver already holds becomes ``updated``, and a ``cleared`` for an alert the driver never
saw is dropped. What a call appends is announced in one message on the wake-up channel, entries
and all (``wake_channel``): a gateway writes them to its drivers' sockets straight from the message
and reads a stream only to resume or catch up. One call serves many drivers (up to
``ALERTS_PER_CALL`` alerts): on a single Redis all of a batch's drivers share calls; on a Redis
Cluster only drivers whose keys (hash-tagged by driver) fall in the same slot do, as a script's keys
must. The alerts of a call travel as one argument (length-prefixed fields), which keeps the client's
command packing cheap.

A stream is bounded by length (``MAXLEN ~ maxlen``) and by age: every call that appends trims
entries older than ``retention_s`` by Redis's clock (``XTRIM MINID``, exact, so that a short stream
loses its old entries too), and the whole stream expires ``retention_s`` after its last append.

Every stored transition is also appended, as the driver received it, to one global stream bounded
by length (``<prefix>:dispatch``): the dispatchers' live feed of every driver's alerts. On a single
Redis the append calls write it themselves, so that the payloads are not sent back to the client and
out again (which costs Redis about a fifth more CPU per alert, and the client twice as much). On a
Redis Cluster a script's keys must share
a slot: the append calls touch only drivers' keys and one more call writes the dispatch stream. A
lost dispatch entry never affects what drivers receive.

Alerts are taken as plain dicts (the wire form, as decoded from JSON) or as ``Alert`` records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import NoScriptError

from schemas import Alert
from schemas.alert import mark_of, state_offset
from schemas.codec import to_plain
from schemas.route import DRIVER_ID
from stream.runtime import metrics
from stream.runtime.redis_keys import (
    DRIVER_CLOSE,
    dispatch_stream_key,
    driver_key_head,
    driver_seen_key,
    driver_stream_key,
    wake_channel,
)

if TYPE_CHECKING:
    from stream.core.wire import WireAlerts

SEEN_TTL_S = 7 * 24 * 3600
RETENTION_S = 24 * 3600
DISPATCH_MAXLEN = 5000
ALERTS_PER_CALL = 500  # bounds the time one script call holds Redis

_OPTIONS = orjson.OPT_NAIVE_UTC
STATES = frozenset({"raised", "updated", "cleared"})
MAX_ALERT_BYTES = 64 * 1024
LIVE_MAX_BYTES = 8 * 1024  # an alert up to this size travels in the wake-up message itself

# Records travel as one argument of length-prefixed fields (``<bytes>:<value>``, as ``_fields``
# writes them): one argument per call rather than several per alert keeps the client's packing cheap.
_READ_FIELDS = """
local function reader(data)
  local pos = 1
  return function()
    if pos > #data then return nil end
    local colon = string.find(data, ':', pos, true)
    local stop = colon + tonumber(string.sub(data, pos, colon - 1))
    pos = stop + 1
    return string.sub(data, colon + 1, stop)
  end
end
"""

# ARGV: maxlen, what drivers' keys start with, wake channel, seen ttl, retention ms, stream ttl, the
# drivers: (driver id, alert count) fields then (alert id, content mark, payload, state offset)
# fields per alert, the dispatch stream's maxlen ('0': the caller writes it), the dispatch stream's
# key, and what follows the driver's id in its keys. The script names each driver's keys itself from
# these parts (``redis_keys.driver_key_head``, the id, ``DRIVER_CLOSE``, ``seen`` or ``alerts``): on
# a single Redis the call passes no KEYS, which spares the client packing and Redis reading two
# arguments per driver; on a Redis Cluster it passes them all (one slot), as a cluster routes by
# them. Returns per alert its stream id (with the payload as stored, {id, payload}, when the caller
# writes the dispatch stream), or false (nil) when the driver already has it. What was appended is
# announced in one message (see ``wake_channel``).
_APPEND = (
    _READ_FIELDS
    + f"local LIVE_MAX = {LIVE_MAX_BYTES}\n"
    + """
local out = {}
local field = reader(ARGV[7])
local dispatch = nil
if ARGV[8] ~= '0' then dispatch = ARGV[9] end
local oldest = nil
if ARGV[5] ~= '0' then
  local now = redis.call('TIME')
  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  oldest = string.format('%d', ms - tonumber(ARGV[5]))
end
local woken = {}  -- the wake-up message's lines
while true do
  local driver = field()
  if not driver then break end
  local count = tonumber(field())
  local base = ARGV[2] .. driver .. ARGV[10]
  local seen, stream = base .. 'seen', base .. 'alerts'
  local appended, bare = false, false
  for _ = 1, count do
    local alert_id, mark, payload = field(), field(), field()
    local at = tonumber(field())  -- where the payload's state value starts (schemas.alert.state_offset)
    local prev = nil
    local marked = false  -- a first sight of the alert, marked by HSETNX (most alerts: one command)
    if mark ~= 'C' and redis.call('HSETNX', seen, alert_id, mark) == 1 then
      marked = true
    else
      prev = redis.call('HGET', seen, alert_id)
    end
    local keep = true
    local state = nil  -- the state the driver gets, when not the one the payload holds
    if mark == 'C' then
      if (not prev) or prev == 'C' then keep = false end
    elseif prev == mark then
      keep = false
    elseif prev and prev ~= 'C' then
      state = 'updated'
    else
      state = 'raised'
    end
    if keep then
      if state and not (string.sub(payload, at + 1, at + #state + 1) == state .. '"') then
        local close = string.find(payload, '"', at + 1, true)  -- the end of the state value
        payload = string.sub(payload, 1, at) .. state .. string.sub(payload, close)
      end
      if not marked then redis.call('HSET', seen, alert_id, mark) end
      local id = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[1], '*', 'a', payload)
      if dispatch then
        redis.call('XADD', dispatch, 'MAXLEN', '~', ARGV[8], '*', 'a', payload, 'd', driver, 's', id)
        out[#out + 1] = id
      else
        out[#out + 1] = {id, payload}
      end
      if #payload <= LIVE_MAX and not string.find(payload, '\\n', 1, true) then
        woken[#woken + 1] = driver .. ' ' .. id .. ' ' .. payload
      else
        bare = true
      end
      appended = true
    else
      out[#out + 1] = false
    end
  end
  if appended then
    redis.call('EXPIRE', seen, ARGV[4])
    if oldest then redis.call('XTRIM', stream, 'MINID', oldest) end
    redis.call('EXPIRE', stream, ARGV[6])
    if bare then woken[#woken + 1] = driver end
  end
end
if #woken > 0 then redis.call('PUBLISH', ARGV[3], table.concat(woken, '\\n')) end
return out
"""
)

# KEYS: the dispatch stream. ARGV: maxlen, and the entries: (payload, driver id, driver stream id)
# fields each.
_DISPATCH = (
    _READ_FIELDS
    + """
local field = reader(ARGV[2])
local count = 0
while true do
  local payload = field()
  if not payload then break end
  local driver, sid = field(), field()
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'a', payload, 'd', driver, 's', sid)
  count = count + 1
end
return count
"""
)


def _fields(*values: bytes) -> bytes:
    """Values as length-prefixed fields, as the scripts read them."""
    return b"".join(b"%d:%b" % (len(value), value) for value in values)


class InvalidAlert(ValueError):
    """An alert lacks what the outbox needs to store it (driver id, alert id, a known state)."""


def plain_alert(alert: Alert | Mapping[str, Any]) -> dict[str, Any]:
    """The wire form of an alert, checked for what storing it relies on; raises ``InvalidAlert``."""
    if isinstance(alert, Alert):
        return to_plain(alert)
    if not isinstance(alert, Mapping):
        raise InvalidAlert(f"an alert must be a JSON object, got {type(alert).__name__}")
    data = alert if isinstance(alert, dict) else dict(alert)
    driver = data.get("driver_id")
    if not isinstance(driver, str) or not DRIVER_ID.fullmatch(driver):
        raise InvalidAlert(
            f"alert driver_id must be a driver id ([A-Za-z0-9_.:@-], 1-128), got {str(driver)[:64]!r}"
        )
    alert_id = data.get("alert_id")
    if not isinstance(alert_id, str) or not 0 < len(alert_id) <= 128:
        raise InvalidAlert(
            f"alert alert_id must be a string of 1 to 128 characters, got {str(alert_id)[:64]!r}"
        )
    if data.get("state") not in STATES:
        raise InvalidAlert(
            f"alert state must be one of {sorted(STATES)}, got {str(data.get('state'))[:32]!r}"
        )
    return data


@dataclass(frozen=True, slots=True)
class Storable:
    """An alert checked for storing, with the payload it is stored as (encoded once)."""

    plain: dict[str, Any]
    payload: bytes


def storable_alert(alert: Any) -> Storable:
    """``plain_alert``, also refusing an alert whose JSON cannot be written or is over
    ``MAX_ALERT_BYTES`` (a driver's stream is no place for it): a reader of a topic checks each
    record with this before a batch is appended, so that one record never fails the batch. The
    alert is written once, in the layout the outbox's script and the gateways read (``schemas.alert``),
    whatever layout its producer sent."""
    data = plain_alert(alert)
    try:
        payload = orjson.dumps(data, option=orjson.OPT_NAIVE_UTC)
    except orjson.JSONEncodeError as exc:
        raise InvalidAlert(f"alert cannot be written as JSON: {exc}") from None
    if len(payload) > MAX_ALERT_BYTES:
        raise InvalidAlert(f"alert is {len(payload):,} bytes, over {MAX_ALERT_BYTES:,}")
    return Storable(data, payload)


def _record(alert_id: bytes, mark: bytes, payload: bytes, state_at: int) -> bytes:
    """An alert as the append script reads it: its id, its content mark, its payload, and where
    the payload's state value starts (five digits: one formatting for the whole record)."""
    if state_at < 100_000:
        return b"%d:%b%d:%b%d:%b5:%05d" % (
            len(alert_id),
            alert_id,
            len(mark),
            mark,
            len(payload),
            payload,
            state_at,
        )
    at = b"%d" % state_at
    return b"%d:%b%d:%b%d:%b%d:%b" % (
        len(alert_id),
        alert_id,
        len(mark),
        mark,
        len(payload),
        payload,
        len(at),
        at,
    )


A = TypeVar("A", bound=Alert | Mapping[str, Any] | Storable)


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
        self._append_sha = _sha(_APPEND)
        self._dispatch_sha = _sha(_DISPATCH)

    async def append(self, alerts: Sequence[A]) -> list[tuple[A, str | None]]:
        """Store a batch of records, wire-form dicts or ``Storable`` alerts (see ``append_wire``).

        Each alert gets its driver stream id, or None if the driver already had it. Every alert is
        checked before anything is written (``InvalidAlert`` for one that cannot be stored).
        """
        drivers, records = [], []
        for alert in alerts:
            if isinstance(alert, Storable):  # checked and encoded already
                plain, payload = alert.plain, alert.payload
            else:
                plain = plain_alert(alert)
                payload = orjson.dumps(plain, option=orjson.OPT_NAIVE_UTC)
            drivers.append(plain["driver_id"])
            records.append(
                _record(plain["alert_id"].encode(), mark_of(plain), payload, state_offset(payload))
            )
        ids = await self._append(drivers, records)
        return list(zip(alerts, ids, strict=True))

    async def append_wire(self, alerts: WireAlerts) -> list[str | None]:
        """Store the engine's transitions as encoded (their ids and marks computed with them): the
        path of a worker's own alerts, which need neither decoding nor checking. Returns each
        alert's driver stream id, or None if the driver already had it."""
        with metrics.stage("store_alerts"):
            records = [
                _record(alert_id, mark, payload, at)
                for alert_id, mark, payload, at in zip(
                    alerts.ids, alerts.marks, alerts.payloads, alerts.state_at, strict=True
                )
            ]
        return await self._append(alerts.drivers, records)

    async def _append(self, drivers: Sequence[str], records: Sequence[bytes]) -> list[str | None]:
        """Script calls of up to ``ALERTS_PER_CALL`` alerts (see the module), all in one round trip
        (plus one for dispatch on a Redis Cluster)."""
        if not records:
            return []
        with metrics.stage("store_alerts"):
            calls, inline = self._plan(drivers, records)
        replies = await self._run(self._append_sha, _APPEND, [(n, args) for _, args, n in calls])
        with metrics.stage("store_alerts"):
            ids: list[str | None] = [None] * len(records)
            payloads: list[bytes | None] = [None] * len(records)
            for (chunk, _, _), reply in zip(calls, replies, strict=True):
                for i, stored in zip(chunk, reply, strict=True):
                    if stored and inline:
                        ids[i] = _text(stored)
                    elif stored:
                        ids[i], payloads[i] = _text(stored[0]), stored[1]
        if self._dispatch_maxlen > 0 and not inline and any(ids):
            entries = b"".join(
                _fields(payload, driver.encode(), sid.encode())
                for driver, sid, payload in zip(drivers, ids, payloads, strict=True)
                if sid is not None and payload is not None
            )
            await self._run(
                self._dispatch_sha,
                _DISPATCH,
                [(1, [dispatch_stream_key(self._prefix), self._dispatch_maxlen, entries])],
            )
        return ids

    def _plan(
        self, drivers: Sequence[str], records: Sequence[bytes]
    ) -> tuple[list[tuple[list[int], list[Any], int]], bool]:
        """The script calls of a batch, (alerts, arguments, number of keys) each, and whether
        they write the dispatch stream themselves."""
        by_driver: dict[str, list[int]] = {}
        for i, driver in enumerate(drivers):
            by_driver.setdefault(driver, []).append(i)
        channel = wake_channel(self._prefix)
        retention_ms = max(0, self._retention_s * 1000)
        stream_ttl = min(SEEN_TTL_S, self._retention_s) if self._retention_s > 0 else SEEN_TTL_S
        head = [self._maxlen, driver_key_head(self._prefix), channel, SEEN_TTL_S, retention_ms, stream_ttl]
        tail = [dispatch_stream_key(self._prefix), DRIVER_CLOSE]
        # On a single Redis each call writes the dispatch stream too (the payloads need not come
        # back to be sent again) and names no keys; on a Cluster a call's keys must share a slot and
        # be declared, so the dispatch stream is written apart.
        cluster = isinstance(self._client, RedisCluster)
        inline = self._dispatch_maxlen > 0 and not cluster
        dispatch_arg = self._dispatch_maxlen if inline else 0

        def call(chunk: list[int], keys: list[str], blob: list[bytes]) -> None:
            args = [*keys, *head, b"".join(blob), dispatch_arg, *tail]
            calls.append((chunk, args, len(keys)))

        calls: list[tuple[list[int], list[Any], int]] = []  # (alerts, arguments, number of keys)
        for group in self._groups(by_driver):
            chunk: list[int] = []
            keys: list[str] = []
            blob: list[bytes] = []
            for driver, indexes in group:
                for start in range(0, len(indexes), ALERTS_PER_CALL):
                    part = indexes[start : start + ALERTS_PER_CALL]
                    if chunk and len(chunk) + len(part) > ALERTS_PER_CALL:
                        call(chunk, keys, blob)
                        chunk, keys, blob = [], [], []
                    if cluster:
                        keys.append(driver_seen_key(self._prefix, driver))
                        keys.append(driver_stream_key(self._prefix, driver))
                    blob.append(_fields(driver.encode(), b"%d" % len(part)))
                    blob.extend(records[i] for i in part)
                    chunk += part
            if chunk:
                call(chunk, keys, blob)
        return calls, inline

    def _groups(self, by_driver: dict[str, list[int]]) -> list[list[tuple[str, list[int]]]]:
        """Drivers whose alerts may share script calls: all of them on a single Redis, those of
        one hash slot on a Redis Cluster."""
        if not isinstance(self._client, RedisCluster):
            return [list(by_driver.items())]
        slots: dict[int, list[tuple[str, list[int]]]] = {}
        for driver, indexes in by_driver.items():
            slot = key_slot(driver_stream_key(self._prefix, driver).encode())
            slots.setdefault(slot, []).append((driver, indexes))
        return list(slots.values())

    async def _run(self, sha: str, script: str, calls: list[tuple[int, list[Any]]]) -> list[Any]:
        """EVALSHA every call in one pipeline; loads the script and retries the calls Redis lacked it for.

        (A registered redis-py script would ask Redis whether it exists on every pipeline: a round trip.)
        """
        replies: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        for attempt in range(2):
            async with self._client.pipeline(transaction=False) as pipe:
                for n in pending:
                    nkeys, args = calls[n]
                    pipe.evalsha(sha, nkeys, *args)
                results = await pipe.execute(raise_on_error=False)
            missing: list[int] = []
            for n, result in zip(pending, results, strict=True):
                if isinstance(result, NoScriptError) and attempt == 0:
                    missing.append(n)
                elif isinstance(result, Exception):
                    raise result
                else:
                    replies[n] = result
            if not missing:
                break
            await self._client.script_load(script)
            pending = missing
        return replies


def _sha(script: str) -> str:
    """The name Redis gives a script (EVALSHA)."""
    return hashlib.sha1(script.encode()).hexdigest()  # noqa: S324 - not a security use


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
