"""Waze CIFS (XML and JSON) parsing: the DiaLog sample, swapped axes, schedules, hostile input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from schemas.event import Event
from schemas.rejected import Rejection
from stream.feeds.base import FeedFormatError, Item
from stream.feeds.cifs import parse_cifs
from tests.support.feeds import PROPERTY, check, check_or_refused

SAMPLE = (Path(__file__).parents[2] / "stream" / "data" / "cifs-incidents.xml").read_bytes()


def incident(ident: str, polyline: str, extra: str = "") -> str:
    """One CIFS incident element."""
    return (
        f'<incident id="{ident}"><type>ROAD_CLOSED</type><description>Fermée</description>'
        f"<street>Rue</street><polyline>{polyline}</polyline>"
        f"<starttime>2024-05-01T08:00:00+02:00</starttime>{extra}</incident>"
    )


def feed(*incidents: str) -> bytes:
    """A CIFS document holding the given incident elements."""
    return ("<incidents>" + "".join(incidents) + "</incidents>").encode()


def events(items: list[Item]) -> list[Event]:
    """Only the events of a parse."""
    return [i for i in items if isinstance(i, Event)]


PARIS = ["48.8566 2.3522 48.8570 2.3530", "48.8600 2.3400 48.8610 2.3410", "48.90 2.33 48.91 2.34"]


def test_sample_gives_seven_closures() -> None:
    """The DiaLog export holds 7 <incident> elements, all ROAD_CLOSED with a polyline: 7 events."""
    assert SAMPLE.count(b"<incident ") == 7
    items = parse_cifs(SAMPLE)
    check(items)
    assert len(items) == 7 and all(isinstance(i, Event) for i in items)
    assert {e.kind for e in events(items)} == {"closure"}
    assert all(e.id.startswith("cifs:F/CIFS/") or e.id.startswith("cifs:117374#") for e in events(items))


def test_sample_coordinates_come_out_lon_lat() -> None:
    """The polyline '48.910599408 2.337514404 …' (lat lon) becomes [[2.337514404, 48.910599408], …]."""
    first = events(parse_cifs(SAMPLE))[0]
    assert first.geometry["type"] == "LineString"
    assert first.geometry["coordinates"][0] == [2.337514404, 48.910599408]
    assert first.geometry["coordinates"][-1] == [2.339535452, 48.911316524]
    assert len(first.geometry["coordinates"]) == 9


def test_sample_times_schedules_and_text() -> None:
    """starttime/endtime, weekly schedules, description and street are carried over."""
    found = events(parse_cifs(SAMPLE))
    assert found[0].valid_from == datetime(2023, 6, 4, 23, 0, tzinfo=UTC)
    assert found[0].valid_until == datetime(2023, 6, 10, 22, 59, tzinfo=UTC)
    assert found[0].schedule == {"everyday": ("18:00-22:00",)}
    assert found[1].schedule == {"tuesday": ("12:00-14:00", "19:00-21:00")}
    assert found[2].schedule == {"tuesday": ("08:00-10:00",), "thursday": ("08:00-10:00",)}
    assert found[6].schedule is None
    assert found[0].title == "Circulation interdite" and found[3].street == "D14"
    assert all(e.direction == "both" and e.source == "cifs" for e in found)


@pytest.mark.parametrize(
    ("kind", "subtype", "expected"),
    [
        ("ROAD_CLOSED", "", "closure"),
        ("ROAD_CLOSED", "ROAD_CLOSED_CONSTRUCTION", "closure"),
        ("CONSTRUCTION", "", "roadworks"),
        ("HAZARD", "HAZARD_ON_ROAD_CONSTRUCTION", "roadworks"),
        ("HAZARD", "HAZARD_ON_ROAD_OBJECT", "hazard"),
        ("ACCIDENT", "ACCIDENT_MAJOR", "hazard"),
        ("JAM", "", "hazard"),
    ],
)
def test_type_and_subtype_map_to_kind(kind: str, subtype: str, expected: str) -> None:
    """CIFS type/subtype pairs map to Corridor kinds."""
    doc = f'{{"incidents": [{{"id": "a1", "type": "{kind}", "subtype": "{subtype}", '
    doc += '"polyline": "48.85 2.35 48.86 2.36"}]}'
    (event,) = parse_cifs(doc)
    assert isinstance(event, Event) and event.kind == expected


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        ("<direction>ONE_DIRECTION</direction>", "forward"),
        ("<direction>BOTH_DIRECTIONS</direction>", "both"),
        ("", "both"),
    ],
)
def test_direction(direction: str, expected: str) -> None:
    """ONE_DIRECTION is 'forward' (the polyline's order), BOTH_DIRECTIONS or none is 'both'."""
    (event,) = parse_cifs(feed(incident("d1", PARIS[0], direction)))
    assert isinstance(event, Event) and event.direction == expected


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("<everyday>8:00-10:00</everyday>", {"everyday": ("08:00-10:00",)}),
        ("<friday>22:00-06:00</friday>", {"friday": ("22:00-24:00",), "saturday": ("00:00-06:00",)}),
        ("<sunday>23:00-01:00</sunday>", {"sunday": ("23:00-24:00",), "monday": ("00:00-01:00",)}),
        ("<monday>09:00-12:00,14:00-18:00</monday>", {"monday": ("09:00-12:00", "14:00-18:00")}),
    ],
)
def test_schedules(schedule: str, expected: dict[str, tuple[str, ...]]) -> None:
    """Schedule slots are normalised to HH:MM and overnight slots continue the next day."""
    (event,) = parse_cifs(feed(incident("s1", PARIS[0], f"<schedule>{schedule}</schedule>")))
    assert isinstance(event, Event) and event.schedule == expected


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("<schedule><monday>25:00-26:00</monday></schedule>", "bad_schedule"),
        ("<schedule><monday>soon</monday></schedule>", "bad_schedule"),
        ("<endtime>2024-04-01T08:00:00+02:00</endtime>", "bad_time"),
        ("<endtime>2024-06-01T08:00:00</endtime>", "bad_time"),
        ("<direction>SIDEWAYS</direction>", "schema"),
    ],
)
def test_bad_fields_are_rejected_with_a_reason(extra: str, reason: str) -> None:
    """Impossible schedules, end before start, naive times and unknown directions are rejected."""
    (item,) = parse_cifs(feed(incident("b1", PARIS[0], extra)))
    assert isinstance(item, Rejection) and item.reason == reason and item.where == "incident b1"


