"""The alert book: which (route, event) pairs are raised, and the transitions between states.

Alerts are kept per event as columns (route slots, last distance sent, expected time), so a batch
of new events raises its alerts without a Python object per pair. ``Delta`` collects transitions
as columns too; ``Delta.alerts`` turns them into ``schemas.Alert`` records.

States: ``raised`` the first time a pair concerns the driver, ``updated`` when the event changed
or the distance ahead moved by more than the threshold since the last one sent, ``cleared`` once
(event cancelled or expired, route changed or ended, vehicle passed, no longer applies). A pair
that is raised is never raised again until it has been cleared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from schemas import Alert, Event, Route, alert_id_for

Array = np.ndarray[Any, Any]
RAISED, UPDATED, CLEARED = 0, 1, 2
STATES = ("raised", "updated", "cleared")
REASONS = (
    "",
    "event cancelled",
    "event expired",
    "route changed",
    "vehicle passed",
    "route ended",
    "no longer concerns the route",
)
CANCELLED, EXPIRED, ROUTE_CHANGED, PASSED, ROUTE_ENDED, NO_LONGER = range(1, 7)


@dataclass(slots=True)
class EventAlerts:
    """Raised alerts of one event: route slots, last distance sent, expected time."""

    r: Array
    dist: Array
    expected: Array


@dataclass(slots=True)
class Delta:
    """Alert transitions as columns (and single rows); valid until the engine's next call."""

    at: datetime
    parts: list[tuple[int, Array, Array, Array, Array, int]] = field(default_factory=list)
    singles: list[tuple[int, int, int, float, float, int]] = field(default_factory=list)

    def add(self, state: int, ev: Any, r: Array, dist: Any, expected: Any, reason: int = 0) -> None:
        """Record transitions for the routes in array ``r`` (other columns may be scalars)."""
        if len(r):
            ev = np.broadcast_to(np.asarray(ev, dtype=np.int64), r.shape)
            dist = np.broadcast_to(np.asarray(dist, dtype=np.float64), r.shape)
            expected = np.broadcast_to(np.asarray(expected, dtype=np.float64), r.shape)
            self.parts.append((state, ev, r, dist, expected, reason))

    def add_one(self, state: int, ev: int, r: int, dist: float, expected: float, reason: int = 0) -> None:
        """Record one transition."""
        self.singles.append((state, ev, r, dist, expected, reason))

    def _all(self) -> list[tuple[int, Array, Array, Array, Array, int]]:
        if self.singles:
            for state, ev, r, dist, exp, reason in self.singles:
                one = np.array([r], dtype=np.int64)
                self.parts.append((state, np.array([ev]), one, np.array([dist]), np.array([exp]), reason))
            self.singles.clear()
        return self.parts

    def __len__(self) -> int:
        return sum(len(part[2]) for part in self._all())

    def count(self, state: int) -> int:
        """Transitions of one state."""
        return sum(len(part[2]) for part in self._all() if part[0] == state)

    def pairs(self, state: int = RAISED) -> tuple[Array, Array]:
        """(event slots, route slots) of the transitions of one state."""
        sel = [part for part in self._all() if part[0] == state]
        if not sel:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate([p[1] for p in sel]), np.concatenate([p[2] for p in sel])

    def alerts(self, route_of: Callable[[int], Route], event_of: Callable[[int], Event]) -> list[Alert]:
        """The transitions as alert records."""
        out: list[Alert] = []
        for state, evs, rs, dists, exps, reason in self._all():
            name = STATES[state]
            why = REASONS[reason] or None
            for ev, r, dist, exp in zip(
                evs.tolist(), rs.tolist(), dists.tolist(), exps.tolist(), strict=True
            ):
                route, event = route_of(r), event_of(ev)
                out.append(
                    Alert(
                        alert_id=alert_id_for(route.route_id, event.id),
                        route_id=route.route_id,
                        driver_id=route.driver_id,
                        event_id=event.id,
                        kind=event.kind,
                        state=name,  # type: ignore[arg-type]
                        distance_ahead_m=None if dist != dist else round(dist, 1),
                        valid_from=event.valid_from,
                        valid_until=event.valid_until,
                        title=event.title,
                        street=event.street,
                        severity=event.severity,
                        expected_at=None if exp != exp else datetime.fromtimestamp(exp, UTC),
                        created_at=self.at,
                        reason=why,
                    )
                )
        return out


