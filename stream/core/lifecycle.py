"""The alert book: which (route, event) pairs are raised, and the transitions between states.

Alerts are rows of numpy columns (event slot, route slot, last distance sent, expected time), each
on a linked list of its event and one of its route, changed by compiled kernels a whole batch at a
time: no Python object per pair, and a route or an event reaches its own alerts without looking at
anyone else's. ``Delta`` collects transitions as columns too; ``Delta.alerts`` turns them into
``schemas.Alert`` records.

States: ``raised`` the first time a pair concerns the driver, ``updated`` when the event changed
or the distance ahead moved by more than the threshold since the last one sent, ``cleared`` once
(event cancelled or expired, route changed or ended, vehicle passed, no longer applies). A pair
that is raised is never raised again until it has been cleared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numba
import numpy as np

from schemas import Alert, Event, Route, alert_id_for
from stream.core.prefetch import prefetch_write

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


# Columns of ``AlertBook.links`` (one row per raised alert) and cells of ``AlertBook.meta``.
_EV, _R, _ENEXT, _EPREV, _RNEXT = range(5)
_FREE, _TOP, _COUNT, _STAMP, _DEAD = range(5)
SWEEP_MIN = 65_536  # rows cleared from the event side that wait for their route's list to drop them
_AHEAD = 8  # pairs a kernel fetches ahead (routes' list heads and rows are at random places)


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
        return int(self.meta[_COUNT])

    # -- read API ----------------------------------------------------------------------------
    def pairs(self) -> tuple[Array, Array]:
        """(event slots, route slots) of every raised alert."""
        links = self.links[: self.meta[_TOP]]
        live = links[:, _EV] >= 0
        return links[live, _EV].copy(), links[live, _R].copy()

    def routes_per_event(self) -> tuple[Array, Array]:
        """Event slots with at least one alert, and how many routes each concerns."""
        ev, _ = self.pairs()
        slots, counts = np.unique(ev, return_counts=True)
        return slots, counts

    def has_alerts(self, r: int) -> bool:
        """Whether a route has any alert raised."""
        return r < len(self.rhead) and _any_live(self.links, int(self.rhead[r]))

    def events_of(self, r: int) -> set[int]:
        """Event slots a route has an alert for."""
        if r >= len(self.rhead) or self.rhead[r] < 0:
            return set()
        return set(_walk(self.links, int(self.rhead[r]), _RNEXT, _EV).tolist()) - {-1}

    def alerts_of_event(self, ev: int) -> tuple[Array, Array, Array]:
        """Route slots, last distance sent and expected time of an event's alerts."""
        head = int(self.ehead[ev]) if ev < len(self.ehead) else -1
        rows = _walk(self.links, head, _ENEXT, -1)
        return self.links[rows, _R], self.vals[rows, 0], self.vals[rows, 1]

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
        if self.meta[_DEAD] > max(self.sweep_min, self.meta[_COUNT]):
            self.sweep()

    def _fit(self, new_rows: int, ev_top: int, r_top: int) -> None:
        """Grow the columns for ``new_rows`` more alerts and slots below ``ev_top``/``r_top``."""
        need = int(self.meta[_TOP]) + new_rows
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


# -- kernels -----------------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def _link(
    links: Array, vals: Array, ehead: Array, rhead: Array, meta: Array, e: int, r: int, d: float, x: float
) -> None:
    """File a new alert at the head of its event's and its route's lists."""
    row = meta[_FREE]
    if row >= 0:
        meta[_FREE] = links[row, _ENEXT]
    else:
        row = meta[_TOP]
        meta[_TOP] += 1
    links[row, _EV] = e
    links[row, _R] = r
    head = ehead[e]
    links[row, _ENEXT] = head
    links[row, _EPREV] = -1
    if head >= 0:
        links[head, _EPREV] = row
    ehead[e] = row
    links[row, _RNEXT] = rhead[r]
    rhead[r] = row
    vals[row, 0] = d
    vals[row, 1] = x
    meta[_COUNT] += 1


@numba.njit(cache=True, nogil=True)
def _leave_event(links: Array, ehead: Array, meta: Array, row: int) -> None:
    """Take an alert off its event's list."""
    nxt, prev = links[row, _ENEXT], links[row, _EPREV]
    if prev >= 0:
        links[prev, _ENEXT] = nxt
    else:
        ehead[links[row, _EV]] = nxt
    if nxt >= 0:
        links[nxt, _EPREV] = prev
    meta[_COUNT] -= 1


