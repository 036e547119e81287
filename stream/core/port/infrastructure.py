"""Port infrastructure as data: movable bridges and locks, their water approaches, and terminals.

The file is a GeoJSON FeatureCollection; ``properties.type`` says what each feature is:

- ``bridge`` / ``lock``: the road geometry that closes (LineString or MultiLineString), ``id``,
  ``name``, ``lead_minutes`` (road closed before the vessel reaches the structure),
  ``closure_minutes`` (after it reaches it, until the road reopens), ``opening`` (which vessels
  need it: ``min_length_m``, ``ship_types`` as AIS type ranges ``[[70, 79], …]``, ``clearance_m``
  the air draught under the closed structure), ``note``.
- ``approach``: the channel axis leading to a structure (LineString ordered *toward* it, its last
  point where vessels cross), ``structure``, ``half_width_m``, ``course_tolerance_deg``,
  ``min_speed_kn``. The direction of approach is the axis's direction at the vessel's position.
- ``terminal``: the truck gate (Point), ``id``, ``name``, ``locode`` (UN/LOCODE), ``note``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from stream.core.geo import DEFAULT_CRS, project_xy
from stream.core.port.tracks import VesselTrack

BUNDLED = "port-infrastructure.geojson"
STRUCTURE_TYPES = {"bridge": "bridge_lift", "lock": "lock_closure"}
_LOCODE_LEN = 5


class InfrastructureError(ValueError):
    """The infrastructure file is invalid; ``problems`` lists each 'where: what'."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class OpeningRule:
    """Which vessels need the structure to open (a lift, a swing, a lock cycle)."""

    min_length_m: float | None = None
    ship_types: tuple[tuple[int, int], ...] = ()
    clearance_m: float | None = None

    def needs_opening(self, track: VesselTrack) -> bool:
        """Air draught over the clearance when known; else length; else ship type (length unknown)."""
        if self.clearance_m is not None and track.air_draught_m is not None:
            return track.air_draught_m > self.clearance_m
        if track.length_m is not None and self.min_length_m is not None:
            return track.length_m >= self.min_length_m
        if track.length_m is None and track.ship_type is not None:
            return any(lo <= track.ship_type <= hi for lo, hi in self.ship_types)
        return False


@dataclass(frozen=True, slots=True, eq=False)
class Approach:
    """A water approach to a structure: the channel axis in lon/lat and in metres."""

    id: str
    structure_id: str
    coordinates: tuple[tuple[float, float], ...]
    x: tuple[float, ...]
    y: tuple[float, ...]
    half_width_m: float = 150.0
    course_tolerance_deg: float = 45.0
    min_speed_kn: float = 2.0
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # lon/lat, widened by half_width

    @property
    def length_m(self) -> float:
        """Length of the axis in metres."""
        return float(np.hypot(np.diff(self.x), np.diff(self.y)).sum())


@dataclass(frozen=True, slots=True, eq=False)
class Structure:
    """A movable bridge or a lock: the road it closes and the approaches that lead to it."""

    id: str
    name: str
    type: str
    road: dict[str, Any]
    lead_minutes: float
    closure_minutes: float
    opening: OpeningRule
    approaches: tuple[Approach, ...] = ()
    note: str | None = None

    @property
    def event_kind(self) -> str:
        """``bridge_lift`` or ``lock_closure``."""
        return STRUCTURE_TYPES[self.type]


@dataclass(frozen=True, slots=True)
class Terminal:
    """A port terminal: where trucks are bound (route ``destination`` = its id)."""

    id: str
    name: str
    locode: str
    gate: tuple[float, float]
    note: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Infrastructure:
    """Every structure (by id) and terminal (by id) of an infrastructure file."""

    structures: dict[str, Structure] = field(default_factory=dict)
    terminals: dict[str, Terminal] = field(default_factory=dict)
    crs: str = DEFAULT_CRS


def bundled_path() -> Path:
    """The default infrastructure file shipped with Corridor (the Seine axis)."""
    return Path(str(resources.files("stream").joinpath("data", BUNDLED)))


