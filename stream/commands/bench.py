"""``corridor bench``: benchmarks that print a table (or JSON) measured in one run."""

from __future__ import annotations

import click

from stream.cli import load_command

# subcommand -> "module:attribute"; each benchmark lives in its own module under stream/bench/.
BENCHES: dict[str, str] = {
    "match": "stream.bench.match:match",
    "matchers": "stream.bench.matchers:matchers",
    "pipeline": "stream.bench.pipeline:pipeline",
    "parse": "stream.bench.parse:parse",
    "gateway": "stream.bench.gateway:gateway",
    "api": "stream.bench.api:api",
}
# Long runs with their own make target (``make soak``), left out of ``bench all``.
LONG_RUNS: dict[str, str] = {
    "soak": "stream.bench.soak:soak",
}


class _LazyBenches(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*sorted(BENCHES), *sorted(LONG_RUNS), "all"]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "all":
            from stream.bench.all import run_all

            return run_all
        target = BENCHES.get(cmd_name) or LONG_RUNS.get(cmd_name)
        return load_command(target) if target else None


@click.group(cls=_LazyBenches)
def bench() -> None:
    """Benchmarks: medians of repeated runs, with the peers measured in the same run."""