class AlertBook:
    """Raised alerts, per event slot."""

    def __init__(self, threshold_m: float) -> None:
        self.threshold_m = threshold_m
        self.by_event: dict[int, EventAlerts] = {}
        self.count = 0

    def set_event(self, ev: int, r: Array, dist: Array, expected: Array, changed: bool, delta: Delta) -> None:
        """The routes an event now concerns (all of them): raise, update and clear to match."""
        old = self.by_event.get(ev)
        if old is None:
            if len(r):
                self.by_event[ev] = EventAlerts(r, dist, expected)
                self.count += len(r)
                delta.add(RAISED, ev, r, dist, expected)
            return
        _, io, inew = np.intersect1d(old.r, r, assume_unique=True, return_indices=True)
        gone = np.ones(len(old.r), dtype=bool)
        gone[io] = False
        delta.add(CLEARED, ev, old.r[gone], old.dist[gone], np.nan, NO_LONGER)
        fresh = np.ones(len(r), dtype=bool)
        fresh[inew] = False
        delta.add(RAISED, ev, r[fresh], dist[fresh], expected[fresh])
        sent = dist.copy()
        moved = np.abs(dist[inew] - old.dist[io]) > self.threshold_m
        upd = inew if changed else inew[moved]
        delta.add(UPDATED, ev, r[upd], dist[upd], expected[upd])
        if not changed:
            keep = inew[~moved]
            sent[keep] = old.dist[io[~moved]]
        self.count += len(r) - len(old.r)
        if len(r):
            self.by_event[ev] = EventAlerts(r, sent, expected)
        else:
            del self.by_event[ev]

    def drop_event(self, ev: int, delta: Delta, reason: int) -> None:
        """Clear every alert of an event."""
        old = self.by_event.pop(ev, None)
        if old is not None:
            self.count -= len(old.r)
            delta.add(CLEARED, ev, old.r, old.dist, np.nan, reason)

    def set_route(
        self,
        r: int,
        scope: set[int],
        now: dict[int, tuple[float, float]],
        delta: Delta,
        reason: int,
        passed: set[int],
    ) -> None:
        """One route's alerts among the events in ``scope``: ``now`` maps event -> (dist, exp).

        Alerts cleared for events in ``passed`` give "vehicle passed" as their reason.
        """
        had = self._alerts_of(r, scope)
        for ev in had.keys() | now.keys():
            new = now.get(ev)
            i = had.get(ev)
            if i is not None:
                old = self.by_event[ev]
                if new is None:
                    delta.add_one(
                        CLEARED, ev, r, float(old.dist[i]), np.nan, PASSED if ev in passed else reason
                    )
                    self.count -= 1
                    if len(old.r) > 1:
                        keep = np.arange(len(old.r)) != i
                        self.by_event[ev] = EventAlerts(old.r[keep], old.dist[keep], old.expected[keep])
                    else:
                        del self.by_event[ev]
                elif abs(new[0] - old.dist[i]) > self.threshold_m:
                    delta.add_one(UPDATED, ev, r, new[0], new[1])
                    old.dist[i], old.expected[i] = new
                else:
                    old.expected[i] = new[1]
            elif new is not None:
                delta.add_one(RAISED, ev, r, new[0], new[1])
                self.count += 1
                old_alerts = self.by_event.get(ev)
                if old_alerts is None:
                    self.by_event[ev] = EventAlerts(
                        np.array([r], dtype=np.int64), np.array([new[0]]), np.array([new[1]])
                    )
                else:
                    old_alerts.r = np.append(old_alerts.r, r)
                    old_alerts.dist = np.append(old_alerts.dist, new[0])
                    old_alerts.expected = np.append(old_alerts.expected, new[1])

    def _alerts_of(self, r: int, scope: set[int]) -> dict[int, int]:
        """For the events in ``scope`` with an alert for route ``r``: event -> index in its arrays."""
        by_event = self.by_event
        evs = [ev for ev in scope if ev in by_event]
        if not evs:
            return {}
        arrays = [by_event[ev].r for ev in evs]
        sizes = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
        hits = np.flatnonzero(np.concatenate(arrays) == r)
        if not len(hits):
            return {}
        owner = np.searchsorted(np.cumsum(sizes), hits, side="right")
        starts = np.cumsum(sizes) - sizes
        return {evs[o]: int(h - starts[o]) for o, h in zip(owner.tolist(), hits.tolist(), strict=True)}
