"""DATEX II v3 building blocks shared by regulations and situations: validity and location."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import orjson
from lxml import etree

from schemas.event import WEEKDAYS
from stream.feeds import coords, timing
from stream.feeds.base import RecordError, text

XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
FULL_DAY = [(0, 24 * 60)]
MAX_GEOMETRY_CHARS = 32 * 1024 * 1024


def xsi_type(element: etree._Element) -> str:
    """The element's xsi:type without prefix ('' when absent)."""
    return str(element.get(XSI_TYPE) or "").rpartition(":")[2]


def first(element: etree._Element, name: str) -> etree._Element | None:
    """The first descendant named ``name`` in any namespace."""
    for found in element.iter("{*}" + name):
        return found
    return None


def value(element: etree._Element, name: str, max_len: int = 512) -> str | None:
    """Stripped text of the first descendant named ``name`` (None when absent or empty)."""
    found = first(element, name)
    return text(found.text, name, max_len) if found is not None and found.text else None


def firsts(element: etree._Element) -> dict[str, etree._Element]:
    """The first of each name among the element and its descendants (any namespace), found in
    one pass: ``first`` and ``value`` for many names of one small element, at the cost of one."""
    found: dict[str, etree._Element] = {}
    for item in element.iter():
        tag = item.tag
        if isinstance(tag, str):
            found.setdefault(tag.rpartition("}")[2], item)
    return found


def value_of(found: dict[str, etree._Element], name: str, max_len: int = 512) -> str | None:
    """``value`` from what ``firsts`` found."""
    item = found.get(name)
    return text(item.text, name, max_len) if item is not None and item.text else None


def children(element: etree._Element, name: str) -> list[etree._Element]:
    """Direct children named ``name`` in any namespace (matched by lxml, not one by one here)."""
    return list(element.iterchildren("{*}" + name))


@dataclass(frozen=True, slots=True)
class Validity:
    """A validity window with its weekly schedule and the schedule's timezone."""

    start: datetime | None
    end: datetime | None
    schedule: dict[str, tuple[str, ...]] | None
    timezone: str
    exceptions: tuple[str, ...] = ()
    suspended: bool = False


def _time_of_day(raw: str | None, offsets: set[Any]) -> int:
    minutes, offset = _clock(raw or "")
    offsets.add(offset)
    return minutes


@functools.lru_cache(maxsize=1024)
def _clock(raw: str) -> tuple[int, timedelta | None]:
    """Minutes past midnight and UTC offset of 'HH:MM:SS[offset]' (a feed uses a handful)."""
    try:
        parsed = time.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise RecordError(f"time of day {raw[:32]!r} is not HH:MM:SS", "bad_schedule") from None
    return parsed.hour * 60 + parsed.minute, parsed.utcoffset()


def _zone(offsets: set[Any]) -> str:
    if offsets == {None} or not offsets:
        return "Europe/Paris"
    if len(offsets) > 1:
        raise RecordError("time periods mix UTC offsets", "bad_schedule")
    seconds = int(next(iter(offsets)).total_seconds())
    if seconds % 3600:
        raise RecordError("time periods use an offset that is not a whole hour", "bad_schedule")
    hours = seconds // 3600
    return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"


def _days(period: etree._Element) -> list[str]:
    return [d.text.strip() for d in period.iter("{*}applicableDay") if d.text and d.text.strip()]


def _slot(period: etree._Element, offsets: set[Any]) -> tuple[int, int]:
    """(start, end) minutes of a recurringTimePeriodOfDay, its two times found in one walk."""
    named = firsts(period)
    start = _time_of_day(value_of(named, "startTimeOfPeriod"), offsets)
    return start, _time_of_day(value_of(named, "endTimeOfPeriod"), offsets)


