"""The columnar alert book: transitions from both sides, against a plain dict model of the book."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from stream.core import lifecycle as lc
from stream.core.alertbook import AlertBook
from stream.core.bookkernels import SWEEP_MIN
from stream.core.lifecycle import Delta
from stream.core.matching import Concerned

AT = datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
THRESHOLD = 200.0
Transition = tuple[int, int, int, int, float | None, float | None]  # state, reason, ev, r, dist, exp


def transitions(delta: Delta) -> list[Transition]:
    """A delta's transitions, sorted, with NaN as None."""
    out: list[Transition] = []
    for state, evs, rs, dists, exps, reason in delta.parts:
        for ev, r, d, x in zip(evs.tolist(), rs.tolist(), dists.tolist(), exps.tolist(), strict=True):
            out.append((state, reason, ev, r, None if math.isnan(d) else d, None if math.isnan(x) else x))
    return sorted(out, key=lambda t: t[:4])


def found(pairs: list[tuple[int, int, float, float]]) -> Concerned:
    """Concerned columns from (event, route, distance, expected) tuples, sorted by route."""
    pairs = sorted(pairs, key=lambda p: p[1])
    cols = list(zip(*pairs, strict=True)) if pairs else [(), (), (), ()]
    ints = [np.asarray(c, dtype=np.int64) for c in cols[:2]]
    floats = [np.asarray(c, dtype=np.float64) for c in cols[2:]]
    return Concerned(ints[0], ints[1], floats[0], floats[1])


def geo(pairs: list[tuple[int, int]]) -> Concerned:
    """(event, route) pairs sorted by route, as the geometric matches ahead."""
    return found([(e, r, 0.0, 0.0) for e, r in pairs])


def set_events(
    book: AlertBook, now: dict[int, list[tuple[int, float, float]]], changed: set[int], distinct: bool = False
) -> Delta:
    """``book.set_events`` from event -> [(route, distance, expected)]."""
    delta = Delta(AT)
    evs = sorted(now)
    ptr = np.cumsum([0] + [len(now[e]) for e in evs])
    rows = [row for e in evs for row in now[e]]
    r = np.array([row[0] for row in rows], dtype=np.int64)
    dist = np.array([row[1] for row in rows], dtype=np.float64)
    exp = np.array([row[2] for row in rows], dtype=np.float64)
    flags = np.array([e in changed for e in evs])
    book.set_events(np.array(evs, dtype=np.int64), ptr, r, dist, exp, flags, delta, distinct=distinct)
    return delta


def set_routes(
    book: AlertBook,
    slots: list[int],
    now: list[tuple[int, int, float, float]],
    ahead: list[tuple[int, int]],
    why: list[int],
) -> Delta:
    """``book.set_routes`` from (event, route, distance, expected) and (event, route) tuples."""
    delta = Delta(AT)
    book.set_routes(
        np.array(slots, dtype=np.int64), found(now), geo(ahead), np.array(why, dtype=np.int64), delta
    )
    return delta


def state(book: AlertBook) -> dict[tuple[int, int], tuple[float, float]]:
    """(event, route) -> (last distance sent, expected) read through the book's read API."""
    out = {}
    ev, r = book.pairs()
    for e in set(ev.tolist()):
        rs, dist, exp = book.alerts_of_event(e)
        for rr, d, x in zip(rs.tolist(), dist.tolist(), exp.tolist(), strict=True):
            out[(e, rr)] = (d, x)
    assert sorted(out) == sorted(zip(ev.tolist(), r.tolist(), strict=True))
    assert book.count == len(out)
    return out


