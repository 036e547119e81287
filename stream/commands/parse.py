"""``corridor parse``: a feed file -> normalized events on stdout, rejections on stderr."""

from __future__ import annotations

import sys
from typing import NoReturn

import click
import orjson

from schemas.codec import dumps, to_plain
from schemas.event import Event
from stream.feeds.base import FeedFormatError
from stream.feeds.registry import FORMATS, iter_parse

HINTS = {
    "cifs": 'a Waze CIFS document: <incidents><incident id=…> XML or {"incidents": [...]} JSON',
    "datex2": "a DATEX II v3 payload: TrafficRegulationPublication or SituationPublication XML",
    "perimeters": "a GeoJSON FeatureCollection of perimeters (TYPE_PERI, DATE_DEBUT, DATE_FIN)",
    "ais": "AIS NMEA text, one !AIVDM/!AIVDO sentence per line",
    "portcall": "port-call JSON (one object or a list), see schemas/portcall.schema.json",
    "native": "normalized event JSON (object, list or JSON lines), see schemas/event.schema.json",
}


def _fail(message: str) -> NoReturn:
    click.echo(f"corridor parse: {message}", err=True)
    sys.exit(1)


@click.command("parse")
@click.option("--format", "fmt", required=True, type=click.Choice(sorted(FORMATS)), help="Input format.")
@click.argument("path")
def parse(fmt: str, path: str) -> None:
    """Parse PATH (- for stdin): events as JSON lines on stdout, rejected records on stderr.

    The input is read as a stream: each record is printed as soon as it is parsed, and memory holds
    one record (at most 8 MiB; a bigger one is rejected alone), whatever the file's size.

    \b
    Exit 0 when every record parsed.
    Exit 2 when some records were rejected (the good ones are still printed), or when the input
    became unreadable after some records were printed (one last rejection says where).
    Exit 1, with one message and nothing printed, when the input cannot be read as the format at
    all: XML or JSON that does not parse from its start or has the wrong root, or, for the line
    formats (ais, native JSON lines), no AIS sentence with a valid checksum / no JSON object among
    the first 1,000 lines.
    """
    try:
        stream = click.get_binary_stream("stdin") if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")
    out, err = click.get_binary_stream("stdout"), click.get_binary_stream("stderr")
    printed = rejected = 0
    try:
        with stream:
            for item in iter_parse(fmt, stream):
                printed += 1
                if isinstance(item, Event):
                    out.write(dumps(to_plain(item)) + b"\n")
                else:
                    rejected += 1
                    err.write(_rejection(item.error, item.where, item.reason))
    except (FeedFormatError, OSError) as exc:
        reason = str(exc) if isinstance(exc, FeedFormatError) else f"cannot read {path}: {exc}"
        if not printed:
            _fail(
                f"{path} cannot be read as --format {fmt}: {reason}. Expected {HINTS[fmt]}; "
                "check the file or pick the matching --format."
            )
        rejected += 1
        err.write(_rejection(f"{reason}; the rest of the input was not read", "document", "unreadable"))
    out.flush()
    err.flush()
    sys.exit(2 if rejected else 0)


def _rejection(error: str, where: str, reason: str) -> bytes:
    return orjson.dumps({"error": error, "where": where, "reason": reason}) + b"\n"
