"""Integration fixtures: a Redis client and a key prefix of its own for each test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis_client(services: dict[str, str]) -> AsyncIterator[aioredis.Redis]:
    """A client of the session's real Redis."""
    client = aioredis.Redis.from_url(services["redis_url"])
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"
