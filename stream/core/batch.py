"""The event side of the join: a batch of new, changed or cancelled events in one grid query."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from schemas import Event
from stream.core import lifecycle as lc
from stream.core.alertbook import AlertBook
from stream.core.config import EngineConfig
from stream.core.eventindex import EventIndex
from stream.core.grid import SegmentGrid
from stream.core.lifecycle import Delta
from stream.core.matching import Concerned, apply_rules, batch_rows, decide
from stream.core.rules import compile_schedule, epoch, event_conditions, zone
from stream.core.shapes import ShapeBatch, shapes_for
from stream.core.tables import RouteTable


class BatchEngine(Protocol):
    """What a batch of events needs of the engine (``stream.core.engine.Engine``)."""

    config: EngineConfig
    margin_m: float
    index: EventIndex
    book: AlertBook
    grid: SegmentGrid
    table: RouteTable
    rejected: list[tuple[str, str]]

    def drop_event(self, slot: int, delta: Delta, reason: int) -> None: ...

    def remaining_m(self, slot: int) -> float: ...

    def route_slots(self, destination: str) -> set[int]: ...


Array = np.ndarray[Any, Any]


def _shapes(engine: BatchEngine, events: list[Event]) -> tuple[list[Event], ShapeBatch]:
    """Shapes of the batch; events whose geometry cannot be read or is wider than the engine
    files (``EngineConfig.max_event_extent_m``) are set aside as rejected."""
    crs, margin = engine.config.crs, engine.margin_m
    try:
        shapes = shapes_for([e.geometry for e in events], crs, margin)
    except Exception:  # noqa: BLE001 - any content: find the events at fault one by one below
        shapes = None
    if shapes is not None:
        size = shapes.bbox[:, 2:] - shapes.bbox[:, :2]
        wide = np.flatnonzero((size > engine.config.max_event_extent_m).any(axis=1))
        if not len(wide):
            return events, shapes
    good: list[Event] = []
    for event in events:
        try:
            one = shapes_for([event.geometry], crs, margin)
        except Exception as exc:  # noqa: BLE001 - a geometry the engine cannot read costs only itself
            engine.rejected.append((event.id, f"unreadable geometry: {type(exc).__name__}: {exc}"[:500]))
            continue
        width, height = (one.bbox[0, 2:] - one.bbox[0, :2]).tolist()
        if max(width, height) > engine.config.max_event_extent_m:
            limit = engine.config.max_event_extent_m / 1000
            engine.rejected.append(
                (event.id, f"geometry spans {max(width, height) / 1000:,.0f} km, over {limit:g}")
            )
            continue
        good.append(event)
    return good, shapes_for([e.geometry for e in good], crs, margin)


def _with_usable_rules(engine: BatchEngine, events: list[Event]) -> list[Event]:
    """The events whose schedule, time zone and vehicle conditions compile; the others are set
    aside as rejected (a stored earlier version of one stays as it was)."""
    good: list[Event] = []
    for event in events:
        if event.schedule or event.vehicles is not None:
            try:
                if event.schedule:
                    compile_schedule(event.schedule)
                    zone(event.timezone)
                if event.vehicles is not None:
                    event_conditions(event)
            except Exception as exc:  # noqa: BLE001 - one event's rules cost only itself
                engine.rejected.append((event.id, f"unusable rules: {type(exc).__name__}: {exc}"[:500]))
                continue
        good.append(event)
    return good


def apply_batch(engine: BatchEngine, events: Sequence[Event], at: datetime) -> Delta:
    """Store, match and reconcile a batch of events; returns the alert transitions."""
    delta = Delta(at)
    now = epoch(at)
    index, book = engine.index, engine.book
    latest = {e.id: e for e in events if e.kind != "vessel"}
    geo: list[Event] = []
    held: list[int] = []  # the slot of each of ``geo`` (-1: new)
    ports: list[Event] = []
    changed: set[str] = set()
    get = index.slot_of.get
    for event in latest.values():
        slot = get(event.id)
        until = event.valid_until
        if event.status == "cancelled" or until is not None and until.timestamp() <= now:
            if slot is not None:
                why = lc.CANCELLED if event.status == "cancelled" else lc.EXPIRED
                engine.drop_event(slot, delta, why)
            continue
        if slot is not None:
            if index.objects.event[slot] == event:
                continue
            changed.add(event.id)
        if event.kind == "port_call":
            ports.append(event)
        else:
            geo.append(event)
            held.append(-1 if slot is None else slot)
    when = (now, engine.config.at_only)
    if geo:
        usable = _with_usable_rules(engine, geo)
        read, shapes = _shapes(engine, usable) if usable else (usable, None)
        if len(read) < len(geo):  # some events were refused: the others' slots
            held = [get(e.id, -1) for e in read]
        geo = read
    if ports:
        ports = _with_usable_rules(engine, ports)
    if geo and shapes is not None:
        slots = index.store(geo, shapes, at, held)
        rows, ahead = batch_rows(engine.grid, engine.table, index.table, shapes, slots)
        found = decide(engine.grid, engine.table, index.table, index.objects, rows, shapes.prims, when, ahead)
        _reconcile(book, geo, slots, found, changed, delta)
    if ports:
        slots = index.store(ports, None, at)
        for event, slot in zip(ports, slots.tolist(), strict=True):
            r = np.fromiter(engine.route_slots(event.terminal or ""), dtype=np.int64)
            ahead = np.array([engine.remaining_m(int(x)) for x in r.tolist()])
            pairs = Concerned(np.full(len(r), slot), r, ahead, ahead)
            ok = np.ones(len(r), dtype=bool)
            found = apply_rules(engine.table, index.table, index.objects, pairs, ok, when)
            book.set_event(slot, found.r, found.ahead, found.expected, event.id in changed, delta)
    return delta


def _reconcile(
    book: AlertBook,
    events: list[Event],
    slots: Array,
    found: Concerned,
    changed: set[str],
    delta: Delta,
) -> None:
    """Every event of the batch against the pairs found for it (``found`` sorted by event), in one
    call of the book: new events raise all their pairs, events seen before are diffed. The scans
    give one pair per (event, route): the book need not look for a route named twice."""
    if len(found.ev) > 1 and np.any(found.ev[1:] < found.ev[:-1]):
        found = found.take(np.argsort(found.ev, kind="stable"))
    order = np.argsort(slots)  # distinct slots; ``found`` holds their pairs in this order
    ptr = np.searchsorted(found.ev, slots[order]).astype(np.int64)
    ptr = np.append(ptr, len(found.ev))
    if changed:
        flags = np.fromiter((events[i].id in changed for i in order.tolist()), dtype=bool, count=len(order))
    else:  # all new
        flags = np.zeros(len(order), dtype=bool)
    book.set_events(slots[order], ptr, found.r, found.ahead, found.expected, flags, delta, distinct=True)
