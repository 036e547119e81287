"""Format name -> parser, for the CLI, the feed processes and the publish API."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from functools import cache
from typing import BinaryIO

from schemas.errors import InvalidRecord
from schemas.event import Event, admit
from schemas.geometry import DEFAULT_LIMITS, GeometryLimits
from schemas.rejected import Rejection
from stream.feeds.base import FeedFormatError, Item, Parser, Reader

# name -> module; each defines iter_<name> (streaming) and parse_<name> (bulk). Modules load on
# first use, so a caller pays only for its formats.
FORMATS: dict[str, str] = {
    "cifs": "stream.feeds.cifs",
    "datex2": "stream.feeds.datex2",
    "perimeters": "stream.feeds.perimeters",
    "ais": "stream.feeds.ais",
    "portcall": "stream.feeds.portcall",
    "native": "stream.feeds.native",
}


def _module(name: str) -> object:
    target = FORMATS.get(name)
    if target is None:
        raise KeyError(f"unknown feed format {name!r}; known: {', '.join(sorted(FORMATS))}")
    return importlib.import_module(target)


@cache
def parser_for(name: str) -> Parser:
    """The bulk parser registered under ``name`` (KeyError names the known formats)."""
    parser: Parser = getattr(_module(name), f"parse_{name}")
    return parser


@cache
def reader_for(name: str) -> Reader:
    """The streaming parser registered under ``name`` (KeyError names the known formats)."""
    reader: Reader = getattr(_module(name), f"iter_{name}")
    return reader


def parse(name: str, data: bytes | str, limits: GeometryLimits = DEFAULT_LIMITS) -> list[Item]:
    """Parse ``data`` held in memory as format ``name``: events and rejections, or FeedFormatError."""
    return list(admitted(name, parser_for(name)(data), limits))


def iter_parse(name: str, stream: BinaryIO, limits: GeometryLimits = DEFAULT_LIMITS) -> Iterator[Item]:
    """Parse a binary stream as format ``name``, one item per record as it is read.

    Memory is bounded by one record (MAX_RECORD_BYTES), not by the document. FeedFormatError may
    come before any item (the input is not this format) or after some (the rest is unreadable).
    """
    return admitted(name, reader_for(name)(stream), limits)


def admitted(name: str, items: Iterable[Item], limits: GeometryLimits = DEFAULT_LIMITS) -> Iterator[Item]:
    """The items of a parser, each event checked against the bounds every entry applies (its
    geometry's size and extent, time zone, schedule, details: ``schemas.event.admit``); one
    beyond them becomes a rejection. Native events were read by ``Event.from_dict`` already."""
    if name == "native" and limits == DEFAULT_LIMITS:
        yield from items
        return
    for item in items:
        if isinstance(item, Event):
            try:
                admit(item, limits)
            except InvalidRecord as exc:
                yield Rejection(exc.error, item.id, exc.reason, None)
                continue
        yield item


__all__ = ["FORMATS", "FeedFormatError", "iter_parse", "parse", "parser_for", "reader_for"]