@pytest.mark.parametrize(
    ("polyline", "reason"),
    [
        ("148.9106 2.3375 148.9107 2.3376", "swapped_coordinates"),
        ("-95.5 45.0 -95.6 45.1", "swapped_coordinates"),
        ("200.0 300.0 201.0 301.0", "invalid_coordinates"),
        ("48.85 2.35 48.86", "invalid_geometry"),
        ("48.85 2.35", "too_few_points"),
        ("48.85,2.35", "too_few_points"),
        ("48.85 abc 48.86 2.36", "invalid_coordinates"),
        ("48.85 nan 48.86 2.36", "invalid_coordinates"),
    ],
)
def test_impossible_polylines_are_rejected_never_moved(polyline: str, reason: str) -> None:
    """A latitude beyond ±90 that is a valid longitude is called swapped; other junk is invalid."""
    (item,) = parse_cifs(feed(incident("x1", polyline)))
    assert isinstance(item, Rejection) and item.reason == reason


def test_polyline_swapped_against_the_rest_of_the_feed_is_rejected() -> None:
    """Among Paris incidents, one given as 'lon lat' (lands near Somalia) is rejected as swapped."""
    swapped = incident("far", "2.3522 48.8566 2.3530 48.8570")
    items = parse_cifs(feed(*(incident(f"p{n}", p) for n, p in enumerate(PARIS)), swapped))
    check(items)
    assert [type(i).__name__ for i in items] == ["Event", "Event", "Event", "Rejection"]
    rejected = items[3]
    assert isinstance(rejected, Rejection) and rejected.reason == "swapped_coordinates"
    assert rejected.where == "incident far" and "swapped" in rejected.error


