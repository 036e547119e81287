"""``corridor worker``: the Faust worker running every agent."""

from __future__ import annotations

import click

from stream.runtime.settings import ConfigError


@click.command()
@click.option("--loglevel", "-l", default="info", show_default=True, help="Log level.")
def worker(loglevel: str) -> None:
    """Run the stream worker: routes, matching and notification agents."""
    try:
        import faust  # noqa: PLC0415 - heavy, only for this command

        import agents.dead_letters  # noqa: F401, PLC0415 - registers the agents
        import agents.match  # noqa: F401, PLC0415
        import agents.notify  # noqa: F401, PLC0415
        import agents.port  # noqa: F401, PLC0415
        import agents.routes  # noqa: F401, PLC0415
        from stream.runtime import metrics  # noqa: PLC0415
        from stream.runtime.app import app, health, settings  # noqa: PLC0415
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    from stream.core.engine import warm_up  # noqa: PLC0415

    warm_up()  # compiled kernels ready before the first batch is taken
    metrics.serve(settings.metrics_port, health.report)
    faust.Worker(app, loglevel=loglevel).execute_from_commandline()
