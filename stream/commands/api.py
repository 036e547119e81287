"""``corridor api``: the HTTP publish API for port operators and cities."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import click

from stream.core.port.infrastructure import InfrastructureError, load
from stream.runtime import metrics
from stream.runtime.logs import setup_logging
from stream.runtime.producer import Publisher
from stream.runtime.publish_api import PublishApi, run_api
from stream.runtime.retry import redis_client
from stream.runtime.settings import ConfigError, Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="CORRIDOR_API_HOST", help="Interface.")
@click.option("--port", type=int, default=8780, show_default=True, envvar="CORRIDOR_API_PORT", help="Port.")
@click.option("--rate", type=float, default=10.0, show_default=True, help="Requests/s per publisher.")
@click.option("--burst", type=float, default=20.0, show_default=True, help="Burst per publisher.")
def api(host: str, port: int, rate: float, burst: float) -> None:
    """Serve POST /v1/events and POST /v1/port-calls (publisher credentials) until SIGTERM."""
    setup_logging()
    settings = Settings.from_env()
    try:
        redis_url = settings.resolved_redis_url()
        settings.bootstrap_servers()
        infrastructure = load(settings.port_infrastructure, settings.metric_crs)
    except (ConfigError, InfrastructureError) as exc:
        raise click.ClickException(str(exc)) from exc
    metrics.serve(settings.metrics_port)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        client = redis_client(redis_url)
        publisher = Publisher(settings)  # the producer needs the running loop
        service = PublishApi(publisher, client, settings.redis_prefix, infrastructure, rate, burst)
        try:
            async with publisher:
                await run_api(service, host, port, stop)
        finally:
            await client.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    logging.getLogger("corridor.api").info("publish api stopped")
