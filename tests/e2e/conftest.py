"""End-to-end fixtures shared by several modules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from stream.worker.outbox import RedisOutbox
from tests.support.processes import Deployment


@pytest.fixture
async def outbox(services: dict[str, str], deployment: Deployment) -> AsyncIterator[RedisOutbox]:
    """The notifier's side: appends alerts to this deployment's driver streams."""
    client = aioredis.Redis.from_url(services["redis_url"])
    try:
        yield RedisOutbox(client, deployment.settings.redis_prefix)
    finally:
        await client.aclose()
