"""``corridor demo``: the whole system on the embedded services, with drivers and a dispatcher watching."""

from __future__ import annotations

import click

from stream.commands import output


@click.command()
@click.option("--duration", type=float, default=None, help="Seconds to run (default: until Ctrl-C).")
@click.option("--seed", type=int, default=None, help="Seed of the fleet (default: the same every time).")
@click.option("--trucks", type=click.IntRange(1, 2000), default=None, help="Number of trucks (default 200).")
def demo(duration: float | None, seed: int | None, trucks: int | None) -> None:
    """Trucks on the Seine axis meet Paris 2024 perimeters, DiaLog closures, a bridge lift and port calls.

    Starts the broker, Redis, a worker and a gateway; every driver listens on its websocket; the
    console shows each alert that reaches a driver; the gateway serves the dispatcher map (its URL,
    with a token, is printed). Ctrl-C stops everything.
    """
    from stream.demo.runner import run_demo  # noqa: PLC0415 - starts services, keep --help light

    console = output.console()
    board = run_demo(duration, console, seed=seed, trucks=trucks)
    console.print(board.summary())
    console.print(
        f"drivers affected at the end: {board.drivers_affected()} of {board.trucks}", highlight=False
    )
    console.print(f"alerts delivered: {board.delivered}", highlight=False)
