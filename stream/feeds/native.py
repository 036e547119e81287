"""Corridor's own event JSON (object, array or JSON lines), schema-checked -> events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from schemas.event import Event
from schemas.event_shape import fits
from schemas.geometry import DEFAULT_LIMITS, GeometryLimits
from schemas.validate import errors
from stream.feeds import jsonstream
from stream.feeds.base import (
    CHUNK_BYTES,
    MAX_RECORD_BYTES,
    FeedFormatError,
    Item,
    RecordError,
    collect,
    gc_paused,
    reject,
    replay,
    sniff,
)

SCHEMA = "event"


_GEOMETRY_STUB = {"type": "Point", "coordinates": [0, 0]}


def native_event(record: Any, limits: GeometryLimits = DEFAULT_LIMITS) -> Event:
    """One event object validated against schemas/event.schema.json and the engine's bounds.

    The geometry is read once, by ``Event.from_dict``, which names the bad position and also
    bounds its size and extent; the JSON Schema checks every other field. Its msgspec form
    (``schemas.event_shape``) passes most records in microseconds; a record it refuses goes to the
    JSON Schema validator, whose messages name every wrong field (a stub stands in for the
    geometry, so that a large polygon is not walked vertex by vertex twice).
    """
    if not fits(record):
        shown = (
            {**record, "geometry": _GEOMETRY_STUB}
            if isinstance(record, dict) and "geometry" in record
            else record
        )
        problems = errors(SCHEMA, shown)
        if problems:
            raise RecordError("; ".join(problems[:10]), "schema")
    return Event.from_dict(record, limits)


def _records(stream: BinaryIO) -> Iterator[tuple[str, Any]]:
    """(where, decoded record or RecordError) for an event object, an array of them, or JSON lines.

    The first non-blank byte tells them apart: '[' is an array, read element by element. Anything
    else is one object when the whole input is one JSON object within MAX_RECORD_BYTES, and JSON
    lines otherwise (read line by line; only a bad first line makes it buffer up to that bound).
    """
    first, stream = sniff(stream)
    if first == b"[":
        for kind, index, value in jsonstream.walk(stream, "event", ("item",)):
            if kind == "record":
                yield f"event[{index}]", value
        return
    head = stream.readline(MAX_RECORD_BYTES + 1)
    if not _decodes(head):  # a pretty-printed object, or JSON lines whose first line is bad
        head += stream.read(MAX_RECORD_BYTES + 1 - len(head))
    rest = stream.read(CHUNK_BYTES)
    if len(head) <= MAX_RECORD_BYTES and len(rest) < CHUNK_BYTES and not rest.strip():
        try:
            doc = orjson.loads(head)
        except orjson.JSONDecodeError:
            pass
        else:
            if not isinstance(doc, dict):
                raise FeedFormatError("expected an event object, an array of them, or JSON lines")
            ok = jsonstream.depth_ok(doc)
            yield "event[0]", doc if ok else jsonstream.too_deep("event")
            return
    lines = replay(head + rest, stream)
    del head, rest  # held by the replay until read, not for the whole input
    for number, value in jsonstream.lines(lines, "event"):
        yield f"line {number}", value


def _decodes(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def iter_native(stream: BinaryIO) -> Iterator[Item]:
    """Normalized events as JSON, as they are read: each valid one an Event, each invalid one a rejection."""
    for where, record in _records(stream):
        if isinstance(record, RecordError):
            yield reject(where, record)
            continue
        try:
            yield native_event(record)
        except RecordError as exc:
            ident = record.get("id") if isinstance(record, dict) else None
            yield reject(f"{where} {ident[:100]}" if isinstance(ident, str) else where, exc, record)


@gc_paused
def parse_native(data: bytes | str) -> list[Item]:
    """Normalized events as JSON held in memory: each valid one an Event, each invalid one a rejection."""
    return collect(iter_native, data)
