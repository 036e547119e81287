"""The fast event reader agrees with the JSON Schema validator it stands in for, record by record.

``schemas.event_shape`` (msgspec) answers yes or no for every field but the geometry; the JSON
Schema validator (jsonschema) is the contract. On generated valid events and on mutations of them,
both accept or both refuse, and both name the same field. ``native_event`` (the reader of the API
and of ``corridor parse --format native``) gives what the validator plus ``Event.from_dict`` give:
the same event, or the same error and reason. The geometry's quick check answers as its full walk.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import geometry as geometry_module
from schemas.errors import InvalidRecord
from schemas.event import Event
from schemas.event_shape import fits, shape_error
from schemas.geometry import GeometryLimits, check_geometry
from schemas.validate import errors
from stream.feeds.native import native_event
from tests.support.feeds import JSON_VALUES, PROPERTY

STUB = {"type": "Point", "coordinates": [0, 0]}
KINDS = ["closure", "restriction", "perimeter", "hazard", "roadworks", "bridge_lift", "lock_closure"]
DAYS = ["everyday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

lon = st.floats(2.2, 2.5)
lat = st.floats(48.8, 48.9)
position = st.tuples(lon, lat).map(list)
geometries = st.one_of(
    position.map(lambda p: {"type": "Point", "coordinates": p}),
    st.lists(position, min_size=2, max_size=6).map(lambda c: {"type": "LineString", "coordinates": c}),
    st.lists(st.lists(position, min_size=2, max_size=4), min_size=1, max_size=3).map(
        lambda c: {"type": "MultiLineString", "coordinates": c}
    ),
    st.lists(position, min_size=3, max_size=5).map(
        lambda ring: {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
    ),
)
instants = st.one_of(
    st.none(),
    st.sampled_from(["2024-07-26T08:00:00+02:00", "2024-07-26T06:00Z", "2024-07-26T08:00:00.25-01:30"]),
    st.datetimes(timezones=st.just(None)).map(lambda d: d.isoformat(timespec="seconds") + "Z"),
)
slots = st.sampled_from(["00:00-24:00", "07:30-09:00", "18:00-22:00", "23:59-24:00"])
texts = st.text(max_size=12)
vehicles = st.fixed_dictionaries(
    {},
    optional={
        "max_weight_t": st.none() | st.floats(0, 60) | st.integers(0, 60),
        "max_height_m": st.none() | st.floats(0, 5),
        "max_width_m": st.none() | st.floats(0, 5),
        "max_length_m": st.none() | st.floats(0, 30),
        "critair": st.none() | st.lists(st.sampled_from(["0", "1", "2", "3", "4", "5", "nc"]), max_size=7),
        "hazmat": st.none() | st.booleans(),
    },
)
valid_events = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=20).map(lambda t: "test:" + t),
        "source": st.from_regex(r"[A-Za-z0-9_.:-]{1,10}", fullmatch=True),
        "kind": st.sampled_from(KINDS),
        "geometry": geometries,
        "valid_from": instants,
        "valid_until": st.none(),
        "status": st.sampled_from(["active", "cancelled"]),
    },
    optional={
        "direction": st.sampled_from(["both", "forward"]),
        "schedule": st.none() | st.dictionaries(st.sampled_from(DAYS), st.lists(slots, max_size=3)),
        "timezone": st.sampled_from(["Europe/Paris", "UTC", "America/New_York"]),
        "vehicles": st.none() | vehicles,
        "title": st.none() | texts,
        "street": st.none() | texts,
        "severity": st.sampled_from([None, "low", "medium", "high"]),
        "updated_at": instants,
        "terminal": st.none() | texts,
        "details": st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=3),
    },
)

# Values that break a field in the ways publishers do: wrong types, empty or long strings, near
# misses of patterns and enums, numbers where strings go, out-of-range measures.
SPECIMENS: list[Any] = [
    "",
    "x" * 65,
    "x" * 257,
    "x" * 513,
    "a b",
    "dialog:ok\n",
    "2024-07-26 08:00:00+02:00",
    "2024-07-26T08:00:00",
    "2024-07-26T08:00:00+0200",
    "2024-07-26T08:00:00+02:00\n",
    "2024-13-45T99:99:99Z",
    "07:30-9:00",
    "07:30-09:00\n",
    "24:00-24:00",
    "Europe/Nowhere",
    "Closure",
    "ACTIVE",
    "NC",
    -1,
    -0.5,
    1e308,
    2**64,
    True,
    [],
    {},
    ["7"],
    ["nc", "nc"],
    ["nc"] * 8,
    ["07:30-09:00"] * 24,
    ["07:30-09:00"] * 25,
    {"monday": ["07:30-09:00"]},
    {"Monday": []},
    {"monday": ["x"]},
    {"max_weight_t": -1},
    {"hazmat": "yes"},
    {"critair": ["6"]},
    {"axles": 3},
    None,
    0,
    1,
    2.5,
    "x",
    "low",
    "forward",
    "UTC",
]
HOSTILE = st.one_of(JSON_VALUES, st.sampled_from(SPECIMENS))
FIELDS = [
    "id",
    "source",
    "kind",
    "valid_from",
    "valid_until",
    "status",
    "direction",
    "schedule",
    "timezone",
    "vehicles",
    "title",
    "street",
    "severity",
    "updated_at",
    "terminal",
    "details",
    "extra",
]


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with one to three fields replaced by hostile values, removed, or nested ones broken."""
    event = draw(valid_events)
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(FIELDS))
        action = draw(st.sampled_from(["replace", "remove", "nested"]))
        if action == "remove":
            event.pop(field, None)
        elif action == "nested" and field in ("vehicles", "schedule"):
            inner = {"vehicles": "max_weight_t", "schedule": "monday"}[field]
            key = draw(st.sampled_from([inner, "critair", "hazmat", "everyday", "other"]))
            event[field] = {key: draw(HOSTILE)}
        else:
            event[field] = draw(HOSTILE)
    return event


