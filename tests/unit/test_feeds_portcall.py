"""Port-call timestamps: DCSA-style JSON validated against schemas/portcall.schema.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.event import Event
from schemas.rejected import Rejection
from stream.feeds.base import FeedFormatError
from stream.feeds.portcall import parse_portcall
from tests.support.feeds import JSON_VALUES, PROPERTY, check, check_or_refused

CALL: dict[str, Any] = {
    "portCallID": "NLRTM-2024-0815-EVERDIADEM",
    "UNLocationCode": "NLRTM",
    "vesselIMONumber": "9134270",
    "MMSINumber": "351759000",
    "vesselName": "EVER DIADEM",
    "portCallServiceTypeCode": "BERTH",
    "portCallServiceEventTypeCode": "ARRI",
    "classifierCode": "EST",
    "dateTime": "2024-08-15T14:00:00+02:00",
    "terminal": {"terminalID": "ECTDE", "name": "ECT Delta", "gatePosition": [4.0412, 51.9536]},
}


def with_(**changes: Any) -> dict[str, Any]:
    """CALL with some fields replaced (None removes the field)."""
    record = {**CALL, **changes}
    return {k: v for k, v in record.items() if v is not None}


def test_one_object_gives_a_port_call_event_at_the_gate() -> None:
    """The timestamp becomes a port_call event: terminal set, gate point, details kept."""
    (event,) = parse_portcall(json.dumps(CALL))
    assert isinstance(event, Event)
    assert event.id == "portcall:NLRTM-2024-0815-EVERDIADEM:BERTH:ARRI"
    assert event.kind == "port_call" and event.terminal == "ECTDE"
    assert event.geometry == {"type": "Point", "coordinates": [4.0412, 51.9536]}
    assert event.valid_from == datetime(2024, 8, 15, 12, 0, tzinfo=UTC)
    assert event.details["classifier"] == "EST" and event.details["vessel_imo"] == "9134270"
    assert event.title == "EVER DIADEM: berth arrival (estimated) at ECTDE"
    check([event])


def test_a_list_gives_one_item_per_timestamp() -> None:
    """A list is accepted; an actual departure keeps its own id beside the estimated arrival."""
    depart = with_(portCallServiceEventTypeCode="DEPA", classifierCode="ACT")
    items = parse_portcall(json.dumps([CALL, depart, with_(classifierCode="MAYBE")]))
    assert [type(i).__name__ for i in items] == ["Event", "Event", "Rejection"]
    assert items[1].id.endswith(":BERTH:DEPA")  # type: ignore[union-attr]
    assert items[2].where == "portcall[2] NLRTM-2024-0815-EVERDIADEM"


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (with_(portCallID=None), "(record): 'portCallID' is a required property"),
        (with_(classifierCode="MAYBE"), "classifierCode: 'MAYBE' is not one of"),
        (with_(UNLocationCode="rotterdam"), "UNLocationCode: 'rotterdam' does not match"),
        (with_(vesselIMONumber=9134270), "vesselIMONumber: 9134270 is not of type 'string'"),
        (with_(vesselIMONumber=None, MMSINumber=None), "(record): 'MMSINumber' is a required property"),
        (with_(dateTime="2024-08-15 14:00"), "dateTime: '2024-08-15 14:00' does not match"),
        (with_(terminal={"terminalID": "ECTDE"}), "terminal: 'gatePosition' is a required property"),
        (with_(terminal={"terminalID": "X", "gatePosition": [4.0, 95.0, 1]}), "terminal/gatePosition"),
        (with_(extra=1), "(record): Additional properties are not allowed ('extra' was unexpected)"),
    ],
)
def test_schema_errors_name_the_field(record: dict[str, Any], field: str) -> None:
    """Each schema violation is reported with the path of the field at fault."""
    (item,) = parse_portcall(json.dumps(record))
    assert isinstance(item, Rejection) and item.reason == "schema"
    assert field in item.error


def test_swapped_gate_position_is_named() -> None:
    """A gate given as [lat, lon] with lat beyond 90 is rejected as swapped coordinates."""
    record = with_(terminal={"terminalID": "T1", "gatePosition": [51.95, 104.04]})
    (item,) = parse_portcall(json.dumps(record))
    assert isinstance(item, Rejection) and item.reason == "swapped_coordinates"
    assert item.error.startswith("terminal/gatePosition:")


@pytest.mark.parametrize("document", [b"", b"nope", b"42", b'"text"'])
def test_unreadable_documents_raise_feed_format_error(document: bytes) -> None:
    """Input that is not a JSON object or array is refused as a whole."""
    with pytest.raises(FeedFormatError):
        parse_portcall(document)


@PROPERTY
@given(st.binary(max_size=1000))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    """Random bytes either raise FeedFormatError or yield only events and rejections."""
    check_or_refused(parse_portcall, data)


@PROPERTY
@given(st.dictionaries(st.sampled_from(sorted(CALL)), JSON_VALUES, max_size=4))
def test_mutated_records_never_crash(changes: dict[str, Any]) -> None:
    """A valid record with arbitrary values swapped in gives exactly one event or rejection."""
    items = parse_portcall(json.dumps([{**CALL, **changes}]))
    check(items)
    assert len(items) == 1
