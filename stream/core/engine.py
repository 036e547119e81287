"""The matching engine: routes, positions and events in, alert transitions out.

The engine owns the active routes (segments in a dynamic grid), the active events (with a coarse
grid for the other direction) and the alerts raised, so it answers both directions of the join
and emits each transition once. Batches of events are matched with one grid query; a route
(registered, moved or re-planned) is matched against the events near it. See
``stream.core.matching`` for the rules and ``stream.core.lifecycle`` for the states.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from itertools import chain
from typing import Any

import numpy as np

from schemas import Alert, Event, Route, Vehicle
from stream.core import lifecycle as lc
from stream.core.alertbook import AlertBook
from stream.core.batch import apply_batch
from stream.core.celllists import CellLists
from stream.core.config import EngineConfig
from stream.core.eventindex import EventIndex
from stream.core.geo import project_xy, unproject_xy
from stream.core.grid import SegmentGrid
from stream.core.lifecycle import Delta
from stream.core.matching import Concerned, apply_rules, behind, decide
from stream.core.progress import snap, travel_speed
from stream.core.routescan import routes_rows
from stream.core.rules import epoch, vehicle_values
from stream.core.tables import RouteState, RouteTable
from stream.core.wire import EventPieces, RoutePieces, WireAlerts, encode_delta, event_pieces, route_pieces

Array = np.ndarray[Any, Any]


class Engine:
    """Both sides of the join in memory, and the alerts they raised."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = cfg = config or EngineConfig()
        self.grid = SegmentGrid(cfg.cell_m, cfg.piece_m)
        self.margin_m = cfg.corridor_m + self.grid.reach_m
        self.index = EventIndex(cfg.corridor_m, self.margin_m)
        self.table = RouteTable()
        self._routes: list[RouteState | None] = []
        self._slot_of: dict[str, int] = {}
        self._by_destination: dict[str, set[int]] = {}
        self.book = AlertBook(cfg.update_threshold_m)
        self._graveyard: list[tuple[str, int]] = []
        self.rejected: list[tuple[str, str]] = []  # (event id, why) of events that cannot match

    @property
    def route_count(self) -> int:
        """Number of active routes."""
        return len(self._slot_of)

    @property
    def event_count(self) -> int:
        """Number of active events."""
        return len(self.index)

    @property
    def alert_count(self) -> int:
        """Number of alerts currently raised."""
        return self.book.count

    def routes(self) -> Iterator[Route]:
        """The active routes, as received but for their coordinates: recovered from the metric
        vertex pool, to 1e-7 degrees (1 cm), so the engine does not keep two copies of them."""
        for state in self._routes:
            if state is None or state.route.route_id not in self._slot_of:
                continue
            start = int(self.table.start[state.slot])
            x, y = self.grid.vx[start : start + state.n], self.grid.vy[start : start + state.n]
            lon, lat = unproject_xy(x, y, self.config.crs)
            coordinates = tuple(zip(np.round(lon, 7).tolist(), np.round(lat, 7).tolist(), strict=True))
            yield replace(state.route, coordinates=coordinates)

    def events(self) -> Iterable[Event]:
        """The active events."""
        return (self.index.objects.event[slot] for slot in self.index.slot_of.values())

    def alerts(self, delta: Delta) -> list[Alert]:
        """A delta's transitions as alert records (call before the engine's next change)."""
        return delta.alerts(self._route_of, self._event_of)

    def wire(self, delta: Delta, received: Mapping[str, datetime] | None = None) -> WireAlerts:
        """A delta's transitions in their wire form, with their events' receipt times when given
        (call before the engine's next change): the bytes of the records ``alerts`` gives."""
        return encode_delta(delta, self._route_pieces, self._event_pieces, received)

    def _route_pieces(self, slot: int) -> RoutePieces:
        state = self.route_state(slot)
        if state.wire is None:
            state.wire = route_pieces(state.route)[0]
        return state.wire, state.route.route_id, state.route.driver_id

    def _event_pieces(self, slot: int) -> EventPieces:
        objects = self.index.objects  # a delta names stored events only
        event, wire = objects.event[slot], objects.wire[slot]
        if wire is None:
            wire = objects.wire[slot] = event_pieces(event)[:2]
        return wire[0], wire[1], event.id, event.kind

    def _route_of(self, slot: int) -> Route:
        return self.route_state(slot).route

    def _event_of(self, slot: int) -> Event:
        event: Event = self.index.objects.event[slot]  # a delta names stored events only
        return event

    # -- routes ------------------------------------------------------------------------------
    def upsert_route(self, route: Route, at: datetime) -> list[Alert]:
        """Register or replace a route and match it against the active events."""
        return self.alerts(self.upsert_route_delta(route, at))

    def upsert_route_delta(self, route: Route, at: datetime) -> Delta:
        """``upsert_route``, with the transitions as columns."""
        return self.upsert_routes_delta([route], at)

    def upsert_routes(self, routes: Sequence[Route], at: datetime) -> list[Alert]:
        """Register or replace several routes at once (the last version of each counts)."""
        return self.alerts(self.upsert_routes_delta(routes, at))

    def upsert_routes_delta(self, routes: Sequence[Route], at: datetime) -> Delta:
        """``upsert_routes``, with the transitions as columns: one projection, one filing in the
        grid and one compiled scan for the whole batch."""
        self._bury()
        delta = Delta(at)
        latest = list({route.route_id: route for route in routes}.values())
        if not latest:
            return delta
        lon, lat, counts = _lonlats(latest)
        allx, ally = project_xy(lon, lat, self.config.crs)
        slots: list[int] = []
        reasons: list[int] = []  # a re-planned route's cleared alerts say so; a new one has none
        moved: list[tuple[int, tuple[float, float, float]]] = []
        gone: tuple[list[int], list[int]] = ([], [])
        for route in latest:
            slot = self._slot_of.get(route.route_id)
            if slot is None:
                slot = self.table.allocate()
                self._slot_of[route.route_id] = slot
                self._routes.extend([None] * (slot + 1 - len(self._routes)))
                reasons.append(lc.NO_LONGER)
            else:
                old = self._routes[slot]
                assert old is not None  # noqa: S101
                reasons.append(lc.ROUTE_CHANGED if self.book.has_alerts(slot) else lc.NO_LONGER)
                if old.position is not None:
                    moved.append((slot, old.position))
                gone[0].append(int(self.table.start[slot]))
                gone[1].append(old.n)
                self._by_destination.get(old.route.destination or "", set()).discard(slot)
            slots.append(slot)
        self.grid.remove_many(*gone)
        starts, totals = self.grid.insert_many(slots, allx, ally, counts)
        t = self.table
        for k, route in enumerate(latest):
            slot, n = slots[k], int(counts[k])
            light = Route(
                route.route_id,
                route.driver_id,
                (),
                route.vehicle,
                route.depart_at,
                route.arrive_by,
                route.destination,
            )
            state = RouteState(light, slot, n, float(totals[k]))
            self._routes[slot] = state
            t.w[slot], t.h[slot], t.wd[slot], t.ln[slot], t.crit[slot], t.hazmat[slot] = vehicle_values(
                route.vehicle
            )
            t.speed[slot] = travel_speed(route, state.length_m, self.config.speed_kmh)
            t.start[slot] = t.cur_p[slot] = int(starts[k])
            t.has_pos[slot], t.base_s[slot] = False, 0.0
            t.base_t[slot] = epoch(route.depart_at) if route.depart_at is not None else epoch(at)
            if route.destination:
                self._by_destination.setdefault(route.destination, set()).add(slot)
        for slot, position in moved:
            self._move(slot, *position)
        self._rematch(slots, at, delta, reasons)
        return delta

    def route_position(self, route_id: str, position: tuple[float, float], at: datetime) -> list[Alert]:
        """Record the vehicle's progress; distances are updated, events now behind are cleared."""
        return self.alerts(self.route_position_delta(route_id, position, at))

    def route_position_delta(self, route_id: str, position: tuple[float, float], at: datetime) -> Delta:
        """``route_position``, with the transitions as columns."""
        self._bury()
        delta = Delta(at)
        slot = self._slot_of.get(route_id)
        if slot is None:
            return delta
        self._move(slot, float(position[0]), float(position[1]), epoch(at))
        self._rematch([slot], at, delta, [lc.NO_LONGER])
        return delta

    def _move(self, slot: int, lon: float, lat: float, when: float) -> None:
        state = self._routes[slot]
        assert state is not None  # noqa: S101
        state.position = (lon, lat, when)
        x, y = project_xy(np.array([lon]), np.array([lat]), self.config.crs)
        snap(self.grid, self.table, slot, state.n, float(x[0]), float(y[0]), when)

    def end_route(self, route_id: str, at: datetime) -> list[Alert]:
        """Forget a route; its raised alerts are cleared."""
        return self.alerts(self.end_route_delta(route_id, at))

    def end_route_delta(self, route_id: str, at: datetime) -> Delta:
        """``end_route``, with the transitions as columns."""
        self._bury()
        delta = Delta(at)
        slot = self._slot_of.pop(route_id, None)
        if slot is None:
            return delta
        state = self._routes[slot]
        assert state is not None  # noqa: S101
        self.book.end_route(slot, delta)
        self.grid.remove(int(self.table.start[slot]), state.n)
        self._by_destination.get(state.route.destination or "", set()).discard(slot)
        self._graveyard.append(("route", slot))
        return delta

    def _rematch(self, slots: list[int], at: datetime, delta: Delta, reasons: list[int]) -> None:
        """Match routes against the events near them and reconcile each route's alerts, whatever
        the events they were raised for (each route's alerts are on its list in the book)."""
        ends = np.fromiter((self.route_state(slot).n for slot in slots), dtype=np.int64, count=len(slots))
        r = np.asarray(slots, dtype=np.int64)
        rows, prims = routes_rows(self.grid, self.table, self.index, r, ends)
        when = (epoch(at), self.config.at_only)
        found = decide(self.grid, self.table, self.index.table, self.index.objects, rows, prims, when)
        ports = self._port_calls_of(slots, when)
        if len(ports.ev):
            both = zip(_columns(found), _columns(ports), strict=True)
            found = Concerned(*(np.concatenate(pair) for pair in both))
        found = found.take(np.argsort(found.r, kind="stable"))  # a port call after a geometric match
        ahead_geo = rows.take(~behind(self.table, rows))
        ahead_geo = ahead_geo.take(np.argsort(ahead_geo.r, kind="stable"))
        self.book.set_routes(r, found, ahead_geo, np.asarray(reasons, dtype=np.int64), delta)

    def _port_calls_of(self, slots: list[int], when: tuple[float, bool]) -> Concerned:
        """The port calls at the routes' destinations that concern them (by the rules)."""
        ev: list[int] = []
        r: list[int] = []
        for slot in slots:
            destination = self.route_state(slot).route.destination
            calls = self.index.port_calls.get(destination) if destination else None
            if calls:
                ev.extend(calls)
                r.extend([slot] * len(calls))
        ahead = np.array([self.remaining_m(slot) for slot in r], dtype=np.float64)
        pairs = Concerned(np.array(ev, dtype=np.int64), np.array(r, dtype=np.int64), ahead, ahead)
        ok = np.ones(len(ev), dtype=bool)
        return apply_rules(self.table, self.index.table, self.index.objects, pairs, ok, when)

    # -- events ------------------------------------------------------------------------------
    def apply_events(self, events: Sequence[Event], at: datetime) -> list[Alert]:
        """Add, update or cancel a batch of events and match them against the active routes."""
        return self.alerts(self.apply_events_delta(events, at))

    def apply_events_delta(self, events: Sequence[Event], at: datetime) -> Delta:
        """``apply_events``, with the transitions as columns (what throughput is measured on)."""
        self._bury()
        return apply_batch(self, events, at)

    def expire(self, at: datetime) -> list[Alert]:
        """Drop events whose validity ended by ``at``; their alerts are cleared."""
        return self.alerts(self.expire_delta(at))

    def expire_delta(self, at: datetime) -> Delta:
        """``expire``, with the transitions as columns."""
        self._bury()
        delta = Delta(at)
        slots = np.fromiter(self.index.slot_of.values(), dtype=np.int64, count=len(self.index))
        for slot in slots[self.index.table.vu[slots] <= epoch(at)].tolist():
            self.drop_event(slot, delta, lc.EXPIRED)
        return delta

    def drop_event(self, slot: int, delta: Delta, reason: int) -> None:
        """Clear an event's alerts and forget it (its slot is reused after the next call)."""
        self.book.drop_event(slot, delta, reason)
        self.index.remove(slot)
        self._graveyard.append(("event", slot))

    def compact(self) -> None:
        """Lay the route grid out in spatial order (see ``SegmentGrid.compact``): a worker calls
        it once it has loaded its partitions, so that its scans read neighbouring cells in
        sequence."""
        self.grid.compact()

    def route_state(self, slot: int) -> RouteState:
        """The state of the route in a slot (as of the last call)."""
        state = self._routes[slot]
        assert state is not None  # noqa: S101
        return state

    def remaining_m(self, slot: int) -> float:
        """Metres of a route still ahead of its vehicle."""
        state = self._routes[slot]
        assert state is not None  # noqa: S101
        return max(0.0, state.length_m - float(self.table.base_s[slot]))

    def route_slots(self, destination: str) -> set[int]:
        """Slots of the active routes heading to a destination."""
        return self._by_destination.get(destination, set())

    def _bury(self) -> None:
        for kind, slot in self._graveyard:
            if kind == "event":
                self.index.release(slot)
            else:
                self._routes[slot] = None
                self.table.release(slot)
        self._graveyard.clear()


