"""GeoJSON geometries of events, checked as the engine needs them: shape, WGS84, size and extent.

Every entry (the publish API, the feeds, ``corridor.events``, the rebuild from Redis) reads an
event's geometry through ``check_geometry``, so that what reaches the engine is bounded: at most
``max_vertices`` positions and ``max_extent_km`` across. Those bounds are where the cost is: the
event grid files an event in every cell of its bounding box, so one vertex at ``[0, 0]`` in a
Paris street (a common feed error) would ask for tens of GiB. A vertex far from the rest of its
own geometry is refused by name, like swapped coordinates, rather than as a vague "too large".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from schemas.errors import InvalidRecord

KM_PER_DEGREE = 111.195  # mean great-circle kilometres per degree of latitude


@dataclass(frozen=True, slots=True)
class GeometryLimits:
    """What one event's geometry may hold (``CORRIDOR_EVENT_MAX_VERTICES``, ``_MAX_EXTENT_KM``)."""

    max_vertices: int = 20_000
    max_extent_km: float = 60.0


DEFAULT_LIMITS = GeometryLimits()

# kind -> (nesting depth of its coordinates: 0 a position, 1 a list of them, ...; fewest positions
# in each innermost list)
_KINDS: dict[str, tuple[int, int]] = {
    "Point": (0, 1),
    "MultiPoint": (1, 1),
    "LineString": (1, 2),
    "MultiLineString": (2, 2),
    "Polygon": (2, 4),
    "MultiPolygon": (3, 4),
}
_PART_NAMES = {"LineString": "a LineString", "MultiLineString": "a LineString", "Polygon": "a polygon ring"}
_PART_NAMES["MultiPolygon"] = "a polygon ring"


def check_lonlat(lon: float, lat: float, path: str = "position") -> None:
    """Refuse a longitude, latitude pair outside WGS84, saying so when swapping the axes fixes it."""
    if -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0:
        return
    if -180.0 <= lat <= 180.0 and -90.0 <= lon <= 90.0:
        raise InvalidRecord(
            f"{path}: lon={lon} lat={lat} is impossible, but valid with the axes swapped: "
            "send longitude, latitude in the order the format defines",
            "swapped_coordinates",
        )
    raise InvalidRecord(f"{path}: lon={lon} lat={lat} is outside WGS84", "invalid_coordinates")


class _Walk:
    """Positions gathered from a geometry, refused as soon as one is wrong or there are too many."""

    __slots__ = ("lat", "limit", "lon")

    def __init__(self, limit: int) -> None:
        self.lon: list[float] = []
        self.lat: list[float] = []
        self.limit = limit

    def position(self, value: Any, path: str) -> None:
        if not isinstance(value, list | tuple):
            raise InvalidRecord(f"{path}: {_short(value)} is not a position [lon, lat]", "invalid_geometry")
        if not 2 <= len(value) <= 3:
            raise InvalidRecord(
                f"{path}: a position has 2 or 3 numbers, not {len(value)}", "invalid_geometry"
            )
        for number in value:
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise InvalidRecord(f"{path}: {_short(number)} is not a number", "invalid_coordinates")
            if not _finite(number):
                raise InvalidRecord(f"{path}: {_short(number)} is not a finite number", "invalid_coordinates")
        lon, lat = float(value[0]), float(value[1])
        check_lonlat(lon, lat, path)
        if len(self.lon) >= self.limit:
            raise InvalidRecord(
                f"geometry: over {self.limit:,} positions (CORRIDOR_EVENT_MAX_VERTICES): "
                "simplify it or split the event",
                "too_many_vertices",
            )
        self.lon.append(lon)
        self.lat.append(lat)

    def nested(self, value: Any, depth: int, fewest: int, kind: str, path: str) -> None:
        if depth == 0:
            self.position(value, path)
            return
        if not isinstance(value, list | tuple):
            raise InvalidRecord(f"{path}: {_short(value)} is not an array", "invalid_geometry")
        if depth == 1 and len(value) < fewest:
            part = _PART_NAMES.get(kind, "a part")
            raise InvalidRecord(f"{path}: {part} needs at least {fewest} positions", "invalid_geometry")
        if depth > 1 and not value:
            raise InvalidRecord(f"{path}: {kind} coordinates are empty", "invalid_geometry")
        if depth == 1 and len(value) + len(self.lon) > self.limit:
            self.position(value[0], f"{path}/0")  # a clear error for the first, then the count
            raise InvalidRecord(
                f"geometry: over {self.limit:,} positions (CORRIDOR_EVENT_MAX_VERTICES): "
                "simplify it or split the event",
                "too_many_vertices",
            )
        for index, item in enumerate(value):
            self.nested(item, depth - 1, fewest, kind, f"{path}/{index}")


