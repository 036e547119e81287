"""JSON read as a stream: records come out one at a time, each bounded in size and depth."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import ijson
import orjson

from stream.feeds import jsonsplit
from stream.feeds.base import (
    CHUNK_BYTES,
    MAX_RECORD_BYTES,
    RECOGNITION_LINES,
    CountingReader,
    FeedFormatError,
    RecordError,
    replay,
)
from stream.feeds.jsonrecord import (
    _ENDS,
    _STARTS,
    ARRAY,
    MAX_DEPTH,
    OBJECT,
    DigitChecked,
    depth_ok,
    read_record,
    shallow,
    too_deep,
    too_large,
)

__all__ = ["ARRAY", "MAX_DEPTH", "OBJECT", "depth_ok", "lines", "shallow", "too_deep", "too_large", "walk"]


def walk(stream: BinaryIO, fmt: str, path: tuple[str, ...]) -> Iterator[tuple[str, Any, Any]]:
    """A JSON document as it is read, without holding more than one record.

    Yields ("root", type, None) first (``dict``, ``list`` or the scalar's type); then
    ("member", key, value) for each member of a root object (scalars as they are, containers as
    OBJECT or ARRAY); and ("record", index, value) for each value at ``path`` (keys, or "item"
    for array elements), the value being a RecordError when the record is too large or deep.
    Syntax errors raise FeedFormatError.

    An array of records at the root or in a member of the root object (most documents) is cut
    into records and decoded by ``jsonsplit``; other shapes are walked event by event (ijson).
    """
    try:
        yield from jsonsplit.walk(stream, fmt, path)
    except jsonsplit.Unsupported as shape:
        yield from walk_events(replay(shape.head, stream), fmt, path)


def walk_events(stream: BinaryIO, fmt: str, path: tuple[str, ...]) -> Iterator[tuple[str, Any, Any]]:
    """``walk`` event by event (ijson): any document shape, a Python step per value."""
    source = DigitChecked(stream, fmt)
    # basic_parse, not parse: ijson 3.6's C parse() crashes the interpreter on an integer over
    # 4,300 digits, where basic_parse raises ValueError. Numbers come as Decimal, not float, as
    # use_float=True refuses integers over 64 bits.
    events = ijson.basic_parse(source, buf_size=CHUNK_BYTES)
    try:
        yield from _walk(events, source, path)
    except FeedFormatError:
        raise
    except (ijson.JSONError, ValueError, ArithmeticError) as exc:  # a number Decimal cannot hold
        detail = str(exc).split("\n", 1)[0][:200]
        raise FeedFormatError(f"not a {fmt} JSON document: {detail} (near byte {source.count})") from None


def _walk(
    events: Iterator[tuple[str, Any]], source: CountingReader, path: tuple[str, ...]
) -> Iterator[tuple[str, Any, Any]]:
    keys: list[str | None] = []  # per open container: its current key, or "item" in an array
    deep = 0  # containers open below the depth of ``path``, only counted
    index = 0
    in_map = False
    for event, value in events:
        source.mark = source.count
        if deep:
            deep += 1 if event in _STARTS else -1 if event in _ENDS else 0
            continue
        if event == "map_key":
            keys[-1] = value
            continue
        if event in _ENDS:
            keys.pop()
            continue
        depth = len(keys)
        if depth == 0:
            in_map = event == "start_map"
            yield "root", _STARTS.get(event, type(value)), None
        elif depth == 1 and in_map:
            member = OBJECT if event == "start_map" else ARRAY if event == "start_array" else value
            yield "member", keys[0], member
        if depth == len(path) and tuple(keys) == path:
            yield "record", index, read_record(event, value, events, source)
            index += 1
        elif event in _STARTS:
            if depth >= len(path):
                deep = 1
            else:
                keys.append("item" if event == "start_array" else None)


def lines(stream: BinaryIO, fmt: str) -> Iterator[tuple[int, Any]]:
    """(line number, decoded value or RecordError) for each non-blank line of JSON lines.

    A line over MAX_RECORD_BYTES is skipped to its end and rejected alone. Until a line decodes
    to a JSON object, nothing comes out: when none of the first RECOGNITION_LINES lines does (or
    none at all, blank input included), the input is not JSON lines and FeedFormatError says so.
    """
    held: list[tuple[int, Any]] = []
    recognised = False
    number = 0
    while True:
        line = stream.readline(MAX_RECORD_BYTES + 1)
        if not line:
            break
        number += 1
        value: Any
        if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
            while (rest := stream.readline(MAX_RECORD_BYTES)) and not rest.endswith(b"\n"):
                pass
            value = too_large(f"line {number}")
        elif line.isspace():
            continue
        else:
            value = _decode_line(line)
        if recognised:
            yield number, value
            continue
        held.append((number, value))
        if isinstance(value, dict) or (isinstance(value, RecordError) and value.reason == "too_deep"):
            recognised = True
            yield from held
            held = []
        elif len(held) >= RECOGNITION_LINES:
            raise FeedFormatError(
                f"none of the first {RECOGNITION_LINES} lines is a JSON object: not {fmt} JSON lines"
            )
    if not recognised:
        raise FeedFormatError(f"no line is a JSON object: not {fmt} JSON lines")


def _decode_line(line: bytes) -> Any:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return RecordError("line is not JSON", "undecodable")
    if shallow(line) or depth_ok(value):
        return value
    return too_deep("line") if isinstance(value, dict) else RecordError("line is not a JSON object", "schema")
