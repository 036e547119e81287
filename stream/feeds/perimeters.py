"""Perimeter GeoJSON (e.g. Paris 2024 security zones) -> ``perimeter`` events."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from schemas.event import Event
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

SOURCE = "perimeters"
LOCAL_ZONE = "Europe/Paris"
_PARIS = ZoneInfo(LOCAL_ZONE)
_LOCAL = re.compile(r"^(\d{4})/(\d{2})/(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$")
SEVERITY = {"rouge": "high", "bleu": "medium"}
POLYGONAL = frozenset({"Polygon", "MultiPolygon"})
_TEXT = frozenset({str})
_SCALARS = frozenset({str, int, float, bool})


def local_time(value: Any, field: str) -> datetime | None:
    """'YYYY/MM/DD HH:MM:SS.000' in Paris local time (or ISO 8601 with offset) -> aware time."""
    raw = text(value, field, 64)
    if raw is None:
        return None
    return _local_time(raw, field)


@functools.lru_cache(maxsize=4096)
def _local_time(raw: str, field: str) -> datetime | None:
    """``local_time`` of a string (the perimeters of one event share their times: read once)."""
    match = _LOCAL.match(raw)
    if match is None:
        return timing.instant(raw, field)
    year, month, day, hour, minute, second = (int(g or 0) for g in match.groups())
    try:
        naive = datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise RecordError(f"{field} {raw!r} is not a real date", "bad_time") from None
    aware = naive.replace(tzinfo=_PARIS)
    if aware.astimezone(UTC).astimezone(_PARIS).replace(tzinfo=None) != naive:
        raise RecordError(f"{field} {raw!r} does not exist in {LOCAL_ZONE} (DST gap)", "bad_time")
    return aware


def stable_key(props: dict[str, Any]) -> str:
    """A short hash of a feature's properties: the same perimeter keeps the same id."""
    if set(map(type, props.values())) <= _TEXT:  # (member names are strings, and distinct)
        canon = repr(sorted(props.items()))
    else:
        canon = repr(sorted(zip(map(str, props), map(str, props.values()), strict=True)))
    return hashlib.sha1(canon.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]


def feature_event(feature: Any, ident: str) -> Event:
    """One GeoJSON Feature with perimeter properties as a perimeter event."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise RecordError("not a GeoJSON Feature", "schema")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise RecordError("properties must be an object", "schema")
    geometry = coords.geometry(feature.get("geometry"))
    if geometry["type"] not in POLYGONAL:
        raise RecordError(f"a perimeter must be a Polygon, not {geometry['type']}", "invalid_geometry")
    start = local_time(props.get("DATE_DEBUT"), "DATE_DEBUT")
    end = local_time(props.get("DATE_FIN"), "DATE_FIN")
    timing.window(start, end)
    zone = text(props.get("TYPE_PERI"), "TYPE_PERI", 64)
    name = text(props.get("EVENEMENT"), "EVENEMENT", 400)
    title = " — ".join(p for p in (name, f"périmètre {zone}" if zone else None) if p)
    if set(map(type, props.values())) <= _SCALARS:
        details = dict(props)
    else:
        details = {str(k): v for k, v in props.items() if isinstance(v, str | int | float | bool)}
    return Event(
        id=f"{SOURCE}:{ident}",
        source=SOURCE,
        kind="perimeter",
        geometry=geometry,
        valid_from=start,
        valid_until=end,
        title=title or None,
        severity=SEVERITY.get((zone or "").lower()),
        details=details,
    )


def _ident(feature: Any, seen: dict[str, int]) -> str:
    own = feature.get("id") if isinstance(feature, dict) else None
    props = feature.get("properties") if isinstance(feature, dict) else None
    base = str(own)[:200] if own is not None else stable_key(props if isinstance(props, dict) else {})
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}-{seen[base]}"


def iter_perimeters(stream: BinaryIO) -> Iterator[Item]:
    """A GeoJSON FeatureCollection of perimeters as events, feature by feature as read."""
    first, stream = sniff(stream)
    if first != b"{":
        raise FeedFormatError('not a GeoJSON FeatureCollection (no "type": "FeatureCollection")')
    seen: dict[str, int] = {}
    kind: Any = None
    has_features = False
    for what, key, value in jsonstream.walk(stream, "perimeters GeoJSON", ("features", "item")):
        if what == "member" and key == "type":
            kind = value
            if kind != "FeatureCollection":
                raise FeedFormatError('not a GeoJSON FeatureCollection (no "type": "FeatureCollection")')
        elif what == "member" and key == "features":
            if value != jsonstream.ARRAY:
                raise FeedFormatError('FeatureCollection has no "features" array')
            has_features = True
        elif what == "record":
            if key >= MAX_RECORDS:
                raise FeedFormatError(f"FeatureCollection has over {MAX_RECORDS} features: split it")
            yield _feature_item(key, value, seen)
    if kind != "FeatureCollection":
        raise FeedFormatError('not a GeoJSON FeatureCollection (no "type": "FeatureCollection")')
    if not has_features:
        raise FeedFormatError('FeatureCollection has no "features" array')


def _feature_item(index: int, feature: Any, seen: dict[str, int]) -> Item:
    if isinstance(feature, RecordError):
        return reject(f"feature {index}", feature)
    ident = _ident(feature, seen)
    props = feature.get("properties") if isinstance(feature, dict) else None
    label = props.get("EVENEMENT") if isinstance(props, dict) else None
    where = f"feature {index}" + (f" ({str(label)[:80]})" if label else "")
    try:
        return feature_event(feature, ident)
    except RecordError as exc:
        return reject(where, exc, props)


@gc_paused
def parse_perimeters(data: bytes | str) -> list[Item]:
    """A FeatureCollection of perimeters held in memory as events; features without geometry rejected."""
    return collect(iter_perimeters, data)
