"""Topics carry envelopes: JSON arrays of records, bounded in bytes and in count.

Producing and consuming one message per record costs the worker more than matching (profiled:
one message per alert was the largest share of a worker's time). Records that must stay in order
(all the alerts of one driver, every version of one event) go to the same partition, in order,
inside and across envelopes.

``corridor.events`` takes both forms: an envelope (what Corridor's own producers send, one per
partition per flush) or a single event object (the interop format any producer may send, keyed by
the event's id). ``read_events`` judges every record of either alone.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas import Event
from schemas.errors import InvalidRecord
from schemas.geometry import DEFAULT_LIMITS, GeometryLimits
from stream.core.wire import encode_alert

MAX_BYTES = 512 * 1024
# Records an event envelope may carry: a producer flushes at this count, and the worker refuses a
# larger envelope whole (thousands of bad records in one message would each cost a dead letter).
MAX_EVENTS = 1000
__all__ = [
    "MAX_BYTES",
    "MAX_EVENTS",
    "Decoded",
    "encode_alert",
    "is_envelope",
    "pack",
    "pack_by_partition",
    "partition_of",
    "read_events",
    "unpack",
]

log = logging.getLogger("corridor.envelopes")


def pack(encoded: Iterable[bytes], max_bytes: int = MAX_BYTES, max_count: int | None = None) -> list[bytes]:
    """JSON-encoded records as JSON arrays of at most ``max_bytes`` and ``max_count`` records (a
    record larger than ``max_bytes`` travels alone)."""
    envelopes: list[bytes] = []
    chunk: list[bytes] = []
    size = 2
    for item in encoded:
        if chunk and (size + len(item) + 1 > max_bytes or len(chunk) == max_count):
            envelopes.append(b"[" + b",".join(chunk) + b"]")
            chunk, size = [], 2
        chunk.append(item)
        size += len(item) + 1
    if chunk:
        envelopes.append(b"[" + b",".join(chunk) + b"]")
    return envelopes


def pack_by_partition(
    records: Iterable[tuple[str, bytes]], partitions: int, max_bytes: int, max_count: int = MAX_EVENTS
) -> list[tuple[int, bytes]]:
    """(partition, envelope) for (key, JSON record) pairs: each record on the partition of its key,
    in order, packed within the bounds (a record larger than ``max_bytes`` travels alone)."""
    by_partition: dict[int, list[bytes]] = {}
    for key, value in records:
        by_partition.setdefault(partition_of(key, partitions), []).append(value)
    return [
        (partition, envelope)
        for partition, values in by_partition.items()
        for envelope in pack(values, max_bytes, max_count)
    ]


def unpack(raw: bytes) -> list[Any]:
    """The records of one envelope (a single JSON object is read as a batch of one)."""
    data = orjson.loads(raw)
    return data if isinstance(data, list) else [data]


def partition_of(key: str, partitions: int) -> int:
    """A stable partition for a key (the same in every process, unlike ``hash``)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % partitions


def is_envelope(raw: bytes) -> bool:
    """True when a message is a JSON array (an envelope), False for anything else (one record)."""
    return raw[:64].lstrip()[:1] == b"["


@dataclass
class Decoded:
    """The events of one message, and its records refused: (index in the envelope or None for the
    whole message, why, the record's own JSON)."""

    events: list[Event] = field(default_factory=list)
    refused: list[tuple[int | None, InvalidRecord, bytes]] = field(default_factory=list)


def read_events(
    raw: bytes,
    limits: GeometryLimits = DEFAULT_LIMITS,
    max_bytes: int = 900_000,
    max_count: int = MAX_EVENTS,
    kind: str | None = None,
) -> Decoded:
    """Every event of a message (an envelope or a single event), each judged alone.

    An envelope is bounded like one event (``max_bytes``, so each of its events is too) and to
    ``max_count`` records; over either, or not JSON, it is refused whole. With ``kind``, records of
    other kinds are skipped unread.
    """
    out = Decoded()
    if not is_envelope(raw):
        try:
            event = Event.from_json(raw, limits, max_bytes)
        except InvalidRecord as exc:
            out.refused.append((None, exc, raw))
        else:
            if kind is None or event.kind == kind:
                out.events.append(event)
        return out
    items = _envelope_items(raw, max_bytes, max_count, out)
    for index, item in enumerate(items):
        if kind is not None and isinstance(item, dict) and item.get("kind") != kind:
            continue
        try:
            out.events.append(Event.from_dict(item, limits))
        except InvalidRecord as exc:
            out.refused.append((index, exc, _record_json(item)))
        except Exception as exc:  # noqa: BLE001 - a reader fault costs one record, not the envelope
            log.exception("reading record %d of an envelope failed", index)
            out.refused.append(
                (index, InvalidRecord(f"(record): {exc!r}"[:500], "unreadable"), _record_json(item))
            )
    return out


def _envelope_items(raw: bytes, max_bytes: int, max_count: int, out: Decoded) -> list[Any]:
    """The records of an envelope, or none with the whole message refused in ``out``."""
    if len(raw) > max_bytes:
        why = (
            f"(envelope): {len(raw):,} bytes, over the {max_bytes:,} an envelope may take "
            "(CORRIDOR_EVENT_MAX_BYTES): send smaller envelopes"
        )
        out.refused.append((None, InvalidRecord(why, "too_large"), raw))
        return []
    try:
        items = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        out.refused.append((None, InvalidRecord(f"(envelope): not JSON: {exc}", "undecodable"), raw))
        return []
    if not isinstance(items, list):  # whitespace then "[" but not an array cannot parse; be sure
        out.refused.append((None, InvalidRecord("(envelope): not an array", "not_an_object"), raw))
        return []
    if len(items) > max_count:
        why = (
            f"(envelope): {len(items):,} records, over the {max_count:,} an envelope may carry: "
            "send smaller envelopes"
        )
        out.refused.append((None, InvalidRecord(why, "too_many_records"), raw))
        return []
    return items


def _record_json(item: Any) -> bytes:
    """A refused record's own JSON for its dead letter (empty when it cannot be encoded again)."""
    try:
        return orjson.dumps(item)
    except orjson.JSONEncodeError:
        return b""
