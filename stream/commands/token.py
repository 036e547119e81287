"""``corridor token issue``: signed, expiring tokens that let a driver read its own alerts."""

from __future__ import annotations

import re
import time

import click

from stream.runtime.keys import load_keyring
from stream.runtime.settings import Settings

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
@click.option("--driver", "driver_id", required=True, help="The driver the token is bound to.")
@click.option("--ttl", default="12h", show_default=True, help="Lifetime: 30m, 12h, 7d…")
def issue(driver_id: str, ttl: str) -> None:
    """Print a token for DRIVER valid for TTL."""
    keyring = load_keyring(Settings.from_env())
    click.echo(keyring.issue(driver_id, time.time(), parse_duration(ttl)))
