"""One JSON record read from ijson events, and the bounds every JSON reader applies to a record."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ijson

from stream.feeds.base import MAX_RECORD_BYTES, CountingReader, FeedFormatError, RecordError

_MIN_INT, _MAX_INT = -(2**63), 2**64 - 1  # what orjson reads and writes
_STARTS = {"start_map": dict, "start_array": list}
_ENDS = frozenset({"end_map", "end_array"})

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


_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'"[]{}\\')


def depth_bound(raw: bytes) -> int | None:
    """A bound on how deep valid JSON text nests, from its bytes alone, when it is at most
    MAX_DEPTH (None otherwise, or when a string holds a bracket or an escape): each pass removes
    every innermost ``[]`` and then ``{}``, that is one or two levels, all in C."""
    marks = raw.translate(None, _NOT_STRUCTURE)
    if b"\\" in marks:
        return None
    marks = marks.replace(b'""', b"")
    if b'"' in marks:
        return None
    levels = 0
    while marks:
        inner = marks.replace(b"[]", b"").replace(b"{}", b"")
        levels += 2
        if len(inner) == len(marks) or levels > MAX_DEPTH:
            return None
        marks = inner
    return levels


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


class DigitChecked(CountingReader):
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


def read_record(event: str, value: Any, events: Iterator[tuple[str, Any]], source: CountingReader) -> Any:
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