def _weekly(spec: etree._Element) -> tuple[dict[str, tuple[str, ...]] | None, str, list[str]]:
    periods, exceptions = children(spec, "validPeriod"), children(spec, "exceptionPeriod")
    offsets: set[Any] = set()
    table: list[tuple[str, list[tuple[int, int]]]] = []
    for period in periods:
        slots = [_slot(p, offsets) for p in period.iter("{*}recurringTimePeriodOfDay")]
        days = _days(period) or ["everyday"]
        table.extend((day, [(s, e if e else 24 * 60) for s, e in slots] or FULL_DAY) for day in days)
    excluded: set[str] = set()
    notes: list[str] = []
    for period in exceptions:
        excluded.update(_days(period))
        notes.extend(f"except {t.text.strip()}" for t in period.iter("{*}specialDayType") if t.text)
    if excluded:
        base = table or [("everyday", FULL_DAY)]
        table = [(d, s) for day, s in base for d in (WEEKDAYS if day == "everyday" else [day])]
        table = [(d, s) for d, s in table if d not in excluded]
        if not table:
            raise RecordError("every day is excluded: the validity never applies", "bad_schedule")
    schedule = timing.schedule(table)
    if schedule and len(schedule) == 7 and len(set(schedule.values())) == 1:
        schedule = {"everyday": schedule["monday"]}
    if schedule == {"everyday": ("00:00-24:00",)}:
        schedule = None
    return schedule, _zone(offsets), notes


def validity(element: etree._Element) -> Validity:
    """A DATEX II validity (validityByOrder / validity) as window, schedule and timezone."""
    named = firsts(element)  # one walk instead of one lookup per name
    status = value_of(named, "validityStatus")
    spec = named.get("validityTimeSpecification")
    if spec is None:
        return Validity(None, None, None, "Europe/Paris", (), status == "suspended")
    start = timing.instant(_within(spec, named, "overallStartTime"), "overallStartTime")
    end = timing.instant(_within(spec, named, "overallEndTime"), "overallEndTime")
    timing.window(start, end)
    if "validPeriod" in named or "exceptionPeriod" in named:
        schedule, zone, notes = _weekly(spec)
    else:  # most validities: a window and no weekly schedule
        schedule, zone, notes = None, "Europe/Paris", []
    return Validity(start, end, schedule, zone, tuple(notes), status == "suspended")


def _within(spec: etree._Element, named: dict[str, etree._Element], name: str) -> str | None:
    """``value(spec, name)``, from what ``firsts`` found when that is a child of ``spec``."""
    found = named.get(name)
    if found is None:
        return None
    if found.getparent() is spec:
        return text(found.text, name, 512) if found.text else None
    return value(spec, name)


def _pos_list(raw: str) -> dict[str, Any]:
    try:
        numbers = [float(n) for n in raw.split()]
    except ValueError:
        raise RecordError("posList holds a non-number", "invalid_coordinates") from None
    if len(numbers) < 4 or len(numbers) % 2:
        raise RecordError("posList needs an even count of at least 4 numbers", "invalid_geometry")
    line = [[numbers[i + 1], numbers[i]] for i in range(0, len(numbers), 2)]
    return coords.geometry({"type": "LineString", "coordinates": line})


def location(element: etree._Element) -> tuple[dict[str, Any], str | None]:
    """(geometry, street) of a DATEX II location: GeoJSON extension, GML line or a point."""
    named = firsts(element)
    street = value_of(named, "roadName") or value_of(named, "roadNumber") or value_of(named, "value")
    geojson = value_of(named, "geoJsonGeometry", MAX_GEOMETRY_CHARS)
    if geojson is not None:
        try:
            parsed = orjson.loads(geojson)
        except orjson.JSONDecodeError:
            raise RecordError("geoJsonGeometry is not JSON", "invalid_geometry") from None
        return coords.geometry(parsed), street
    pos_list = value_of(named, "posList", MAX_GEOMETRY_CHARS)
    if pos_list is not None:
        return _pos_list(pos_list), street
    lat, lon = value_of(named, "latitude"), value_of(named, "longitude")
    if lat is not None and lon is not None:
        try:
            point = coords.lonlat(float(lon), float(lat))
        except ValueError:
            raise RecordError("latitude/longitude is not a number", "invalid_coordinates") from None
        return coords.geometry({"type": "Point", "coordinates": point}), street
    raise RecordError("location has no GeoJSON, posList or coordinates", "missing_geometry")