# -- table-driven transitions -------------------------------------------------------------------
def test_event_side_raise_keep_update_clear() -> None:
    """An event raises its pairs once; a small move only refreshes the expected time, a large one
    or a changed event updates; a route no longer found is cleared with the last distance sent."""
    book = AlertBook(THRESHOLD)
    d = set_events(book, {3: [(1, 1000.0, 10.0), (2, 500.0, 20.0)]}, set())
    assert transitions(d) == [(lc.RAISED, 0, 3, 1, 1000.0, 10.0), (lc.RAISED, 0, 3, 2, 500.0, 20.0)]
    assert transitions(set_events(book, {3: [(1, 1100.0, 11.0), (2, 500.0, 20.0)]}, set())) == []
    assert state(book)[(3, 1)] == (1000.0, 11.0)  # distance sent kept, expected time refreshed
    d = set_events(book, {3: [(1, 1250.0, 12.0), (2, 500.0, 21.0)]}, set())
    assert transitions(d) == [(lc.UPDATED, 0, 3, 1, 1250.0, 12.0)]
    d = set_events(book, {3: [(2, 490.0, 22.0)]}, {3})
    assert transitions(d) == [
        (lc.UPDATED, 0, 3, 2, 490.0, 22.0),
        (lc.CLEARED, lc.NO_LONGER, 3, 1, 1250.0, None),
    ]
    assert state(book) == {(3, 2): (490.0, 22.0)}
    d = Delta(AT)
    book.drop_event(3, d, lc.CANCELLED)
    assert transitions(d) == [(lc.CLEARED, lc.CANCELLED, 3, 2, 490.0, None)]
    assert state(book) == {} and book.count == 0


@pytest.mark.parametrize(
    ("why", "ahead", "reason"),
    [
        (lc.NO_LONGER, [(7, 4)], lc.NO_LONGER),  # still on the route ahead, but the rules say no
        (lc.NO_LONGER, [], lc.PASSED),  # not ahead any more: the vehicle passed it
        (lc.ROUTE_CHANGED, [], lc.ROUTE_CHANGED),  # re-planned: "passed" does not apply
        (lc.ROUTE_CHANGED, [(7, 4)], lc.ROUTE_CHANGED),
    ],
)
def test_route_side_clear_reasons(why: int, ahead: list[tuple[int, int]], reason: int) -> None:
    """An alert not found again for its route is cleared with the route's reason, or as passed."""
    book = AlertBook(THRESHOLD)
    set_routes(book, [4], [(7, 4, 300.0, 5.0), (8, 4, 900.0, 6.0)], [(7, 4), (8, 4)], [lc.NO_LONGER])
    d = set_routes(book, [4], [(8, 4, 850.0, 7.0)], [*ahead, (8, 4)], [why])
    assert transitions(d) == [(lc.CLEARED, reason, 7, 4, 300.0, None)]
    assert state(book) == {(8, 4): (900.0, 7.0)}


def test_route_side_update_raise_and_end() -> None:
    """Moving past the threshold updates, a new pair raises, the other routes' alerts are left
    alone, and ending a route clears all of its alerts."""
    book = AlertBook(THRESHOLD)
    set_events(book, {1: [(4, 3000.0, 1.0), (5, 3000.0, 1.0)], 2: [(4, 4000.0, 2.0)]}, set())
    d = set_routes(
        book, [4], [(1, 4, 2000.0, 3.0), (2, 4, 3900.0, 4.0), (9, 4, 100.0, 5.0)], [], [lc.NO_LONGER]
    )
    assert transitions(d) == [(lc.RAISED, 0, 9, 4, 100.0, 5.0), (lc.UPDATED, 0, 1, 4, 2000.0, 3.0)]
    assert state(book)[(2, 4)] == (4000.0, 4.0) and state(book)[(1, 5)] == (3000.0, 1.0)
    d = Delta(AT)
    book.end_route(4, d)
    assert [t[:4] for t in transitions(d)] == [
        (lc.CLEARED, lc.ROUTE_ENDED, 1, 4),
        (lc.CLEARED, lc.ROUTE_ENDED, 2, 4),
        (lc.CLEARED, lc.ROUTE_ENDED, 9, 4),
    ]
    assert state(book) == {(1, 5): (3000.0, 1.0)}
    assert book.events_of(4) == set() and book.events_of(5) == {1}


def test_a_pair_listed_twice_counts_once_the_last() -> None:
    """A route's found pairs may list an event twice (geometry, then port call): the last wins."""
    book = AlertBook(THRESHOLD)
    d = set_routes(book, [0], [(5, 0, 10.0, 1.0), (5, 0, 20.0, 2.0)], [], [lc.NO_LONGER])
    assert transitions(d) == [(lc.RAISED, 0, 5, 0, 20.0, 2.0)]
    assert book.count == 1


