"""Matching rules as tables: geometry, time windows, schedules, vehicle conditions, direction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from schemas import Event, Route, Vehicle, VehicleConditions
from stream.core.config import EngineConfig
from stream.core.engine import Engine
from stream.core.geo import unproject_xy

X0, Y0 = 652_000.0, 6_862_000.0  # Lambert-93, central Paris
TUESDAY_19H_PARIS = datetime(2026, 1, 6, 18, 0, tzinfo=UTC)  # 19:00 in Paris (UTC+1)
SPEED = 50 / 3.6


def lonlat(*xy: tuple[float, float]) -> list[list[float]]:
    """Local metres (east, north of central Paris) as lon/lat pairs."""
    arr = np.asarray(xy, dtype=float)
    lon, lat = unproject_xy(arr[:, 0] + X0, arr[:, 1] + Y0)
    return [[a, b] for a, b in zip(lon.tolist(), lat.tolist(), strict=True)]


def make_route(
    xy: list[tuple[float, float]] | None = None, depart: datetime = TUESDAY_19H_PARIS, **vehicle: Any
) -> Route:
    """A truck route (default: 2 km due east, vertices every 100 m)."""
    xy = xy or [(x, 0.0) for x in range(0, 2001, 100)]
    dest = vehicle.pop("destination", None)
    return Route(
        route_id="r1",
        driver_id="d1",
        coordinates=tuple(map(tuple, lonlat(*xy))),  # type: ignore[arg-type]
        vehicle=Vehicle(**vehicle),
        depart_at=depart,
        destination=dest,
    )


def make_event(kind: str = "closure", geometry: dict[str, Any] | None = None, **fields: Any) -> Event:
    """An event (default: a point on the route 1 km from its start)."""
    geometry = geometry or point(1000, 0)
    return Event(id="e1", source="test", kind=kind, geometry=geometry, **fields)  # type: ignore[arg-type]


def point(x: float, y: float) -> dict[str, Any]:
    """A GeoJSON point at local metres."""
    return {"type": "Point", "coordinates": lonlat((x, y))[0]}


def line(*xy: tuple[float, float]) -> dict[str, Any]:
    """A GeoJSON line through local metres."""
    return {"type": "LineString", "coordinates": lonlat(*xy)}


def square(x: float, y: float, half: float) -> dict[str, Any]:
    """A GeoJSON square centred on local metres."""
    ring = [(x - half, y - half), (x + half, y - half), (x + half, y + half), (x - half, y + half)]
    return {"type": "Polygon", "coordinates": [lonlat(*ring, ring[0])]}


def concerned(route: Route, event: Event, at: datetime, **config: Any) -> bool:
    """Whether the event concerns the route, checked in both directions of the join (they agree)."""
    first = Engine(EngineConfig(**config))
    first.upsert_route(route, at)
    by_event = [a for a in first.apply_events([event], at) if a.state == "raised"]
    second = Engine(EngineConfig(**config))
    second.apply_events([event], at)
    by_route = [a for a in second.upsert_route(route, at) if a.state == "raised"]
    assert len(by_event) == len(by_route)
    return bool(by_event)


AT = TUESDAY_19H_PARIS - timedelta(hours=1)
EXPECTED_AT_1KM = TUESDAY_19H_PARIS + timedelta(seconds=1000 / SPEED)

GEOMETRY = [
    ("point on the route", make_event(), True),
    ("point 25 m off the route", make_event(geometry=point(1000, 25)), True),
    ("point 35 m off the route", make_event(geometry=point(1000, 35)), False),
    ("point 25 m before the start", make_event(geometry=point(-25, 0)), True),
    ("point 35 m past the end", make_event(geometry=point(2035, 0)), False),
    ("line crossing the route", make_event(geometry=line((500, -200), (500, 200))), True),
    ("line parallel 40 m away", make_event(geometry=line((0, 40), (2000, 40))), False),
    ("line parallel 29 m away", make_event(geometry=line((0, 29), (2000, 29))), True),
    ("closure square 20 m away", make_event(geometry=square(1000, 70, 50)), True),
    ("closure square 40 m away", make_event(geometry=square(1000, 90, 50)), False),
    ("perimeter 20 m away is not entered", make_event("perimeter", square(1000, 70, 50)), False),
    ("perimeter crossed", make_event("perimeter", square(1000, 0, 50)), True),
    ("route wholly inside a perimeter", make_event("perimeter", square(1000, 0, 5000)), True),
    ("route wholly inside a closure area", make_event(geometry=square(1000, 0, 5000)), True),
]


@pytest.mark.parametrize(("name", "event", "expected"), GEOMETRY, ids=[g[0] for g in GEOMETRY])
def test_geometry(name: str, event: Event, expected: bool) -> None:
    """The corridor (30 m) and perimeter rules decide on geometry alone."""
    assert concerned(make_route(), event, AT) is expected


def tue_18_22(**fields: Any) -> Event:
    """A closure on the route valid only 18:00-22:00 on Tuesdays (Paris time)."""
    return make_event(schedule={"tuesday": ("18:00-22:00",)}, **fields)


TIME = [
    ("no window", make_event(), AT, True),
    (
        "ended before the vehicle gets there",
        make_event(valid_until=EXPECTED_AT_1KM - timedelta(seconds=5)),
        AT,
        False,
    ),
    (
        "ends after the vehicle gets there",
        make_event(valid_until=EXPECTED_AT_1KM + timedelta(seconds=5)),
        AT,
        True,
    ),
    (
        "starts after the vehicle passed",
        make_event(valid_from=EXPECTED_AT_1KM + timedelta(seconds=5)),
        AT,
        False,
    ),
    (
        "starts before the vehicle gets there",
        make_event(valid_from=EXPECTED_AT_1KM - timedelta(seconds=5)),
        AT,
        True,
    ),
    ("Tuesday 18-22, vehicle there Tuesday 19:01", tue_18_22(), AT, True),
    ("everyday 18-22", make_event(schedule={"everyday": ("18:00-22:00",)}), AT, True),
    ("Wednesday 18-22 only", make_event(schedule={"wednesday": ("18:00-22:00",)}), AT, False),
    ("Tuesday 07-09 only", make_event(schedule={"tuesday": ("07:00-09:00",)}), AT, False),
    ("Monday overnight 22-20 reaches Tuesday", make_event(schedule={"monday": ("22:00-20:00",)}), AT, True),
    (
        "in another timezone: 18-22 in New York",
        make_event(schedule={"tuesday": ("18:00-22:00",)}, timezone="America/New_York"),
        AT,
        False,
    ),
]


@pytest.mark.parametrize(("name", "event", "at", "expected"), TIME, ids=[t[0] for t in TIME])
def test_time_at_expected_arrival(name: str, event: Event, at: datetime, expected: bool) -> None:
    """Validity windows and schedules are evaluated when the vehicle is expected at the event."""
    assert concerned(make_route(), event, at) is expected


AT_ONLY = [
    (
        "valid at --at, not when the vehicle gets there",
        make_event(valid_until=AT + timedelta(minutes=1)),
        True,
    ),
    ("not valid yet at --at", make_event(valid_from=AT + timedelta(minutes=1)), False),
    ("Tuesday 19-22, --at Tuesday 18:00 Paris", make_event(schedule={"tuesday": ("19:00-22:00",)}), False),
    ("Tuesday 18-22, --at Tuesday 18:00 Paris", tue_18_22(), True),
]


@pytest.mark.parametrize(("name", "event", "expected"), AT_ONLY, ids=[t[0] for t in AT_ONLY])
def test_time_at_fixed_instant(name: str, event: Event, expected: bool) -> None:
    """With ``at_only`` (the CLI's --at) validity is evaluated at ``at`` itself."""
    assert concerned(make_route(), event, AT, at_only=True) is expected


def limits(**kw: Any) -> Event:
    """A restriction on the route with vehicle conditions."""
    return make_event("restriction", vehicles=VehicleConditions(**kw))


VEHICLE = [
    ("3.5 m height limit, 4 m truck", limits(max_height_m=3.5), {"height_m": 4.0}, True),
    ("3.5 m height limit, 3.2 m truck", limits(max_height_m=3.5), {"height_m": 3.2}, False),
    ("3.5 m height limit, unknown height: warned", limits(max_height_m=3.5), {}, True),
    ("7.5 t limit, unknown weight: warned", limits(max_weight_t=7.5), {"height_m": 3.0}, True),
    ("Crit'Air 4 and 5 banned, unknown class: warned", limits(critair=("4", "5")), {}, True),
    ("hazmat banned, unknown dimensions: not hazmat", limits(hazmat=True), {}, False),
    ("7.5 t limit, 19 t truck", limits(max_weight_t=7.5), {"weight_t": 19.0}, True),
    ("7.5 t limit, 3.5 t van", limits(max_weight_t=7.5), {"weight_t": 3.5}, False),
    ("2.3 m width limit, 2.55 m truck", limits(max_width_m=2.3), {"width_m": 2.55}, True),
    ("10 m length limit, 12 m truck", limits(max_length_m=10.0), {"length_m": 12.0}, True),
    ("Crit'Air 4 and 5 banned, class 4", limits(critair=("4", "5")), {"critair": "4"}, True),
    ("Crit'Air 4 and 5 banned, class 2", limits(critair=("4", "5")), {"critair": "2"}, False),
    ("hazmat banned, hazmat truck", limits(hazmat=True), {"hazmat": True}, True),
    ("hazmat banned, ordinary truck", limits(hazmat=True), {"hazmat": False}, False),
    (
        "height fine but too heavy",
        limits(max_height_m=4.5, max_weight_t=12.0),
        {"height_m": 4.0, "weight_t": 19.0},
        True,
    ),
    (
        "within every limit",
        limits(max_height_m=4.5, max_weight_t=26.0),
        {"height_m": 4.0, "weight_t": 19.0},
        False,
    ),
    ("no conditions", make_event(), {"height_m": 2.0}, True),
]


@pytest.mark.parametrize(("name", "event", "vehicle", "expected"), VEHICLE, ids=[v[0] for v in VEHICLE])
def test_vehicle_conditions(name: str, event: Event, vehicle: dict[str, Any], expected: bool) -> None:
    """An event with conditions applies to vehicles that exceed a limit or fall in a listed class."""
    assert concerned(make_route(**vehicle), event, AT) is expected


COMBINED = [
    ("Tuesday 18-22, 3.5 m, 4 m truck at 19:01", {"height_m": 4.0}, TUESDAY_19H_PARIS, True),
    ("Tuesday 18-22, 3.5 m, 3.2 m truck at 19:01", {"height_m": 3.2}, TUESDAY_19H_PARIS, False),
    (
        "Tuesday 18-22, 3.5 m, 4 m truck at 17:01",
        {"height_m": 4.0},
        TUESDAY_19H_PARIS - timedelta(hours=2),
        False,
    ),
    (
        "Tuesday 18-22, 3.5 m, 4 m truck on Wednesday",
        {"height_m": 4.0},
        TUESDAY_19H_PARIS + timedelta(days=1),
        False,
    ),
]


@pytest.mark.parametrize(("name", "vehicle", "depart", "expected"), COMBINED, ids=[c[0] for c in COMBINED])
def test_schedule_and_vehicle_combined(
    name: str, vehicle: dict[str, Any], depart: datetime, expected: bool
) -> None:
    """A height-limited closure active Tuesdays 18:00-22:00 needs both rules to hold."""
    event = tue_18_22(vehicles=VehicleConditions(max_height_m=3.5))
    assert concerned(make_route(depart=depart, **vehicle), event, depart - timedelta(hours=1)) is expected


EAST = [(float(x), 0.0) for x in range(0, 2001, 100)]
WEST = EAST[::-1]
DIRECTION = [
    ("one-way closure eastbound, route eastbound", line((800, 5), (1200, 5)), EAST, True),
    ("one-way closure eastbound, route westbound", line((800, 5), (1200, 5)), WEST, False),
    ("one-way closure westbound, route westbound", line((1200, 5), (800, 5)), WEST, True),
    ("one-way closure northbound, crossed eastbound", line((1000, -100), (1000, 100)), EAST, False),
    ("one-way point: direction does not apply", point(1000, 0), WEST, True),
]


@pytest.mark.parametrize(("name", "geometry", "xy", "expected"), DIRECTION, ids=[d[0] for d in DIRECTION])
def test_one_way_events(
    name: str, geometry: dict[str, Any], xy: list[tuple[float, float]], expected: bool
) -> None:
    """A forward event concerns only traffic moving the way its points are ordered."""
    event = make_event(geometry=geometry, direction="forward")
    assert concerned(make_route(xy), event, AT) is expected


def test_both_ways_event_crossed_either_way() -> None:
    """Without a direction, the same closure concerns eastbound and westbound routes."""
    event = make_event(geometry=line((800, 5), (1200, 5)))
    assert concerned(make_route(EAST), event, AT) and concerned(make_route(WEST), event, AT)


PROGRESS = [
    ("event 20 m behind the vehicle", 1020.0, False),
    ("event 20 m ahead of the vehicle", 980.0, True),
    ("vehicle right at the event", 1000.0, True),
    ("event long passed", 1800.0, False),
]


@pytest.mark.parametrize(("name", "at_x", "expected"), PROGRESS, ids=[p[0] for p in PROGRESS])
def test_only_the_route_ahead_counts(name: str, at_x: float, expected: bool) -> None:
    """Once a position is known, events behind the vehicle do not concern it."""
    engine = Engine()
    engine.upsert_route(make_route(), AT)
    engine.route_position("r1", tuple(lonlat((at_x, 3.0))[0]), AT)  # type: ignore[arg-type]
    raised = [a for a in engine.apply_events([make_event()], AT) if a.state == "raised"]
    assert bool(raised) is expected


PORT = [
    ("port call at the route's terminal", {"destination": "T1"}, "T1", True),
    ("port call at another terminal", {"destination": "T2"}, "T1", False),
    ("route without destination", {}, "T1", False),
]


@pytest.mark.parametrize(("name", "vehicle", "terminal", "expected"), PORT, ids=[p[0] for p in PORT])
def test_port_calls_by_destination(name: str, vehicle: dict[str, Any], terminal: str, expected: bool) -> None:
    """A port call concerns routes heading to its terminal, far from its geometry."""
    event = make_event("port_call", point(40_000, 40_000), terminal=terminal)
    assert concerned(make_route(**vehicle), event, AT) is expected


def test_vessel_events_never_alert() -> None:
    """Vessel positions are inputs for the port agent, never alerts, even on the route."""
    engine = Engine()
    engine.upsert_route(make_route(), AT)
    assert engine.apply_events([make_event("vessel")], AT) == []
    assert engine.event_count == 0


def test_distance_and_expected_time() -> None:
    """The alert gives the distance along the route and the time the vehicle gets there."""
    engine = Engine()
    engine.upsert_route(make_route(), AT)
    (alert,) = engine.apply_events([make_event(geometry=point(1234, 20))], AT)
    assert alert.distance_ahead_m == pytest.approx(1234, abs=0.5)
    assert alert.expected_at is not None
    assert (
        abs((alert.expected_at - (TUESDAY_19H_PARIS + timedelta(seconds=1234 / SPEED))).total_seconds()) < 1
    )


def test_planned_speed_from_departure_and_arrival() -> None:
    """A route with depart_at and arrive_by is expected at its own average speed."""
    route = make_route()
    planned = Route(
        route.route_id,
        route.driver_id,
        route.coordinates,
        route.vehicle,
        route.depart_at,
        TUESDAY_19H_PARIS + timedelta(seconds=400),  # 2 km in 400 s: 5 m/s
    )
    engine = Engine()
    engine.upsert_route(planned, AT)
    (alert,) = engine.apply_events([make_event()], AT)
    assert alert.expected_at is not None
    assert abs((alert.expected_at - (TUESDAY_19H_PARIS + timedelta(seconds=200))).total_seconds()) < 1
