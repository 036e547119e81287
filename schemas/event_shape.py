"""schemas/event.schema.json as a msgspec type: the quick check of a native event's fields.

The JSON Schema is the contract publishers read, and its validator (jsonschema) says everything
that is wrong with a record, field by field; it also takes ~230 µs an event. This type checks the
same (every field but ``geometry``, which ``check_geometry`` reads) in ~4 µs, in msgspec's C code,
and says only yes or no: a record it refuses is handed to the validator for the messages.
tests/unit/test_event_shape.py holds it to the schema on generated valid and mutated events.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from schemas.event import EventKind as Kind

# The schema's patterns, as the schema spells them (both validators search with Python's re).
_INSTANT_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$"
_SLOT_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]$"

Instant = Annotated[str, Meta(pattern=_INSTANT_PATTERN)]
Slot = Annotated[str, Meta(pattern=_SLOT_PATTERN)]
Day = Literal["everyday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
Measure = Annotated[float, Meta(ge=0)]


class VehiclesShape(Struct, forbid_unknown_fields=True):
    """``vehicles`` (additionalProperties false)."""

    max_weight_t: Measure | None = None
    max_height_m: Measure | None = None
    max_width_m: Measure | None = None
    max_length_m: Measure | None = None
    critair: list[Literal["0", "1", "2", "3", "4", "5", "nc"]] | None = None
    hazmat: bool | None = None


class EventShape(Struct, forbid_unknown_fields=True):
    """The event object (additionalProperties false); fields without a default are required."""

    id: Annotated[str, Meta(min_length=1, max_length=256)]
    source: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
    kind: Kind
    geometry: Any
    valid_from: Instant | None
    valid_until: Instant | None
    status: Literal["active", "cancelled"]
    direction: Literal["both", "forward"] = "both"
    schedule: dict[Day, Annotated[list[Slot], Meta(max_length=24)]] | None = None
    timezone: Annotated[str, Meta(max_length=64)] = "Europe/Paris"
    vehicles: VehiclesShape | None = None
    title: Annotated[str, Meta(max_length=512)] | None = None
    street: Annotated[str, Meta(max_length=256)] | None = None
    severity: Literal["low", "medium", "high"] | None = None
    updated_at: Instant | None = None
    terminal: Annotated[str, Meta(max_length=64)] | None = None
    details: dict[str, Any] = {}  # msgspec copies a mutable default for each record


def fits(record: Any) -> bool:
    """True when ``record`` satisfies the event schema outside ``geometry`` (which is not read)."""
    try:
        msgspec.convert(record, EventShape)
    except msgspec.ValidationError:
        return False
    return True


def shape_error(record: Any) -> str | None:
    """msgspec's one-line reason for refusing ``record`` ("... - at `$.field`"), None if it fits."""
    try:
        msgspec.convert(record, EventShape)
    except msgspec.ValidationError as exc:
        return str(exc)
    return None
