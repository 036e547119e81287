"""Records of a JSON array cut out of the raw bytes and decoded whole by orjson.

``jsonstream.walk`` reads a document event by event (ijson), a Python step per number: about 2,000
perimeter features a second. Most documents are an array of records, alone or as one member of a
root object (a FeatureCollection's ``features``), so this module finds where each record ends in
the bytes and hands the record to orjson, a C decoder, keeping the walk's contract: the same
("root", "member", "record") items, memory bounded by one record, records over MAX_RECORD_BYTES or
MAX_DEPTH refused alone, and a record whose numbers orjson reads differently from ijson (integers
beyond 64 bits, which orjson turns into floats; numbers past a double) decoded by the walk's own
record reader, so that what comes out never depends on which path read it.

Where a record ends is found by counting its brackets between closing ones (C-speed ``bytes.count``)
and confirmed by decoding it: a prefix of a JSON value that decodes is the whole value, so a count
fooled by a bracket inside a string only costs a second, exact scan that skips strings.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, BinaryIO

import ijson
import orjson

from stream.feeds.base import CHUNK_BYTES, MAX_RECORD_BYTES, FeedFormatError
from stream.feeds.jsonrecord import (
    ARRAY,
    OBJECT,
    DigitChecked,
    depth_bound,
    depth_ok,
    read_record,
    shallow,
    too_deep,
    too_large,
)

_WS = re.compile(rb"[ \t\r\n]*")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SCALAR = re.compile(rb"-?[0-9][0-9.eE+-]*|true|false|null")
# A string, or one bracket: what the exact scan of a record steps over.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
# Nineteen digits in a row may be an integer orjson reads as a float (below -2**63, or beyond
# 2**64 - 1): such a record is read by ijson.
# (Found with translate and find: a regular expression takes longer than decoding the record.)
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_RUN = b"0" * 19
_CLOSE = {ord("{"): b"}", ord("["): b"]"}
_SHORT = 2048
"""Records up to this size are first checked by counting their brackets (``shallow``)."""


class Splitter:
    """A byte buffer over a stream, from which whole JSON values are cut."""

    def __init__(self, stream: BinaryIO, fmt: str, stall: int = 2 * MAX_RECORD_BYTES) -> None:
        self._stream = stream
        self._fmt = fmt
        self._stall = stall
        self.buf = b""
        self.pos = 0
        self.base = 0  # offset in the document of buf[0]
        self.eof = False

    def _fill(self) -> bool:
        """Read more (at least as much as is held, so that a long value costs linear time)."""
        if self.eof:
            return False
        held = len(self.buf) - self.pos
        chunk = self._stream.read(max(CHUNK_BYTES, held))
        if not chunk:
            self.eof = True
            return False
        self.base += self.pos
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return True

    def error(self, detail: str) -> FeedFormatError:
        """The refusal of a document that is not JSON, naming where."""
        return FeedFormatError(
            f"not a {self._fmt} JSON document: {detail} (near byte {self.base + self.pos})"
        )

    def _stalled(self) -> FeedFormatError:
        return FeedFormatError(
            f"no {self._fmt} record ends within {self._stall // 2**20} MiB after byte "
            f"{self.base + self.pos}: a single value is larger than Corridor reads; split or fix the document"
        )

    def peek(self) -> int | None:
        """The next byte that is not blank (None at the end of the document), not consumed."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return None

    def expect(self, char: bytes) -> None:
        """Consume ``char`` (after blanks), or refuse the document."""
        if self.peek() != char[0]:
            raise self.error(f"expected {char.decode()!r}")
        self.pos += 1

    def more(self, closing: bytes, what: str) -> bool:
        """After an item of a container: True past a ',', False past its ``closing`` bracket."""
        char = self.peek()
        if char is not None and char in b"," + closing:
            self.pos += 1
            return char == ord(",")
        raise self.error(f"expected ',' or {closing.decode()!r} after {what}")

    def end_of(self, start_char: int) -> int:
        """Where the value starting at ``pos`` ends (exclusive), by counting brackets: to be
        confirmed by decoding it (see ``take``); -1 when the document ends first."""
        closing = _CLOSE.get(start_char)
        if closing is None:
            return self._scalar_end()
        opening = bytes([start_char])
        depth, scanned, search = 0, self.pos, self.pos
        while True:
            close = self.buf.find(closing, search)
            if close < 0:
                if len(self.buf) - self.pos > self._stall:
                    raise self._stalled()
                shift, held = self.pos, len(self.buf)
                if not self._fill():
                    return -1
                scanned, search = scanned - shift, held - shift
                continue
            depth += self.buf.count(opening, scanned, close + 1) - self.buf.count(closing, scanned, close + 1)
            scanned = search = close + 1
            if depth <= 0:
                return close + 1

    def exact_end(self) -> int:
        """Where the container starting at ``pos`` ends, strings skipped; refuses the document when
        it never does."""
        while True:
            depth = 0
            for token in _TOKEN.finditer(self.buf, self.pos):
                char = token.group()
                if char in (b"{", b"["):
                    depth += 1
                elif char in (b"}", b"]"):
                    depth -= 1
                    if depth == 0:
                        return token.end()
            if len(self.buf) - self.pos > self._stall:
                raise self._stalled()
            if not self._fill():
                raise self.error("the document ends inside a value")

    def _scalar_end(self) -> int:
        while True:
            pattern = _STRING if self.buf[self.pos] == ord('"') else _SCALAR
            found = pattern.match(self.buf, self.pos)
            if found is not None and (found.end() < len(self.buf) or self.eof):
                return found.end()
            if len(self.buf) - self.pos > self._stall:
                raise self._stalled()
            if not self._fill():
                if found is None:
                    raise self.error("expected a value")
                return found.end()

    def take(self) -> tuple[bytes, Any]:
        """The next value's bytes, consumed, and the value when decoding confirmed where a
        container ends (``UNREAD`` for a scalar)."""
        char = self.peek()
        if char is None:
            raise self.error("the document ends where a value was expected")
        end = self.end_of(char)
        raw = self.buf[self.pos : end] if end >= 0 else b""
        value: Any = UNREAD
        if char in _CLOSE:
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:  # a bracket in a string fooled the count
                end = self.exact_end()
                raw = self.buf[self.pos : end]
        self.pos = end
        return raw, value