def schema_errors(record: Any) -> list[str]:
    """The JSON Schema validator's errors, the geometry left out as the reader leaves it out."""
    shown = {**record, "geometry": STUB} if isinstance(record, dict) and "geometry" in record else record
    return errors("event", shown)


def named_field(message: str) -> str:
    """The top-level field a 'field/path: message' error names ('(record)' for the object itself)."""
    return message.split(":", 1)[0].split("/", 1)[0]


def shape_field(message: str) -> str:
    """The top-level field msgspec's error names ("... - at `$.vehicles.hazmat`"), '(record)' for
    the object itself (an unknown or missing field, not an object)."""
    found = re.search(r"`\$\.([A-Za-z_]+)", message)
    return found.group(1) if found else "(record)"


def reference(record: Any) -> Event | tuple[str, str]:
    """What the reader gave before the quick check: the JSON Schema, then ``Event.from_dict``."""
    problems = schema_errors(record)
    if problems:
        return "; ".join(problems[:10]), "schema"
    try:
        return Event.from_dict(record)
    except InvalidRecord as exc:
        return exc.error, exc.reason


def fast(record: Any) -> Event | tuple[str, str]:
    """What the reader gives now."""
    try:
        return native_event(record)
    except InvalidRecord as exc:
        return exc.error, exc.reason


def agree(record: dict[str, Any]) -> None:
    """The shape and the schema accept or refuse together, naming the same field; the reader's
    answer is the reference's."""
    problems = schema_errors(record)
    assert fits(record) == (problems == []), (problems, shape_error(record))
    if problems:
        named = shape_field(shape_error(record) or "")
        assert named in {named_field(p) for p in problems}, (shape_error(record), problems)
    assert fast(record) == reference(record)


@PROPERTY
@given(valid_events)
def test_valid_events_pass_both(record: dict[str, Any]) -> None:
    """Generated valid events pass the schema and the quick check alike, and read as before."""
    assert schema_errors(record) == []
    agree(record)


@PROPERTY
@given(mutated_events())
def test_mutated_events_are_judged_alike(record: dict[str, Any]) -> None:
    """Events with fields replaced, removed or broken inside: accepted or refused alike, the same
    field named, the same error and reason from the reader as from the schema and from_dict."""
    agree(record)


BASE = {
    "id": "test:1",
    "source": "test",
    "kind": "closure",
    "geometry": {"type": "Point", "coordinates": [2.35, 48.85]},
    "valid_from": "2024-07-26T08:00:00+02:00",
    "valid_until": None,
    "status": "active",
}
VEHICLE_KEYS = ["max_weight_t", "max_height_m", "max_width_m", "max_length_m", "critair", "hazmat", "axles"]


