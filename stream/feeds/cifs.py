"""Waze CIFS incidents (XML as DiaLog exports it, or the same fields as JSON) -> events."""

from __future__ import annotations

import math
from datetime import datetime
from functools import lru_cache
from typing import Any

from schemas.event import Direction, Event, EventKind
from stream.feeds import coords, timing
from stream.feeds.base import (
    FeedFormatError,
    Item,
    RecordError,
    as_bytes,
    gc_paused,
    load_json,
    reject,
    text,
)
from stream.feeds.cifs_xml import xml_records

SOURCE = "cifs"
MAX_ID = 240
KINDS: dict[str, EventKind] = {
    "ROAD_CLOSED": "closure",
    "CONSTRUCTION": "roadworks",
    "ACCIDENT": "hazard",
    "HAZARD": "hazard",
    "JAM": "hazard",
    "POLICE": "hazard",
    "CHIT_CHAT": "hazard",
}
SUBTYPE_KINDS: dict[str, EventKind] = {"HAZARD_ON_ROAD_CONSTRUCTION": "roadworks"}
SEVERITY = {
    "ROAD_CLOSED": "high",
    "ACCIDENT_MAJOR": "high",
    "JAM_STAND_STILL_TRAFFIC": "high",
    "ACCIDENT": "medium",
    "CONSTRUCTION": "medium",
}
DIRECTIONS: dict[str, Direction] = {"ONE_DIRECTION": "forward", "BOTH_DIRECTIONS": "both"}


def polyline(value: str | None) -> dict[str, Any]:
    """'lat lon lat lon …' as a GeoJSON LineString (or Point) in lon/lat order."""
    if value is None or not value.strip():
        raise RecordError("incident has no polyline", "missing_geometry")
    parts = value.replace(",", " ").split()
    if len(parts) % 2:
        raise RecordError(f"polyline has an odd number of values ({len(parts)})", "invalid_geometry")
    if len(parts) > 2 * coords.MAX_POSITIONS:
        raise RecordError("polyline has too many positions", "invalid_geometry")
    try:
        numbers = list(map(float, parts))
    except ValueError:
        raise RecordError("polyline holds a non-number", "invalid_coordinates") from None
    if not all(map(math.isfinite, numbers)):
        raise RecordError("polyline holds a non-finite number", "invalid_coordinates")
    lats, lons = numbers[0::2], numbers[1::2]
    if min(lats) < -90.0 or max(lats) > 90.0 or min(lons) < -180.0 or max(lons) > 180.0:
        for lat, lon in zip(lats, lons, strict=True):
            coords.lonlat(lon, lat)
    points = [[lon, lat] for lat, lon in zip(lats, lons, strict=True)]
    if len(points) == 1:
        return {"type": "Point", "coordinates": points[0]}
    return {"type": "LineString", "coordinates": points}


def _time(rec: dict[str, Any], field: str) -> datetime | None:
    value = rec.get(field)
    if value is not None and not isinstance(value, str):
        raise RecordError(f"{field} must be an ISO 8601 text", "bad_time")
    return timing.instant(value, field)


@lru_cache(maxsize=1024)
def _parsed_schedule(days: tuple[tuple[str, str], ...]) -> timing.Schedule | None:
    return timing.schedule((d, timing.slots(v)) for d, v in days if v.strip())


def _schedule(days: tuple[tuple[str, str], ...]) -> timing.Schedule | None:
    parsed = _parsed_schedule(days)
    return dict(parsed) if parsed else None


def _kind(kind: str | None, subtype: str | None) -> EventKind:
    if kind not in KINDS:
        raise RecordError(f"type {str(kind)[:40]!r} is not one of {', '.join(KINDS)}", "schema")
    if subtype and subtype.startswith("ROAD_CLOSED"):
        return "closure"
    return SUBTYPE_KINDS.get(subtype or "", KINDS[kind])


