"""schemas/portcall.schema.json as a msgspec type: the quick check of a port-call timestamp.

As ``schemas.event_shape`` for events: msgspec says yes or no in microseconds, and a record it
refuses goes to the JSON Schema validator (the contract), whose messages name every wrong field.
tests/unit/test_portcall_shape.py holds it to the schema on generated and mutated records.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from schemas.event_shape import Instant

ServiceType = Literal[
    "BERTH",
    "CARGO_OPERATIONS",
    "PILOTAGE",
    "TOWAGE",
    "MOORING",
    "ANCHORAGE",
    "BUNKERING",
    "SLUDGE",
    "SHORE_POWER",
    "SEA_PASSAGE",
    "ALL_FAST",
    "GANGWAY_DOWN_AND_SAFE",
    "VESSEL_READY_FOR_CARGO_OPERATIONS",
]
Longitude = Annotated[float, Meta(ge=-180, le=180)]
Latitude = Annotated[float, Meta(ge=-90, le=90)]


class TerminalShape(Struct, forbid_unknown_fields=True):
    """``terminal`` (additionalProperties false)."""

    terminalID: Annotated[str, Meta(min_length=1, max_length=64)]  # the DCSA names
    gatePosition: tuple[Longitude, Latitude]
    name: Annotated[str, Meta(max_length=200)] | UnsetType = UNSET


class PortCallShape(Struct, forbid_unknown_fields=True):
    """The timestamp object (additionalProperties false); fields without a default are required."""

    portCallID: Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:/-]+$")]
    UNLocationCode: Annotated[str, Meta(pattern=r"^[A-Z]{2}[A-Z2-9]{3}$")]
    portCallServiceTypeCode: ServiceType
    portCallServiceEventTypeCode: Literal["ARRI", "DEPA", "STRT", "CMPL"]
    classifierCode: Literal["EST", "PLN", "ACT", "REQ"]
    dateTime: Instant
    terminal: TerminalShape
    timestampID: Annotated[str, Meta(min_length=1, max_length=100)] | UnsetType = UNSET
    vesselIMONumber: Annotated[str, Meta(pattern=r"^[0-9]{7}$")] | UnsetType = UNSET
    MMSINumber: Annotated[str, Meta(pattern=r"^[0-9]{9}$")] | UnsetType = UNSET
    vesselName: Annotated[str, Meta(max_length=100)] | UnsetType = UNSET
    delayReasonCode: Annotated[str, Meta(max_length=10)] | UnsetType = UNSET
    remark: Annotated[str, Meta(max_length=500)] | UnsetType = UNSET
    publisher: Annotated[str, Meta(max_length=100)] | UnsetType = UNSET


def shape_error(record: Any) -> str | None:
    """Why ``record`` does not satisfy the port-call schema (msgspec's words), None when it does."""
    try:
        call = msgspec.convert(record, PortCallShape)
    except msgspec.ValidationError as exc:
        return str(exc)
    if call.vesselIMONumber is UNSET and call.MMSINumber is UNSET:  # the schema's if/then
        return "Object missing required field `MMSINumber`"
    return None


def fits(record: Any) -> bool:
    """True when ``record`` satisfies schemas/portcall.schema.json."""
    return shape_error(record) is None