@numba.njit(cache=True, nogil=True)
def _clear_from_event(links: Array, ehead: Array, meta: Array, row: int) -> None:
    """Clear an alert from its event's side: off the event's list, left dead on its route's
    (the next walk of that list, or a sweep, frees it)."""
    _leave_event(links, ehead, meta, row)
    links[row, _EV] = -1
    meta[_DEAD] += 1


@numba.njit(cache=True, nogil=True)
def _free(links: Array, meta: Array, row: int) -> None:
    """Put a row that is on no list on the free chain."""
    links[row, _EV] = -1
    links[row, _R] = -1
    links[row, _ENEXT] = meta[_FREE]
    meta[_FREE] = row


@numba.njit(cache=True, nogil=True)
def _drop_from_route(links: Array, rhead: Array, r: int, prev: int, row: int) -> None:
    """Take ``row`` off route ``r``'s list (``prev``: the row before it, -1 for none)."""
    if prev >= 0:
        links[prev, _RNEXT] = links[row, _RNEXT]
    else:
        rhead[r] = links[row, _RNEXT]


@numba.njit(cache=True, nogil=True)
def sweep_kernel(links: Array, rhead: Array, meta: Array) -> None:
    """Free every dead row and rebuild the route lists from the live rows, in one pass over the
    rows (the order within a route's list changes; nothing reads meaning into it)."""
    rhead[:] = -1
    for row in range(meta[_TOP]):
        if links[row, _EV] >= 0:
            r = links[row, _R]
            links[row, _RNEXT] = rhead[r]
            rhead[r] = row
        elif links[row, _R] >= 0:
            _free(links, meta, row)
    meta[_DEAD] = 0


@numba.njit(cache=True, nogil=True)
def _emit(o_i: Array, o_f: Array, n: int, state: int, reason: int, e: int, r: int, d: float, x: float) -> int:
    o_i[n, 0], o_i[n, 1], o_i[n, 2], o_i[n, 3] = state, reason, e, r
    o_f[n, 0], o_f[n, 1] = d, x
    return n + 1


@numba.njit(cache=True, nogil=True)
def _walk(links: Array, row: int, nxt: int, col: int) -> Array:
    """Along a list from ``row``: column ``col`` of each row (the row itself if ``col`` is -1)."""
    n = 0
    at = row
    while at >= 0:
        n += 1
        at = links[at, nxt]
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = row if col < 0 else links[row, col]
        row = links[row, nxt]
    return out


@numba.njit(cache=True, nogil=True)
def _any_live(links: Array, row: int) -> bool:
    """Whether a route's list from ``row`` holds a live alert (not only dead rows)."""
    while row >= 0:
        if links[row, _EV] >= 0:
            return True
        row = links[row, _RNEXT]
    return False


@numba.njit(cache=True, nogil=True)
def _walk_length(links: Array, heads: Array, keys: Array, nxt: int) -> int:
    n = 0
    for k in range(len(keys)):
        row = heads[keys[k]]
        while row >= 0:
            n += 1
            row = links[row, nxt]
    return n


@numba.njit(cache=True, nogil=True)
def set_events_kernel(
    links: Array,
    vals: Array,
    ehead: Array,
    rhead: Array,
    rmark: Array,
    meta: Array,
    threshold: float,
    evs: Array,
    ptr: Array,
    r: Array,
    dist: Array,
    expected: Array,
    changed: Array,
    distinct: bool,
) -> tuple[Array, Array]:
    """Event side of ``AlertBook.set_events``; returns the transitions (state, reason, event,
    route) and (distance, expected time) as two row arrays."""
    size = _walk_length(links, ehead, evs, _ENEXT) + len(r)
    o_i = np.empty((size, 4), np.int64)
    o_f = np.empty((size, 2), np.float64)
    n = 0
    matched = np.zeros(len(r), np.bool_)
    total = len(r)
    for k in range(len(evs)):
        e = evs[k]
        meta[_STAMP] += 1
        stamp = meta[_STAMP]
        row = ehead[e]
        if distinct and row < 0:  # no alert yet, no route twice: every pair is raised
            for j in range(ptr[k], ptr[k + 1]):
                if j + _AHEAD < total:  # the route's list head
                    prefetch_write(rhead, r[j + _AHEAD])
                n = _emit(o_i, o_f, n, RAISED, 0, e, r[j], dist[j], expected[j])
                _link(links, vals, ehead, rhead, meta, e, r[j], dist[j], expected[j])
            continue
        for j in range(ptr[k], ptr[k + 1]):
            if j + _AHEAD < total:
                prefetch_write(rmark, r[j + _AHEAD])
            rmark[r[j], 0] = stamp
            rmark[r[j], 1] = j
        while row >= 0:
            nxt = links[row, _ENEXT]
            rr = links[row, _R]
            if rmark[rr, 0] == stamp:
                j = rmark[rr, 1]
                matched[j] = True
                if changed[k] or abs(dist[j] - vals[row, 0]) > threshold:
                    n = _emit(o_i, o_f, n, UPDATED, 0, e, rr, dist[j], expected[j])
                    vals[row, 0] = dist[j]
                vals[row, 1] = expected[j]
            else:
                n = _emit(o_i, o_f, n, CLEARED, NO_LONGER, e, rr, vals[row, 0], np.nan)
                _clear_from_event(links, ehead, meta, row)
            row = nxt
        for j in range(ptr[k], ptr[k + 1]):
            if j + _AHEAD < total:  # the route's list head
                prefetch_write(rhead, r[j + _AHEAD])
            if not matched[j] and rmark[r[j], 1] == j:
                n = _emit(o_i, o_f, n, RAISED, 0, e, r[j], dist[j], expected[j])
                _link(links, vals, ehead, rhead, meta, e, r[j], dist[j], expected[j])
    return o_i[:n], o_f[:n]


