"""Publishers of the publish API: credentials (salted hashes in Redis), sources, kinds, rate limits.

A credential is ``cpk.<key id>.<secret>``. Redis keeps, per publisher, its sources, the event
kinds it may post, the key id, a random salt and ``sha256(salt || secret)``; never the secret.
``<prefix>:publishers`` maps the name to that record and ``<prefix>:publisher-keys`` maps the key
id to the name.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis

from schemas.event import EVENT_KINDS
from stream.runtime.redis_keys import publisher_keys_key, publishers_key

PREFIX = "cpk"
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SOURCE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
RESERVED_SOURCES = frozenset({"port", "stream", "routes"})  # derived events and dead-letter sources
MAX_CREDENTIAL_CHARS = 512
# Key ids are hex and secrets URL-safe base64: anything else (other bytes, other lengths) is refused
# before it reaches Redis or the hash.
CREDENTIAL = re.compile(r"cpk\.([0-9a-f]{1,64})\.([A-Za-z0-9_-]{1,256})", re.ASCII)
CITY_KINDS = ("closure", "restriction", "perimeter", "hazard", "roadworks")
PORT_KINDS = (*CITY_KINDS, "port_call", "bridge_lift", "lock_closure", "vessel")
ROLES = {"city": CITY_KINDS, "port": PORT_KINDS}
MAX_WALK_DEPTH = 4  # a MultiPolygon's positions are four arrays deep; deeper is not GeoJSON


class PublisherError(ValueError):
    """A publisher cannot be added or changed; the message says why."""


@dataclass(frozen=True, slots=True)
class PublisherRecord:
    """A publisher as stored: its sources, the kinds it may post and the salted hash of its secret."""

    name: str
    sources: tuple[str, ...]
    key_id: str
    salt: str
    digest: str
    created_at: str
    kinds: tuple[str, ...] = CITY_KINDS
    role: str = "city"

    def to_json(self) -> bytes:
        """The stored form."""
        data: dict[str, Any] = {k: getattr(self, k) for k in self.__slots__}
        return orjson.dumps({**data, "sources": list(self.sources), "kinds": list(self.kinds)})

    @classmethod
    def from_json(cls, raw: bytes | str) -> PublisherRecord:
        """Read the stored form; a record stored before kinds existed may post the city kinds only."""
        data = orjson.loads(raw)
        return cls(
            data["name"],
            tuple(data["sources"]),
            data["key_id"],
            data["salt"],
            data["digest"],
            data["created_at"],
            tuple(data.get("kinds") or CITY_KINDS),
            data.get("role") or "city",
        )


def digest(salt: str, secret: str) -> str:
    """sha256 of the salt and the secret, hex."""
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("utf-8")).hexdigest()


def split_credential(credential: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed credential, else None (odd bytes, too long, wrong shape)."""
    if len(credential) > MAX_CREDENTIAL_CHARS:
        return None
    found = CREDENTIAL.fullmatch(credential.strip())
    if found is None:
        return None
    return found[1], found[2]


