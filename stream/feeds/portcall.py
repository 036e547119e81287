"""Port-call timestamps (DCSA Just-In-Time style JSON) -> ``port_call`` events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from schemas.event import Event
from schemas.portcall_shape import fits
from schemas.validate import errors
from stream.feeds import coords, jsonstream, timing
from stream.feeds.base import (
    MAX_RECORD_BYTES,
    FeedFormatError,
    Item,
    RecordError,
    collect,
    gc_paused,
    reject,
    sniff,
)

SOURCE = "portcall"
SCHEMA = "portcall"
EVENT_WORDS = {"ARRI": "arrival", "DEPA": "departure", "STRT": "start", "CMPL": "completion"}
CLASSIFIER_WORDS = {"EST": "estimated", "PLN": "planned", "ACT": "actual", "REQ": "requested"}


def portcall_event(record: Any) -> Event:
    """One schema-valid port-call timestamp as an event at the terminal gate."""
    _check_gate(record)
    if not fits(record):  # the validator only for a record refused, for its field-named messages
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


def iter_portcall(stream: BinaryIO) -> Iterator[Item]:
    """One port-call object or a list of them, as events record by record."""
    first, stream = sniff(stream)
    if first == b"[":
        for kind, index, record in jsonstream.walk(stream, "port-call", ("item",)):
            if kind == "record":
                yield _item(index, record)
        return
    if first != b"{":
        raise FeedFormatError("not a port-call JSON document: expected one object or an array of objects")
    head = stream.read(MAX_RECORD_BYTES + 1)
    if len(head) > MAX_RECORD_BYTES:
        raise FeedFormatError(
            f"one port-call object over {MAX_RECORD_BYTES // 2**20} MiB: send a JSON array of records"
        )
    try:
        doc = orjson.loads(head)
    except orjson.JSONDecodeError as exc:
        raise FeedFormatError(f"not a port-call JSON document: {exc}") from None
    if not isinstance(doc, dict):
        raise FeedFormatError("port-call input must be a JSON object or an array of objects")
    yield _item(0, doc if jsonstream.depth_ok(doc) else jsonstream.too_deep("record"))


def _item(index: int, record: Any) -> Item:
    ident = record.get("portCallID") if isinstance(record, dict) else None
    where = f"portcall[{index}]" + (f" {str(ident)[:100]}" if ident else "")
    try:
        if isinstance(record, RecordError):
            raise record
        return portcall_event(record)
    except RecordError as exc:
        return reject(where, exc, None if isinstance(record, RecordError) else record)


@gc_paused
def parse_portcall(data: bytes | str) -> list[Item]:
    """Port-call JSON held in memory: events, with schema errors naming the field."""
    return collect(iter_portcall, data)
