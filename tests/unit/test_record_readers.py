"""The record readers judge each record alone: a clear reason for a bad one, never another exception."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import Event, Route, RouteMessage, Vehicle
from schemas.errors import InvalidRecord
from schemas.geometry import GeometryLimits, check_geometry
from stream.core.engine import Engine
from stream.core.partition import PartitionIndex, StampedEvent
from tests.support.geometry import line, lonlat, point

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
PARIS = [2.3522, 48.8566]


def _event(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "t:1",
        "source": "t",
        "kind": "closure",
        "geometry": line([(0, 0), (100, 0)]),
        "valid_from": None,
        "valid_until": None,
        "status": "active",
    }
    base.update(changes)
    return base


def _deep(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {}
    for _ in range(depth):
        node = {"x": node}
    return node


# (what, record, reason): each record is refused alone with this reason.
BAD_EVENTS: list[tuple[str, Any, str]] = [
    ("a number", 5, "not_an_object"),
    ("an array", [1, 2], "not_an_object"),
    ("no id", {k: v for k, v in _event().items() if k != "id"}, "schema"),
    ("id not a string", _event(id=7), "schema"),
    ("unknown kind", _event(kind="meteor"), "schema"),
    ("geometry a string", _event(geometry="LINESTRING(0 0, 1 1)"), "invalid_geometry"),
    ("geometry without type", _event(geometry={"coordinates": PARIS}), "unsupported_geometry"),
    ("position of one number", _event(geometry={"type": "Point", "coordinates": [2.3]}), "invalid_geometry"),
    (
        "a boolean coordinate",
        _event(geometry={"type": "Point", "coordinates": [True, 48.8]}),
        "invalid_coordinates",
    ),
    (  # JSON readers refuse such a number; a record built in code may hold one
        "an integer beyond a float",
        _event(geometry={"type": "LineString", "coordinates": [PARIS, [10**400, 48.8]]}),
        "invalid_coordinates",
    ),
    (
        "swapped axes",
        _event(geometry={"type": "Point", "coordinates": [48.8566, 120.0]}),
        "swapped_coordinates",
    ),
    (
        "vertex at 0,0",
        _event(geometry={"type": "LineString", "coordinates": [PARIS, [0, 0]]}),
        "null_position",
    ),
    (
        "a vertex far from the others",
        _event(
            geometry={
                "type": "LineString",
                "coordinates": [*lonlat([(0, 0), (50, 0), (100, 0)]), [2.35, 10.0]],
            }
        ),
        "outlier_vertex",
    ),
    (
        "a 300 km line",
        _event(geometry={"type": "LineString", "coordinates": [[2.35, 48.85], [6.3, 48.85]]}),
        "too_large",
    ),
    (
        "too many vertices",
        _event(
            geometry={"type": "LineString", "coordinates": [[2.35 + i * 1e-6, 48.85] for i in range(20_001)]}
        ),
        "too_many_vertices",
    ),
    ("schedule a list", _event(schedule=["08:00-12:00"]), "bad_schedule"),
    ("schedule day unknown", _event(schedule={"mon": ["08:00-12:00"]}), "bad_schedule"),
    ("schedule slot not a time", _event(schedule={"monday": ["8h-12h"]}), "bad_schedule"),
    (
        "unknown time zone",
        _event(schedule={"monday": ["08:00-12:00"]}, timezone="Mars/Olympus"),
        "bad_timezone",
    ),
    ("time zone a path", _event(timezone="../../etc/passwd"), "bad_timezone"),
    ("vehicles a string", _event(vehicles="trucks"), "schema"),
    ("a negative limit", _event(vehicles={"max_weight_t": -3}), "schema"),
    ("unknown Crit'Air class", _event(vehicles={"critair": ["9"]}), "schema"),
    ("naive time", _event(valid_from="2026-05-04T08:00:00"), "bad_time"),
    ("time a number", _event(valid_until=1700000000), "bad_time"),
    (
        "ends before it starts",
        _event(valid_from="2026-05-04T10:00:00Z", valid_until="2026-05-04T09:00:00Z"),
        "bad_time",
    ),
    ("details nested 255 deep", _event(details=_deep(255)), "details_too_deep"),
    ("details a list", _event(details=[1]), "schema"),
    ("title a number", _event(title=5), "schema"),
    ("kind an array", _event(kind=[]), "schema"),
    ("kind an object", _event(kind={"a": 1}), "schema"),
]


@pytest.mark.parametrize(("what", "record", "reason"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS])
def test_bad_event_is_refused_with_its_reason(what: str, record: Any, reason: str) -> None:
    """Each malformed event is refused with an InvalidRecord naming the field, and the expected reason."""
    with pytest.raises(InvalidRecord) as caught:
        Event.from_dict(record)
    assert caught.value.reason == reason, caught.value.error
    assert caught.value.error


def test_good_event_with_every_field_is_read() -> None:
    """A valid event with schedule, zone, vehicles and details is read as given."""
    event = Event.from_dict(
        _event(
            schedule={"monday": ["08:00-12:00"], "everyday": ["22:00-06:00"]},
            timezone="America/Guadeloupe",
            vehicles={"max_weight_t": 3.5, "critair": ["4", "5", "nc"], "hazmat": True},
            details=_deep(7),
            valid_from="2026-05-04T08:00:00+02:00",
        )
    )
    assert event.schedule == {"monday": ("08:00-12:00",), "everyday": ("22:00-06:00",)}
    assert event.timezone == "America/Guadeloupe"
    assert event.vehicles is not None and event.vehicles.critair == ("4", "5", "nc")


def test_limits_are_configurable() -> None:
    """A smaller extent limit refuses what the default accepts."""
    geometry = line([(0, 0), (5_000, 0)])
    assert check_geometry(geometry) == 2
    with pytest.raises(InvalidRecord) as caught:
        check_geometry(geometry, GeometryLimits(max_extent_km=2))
    assert caught.value.reason == "too_large"


def _route(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "route_id": "r1",
        "driver_id": "d1",
        "coordinates": lonlat([(0, 0), (1000, 0)]),
        "vehicle": {"weight_t": 19},
    }
    base.update(changes)
    return base


BAD_ROUTES: list[tuple[str, Any]] = [
    ("a number", 5),
    ("one position", _route(coordinates=[PARIS])),
    ("coordinates a string", _route(coordinates="LINESTRING")),
    ("a vertex at 0,0", _route(coordinates=[PARIS, [0, 0]])),
    ("a vertex 300 km on", _route(coordinates=[PARIS, [6.5, 48.8]])),
    ("driver id with a slash", _route(driver_id="../d1")),
    ("vehicle a list", _route(vehicle=[19])),
    ("weight a string", _route(vehicle={"weight_t": "19"})),
    ("depart_at naive", _route(depart_at="2026-05-04T08:00:00")),
]


@pytest.mark.parametrize(("what", "record"), BAD_ROUTES, ids=[c[0] for c in BAD_ROUTES])
def test_bad_route_is_refused(what: str, record: Any) -> None:
    """Each malformed route is refused with an InvalidRecord, inside a message too."""
    with pytest.raises(InvalidRecord):
        Route.from_dict(record)
    with pytest.raises(InvalidRecord):
        RouteMessage.from_dict({"op": "registered", "route_id": "r1", "at": T0.isoformat(), "route": record})


@pytest.mark.parametrize(
    "message",
    [
        {"op": "teleported", "route_id": "r1", "at": "2026-05-04T08:00:00Z"},
        {"op": "position", "route_id": "r1", "at": "2026-05-04T08:00:00Z", "position": "here"},
        {"op": "position", "route_id": "r1", "at": "2026-05-04T08:00:00Z", "position": [0, 0]},
        {"op": "position", "route_id": "r1", "at": "2026-05-04T08:00:00Z", "position": [float("nan"), 1]},
        {"op": "ended", "route_id": "r1"},
        {"op": "ended", "route_id": ["r1"], "at": "2026-05-04T08:00:00Z"},
    ],
)
def test_bad_route_message_is_refused(message: dict[str, Any]) -> None:
    """Route messages with an unknown op, a bad position or time, or a wrong id type are refused."""
    with pytest.raises(InvalidRecord):
        RouteMessage.from_dict(message)


# -- generated records: accepted, or refused with a reason; never another exception -------------
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
_NUMBER = st.one_of(st.floats(), st.integers(), st.just(0), st.sampled_from([180.0, -90.0, 1e308]))
_POSITION = st.lists(_NUMBER, min_size=0, max_size=4) | _JSON
_GEOMETRY = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            [
                "Point",
                "MultiPoint",
                "LineString",
                "MultiLineString",
                "Polygon",
                "MultiPolygon",
                "GeometryCollection",
                "Circle",
            ]
        ),
        "coordinates": st.recursive(_POSITION, lambda inner: st.lists(inner, max_size=6), max_leaves=40),
    }
)
_FIELDS = {
    "id": st.text(max_size=300) | _JSON,
    "source": st.sampled_from(["t", "bad source", ""]) | _JSON,
    "kind": st.sampled_from(["closure", "perimeter", "port_call", "vessel", "nope"]),
    "geometry": _GEOMETRY | _JSON,
    "valid_from": st.sampled_from([None, "2026-05-04T08:00:00Z", "2026-05-04", "9999-12-31T23:59:59+14:00"])
    | _JSON,
    "valid_until": st.sampled_from([None, "2026-05-04T09:00:00+02:00"]) | _JSON,
    "status": st.sampled_from(["active", "cancelled", "other"]),
    "schedule": _JSON | st.dictionaries(st.sampled_from(["monday", "everyday", "x"]), _JSON, max_size=3),
    "timezone": st.sampled_from(["Europe/Paris", "UTC", "Mars/Olympus", "", "../x"]) | _JSON,
    "vehicles": _JSON,
    "details": _JSON,
}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional=_FIELDS) | _JSON)
def test_generated_events_are_read_or_refused_with_a_reason(record: Any) -> None:
    """Any JSON value given to the event reader is an Event or an InvalidRecord, nothing else."""
    try:
        Event.from_dict(record)
    except InvalidRecord as exc:
        assert exc.reason and exc.error


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "op": st.sampled_from(["registered", "updated", "position", "ended", "x"]),
            "route_id": st.text(max_size=5) | _JSON,
            "at": st.sampled_from(["2026-05-04T08:00:00Z", "later"]) | _JSON,
            "position": _POSITION,
            "route": st.fixed_dictionaries(
                {},
                optional={
                    "route_id": st.text(max_size=5) | _JSON,
                    "driver_id": st.sampled_from(["d1", "a b"]) | _JSON,
                    "coordinates": st.lists(_POSITION, max_size=5) | _JSON,
                    "vehicle": _JSON,
                    "depart_at": _JSON,
                },
            )
            | _JSON,
        },
    )
    | _JSON
)
def test_generated_route_messages_are_read_or_refused_with_a_reason(record: Any) -> None:
    """Any JSON value given to the route reader is a RouteMessage or an InvalidRecord, nothing else."""
    try:
        RouteMessage.from_dict(record)
    except InvalidRecord as exc:
        assert exc.reason and exc.error


_ROUTE = Route("r1", "d1", tuple((a, b) for a, b in lonlat([(0, 0), (2000, 0)])), Vehicle())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.fixed_dictionaries({}, optional=_FIELDS), min_size=1, max_size=4))
def test_engine_takes_any_readable_event_within_bounded_memory(records: list[dict[str, Any]]) -> None:
    """Whatever the reader accepts, the engine matches without raising and within 64 MiB."""
    index = PartitionIndex(Engine())
    index.apply_routes([RouteMessage("registered", "r1", T0, route=_ROUTE)], T0)
    events = []
    for n, record in enumerate(records):
        try:
            events.append(
                StampedEvent(n + 1, Event.from_dict({**_event(id=f"t:{n}"), **record, "id": f"t:{n}"}))
            )
        except InvalidRecord:
            continue
    tracemalloc.start()
    try:
        index.apply_events(events, T0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024
    assert index.take_failed() == []


def test_engine_refuses_an_unreadable_event_alone_and_matches_the_others() -> None:
    """An event the reader never saw (built in code) with an unknown zone is refused; its batch goes on."""
    index = PartitionIndex(Engine())
    index.apply_routes([RouteMessage("registered", "r1", T0, route=_ROUTE)], T0)
    bad = Event(
        "t:bad", "t", "closure", point(500, 0), schedule={"monday": ("08:00-12:00",)}, timezone="Mars/Olympus"
    )
    wide = Event(
        "t:wide", "t", "closure", {"type": "LineString", "coordinates": [[2.35, 48.85], [6.3, 48.85]]}
    )
    good = Event("t:good", "t", "closure", point(900, 0))
    alerts = index.apply_events([StampedEvent(1, bad), StampedEvent(2, wide), StampedEvent(3, good)], T0)
    assert [a.event_id for a in alerts] == ["t:good"]
    assert sorted(event_id for event_id, _ in index.take_failed()) == ["t:bad", "t:wide"]


def test_an_event_that_makes_the_engine_fail_costs_only_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the engine raises on a batch, its events are applied one by one; the culprit is refused."""
    from stream.core import engine as engine_module

    index = PartitionIndex(Engine())
    index.apply_routes([RouteMessage("registered", "r1", T0, route=_ROUTE)], T0)
    [raised] = index.apply_events([StampedEvent(1, Event("t:poison", "t", "closure", point(600, 0)))], T0)
    real = engine_module.apply_batch

    def faulty(engine: Engine, events: Any, at: datetime) -> Any:
        if any(e.id == "t:poison" for e in events):
            raise RuntimeError("engine fault")
        return real(engine, events, at)

    monkeypatch.setattr(engine_module, "apply_batch", faulty)
    stamped = [
        StampedEvent(2, Event("t:a", "t", "closure", point(300, 0))),
        StampedEvent(3, Event("t:poison", "t", "closure", point(600, 0), title="v2")),
        StampedEvent(4, Event("t:b", "t", "closure", point(900, 0))),
    ]
    alerts = index.apply_events(stamped, T0)
    assert sorted((a.event_id, a.state) for a in alerts) == [
        ("t:a", "raised"),
        ("t:b", "raised"),
        ("t:poison", "cleared"),  # the driver does not keep the refused event's alert
    ]
    [(event_id, why)] = index.take_failed()
    assert event_id == "t:poison" and "engine fault" in why
    assert index.engine.event_count == 2


