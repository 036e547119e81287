"""AIS NMEA in from a TCP feed, UDP datagrams or a file, decoded and published in small batches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from stream.feeds.ais import AisDecoder
from stream.feeds.base import Item
from stream.ingest.sink import FeedSink

log = logging.getLogger("corridor.feeds.ais")

BATCH_LINES = 500
BATCH_SECONDS = 0.2
MAX_LINE = 1024


async def tcp_chunks(host: str, port: int, stop: asyncio.Event) -> AsyncIterator[bytes]:
    """Bytes from a TCP NMEA feed, reconnecting with backoff when it drops."""
    backoff = 0.5
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=64 * 1024)
        except OSError as exc:
            log.warning("cannot reach AIS feed %s:%d (%s); retrying in %.1fs", host, port, exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
            continue
        backoff = 0.5
        log.info("connected to AIS feed %s:%d", host, port)
        try:
            while not stop.is_set():
                chunk = await reader.read(64 * 1024)
                if not chunk:
                    break
                yield chunk
        finally:
            writer.close()
        log.warning("AIS feed %s:%d closed the connection; reconnecting", host, port)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, queue: asyncio.Queue[bytes]) -> None:
        self.queue = queue

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if self.queue.full():
            log.warning("AIS UDP queue full: a datagram from %s was not read in time", addr)
            return
        self.queue.put_nowait(data if data.endswith(b"\n") else data + b"\n")


async def udp_chunks(port: int, stop: asyncio.Event, host: str = "0.0.0.0") -> AsyncIterator[bytes]:  # noqa: S104
    """Datagrams received on a UDP port (each one or more NMEA lines)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=10_000)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(queue), local_addr=(host, port))
    log.info("listening for AIS on udp %s:%d", host, port)
    try:
        while not stop.is_set():
            try:
                yield await asyncio.wait_for(queue.get(), 0.5)
            except TimeoutError:
                continue
    finally:
        transport.close()


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    """A capture file, in blocks."""
    with path.open("rb") as handle:
        while block := handle.read(256 * 1024):
            yield block


async def _read_into(chunks: AsyncIterator[bytes], queue: asyncio.Queue[bytes | None]) -> None:
    try:
        async for chunk in chunks:
            await queue.put(chunk)
    finally:
        await queue.put(None)


async def pump(chunks: AsyncIterator[bytes], decoder: AisDecoder, sink: FeedSink) -> None:
    """Decode chunks and publish events and rejections in batches: by size, or 0.2 s after the first.

    A quiet feed still has its last sentences published promptly; on shutdown what was read is
    published, not dropped.
    """
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=64)
    reader = asyncio.create_task(_read_into(chunks, queue))
    pending: list[Item] = []
    loop = asyncio.get_running_loop()
    first_at = 0.0
    try:
        while True:
            wait = max(0.0, BATCH_SECONDS - (loop.time() - first_at)) if pending else None
            try:
                chunk = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                chunk = b""
            if chunk is None:
                break
            if chunk:
                if not pending:
                    first_at = loop.time()
                pending.extend(decoder.feed(chunk))
            if pending and (len(pending) >= BATCH_LINES or loop.time() - first_at >= BATCH_SECONDS):
                batch, pending = pending, []
                await sink.publish(batch)
    finally:
        reader.cancel()
        pending.extend(decoder.flush())
        if pending:
            await sink.publish(pending)
