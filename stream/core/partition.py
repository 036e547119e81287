"""A worker's share of the join: the routes of its partitions, every active event, the versions seen.

Routes are partitioned by route id (all of a route's messages, and so all of its alerts, live in
one partition: their transitions are totally ordered). Events are copied to every partition, each
stamped with a sequence number when Corridor received it; a worker applies the first copy it sees
and skips the others. Because messages are delivered at least
once and the index is rebuilt from a snapshot before the log is replayed, a message older than what
the partition already holds is skipped: a replay never moves an alert back to an older state.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from schemas import Event, Route, RouteMessage
from stream.core import lifecycle as lc
from stream.core.engine import Engine
from stream.core.wire import WireAlerts

log = logging.getLogger("corridor.engine")


@dataclass(frozen=True, slots=True)
class StampedEvent:
    """An event with the sequence (ns since the epoch) at which Corridor received this version."""

    seq: int
    event: Event


@dataclass
class PartitionIndex:
    """The engine of a worker's partitions, guarded against replays of older versions."""

    engine: Engine
    _event_seq: dict[str, int] = field(default_factory=dict)
    _route_at: dict[str, datetime] = field(default_factory=dict)
    _position_at: dict[str, datetime] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)  # see ``take_failed``
    failed_routes: list[tuple[str, str]] = field(default_factory=list)  # see ``take_failed_routes``

    def apply_routes(self, messages: Sequence[RouteMessage], now: datetime) -> WireAlerts:
        """Registered/updated routes are matched, positions move vehicles, ended routes clear.

        Consecutive registrations are matched together (one engine call for the run); a position
        or an end of route first flushes the registrations before it, so each route's messages
        take effect in order. Returns the transitions in their wire form.
        """
        engine = self.engine
        alerts = WireAlerts()
        pending: list[Route] = []

        def flush() -> None:
            if not pending:
                return
            try:
                alerts.extend(engine.wire(engine.upsert_routes_delta(pending, now)))
            except Exception:  # noqa: BLE001 - a fault of the engine must not lose the other routes
                log.exception("matching %d routes failed: applying them one by one", len(pending))
                for route in pending:
                    guarded(route.route_id, partial(engine.upsert_routes_delta, [route], now))
            pending.clear()

        def guarded(route_id: str, change: Callable[[], lc.Delta]) -> None:
            """One route's change; a route that makes the engine fail is refused and forgotten."""
            try:
                alerts.extend(engine.wire(change()))
            except Exception as exc:  # noqa: BLE001 - this route alone makes the engine fail
                log.exception("route %s makes the engine fail: refused", route_id)
                self.failed_routes.append(
                    (route_id, f"the engine failed on it: {type(exc).__name__}: {exc}"[:500])
                )
                with contextlib.suppress(Exception):
                    engine.end_route_delta(route_id, now)

        for msg in messages:
            last = self._route_at.get(msg.route_id)
            if msg.op == "position":
                seen = self._position_at.get(msg.route_id)
                if msg.position is None or (seen and msg.at <= seen) or (last and msg.at < last):
                    continue
                self._position_at[msg.route_id] = msg.at
                flush()
                guarded(
                    msg.route_id, partial(engine.route_position_delta, msg.route_id, msg.position, msg.at)
                )
                continue
            if last is not None and msg.at < last:
                continue
            self._route_at[msg.route_id] = msg.at
            if msg.op == "ended":
                self._position_at.pop(msg.route_id, None)
                flush()
                guarded(msg.route_id, partial(engine.end_route_delta, msg.route_id, now))
            elif msg.route is not None:
                pending.append(msg.route)
        flush()
        return alerts

    def apply_events(
        self, stamped: Sequence[StampedEvent], now: datetime, receipts: bool = True
    ) -> WireAlerts:
        """The newest version of each event in the batch, unless this partition has a newer one;
        the transitions in their wire form, with each event's receipt time (``receipts``: the
        time Corridor received it, for the latency to the driver; off when replaying)."""
        latest: dict[str, StampedEvent] = {}
        for item in stamped:
            held = latest.get(item.event.id)
            if held is None or item.seq > held.seq:
                latest[item.event.id] = item
        fresh = [item for item in latest.values() if item.seq > self._event_seq.get(item.event.id, -1)]
        if not fresh:
            return WireAlerts()
        for item in fresh:
            self._event_seq[item.event.id] = item.seq
        received = {item.event.id: _instant(item.seq) for item in fresh} if receipts else None
        events = [item.event for item in fresh]
        try:
            alerts = self.engine.wire(self.engine.apply_events_delta(events, now), received)
        except Exception:  # noqa: BLE001 - a fault of the engine must not lose the batch's good events
            log.exception("matching a batch of %d events failed: applying them one by one", len(events))
            alerts = self._events_one_by_one(events, now, received)
        self._take_engine_refusals()
        return alerts

    def _events_one_by_one(
        self, events: list[Event], now: datetime, received: dict[str, datetime] | None
    ) -> WireAlerts:
        """After a failed batch: forget what it stored, then apply each event alone; one that
        fails alone is refused (``failed``) and forgotten. The clearings this causes are sent too:
        the outbox drops a clearing for an alert its driver never saw, and a driver that saw one
        gets it cleared, then raised again by the event's new version, rather than kept stale."""
        engine = self.engine
        undone = lc.Delta(now)
        for event in events:
            slot = engine.index.slot_of.get(event.id)
            if slot is not None and engine.index.objects.event[slot] is event:
                engine.drop_event(slot, undone, lc.CANCELLED)
        alerts = engine.wire(undone, received)
        for event in events:
            try:
                alerts.extend(engine.wire(engine.apply_events_delta([event], now), received))
            except Exception as exc:  # noqa: BLE001 - this event alone makes the engine fail
                log.exception("event %s makes the engine fail: refused", event.id)
                self.failed.append((event.id, f"the engine failed on it: {type(exc).__name__}: {exc}"[:500]))
                slot = engine.index.slot_of.get(event.id)
                if slot is not None:
                    dropped = lc.Delta(now)
                    engine.drop_event(slot, dropped, lc.CANCELLED)
                    alerts.extend(engine.wire(dropped, received))
        return alerts

    def _take_engine_refusals(self) -> None:
        if self.engine.rejected:
            self.failed.extend(self.engine.rejected)
            self.engine.rejected.clear()

    def take_failed_routes(self) -> list[tuple[str, str]]:
        """(route id, why) of the routes that made the engine fail since the last call (forgotten
        by the engine; the caller dead-letters them and keeps them out of its rebuilds)."""
        failed, self.failed_routes = self.failed_routes, []
        return failed

    def take_failed(self) -> list[tuple[str, str]]:
        """(event id, why) of the events refused since the last call: unusable by the engine, or
        making it fail. The caller dead-letters them and keeps them out of its rebuilds."""
        failed, self.failed = self.failed, []
        return failed

    def forget_route(self, route_id: str, now: datetime) -> None:
        """Drop a route without clearing its alerts: its partition now belongs to another worker."""
        self.engine.end_route_delta(route_id, now)
        self._route_at.pop(route_id, None)
        self._position_at.pop(route_id, None)

    def expire(self, now: datetime) -> WireAlerts:
        """Clear the alerts of events whose validity has ended."""
        return self.engine.wire(self.engine.expire_delta(now))


def _instant(seq: int) -> datetime:
    """A receipt sequence (ns since the epoch) as an aware datetime."""
    return datetime.fromtimestamp(seq / 1e9, UTC)
