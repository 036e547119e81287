"""DATEX II v3 parsing: DiaLog's regulation exports and a SituationPublication fixture."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.event import Event, VehicleConditions
from schemas.rejected import Rejection
from stream.feeds.base import FeedFormatError, Item
from stream.feeds.datex2 import parse_datex2
from tests.support.feeds import PROPERTY, check, check_or_refused

DATA = Path(__file__).parents[2] / "stream" / "data"
REGULATIONS = (DATA / "datex2-regulations.xml").read_bytes()
EXAMPLE = (DATA / "datex2-example.xml").read_bytes()
SITUATION = (Path(__file__).parent / "data" / "datex2-situation.xml").read_bytes()


def by_order(items: list[Item]) -> Counter[str]:
    """Events per trafficRegulationOrder id."""
    return Counter(i.id.split(":")[1] for i in items if isinstance(i, Event))


def test_regulations_give_one_event_per_location_and_validity() -> None:
    """6 orders, 7 regulations: locations x validity conditions = 6+1+8+1+1+1+1 = 19 events."""
    assert len(re.findall(rb"<trafficRegulationOrder\s", REGULATIONS)) == 6
    assert REGULATIONS.count(b"<trafficRegulation>") == 7
    items = parse_datex2(REGULATIONS)
    check(items)
    assert len(items) == 19 and all(isinstance(i, Event) for i in items)
    assert by_order(items) == {
        "06549047-db9d-74bb-8000-754a6f2ff4c3": 6,  # 2 locations x 3 validity periods
        "066e9849-f802-7a4c-8000-845f47c4b0de": 1,
        "2e5eb289-90c8-4c3f-8e7c-2e9e7de8948c": 8,  # 4 locations x 2 validity periods
        "804fedae-db25-4ac8-ac95-2d6cf4df7422": 2,  # 2 regulations
        "9d8653c5-daae-49df-8f16-6ed03cae02f4": 1,
        "edc8dd18-5f56-4684-b2ba-d18658d53518": 1,
    }


def test_no_entry_for_all_vehicles_is_a_closure_others_restrictions() -> None:
    """noEntry without vehicle conditions is a closure; parking and lane-usage rules restrict."""
    kinds = {i.id: i.kind for i in parse_datex2(REGULATIONS) if isinstance(i, Event)}
    assert kinds["datex2:06549047-db9d-74bb-8000-754a6f2ff4c3:r0:l0:v0"] == "closure"
    assert kinds["datex2:804fedae-db25-4ac8-ac95-2d6cf4df7422:r0:l0:v0"] == "closure"
    assert kinds["datex2:804fedae-db25-4ac8-ac95-2d6cf4df7422:r1:l0:v0"] == "restriction"
    assert kinds["datex2:9d8653c5-daae-49df-8f16-6ed03cae02f4:r0:l0:v0"] == "restriction"
    assert kinds["datex2:2e5eb289-90c8-4c3f-8e7c-2e9e7de8948c:r0:l0:v0"] == "restriction"


def test_vehicle_conditions_are_read() -> None:
    """Weight 3.5 t, height 2.4 m, length 12 m, Crit'Air 4 and 5 and hazardous loads are kept."""
    items = parse_datex2(REGULATIONS)
    event = next(i for i in items if isinstance(i, Event) and i.street == "Rue Ardoin")
    assert event.vehicles == VehicleConditions(
        max_weight_t=3.5, max_height_m=2.4, max_length_m=12.0, critair=("4", "5"), hazmat=True
    )
    assert event.details["exempted"] == ["emergencyServices", "Convois exceptionnels"]


def test_validity_periods_become_schedules() -> None:
    """Tuesday/Thursday 08:00-10:00 and every day 18:00-22:00 (given at +00:00) in UTC."""
    items = {i.id: i for i in parse_datex2(REGULATIONS) if isinstance(i, Event)}
    first = items["datex2:06549047-db9d-74bb-8000-754a6f2ff4c3:r0:l0:v0"]
    assert first.schedule == {"tuesday": ("08:00-10:00",), "thursday": ("08:00-10:00",)}
    assert first.timezone == "UTC"
    assert first.valid_from == datetime(2023, 6, 3, 8, 0, tzinfo=UTC)
    assert first.valid_until == datetime(2023, 6, 5, 10, 0, tzinfo=UTC)
    daily = items["datex2:06549047-db9d-74bb-8000-754a6f2ff4c3:r0:l1:v1"]
    assert daily.schedule == {"everyday": ("18:00-22:00",)} and daily.street == "D14"
    two_slots = items["datex2:06549047-db9d-74bb-8000-754a6f2ff4c3:r0:l0:v2"]
    assert two_slots.schedule == {"tuesday": ("12:00-14:00", "19:00-21:00")}


