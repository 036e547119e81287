"""``corridor feed``: bring city and port feeds into the stream (poll HTTP, AIS, files)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import click

from stream.feeds.registry import FORMATS, FeedFormatError, iter_parse
from stream.ingest.producer import Publisher
from stream.runtime import metrics
from stream.runtime.logs import setup_logging
from stream.runtime.settings import ConfigError, Settings

FILE_BATCH = 1000  # records published per acknowledged batch by ``feed file``


def _run(main: Callable[[Settings, asyncio.Event], Awaitable[object]]) -> object:
    """Run a feed coroutine until it ends or SIGINT/SIGTERM asks it to stop."""
    setup_logging()
    settings = Settings.from_env()
    try:
        settings.bootstrap_servers()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    metrics.serve(settings.metrics_port)

    async def wrapper() -> object:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await main(settings, stop)

    return asyncio.run(wrapper())


@click.group()
def feed() -> None:
    """Feed processes: each publishes events to corridor.events and rejections to the dead letters."""


@feed.command()
@click.option("--format", "fmt", type=click.Choice(["cifs", "datex2"]), required=True)
@click.option(
    "--every", type=float, default=300.0, show_default=True, help="Seconds between polls (0: once)."
)
@click.option("--source", default=None, help="Name of the feed in metrics and state (default: the format).")
@click.argument("url")
def poll(fmt: str, every: float, source: str | None, url: str) -> None:
    """Poll URL; publish new, updated and cancelled events (gone from the feed)."""
    from stream.ingest.poll import SnapshotStore, poll_forever  # noqa: PLC0415
    from stream.ingest.sink import FeedSink  # noqa: PLC0415
    from stream.runtime.retry import redis_client  # noqa: PLC0415

    name = source or fmt

    async def main(settings: Settings, stop: asyncio.Event) -> None:
        client = redis_client(settings.resolved_redis_url())
        try:
            async with Publisher(settings) as publisher:
                store = SnapshotStore(client, settings.redis_prefix, name)
                await poll_forever(url, fmt, every, FeedSink(publisher, name, fmt), store, stop)
        finally:
            await client.aclose()

    _run(main)


@feed.command()
@click.option("--tcp", "tcp", default=None, metavar="HOST:PORT", help="Read a TCP NMEA feed.")
@click.option("--udp", "udp", type=int, default=None, metavar="PORT", help="Listen for UDP datagrams.")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--source", default="ais", show_default=True, help="Name of the feed in metrics.")
def ais(tcp: str | None, udp: int | None, path: Path | None, source: str) -> None:
    """Stream AIS NMEA sentences in (exactly one of --tcp, --udp, --file)."""
    from stream.feeds.ais import AisDecoder  # noqa: PLC0415
    from stream.ingest import ais as ais_source  # noqa: PLC0415
    from stream.ingest.sink import FeedSink  # noqa: PLC0415

    if sum(x is not None for x in (tcp, udp, path)) != 1:
        raise click.UsageError("give exactly one of --tcp HOST:PORT, --udp PORT, --file PATH")

    async def main(settings: Settings, stop: asyncio.Event) -> dict[str, int]:
        async with Publisher(settings) as publisher:
            sink = FeedSink(publisher, source, "ais")
            if tcp is not None:
                host, _, port = tcp.rpartition(":")
                chunks = ais_source.tcp_chunks(host or "127.0.0.1", int(port), stop)
            elif udp is not None:
                chunks = ais_source.udp_chunks(udp, stop)
            else:
                assert path is not None  # noqa: S101
                chunks = ais_source.file_chunks(path)
            pumping = asyncio.create_task(ais_source.pump(chunks, AisDecoder(), sink))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({pumping, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumping
            return {"events": sink.counts.events, "rejected": sink.counts.rejected}

    click.echo(json.dumps(_run(main)))


@feed.command("file")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), required=True)
@click.option("--source", default=None, help="Name of the feed in metrics (default: the format).")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def file_(fmt: str, source: str | None, path: Path) -> None:
    """Parse a feed file once and publish it (events, and rejections to the dead letters)."""
    from stream.ingest.sink import FeedSink  # noqa: PLC0415

    async def main(settings: Settings, stop: asyncio.Event) -> dict[str, int]:
        async with Publisher(settings) as publisher:
            sink = FeedSink(publisher, source or fmt, fmt)
            with open(path, "rb") as stream:  # read record by record: memory bounded by a batch
                items = iter_parse(fmt, stream, settings.event_limits)
                while batch := list(itertools.islice(items, FILE_BATCH)):
                    await sink.publish(batch)
                    if stop.is_set():
                        break
        return {"events": sink.counts.events, "rejected": sink.counts.rejected}

    try:
        click.echo(json.dumps(_run(main)))
    except FeedFormatError as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
