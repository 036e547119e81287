"""``corridor token issue``: signed, expiring tokens for a driver (its own alerts) or a dispatcher."""

from __future__ import annotations

import re
import time

import click

from stream.gateway.keyring import load_keyring
from stream.runtime.settings import ConfigError, Settings

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """'90s', '15m', '12h', '7d' -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise click.BadParameter(f"{text!r}: use a number and a unit, like 12h or 30m")
    return int(match[1]) * _UNITS[match[2]]


@click.group()
def token() -> None:
    """Driver tokens (signed with CORRIDOR_SIGNING_KEY, or the local key of the state dir)."""


@token.command()
@click.option("--driver", "driver_id", default=None, help="The driver the token is bound to.")
@click.option("--dispatcher", default=None, help="A dispatcher name: every driver's alerts, the map.")
@click.option("--ttl", default="12h", show_default=True, help="Lifetime: 30m, 12h, 7d…")
def issue(driver_id: str | None, dispatcher: str | None, ttl: str) -> None:
    """Print a token for DRIVER (or DISPATCHER) valid for TTL."""
    if (driver_id is None) == (dispatcher is None):
        raise click.UsageError("give exactly one of --driver ID or --dispatcher NAME")
    try:
        keyring = load_keyring(Settings.from_env())
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(f"{exc}: set CORRIDOR_SIGNING_KEY=kid:secret (see the README)") from exc
    if dispatcher is not None:
        click.echo(keyring.issue_dispatcher(dispatcher, time.time(), parse_duration(ttl)))
    else:
        assert driver_id is not None  # noqa: S101 - checked above
        click.echo(keyring.issue(driver_id, time.time(), parse_duration(ttl)))