def test_an_event_listing_a_route_twice_raises_it_once_the_last() -> None:
    """An event's pairs may name a route twice: one alert, with the last pair's values, whether
    the event is new or already has alerts."""
    book = AlertBook(THRESHOLD)
    d = set_events(book, {5: [(0, 10.0, 1.0), (1, 50.0, 3.0), (0, 20.0, 2.0)]}, set())
    assert transitions(d) == [(lc.RAISED, 0, 5, 0, 20.0, 2.0), (lc.RAISED, 0, 5, 1, 50.0, 3.0)]
    assert state(book) == {(5, 0): (20.0, 2.0), (5, 1): (50.0, 3.0)}
    d = set_events(book, {5: [(2, 30.0, 4.0), (1, 50.0, 3.0), (2, 40.0, 5.0)]}, set())
    assert transitions(d) == [(lc.RAISED, 0, 5, 2, 40.0, 5.0), (lc.CLEARED, lc.NO_LONGER, 5, 0, 20.0, None)]
    assert book.count == 2


def test_large_slots_and_row_reuse() -> None:
    """Slots beyond the columns' size grow them; rows cleared from the event side are freed by
    the sweep once they outnumber the live ones, and reused."""
    book = AlertBook(THRESHOLD, sweep_min=100)
    set_events(book, {5000: [(r, 1.0, 1.0) for r in range(300)]}, set())
    rows = int(book.meta[1])
    book.drop_event(5000, Delta(AT), lc.EXPIRED)
    set_events(book, {7: [(70_000 + r, 1.0, 1.0) for r in range(300)]}, set())
    assert int(book.meta[1]) == rows and book.count == 300
    slots, counts = book.routes_per_event()
    assert slots.tolist() == [7] and counts.tolist() == [300]
    assert all(book.events_of(r) == set() for r in range(300))
    assert all(book.events_of(70_000 + r) == {7} for r in range(300))


def test_a_route_walk_frees_the_rows_its_events_cleared() -> None:
    """A row cleared from its event's side stays dead on its route's list (below the sweep's
    threshold) until that route is next walked, which frees it for the next raise."""
    book = AlertBook(THRESHOLD)
    set_events(book, {1: [(5, 1.0, 1.0)], 2: [(5, 2.0, 1.0)]}, set())
    book.drop_event(1, Delta(AT), lc.EXPIRED)
    assert int(book.meta[4]) == 1 and book.events_of(5) == {2} and book.has_alerts(5)
    delta = set_routes(book, [5], [(2, 5, 2.0, 1.0)], [(2, 5)], [lc.NO_LONGER])
    assert transitions(delta) == [] and int(book.meta[4]) == 0
    rows = int(book.meta[1])
    set_events(book, {3: [(6, 1.0, 1.0)]}, set())
    assert int(book.meta[1]) == rows  # the freed row was reused
    book.drop_event(2, Delta(AT), lc.EXPIRED)
    assert not book.has_alerts(5) and book.events_of(5) == set()


# -- randomized, against a dict model ------------------------------------------------------------
class Model:
    """The book as a dict: (event, route) -> [last distance sent, expected]."""

    def __init__(self) -> None:
        self.alerts: dict[tuple[int, int], list[float]] = {}
        self.out: list[Transition] = []

    def emit(self, state: int, reason: int, e: int, r: int, d: float, x: float | None) -> None:
        self.out.append((state, reason, e, r, d, x))

    def set_event(self, e: int, now: dict[int, tuple[float, float]], changed: bool) -> None:
        for (ee, r), (d, _) in list(self.alerts.items()):
            if ee == e and r not in now:
                self.emit(lc.CLEARED, lc.NO_LONGER, e, r, d, None)
                del self.alerts[(e, r)]
        for r, (d, x) in now.items():
            self._found(e, r, d, x, changed)

    def set_route(self, r: int, now: dict[int, tuple[float, float]], ahead: set[int], why: int) -> None:
        for (e, rr), (d, _) in list(self.alerts.items()):
            if rr == r and e not in now:
                reason = lc.PASSED if why == lc.NO_LONGER and e not in ahead else why
                self.emit(lc.CLEARED, reason, e, r, d, None)
                del self.alerts[(e, r)]
        for e, (d, x) in now.items():
            self._found(e, r, d, x, False)

    def drop_event(self, e: int, reason: int) -> None:
        for (ee, r), (d, _) in list(self.alerts.items()):
            if ee == e:
                self.emit(lc.CLEARED, reason, e, r, d, None)
                del self.alerts[(e, r)]

    def _found(self, e: int, r: int, d: float, x: float, changed: bool) -> None:
        old = self.alerts.get((e, r))
        if old is None:
            self.emit(lc.RAISED, 0, e, r, d, x)
            self.alerts[(e, r)] = [d, x]
        elif changed or abs(d - old[0]) > THRESHOLD:
            self.emit(lc.UPDATED, 0, e, r, d, x)
            self.alerts[(e, r)] = [d, x]
        else:
            old[1] = x