def _finite(number: float) -> bool:
    """True for a number a float holds and that is not inf or NaN (an int beyond a float: False)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _walk(geometry: Any, walk: _Walk, path: str, inside: bool) -> None:
    if not isinstance(geometry, dict):
        raise InvalidRecord(
            f"{path}: must be a GeoJSON geometry object, not {_short(geometry)}", "invalid_geometry"
        )
    kind = geometry.get("type")
    if kind == "GeometryCollection" and not inside:
        members = geometry.get("geometries")
        if not isinstance(members, list) or not members:
            raise InvalidRecord(
                f"{path}/geometries: a GeometryCollection needs geometries", "invalid_geometry"
            )
        for index, member in enumerate(members):
            _walk(member, walk, f"{path}/geometries/{index}", True)
        return
    shape = _KINDS.get(kind) if isinstance(kind, str) else None
    if shape is None or not isinstance(kind, str):
        raise InvalidRecord(
            f"{path}/type: {_short(kind)} is not a supported geometry type", "unsupported_geometry"
        )
    depth, fewest = shape
    walk.nested(geometry.get("coordinates"), depth, fewest, kind, f"{path}/coordinates")


_INF = math.inf


def _gather(value: Any, depth: int, fewest: int, lon: list[float], lat: list[float]) -> bool:
    """Collect the positions of coordinates nested ``depth`` deep when each is a JSON list of plain
    numbers in WGS84 and none is ``[0, 0]``, without naming anything; False as soon as one is not."""
    if type(value) is not list:
        return False
    if depth == 0:
        value, depth, fewest = [value], 1, 1
    if depth > 1:
        return bool(value) and all(_gather(part, depth - 1, fewest, lon, lat) for part in value)
    if len(value) < fewest:
        return False
    for pos in value:
        if type(pos) is not list:
            return False
        size = len(pos)
        if size == 2:
            x, y = pos
        elif size == 3:
            x, y, z = pos
            if (type(z) is not float and type(z) is not int) or not -_INF < z < _INF:
                return False
        else:
            return False
        if (
            (type(x) is not float and type(x) is not int)
            or (type(y) is not float and type(y) is not int)
            or not -180.0 <= x <= 180.0
            or not -90.0 <= y <= 90.0
            or (x == 0 and y == 0)
        ):
            return False
        lon.append(x)
        lat.append(y)
    return True


class CheckedGeometry(dict[str, Any]):
    """A GeoJSON geometry whose every position a reader has already checked (finite WGS84 numbers,
    as many as each part needs), carrying what admission needs of them: its vertex count and
    bounding box, or no box when a position is ``[0, 0]``. ``check_geometry`` then applies the
    limits without walking the positions again; the box must be the positions' own (only the
    reader that checked them builds one)."""

    __slots__ = ("bounds", "vertices")

    def __init__(
        self, kind: str, coordinates: Any, vertices: int, bounds: tuple[float, float, float, float] | None
    ) -> None:
        super().__init__(type=kind, coordinates=coordinates)
        self.vertices = vertices
        self.bounds = bounds  # west, south, east, north

    def __reduce__(self) -> tuple[Any, ...]:
        return (CheckedGeometry, (self["type"], self["coordinates"], self.vertices, self.bounds))


def _quick(geometry: Any, limits: GeometryLimits) -> int | None:
    """The vertex count of a geometry that passes every check, found on the fast path (no paths
    built, no messages); None when the full walk must run, to accept it or to say what is wrong."""
    if type(geometry) is CheckedGeometry:
        bounds, count = geometry.bounds, geometry.vertices
        if bounds is None or count > limits.max_vertices:
            return None
        if count > 1 and _km(*bounds) > limits.max_extent_km:
            return None
        return count
    if type(geometry) is not dict:
        return None
    kind = geometry.get("type")
    shape = _KINDS.get(kind) if type(kind) is str else None
    if shape is None:
        return None
    lon: list[float] = []
    lat: list[float] = []
    if not _gather(geometry.get("coordinates"), shape[0], shape[1], lon, lat):
        return None
    count = len(lon)
    if count > limits.max_vertices:
        return None
    if count > 1 and _km(min(lon), min(lat), max(lon), max(lat)) > limits.max_extent_km:
        return None
    return count


def check_geometry(geometry: Any, limits: GeometryLimits = DEFAULT_LIMITS, path: str = "geometry") -> int:
    """Refuse a geometry the engine cannot use (InvalidRecord naming the position); its vertex count.

    Checked: the GeoJSON shape (Point, MultiPoint, LineString, MultiLineString, Polygon,
    MultiPolygon, or a GeometryCollection of those), every position a finite WGS84 lon/lat, no
    placeholder ``[0, 0]``, at most ``limits.max_vertices`` positions, no position far from the
    others, and at most ``limits.max_extent_km`` across. Most geometries pass a quick check; the
    others are walked position by position, which names what is wrong.
    """
    quick = _quick(geometry, limits)
    if quick is not None:
        return quick
    walk = _Walk(limits.max_vertices)
    _walk(geometry, walk, path, False)
    lon, lat = walk.lon, walk.lat
    for index, (x, y) in enumerate(zip(lon, lat, strict=True)):
        if x == 0.0 and y == 0.0:
            raise InvalidRecord(
                f"{path}: position {index} is [0, 0], a placeholder rather than a place: "
                "send the real position or leave the vertex out",
                "null_position",
            )
    if len(lon) > 1:
        _check_extent(lon, lat, limits.max_extent_km, path)
    return len(lon)


def _km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Distance in km, equirectangular: exact enough at the scale of the limits (tens of km)."""
    dx = (lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(dx, lat2 - lat1) * KM_PER_DEGREE


def _check_extent(lon: list[float], lat: list[float], limit_km: float, path: str) -> None:
    west, east, south, north = min(lon), max(lon), min(lat), max(lat)
    if _km(west, south, east, north) <= limit_km:
        return
    # Too wide: when a few vertices lie far from the middle of the others (their median), name the
    # first of them; a geometry wide all along is simply too large.
    mid_lon, mid_lat = sorted(lon)[len(lon) // 2], sorted(lat)[len(lat) // 2]
    far = [i for i, (x, y) in enumerate(zip(lon, lat, strict=True)) if _km(mid_lon, mid_lat, x, y) > limit_km]
    if far and 2 * len(far) < len(lon):
        index = far[0]
        x, y = lon[index], lat[index]
        swapped = -90.0 <= x <= 90.0 and _km(mid_lon, mid_lat, y, x) <= limit_km
        hint = (
            "with its axes swapped it lies among them: send longitude, latitude"
            if swapped
            else "a misplaced vertex: fix or remove it"
        )
        raise InvalidRecord(
            f"{path}: position {index} [{x}, {y}] is {_km(mid_lon, mid_lat, x, y):,.0f} km from the "
            f"geometry's other positions: {hint}",
            "swapped_coordinates" if swapped else "outlier_vertex",
        )
    raise InvalidRecord(
        f"{path}: spans {_km(west, south, east, north):,.0f} km, over the {limit_km:g} km an event may "
        "cover (CORRIDOR_EVENT_MAX_EXTENT_KM): split it into smaller events",
        "too_large",
    )


def route_line(
    value: Any, max_vertices: int, max_segment_km: float, path: str = "coordinates"
) -> list[tuple[float, float]]:
    """A route's line as (lon, lat) pairs, refused (InvalidRecord naming the position) when it is
    not at least two finite WGS84 positions, holds a placeholder ``[0, 0]``, has more than
    ``max_vertices`` positions or a segment longer than ``max_segment_km`` (a misplaced vertex)."""
    walk = _Walk(max_vertices)
    walk.nested(value, 1, 2, "LineString", path)
    line = list(zip(walk.lon, walk.lat, strict=True))
    for index, (lon, lat) in enumerate(line):
        if lon == 0.0 and lat == 0.0:
            raise InvalidRecord(
                f"{path}/{index}: [0, 0] is a placeholder rather than a place", "null_position"
            )
        if index and _km(*line[index - 1], lon, lat) > max_segment_km:
            raise InvalidRecord(
                f"{path}/{index}: [{lon}, {lat}] is {_km(*line[index - 1], lon, lat):,.0f} km from the "
                f"position before it (at most {max_segment_km:g} km): a misplaced vertex",
                "outlier_vertex",
            )
    return line


def position(value: Any, path: str = "position") -> tuple[float, float]:
    """One finite WGS84 [lon, lat] (or [lon, lat, z]) as (lon, lat); InvalidRecord otherwise."""
    walk = _Walk(1)
    walk.position(value, path)
    return walk.lon[0], walk.lat[0]
