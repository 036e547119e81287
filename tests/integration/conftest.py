"""Integration fixtures: a Redis client and a key prefix of its own for each test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from stream.runtime.retry import redis_client as make_redis_client


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this folder is an integration test (a conftest's ``pytestmark`` marks none)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
async def redis_client(services: dict[str, str]) -> AsyncIterator[aioredis.Redis]:
    """A client of the session's real Redis."""
    client = make_redis_client(services["redis_url"])
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"
