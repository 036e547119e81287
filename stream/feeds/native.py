"""Corridor's own event JSON (object, array or JSON lines), schema-checked -> events."""

from __future__ import annotations

from typing import Any

import orjson

from schemas.event import Event
from schemas.validate import errors
from stream.feeds import coords
from stream.feeds.base import (
    MAX_RECORDS,
    FeedFormatError,
    Item,
    RecordError,
    as_bytes,
    gc_paused,
    reject,
)

SCHEMA = "event"


def native_event(record: Any) -> Event:
    """One event object validated against schemas/event.schema.json."""
    problems = errors(SCHEMA, record)
    if problems:
        raise RecordError("; ".join(problems[:10]), "schema")
    try:
        event = Event.from_dict(record)
    except (KeyError, ValueError, TypeError) as exc:
        raise RecordError(f"{type(exc).__name__}: {exc}"[:500], "schema") from None
    coords.geometry(event.geometry)
    if event.valid_from and event.valid_until and event.valid_until < event.valid_from:
        raise RecordError("valid_until: is before valid_from", "bad_time")
    return event


def _records(raw: bytes) -> list[tuple[str, Any]]:
    """(where, decoded JSON or the undecodable line) for a document or JSON lines."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
        lines = raw.split(b"\n")
    else:
        if isinstance(doc, list):
            return [(f"event[{i}]", r) for i, r in enumerate(doc)]
        if isinstance(doc, dict):
            return [("event[0]", doc)]
        raise FeedFormatError("expected an event object, an array of them, or JSON lines")
    found: list[tuple[str, Any]] = []
    decoded = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            found.append((f"line {number}", orjson.loads(line)))
            decoded += 1
        except orjson.JSONDecodeError:
            found.append((f"line {number}", _Undecodable(line)))
    if not decoded:
        raise FeedFormatError("not JSON: expected an event object, an array, or JSON lines")
    return found


class _Undecodable(bytes):
    """A JSON line that did not parse."""


@gc_paused
def parse_native(data: bytes | str) -> list[Item]:
    """Normalized events as JSON: each valid one an Event, each invalid one a rejection."""
    records = _records(as_bytes(data, "event JSON"))
    if len(records) > MAX_RECORDS:
        raise FeedFormatError(f"over {MAX_RECORDS} events in one document")
    items: list[Item] = []
    for where, record in records:
        ident = record.get("id") if isinstance(record, dict) else None
        label = f"{where} {str(ident)[:100]}" if isinstance(ident, str) else where
        if isinstance(record, _Undecodable):
            items.append(reject(label, RecordError("line is not JSON", "undecodable"), record))
            continue
        try:
            items.append(native_event(record))
        except RecordError as exc:
            items.append(reject(label, exc, record))
    return items
