"""``corridor services up|down|status``: the embedded broker and Redis of this machine."""

from __future__ import annotations

import json

import click

from stream.local.services import EmbeddedServices, ServiceError
from stream.runtime.settings import ConfigError, Settings


def _services() -> EmbeddedServices:
    return EmbeddedServices(Settings.from_env().state_dir)


@click.group()
def services() -> None:
    """Start, stop and inspect the embedded broker (Tansu) and Redis."""


@services.command()
def up() -> None:
    """Start the embedded broker and Redis (no-op when running); one that died comes back on its old port."""
    try:
        info = _services().up()
    except (ServiceError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(info))


@services.command()
def down() -> None:
    """Stop them. The embedded broker keeps topics in memory: they are gone after this."""
    stopped = _services().down()
    click.echo(json.dumps({"stopped": stopped}))


@services.command()
def status() -> None:
    """Print whether each service runs, its URL and its log; exit 1 when one is down."""
    state = _services().status()
    click.echo(json.dumps(state, indent=2))
    if not all(s["running"] for s in state.values()):
        raise SystemExit(1)
