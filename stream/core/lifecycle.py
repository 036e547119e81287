"""The alert lifecycle's vocabulary: states, reasons, and ``Delta``, the transitions of one call.

States: ``raised`` the first time a pair concerns the driver, ``updated`` when the event changed
or the distance ahead moved by more than the threshold since the last one sent, ``cleared`` once
(event cancelled or expired, route changed or ended, vehicle passed, no longer applies). A pair
that is raised is never raised again until it has been cleared. ``Delta`` collects transitions as
columns; ``Delta.alerts`` turns them into ``schemas.Alert`` records. The raised pairs themselves
are kept by ``alertbook.AlertBook``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

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
class Delta:
    """Alert transitions as columns; valid until the engine's next call."""

    at: datetime
    parts: list[tuple[int, Array, Array, Array, Array, int]] = field(default_factory=list)

    def add_columns(self, ints: Array, floats: Array) -> None:
        """Record transitions from kernel rows: (state, reason, event, route) and (distance,
        expected time); one part per state and reason, in row order."""
        if not len(ints):
            return
        key = ints[:, 0] * 16 + ints[:, 1]
        if key.min() == key.max():  # a batch of raises, say: one part, no selection
            k = int(key[0])
            self.parts.append((k // 16, ints[:, 2], ints[:, 3], floats[:, 0], floats[:, 1], k % 16))
            return
        for k in np.unique(key).tolist():
            sel = np.flatnonzero(key == k)
            self.parts.append((k // 16, ints[sel, 2], ints[sel, 3], floats[sel, 0], floats[sel, 1], k % 16))

    def __len__(self) -> int:
        return sum(len(part[2]) for part in self.parts)

    def count(self, state: int) -> int:
        """Transitions of one state."""
        return sum(len(part[2]) for part in self.parts if part[0] == state)

    def pairs(self, state: int = RAISED) -> tuple[Array, Array]:
        """(event slots, route slots) of the transitions of one state."""
        sel = [part for part in self.parts if part[0] == state]
        if not sel:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate([p[1] for p in sel]), np.concatenate([p[2] for p in sel])

    def alerts(self, route_of: Callable[[int], Route], event_of: Callable[[int], Event]) -> list[Alert]:
        """The transitions as alert records."""
        out: list[Alert] = []
        for state, evs, rs, dists, exps, reason in self.parts:
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


class Pairs(Protocol):
    """(event, route) pair columns (``matching.Rows``, ``matching.Concerned``)."""

    ev: Array
    r: Array


class Found(Pairs, Protocol):
    """Pairs with distance ahead and expected time (``matching.Concerned``)."""

    ahead: Array
    expected: Array