UNREAD = object()
"""What ``Splitter.take`` gives for a value it has not decoded."""


def walk(stream: BinaryIO, fmt: str, path: tuple[str, ...]) -> Iterator[tuple[str, Any, Any]]:
    """``jsonstream.walk`` for an array of records at the root (path ``("item",)``) or as a
    member of the root object (``(key, "item")``); for any other document it raises
    ``Unsupported`` with the bytes read so far, before yielding anything."""
    member = path[0] if len(path) == 2 and path[1] == "item" else None  # noqa: PLR2004
    split = Splitter(stream, fmt)
    first = split.peek()
    if path == ("item",) and first == ord("["):
        yield "root", list, None
        split.pos += 1
        yield from _records(split, fmt, 0)
    elif member is not None and first == ord("{"):
        yield "root", dict, None
        split.pos += 1
        yield from _members(split, fmt, member)
    else:
        raise Unsupported(split.buf)
    if split.peek() is not None:
        raise split.error("trailing data after the document")


class Unsupported(Exception):  # noqa: N818 - a signal to the caller, not a failure
    """A document this reader does not take, with the bytes read from its stream so far."""

    def __init__(self, head: bytes) -> None:
        super().__init__("document shape not handled here")
        self.head = head


def _members(split: Splitter, fmt: str, member: str) -> Iterator[tuple[str, Any, Any]]:
    """The root object's members, and the records of the array named ``member``, through its '}'."""
    if split.peek() == ord("}"):
        split.pos += 1
        return
    index = 0
    while True:
        key = _key(split)
        split.expect(b":")
        if split.peek() == ord("[") and key == member:
            yield "member", key, ARRAY
            split.pos += 1
            for item in _records(split, fmt, index):
                index += 1
                yield item
        else:
            yield "member", key, _member(split.take()[0], split)
        if not split.more(b"}", "a member"):
            return


def _key(split: Splitter) -> str:
    if split.peek() != ord('"'):
        raise split.error("expected a member name")
    raw, _ = split.take()
    try:
        key = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise split.error("a member name is not a JSON string") from None
    return str(key)


def _member(raw: bytes, split: Splitter) -> Any:
    """What the walk reports for a member of the root object: containers as such, scalars as
    ijson gives them (non-integers as Decimal)."""
    first = raw[:1]
    if first == b"{":
        return OBJECT
    if first == b"[":
        return ARRAY
    if first and first in b"-0123456789":
        text = raw.decode("ascii", "replace")
        try:
            return int(text) if text.lstrip("-").isdigit() else Decimal(text)
        except (ValueError, ArithmeticError):
            raise split.error(f"{text[:40]!r} is not a number") from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise split.error("a member's value is not JSON") from None


def _records(split: Splitter, fmt: str, index: int) -> Iterator[tuple[str, Any, Any]]:
    """The array's elements as ("record", index, value or RecordError), through its ']'."""
    if split.peek() == ord("]"):
        split.pos += 1
        return
    while True:
        start = split.base + split.pos
        raw, value = split.take()
        yield "record", index, _decode(raw, value, start, fmt)
        index += 1
        if not split.more(b"]", "a record"):
            return


def _decode(raw: bytes, value: Any, start: int, fmt: str) -> Any:
    """One record's value, or its RecordError: orjson's reading where it is the one ijson gives."""
    if len(raw) > MAX_RECORD_BYTES:
        return too_large("record")
    if raw.translate(_DIGITS_AS_ZERO).find(_LONG_RUN) >= 0:
        return _by_ijson(raw, start, fmt)
    if value is UNREAD:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _by_ijson(raw, start, fmt)
    # (a long record is rarely shallow: counting its brackets first would be a wasted pass)
    if (len(raw) <= _SHORT and shallow(raw)) or depth_bound(raw) is not None or depth_ok(value):
        return value
    return too_deep("record")


def _by_ijson(raw: bytes, start: int, fmt: str) -> Any:
    """A record read by the walk's own reader (ijson), with the walk's refusals."""
    source = DigitChecked(io.BytesIO(raw), fmt)
    events = ijson.basic_parse(source, buf_size=CHUNK_BYTES)
    try:
        event, value = next(events)
        record = read_record(event, value, events, source)
        for _ in events:  # a scalar's bytes hold more than one value ('1e999.0')
            raise FeedFormatError(f"not a {fmt} JSON document: a value is malformed (near byte {start})")
    except FeedFormatError:
        raise
    except (ijson.JSONError, ValueError, ArithmeticError, StopIteration) as exc:
        detail = str(exc).split("\n", 1)[0][:200]
        raise FeedFormatError(f"not a {fmt} JSON document: {detail} (near byte {start})") from None
    return record
