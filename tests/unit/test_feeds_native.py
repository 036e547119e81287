"""Native event JSON: what `corridor parse` prints reads back, invalid records are named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import to_plain
from schemas.event import Event
from schemas.rejected import Rejection
from stream.feeds.base import FeedFormatError
from stream.feeds.cifs import parse_cifs
from stream.feeds.native import parse_native
from tests.support.feeds import JSON_VALUES, PROPERTY, check, check_or_refused

CIFS = parse_cifs((Path(__file__).parents[2] / "stream" / "data" / "cifs-incidents.xml").read_bytes())
PLAIN = [to_plain(e) for e in CIFS if isinstance(e, Event)]


@pytest.mark.parametrize(
    "encode",
    [
        lambda rows: b"\n".join(orjson.dumps(r) for r in rows) + b"\n",
        lambda rows: orjson.dumps(rows),
    ],
    ids=["json-lines", "array"],
)
def test_parsed_events_round_trip(encode: Any) -> None:
    """The 7 CIFS events written as JSON lines or an array read back equal."""
    items = parse_native(encode(PLAIN))
    assert items == CIFS


def test_single_object() -> None:
    """One JSON object is one event."""
    (event,) = parse_native(orjson.dumps(PLAIN[0]))
    assert event == CIFS[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "party"}, "kind: 'party' is not one of"),
        ({"valid_from": "2024-01-01 10:00"}, "valid_from: '2024-01-01 10:00' does not match"),
        ({"geometry": {"type": "Point", "coordinates": [200, 48]}}, "geometry"),
        ({"status": None}, "status: None is not one of"),
        ({"vehicles": {"max_weight_t": -1}}, "vehicles/max_weight_t: -1 is less than the minimum"),
        ({"valid_until": "2000-01-01T00:00:00Z"}, "valid_until: is before valid_from"),
    ],
)
def test_invalid_events_are_rejected_naming_the_field(change: dict[str, Any], message: str) -> None:
    """Schema violations become rejections whose error names the field."""
    items = parse_native(orjson.dumps([PLAIN[0], {**PLAIN[1], **change}]))
    assert isinstance(items[0], Event)
    assert isinstance(items[1], Rejection) and message in items[1].error
    assert items[1].where.startswith("event[1] cifs:")


def test_bad_json_line_is_one_rejection() -> None:
    """In JSON lines, a line that is not JSON is rejected and the others still parse."""
    data = orjson.dumps(PLAIN[0]) + b"\n{not json\n" + orjson.dumps(PLAIN[1]) + b"\n"
    items = parse_native(data)
    assert [type(i).__name__ for i in items] == ["Event", "Rejection", "Event"]
    assert isinstance(items[1], Rejection) and items[1].where == "line 2"
    assert items[1].reason == "undecodable"


@pytest.mark.parametrize("document", [b"", b"garbage", b"42", b"\n\n"])
def test_unreadable_documents_raise_feed_format_error(document: bytes) -> None:
    """Nothing that reads as JSON at all: FeedFormatError."""
    with pytest.raises(FeedFormatError):
        parse_native(document)


@PROPERTY
@given(st.binary(max_size=1000))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    """Random bytes either raise FeedFormatError or yield only events and rejections."""
    check_or_refused(parse_native, data)


@PROPERTY
@given(st.dictionaries(st.sampled_from(sorted(PLAIN[0])), JSON_VALUES, max_size=4))
def test_mutated_events_never_crash(changes: dict[str, Any]) -> None:
    """A valid event with arbitrary values swapped in gives exactly one event or rejection."""
    items = parse_native(json.dumps({**PLAIN[0], **changes}))
    check(items)
    assert len(items) == 1
