"""The alert book's compiled kernels: a batch of transitions applied to its linked lists.

``AlertBook.links`` holds one row per raised alert (columns below), on the doubly linked list of
its event and the singly linked list of its route; ``AlertBook.meta`` holds the book's counters.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from stream.core.lifecycle import CLEARED, NO_LONGER, PASSED, RAISED, UPDATED
from stream.core.prefetch import prefetch_write

Array = np.ndarray[Any, Any]

# Columns of ``AlertBook.links`` (one row per raised alert) and cells of ``AlertBook.meta``.
EV, R, ENEXT, EPREV, RNEXT = range(5)
FREE, TOP, COUNT, STAMP, DEAD = range(5)
SWEEP_MIN = 65_536  # rows cleared from the event side that wait for their route's list to drop them
_AHEAD = 8  # pairs a kernel fetches ahead (routes' list heads and rows are at random places)


@numba.njit(cache=True, nogil=True)
def _link(
    links: Array, vals: Array, ehead: Array, rhead: Array, meta: Array, e: int, r: int, d: float, x: float
) -> None:
    """File a new alert at the head of its event's and its route's lists."""
    row = meta[FREE]
    if row >= 0:
        meta[FREE] = links[row, ENEXT]
    else:
        row = meta[TOP]
        meta[TOP] += 1
    links[row, EV] = e
    links[row, R] = r
    head = ehead[e]
    links[row, ENEXT] = head
    links[row, EPREV] = -1
    if head >= 0:
        links[head, EPREV] = row
    ehead[e] = row
    links[row, RNEXT] = rhead[r]
    rhead[r] = row
    vals[row, 0] = d
    vals[row, 1] = x
    meta[COUNT] += 1


@numba.njit(cache=True, nogil=True)
def _leave_event(links: Array, ehead: Array, meta: Array, row: int) -> None:
    """Take an alert off its event's list."""
    nxt, prev = links[row, ENEXT], links[row, EPREV]
    if prev >= 0:
        links[prev, ENEXT] = nxt
    else:
        ehead[links[row, EV]] = nxt
    if nxt >= 0:
        links[nxt, EPREV] = prev
    meta[COUNT] -= 1


@numba.njit(cache=True, nogil=True)
def _clear_from_event(links: Array, ehead: Array, meta: Array, row: int) -> None:
    """Clear an alert from its event's side: off the event's list, left dead on its route's
    (the next walk of that list, or a sweep, frees it)."""
    _leave_event(links, ehead, meta, row)
    links[row, EV] = -1
    meta[DEAD] += 1


@numba.njit(cache=True, nogil=True)
def _free(links: Array, meta: Array, row: int) -> None:
    """Put a row that is on no list on the free chain."""
    links[row, EV] = -1
    links[row, R] = -1
    links[row, ENEXT] = meta[FREE]
    meta[FREE] = row


@numba.njit(cache=True, nogil=True)
def _drop_from_route(links: Array, rhead: Array, r: int, prev: int, row: int) -> None:
    """Take ``row`` off route ``r``'s list (``prev``: the row before it, -1 for none)."""
    if prev >= 0:
        links[prev, RNEXT] = links[row, RNEXT]
    else:
        rhead[r] = links[row, RNEXT]


@numba.njit(cache=True, nogil=True)
def sweep_kernel(links: Array, rhead: Array, meta: Array) -> None:
    """Free every dead row and rebuild the route lists from the live rows, in one pass over the
    rows (the order within a route's list changes; nothing reads meaning into it)."""
    rhead[:] = -1
    for row in range(meta[TOP]):
        if links[row, EV] >= 0:
            r = links[row, R]
            links[row, RNEXT] = rhead[r]
            rhead[r] = row
        elif links[row, R] >= 0:
            _free(links, meta, row)
    meta[DEAD] = 0


@numba.njit(cache=True, nogil=True)
def _emit(o_i: Array, o_f: Array, n: int, state: int, reason: int, e: int, r: int, d: float, x: float) -> int:
    o_i[n, 0], o_i[n, 1], o_i[n, 2], o_i[n, 3] = state, reason, e, r
    o_f[n, 0], o_f[n, 1] = d, x
    return n + 1


@numba.njit(cache=True, nogil=True)
def walk(links: Array, row: int, nxt: int, col: int) -> Array:
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
def any_live(links: Array, row: int) -> bool:
    """Whether a route's list from ``row`` holds a live alert (not only dead rows)."""
    while row >= 0:
        if links[row, EV] >= 0:
            return True
        row = links[row, RNEXT]
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
    size = _walk_length(links, ehead, evs, ENEXT) + len(r)
    o_i = np.empty((size, 4), np.int64)
    o_f = np.empty((size, 2), np.float64)
    n = 0
    matched = np.zeros(len(r), np.bool_)
    total = len(r)
    for k in range(len(evs)):
        e = evs[k]
        meta[STAMP] += 1
        stamp = meta[STAMP]
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
            nxt = links[row, ENEXT]
            rr = links[row, R]
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
    size = _walk_length(links, ehead, evs, ENEXT)
    o_i = np.empty((size, 4), np.int64)
    o_f = np.empty((size, 2), np.float64)
    n = 0
    for k in range(len(evs)):
        row = ehead[evs[k]]
        while row >= 0:
            nxt = links[row, ENEXT]
            n = _emit(o_i, o_f, n, CLEARED, reason, evs[k], links[row, R], vals[row, 0], np.nan)
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
    size = _walk_length(links, rhead, slots, RNEXT) + len(f_ev)
    o_i = np.empty((size, 4), np.int64)
    o_f = np.empty((size, 2), np.float64)
    n = 0
    matched = np.zeros(len(f_ev), np.bool_)
    for k in range(len(slots)):
        r = slots[k]
        meta[STAMP] += 1
        stamp = meta[STAMP]
        for j in range(f_lo[k], f_hi[k]):
            emark[f_ev[j], 0] = stamp
            emark[f_ev[j], 1] = j
        for j in range(g_lo[k], g_hi[k]):
            emark[g_ev[j], 2] = stamp
        row = rhead[r]
        prev = -1
        while row >= 0:
            nxt = links[row, RNEXT]
            e = links[row, EV]
            if e < 0:  # cleared from its event's side: drop it now
                _drop_from_route(links, rhead, r, prev, row)
                _free(links, meta, row)
                meta[DEAD] -= 1
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
