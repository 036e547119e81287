"""Internal topics carry batches: JSON arrays of records, each message at most 512 KiB.

Producing and consuming one message per record costs the worker more than matching (profiled:
one message per alert was the largest share of a worker's time). Records that must stay in order
(all the alerts of one driver) go to the same partition, in order, inside and across envelopes.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

import orjson

from stream.core.wire import encode_alert

MAX_BYTES = 512 * 1024
__all__ = ["MAX_BYTES", "encode_alert", "pack", "partition_of", "unpack"]


def pack(encoded: Iterable[bytes], max_bytes: int = MAX_BYTES) -> list[bytes]:
    """JSON-encoded records as JSON arrays of at most ``max_bytes`` (a larger record travels alone)."""
    envelopes: list[bytes] = []
    chunk: list[bytes] = []
    size = 2
    for item in encoded:
        if chunk and size + len(item) + 1 > max_bytes:
            envelopes.append(b"[" + b",".join(chunk) + b"]")
            chunk, size = [], 2
        chunk.append(item)
        size += len(item) + 1
    if chunk:
        envelopes.append(b"[" + b",".join(chunk) + b"]")
    return envelopes


def unpack(raw: bytes) -> list[Any]:
    """The records of one envelope (a single JSON object is read as a batch of one)."""
    data = orjson.loads(raw)
    return data if isinstance(data, list) else [data]


def partition_of(key: str, partitions: int) -> int:
    """A stable partition for a key (the same in every process, unlike ``hash``)."""
    return zlib.crc32(key.encode()) % partitions
