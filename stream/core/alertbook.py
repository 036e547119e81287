"""The alert book: which (route, event) pairs are raised.

Alerts are rows of numpy columns (event slot, route slot, last distance sent, expected time), each
on a linked list of its event and one of its route, changed by compiled kernels
(``bookkernels``) a whole batch at a time: no Python object per pair, and a route or an event
reaches its own alerts without looking at anyone else's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.core.bookkernels import (
    COUNT,
    DEAD,
    ENEXT,
    EV,
    RNEXT,
    SWEEP_MIN,
    TOP,
    R,
    any_live,
    drop_events_kernel,
    set_events_kernel,
    set_routes_kernel,
    sweep_kernel,
    walk,
)
from stream.core.lifecycle import ROUTE_ENDED, Delta, Found, Pairs

Array = np.ndarray[Any, Any]


class AlertBook:
    """Raised alerts as rows of columns, each row on two linked lists: its event's (doubly linked)
    and its route's (singly linked). Either side finds its alerts by walking a list (no scan of
    the others).

    A row cleared from its route's side leaves both lists at once (the route's walk knows the row
    before it). A row cleared from its event's side leaves the event's list and stays on its
    route's, marked dead (event slot -1), until a walk of that route's list drops it, or a sweep
    rebuilds every route list once dead rows outnumber live ones: raising an alert then writes
    only the new row and the heads, not the route's previous first row, at a random place of a
    large table (a batch at 100,000 routes raises ~40,000 alerts).

    ``links`` holds per row event slot, route slot and the three list links (-1 ends a list);
    ``vals`` the last distance sent and the expected time. ``ehead``/``rhead`` are the first row of
    each event/route slot. Freed rows are chained through their event link and reused. The
    ``emark``/``rmark`` arrays are scratch space for the kernels (stamped, never cleared).
    """

    def __init__(self, threshold_m: float, sweep_min: int = SWEEP_MIN) -> None:
        self.threshold_m = threshold_m
        self.sweep_min = sweep_min
        self.links = np.full((256, 5), -1, dtype=np.int32)  # rows and slots fit 31 bits
        self.vals = np.zeros((256, 2))
        self.ehead = np.full(64, -1, dtype=np.int64)
        self.emark = np.full((64, 3), -1, dtype=np.int64)
        self.rhead = np.full(64, -1, dtype=np.int64)
        self.rmark = np.full((64, 2), -1, dtype=np.int64)
        # free row, rows used, alerts, stamp, dead rows still on their route's list
        self.meta = np.array([-1, 0, 0, 0, 0], dtype=np.int64)

    @property
    def count(self) -> int:
        """Number of alerts raised."""
        return int(self.meta[COUNT])

    # -- read API ----------------------------------------------------------------------------
    def pairs(self) -> tuple[Array, Array]:
        """(event slots, route slots) of every raised alert."""
        links = self.links[: self.meta[TOP]]
        live = links[:, EV] >= 0
        return links[live, EV].copy(), links[live, R].copy()

    def routes_per_event(self) -> tuple[Array, Array]:
        """Event slots with at least one alert, and how many routes each concerns."""
        ev, _ = self.pairs()
        slots, counts = np.unique(ev, return_counts=True)
        return slots, counts

    def has_alerts(self, r: int) -> bool:
        """Whether a route has any alert raised."""
        return r < len(self.rhead) and any_live(self.links, int(self.rhead[r]))

    def events_of(self, r: int) -> set[int]:
        """Event slots a route has an alert for."""
        if r >= len(self.rhead) or self.rhead[r] < 0:
            return set()
        return set(walk(self.links, int(self.rhead[r]), RNEXT, EV).tolist()) - {-1}

    def alerts_of_event(self, ev: int) -> tuple[Array, Array, Array]:
        """Route slots, last distance sent and expected time of an event's alerts."""
        head = int(self.ehead[ev]) if ev < len(self.ehead) else -1
        rows = walk(self.links, head, ENEXT, -1)
        return self.links[rows, R], self.vals[rows, 0], self.vals[rows, 1]

    # -- transitions -------------------------------------------------------------------------
    def set_events(
        self,
        evs: Array,
        ptr: Array,
        r: Array,
        dist: Array,
        expected: Array,
        changed: Array,
        delta: Delta,
        distinct: bool = False,
    ) -> None:
        """The routes each event now concerns (all of them): event ``evs[k]`` has the pairs
        ``ptr[k] .. ptr[k + 1]`` of the ``r``/``dist``/``expected`` columns. Raise, update (all
        of them if ``changed[k]``, else those whose distance moved past the threshold) and clear
        (no longer concerns the route) to match. An event may name a route twice (the last pair
        counts) unless the caller says its pairs are ``distinct``: an event without alerts then
        raises its pairs as they come, without marking its routes first (a third of the time of
        a batch of new events)."""
        evs, ptr, r = _ints(evs), _ints(ptr), _ints(r)
        self._fit(len(r), _top(evs), _top(r))
        out = set_events_kernel(
            self.links,
            self.vals,
            self.ehead,
            self.rhead,
            self.rmark,
            self.meta,
            self.threshold_m,
            evs,
            ptr,
            r,
            _floats(dist),
            _floats(expected),
            np.ascontiguousarray(changed, dtype=np.bool_),
            distinct,
        )
        delta.add_columns(*out)
        self._sweep()

    def set_event(self, ev: int, r: Array, dist: Array, expected: Array, changed: bool, delta: Delta) -> None:
        """``set_events`` for one event."""
        ptr = np.array([0, len(r)], dtype=np.int64)
        self.set_events(np.array([ev]), ptr, r, dist, expected, np.array([changed]), delta)

    def drop_event(self, ev: int, delta: Delta, reason: int) -> None:
        """Clear every alert of an event."""
        if ev < len(self.ehead) and self.ehead[ev] >= 0:
            evs = np.array([ev], dtype=np.int64)
            out = drop_events_kernel(self.links, self.vals, self.ehead, self.meta, evs, reason)
            delta.add_columns(*out)
            self._sweep()

    def set_routes(self, slots: Array, found: Found, ahead_geo: Pairs, reasons: Array, delta: Delta) -> None:
        """Each route's alerts against the pairs that concern it now.

        ``found`` (``matching.Concerned`` columns sorted by route) holds the pairs concerning route
        ``slots[k]``; ``ahead_geo`` (its ``ev``, ``r``, sorted by route) its geometric matches
        ahead of the vehicle, before the rules. An alert whose pair is found again is updated if
        its distance moved past the threshold (else only its expected time is refreshed), one that
        is not is cleared with the route's reason (``reasons[k]``), except that with "no longer
        concerns" an event not among the geometric matches ahead was passed. New pairs are raised.
        """
        slots = _ints(slots)
        f_r, g_ev, g_r = _ints(found.r), _ints(ahead_geo.ev), _ints(ahead_geo.r)
        f_ptr = np.searchsorted(f_r, slots).astype(np.int64), np.searchsorted(f_r, slots, "right")
        g_ptr = np.searchsorted(g_r, slots).astype(np.int64), np.searchsorted(g_r, slots, "right")
        f_ev = _ints(found.ev)
        self._fit(len(f_ev), max(_top(f_ev), _top(g_ev)), _top(slots))
        out = set_routes_kernel(
            self.links,
            self.vals,
            self.ehead,
            self.rhead,
            self.emark,
            self.meta,
            self.threshold_m,
            slots,
            _ints(reasons),
            f_ptr[0],
            _ints(f_ptr[1]),
            f_ev,
            _floats(found.ahead),
            _floats(found.expected),
            g_ptr[0],
            _ints(g_ptr[1]),
            g_ev,
        )
        delta.add_columns(*out)

    def end_route(self, r: int, delta: Delta) -> None:
        """Clear every alert of a route, as ended."""
        empty = np.zeros(0, dtype=np.int64)
        none = _NoPairs(empty, empty, np.zeros(0), np.zeros(0))
        self.set_routes(np.array([r]), none, none, np.array([ROUTE_ENDED]), delta)

    def sweep(self) -> None:
        """Free every dead row and rebuild the route lists from the live ones."""
        sweep_kernel(self.links, self.rhead, self.meta)

    def _sweep(self) -> None:
        """``sweep`` once dead rows outnumber the live ones (and ``sweep_min``)."""
        if self.meta[DEAD] > max(self.sweep_min, self.meta[COUNT]):
            self.sweep()

    def _fit(self, new_rows: int, ev_top: int, r_top: int) -> None:
        """Grow the columns for ``new_rows`` more alerts and slots below ``ev_top``/``r_top``."""
        need = int(self.meta[TOP]) + new_rows
        if need > len(self.links):  # rows past the top are written before they are read
            size = max(need, 2 * len(self.links))
            self.links = _grown(self.links, size, None)
            self.vals = _grown(self.vals, size, None)
        if ev_top > len(self.ehead):
            size = max(ev_top, 2 * len(self.ehead))
            self.ehead, self.emark = _grown(self.ehead, size, -1), _grown(self.emark, size, -1)
        if r_top > len(self.rhead):
            size = max(r_top, 2 * len(self.rhead))
            self.rhead, self.rmark = _grown(self.rhead, size, -1), _grown(self.rmark, size, -1)


@dataclass(slots=True)
class _NoPairs:
    ev: Array
    r: Array
    ahead: Array
    expected: Array


def _ints(a: Any) -> Array:
    return np.ascontiguousarray(a, dtype=np.int64)


def _floats(a: Any) -> Array:
    return np.ascontiguousarray(a, dtype=np.float64)


def _top(a: Array) -> int:
    return int(a.max()) + 1 if len(a) else 0


def _grown(a: Array, size: int, fill: Any) -> Array:
    """``a`` with room for ``size`` rows, the new ones set to ``fill`` (left unset for None: their
    memory is then only touched when used, not all at once when the array doubles)."""
    out = (
        np.empty((size, *a.shape[1:]), dtype=a.dtype)
        if fill is None
        else np.full((size, *a.shape[1:]), fill, dtype=a.dtype)
    )
    out[: len(a)] = a
    return out
