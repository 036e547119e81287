"""Publishers of the publish API: credentials (salted hashes in Redis), sources, rate limits.

A credential is ``cpk.<key id>.<secret>``. Redis keeps, per publisher, its sources, the key id,
a random salt and ``sha256(salt || secret)``; never the secret. ``<prefix>:publishers`` maps the
name to that record and ``<prefix>:publisher-keys`` maps the key id to the name.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis

PREFIX = "cpk"
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SOURCE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
RESERVED_SOURCES = frozenset({"port", "stream", "routes"})  # derived events and dead-letter sources


class PublisherError(ValueError):
    """A publisher cannot be added or changed; the message says why."""


@dataclass(frozen=True, slots=True)
class PublisherRecord:
    """A publisher as stored: its sources and the salted hash of its secret."""

    name: str
    sources: tuple[str, ...]
    key_id: str
    salt: str
    digest: str
    created_at: str

    def to_json(self) -> bytes:
        """The stored form."""
        return orjson.dumps({**{k: getattr(self, k) for k in self.__slots__}, "sources": list(self.sources)})

    @classmethod
    def from_json(cls, raw: bytes | str) -> PublisherRecord:
        """Read the stored form."""
        data = orjson.loads(raw)
        return cls(
            data["name"],
            tuple(data["sources"]),
            data["key_id"],
            data["salt"],
            data["digest"],
            data["created_at"],
        )


def digest(salt: str, secret: str) -> str:
    """sha256 of the salt and the secret, hex."""
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("utf-8")).hexdigest()


def split_credential(credential: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed credential, else None."""
    parts = credential.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


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
        self._by_name = f"{prefix}:publishers"
        self._by_key = f"{prefix}:publisher-keys"

    async def add(self, name: str, sources: tuple[str, ...]) -> str:
        """Create a publisher and return its credential (shown once, stored only as a hash)."""
        if not NAME.match(name):
            raise PublisherError(f"name {name!r}: use letters, digits, '_', '.', '-' (at most 64)")
        check_sources(sources)
        key_id, secret, salt = secrets.token_hex(8), secrets.token_urlsafe(32), secrets.token_hex(16)
        record = PublisherRecord(
            name, sources, key_id, salt, digest(salt, secret), datetime.now(UTC).isoformat(timespec="seconds")
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
    """Requests per second with a burst: ``take`` answers 0 (go) or the seconds to wait."""

    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def take(self, now: float | None = None) -> float:
        """Spend one token if there is one; else how long until there will be."""
        now = time.monotonic() if now is None else now
        if self.tokens < 0:
            self.tokens = self.burst
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate
