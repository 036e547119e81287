"""``corridor publish``: send events or routes from files to the broker."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click
import orjson

from schemas import Event, Route
from stream.runtime.producer import Publisher
from stream.runtime.settings import ConfigError, Settings


@click.group()
def publish() -> None:
    """Publish normalized events (JSON lines) or routes (GeoJSON) to the broker."""


@publish.command("events")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def publish_events(path: Path) -> None:
    """Publish the normalized events of a JSON-lines file to corridor.events."""
    events = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(Event.from_dict(orjson.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise click.ClickException(f"{path}:{number}: not a normalized event ({exc})") from exc
    click.echo(json.dumps({"published": _run(lambda p: p.events(events))}))


@publish.command("routes")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def publish_routes(path: Path) -> None:
    """Register the routes of a GeoJSON FeatureCollection (LineString features)."""
    try:
        features = orjson.loads(path.read_bytes())["features"]
        routes = [Route.from_feature(f) for f in features]
    except (ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"{path}: not a route FeatureCollection ({exc})") from exc
    click.echo(json.dumps({"published": _run(lambda p: p.register_routes(routes))}))


def _run(action: object) -> int:
    settings = Settings.from_env()
    try:
        settings.bootstrap_servers()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc

    async def main() -> int:
        async with Publisher(settings) as publisher:
            result: int = await action(publisher)  # type: ignore[operator]
            return result

    return asyncio.run(main())
