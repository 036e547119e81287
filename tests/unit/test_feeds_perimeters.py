"""Perimeter GeoJSON: the Paris 2024 zones, Paris local time across DST, stable ids."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import to_plain
from schemas.event import Event
from schemas.rejected import Rejection
from stream.feeds.base import FeedFormatError, Item
from stream.feeds.perimeters import parse_perimeters, stable_key
from tests.support.feeds import PROPERTY, check, check_or_refused

ZONES_BYTES = (Path(__file__).parents[2] / "stream" / "data" / "zones.geojson").read_bytes()
ZONES = json.loads(ZONES_BYTES)
SQUARE = [[[2.30, 48.85], [2.31, 48.85], [2.31, 48.86], [2.30, 48.86], [2.30, 48.85]]]


@cache
def zone_items() -> list[Item]:
    """The zones file parsed once for the tests that only read it."""
    return parse_perimeters(ZONES_BYTES)


def collection(*features: dict[str, Any]) -> bytes:
    """A FeatureCollection document."""
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def zone(start: str, end: str, geometry: Any = None) -> dict[str, Any]:
    """A perimeter feature with the zones.geojson property names."""
    props = {"EVENEMENT": "Test", "TYPE_PERI": "Rouge", "DATE_DEBUT": start, "DATE_FIN": end}
    geom = {"type": "Polygon", "coordinates": SQUARE} if geometry is None else geometry
    return {"type": "Feature", "properties": props, "geometry": geom}


def test_zones_give_875_perimeters_and_6_rejections() -> None:
    """881 features, 6 with a null geometry: 875 perimeter events, 6 missing_geometry rejections."""
    nulls = [n for n, f in enumerate(ZONES["features"]) if f["geometry"] is None]
    assert len(ZONES["features"]) == 881 and nulls == [194, 195, 196, 197, 198, 199]
    items = zone_items()
    check(items)
    rejected = [i for i in items if isinstance(i, Rejection)]
    assert len(items) - len(rejected) == 875
    assert [r.where.split(" (")[0] for r in rejected] == [f"feature {n}" for n in nulls]
    assert {r.reason for r in rejected} == {"missing_geometry"}
    events = [i for i in items if isinstance(i, Event)]
    assert Counter(e.geometry["type"] for e in events) == {"Polygon": 694, "MultiPolygon": 181}
    assert {e.kind for e in events} == {"perimeter"}


def test_zones_are_2d_lon_lat_and_keep_properties() -> None:
    """The Z of 0 is dropped, lon/lat order is kept, properties are in details."""
    first = zone_items()[0]
    assert isinstance(first, Event)
    assert first.geometry["coordinates"][0][0] == [2.367419314842379, 48.931184887688275]
    assert first.details["TYPE_PERI"] == "Rouge" and first.details["EVENEMENT"] == "PARA_Marathon"
    assert first.severity == "high" and first.title == "PARA_Marathon — périmètre Rouge"


def test_zone_times_are_paris_summer_time() -> None:
    """'2024/09/08 05:30:00.000' in Paris is 05:30+02:00, i.e. 03:30 UTC."""
    first = zone_items()[0]
    assert isinstance(first, Event) and first.valid_from is not None
    assert first.valid_from.utcoffset() == timedelta(hours=2)
    assert first.valid_from.astimezone(UTC) == datetime(2024, 9, 8, 3, 30, tzinfo=UTC)
    assert first.valid_until is not None
    assert first.valid_until.astimezone(UTC) == datetime(2024, 9, 8, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("local", "offset_h", "utc"),
    [
        ("2024/01/15 08:00:00.000", 1, datetime(2024, 1, 15, 7, 0, tzinfo=UTC)),
        ("2024/07/15 08:00:00.000", 2, datetime(2024, 7, 15, 6, 0, tzinfo=UTC)),
        ("2024/03/31 01:59:00.000", 1, datetime(2024, 3, 31, 0, 59, tzinfo=UTC)),
        ("2024/03/31 03:00:00.000", 2, datetime(2024, 3, 31, 1, 0, tzinfo=UTC)),
        ("2024/10/27 04:00:00.000", 1, datetime(2024, 10, 27, 3, 0, tzinfo=UTC)),
    ],
)
def test_local_times_follow_daylight_saving(local: str, offset_h: int, utc: datetime) -> None:
    """Winter dates are +01:00 and summer dates +02:00, on either side of each DST change."""
    (event,) = parse_perimeters(collection(zone(local, "2024/12/31 23:00:00.000")))
    assert isinstance(event, Event) and event.valid_from is not None
    assert event.valid_from.utcoffset() == timedelta(hours=offset_h)
    assert event.valid_from == utc
    assert to_plain(event)["valid_from"].endswith(f"+0{offset_h}:00")


@pytest.mark.parametrize(
    ("start", "end", "geometry", "reason"),
    [
        ("2024/03/31 02:30:00.000", "2024/04/01 00:00:00.000", None, "bad_time"),  # DST gap
        ("2024/02/30 08:00:00.000", "2024/04/01 00:00:00.000", None, "bad_time"),
        ("2024/05/02 08:00:00.000", "2024/05/01 00:00:00.000", None, "bad_time"),
        (
            "2024/05/01 08:00:00.000",
            "2024/05/02 00:00:00.000",
            {"type": "Point", "coordinates": [2.3, 48.8]},
            "invalid_geometry",
        ),
        (
            "2024/05/01 08:00:00.000",
            "2024/05/02 00:00:00.000",
            {"type": "Polygon", "coordinates": [[[2.3, 48.8]]]},
            "invalid_geometry",
        ),
    ],
)
def test_bad_features_are_rejected(start: str, end: str, geometry: Any, reason: str) -> None:
    """Non-existent local times, impossible dates, end before start and non-polygons are refused."""
    (item,) = parse_perimeters(collection(zone(start, end, geometry)))
    assert isinstance(item, Rejection) and item.reason == reason and item.where.startswith("feature 0")


def test_ids_are_stable_and_unique() -> None:
    """Ids come from the properties: unique in the file, the same after the features are reversed."""
    items = [i for i in zone_items() if isinstance(i, Event)]
    ids = [e.id for e in items]
    assert len(set(ids)) == len(ids) and all(i.startswith("perimeters:") for i in ids)
    flipped = dict(ZONES, features=ZONES["features"][::-1])
    again = {i.id for i in parse_perimeters(json.dumps(flipped)) if isinstance(i, Event)}
    assert len(again) == len(ids)
    plain = {i for i in ids if not re.search(r"-\d+$", i)}
    assert plain <= again


@pytest.mark.parametrize(
    ("props", "key"),
    [
        (
            {
                "TYPE_PERI": "Rouge",
                "EVENEMENT": "PARA_Marathon",
                "DATE_DEBUT": "2024/09/08 05:30:00.000",
                "DATE_FIN": "2024/09/08 14:00:00.000",
            },
            "e770f0a3af327b78",
        ),
        ({"EVENEMENT": "Marathon", "ZONE": 3, "ROUGE": True, "NOTE": None, "Z": 1.5}, "07b55af266379c39"),
    ],
)
def test_ids_do_not_change_between_releases(props: dict[str, Any], key: str) -> None:
    """A feature without an id keeps the id it was given before: a new release that named it
    otherwise would end every perimeter in force and raise it again for every driver."""
    assert stable_key(props) == key
    assert stable_key(dict(reversed(props.items()))) == key


@pytest.mark.parametrize(
    "document", [b"", b"[]", b'{"type": "Feature"}', b'{"type": "FeatureCollection"}', b"not json"]
)
def test_unreadable_documents_raise_feed_format_error(document: bytes) -> None:
    """Anything but a FeatureCollection with a features array is refused as a whole."""
    with pytest.raises(FeedFormatError):
        parse_perimeters(document)


@PROPERTY
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    """Random bytes either raise FeedFormatError or yield only events and rejections."""
    check_or_refused(parse_perimeters, data)


SMALL = json.dumps(dict(ZONES, features=ZONES["features"][190:196])).encode()
JSONISH = st.one_of(st.binary(max_size=6), st.text('0123456789-.:,[]{}" /', max_size=4).map(str.encode))


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, len(SMALL)), st.integers(0, 12), JSONISH), max_size=4))
def test_mutated_zones_never_crash(edits: list[tuple[int, int, bytes]]) -> None:
    """Six real features with random cuts and insertions give valid items or FeedFormatError."""
    data = SMALL
    for at, cut, insert in edits:
        data = data[:at] + insert + data[at + cut :]
    check_or_refused(parse_perimeters, data)


FINITE = st.floats(allow_nan=False, allow_infinity=False)


@PROPERTY
@given(
    st.dictionaries(
        st.sampled_from(["EVENEMENT", "TYPE_PERI", "DATE_DEBUT", "DATE_FIN", "X"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=30), FINITE),
    ),
    st.one_of(
        st.none(),
        st.just({"type": "Polygon", "coordinates": SQUARE}),
        st.recursive(FINITE | st.integers(), st.lists, max_leaves=10),
    ),
)
def test_arbitrary_properties_and_geometries_never_crash(props: dict[str, Any], geometry: Any) -> None:
    """Any property values and geometry shapes give one event or one rejection."""
    feature = {"type": "Feature", "properties": props, "geometry": geometry}
    items = parse_perimeters(collection(feature))
    check(items)
    assert len(items) == 1
