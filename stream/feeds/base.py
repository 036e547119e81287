"""The common parser API: a byte stream in, events and rejections out one record at a time, no I/O."""

from __future__ import annotations

import functools
import gc
import io
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO, ParamSpec, TypeAlias, TypeVar

import orjson

from schemas.errors import InvalidRecord
from schemas.event import Event
from schemas.rejected import Rejection

Item: TypeAlias = Event | Rejection
"""What every parser returns for each record: the normalized event, or why it was refused."""

Parser: TypeAlias = Callable[[bytes | str], list[Item]]
"""A bulk parser: a whole document (or a chunk of AIS lines) -> one item per record."""

Reader: TypeAlias = Callable[[BinaryIO], Iterator[Item]]
"""A streaming parser: items come out as records are read, memory bounded by one record."""

MAX_DOCUMENT_BYTES = 128 * 1024 * 1024
"""Largest document a feed poller downloads (parsers stream and hold no document whole)."""

MAX_RECORD_BYTES = 8 * 1024 * 1024
"""Largest record (a JSON value, an XML record element, a JSON line): a bigger one is rejected alone."""

MAX_RECORDS = 1_000_000
"""Most records of one CIFS or perimeter document: their duplicate-id checks remember every id."""

RECOGNITION_LINES = 1000
"""Line formats (AIS, JSON lines) must show a line of the format among their first lines this many."""

CHUNK_BYTES = 64 * 1024
"""How much a streaming parser reads at a time."""


class FeedFormatError(ValueError):
    """The input cannot be read as this format at all (not one record could be parsed)."""


RecordError = InvalidRecord
"""One record is invalid (the name the parsers use): carries the stable reason slug for metrics."""


_P = ParamSpec("_P")
_R = TypeVar("_R")
_gc_lock = threading.Lock()
_gc_state = {"depth": 0, "enabled": 0}


def gc_paused(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run a bulk parser with the cycle collector paused, restored afterwards.

    Parsers build large acyclic trees of small lists and dicts (freed by reference counting);
    the cycle collector would traverse them again and again, costing about a third of the time.
    """

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _gc_lock:
            if _gc_state["depth"] == 0:
                _gc_state["enabled"] = int(gc.isenabled())
                gc.disable()
            _gc_state["depth"] += 1
        try:
            return func(*args, **kwargs)
        finally:
            with _gc_lock:
                _gc_state["depth"] -= 1
                if _gc_state["depth"] == 0 and _gc_state["enabled"]:
                    gc.enable()

    return wrapper


def as_bytes(data: bytes | str) -> bytes:
    """The input of a bulk parser as bytes (text is encoded as UTF-8)."""
    return data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)


def collect(reader: Reader, data: bytes | str) -> list[Item]:
    """Run a streaming parser over a whole document held in memory (the bulk API)."""
    return list(reader(io.BytesIO(as_bytes(data))))


class CountingReader:
    """A binary stream that counts the bytes read, so parsers can bound one record's size.

    ``mark`` is moved by the parser whenever it makes progress; reading more than ``stall``
    bytes past it (one token or text node twice as large as any record may be) raises
    FeedFormatError, since a streaming parser cannot skip a token it has not finished.
    """

    def __init__(self, stream: BinaryIO, fmt: str, stall: int = 2 * MAX_RECORD_BYTES) -> None:
        self._stream = stream
        self._fmt = fmt
        self._stall = stall
        self.count = 0
        self.mark = 0

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (a chunk when negative)."""
        data = self._stream.read(CHUNK_BYTES if size is None or size < 0 else size)
        self.count += len(data)
        if self.count - self.mark > self._stall:
            raise FeedFormatError(
                f"no {self._fmt} record ends within {self._stall // 2**20} MiB after byte {self.mark}: "
                "a single value is larger than Corridor reads; split or fix the document"
            )
        return data


class Replay(io.RawIOBase):
    """Bytes already read from a stream (to sniff its format), then the rest of the stream."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the replayed head first, then from the stream."""
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            if not self._head:
                self._head.release()
                self._head = memoryview(b"")  # the head's bytes are freed once read
            return size
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def replay(head: bytes, stream: BinaryIO) -> BinaryIO:
    """A buffered stream giving ``head`` then what is left of ``stream``."""
    return io.BufferedReader(Replay(head, stream), CHUNK_BYTES)


def sniff(stream: BinaryIO, limit: int = MAX_RECORD_BYTES) -> tuple[bytes, BinaryIO]:
    """(first non-blank byte or b"", the stream unread): formats told apart by how they begin."""
    head = b""
    while len(head) < limit:
        chunk = stream.read(CHUNK_BYTES)
        if not chunk:
            break
        head += chunk
        stripped = head.lstrip()
        if stripped:
            return stripped[:1], replay(head, stream)
    return b"", replay(head, stream)


def reject(where: str, exc: RecordError, raw: Any = None) -> Rejection:
    """A Rejection for one record from the RecordError that refused it."""
    return Rejection(error=exc.error, where=where, reason=exc.reason, raw=snippet(raw))


def snippet(raw: Any) -> str | None:
    """A short text form of a refused record for the dead-letter topic (None stays None)."""
    if raw is None:
        return None
    if isinstance(raw, bytes):
        return raw[:4096].decode("utf-8", "replace")
    if isinstance(raw, str):
        return raw
    try:
        return orjson.dumps(raw, default=str).decode("utf-8")
    except TypeError:
        return repr(raw)[:4096]


def count(items: Iterable[Item]) -> tuple[int, int]:
    """(events, rejections) in a parser's output."""
    events = rejections = 0
    for item in items:
        if isinstance(item, Event):
            events += 1
        else:
            rejections += 1
    return events, rejections


def text(value: Any, field: str, max_len: int = 512) -> str | None:
    """A stripped non-empty string (cut to ``max_len``) or None; other types are refused."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{field} must be text, got {type(value).__name__}", "schema")
    value = " ".join(value.split())
    return value[:max_len] or None
