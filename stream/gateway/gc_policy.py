"""Garbage collection for a process that holds 10,000 long-lived connections.

A full collection walks every tracked object; with 10k open sockets that pauses the event loop for
~450 ms, which is the whole delivery tail. So automatic full collections are turned off (young
ones stay automatic and cheap), settled connections are frozen out of the collector
(``gc.freeze()``) once a batch of new ones has arrived, collecting only what is new just before,
and cyclic garbage that reached the old generation (closed connections) waits for a full
collection that runs at a quiet moment once enough connections have closed, or after
``REFREEZE_MAX_S`` at the latest. Pauses are measured (``corridor_gc_pause_seconds``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

from stream.runtime import metrics

log = logging.getLogger("corridor.gateway")

FREEZE_MIN_NEW = 200  # new connections worth a freeze
SETTLE_S = 1.0  # no new connection for this long: the batch has arrived
REFREEZE_MIN_CLOSED = 1000  # closed frozen connections worth a full collection
REFREEZE_MAX_S = 1800.0
QUIET_SENDS_PER_S = 50
AUTOMATIC_FULL_OFF = 1_000_000  # young collections stay automatic; full ones are ours


class GcPolicy:
    """Decides, once a second, whether to freeze new connections or to collect everything."""

    def __init__(self) -> None:
        self._started: float | None = None
        self._thresholds: tuple[int, int, int] | None = None
        self._frozen_conns = 0
        self._opened_at_freeze = 0
        self._closed_at_refreeze = 0
        self._last_open = time.monotonic()
        self._last_refreeze = time.monotonic()
        self._opened_seen = 0

    def install(self) -> None:
        """Measure pauses, turn off automatic full collections, collect start-up garbage, freeze."""
        gc.callbacks.append(self._on_gc)
        self._thresholds = gc.get_threshold()
        young, middle, _ = self._thresholds
        gc.set_threshold(young, middle, AUTOMATIC_FULL_OFF)
        gc.collect()
        gc.freeze()

    def uninstall(self) -> None:
        """Stop measuring and restore the thresholds (for processes that run several gateways)."""
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            pause = time.perf_counter() - self._started
            metrics.gc_pause_seconds.labels(str(info.get("generation", "?"))).observe(pause)
            self._started = None

    def tick(self, opened: int, closed: int, sent_last_s: int, connections: int) -> str | None:
        """One decision from connection counters; returns what was done (for logs and tests)."""
        now = time.monotonic()
        if opened != self._opened_seen:
            self._opened_seen = opened
            self._last_open = now
        new = opened - self._opened_at_freeze
        settled = now - self._last_open >= SETTLE_S
        if new >= FREEZE_MIN_NEW and (settled or new >= max(2000, connections // 2)):
            started = time.perf_counter()
            gc.collect()
            gc.freeze()
            metrics.gc_freezes.inc()
            self._frozen_conns += new
            self._opened_at_freeze = opened
            log.info("gc: froze %d new connections (%.0f ms)", new, (time.perf_counter() - started) * 1000)
            return "freeze"
        gone = closed - self._closed_at_refreeze
        quiet = sent_last_s <= QUIET_SENDS_PER_S
        overdue = now - self._last_refreeze >= REFREEZE_MAX_S
        if (gone >= max(REFREEZE_MIN_CLOSED, self._frozen_conns // 4) and quiet) or overdue:
            started = time.perf_counter()
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            metrics.gc_freezes.inc()
            self._closed_at_refreeze = closed
            self._opened_at_freeze = opened
            self._frozen_conns = connections
            self._last_refreeze = now
            log.info(
                "gc: full collection after %d closed connections (%.0f ms)",
                gone,
                (time.perf_counter() - started) * 1000,
            )
            return "refreeze"
        return None

    async def run(self, counters: Any) -> None:
        """Tick every second from a hub's ``opened``, ``closed``, ``sent`` and connection count."""
        sent_before = counters.sent
        while True:
            await asyncio.sleep(1.0)
            sent = counters.sent
            self.tick(counters.opened, counters.closed, sent - sent_before, counters.connection_count)
            sent_before = sent
