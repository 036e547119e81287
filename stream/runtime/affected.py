"""Who the alerts held by an engine concern: drivers affected, and the events concerning most routes.

Computed from the engine's raised alerts (per event slot, arrays of route slots) with array
operations: the cost grows with the number of events and of distinct routes alerted, not with the
number of alerts, and only the top events have their ids looked up.
"""

from __future__ import annotations

import heapq
from collections import Counter

import numpy as np

from stream.core.engine import Engine


def affected(engine: Engine, top: int) -> tuple[Counter[str], int]:
    """The ``top`` events concerning the most routes (ties by event id) with their route counts,
    and how many distinct drivers have at least one raised alert."""
    by_event = engine.book.by_event
    if not by_event:
        return Counter(), 0
    raised = list(by_event.values())
    counts = np.fromiter((len(a.r) for a in raised), dtype=np.int64, count=len(raised))
    routes = np.unique(np.concatenate([a.r for a in raised]))
    drivers = len({engine.route_state(r).route.driver_id for r in routes.tolist()})
    k = min(top, len(counts))
    if k <= 0:
        return Counter(), drivers
    least = np.partition(counts, len(counts) - k)[len(counts) - k]  # the k-th largest count
    slots = list(by_event)
    states = engine.index.states
    candidates = [
        (-int(counts[i]), states[slots[i]].event.id)  # type: ignore[union-attr]
        for i in np.flatnonzero(counts >= least).tolist()
    ]
    return Counter({event_id: -negative for negative, event_id in heapq.nsmallest(k, candidates)}), drivers