def incident_event(rec: dict[str, Any]) -> Event:
    """One CIFS incident (fields as text, schedule as day -> text) as an event."""
    ident = text(rec.get("id"), "id", 10_000)
    if ident is None:
        raise RecordError("incident has no id", "schema")
    if len(ident) > MAX_ID:
        raise RecordError(f"incident id is over {MAX_ID} characters", "schema")
    kind_name, subtype = text(rec.get("type"), "type"), text(rec.get("subtype"), "subtype")
    kind = _kind(kind_name, subtype)
    direction_name = text(rec.get("direction"), "direction")
    if direction_name is not None and direction_name not in DIRECTIONS:
        raise RecordError(
            f"direction {direction_name[:40]!r} is not ONE_DIRECTION or BOTH_DIRECTIONS", "schema"
        )
    start, end = _time(rec, "starttime"), _time(rec, "endtime")
    timing.window(start, end)
    updated = _time(rec, "updatetime") or _time(rec, "creationtime")
    days = rec.get("schedule") or {}
    if not isinstance(days, dict) or not all(isinstance(v, str) for v in days.values()):
        raise RecordError("schedule must map days to 'HH:MM-HH:MM,…' text", "bad_schedule")
    schedule = _schedule(tuple(days.items())) if days else None
    reference = text(rec.get("reference"), "source/reference", 256)
    details = {"cifs_type": kind_name, "cifs_subtype": subtype, "reference": reference}
    details["location_description"] = text(rec.get("location_description"), "location")
    return Event(
        id=f"{SOURCE}:{ident}",
        source=SOURCE,
        kind=kind,
        geometry=polyline(text(rec.get("polyline"), "polyline", 10**8)),
        valid_from=start,
        valid_until=end,
        direction=DIRECTIONS[direction_name or "BOTH_DIRECTIONS"],
        schedule=schedule,
        title=text(rec.get("description"), "description"),
        street=text(rec.get("street"), "street", 256),
        severity=SEVERITY.get(subtype or "") or SEVERITY.get(kind_name or ""),
        updated_at=updated,
        details={k: v for k, v in details.items() if v},
    )


def build(records: list[tuple[str, dict[str, Any]]]) -> list[Item]:
    """Events for parsed incident records, with duplicate ids and swapped axes rejected."""
    items: list[Item] = []
    seen: set[str] = set()
    built: list[tuple[int, Event]] = []
    for where, rec in records:
        try:
            event = incident_event(rec)
            if event.id in seen:
                raise RecordError(f"incident id {event.id} appears twice in the feed", "duplicate_id")
        except RecordError as exc:
            items.append(reject(where, exc, rec))
            continue
        seen.add(event.id)
        built.append((len(items), event))
        items.append(event)
    points = [coords.first_position(e.geometry) for _, e in built]
    for index in coords.swapped_outliers(points):
        slot, event = built[index]
        lon, lat = points[index]
        far = coords.haversine_km(lon, lat, *_centre(points))
        error = f"{event.id}: " + coords.SWAPPED_FEED_ERROR.format(far=far)
        where = records[slot][0]
        items[slot] = reject(where, RecordError(error, "swapped_coordinates"), records[slot][1])
    return items


def _centre(points: list[tuple[float, float]]) -> tuple[float, float]:
    lons, lats = sorted(p[0] for p in points), sorted(p[1] for p in points)
    return lons[len(lons) // 2], lats[len(lats) // 2]


def _json_records(doc: Any) -> list[tuple[str, dict[str, Any]]]:
    incidents = doc.get("incidents") if isinstance(doc, dict) else doc
    if not isinstance(incidents, list):
        raise FeedFormatError('not a CIFS JSON document: expected {"incidents": [...]}')
    records: list[tuple[str, dict[str, Any]]] = []
    for n, raw in enumerate(incidents):
        rec = _json_fields(raw) if isinstance(raw, dict) else {"id": None, "raw": raw}
        ident = rec.get("id")
        records.append((f"incident {ident}" if ident else f"incident #{n}", rec))
    return records


def _json_fields(raw: dict[str, Any]) -> dict[str, Any]:
    rec: dict[str, Any] = {}
    location = raw.get("location")
    for src in (location if isinstance(location, dict) else {}, raw):
        for key, value in src.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and key == "id":
                value = str(value)
            rec[key] = value
    source = raw.get("source")
    rec["reference"] = source.get("reference") if isinstance(source, dict) else None
    return rec


@gc_paused
def parse_cifs(data: bytes | str) -> list[Item]:
    """A CIFS feed, XML or JSON (told apart by its first character), as events and rejections."""
    raw = as_bytes(data, "CIFS")
    head = raw.lstrip()[:1]
    if head in (b"{", b"["):
        return build(_json_records(load_json(raw, "CIFS")))
    return build(xml_records(raw))
