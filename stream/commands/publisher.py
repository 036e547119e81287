"""``corridor publisher add|list|revoke``: who may publish through the API, under which sources."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from stream.ingest.publishers import ROLES, PublisherError, PublisherStore
from stream.runtime.retry import redis_client
from stream.runtime.settings import ConfigError, Settings

T = TypeVar("T")


def _run(operation: Callable[[PublisherStore], Awaitable[T]]) -> T:
    settings = Settings.from_env()
    try:
        url = settings.resolved_redis_url()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc

    async def main() -> T:
        client = redis_client(url)
        try:
            return await operation(PublisherStore(client, settings.redis_prefix))
        finally:
            await client.aclose()

    try:
        return asyncio.run(main())
    except PublisherError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def publisher() -> None:
    """Publishers of the publish API (stored in Redis, credentials kept only as salted hashes)."""


@publisher.command()
@click.argument("name")
@click.option("--source", "sources", multiple=True, required=True, help="A source it may publish (repeat).")
@click.option(
    "--role",
    type=click.Choice(sorted(ROLES)),
    default="city",
    show_default=True,
    help="city: closure, restriction, perimeter, hazard, roadworks; port: also port_call, "
    "bridge_lift, lock_closure, vessel.",
)
@click.option(
    "--kind", "kinds", multiple=True, help="An event kind it may post (repeat; replaces the role's)."
)
def add(name: str, sources: tuple[str, ...], role: str, kinds: tuple[str, ...]) -> None:
    """Create publisher NAME and print its credential (shown once: keep it safe)."""
    click.echo(_run(lambda store: store.add(name, sources, role, kinds)))


@publisher.command(name="list")
def list_() -> None:
    """List publishers: name, sources, kinds, key id, created (never secrets)."""
    for r in _run(lambda store: store.list()):
        click.echo(f"{r.name}\t{','.join(r.sources)}\t{','.join(r.kinds)}\t{r.key_id}\t{r.created_at}")


@publisher.command()
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke publisher NAME: its credential stops working at once."""
    if not _run(lambda store: store.revoke(name)):
        raise click.ClickException(f"no publisher {name!r}")
    click.echo(f"revoked {name}")