@numba.njit(cache=True, nogil=True)
def drop_events_kernel(
    links: Array, vals: Array, ehead: Array, meta: Array, evs: Array, reason: int
) -> tuple[Array, Array]:
    """Clear every alert of the events ``evs`` with ``reason``; returns the transitions."""
    size = _walk_length(links, ehead, evs, _ENEXT)
    o_i = np.empty((size, 4), np.int64)
    o_f = np.empty((size, 2), np.float64)
    n = 0
    for k in range(len(evs)):
        row = ehead[evs[k]]
        while row >= 0:
            nxt = links[row, _ENEXT]
            n = _emit(o_i, o_f, n, CLEARED, reason, evs[k], links[row, _R], vals[row, 0], np.nan)
            _clear_from_event(links, ehead, meta, row)
            row = nxt
    return o_i[:n], o_f[:n]


@numba.njit(cache=True, nogil=True)
def set_routes_kernel(
    links: Array,
    vals: Array,
    ehead: Array,
    rhead: Array,
    emark: Array,
    meta: Array,
    threshold: float,
    slots: Array,
    reasons: Array,
    f_lo: Array,
    f_hi: Array,
    f_ev: Array,
    f_dist: Array,
    f_exp: Array,
    g_lo: Array,
    g_hi: Array,
    g_ev: Array,
) -> tuple[Array, Array]:
    """Route side of ``AlertBook.set_routes``; returns the transitions as ``set_events_kernel``."""
    size = _walk_length(links, rhead, slots, _RNEXT) + len(f_ev)
    o_i = np.empty((size, 4), np.int64)
    o_f = np.empty((size, 2), np.float64)
    n = 0
    matched = np.zeros(len(f_ev), np.bool_)
    for k in range(len(slots)):
        r = slots[k]
        meta[_STAMP] += 1
        stamp = meta[_STAMP]
        for j in range(f_lo[k], f_hi[k]):
            emark[f_ev[j], 0] = stamp
            emark[f_ev[j], 1] = j
        for j in range(g_lo[k], g_hi[k]):
            emark[g_ev[j], 2] = stamp
        row = rhead[r]
        prev = -1
        while row >= 0:
            nxt = links[row, _RNEXT]
            e = links[row, _EV]
            if e < 0:  # cleared from its event's side: drop it now
                _drop_from_route(links, rhead, r, prev, row)
                _free(links, meta, row)
                meta[_DEAD] -= 1
            elif emark[e, 0] == stamp:
                j = emark[e, 1]
                matched[j] = True
                if abs(f_dist[j] - vals[row, 0]) > threshold:
                    n = _emit(o_i, o_f, n, UPDATED, 0, e, r, f_dist[j], f_exp[j])
                    vals[row, 0] = f_dist[j]
                vals[row, 1] = f_exp[j]
                prev = row
            else:
                why = reasons[k]
                if why == NO_LONGER and emark[e, 2] != stamp:
                    why = PASSED
                n = _emit(o_i, o_f, n, CLEARED, why, e, r, vals[row, 0], np.nan)
                _leave_event(links, ehead, meta, row)
                _drop_from_route(links, rhead, r, prev, row)
                _free(links, meta, row)
            row = nxt
        for j in range(f_lo[k], f_hi[k]):
            e = f_ev[j]
            if not matched[j] and emark[e, 1] == j:  # a pair listed twice counts once, the last
                n = _emit(o_i, o_f, n, RAISED, 0, e, r, f_dist[j], f_exp[j])
                _link(links, vals, ehead, rhead, meta, e, r, f_dist[j], f_exp[j])
    return o_i[:n], o_f[:n]
