"""Alerts: what a driver receives when an event concerns the rest of its route."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

from schemas.codec import opt_datetime

AlertState = Literal["raised", "updated", "cleared"]


def alert_id_for(route_id: str, event_id: str) -> str:
    """Deterministic alert id of a (route, event) pair: the same pair always gets the same id."""
    digest = hashlib.blake2b(f"{route_id}\x1f{event_id}".encode(), digest_size=12).hexdigest()
    return f"al-{digest}"


# Fields that change on every recomputation without telling the driver anything new: a replay or an
# index rebuild that differs only in these (and the state) is the same alert.
NOT_NEWS = ("expected_at", "created_at", "event_received_at")


def mark_of(alert: Mapping[str, Any]) -> bytes:
    """An alert's content mark, from its wire form (decoded): ``C`` for a clearing, else a digest of
    its JSON with the state emptied and the ``NOT_NEWS`` times null. Two versions of an alert with
    the same mark tell the driver the same thing; the outbox stores a version only when its mark
    differs from the last one stored. The engine's encoder computes the same marks without decoding
    (``stream.core.wire``; ``tests/unit/test_wire.py`` holds them equal)."""
    if alert.get("state") == "cleared":
        return b"C"
    view = dict(alert)
    view["state"] = ""
    for name in NOT_NEWS:
        if name in view:
            view[name] = None
    return digest_mark(orjson.dumps(view, option=orjson.OPT_NAIVE_UTC))


def digest_mark(blank: bytes) -> bytes:
    """The mark of an alert's JSON once its state is emptied and its ``NOT_NEWS`` times are null."""
    return b"A" + hashlib.blake2b(blank, digest_size=10).hexdigest().encode()


@dataclass(frozen=True, slots=True)
class Alert:
    """One state of an alert (see schemas/alert.schema.json)."""

    alert_id: str
    route_id: str
    driver_id: str
    event_id: str
    kind: str
    state: AlertState
    distance_ahead_m: float | None
    valid_from: datetime | None
    valid_until: datetime | None
    title: str | None
    street: str | None = None
    severity: str | None = None
    expected_at: datetime | None = None
    created_at: datetime | None = None
    event_received_at: datetime | None = None
    reason: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """Build from the wire form."""
        distance = data.get("distance_ahead_m")
        return cls(
            alert_id=str(data["alert_id"]),
            route_id=str(data["route_id"]),
            driver_id=str(data["driver_id"]),
            event_id=str(data["event_id"]),
            kind=str(data["kind"]),
            state=data["state"],
            distance_ahead_m=float(distance) if distance is not None else None,
            valid_from=opt_datetime(data.get("valid_from")),
            valid_until=opt_datetime(data.get("valid_until")),
            title=data.get("title"),
            street=data.get("street"),
            severity=data.get("severity"),
            expected_at=opt_datetime(data.get("expected_at")),
            created_at=opt_datetime(data.get("created_at")),
            event_received_at=opt_datetime(data.get("event_received_at")),
            reason=data.get("reason"),
        )


# Reading an encoded alert without decoding it. The key of a field, quotes included (``"state":"``),
# cannot occur inside an encoded string value, whose quotes are escaped: the first occurrence is the
# field's. The outbox's script rewrites the state at its offset; the gateways read the times.
_STATE_KEY = b'"state":"'
_CREATED_KEY = b'"created_at":"'
_RECEIVED_KEY = b'"event_received_at":"'


def state_offset(payload: bytes) -> int:
    """Where the value of an encoded alert's ``state`` starts (after its opening quote): the
    outbox's script rewrites it there (``raised`` to ``updated`` for a driver that already holds
    the alert) without reading the rest."""
    at = payload.find(_STATE_KEY)
    if at < 0:
        raise ValueError("an encoded alert without its state")
    return at + len(_STATE_KEY)


def _text_after(payload: bytes, key: bytes) -> bytes | None:
    """The string value of the first ``key`` (``"name":"``) of an encoded alert, as written; None
    when the alert has no such string (as ``state_offset``: no key occurs inside a string value)."""
    start = payload.find(key)
    if start < 0:
        return None
    start += len(key)
    end = payload.find(b'"', start)
    return payload[start:end] if end > start else None


def created_at_text(payload: bytes) -> bytes | None:
    """An encoded alert's ``created_at`` (ISO 8601) as written, or None."""
    return _text_after(payload, _CREATED_KEY)


def received_at_text(payload: bytes) -> bytes | None:
    """An encoded alert's ``event_received_at`` (ISO 8601) as written, or None."""
    return _text_after(payload, _RECEIVED_KEY)
