"""Port-call timestamps (DCSA Just-In-Time style JSON) -> ``port_call`` events."""

from __future__ import annotations

from typing import Any

from schemas.event import Event
from schemas.validate import errors
from stream.feeds import coords, timing
from stream.feeds.base import (
    MAX_RECORDS,
    FeedFormatError,
    Item,
    RecordError,
    gc_paused,
    load_json,
    reject,
)

SOURCE = "portcall"
SCHEMA = "portcall"
EVENT_WORDS = {"ARRI": "arrival", "DEPA": "departure", "STRT": "start", "CMPL": "completion"}
CLASSIFIER_WORDS = {"EST": "estimated", "PLN": "planned", "ACT": "actual", "REQ": "requested"}


def portcall_event(record: Any) -> Event:
    """One schema-valid port-call timestamp as an event at the terminal gate."""
    _check_gate(record)
    problems = errors(SCHEMA, record)
    if problems:
        raise RecordError("; ".join(problems[:10]), "schema")
    terminal = record["terminal"]
    service, what = record["portCallServiceTypeCode"], record["portCallServiceEventTypeCode"]
    classifier = record["classifierCode"]
    when = timing.instant(record["dateTime"], "dateTime")
    vessel = record.get("vesselName") or record.get("vesselIMONumber") or record.get("MMSINumber")
    title = (
        f"{vessel}: {service.lower().replace('_', ' ')} {EVENT_WORDS[what]} "
        f"({CLASSIFIER_WORDS[classifier]}) at {terminal['terminalID']}"
    )
    details = {
        "port_call_id": record["portCallID"],
        "un_location_code": record["UNLocationCode"],
        "vessel_imo": record.get("vesselIMONumber"),
        "mmsi": record.get("MMSINumber"),
        "vessel_name": record.get("vesselName"),
        "service_type": service,
        "event_type": what,
        "classifier": classifier,
        "event_time": record["dateTime"],
        "terminal_name": terminal.get("name"),
        "timestamp_id": record.get("timestampID"),
        "delay_reason": record.get("delayReasonCode"),
        "remark": record.get("remark"),
        "publisher": record.get("publisher"),
    }
    lon, lat = terminal["gatePosition"]
    return Event(
        id=f"{SOURCE}:{record['portCallID']}:{service}:{what}",
        source=SOURCE,
        kind="port_call",
        geometry={"type": "Point", "coordinates": [float(lon), float(lat)]},
        valid_from=when,
        valid_until=None,
        title=title,
        terminal=terminal["terminalID"],
        details={k: v for k, v in details.items() if v is not None},
    )


def _check_gate(record: Any) -> None:
    """Name swapped gate coordinates before the schema reports a mere range error."""
    terminal = record.get("terminal") if isinstance(record, dict) else None
    gate = terminal.get("gatePosition") if isinstance(terminal, dict) else None
    if isinstance(gate, list) and len(gate) == 2:
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in gate):
            try:
                coords.lonlat(float(gate[0]), float(gate[1]))
            except RecordError as exc:
                if exc.reason == "swapped_coordinates":
                    raise RecordError(f"terminal/gatePosition: {exc.error}", exc.reason) from None


@gc_paused
def parse_portcall(data: bytes | str) -> list[Item]:
    """One port-call object or a list of them: events, with schema errors naming the field."""
    doc = load_json(data, "port-call")
    records = doc if isinstance(doc, list) else [doc]
    if not isinstance(doc, list | dict):
        raise FeedFormatError("port-call input must be a JSON object or an array of objects")
    if len(records) > MAX_RECORDS:
        raise FeedFormatError(f"over {MAX_RECORDS} port-call records")
    items: list[Item] = []
    for index, record in enumerate(records):
        ident = record.get("portCallID") if isinstance(record, dict) else None
        where = f"portcall[{index}]" + (f" {str(ident)[:100]}" if ident else "")
        try:
            items.append(portcall_event(record))
        except RecordError as exc:
            items.append(reject(where, exc, record))
    return items
