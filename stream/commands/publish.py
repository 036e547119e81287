"""``corridor publish``: send events or routes from files to the broker.

Each record is judged alone: a bad one is reported on stderr as one JSON line (``where``, ``error``,
``reason``) and the good ones are published; the exit code is 0 when every record was published, 2
when some were refused, 1 when the file cannot be read at all.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from schemas import Event, Route
from schemas.errors import InvalidRecord
from stream.ingest.producer import Publisher, RecordRefused
from stream.runtime.settings import ConfigError, Settings

BATCH = 1000  # records sent per acknowledged batch: memory stays bounded by a batch, not the file
T = TypeVar("T")


@click.group()
def publish() -> None:
    """Publish normalized events (JSON lines) or routes (GeoJSON) to the broker."""


def _refuse(where: str, error: str, reason: str) -> None:
    click.echo(orjson.dumps({"where": where, "error": error, "reason": reason}), err=True)


def _event_lines(path: Path, settings: Settings) -> Iterator[tuple[str, Event | None]]:
    """(where, event or None when refused) for each non-blank line, read one line at a time."""
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                yield where, Event.from_json(line, settings.event_limits, settings.event_max_bytes)
            except InvalidRecord as exc:
                _refuse(where, exc.error, exc.reason)
                yield where, None


@publish.command("events")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def publish_events(path: Path) -> None:
    """Publish the normalized events of a JSON-lines file to corridor.events."""
    settings = _settings()
    published, refused = _run(settings, _event_lines(path, settings), lambda p, batch: p.events(batch))
    click.echo(json.dumps({"published": published, "refused": refused}))
    sys.exit(2 if refused else 0)


@publish.command("routes")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def publish_routes(path: Path) -> None:
    """Register the routes of a GeoJSON FeatureCollection (LineString features)."""
    settings = _settings()
    try:
        features = orjson.loads(path.read_bytes())["features"]
        if not isinstance(features, list):
            raise TypeError("features is not an array")
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise click.ClickException(f"{path}: not a route FeatureCollection ({exc})") from exc

    def routes() -> Iterator[tuple[str, Route | None]]:
        for index, feature in enumerate(features):
            where = f"{path}:features[{index}]"
            try:
                yield where, Route.from_feature(feature)
            except InvalidRecord as exc:
                _refuse(where, exc.error, exc.reason)
                yield where, None

    published, refused = _run(settings, routes(), lambda p, batch: p.register_routes(batch))
    click.echo(json.dumps({"published": published, "refused": refused}))
    sys.exit(2 if refused else 0)


def _settings() -> Settings:
    settings = Settings.from_env()
    try:
        settings.bootstrap_servers()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    return settings


def _run(
    settings: Settings,
    records: Iterator[tuple[str, T | None]],
    send: Callable[[Publisher, Sequence[T]], Any],
) -> tuple[int, int]:
    """Send the good records in acknowledged batches; (published, refused)."""

    async def main() -> tuple[int, int]:
        published = refused = 0
        async with Publisher(settings) as publisher:
            batch: list[tuple[str, T]] = []
            for where, record in records:
                if record is None:
                    refused += 1
                    continue
                batch.append((where, record))
                if len(batch) >= BATCH:
                    sent, bad = await _send(publisher, batch, send)
                    published, refused, batch = published + sent, refused + bad, []
            sent, bad = await _send(publisher, batch, send)
            return published + sent, refused + bad

    return asyncio.run(main())


async def _send(
    publisher: Publisher, batch: list[tuple[str, T]], send: Callable[[Publisher, Sequence[T]], Any]
) -> tuple[int, int]:
    """One batch; when the producer refuses a record of it (too large for a message, say), each
    record is sent alone so that only that one is refused."""
    if not batch:
        return 0, 0
    try:
        return int(await send(publisher, [record for _, record in batch])), 0
    except RecordRefused:
        sent = refused = 0
        for where, record in batch:
            try:
                sent += int(await send(publisher, [record]))
            except RecordRefused as exc:
                _refuse(where, exc.error, exc.reason)
                refused += 1
        return sent, refused
