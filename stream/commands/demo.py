"""``corridor demo``: the whole system on the embedded services, with drivers watching."""

from __future__ import annotations

import click
from rich.console import Console


@click.command()
@click.option("--duration", type=float, default=None, help="Seconds to run (default: until Ctrl-C).")
def demo(duration: float | None) -> None:
    """Start broker, Redis, worker and gateway; trucks meet real closures; print each alert."""
    from stream.demo.runner import run_demo  # noqa: PLC0415 - starts services, keep --help light

    console = Console()
    delivered = run_demo(duration, console)
    console.print(f"alerts delivered: {delivered}", highlight=False)