def kinds_for(role: str, kinds: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The event kinds a publisher may post: ``kinds`` when given, else those of its role."""
    if role not in ROLES:
        raise PublisherError(f"role {role!r}: use one of {', '.join(sorted(ROLES))}")
    if not kinds:
        return ROLES[role]
    unknown = sorted(set(kinds) - EVENT_KINDS)
    if unknown:
        raise PublisherError(f"kind {unknown[0]!r}: use one of {', '.join(sorted(EVENT_KINDS))}")
    return tuple(dict.fromkeys(kinds))


def check_sources(sources: tuple[str, ...]) -> None:
    """Refuse empty, malformed or reserved sources."""
    if not sources:
        raise PublisherError("give at least one --source")
    for source in sources:
        if not SOURCE.match(source):
            raise PublisherError(f"source {source!r}: use letters, digits, '_', '.', '-' (at most 64)")
        if source in RESERVED_SOURCES:
            raise PublisherError(f"source {source!r} is reserved for Corridor's own events")


class PublisherStore:
    """Publishers of one deployment, in Redis."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self._by_name = publishers_key(prefix)
        self._by_key = publisher_keys_key(prefix)

    async def add(
        self, name: str, sources: tuple[str, ...], role: str = "city", kinds: tuple[str, ...] = ()
    ) -> str:
        """Create a publisher and return its credential (shown once, stored only as a hash)."""
        if not NAME.match(name):
            raise PublisherError(f"name {name!r}: use letters, digits, '_', '.', '-' (at most 64)")
        check_sources(sources)
        allowed = kinds_for(role, kinds)
        key_id, secret, salt = secrets.token_hex(8), secrets.token_urlsafe(32), secrets.token_hex(16)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        record = PublisherRecord(
            name,
            sources,
            key_id,
            salt,
            digest(salt, secret),
            created,
            allowed,
            role if not kinds else "custom",
        )
        if not await self._redis.hsetnx(self._by_name, name, record.to_json()):
            raise PublisherError(f"publisher {name!r} exists: revoke it first to issue a new credential")
        await self._redis.hset(self._by_key, key_id, name)
        return f"{PREFIX}.{key_id}.{secret}"

    async def list(self) -> list[PublisherRecord]:
        """Every publisher, by name."""
        raw = await self._redis.hgetall(self._by_name)
        return sorted((PublisherRecord.from_json(v) for v in raw.values()), key=lambda r: r.name)

    async def revoke(self, name: str) -> bool:
        """Remove a publisher: its credential stops working at once. False if unknown."""
        raw = await self._redis.hget(self._by_name, name)
        if raw is None:
            return False
        record = PublisherRecord.from_json(raw)
        await self._redis.hdel(self._by_key, record.key_id)
        await self._redis.hdel(self._by_name, name)
        return True

    async def authenticate(self, credential: str) -> PublisherRecord | None:
        """The publisher a credential belongs to, or None (unknown, revoked or wrong secret)."""
        parts = split_credential(credential)
        if parts is None:
            return None
        key_id, secret = parts
        name = await self._redis.hget(self._by_key, key_id)
        raw = await self._redis.hget(self._by_name, name) if name is not None else None
        if raw is None:
            return None
        record = PublisherRecord.from_json(raw)
        if record.key_id != key_id or not hmac.compare_digest(record.digest, digest(record.salt, secret)):
            return None
        return record


@dataclass
class TokenBucket:
    """Work per second with a burst: ``take`` answers 0 (go) or the seconds to wait."""

    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def wait(self, cost: float = 1.0, now: float | None = None) -> float:
        """Seconds until ``cost`` tokens are there (0: now), refilling first; nothing is spent."""
        now = time.monotonic() if now is None else now
        if self.tokens < 0:
            self.tokens = self.burst
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= cost else (cost - self.tokens) / self.rate

    def take(self, cost: float = 1.0, now: float | None = None) -> float:
        """Spend ``cost`` tokens if they are there; else how long until they will be."""
        wait = self.wait(cost, now)
        if wait == 0.0:
            self.tokens -= cost
        return wait


def count_vertices(geometry: Any, limit: int) -> int:
    """Positions in a GeoJSON geometry's coordinates, counted up to just past ``limit`` (cheap bound).

    Only list lengths are read: nothing is validated here, the schema check comes later and is what
    this count protects. A malformed position (a long run of numbers, a stray value) counts one per
    value, as the schema check visits each of them.
    """
    coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
    if not isinstance(coordinates, list):
        return 0
    found = 0
    level: list[list[Any]] = [coordinates]
    for _ in range(MAX_WALK_DEPTH):
        deeper: list[list[Any]] = []
        for part in level:
            if not part or not isinstance(part[0], list):
                found += 1 if len(part) <= 3 else len(part)  # a position
            else:
                for item in part:
                    if isinstance(item, list):
                        deeper.append(item)
                    else:
                        found += 1
            if found > limit:
                return found
        level = deeper
        if not level:
            break
    return found
