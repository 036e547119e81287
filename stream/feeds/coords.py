"""Coordinates and GeoJSON geometries: validated, 2D, lon/lat, swapped axes caught."""

from __future__ import annotations

import math
from operator import itemgetter
from statistics import median
from typing import Any

from schemas.geometry import CheckedGeometry, check_lonlat
from stream.feeds.base import RecordError

MAX_POSITIONS = 100_000
EARTH_RADIUS_KM = 6371.0088
FAR_KM = 1000.0
"""A record this far from the feed's median position, as given, is suspect..."""
NEAR_KM = 300.0
"""...and is called swapped when exchanging its axes brings it this close."""


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"coordinate {value!r} is not a number", "invalid_coordinates")
    number = float(value)
    if not math.isfinite(number):
        raise RecordError(f"coordinate {value!r} is not finite", "invalid_coordinates")
    return number


def lonlat(lon: float, lat: float) -> list[float]:
    """A validated [lon, lat] position; swapped or impossible values raise RecordError."""
    check_lonlat(lon, lat)
    return [lon, lat]


def _position(value: Any) -> list[float]:
    if not isinstance(value, list | tuple) or not 2 <= len(value) <= 3:
        raise RecordError(f"position {value!r} is not [lon, lat] or [lon, lat, z]", "schema")
    return lonlat(_number(value[0]), _number(value[1]))


class _Box:
    """The vertex count and bounding box of the lines of one geometry, as they are checked."""

    __slots__ = ("count", "east", "north", "null", "south", "west")

    def __init__(self) -> None:
        self.count = 0
        self.west = self.south = math.inf
        self.east = self.north = -math.inf
        self.null = False

    def add(self, lons: list[float], lats: list[float]) -> None:
        self.count += len(lons)
        self.west, self.east = min(self.west, *lons), max(self.east, *lons)
        self.south, self.north = min(self.south, *lats), max(self.north, *lats)
        if 0.0 in lons and not self.null:
            self.null = any(lon == 0.0 and lat == 0.0 for lon, lat in zip(lons, lats, strict=True))

    def include(self, geometry: CheckedGeometry) -> None:
        """Add a geometry read before (a member of a collection): its count and box."""
        self.count += geometry.vertices
        if geometry.bounds is None:
            self.null = True
            return
        west, south, east, north = geometry.bounds
        self.west, self.south = min(self.west, west), min(self.south, south)
        self.east, self.north = max(self.east, east), max(self.north, north)

    def geometry(self, kind: str, coordinates: Any) -> CheckedGeometry:
        bounds = None if self.null else (self.west, self.south, self.east, self.north)
        return CheckedGeometry(kind, coordinates, self.count, bounds)


def _line(value: Any, minimum: int, what: str, box: _Box) -> list[list[float]]:
    """A line checked position by position: the path of lines ``_plain_lines`` refused, whose
    refusal names the position and the reason."""
    if not isinstance(value, list) or len(value) < minimum:
        raise RecordError(f"a {what} needs at least {minimum} positions", "invalid_geometry")
    if len(value) > MAX_POSITIONS:
        raise RecordError(f"a {what} has over {MAX_POSITIONS} positions", "invalid_geometry")
    line = [_position(p) for p in value]
    box.add([p[0] for p in line], [p[1] for p in line])
    return line


def _plain_lines(lines: list[Any], minimum: int, box: _Box) -> list[list[list[float]]] | None:
    """The lines with their positions as [lon, lat] floats, when each line holds ``minimum`` to
    MAX_POSITIONS positions and every one is [lon, lat] or [lon, lat, z] with finite numbers
    inside WGS84, added to ``box`` (about four times faster than checking them one by one);
    None, the box untouched, sends the lines to ``_line`` one by one.

    The lines of a geometry go through one call, their box kept in local variables (a DATEX II
    location or a MultiPolygon has many short lines), and one Python loop does the least per
    position: C-level passes over the positions (a set of their types, ``zip(*value)`` into
    columns, ``min``/``max``) cost 20 to 35 ns a position each, as much as a step of this loop,
    so several of them cost more than the loop they replace."""
    west, south, east, north = box.west, box.south, box.east, box.north
    count = 0
    checked: list[list[list[float]]] = []
    for value in lines:
        if type(value) is not list or not minimum <= len(value) <= MAX_POSITIONS:
            return None
        floats = flat = True
        for position in value:
            if type(position) is not list:
                return None
            size = len(position)
            if size == 2:  # noqa: PLR2004 - [lon, lat]
                lon, lat = position
            elif size == 3:  # noqa: PLR2004 - [lon, lat, z]
                lon, lat, _ = position
                flat = False
            else:
                return None
            if type(lon) is not float or type(lat) is not float:
                if type(lon) not in _NUMBERS or type(lat) not in _NUMBERS:
                    return None
                floats = False
            if lon != lon or lat != lat:  # NaN; the range is checked on the box, once
                return None
            if lon < west:
                west = lon
            if lon > east:
                east = lon
            if lat < south:
                south = lat
            if lat > north:
                north = lat
        count += len(value)
        if not floats:
            checked.append([[float(p[0]), float(p[1])] for p in value])
        elif flat:
            checked.append(list(value))
        else:  # [lon, lat] copies: the caller's positions are left as they are
            checked.append(list(map(_XY, value)))
    if not (-180.0 <= west and east <= 180.0 and -90.0 <= south and north <= 90.0):  # noqa: PLR2004
        return None  # a position outside WGS84 (or infinite) widened the box past it
    # (0, 0) is looked for only when the box holds it (a vertex there widens the box to it)
    if west <= 0.0 <= east and south <= 0.0 <= north and not box.null:
        box.null = any(p[0] == 0 and p[1] == 0 for line in checked for p in line)
    box.west, box.south, box.east, box.north = west, south, east, north
    box.count += count
    return checked


