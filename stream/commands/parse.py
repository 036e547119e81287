"""``corridor parse``: a feed file -> normalized events on stdout, rejections on stderr."""

from __future__ import annotations

import sys
from typing import BinaryIO

import click
import orjson

from schemas.codec import dumps, to_plain
from schemas.event import Event
from stream.feeds.base import MAX_DOCUMENT_BYTES, FeedFormatError
from stream.feeds.registry import FORMATS
from stream.feeds.registry import parse as parse_feed

HINTS = {
    "cifs": 'a Waze CIFS document: <incidents><incident id=…> XML or {"incidents": [...]} JSON',
    "datex2": "a DATEX II v3 payload: TrafficRegulationPublication or SituationPublication XML",
    "perimeters": "a GeoJSON FeatureCollection of perimeters (TYPE_PERI, DATE_DEBUT, DATE_FIN)",
    "ais": "AIS NMEA text, one !AIVDM/!AIVDO sentence per line",
    "portcall": "port-call JSON (one object or a list), see schemas/portcall.schema.json",
    "native": "normalized event JSON (object, list or JSON lines), see schemas/event.schema.json",
}


def _read(path: str) -> bytes:
    stream: BinaryIO
    if path == "-":
        stream = click.get_binary_stream("stdin")
        return stream.read(MAX_DOCUMENT_BYTES + 1)
    with open(path, "rb") as stream:
        return stream.read(MAX_DOCUMENT_BYTES + 1)


def _fail(message: str) -> None:
    click.echo(f"corridor parse: {message}", err=True)
    sys.exit(1)


@click.command("parse")
@click.option("--format", "fmt", required=True, type=click.Choice(sorted(FORMATS)), help="Input format.")
@click.argument("path")
def parse(fmt: str, path: str) -> None:
    """Parse PATH (- for stdin): events as JSON lines on stdout, rejected records on stderr.

    Exit 0 when every record parsed, 2 when some were rejected, 1 when the input is unreadable.
    """
    try:
        data = _read(path)
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")
    try:
        items = parse_feed(fmt, data)
    except FeedFormatError as exc:
        _fail(
            f"{path} cannot be read as --format {fmt}: {exc}. Expected {HINTS[fmt]}; "
            "check the file or pick the matching --format."
        )
    out, err = click.get_binary_stream("stdout"), click.get_binary_stream("stderr")
    rejected = 0
    for item in items:
        if isinstance(item, Event):
            out.write(dumps(to_plain(item)) + b"\n")
        else:
            rejected += 1
            line = {"error": item.error, "where": item.where, "reason": item.reason}
            err.write(orjson.dumps(line) + b"\n")
    out.flush()
    err.flush()
    sys.exit(2 if rejected else 0)
