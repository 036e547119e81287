"""The ``corridor`` command. Subcommands load lazily, so offline tools never import the broker."""

from __future__ import annotations

import importlib
from typing import Any

import click

from stream.core.kernel_cache import use_kernel_cache

# name -> "module:attribute" of a click command; each group of commands lives in its own module.
COMMANDS: dict[str, str] = {
    "services": "stream.commands.services:services",
    "worker": "stream.commands.worker:worker",
    "gateway": "stream.commands.gateway:gateway",
    "api": "stream.commands.api:api",
    "publisher": "stream.commands.publisher:publisher",
    "demo": "stream.commands.demo:demo",
    "publish": "stream.commands.publish:publish",
    "feed": "stream.commands.feed:feed",
    "token": "stream.commands.token:token",
    "listen": "stream.commands.listen:listen",
    "parse": "stream.commands.parse:parse",
    "match": "stream.commands.match:match",
    "bench": "stream.commands.bench:bench",
}


def load_command(target: str) -> click.Command | None:
    """The click command at ``module:attribute``, imported now (None if the module is absent)."""
    module_name, attr = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None
    command: click.Command = getattr(module, attr)
    return command


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        return load_command(target) if target else None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="corridor")
def main(**_: Any) -> None:
    """Corridor: live traffic events matched against truck routes, alerts pushed to drivers."""
    use_kernel_cache()  # before a command imports the engine
