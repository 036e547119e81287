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
from stream.runtime.publish_api import MAX_BODY_BYTES, Limits, PublishApi, run_api
from stream.runtime.retry import redis_client
from stream.runtime.settings import ConfigError, Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="CORRIDOR_API_HOST", help="Interface.")
@click.option("--port", type=int, default=8780, show_default=True, envvar="CORRIDOR_API_PORT", help="Port.")
@click.option(
    "--rate",
    type=float,
    default=10.0,
    show_default=True,
    envvar="CORRIDOR_API_RATE",
    help="Requests/s per publisher.",
)
@click.option(
    "--burst", type=float, default=20.0, show_default=True, envvar="CORRIDOR_API_BURST", help="Request burst."
)
@click.option(
    "--event-rate",
    type=float,
    default=2_000.0,
    show_default=True,
    envvar="CORRIDOR_API_EVENT_RATE",
    help="Events/s per publisher.",
)
@click.option(
    "--event-burst",
    type=float,
    default=5_000.0,
    show_default=True,
    envvar="CORRIDOR_API_EVENT_BURST",
    help="Event burst (also the most events in one request).",
)
@click.option(
    "--vertex-rate",
    type=float,
    default=200_000.0,
    show_default=True,
    envvar="CORRIDOR_API_VERTEX_RATE",
    help="Geometry vertices/s per publisher.",
)
@click.option(
    "--vertex-burst",
    type=float,
    default=500_000.0,
    show_default=True,
    envvar="CORRIDOR_API_VERTEX_BURST",
    help="Vertex burst.",
)
@click.option(
    "--max-request-vertices",
    type=click.IntRange(min=1),
    default=50_000,
    show_default=True,
    envvar="CORRIDOR_API_MAX_REQUEST_VERTICES",
    help="Most vertices in one request (413 beyond, before validation).",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1024),
    default=MAX_BODY_BYTES,
    show_default=True,
    envvar="CORRIDOR_API_MAX_BODY_BYTES",
    help="Largest request body (413 beyond).",
)
def api(
    host: str,
    port: int,
    rate: float,
    burst: float,
    event_rate: float,
    event_burst: float,
    vertex_rate: float,
    vertex_burst: float,
    max_request_vertices: int,
    max_body_bytes: int,
) -> None:
    """Serve POST /v1/events and POST /v1/port-calls (publisher credentials) until SIGTERM."""
    if min(rate, burst, event_rate, event_burst, vertex_rate, vertex_burst) <= 0:
        raise click.UsageError("rates and bursts must be positive")
    limits = Limits(
        rate, burst, event_rate, event_burst, vertex_rate, vertex_burst, max_request_vertices, max_body_bytes
    )
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
        service = PublishApi(
            publisher, client, settings.redis_prefix, infrastructure, limits, settings.event_limits
        )
        try:
            async with publisher:
                await run_api(service, host, port, stop)
        finally:
            await client.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    logging.getLogger("corridor.api").info("publish api stopped")
