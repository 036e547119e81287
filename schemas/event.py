"""The normalized event: every feed is parsed into this, every matcher reads it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Literal, cast
from zoneinfo import available_timezones

import orjson

from schemas.codec import instant, measure
from schemas.errors import InvalidRecord
from schemas.geometry import DEFAULT_LIMITS, GeometryLimits, check_geometry

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
    def from_dict(cls, data: Any) -> VehicleConditions:
        """Build from the JSON form (unknown keys are ignored); InvalidRecord names a wrong field."""
        if not isinstance(data, dict):
            raise InvalidRecord(f"vehicles: must be an object, not {type(data).__name__}", "schema")
        critair = data.get("critair")
        if critair is not None:
            if not isinstance(critair, list) or len(critair) > len(CRITAIR_CLASSES):
                raise InvalidRecord("vehicles/critair: must be an array of Crit'Air classes", "schema")
            critair = tuple(str(c).lower() for c in critair)
            unknown = [c for c in critair if c not in CRITAIR_CLASSES]
            if unknown:
                raise InvalidRecord(
                    f"vehicles/critair: {unknown[0][:16]!r} is not a Crit'Air class", "schema"
                )
        hazmat = data.get("hazmat")
        if hazmat is not None and not isinstance(hazmat, bool):
            raise InvalidRecord("vehicles/hazmat: must be true, false or null", "schema")
        return cls(
            max_weight_t=measure(data, "max_weight_t", "vehicles"),
            max_height_m=measure(data, "max_height_m", "vehicles"),
            max_width_m=measure(data, "max_width_m", "vehicles"),
            max_length_m=measure(data, "max_length_m", "vehicles"),
            critair=critair,
            hazmat=hazmat,
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
    def from_dict(cls, data: Any, limits: GeometryLimits = DEFAULT_LIMITS) -> Event:
        """Build from the JSON form, checking every field the engine reads.

        Raises InvalidRecord (naming the field, with a reason slug) and nothing else for any
        content: a wrong type, an unknown time zone, a schedule that is not weekday slots, a
        geometry beyond ``limits``. The publish API and the feeds validate against the JSON
        Schema first for exhaustive messages; this is what every other entry relies on.
        """
        if not isinstance(data, dict):
            raise InvalidRecord(f"(record): expected an event object, got {_kind_of(data)}", "not_an_object")
        try:
            ident, source, kind = data["id"], data["source"], data["kind"]
            geometry = data["geometry"]
        except KeyError as exc:
            raise InvalidRecord(f"{exc.args[0]}: is a required property", "schema") from None
        ident = _text(ident, "id", MAX_ID_CHARS, required=True)
        if not isinstance(source, str) or not SOURCE_PATTERN.fullmatch(source):
            raise InvalidRecord(
                f"source: {_short(source)} is not a source name ([A-Za-z0-9_.:-], 1-64)", "schema"
            )
        if not isinstance(kind, str) or kind not in EVENT_KINDS:
            raise InvalidRecord(f"kind: {_short(kind)} is not one of {sorted(EVENT_KINDS)}", "schema")
        check_geometry(geometry, limits)
        status = data.get("status", "active")
        if status not in ("active", "cancelled"):
            raise InvalidRecord(f"status: {_short(status)} is not 'active' or 'cancelled'", "schema")
        direction = data.get("direction", "both")
        if direction not in ("both", "forward"):
            raise InvalidRecord(f"direction: {_short(direction)} is not 'both' or 'forward'", "schema")
        timezone = data.get("timezone") or "Europe/Paris"
        if not isinstance(timezone, str) or not known_timezone(timezone):
            raise InvalidRecord(
                f"timezone: {_short(timezone)} is not a time zone of the IANA database (e.g. Europe/Paris)",
                "bad_timezone",
            )
        vehicles = data.get("vehicles")
        details = data.get("details")
        if details is None:
            details = {}
        elif not isinstance(details, dict):
            raise InvalidRecord(f"details: must be an object, not {_kind_of(details)}", "schema")
        else:
            _check_details(details)
        severity = data.get("severity")
        if severity not in (None, "low", "medium", "high"):
            raise InvalidRecord(f"severity: {_short(severity)} is not low, medium, high or null", "schema")
        valid_from = _instant(data, "valid_from")
        valid_until = _instant(data, "valid_until")
        if valid_from is not None and valid_until is not None and valid_until < valid_from:
            raise InvalidRecord("valid_until: is before valid_from", "bad_time")
        schedule = data.get("schedule")
        title, street, terminal = data.get("title"), data.get("street"), data.get("terminal")
        # The common case inline (plain strings within bounds); _text says what is wrong otherwise.
        return cls(
            id=ident,
            source=source,
            kind=cast(EventKind, kind),
            geometry=geometry,
            valid_from=valid_from,
            valid_until=valid_until,
            status=status,
            direction=direction,
            schedule=None if schedule is None else _schedule(schedule),
            timezone=timezone,
            vehicles=VehicleConditions.from_dict(vehicles) if vehicles else None,
            title=title
            if title is None or (type(title) is str and len(title) <= 512)
            else _text(title, "title", 512),
            street=(
                street
                if street is None or (type(street) is str and len(street) <= 256)
                else _text(street, "street", 256)
            ),
            severity=severity,
            updated_at=_instant(data, "updated_at"),
            terminal=(
                terminal
                if terminal is None or (type(terminal) is str and len(terminal) <= 64)
                else _text(terminal, "terminal", 64)
            ),
            details=details,
        )

    @classmethod
    def from_json(
        cls, raw: bytes | str, limits: GeometryLimits = DEFAULT_LIMITS, max_bytes: int = 900_000
    ) -> Event:
        """Read one event from its JSON bytes (a topic message, a stored record): InvalidRecord
        for one over ``max_bytes``, not JSON, or refused by ``from_dict``."""
        if len(raw) > max_bytes:
            raise InvalidRecord(
                f"(record): {len(raw):,} bytes, over the {max_bytes:,} an event may take "
                "(CORRIDOR_EVENT_MAX_BYTES)",
                "too_large",
            )
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidRecord(f"(record): not JSON: {exc}", "undecodable") from None
        return cls.from_dict(data, limits)


def admit(event: Event, limits: GeometryLimits = DEFAULT_LIMITS) -> Event:
    """An event built in code (by a feed's parser) checked as ``Event.from_dict`` checks a decoded
    one where it matters to the engine: its geometry within ``limits``, its time zone, its schedule
    and its details; InvalidRecord otherwise."""
    check_geometry(event.geometry, limits)
    if not known_timezone(event.timezone):
        raise InvalidRecord(
            f"timezone: {_short(event.timezone)} is not a time zone of the IANA database", "bad_timezone"
        )
    if event.schedule:
        _schedule({day: list(slots) for day, slots in event.schedule.items()})
    if event.details:
        _check_details(event.details)
    return event


MAX_ID_CHARS = 256
MAX_DETAILS_DEPTH = 8
MAX_DETAILS_ITEMS = 2_000
MAX_SLOTS_PER_DAY = 24
CRITAIR_CLASSES = ("0", "1", "2", "3", "4", "5", "nc")
SOURCE_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_SLOT = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]")
_DAYS = frozenset(("everyday", *WEEKDAYS))
MAX_GOOD_SLOTS = 4_096
_GOOD_SLOTS: set[str] = set()  # slots seen to match _SLOT (a few dozen in practice), bounded


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def known_timezone(name: str) -> bool:
    """True for a key of the IANA time zone database (the same that local schedules are read in)."""
    return name in _timezones()


_KIND_NAMES: dict[type, str] = {dict: "an object", list: "an array", str: "a string"}


def _kind_of(value: Any) -> str:
    return _KIND_NAMES.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _instant(data: dict[str, Any], name: str) -> datetime | None:
    """``codec.instant`` with the common case (an ISO 8601 string with its offset) inline."""
    value = data.get(name)
    if value is None:
        return None
    if type(value) is str:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return parsed
    return instant(data, name)


def _text(value: Any, name: str, max_chars: int, required: bool = False) -> Any:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise InvalidRecord(
            f"{name}: must be a non-empty string" if required else f"{name}: must be a string", "schema"
        )
    if len(value) > max_chars:
        raise InvalidRecord(f"{name}: longer than {max_chars} characters", "schema")
    return value


def _schedule(value: Any) -> dict[str, tuple[str, ...]] | None:
    """Weekday -> 'HH:MM-HH:MM' slots, checked so that the engine can compile them."""
    if not value:
        if value is None or value == {}:
            return None
        raise InvalidRecord(
            f"schedule: must be an object of weekday slots, not {_kind_of(value)}", "bad_schedule"
        )
    if not isinstance(value, dict):
        raise InvalidRecord(
            f"schedule: must be an object of weekday slots, not {_kind_of(value)}", "bad_schedule"
        )
    out: dict[str, tuple[str, ...]] = {}
    good = _GOOD_SLOTS
    for day, slots in value.items():
        if day not in _DAYS:
            raise InvalidRecord(f"schedule: {_short(day)} is not a weekday or 'everyday'", "bad_schedule")
        if not isinstance(slots, list) or len(slots) > MAX_SLOTS_PER_DAY:
            raise InvalidRecord(
                f"schedule/{day}: must be an array of at most {MAX_SLOTS_PER_DAY} 'HH:MM-HH:MM' slots",
                "bad_schedule",
            )
        for slot in slots:
            if type(slot) is str and slot in good:
                continue
            if not isinstance(slot, str) or not _SLOT.fullmatch(slot):
                raise InvalidRecord(f"schedule/{day}: {_short(slot)} is not 'HH:MM-HH:MM'", "bad_schedule")
            if len(good) < MAX_GOOD_SLOTS:
                good.add(slot)
        out[day] = tuple(slots)
    return out


def _check_details(details: dict[str, Any]) -> None:
    """Bound the free-form ``details``: nesting depth and number of items (encoders have limits)."""
    if len(details) <= MAX_DETAILS_ITEMS:
        for child in details.values():
            if isinstance(child, dict | list):
                break
        else:
            return  # flat and small enough, as most are
    stack: list[tuple[Any, int]] = [(details, 1)]
    items = 0
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DETAILS_DEPTH:
            raise InvalidRecord(f"details: nested deeper than {MAX_DETAILS_DEPTH} levels", "details_too_deep")
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            items += 1
            if items > MAX_DETAILS_ITEMS:
                raise InvalidRecord(f"details: more than {MAX_DETAILS_ITEMS} items", "details_too_large")
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
