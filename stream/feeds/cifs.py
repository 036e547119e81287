"""Waze CIFS incidents (XML as DiaLog exports it, or the same fields as JSON) -> events."""

from __future__ import annotations

import math
import statistics
from collections.abc import Generator, Iterable, Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any, BinaryIO

from schemas.event import Direction, Event, EventKind
from stream.feeds import coords, jsonstream, timing
from stream.feeds.base import (
    MAX_RECORDS,
    FeedFormatError,
    Item,
    RecordError,
    collect,
    gc_paused,
    reject,
    sniff,
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


MIN_POSITIONS = 2
"""cifsv2.xsd on <polyline>: "For any incident, you must submit at least two coordinates"."""


def polyline(value: str | None) -> dict[str, Any]:
    """'lat lon lat lon …' (at least two positions, as the CIFS schema requires) as a GeoJSON
    LineString in lon/lat order."""
    if value is None or not value.strip():
        raise RecordError("incident has no polyline", "missing_geometry")
    parts = value.replace(",", " ").split()
    if len(parts) % 2:
        raise RecordError(f"polyline has an odd number of values ({len(parts)})", "invalid_geometry")
    if len(parts) < 2 * MIN_POSITIONS:
        raise RecordError(
            f"polyline holds {len(parts) // 2} position; CIFS requires at least {MIN_POSITIONS} "
            "(lat lon lat lon)",
            "too_few_points",
        )
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


REFERENCE_RECORDS = 1000
"""Incidents whose median position is the feed's centre, against which swapped axes are caught."""


def build(records: Iterable[tuple[str, dict[str, Any] | RecordError]]) -> Iterator[Item]:
    """Events for incident records as they come, with duplicate ids and swapped axes rejected.

    Swapped axes are judged against the median position of the first REFERENCE_RECORDS
    incidents: those are held until then (or the end of the feed), later ones go straight out.
    """
    seen: set[str] = set()
    held: list[tuple[str, Item, Any]] | None = []
    reference: tuple[tuple[float, float], tuple[float, float]] | None = None
    for where, rec in records:
        item = _incident(where, rec, seen)
        if held is not None:
            held.append((where, item, rec))
            if len(held) >= REFERENCE_RECORDS:
                reference = yield from _release(held)
                held = None
            continue
        if isinstance(item, Event) and reference is not None:
            centre, median = reference
            point = coords.first_position(item.geometry)
            if coords.swapped_outliers([median, median, point]):  # the median of (m, m, p) is m
                item = _swapped(where, item, point, centre, rec)
        yield item
    if held:
        yield from _release(held)


def _incident(where: str, rec: dict[str, Any] | RecordError, seen: set[str]) -> Item:
    try:
        if isinstance(rec, RecordError):
            raise rec
        event = incident_event(rec)
        if event.id in seen:
            raise RecordError(f"incident id {event.id} appears twice in the feed", "duplicate_id")
    except RecordError as exc:
        return reject(where, exc, None if isinstance(rec, RecordError) else rec)
    seen.add(event.id)
    return event


def _release(
    held: list[tuple[str, Item, Any]],
) -> Generator[Item, None, tuple[tuple[float, float], tuple[float, float]] | None]:
    """Yield the held items with swapped axes rejected; return the feed's (centre, median)."""
    built = [(slot, item) for slot, (_, item, _) in enumerate(held) if isinstance(item, Event)]
    points = [coords.first_position(e.geometry) for _, e in built]
    items = [item for _, item, _ in held]
    if not points:
        yield from items
        return None
    centre = _centre(points)
    for index in coords.swapped_outliers(points):
        slot, event = built[index]
        where, _, rec = held[slot]
        items[slot] = _swapped(where, event, points[index], centre, rec)
    yield from items
    median = (statistics.median(p[0] for p in points), statistics.median(p[1] for p in points))
    return centre, median


def _swapped(
    where: str, event: Event, point: tuple[float, float], centre: tuple[float, float], rec: Any
) -> Item:
    far = coords.haversine_km(*point, *centre)
    error = f"{event.id}: " + coords.SWAPPED_FEED_ERROR.format(far=far)
    return reject(where, RecordError(error, "swapped_coordinates"), rec)


def _centre(points: list[tuple[float, float]]) -> tuple[float, float]:
    lons, lats = sorted(p[0] for p in points), sorted(p[1] for p in points)
    return lons[len(lons) // 2], lats[len(lats) // 2]


def _json_records(stream: BinaryIO, first: bytes) -> Iterator[tuple[str, dict[str, Any] | RecordError]]:
    """(where, record) for the incidents of CIFS JSON: {"incidents": [...]} or a bare array."""
    path = ("item",) if first == b"[" else ("incidents", "item")
    found = first == b"["
    for kind, key, value in jsonstream.walk(stream, "CIFS", path):
        if kind == "member" and key == "incidents":
            if value != jsonstream.ARRAY:
                raise FeedFormatError('not a CIFS JSON document: "incidents" must be an array')
            found = True
        elif kind == "record":
            if isinstance(value, RecordError):
                yield f"incident #{key}", value
                continue
            rec = _json_fields(value) if isinstance(value, dict) else {"id": None, "raw": value}
            ident = rec.get("id")
            yield (f"incident {ident}" if ident else f"incident #{key}", rec)
    if not found:
        raise FeedFormatError('not a CIFS JSON document: expected {"incidents": [...]}')


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


def iter_cifs(stream: BinaryIO) -> Iterator[Item]:
    """A CIFS feed, XML or JSON (told apart by its first character), as events as they are read."""
    first, stream = sniff(stream)
    records = _json_records(stream, first) if first in (b"{", b"[") else xml_records(stream)
    return build(_bounded(records))


def _bounded(
    records: Iterator[tuple[str, dict[str, Any] | RecordError]],
) -> Iterator[tuple[str, dict[str, Any] | RecordError]]:
    for n, record in enumerate(records):
        if n >= MAX_RECORDS:
            raise FeedFormatError(f"CIFS document has over {MAX_RECORDS} incidents: split it")
        yield record


@gc_paused
def parse_cifs(data: bytes | str) -> list[Item]:
    """A CIFS feed held in memory, XML or JSON, as events and rejections."""
    return collect(iter_cifs, data)
