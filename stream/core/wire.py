"""Alert transitions straight to their wire form, without an ``Alert`` record each.

A worker sends every transition as JSON on the alerts topic. Building a frozen ``Alert`` per
transition and then encoding it cost ~8 µs a transition, more than matching it (an event can
concern dozens of routes). The bytes here are those of ``orjson.dumps(alert)`` (the schema's key
order, ``schemas.codec``'s options) assembled from pieces: each route's and each event's fields
are encoded once per call, the transition's own values (id, state, distance, times, reason) by
the batch; ``tests/unit/test_wire.py`` holds them equal to the records' encoding.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas import Alert, Event, Route, alert_id_for
from schemas.alert import digest_mark, mark_of, state_offset
from stream.core.lifecycle import REASONS, STATES, Delta

_OPTIONS = orjson.OPT_NAIVE_UTC
_NO_RECEIPT = b'"event_received_at":null'
# The bytes of the template before its state value, besides the alert id and the route's and
# event's fields: ``{"alert_id":"`` + ``",`` + ``,`` + ``,"state":"``.
_BEFORE_STATE = len(b'{"alert_id":"') + len(b'",') + len(b",") + len(b',"state":"')
_TEMPLATE = (
    b'{"alert_id":"%s",%s,%s,"state":"%s","distance_ahead_m":%s,%s,'
    b'"expected_at":%s,"created_at":%s,"event_received_at":%s,"reason":%s}'
)


@dataclass(slots=True)
class WireAlerts:
    """Encoded alert transitions, in order, with the driver and (kind, state) of each."""

    payloads: list[bytes] = field(default_factory=list)
    drivers: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    ids: list[bytes] = field(default_factory=list)  # each alert's id, encoded
    marks: list[bytes] = field(default_factory=list)  # each alert's content mark (``mark_of``)
    state_at: list[int] = field(default_factory=list)  # where each payload's state value starts

    def __len__(self) -> int:
        return len(self.payloads)

    def __iter__(self) -> Iterator[Alert]:
        """The transitions as records (decoded: for tests and tools, not the hot path)."""
        return (Alert.from_dict(orjson.loads(payload)) for payload in self.payloads)

    def extend(self, other: WireAlerts) -> None:
        """Append another batch's transitions after these."""
        self.payloads += other.payloads
        self.drivers += other.drivers
        self.kinds += other.kinds
        self.states += other.states
        self.ids += other.ids
        self.marks += other.marks
        self.state_at += other.state_at

    def counts(self) -> Counter[tuple[str, str]]:
        """Transitions by (event kind, state)."""
        return Counter(zip(self.kinds, self.states, strict=True))

    @classmethod
    def of(cls, alerts: Sequence[Alert], received: Mapping[str, datetime] | None = None) -> WireAlerts:
        """Records in their wire form, with their event's receipt time when known."""
        out = cls()
        for alert in alerts:
            at = received.get(alert.event_id) if received else None
            payload = encode_alert(alert, at)
            out.payloads.append(payload)
            out.state_at.append(state_offset(payload))
            out.ids.append(alert.alert_id.encode())
            out.marks.append(mark_of(orjson.loads(payload)))
            out.drivers.append(alert.driver_id)
            out.kinds.append(alert.kind)
            out.states.append(alert.state)
        return out


def encode_alert(alert: Alert, received_at: datetime | None = None) -> bytes:
    """One record's wire form (as ``schemas.codec.dumps``), with its event's receipt time if given.

    The receipt time is written into the encoded record rather than into a copy of the record: the
    key ``"event_received_at":null`` cannot occur inside an encoded string value, whose quotes are
    escaped.
    """
    if received_at is None:
        return orjson.dumps(alert, option=_OPTIONS)
    if alert.event_received_at is None:
        receipt = b'"event_received_at":' + orjson.dumps(received_at, option=_OPTIONS)
        return orjson.dumps(alert, option=_OPTIONS).replace(_NO_RECEIPT, receipt, 1)
    return orjson.dumps(replace(alert, event_received_at=received_at), option=_OPTIONS)


RoutePieces = tuple[bytes, str, str]  # its alerts' route fields, encoded; route id; driver id
EventPieces = tuple[bytes, bytes, str, str]  # (event id, kind) and (validity ... severity); id; kind


def route_pieces(route: Route) -> RoutePieces:
    """A route's fields of its alerts' wire form, with its ids."""
    return _fields(route_id=route.route_id, driver_id=route.driver_id), route.route_id, route.driver_id


def event_pieces(event: Event) -> EventPieces:
    """An event's fields of its alerts' wire form, on either side of the state and distance."""
    head = _fields(event_id=event.id, kind=event.kind)
    body = _fields(
        valid_from=event.valid_from,
        valid_until=event.valid_until,
        title=event.title,
        street=event.street,
        severity=event.severity,
    )
    return head, body, event.id, event.kind


def encode_delta(
    delta: Delta,
    route_of: Callable[[int], RoutePieces],
    event_of: Callable[[int], EventPieces],
    received: Mapping[str, datetime] | None = None,
) -> WireAlerts:
    """A delta's transitions in their wire form (call before the engine's next change), each
    with its event's receipt time when ``received`` has it; ``route_of`` and ``event_of`` give
    the pieces of a route or event slot (``route_pieces``, ``event_pieces``, cached by the caller)."""
    out = WireAlerts()
    receipts: dict[int, bytes] = {}
    created = orjson.dumps(delta.at, option=_OPTIONS)
    for state, evs, rs, dists, exps, reason in delta.parts:
        name = STATES[state].encode()
        cleared = STATES[state] == "cleared"
        why = orjson.dumps(REASONS[reason] or None)
        distances = _items([None if d != d else round(d, 1) for d in dists.tolist()])
        expected = _items([None if x != x else datetime.fromtimestamp(x, UTC) for x in exps.tolist()])
        for ev, r, distance, at in zip(evs.tolist(), rs.tolist(), distances, expected, strict=True):
            route, event = route_of(r), event_of(ev)
            receipt = receipts.get(ev)
            if receipt is None:
                stamp = received.get(event[2]) if received else None
                receipt = receipts[ev] = orjson.dumps(stamp, option=_OPTIONS)
            alert_id = alert_id_for(route[1], event[2]).encode()
            values = (alert_id, route[0], event[0], name, distance, event[1], at, created, receipt, why)
            out.payloads.append(_TEMPLATE % values)
            out.state_at.append(_BEFORE_STATE + len(alert_id) + len(route[0]) + len(event[0]))
            out.drivers.append(route[2])
            out.kinds.append(event[3])
            out.ids.append(alert_id)
            if cleared:
                out.marks.append(b"C")
            else:
                blank = (
                    alert_id,
                    route[0],
                    event[0],
                    b"",
                    distance,
                    event[1],
                    b"null",
                    b"null",
                    b"null",
                    why,
                )
                out.marks.append(digest_mark(_TEMPLATE % blank))
        out.states.extend([STATES[state]] * len(evs))
    return out


def _fields(**values: Any) -> bytes:
    """``"key":value`` pairs as in an encoded object (without its braces)."""
    return orjson.dumps(values, option=_OPTIONS)[1:-1]


def _items(values: list[Any]) -> list[bytes]:
    """Each value encoded (numbers, null, datetimes: none of them holds a comma)."""
    if not values:
        return []
    return orjson.dumps(values, option=_OPTIONS)[1:-1].split(b",")