@pytest.mark.parametrize("seed", range(12))
def test_random_operations_match_a_dict_model(seed: int) -> None:
    """Random event and route batches give the transitions and final alerts of the dict model
    (half of the runs saying that an event's routes are distinct, as they are here)."""
    rng = random.Random(seed)
    sweep_min = [0, 4, SWEEP_MIN][seed % 3]  # dead rows swept at once, soon, or left to route walks
    book, model = AlertBook(THRESHOLD, sweep_min=sweep_min), Model()
    events, routes = range(rng.choice([4, 12, 40])), range(rng.choice([4, 12, 40, 200]))

    distances = [0.0, 100.0, 199.0, 200.0, 201.0, 250.0, 900.0, 3000.0]  # around the threshold too

    def pairs(keys: list[int]) -> list[tuple[int, float, float]]:
        return [(k, rng.choice(distances), float(rng.randrange(100))) for k in keys]

    for _ in range(60):
        model.out = []
        op = rng.random()
        if op < 0.35:
            picked = rng.sample(list(events), rng.randint(1, min(5, len(events))))
            now = {e: pairs(rng.sample(list(routes), rng.randint(0, min(6, len(routes))))) for e in picked}
            changed = {e for e in picked if rng.random() < 0.3}
            delta = set_events(book, now, changed, distinct=seed % 2 == 1)
            for e in sorted(now):
                model.set_event(e, {r: (d, x) for r, d, x in now[e]}, e in changed)
        elif op < 0.75:
            slots = rng.sample(list(routes), rng.randint(1, min(5, len(routes))))
            now_r = {r: pairs(rng.sample(list(events), rng.randint(0, min(6, len(events))))) for r in slots}
            ahead = {r: {e for e in events if rng.random() < 0.5} for r in slots}
            why = [rng.choice([lc.NO_LONGER, lc.ROUTE_CHANGED]) for _ in slots]
            rows = [(e, r, d, x) for r in slots for e, d, x in now_r[r]]
            delta = set_routes(book, slots, rows, [(e, r) for r in slots for e in ahead[r]], why)
            for r, w in zip(slots, why, strict=True):
                model.set_route(r, {e: (d, x) for e, d, x in now_r[r]}, ahead[r], w)
        elif op < 0.88:
            e = rng.choice(list(events))
            delta = Delta(AT)
            book.drop_event(e, delta, lc.EXPIRED)
            model.drop_event(e, lc.EXPIRED)
        else:
            r = rng.choice(list(routes))
            delta = Delta(AT)
            book.end_route(r, delta)
            model.set_route(r, {}, set(), lc.ROUTE_ENDED)
        assert transitions(delta) == sorted(model.out, key=lambda t: t[:4])
        assert state(book) == {k: (v[0], v[1]) for k, v in model.alerts.items()}
        for r in routes:
            assert book.events_of(r) == {e for e, rr in model.alerts if rr == r}
        used = book.links[: book.meta[1]]
        dead = int(((used[:, 0] < 0) & (used[:, 1] >= 0)).sum())
        assert dead == int(book.meta[4]) <= max(sweep_min, book.count)


def test_delta_alert_columns_group_by_state_and_reason() -> None:
    """Kernel rows become one part per (state, reason), in row order."""
    delta = Delta(AT)
    ints = np.array([[lc.CLEARED, lc.PASSED, 1, 2], [lc.RAISED, 0, 3, 4], [lc.CLEARED, lc.PASSED, 5, 6]])
    floats = np.array([[1.0, np.nan], [2.0, 3.0], [4.0, np.nan]])
    delta.add_columns(ints, floats)
    shape: list[Any] = [(p[0], p[5], p[1].tolist(), p[2].tolist()) for p in delta.parts]
    assert shape == [(lc.RAISED, 0, [3], [4]), (lc.CLEARED, lc.PASSED, [1, 5], [2, 6])]
    assert len(delta) == 3 and delta.count(lc.CLEARED) == 2