def _lonlats(routes: list[Route]) -> tuple[Array, Array, Array]:
    """The routes' coordinates as lon and lat arrays (concatenated; a third value, if any, is
    dropped), and each route's number of vertices."""
    counts = np.fromiter((len(r.coordinates) for r in routes), dtype=np.int64, count=len(routes))
    flat = np.fromiter(chain.from_iterable(chain.from_iterable(r.coordinates for r in routes)), dtype=float)
    if len(flat) != 2 * int(counts.sum()):  # some coordinate is not a (lon, lat) pair
        flat = np.asarray([c[:2] for r in routes for c in r.coordinates], dtype=float).ravel()
    return flat[0::2], flat[1::2], counts


def _columns(pairs: Concerned) -> tuple[np.ndarray[Any, Any], ...]:
    return pairs.ev, pairs.r, pairs.ahead, pairs.expected


def warm_up() -> float:
    """Compile (or load from the on-disk cache) the engine's kernels with the types a real batch
    passes, so that the first batch of a process is not delayed; returns the seconds it took."""
    import time

    started = time.perf_counter()
    engine = Engine()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    line = ((2.35, 48.85), (2.351, 48.85), (2.352, 48.851))
    engine.upsert_routes([Route("warm", "warm", line, Vehicle())], at)
    square = [[2.3505, 48.8499], [2.3507, 48.8499], [2.3507, 48.8501], [2.3505, 48.8501], [2.3505, 48.8499]]
    point = {"type": "Point", "coordinates": [2.3505, 48.85]}
    area = {"type": "Polygon", "coordinates": [square]}
    engine.apply_events(
        [
            Event(id="p", source="warm", kind="closure", geometry=point),
            Event(id="a", source="warm", kind="perimeter", geometry=area),
        ],
        at,
    )
    engine.upsert_routes([Route("warm", "warm", line[::-1], Vehicle())], at)
    engine.route_position("warm", line[1], at)
    engine.apply_events(
        [Event(id="p", source="warm", kind="closure", geometry=point, status="cancelled")], at
    )
    engine.end_route("warm", at)
    engine.book.sweep()  # run only once dead rows pile up
    cells = CellLists()  # so few events do not make the event grid rehash
    cells.add(np.arange(600, dtype=np.int64), np.zeros(600, dtype=np.int64))
    return time.perf_counter() - started
