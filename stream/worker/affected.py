"""Who the alerts held by an engine concern: drivers affected, and the events concerning most routes.

Computed from the columns of the engine's alert book with array operations: only the distinct
routes alerted have their driver looked up and only the top events their id.
"""

from __future__ import annotations

import heapq
from collections import Counter

import numpy as np

from stream.core.engine import Engine


def affected(engine: Engine, top: int) -> tuple[Counter[str], int]:
    """The ``top`` events concerning the most routes (ties by event id) with their route counts,
    and how many distinct drivers have at least one raised alert."""
    slots, counts = engine.book.routes_per_event()
    if not len(slots):
        return Counter(), 0
    routes = np.unique(engine.book.pairs()[1])
    drivers = len({engine.route_state(r).route.driver_id for r in routes.tolist()})
    k = min(top, len(counts))
    if k <= 0:
        return Counter(), drivers
    least = np.partition(counts, len(counts) - k)[len(counts) - k]  # the k-th largest count
    events = engine.index.objects.event
    candidates = [
        (-int(counts[i]), events[int(slots[i])].id) for i in np.flatnonzero(counts >= least).tolist()
    ]
    return Counter({event_id: -negative for negative, event_id in heapq.nsmallest(k, candidates)}), drivers