def load(path: Path | str | None = None, crs: str = DEFAULT_CRS) -> Infrastructure:
    """Read and validate an infrastructure file (the bundled one when ``path`` is None)."""
    source = Path(path) if path is not None else bundled_path()
    try:
        doc = json.loads(source.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise InfrastructureError([f"{source}: {exc}"]) from None
    return parse(doc, crs)


class _Checker:
    """Collects problems while reading the properties of one feature."""

    def __init__(self, prefix: str, props: dict[str, Any], problems: list[str]) -> None:
        self.prefix, self.props, self.problems = prefix, props, problems

    def text(self, name: str, required: bool = True) -> str | None:
        value = self.props.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            self.problems.append(f"{self.prefix}.{name}: must be non-empty text")
            return None
        return value.strip()

    def number(self, name: str, default: float | None, positive: bool = True) -> float | None:
        value = self.props.get(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.problems.append(f"{self.prefix}.{name}: must be a number")
            return default
        if positive and value <= 0:
            self.problems.append(f"{self.prefix}.{name}: must be positive")
            return default
        return float(value)


def _positions(geometry: Any) -> list[list[float]] | None:
    """All positions of a Point/LineString/MultiLineString, or None when malformed."""
    if not isinstance(geometry, dict):
        return None
    kind = geometry.get("type")
    coords: Any = geometry.get("coordinates")
    found: list[Any]
    try:
        if kind == "Point":
            found = [coords]
        elif kind == "LineString":
            found = list(coords)
        elif kind == "MultiLineString":
            found = [p for part in coords for p in part]
        else:
            return None
        points = [[float(p[0]), float(p[1])] for p in found]
    except (TypeError, ValueError, IndexError):
        return None
    ok = all(-180 <= lon <= 180 and -90 <= lat <= 90 for lon, lat in points)
    return points if ok and points else None


def _opening(check: _Checker) -> OpeningRule:
    where = f"{check.prefix}.opening"
    raw = check.props.get("opening") or {}
    if not isinstance(raw, dict):
        check.problems.append(f"{where}: must be an object")
        return OpeningRule()
    sub = _Checker(where, raw, check.problems)
    types: list[tuple[int, int]] = []
    for item in raw.get("ship_types") or []:
        if isinstance(item, int) and not isinstance(item, bool):
            types.append((item, item))
        elif isinstance(item, list) and len(item) == 2 and all(isinstance(v, int) for v in item):
            types.append((int(item[0]), int(item[1])))
        else:
            check.problems.append(f"{where}.ship_types: {item!r} is not a type or a [low, high] range")
    rule = OpeningRule(sub.number("min_length_m", None), tuple(types), sub.number("clearance_m", None))
    if rule.min_length_m is None and not rule.ship_types and rule.clearance_m is None:
        check.problems.append(f"{where}: give min_length_m, ship_types or clearance_m")
    return rule


def _approach(where: str, check: _Checker, points: list[list[float]], crs: str) -> Approach | None:
    ident, structure = check.text("id"), check.text("structure")
    half = check.number("half_width_m", 150.0)
    tolerance = check.number("course_tolerance_deg", 45.0)
    min_speed = check.number("min_speed_kn", 2.0)
    if len(points) < 2:
        check.problems.append(f"{where}.geometry: an approach is a LineString of at least two points")
        return None
    if None in (ident, structure, half, tolerance, min_speed):
        return None
    arr = np.asarray(points)
    x, y = project_xy(arr[:, 0], arr[:, 1], crs)
    pad_lat = float(half or 0) / 111_000.0  # degrees of latitude; widened by cos(lat) for longitude
    pad_lon = pad_lat / max(0.1, math.cos(math.radians(float(arr[:, 1].mean()))))
    return Approach(
        id=str(ident),
        structure_id=str(structure),
        coordinates=tuple((float(a), float(b)) for a, b in points),
        x=tuple(float(v) for v in x),
        y=tuple(float(v) for v in y),
        half_width_m=float(half or 0),
        course_tolerance_deg=float(tolerance or 0),
        min_speed_kn=float(min_speed or 0),
        bbox=(
            float(arr[:, 0].min()) - pad_lon,
            float(arr[:, 1].min()) - pad_lat,
            float(arr[:, 0].max()) + pad_lon,
            float(arr[:, 1].max()) + pad_lat,
        ),
    )


def parse(doc: Any, crs: str = DEFAULT_CRS) -> Infrastructure:
    """Validate a decoded infrastructure FeatureCollection; InfrastructureError lists every problem."""
    problems: list[str] = []
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise InfrastructureError(["(file): must be a GeoJSON FeatureCollection"])
    structures: dict[str, Structure] = {}
    approaches: list[Approach] = []
    terminals: dict[str, Terminal] = {}
    for i, feature in enumerate(doc.get("features") or []):
        where = f"features[{i}]"
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(props, dict):
            problems.append(f"{where}.properties: must be an object")
            continue
        check = _Checker(f"{where}.properties", props, problems)
        kind = props.get("type")
        points = _positions(feature.get("geometry"))
        if points is None:
            problems.append(f"{where}.geometry: must be a Point, LineString or MultiLineString in lon/lat")
            continue
        if kind in STRUCTURE_TYPES:
            ident, name = check.text("id"), check.text("name")
            lead, closure = check.number("lead_minutes", 15.0), check.number("closure_minutes", 30.0)
            geometry = feature["geometry"]
            if geometry.get("type") == "Point":
                problems.append(f"{where}.geometry: the road that closes is a LineString")
            rule = _opening(check)
            if ident and name and lead and closure and geometry.get("type") != "Point":
                if ident in structures:
                    problems.append(f"{where}.properties.id: {ident!r} is used twice")
                structures[ident] = Structure(
                    ident, name, str(kind), geometry, lead, closure, rule, (), check.text("note", False)
                )
        elif kind == "approach":
            approach = _approach(where, check, points, crs)
            if approach is not None:
                approaches.append(approach)
        elif kind == "terminal":
            ident, name, locode = check.text("id"), check.text("name"), check.text("locode")
            if locode and (len(locode) != _LOCODE_LEN or not locode.isalnum() or not locode.isupper()):
                problems.append(f"{where}.properties.locode: {locode!r} is not a UN/LOCODE like FRLEH")
            if feature["geometry"].get("type") != "Point":
                problems.append(f"{where}.geometry: a terminal gate is a Point")
            elif ident and name and locode:
                gate = (points[0][0], points[0][1])
                terminals[ident] = Terminal(ident, name, locode, gate, check.text("note", False))
        else:
            problems.append(f"{where}.properties.type: {kind!r} is not bridge, lock, approach or terminal")
    for approach in approaches:
        owner = structures.get(approach.structure_id)
        if owner is None:
            problems.append(f"approach {approach.id!r}: structure {approach.structure_id!r} is not defined")
            continue
        structures[owner.id] = _with_approach(owner, approach)
    if problems:
        raise InfrastructureError(problems)
    return Infrastructure(structures, terminals, crs)


def _with_approach(structure: Structure, approach: Approach) -> Structure:
    return Structure(
        structure.id,
        structure.name,
        structure.type,
        structure.road,
        structure.lead_minutes,
        structure.closure_minutes,
        structure.opening,
        (*structure.approaches, approach),
        structure.note,
    )