def test_json_form_gives_the_same_event_as_xml() -> None:
    """The same incident as CIFS JSON ({"incidents": [...]}) parses to an equal event."""
    record = {
        "id": "j1",
        "type": "ROAD_CLOSED",
        "description": "Fermée",
        "street": "Rue",
        "polyline": PARIS[0],
        "starttime": "2024-05-01T08:00:00+02:00",
    }
    (from_json,) = parse_cifs(json.dumps({"incidents": [record]}))
    (from_xml,) = parse_cifs(feed(incident("j1", PARIS[0])))
    assert isinstance(from_json, Event) and from_json == from_xml


def test_missing_id_polyline_and_duplicates_are_rejected() -> None:
    """Every incident yields one item: missing id/polyline and repeated ids become rejections."""
    items = parse_cifs(
        feed(
            incident("ok", PARIS[0]),
            incident("ok", PARIS[1]),
            "<incident><type>ROAD_CLOSED</type><polyline>48.85 2.35 48.86 2.36</polyline></incident>",
            '<incident id="np"><type>ROAD_CLOSED</type></incident>',
        )
    )
    assert [getattr(i, "reason", "event") for i in items] == [
        "event",
        "duplicate_id",
        "schema",
        "missing_geometry",
    ]


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"<incidents><incident id='a'>",
        b"<regulations/>",
        b'{"foo": 1}',
        b"[1, 2",
        b'<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaa">]><incidents>&a;</incidents>',
    ],
)
def test_unreadable_documents_raise_feed_format_error(document: bytes) -> None:
    """Empty, malformed, foreign-rooted, non-CIFS JSON and DTD-bearing documents are refused."""
    with pytest.raises(FeedFormatError):
        parse_cifs(document)


@PROPERTY
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    """Random bytes either raise FeedFormatError or yield only events and rejections."""
    check_or_refused(parse_cifs, data)


EDITS = st.lists(
    st.tuples(
        st.integers(0, len(SAMPLE)),
        st.integers(0, 12),
        st.one_of(st.binary(max_size=6), st.text("0123456789-.:, TZ", max_size=4).map(str.encode)),
    ),
    max_size=4,
)


@PROPERTY
@given(EDITS)
def test_mutated_sample_never_crashes(edits: list[tuple[int, int, bytes]]) -> None:
    """The sample with random cuts and insertions parses to valid items or FeedFormatError."""
    data = SAMPLE
    for at, cut, insert in edits:
        data = data[:at] + insert + data[at + cut :]
    check_or_refused(parse_cifs, data)


XSD = Path(__file__).parents[2] / "stream" / "data" / "cifsv2.xsd"
XS = "{http://www.w3.org/2001/XMLSchema}"
# What Corridor does with an incident that lacks each element cifsv2.xsd requires (README, "CIFS:
# what Corridor accepts beyond the schema"): the fields matching needs are required, the labels not.
WITHOUT_REQUIRED = {"type": "schema", "polyline": "missing_geometry", "description": None, "street": None}


def test_the_sample_is_valid_cifs() -> None:
    """The bundled DiaLog export validates against the bundled cifsv2.xsd."""
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(etree.fromstring(SAMPLE)), schema.error_log.last_error


def test_each_element_the_xsd_requires_is_handled_as_documented() -> None:
    """The incident elements cifsv2.xsd requires are those the table above lists; without each,
    the incident is refused with the listed reason, or accepted (None)."""
    schema = etree.parse(str(XSD))
    incident_type = schema.find(f".//{XS}element[@name='incident']/{XS}complexType/{XS}all")
    assert incident_type is not None
    required = {e.get("name") for e in incident_type.findall(f"{XS}element") if e.get("minOccurs") != "0"}
    assert required == set(WITHOUT_REQUIRED)
    for name, reason in WITHOUT_REQUIRED.items():
        element = etree.fromstring(incident("cifs-1", "48.85 2.35 48.86 2.36"))
        element.remove(element.find(name))
        items = parse_cifs(feed(etree.tostring(element).decode()))
        if reason is None:
            assert [type(i) for i in items] == [Event], name
        else:
            assert [i.reason for i in items if isinstance(i, Rejection)] == [reason], name


def test_ids_shorter_than_the_xsd_asks_are_accepted() -> None:
    """cifsv2.xsd asks ids of 3 characters at least; a shorter one is still a stable, unique id."""
    assert [i.id for i in events(parse_cifs(feed(incident("a1", "48.85 2.35 48.86 2.36"))))] == ["cifs:a1"]