@pytest.mark.parametrize("field", FIELDS)
def test_every_specimen_in_every_field(field: str) -> None:
    """Each specimen value in each field (and inside vehicles and schedule): judged alike."""
    for value in SPECIMENS:
        agree({**BASE, field: value})
        if field == "vehicles":
            for key in VEHICLE_KEYS:
                agree({**BASE, field: {key: value}})
                agree({**BASE, field: {key: [value]}})
        if field == "schedule":
            for day in ("monday", "everyday", "Monday"):
                agree({**BASE, field: {day: value}})
                agree({**BASE, field: {day: [value]}})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "party"}, "kind"),
        ({"valid_from": "2024-07-26T08:00:00"}, "valid_from"),
        ({"valid_until": "2024-07-26T08:00:00+02:00\n"}, None),
        ({"extra": 1}, "(record)"),
        ({"vehicles": {"max_weight_t": -1}}, "vehicles"),
        ({"vehicles": {"axles": 3}}, "vehicles"),
        ({"schedule": {"monday": ["7:30-09:00"]}}, "schedule"),
        ({"timezone": None}, "timezone"),
        ({"details": None}, "details"),
        ({"source": "a b"}, "source"),
        ({"title": "x" * 513}, "title"),
    ],
)
def test_known_cases(change: dict[str, Any], field: str | None) -> None:
    """A table of the usual mistakes: the field each one names (None: the schema lets it through)."""
    record = {**BASE, **change}
    agree(record)
    if field is None:
        assert fits(record)
    else:
        assert not fits(record) and shape_field(shape_error(record) or "") == field


def test_missing_required_field() -> None:
    """A record without status is refused by both, the message from the schema."""
    record = {"id": "t:1", "source": "t", "kind": "closure", "geometry": STUB}
    record |= {"valid_from": None, "valid_until": None}
    assert not fits(record)
    agree(record)
    assert "'status' is a required property" in str(fast(record))


# Geometries: the quick check accepts only what the full walk accepts, with the same count.
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-200, 200),
    st.integers(-200, 200),
    st.sampled_from([0, 0.0, True, 2**70, "2.3", None]),
)
raw_positions = st.one_of(
    position,
    st.lists(numbers, min_size=1, max_size=4),
    st.tuples(lon, lat),
    st.just([0, 0]),
    st.tuples(lat, lon).map(list),
)
raw_geometries = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "Box"]),
        "coordinates": st.one_of(
            raw_positions,
            st.lists(raw_positions, max_size=6),
            st.lists(st.lists(raw_positions, max_size=5), max_size=3),
            st.lists(st.lists(st.lists(raw_positions, max_size=5), max_size=2), max_size=2),
        ),
    }
)


def walked(geometry: Any, limits: GeometryLimits, monkeypatch: pytest.MonkeyPatch) -> int | tuple[str, str]:
    """check_geometry's answer with the quick check switched off (the full walk alone)."""
    with monkeypatch.context() as patch:
        patch.setattr(geometry_module, "_quick", lambda geometry, limits: None)
        try:
            return check_geometry(geometry, limits)
        except InvalidRecord as exc:
            return exc.error, exc.reason


@PROPERTY
@given(raw_geometries, st.sampled_from([GeometryLimits(), GeometryLimits(max_vertices=4, max_extent_km=5)]))
def test_quick_geometry_check_answers_as_the_walk(geometry: dict[str, Any], limits: GeometryLimits) -> None:
    """For any geometry, check_geometry (quick check first) gives the full walk's count or error."""
    with pytest.MonkeyPatch.context() as patch:
        assert answered(geometry, limits) == walked(geometry, limits, patch)


def answered(geometry: Any, limits: GeometryLimits) -> int | tuple[str, str]:
    """check_geometry's answer as it runs: the count, or the error and reason."""
    try:
        return check_geometry(geometry, limits)
    except InvalidRecord as exc:
        return exc.error, exc.reason


def test_quick_geometry_check_is_used() -> None:
    """A plain LineString is counted without the walk (which would otherwise run for every event)."""
    line = {"type": "LineString", "coordinates": [[2.35, 48.85], [2.36, 48.86], [2.37, 48.87, 35.0]]}
    assert geometry_module._quick(line, GeometryLimits()) == 3
    assert (
        geometry_module._quick({**line, "coordinates": [[2.35, math.nan], [2.36, 48.86]]}, GeometryLimits())
        is None
    )


