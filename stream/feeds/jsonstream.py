"""JSON read as a stream (ijson): records come out one at a time, each bounded in size and depth."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, BinaryIO

import ijson
import orjson

from stream.feeds.base import (
    CHUNK_BYTES,
    MAX_RECORD_BYTES,
    RECOGNITION_LINES,
    CountingReader,
    FeedFormatError,
    RecordError,
)

MAX_DEPTH = 64
"""Deepest nesting of one record: GeoJSON needs under 10; deeper ones would exhaust the stack later."""

ARRAY, OBJECT = "array", "object"
"""What ``walk`` reports for a member of the root object whose value is a container."""

_MIN_INT, _MAX_INT = -(2**63), 2**64 - 1  # what orjson reads and writes
_STARTS = {"start_map": dict, "start_array": list}
_ENDS = frozenset({"end_map", "end_array"})


def too_large(what: str) -> RecordError:
    """The rejection of a record over MAX_RECORD_BYTES."""
    return RecordError(f"{what} is over {MAX_RECORD_BYTES // 2**20} MiB: split it", "too_large")


def too_deep(what: str) -> RecordError:
    """The rejection of a record nested deeper than MAX_DEPTH."""
    return RecordError(f"{what} is nested over {MAX_DEPTH} levels deep", "too_deep")


def shallow(raw: bytes) -> bool:
    """True when JSON text cannot nest over MAX_DEPTH containers: it holds no more opening
    brackets than that (each container opens with one), so its decoded value needs no walk."""
    return raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH


def depth_ok(value: Any) -> bool:
    """Whether a decoded value nests at most MAX_DEPTH containers (checked without recursion)."""
    level: list[Any] = [value]
    for _ in range(MAX_DEPTH + 1):
        inner: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                inner.extend(v for v in item.values() if isinstance(v, dict | list))
            elif isinstance(item, list):
                inner.extend(v for v in item if isinstance(v, dict | list))
        if not inner:
            return True
        level = inner
    return False


MAX_DIGITS = 4300
"""Longest run of digits let through to ijson: Python refuses to convert a longer integer, and
ijson 3.6's C backend then leaves that ValueError pending, to surface anywhere later."""
_DIGITS = re.compile(rb"[0-9]{%d}" % (MAX_DIGITS + 1))


class _JsonSource(CountingReader):
    """A CountingReader that refuses runs of digits longer than MAX_DIGITS, even across chunks."""

    _run = 0

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes, checked for over-long digit runs."""
        data = super().read(size)
        head = len(data) - len(data.lstrip(b"0123456789"))
        if self._run + head > MAX_DIGITS or _DIGITS.search(data):
            raise FeedFormatError(
                f"a number of over {MAX_DIGITS} digits near byte {self.count}: not a value Corridor reads"
            )
        tail = len(data) - len(data.rstrip(b"0123456789"))
        self._run = self._run + head if head == len(data) else tail
        return data


def walk(stream: BinaryIO, fmt: str, path: tuple[str, ...]) -> Iterator[tuple[str, Any, Any]]:
    """A JSON document as it is read, without holding more than one record.

    Yields ("root", type, None) first (``dict``, ``list`` or the scalar's type); then
    ("member", key, value) for each member of a root object (scalars as they are, containers as
    OBJECT or ARRAY); and ("record", index, value) for each value at ``path`` (keys, or "item"
    for array elements), the value being a RecordError when the record is too large or deep.
    Syntax errors raise FeedFormatError.
    """
    source = _JsonSource(stream, fmt)
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
            yield "record", index, _record(event, value, events, source)
            index += 1
        elif event in _STARTS:
            if depth >= len(path):
                deep = 1
            else:
                keys.append("item" if event == "start_array" else None)


def _record(event: str, value: Any, events: Iterator[tuple[str, Any]], source: CountingReader) -> Any:
    """The value that starts with ``event`` (its other events read from ``events``), or a RecordError."""
    if event not in _STARTS:
        return _scalar(value)
    start = source.count
    root: Any = _STARTS[event]()
    stack: list[Any] = [root]
    keys: list[Any] = [None]
    failed: RecordError | None = None
    depth = 1
    for event, value in events:
        source.mark = source.count
        if event in _ENDS:
            depth -= 1
            if depth == 0:
                return failed or root
            if failed is None:
                stack.pop()
                keys.pop()
            continue
        if event == "map_key":
            if failed is None:
                keys[-1] = value
            continue
        if event in _STARTS:
            depth += 1
        if failed is not None:
            continue
        if source.count - start > MAX_RECORD_BYTES:
            failed, root, stack, keys = too_large("record"), None, [], []
            continue
        if depth > MAX_DEPTH:
            failed, root, stack, keys = too_deep("record"), None, [], []
            continue
        item = _STARTS[event]() if event in _STARTS else _scalar(value)
        if isinstance(item, RecordError):
            failed, root, stack, keys = item, None, [], []
            continue
        top = stack[-1]
        if type(top) is list:
            top.append(item)
        else:
            top[keys[-1]] = item
        if event in _STARTS:
            stack.append(item)
            keys.append(None)
    raise ijson.IncompleteJSONError("premature end of the document inside a record")


def _scalar(value: Any) -> Any:
    """A JSON scalar as orjson gives it (non-integers as float), or a RecordError past a double."""
    if type(value) is Decimal:
        number = float(value)
        if not math.isfinite(number):
            return RecordError(f"number {str(value)[:40]} is out of range", "undecodable")
        return number
    if type(value) is int and not _MIN_INT <= value <= _MAX_INT:
        return RecordError(f"integer {str(value)[:40]} is beyond 64 bits", "undecodable")
    return value


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
