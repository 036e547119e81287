"""DATEX II v3 SituationPublication: situation -> situationRecord -> one event each."""

from __future__ import annotations

from lxml import etree

from schemas.event import Event, EventKind
from stream.feeds import timing
from stream.feeds.base import Item, RecordError, reject, text
from stream.feeds.datex2_common import children, first, location, validity, value, xsi_type

SOURCE = "datex2"
RECORD_KINDS: dict[str, EventKind] = {
    "MaintenanceWorks": "roadworks",
    "ConstructionWorks": "roadworks",
    "Roadworks": "roadworks",
    "Accident": "hazard",
    "VehicleObstruction": "hazard",
    "GeneralObstruction": "hazard",
    "AnimalPresenceObstruction": "hazard",
    "EnvironmentalObstruction": "hazard",
    "InfrastructureDamageObstruction": "hazard",
    "PoorEnvironmentConditions": "hazard",
    "AbnormalTraffic": "hazard",
    "RoadOrCarriagewayOrLaneManagement": "restriction",
    "SpeedManagement": "restriction",
    "ReroutingManagement": "restriction",
    "GeneralNetworkManagement": "restriction",
}
CLOSED = frozenset({"roadClosed", "carriagewayClosures", "closedPermanentlyForTheWinter"})
SEVERITY = {
    "highest": "high",
    "veryHigh": "high",
    "high": "high",
    "medium": "medium",
    "low": "low",
    "lowest": "low",
}


def _kind(record: etree._Element) -> EventKind:
    record_type = xsi_type(record)
    if record_type not in RECORD_KINDS:
        raise RecordError(
            f"situationRecord type {record_type or '(none)'!r} is not one Corridor maps",
            "unsupported_record",
        )
    management = value(record, "roadOrCarriagewayOrLaneManagementType")
    return "closure" if management in CLOSED else RECORD_KINDS[record_type]


def record_event(situation: etree._Element, record: etree._Element) -> Event:
    """One situationRecord (with its situation's id and severity) as an event."""
    situation_id = situation.get("id") or "situation"
    record_id = record.get("id")
    if not record_id:
        raise RecordError("situationRecord has no id", "schema")
    kind = _kind(record)
    valid_el = first(record, "validity")
    if valid_el is None:
        raise RecordError("situationRecord has no validity", "schema")
    valid = validity(valid_el)
    loc = children(record, "locationReference")
    if not loc:
        raise RecordError("situationRecord has no locationReference", "missing_geometry")
    geometry, street = location(loc[0])
    comment = first(record, "generalPublicComment")
    title = text(" ".join(comment.itertext()), "comment") if comment is not None else None
    severity = value(record, "severity") or value(situation, "overallSeverity") or ""
    updated = timing.instant(value(record, "situationRecordVersionTime"), "versionTime")
    return Event(
        id=f"{SOURCE}:{situation_id}:{record_id}"[:256],
        source=SOURCE,
        kind=kind,
        geometry=geometry,
        valid_from=valid.start,
        valid_until=valid.end,
        status="cancelled" if valid.suspended else "active",
        schedule=valid.schedule,
        timezone=valid.timezone,
        title=title or xsi_type(record),
        street=street,
        severity=SEVERITY.get(severity),
        updated_at=updated,
        details={
            k: v for k, v in (("record_type", xsi_type(record)), ("version", record.get("version"))) if v
        },
    )


def situation_items(situation: etree._Element) -> list[Item]:
    """Every situationRecord of one situation as an event or a rejection."""
    items: list[Item] = []
    for record in children(situation, "situationRecord"):
        where = f"situation {situation.get('id')} record {record.get('id')}"
        try:
            items.append(record_event(situation, record))
        except RecordError as exc:
            items.append(reject(where, exc))
    return items