def test_decoded_wire_bytes_never_raise_anything_but_invalid_record() -> None:
    """Raw bytes from a topic: not JSON, or JSON of the wrong shape, are InvalidRecord."""
    for raw in (b"5", b"[1,2]", b'{"id": 1}', orjson.dumps(_event(schedule=["x"]))):
        with pytest.raises(InvalidRecord):
            Event.from_dict(orjson.loads(raw))


BOUND_REASONS = {"too_large", "too_many_vertices", "outlier_vertex", "null_position", "bad_timezone"}


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("perimeters", "zones.geojson"), ("cifs", "cifs-incidents.xml"), ("datex2", "datex2-regulations.xml")],
)
def test_default_bounds_cover_the_real_feeds(fmt: str, name: str) -> None:
    """No event of the bundled real data (Paris 2024 perimeters, DiaLog exports) is refused by a bound."""
    from importlib import resources

    from schemas import Rejection
    from stream.feeds.registry import parse

    data = resources.files("stream").joinpath("data", name).read_bytes()
    items = parse(fmt, data)
    assert any(isinstance(item, Event) for item in items)
    assert not [i for i in items if isinstance(i, Rejection) and i.reason in BOUND_REASONS]


def test_every_parser_applies_the_bounds() -> None:
    """A parser's events beyond the bounds are refused alone: with a 40 km limit, the two road races."""
    from importlib import resources

    from schemas import Rejection
    from stream.feeds.registry import parse

    data = resources.files("stream").joinpath("data", "zones.geojson").read_bytes()
    items = parse("perimeters", data, GeometryLimits(max_extent_km=40))
    refused = [i for i in items if isinstance(i, Rejection) and i.reason == "too_large"]
    assert len(refused) == 2 and all(r.where.startswith("perimeters:") for r in refused)
