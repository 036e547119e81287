"""Format name -> parser, for the CLI, the ingest agent and the publish API."""

from __future__ import annotations

import importlib
from functools import cache

from stream.feeds.base import FeedFormatError, Item, Parser

# name -> "module:function"; modules load on first use, so a caller pays only for its formats.
FORMATS: dict[str, str] = {
    "cifs": "stream.feeds.cifs:parse_cifs",
    "datex2": "stream.feeds.datex2:parse_datex2",
    "perimeters": "stream.feeds.perimeters:parse_perimeters",
    "ais": "stream.feeds.ais:parse_ais",
    "portcall": "stream.feeds.portcall:parse_portcall",
    "native": "stream.feeds.native:parse_native",
}


@cache
def parser_for(name: str) -> Parser:
    """The bulk parser registered under ``name`` (KeyError names the known formats)."""
    target = FORMATS.get(name)
    if target is None:
        raise KeyError(f"unknown feed format {name!r}; known: {', '.join(sorted(FORMATS))}")
    module_name, attr = target.split(":")
    parser: Parser = getattr(importlib.import_module(module_name), attr)
    return parser


def parse(name: str, data: bytes | str) -> list[Item]:
    """Parse ``data`` as format ``name``: events and rejections, or FeedFormatError."""
    return parser_for(name)(data)


__all__ = ["FORMATS", "FeedFormatError", "parse", "parser_for"]
