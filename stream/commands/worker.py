"""``corridor worker``: the Faust worker running every agent."""

from __future__ import annotations

import click

from stream.runtime.settings import ConfigError


@click.command()
@click.option("--loglevel", "-l", default="info", show_default=True, help="Log level.")
def worker(loglevel: str) -> None:
    """Run the stream worker: routes, matching and notification agents."""
    import faust  # noqa: PLC0415 - heavy, only for this command

    from agents import install_all  # noqa: PLC0415
    from stream.core.engine import warm_up  # noqa: PLC0415
    from stream.core.port.infrastructure import InfrastructureError  # noqa: PLC0415
    from stream.runtime import metrics  # noqa: PLC0415
    from stream.runtime.settings import Settings  # noqa: PLC0415
    from stream.worker.app import build  # noqa: PLC0415

    try:
        built = build(Settings.from_env())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        install_all(built)
    except InfrastructureError as exc:
        where = built.settings.port_infrastructure or "the bundled port infrastructure"
        raise click.ClickException(f"CORRIDOR_PORT_INFRASTRUCTURE={where}: {exc}") from exc
    warm_up()  # compiled kernels ready before the first batch is taken
    metrics.serve(built.settings.metrics_port, built.health.report)
    faust.Worker(built.app, loglevel=loglevel).execute_from_commandline()
