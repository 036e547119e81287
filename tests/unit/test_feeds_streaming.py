"""Streaming parsers: memory bounded by one record, oversized records rejected alone, truthful refusals."""

from __future__ import annotations

import io
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.event import Event
from schemas.rejected import Rejection
from stream.feeds import jsonstream
from stream.feeds.base import MAX_RECORD_BYTES, RECOGNITION_LINES, FeedFormatError, Item
from stream.feeds.cifs import REFERENCE_RECORDS
from stream.feeds.registry import iter_parse, parse
from tests.support.feeds import check

DATA = Path(__file__).parents[2] / "stream" / "data"
OVER = MAX_RECORD_BYTES + 1024 * 1024
"""A size just over the record bound."""
POINT = {
    "source": "native",
    "kind": "hazard",
    "geometry": {"type": "Point", "coordinates": [2.35, 48.85]},
    "valid_from": None,
    "valid_until": None,
    "status": "active",
}


def peak_while(consume: Callable[[], object]) -> int:
    """Peak bytes allocated by Python while ``consume`` runs (the input is allocated before)."""
    tracemalloc.start()
    try:
        consume()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def drain(items: Iterator[Any]) -> int:
    """Count items without keeping them."""
    return sum(1 for _ in items)


def incident(ident: str, polyline: str = "48.8566 2.3522 48.8570 2.3530", extra: str = "") -> bytes:
    """One CIFS incident element."""
    return (
        f'<incident id="{ident}"><type>ROAD_CLOSED</type><polyline>{polyline}</polyline>'
        f"<starttime>2024-05-01T08:00:00+02:00</starttime>{extra}</incident>"
    ).encode()


def test_json_array_is_read_with_memory_bounded_by_a_record() -> None:
    """A 30 MB JSON array of records is walked with a peak far below its size."""
    record = orjson.dumps({"id": "x" * 100, "values": list(range(40)), "nested": {"a": [1.5, None]}})
    data = b"[" + b",".join([record] * 120_000) + b"]"
    assert len(data) > 30_000_000
    seen = []
    peak = peak_while(lambda: seen.append(drain(jsonstream.walk(io.BytesIO(data), "test", ("item",)))))
    assert seen == [120_000 + 1]  # the records and the root
    assert peak < 2_000_000, peak


def test_native_json_lines_are_parsed_with_bounded_memory() -> None:
    """20 MB of native events as JSON lines: every one parsed, peak far below the input."""
    line = orjson.dumps({**POINT, "id": "native:x", "details": {"note": "t" * 40_000}}) + b"\n"
    data = line * 500
    counted = []
    peak = peak_while(lambda: counted.append(drain(iter_parse("native", io.BytesIO(data)))))
    assert counted == [500]
    assert peak < len(data) / 4, (peak, len(data))


def test_ais_memory_does_not_grow_with_the_input() -> None:
    """AIS text decoded chunk by chunk: 1 MB of input peaks no higher than 200 kB does."""
    sample = (DATA / "nmea_data_sample.txt").read_bytes()

    def peak_for(copies: int) -> int:
        data = sample * copies
        counted = []
        peak = peak_while(lambda: counted.append(drain(iter_parse("ais", io.BytesIO(data)))))
        assert counted[0] > copies * 890
        return peak

    small, large = peak_for(5), peak_for(25)
    assert large < small * 1.3, (small, large)


