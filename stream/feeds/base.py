"""The common parser API: bytes in, a list of events and rejections out, no I/O."""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeAlias, TypeVar

import orjson

from schemas.event import Event
from schemas.rejected import Rejection

Item: TypeAlias = Event | Rejection
"""What every parser returns for each record: the normalized event, or why it was refused."""

Parser: TypeAlias = Callable[[bytes | str], list[Item]]
"""A bulk parser: a whole document (or a chunk of AIS lines) -> one item per record."""

MAX_DOCUMENT_BYTES = 128 * 1024 * 1024
"""Largest document a parser accepts; bigger input is refused before parsing."""

MAX_RECORDS = 1_000_000
"""Largest number of records a document may hold."""


class FeedFormatError(ValueError):
    """The input cannot be read as this format at all (not one record could be parsed)."""


class RecordError(ValueError):
    """One record is invalid: carries the stable reason slug for metrics."""

    def __init__(self, error: str, reason: str = "invalid") -> None:
        super().__init__(error)
        self.error = error
        self.reason = reason


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


def as_bytes(data: bytes | str, fmt: str) -> bytes:
    """The input as bytes, refused with FeedFormatError when it exceeds MAX_DOCUMENT_BYTES."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise FeedFormatError(
            f"{fmt} document is {len(raw)} bytes, over the {MAX_DOCUMENT_BYTES} byte limit: "
            "split it into smaller documents"
        )
    return raw


def load_json(data: bytes | str, fmt: str) -> Any:
    """Parse a whole JSON document or raise FeedFormatError naming the format."""
    raw = as_bytes(data, fmt)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FeedFormatError(f"not a {fmt} JSON document: {exc}") from None


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