def test_geojson_extension_keeps_lon_lat_and_collections_flatten() -> None:
    """The GeoJSON extension is lon/lat already; a GeometryCollection of lines is a MultiLineString."""
    items = {i.id: i for i in parse_datex2(REGULATIONS) if isinstance(i, Event)}
    d14 = items["datex2:06549047-db9d-74bb-8000-754a6f2ff4c3:r0:l1:v0"]
    assert d14.geometry == {
        "type": "LineString",
        "coordinates": [[2.344241283, 48.911986097], [2.344182729, 48.908845831]],
    }
    dhalenne = items["datex2:2e5eb289-90c8-4c3f-8e7c-2e9e7de8948c:r0:l3:v0"]
    assert dhalenne.geometry["type"] == "MultiLineString"
    assert dhalenne.geometry["coordinates"][0][0] == [2.330977507, 48.915717906]


def test_example_gml_line_is_lat_lon_and_weekends_are_excluded() -> None:
    """posList '47.366334 -1.944703 …' is lat/lon; the Saturday/Sunday exception leaves weekdays."""
    (event,) = parse_datex2(EXAMPLE)
    assert isinstance(event, Event)
    assert event.geometry["coordinates"] == [[-1.944703, 47.366334], [-1.94021, 47.370631]]
    assert set(event.schedule or {}) == {"monday", "tuesday", "wednesday", "thursday", "friday"}
    assert event.kind == "restriction"  # vehicles of 12 m or more only
    assert event.vehicles == VehicleConditions(max_length_m=12.0)
    assert event.details["schedule_exceptions"] == ["except publicHoliday"]


def test_situation_publication_records() -> None:
    """4 records: roadworks (GML line), closure (GeoJSON), accident (point), one without location."""
    items = parse_datex2(SITUATION)
    check(items)
    assert [getattr(i, "kind", None) for i in items] == ["roadworks", "closure", "hazard", None]
    roadworks, closure, accident, rejected = items
    assert isinstance(roadworks, Event) and isinstance(accident, Event)
    assert roadworks.geometry["coordinates"][0] == [2.35501, 48.90512]
    assert roadworks.schedule == {"everyday": ("00:00-06:00", "21:00-24:00")}
    assert roadworks.street == "A86" and roadworks.id == "datex2:SIT-A86-2024-031:REC-1"
    assert accident.geometry == {"type": "Point", "coordinates": [2.35788, 48.93621]}
    assert accident.severity == "high" and accident.valid_until is None
    assert isinstance(rejected, Rejection) and rejected.reason == "missing_geometry"
    assert rejected.where == "situation SIT-N1-2024-112 record REC-8"


@pytest.mark.parametrize(
    "document",
    [b"", b"<a><b></a>", b"<d2:payload xmlns:d2='x'/>", b'{"json": true}'],
)
def test_unreadable_documents_raise_feed_format_error(document: bytes) -> None:
    """Empty, malformed, or neither regulations nor situations: FeedFormatError."""
    with pytest.raises(FeedFormatError):
        parse_datex2(document)


@PROPERTY
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    """Random bytes either raise FeedFormatError or yield only events and rejections."""
    check_or_refused(parse_datex2, data)


def _edits(doc: bytes) -> st.SearchStrategy[list[tuple[int, int, bytes]]]:
    insert = st.one_of(st.binary(max_size=6), st.text("0123456789-.:, TZ", max_size=4).map(str.encode))
    return st.lists(st.tuples(st.integers(0, len(doc)), st.integers(0, 12), insert), max_size=4)


@PROPERTY
@given(st.sampled_from([REGULATIONS, EXAMPLE, SITUATION]).flatmap(lambda d: st.tuples(st.just(d), _edits(d))))
def test_mutated_documents_never_crash(case: tuple[bytes, list[tuple[int, int, bytes]]]) -> None:
    """Sample documents with random cuts and insertions give valid items or FeedFormatError."""
    data, edits = case
    for at, cut, insert in edits:
        data = data[:at] + insert + data[at + cut :]
    check_or_refused(parse_datex2, data)


def test_an_undeclared_prefix_costs_no_crash() -> None:
    """A situation whose ``sit:`` prefix is not declared (lxml keeps ``sit:situation`` as its tag,
    and refuses the document only at its end) is read by its local name like any other: items or
    the document's refusal, never a KeyError."""
    data = SITUATION.replace(b'xmlns:sit="http://datex2.eu/schema/3/situation"', b"")
    check_or_refused(parse_datex2, data)
