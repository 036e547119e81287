"""The normalized event: every feed is parsed into this, every matcher reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from schemas.codec import opt_datetime, opt_float

EventKind = Literal[
    "closure",
    "restriction",
    "perimeter",
    "hazard",
    "roadworks",
    "bridge_lift",
    "lock_closure",
    "port_call",
    "vessel",
]
EVENT_KINDS: frozenset[str] = frozenset(EventKind.__args__)  # type: ignore[attr-defined]
EventStatus = Literal["active", "cancelled"]
Direction = Literal["both", "forward"]
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class VehicleConditions:
    """Which vehicles an event applies to.

    An event without conditions applies to every vehicle. With conditions, it applies to a vehicle
    that exceeds any given limit, whose Crit'Air class is listed, or that carries dangerous goods
    when ``hazmat`` is true. A vehicle whose dimension or Crit'Air class is unknown is treated as
    concerned by a limit on it: a driver is warned rather than silently exempted.
    """

    max_weight_t: float | None = None
    max_height_m: float | None = None
    max_width_m: float | None = None
    max_length_m: float | None = None
    critair: tuple[str, ...] | None = None
    hazmat: bool | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VehicleConditions:
        """Build from the JSON form (unknown keys are ignored)."""
        critair = data.get("critair")
        return cls(
            max_weight_t=opt_float(data.get("max_weight_t")),
            max_height_m=opt_float(data.get("max_height_m")),
            max_width_m=opt_float(data.get("max_width_m")),
            max_length_m=opt_float(data.get("max_length_m")),
            critair=tuple(str(c) for c in critair) if critair is not None else None,
            hazmat=data.get("hazmat"),
        )

    def is_empty(self) -> bool:
        """True when no condition is set (the event then applies to every vehicle)."""
        return all(getattr(self, name) is None for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class Event:
    """A traffic event in Corridor's normalized form (see schemas/event.schema.json)."""

    id: str
    source: str
    kind: EventKind
    geometry: dict[str, Any]
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    status: EventStatus = "active"
    direction: Direction = "both"
    schedule: dict[str, tuple[str, ...]] | None = None
    timezone: str = "Europe/Paris"
    vehicles: VehicleConditions | None = None
    title: str | None = None
    street: str | None = None
    severity: str | None = None
    updated_at: datetime | None = None
    terminal: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """Build from the JSON form; raises KeyError/ValueError/TypeError on bad input.

        Feeds validate against the JSON Schema first (schemas.validate) for precise messages.
        """
        schedule = data.get("schedule")
        vehicles = data.get("vehicles")
        return cls(
            id=str(data["id"]),
            source=str(data["source"]),
            kind=data["kind"],
            geometry=data["geometry"],
            valid_from=opt_datetime(data.get("valid_from")),
            valid_until=opt_datetime(data.get("valid_until")),
            status=data.get("status", "active"),
            direction=data.get("direction", "both"),
            schedule=({day: tuple(slots) for day, slots in schedule.items()} if schedule else None),
            timezone=data.get("timezone") or "Europe/Paris",
            vehicles=VehicleConditions.from_dict(vehicles) if vehicles else None,
            title=data.get("title"),
            street=data.get("street"),
            severity=data.get("severity"),
            updated_at=opt_datetime(data.get("updated_at")),
            terminal=data.get("terminal"),
            details=data.get("details") or {},
        )
