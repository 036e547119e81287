"""The wake-up message: what the outbox appended, announced to the gateways in one publish.

Written by the outbox's append script (``stream.worker.outbox``) on ``redis_keys.wake_channel``,
read by each gateway's hub (``stream.gateway.hub``).
"""

from __future__ import annotations


def wake_lines(message: bytes) -> list[tuple[str, bytes | None, bytes | None]]:
    """A wake-up message as (driver id, stream id, payload) per line; ids and payload None for a
    driver whose stream must be read.

    An append call announces what it appended in one message of lines separated by ``\n``:
    ``<driver id> <stream id> <payload>`` for each entry as stored, in stream order, or a bare
    ``<driver id>`` for a driver with an entry too large to travel here (over the outbox's
    ``LIVE_MAX_BYTES``), whose stream must be read. A line of several space-separated driver ids
    (the format of earlier versions) names drivers to read too. Driver ids hold no space and
    payloads (JSON as orjson writes it) no line break.
    """
    out: list[tuple[str, bytes | None, bytes | None]] = []
    for line in message.split(b"\n"):
        parts = line.split(b" ", 2)
        if len(parts) == 3 and parts[2][:1] == b"{":
            out.append((parts[0].decode(errors="replace"), parts[1], parts[2]))
        else:
            out.extend((part.decode(errors="replace"), None, None) for part in parts if part)
    return out
