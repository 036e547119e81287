"""``corridor gateway``: the websocket server where drivers receive their alerts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal

import click
import redis.asyncio as aioredis
import uvloop

from stream.gateway.keyring import load_keyring
from stream.gateway.server import GatewayOptions, run_gateway
from stream.runtime import metrics
from stream.runtime.logs import setup_logging
from stream.runtime.settings import ConfigError, Settings


@click.command()
@click.option("--host", default=None, help="Interface (default CORRIDOR_GATEWAY_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default CORRIDOR_GATEWAY_PORT or 8765).")
def gateway(host: str | None, port: int | None) -> None:
    """Serve drivers' websockets at /drivers/{driver_id}/alerts until SIGTERM or Ctrl-C.

    On SIGTERM the gateway stops accepting, closes every driver with 1012 (service restart) and
    the last id it sent, so that drivers resume on another gateway, and exits within
    CORRIDOR_GATEWAY_DRAIN_S.
    """
    setup_logging()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # every driver is an open socket
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    settings = Settings.from_env()
    try:
        client = aioredis.Redis.from_url(settings.resolved_redis_url())
        keyring = load_keyring(settings)
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    metrics.serve(settings.metrics_port)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await run_gateway(
                client,
                settings.redis_prefix,
                keyring,
                host or settings.gateway_host,
                port or settings.gateway_port,
                stop=stop,
                options=GatewayOptions.from_settings(settings),
            )
        finally:
            await client.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        # uvloop: timers, sockets and callbacks in C, for 10,000 connections' heartbeats and writes
        uvloop.run(main())
    logging.getLogger("corridor.gateway").info("gateway stopped")
