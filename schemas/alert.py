"""Alerts: what a driver receives when an event concerns the rest of its route."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from schemas.codec import opt_datetime

AlertState = Literal["raised", "updated", "cleared"]


def alert_id_for(route_id: str, event_id: str) -> str:
    """Deterministic alert id of a (route, event) pair: the same pair always gets the same id."""
    digest = hashlib.blake2b(f"{route_id}\x1f{event_id}".encode(), digest_size=12).hexdigest()
    return f"al-{digest}"


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