# Geometries read by the feeds' coordinate reader carry their count and box: admission uses them
# instead of walking the positions, and must answer exactly as the walk does on the same content.
wide_positions = st.one_of(
    st.tuples(st.floats(-180, 180), st.floats(-90, 90)).map(list),
    st.tuples(st.integers(-180, 180), st.integers(-90, 90)).map(list),
    st.tuples(st.floats(-180, 180), st.floats(-90, 90), st.floats(-1e3, 1e3)).map(list),
    st.just([0, 0]),
    st.just([0.0, 0.0, 12.0]),
    st.tuples(st.floats(2.2, 2.21), st.floats(48.8, 48.81)).map(list),
)
lines = st.lists(wide_positions, min_size=4, max_size=7)
readable = st.one_of(
    wide_positions.map(lambda p: {"type": "Point", "coordinates": p}),
    lines.map(lambda c: {"type": "LineString", "coordinates": c}),
    st.lists(lines, min_size=1, max_size=3).map(lambda c: {"type": "MultiLineString", "coordinates": c}),
    st.lists(lines, min_size=1, max_size=3).map(lambda c: {"type": "Polygon", "coordinates": c}),
    st.lists(st.lists(lines, min_size=1, max_size=2), min_size=1, max_size=2).map(
        lambda c: {"type": "MultiPolygon", "coordinates": c}
    ),
    st.lists(lines.map(lambda c: {"type": "LineString", "coordinates": c}), min_size=1, max_size=3).map(
        lambda g: {"type": "GeometryCollection", "geometries": g}
    ),
)


@PROPERTY
@given(readable, st.sampled_from([GeometryLimits(), GeometryLimits(max_vertices=6, max_extent_km=5)]))
def test_read_geometry_is_admitted_as_the_walk_admits_its_content(
    raw: dict[str, Any], limits: GeometryLimits
) -> None:
    """check_geometry on what ``coords.geometry`` read gives the walk's count or error for a plain
    copy of it: the box and count it carries are its positions' own."""
    from stream.feeds import coords  # noqa: PLC0415 - the reader side of the contract
    from stream.feeds.base import RecordError  # noqa: PLC0415

    try:
        read = coords.geometry(raw)
    except RecordError:
        return  # refused by the reader: admission never sees it
    assert type(read) is geometry_module.CheckedGeometry
    plain = {"type": read["type"], "coordinates": read["coordinates"]}
    with pytest.MonkeyPatch.context() as patch:
        assert answered(read, limits) == walked(plain, limits, patch)


def test_read_geometry_is_admitted_without_a_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """A geometry the reader checked is admitted from its box: no position is looked at again."""
    from stream.feeds import coords  # noqa: PLC0415

    read = coords.geometry({"type": "LineString", "coordinates": [[2.35, 48.85], [2.36, 48.86, 4.0]]})
    assert (read.vertices, read.bounds) == (2, (2.35, 48.85, 2.36, 48.86))
    monkeypatch.setattr(geometry_module, "_gather", lambda *args: pytest.fail("positions walked again"))
    assert check_geometry(read) == 2
    null = coords.geometry({"type": "LineString", "coordinates": [[0, 0], [2.36, 48.86]]})
    assert null.bounds is None  # admission walks it and names the placeholder
    with pytest.raises(InvalidRecord, match="position 0 is \\[0, 0\\]"):
        check_geometry(null)


def test_reading_a_geometry_leaves_its_positions_as_they_were() -> None:
    """The reader copies [lon, lat] out of [lon, lat, z] positions: the caller's value is not
    changed, and a position object used twice (as code may build a ring) reads like two."""
    from stream.feeds.coords import geometry  # noqa: PLC0415

    corner = [2.2, 48.8, 35.0]
    ring = [corner, [2.3, 48.8, 35.0], [2.3, 48.9, 35.0], corner]
    raw = {"type": "Polygon", "coordinates": [ring]}
    first = geometry(raw)
    assert corner == [2.2, 48.8, 35.0] and len(ring[1]) == 3
    assert first["coordinates"] == [[[2.2, 48.8], [2.3, 48.8], [2.3, 48.9], [2.2, 48.8]]]
    assert geometry(raw) == first