def test_cifs_xml_is_read_with_bounded_memory(tmp_path: Path) -> None:
    """A 128 MB CIFS document parsed in a fresh process: its peak RSS stays far below the document.

    lxml's tree lives outside Python's allocator (tracemalloc does not see it): the child process
    reports its own peak resident size.
    """
    text = "<location_description>" + "d" * 3000 + "</location_description>"
    path = tmp_path / "big.xml"
    with path.open("wb") as out:
        out.write(b"<incidents>")
        for n in range(40_000):
            out.write(incident(f"i{n}", extra=text))
        out.write(b"</incidents>")
    code = (  # VmHWM, not ru_maxrss: the latter keeps the forking parent's size across exec
        "import re, sys; from stream.feeds.registry import iter_parse\n"
        "n = sum(1 for _ in iter_parse('cifs', open(sys.argv[1], 'rb')))\n"
        "print(n, int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1]) * 1024)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, check=True)
    count, rss = map(int, done.stdout.split())
    assert count == 40_000
    assert rss < path.stat().st_size * 0.75, rss


def test_oversized_json_line_is_rejected_alone() -> None:
    """A JSON line over MAX_RECORD_BYTES is one too_large rejection; the lines around it parse."""
    good = orjson.dumps({**POINT, "id": "native:ok"})
    big = orjson.dumps({**POINT, "id": "native:big", "title": "x" * OVER})
    items = parse("native", good + b"\n" + big + b"\n" + good.replace(b":ok", b":ok2") + b"\n")
    assert [type(i).__name__ for i in items] == ["Event", "Rejection", "Event"]
    assert isinstance(items[1], Rejection) and items[1].reason == "too_large" and items[1].where == "line 2"


def test_oversized_array_element_is_rejected_alone() -> None:
    """In a JSON array, an element over the bound (many small values) is rejected; the next parses."""
    big = {**POINT, "id": "native:big", "details": {"n": ["x" * 100] * (OVER // 100)}}
    data = orjson.dumps([big, {**POINT, "id": "native:after"}])
    items = parse("native", data)
    assert [type(i).__name__ for i in items] == ["Rejection", "Event"]
    assert isinstance(items[0], Rejection) and items[0].reason == "too_large"


def test_string_over_the_bound_is_rejected_alone() -> None:
    """One string value over MAX_RECORD_BYTES (under twice it) rejects its record, not the document."""
    data = orjson.dumps([{**POINT, "id": "native:big", "title": "x" * OVER}, {**POINT, "id": "native:b"}])
    assert [type(i).__name__ for i in parse("native", data)] == ["Rejection", "Event"]


def test_token_that_never_ends_refuses_the_rest_of_the_document() -> None:
    """A single value running past twice the bound ends the document with FeedFormatError."""
    data = b'[{"id": "' + b"x" * (2 * MAX_RECORD_BYTES + 2 * 2**20)
    with pytest.raises(FeedFormatError, match="no event record ends within"):
        parse("native", data)


def test_oversized_xml_record_is_rejected_alone() -> None:
    """A CIFS incident over MAX_RECORD_BYTES is rejected with its id; the incidents around it parse."""
    big = incident("big", extra="<schedule>" + "<monday>08:00-09:00</monday>" * (OVER // 28) + "</schedule>")
    data = b"<incidents>" + incident("a") + big + incident("b", "48.86 2.34 48.87 2.35") + b"</incidents>"
    items = parse("cifs", data)
    assert [type(i).__name__ for i in items] == ["Event", "Rejection", "Event"]
    assert isinstance(items[1], Rejection) and items[1].reason == "too_large"
    assert items[1].where == "incident big"


def test_deeply_nested_records_are_rejected_not_crashing() -> None:
    """Records nested over 64 levels are too_deep rejections, in arrays and JSON lines alike."""
    nested: Any = 0
    for _ in range(80):
        nested = {"d": [nested]}
    deep = {**POINT, "id": "native:deep", "details": nested}
    for data in (orjson.dumps([deep]), orjson.dumps(deep) + b"\n" + orjson.dumps(deep) + b"\n"):
        items = parse("native", data)
        assert {i.reason for i in items if isinstance(i, Rejection)} == {"too_deep"}


def test_integers_beyond_64_bits_are_rejected_with_their_record() -> None:
    """Integers orjson cannot hold (and a 5,000-digit one) never reach the event encoder."""
    items = parse("perimeters", b'{"type": "FeatureCollection", "features": [{"x": 18446744073709551616}]}')
    assert [i.reason for i in items if isinstance(i, Rejection)] == ["undecodable"]
    with pytest.raises(FeedFormatError):
        parse("perimeters", b'{"type": "FeatureCollection", "features": [' + b"9" * 5000 + b"]}")


def test_lines_without_any_nmea_sentence_are_refused_early() -> None:
    """Non-AIS lines: FeedFormatError after RECOGNITION_LINES lines, nothing yielded before it."""
    junk = b"$GPGGA,184353.07,1929.045,S,02410.506,E,1,04,2.6,100.00,M,-33.9,M,,0000*6D\n"
    stream = io.BytesIO(junk * (RECOGNITION_LINES * 100))
    reader = iter_parse("ais", stream)
    with pytest.raises(FeedFormatError, match="checksummed AIS sentence"):
        next(reader)
    assert stream.tell() < len(junk) * RECOGNITION_LINES * 2


def test_rejections_before_the_first_sentence_are_kept_in_order() -> None:
    """Lines rejected before the first AIS sentence come out once it is seen, in their order."""
    items = parse("ais", b"hello\n" * 5 + (DATA / "mixed.txt").read_bytes())
    check(items)
    assert [i.where for i in items[:5]] == [f"line {n}" for n in range(1, 6)]


def test_swapped_axes_are_caught_after_the_reference_window() -> None:
    """An incident with swapped axes past the first REFERENCE_RECORDS is still rejected as swapped."""
    body = b"".join(incident(f"p{n}") for n in range(REFERENCE_RECORDS + 5))
    swapped = incident("far", "2.3522 48.8566 2.3530 48.8570")
    items: list[Item] = parse("cifs", b"<incidents>" + body + swapped + b"</incidents>")
    assert sum(isinstance(i, Event) for i in items) == REFERENCE_RECORDS + 5
    last = items[-1]
    assert isinstance(last, Rejection) and last.reason == "swapped_coordinates"
    assert last.where == "incident far"


def test_bulk_and_streaming_apis_agree() -> None:
    """parse(format, bytes) gives exactly what iter_parse gives on the same bytes."""
    samples = [("cifs", "cifs-incidents.xml"), ("datex2", "datex2-regulations.xml"), ("ais", "mixed.txt")]
    for fmt, name in samples:
        data = (DATA / name).read_bytes()
        assert parse(fmt, data) == list(iter_parse(fmt, io.BytesIO(data)))


@pytest.mark.parametrize("fmt", ["cifs", "native", "perimeters", "portcall"])
def test_number_with_a_huge_exponent_is_refused_not_raised(fmt: str) -> None:
    """Fuzz finding: '[4e333…' made Decimal raise InvalidOperation out of the parser."""
    with pytest.raises(FeedFormatError):
        parse(fmt, b"[4e" + b"3" * 76 + b"449")
    with pytest.raises(FeedFormatError):
        parse(fmt, b'{"type": "FeatureCollection", "features": [4e' + b"3" * 76 + b"]}")
