"""Retrying Redis operations across an outage, so agents hold their place instead of crashing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

log = logging.getLogger("corridor.retry")

T = TypeVar("T")

MAX_BACKOFF_S = 5.0

TRANSIENT = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
)


async def until_done(what: str, operation: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``operation`` until it succeeds, backing off while Redis is unreachable.

    The agent calling this stops consuming meanwhile (its offsets are not committed), so nothing is
    lost and the broker buffers what arrives: backpressure instead of a crash.
    """
    backoff = 0.05
    attempt = 0
    while True:
        try:
            return await operation(*args)
        except TRANSIENT as exc:
            attempt += 1
            level = logging.WARNING if attempt in (1, 10) or attempt % 50 == 0 else logging.DEBUG
            log.log(
                level,
                "redis unavailable during %s (attempt %d, %s); retrying in %.2fs",
                what,
                attempt,
                exc,
                backoff,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)


SOCKET_TIMEOUT_S = 10.0  # a frozen (not dead) Redis: a command fails, and is retried, instead of hanging
CONNECT_TIMEOUT_S = 5.0


def redis_client(url: str) -> aioredis.Redis:
    """A Redis client that reconnects by itself after a restart (a few quick retries per command)
    and never waits on a silent Redis for longer than ``SOCKET_TIMEOUT_S``."""
    return aioredis.Redis.from_url(
        url,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        health_check_interval=30,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
    )
