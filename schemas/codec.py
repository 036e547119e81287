"""orjson encoding and decoding shared by every record (one place for the wire format)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import orjson

from schemas.errors import InvalidRecord

_OPTIONS = orjson.OPT_NAIVE_UTC


def to_plain(record: Any) -> dict[str, Any]:
    """A record as a JSON-ready dict: datetimes as ISO 8601 strings, absent values as null.

    Nulls are kept: the contracts require keys such as ``valid_from`` even when they are unknown.
    """
    data: dict[str, Any] = orjson.loads(orjson.dumps(record, option=_OPTIONS))
    return data


def dumps(record: Any) -> bytes:
    """Serialize a record (dataclass, dict) to compact JSON bytes: the JSON of ``to_plain(record)``,
    written in one pass (orjson writes dataclasses, datetimes and tuples itself)."""
    return orjson.dumps(record, option=_OPTIONS)


def loads(data: bytes | str) -> Any:
    """Parse JSON bytes."""
    return orjson.loads(data)


def opt_datetime(value: Any) -> datetime | None:
    """Parse an ISO 8601 datetime with offset; None stays None.

    A naive datetime is refused: every timestamp on the wire carries its offset.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise TypeError(f"expected an ISO 8601 string, got {type(value).__name__}")
    if parsed.tzinfo is None:
        raise ValueError(f"datetime {value!r} has no UTC offset")
    return parsed


def opt_float(value: Any) -> float | None:
    """A number or None; booleans and strings are refused."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def instant(data: dict[str, Any], name: str) -> datetime | None:
    """Field ``name`` of a record as an aware datetime (or None); InvalidRecord naming it otherwise."""
    try:
        return opt_datetime(data.get(name))
    except (TypeError, ValueError) as exc:
        raise InvalidRecord(f"{name}: {exc}", "bad_time") from None


def measure(data: dict[str, Any], name: str, path: str) -> float | None:
    """Field ``name`` as a finite number >= 0 (or None); InvalidRecord naming ``path/name`` otherwise."""
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InvalidRecord(f"{path}/{name}: {str(value)[:32]!r} is not a number >= 0", "schema")
    return float(value)
