"""Records and their JSON Schemas are one definition: same fields, and every record validates."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from schemas import Alert, Event, Route, RouteMessage, Vehicle, VehicleConditions, alert_id_for
from schemas.codec import dumps, loads, to_plain
from schemas.errors import InvalidRecord
from schemas.validate import errors, validator

T0 = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
ROUTE = Route("r1", "d1", ((2.35, 48.85), (2.36, 48.86)), Vehicle(weight_t=19, critair="2"), depart_at=T0)
EVENT = Event(
    id="t:1",
    source="t",
    kind="closure",
    geometry={"type": "Point", "coordinates": [2.35, 48.85]},
    valid_from=T0,
    schedule={"tuesday": ("18:00-22:00",)},
    vehicles=VehicleConditions(max_height_m=3.5),
)
ALERT = Alert(alert_id_for("r1", "t:1"), "r1", "d1", "t:1", "closure", "raised", 12.5, T0, None, "closed")


@pytest.mark.parametrize(
    ("name", "record_type"),
    [("event", Event), ("alert", Alert), ("route", RouteMessage)],
)
def test_schema_properties_are_the_record_fields(name: str, record_type: type) -> None:
    """Each JSON Schema lists exactly the fields of its record."""
    properties = set(validator(name).schema["properties"])
    assert properties == {f.name for f in dataclasses.fields(record_type)}


def test_route_schema_lists_route_and_vehicle_fields() -> None:
    """The route and vehicle objects of the route schema are the Route and Vehicle records."""
    route = validator("route").schema["$defs"]["route"]
    assert set(route["properties"]) == {f.name for f in dataclasses.fields(Route)}
    assert set(route["properties"]["vehicle"]["properties"]) == {f.name for f in dataclasses.fields(Vehicle)}


@pytest.mark.parametrize(
    ("name", "record"),
    [
        ("event", EVENT),
        ("alert", ALERT),
        ("route", RouteMessage("registered", "r1", T0, route=ROUTE)),
        ("route", RouteMessage("position", "r1", T0, position=(2.355, 48.855))),
        ("route", RouteMessage("ended", "r1", T0)),
    ],
)
def test_wire_form_validates_and_round_trips(name: str, record: object) -> None:
    """The wire form of a record validates against its schema and decodes to the same record."""
    plain = to_plain(record)
    assert errors(name, plain) == []
    assert type(record).from_dict(loads(dumps(record))) == record  # type: ignore[attr-defined]
    assert dumps(record) == dumps(plain)  # one pass writes what the dict form writes


def test_naive_datetimes_are_refused() -> None:
    """A timestamp without its UTC offset is an error, never silently taken as local time."""
    with pytest.raises(ValueError, match="offset"):
        Event.from_dict({**to_plain(EVENT), "valid_from": "2026-03-29T02:30:00"})


POINT_A, POINT_B = [2.35, 48.85], [2.36, 48.86]
LINE = {"type": "LineString", "coordinates": [POINT_A, POINT_B]}
POINT = {"type": "Point", "coordinates": POINT_A}


@pytest.mark.parametrize(
    ("geometry", "accepted"),
    [
        ({"type": "MultiPoint", "coordinates": [POINT_A, POINT_B]}, True),
        (
            {"type": "GeometryCollection", "geometries": [LINE, POINT]},
            True,
        ),
        ({"type": "MultiPoint", "coordinates": []}, False),
        ({"type": "GeometryCollection", "geometries": []}, False),
        (
            {
                "type": "GeometryCollection",
                "geometries": [{"type": "GeometryCollection", "geometries": [POINT]}],
            },
            False,
        ),
        ({"type": "Circle", "coordinates": POINT_A}, False),
    ],
    ids=["multipoint", "collection", "empty multipoint", "empty collection", "nested collection", "circle"],
)
def test_the_schema_takes_the_geometries_the_reader_takes(
    geometry: dict[str, object], accepted: bool
) -> None:
    """The published schema and the reader every entry uses agree on the kinds of geometry: the
    engine files MultiPoint and (flat) GeometryCollection events, so the contract lists them."""
    record = {"id": "t:g", "source": "t", "kind": "closure", "geometry": geometry}
    record |= {"valid_from": None, "valid_until": None, "status": "active"}
    schema_ok = not errors("event", record)
    try:
        Event.from_dict(record)
        reader_ok = True
    except InvalidRecord:
        reader_ok = False
    assert (schema_ok, reader_ok) == (accepted, accepted)
