"""``corridor api``: the HTTP publish API for port operators and cities."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import Any

import click
from click.decorators import FC

from stream.core.port.infrastructure import InfrastructureError, load
from stream.ingest.api import Limits, PublishApi, run_api
from stream.ingest.producer import Publisher
from stream.runtime import metrics
from stream.runtime.logs import setup_logging
from stream.runtime.retry import redis_client
from stream.runtime.settings import ConfigError, Settings

_DEFAULTS = Limits()


def _limit(field: str, text: str, minimum: int | None = None, flag: str | None = None) -> Callable[[FC], FC]:
    """An option for one of ``Limits``' fields: its default from there, its ``CORRIDOR_API_*`` variable."""
    default = getattr(_DEFAULTS, field)
    kind: Any = click.IntRange(min=minimum) if minimum is not None else type(default)
    name = flag or "--" + field.replace("_", "-")
    variable = "CORRIDOR_API_" + name[2:].replace("-", "_").upper()
    return click.option(
        name, field, type=kind, default=default, show_default=True, envvar=variable, help=text
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="CORRIDOR_API_HOST", help="Interface.")
@click.option("--port", type=int, default=8780, show_default=True, envvar="CORRIDOR_API_PORT", help="Port.")
@_limit("rate", "Requests/s per publisher.")
@_limit("burst", "Request burst.")
@_limit("event_rate", "Events/s per publisher.")
@_limit("event_burst", "Event burst (also the most events in one request).")
@_limit("vertex_rate", "Geometry vertices/s per publisher.")
@_limit("vertex_burst", "Vertex burst.")
@_limit("max_request_vertices", "Most vertices in one request (413 beyond, before validation).", 1)
@_limit("max_body", "Largest request body in bytes (413 beyond).", 1024, "--max-body-bytes")
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
    max_body: int,
) -> None:
    """Serve POST /v1/events and POST /v1/port-calls (publisher credentials) until SIGTERM."""
    if min(rate, burst, event_rate, event_burst, vertex_rate, vertex_burst) <= 0:
        raise click.UsageError("rates and bursts must be positive")
    limits = Limits(
        rate, burst, event_rate, event_burst, vertex_rate, vertex_burst, max_request_vertices, max_body
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