def _lines(value: list[Any], minimum: int, what: str, box: _Box) -> list[list[list[float]]]:
    """Lines (of a MultiLineString, or rings of a polygon), on the fast path when it takes them."""
    return _plain_lines(value, minimum, box) or [_line(c, minimum, what, box) for c in value]


_NUMBERS = frozenset({int, float})
_XY = itemgetter(slice(0, 2))  # [lon, lat] of [lon, lat, z], in C


def _many(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise RecordError(f"{what} coordinates must be a non-empty array", "invalid_geometry")
    return value


def _coordinates(kind: str, coords: Any, box: _Box) -> Any:
    if kind == "Point":
        position = _position(coords)
        box.add([position[0]], [position[1]])
        return position
    if kind == "LineString":
        return _lines([coords], 2, "LineString", box)[0]
    if kind == "MultiLineString":
        return _lines(_many(coords, kind), 2, "LineString", box)
    if kind == "Polygon":
        return _lines(_many(coords, kind), 4, "polygon ring", box)
    if kind == "MultiPolygon":
        return [_lines(_many(p, kind), 4, "polygon ring", box) for p in _many(coords, kind)]
    raise RecordError(f"geometry type {kind!r} is not supported", "unsupported_geometry")


_MULTI = {"LineString": "MultiLineString", "Polygon": "MultiPolygon"}


def _collection(parts: Any) -> CheckedGeometry:
    """A GeometryCollection of lines (or of polygons) as one Multi* geometry."""
    if not isinstance(parts, list) or not parts:
        raise RecordError("GeometryCollection has no geometries", "missing_geometry")
    members = [geometry(p) for p in parts]
    single = {m["type"].removeprefix("Multi") for m in members}
    if len(single) != 1 or (kind := single.pop()) not in _MULTI:
        raise RecordError(
            "GeometryCollection mixes geometry types; send lines or polygons only",
            "unsupported_geometry",
        )
    coords: list[Any] = []
    box = _Box()
    for m in members:
        coords.extend(m["coordinates"] if m["type"].startswith("Multi") else [m["coordinates"]])
        box.include(m)
    return box.geometry(_MULTI[kind], coords)


def geometry(value: Any) -> CheckedGeometry:
    """A GeoJSON geometry validated and flattened to 2D lon/lat (RecordError when unusable).

    It comes back as a ``CheckedGeometry``: its vertex count and bounding box, taken here from the
    positions just checked, spare admission a second walk over them."""
    if value is None:
        raise RecordError("record has no geometry", "missing_geometry")
    if not isinstance(value, dict):
        raise RecordError("geometry must be a GeoJSON object", "invalid_geometry")
    kind = value.get("type")
    if kind == "GeometryCollection":
        return _collection(value.get("geometries"))
    if not isinstance(kind, str):
        raise RecordError("geometry has no type", "invalid_geometry")
    box = _Box()
    return box.geometry(kind, _coordinates(kind, value.get("coordinates"), box))


def first_position(geom: dict[str, Any]) -> tuple[float, float]:
    """A representative (lon, lat) of a validated geometry: its first position."""
    coords: Any = geom["coordinates"]
    while isinstance(coords[0], list):
        coords = coords[0]
    return float(coords[0]), float(coords[1])


def haversine_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def swapped_outliers(points: list[tuple[float, float]]) -> set[int]:
    """Indices of (lon, lat) points far from the feed's median that swapping brings back."""
    if len(points) < 3:
        return set()
    mlon = median(p[0] for p in points)
    mlat = median(p[1] for p in points)
    found = set()
    for index, (lon, lat) in enumerate(points):
        if haversine_km(lon, lat, mlon, mlat) > FAR_KM and -90.0 <= lon <= 90.0:
            if haversine_km(lat, lon, mlon, mlat) < NEAR_KM:
                found.add(index)
    return found


SWAPPED_FEED_ERROR = (
    "its position is {far:.0f} km from the feed's other records but lies among them with "
    "latitude and longitude exchanged: the axes look swapped; send the order the format defines"
)
