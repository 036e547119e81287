"""AIS NMEA: pyais's sample files, multipart static data, checksums, streaming chunks."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyais.encode import encode_dict
from pyais.messages import NMEAMessage

from schemas.event import Event
from schemas.rejected import Rejection
from stream.feeds.ais import AisDecoder, parse_ais
from stream.feeds.base import FeedFormatError, Item
from tests.support.feeds import PROPERTY, check, check_or_refused, reasons

DATA = Path(__file__).parents[2] / "stream" / "data"
SAMPLE = (DATA / "nmea_data_sample.txt").read_bytes()
MIXED = (DATA / "mixed.txt").read_bytes()
TYPE5 = [
    "!AIVDM,2,1,1,A,55?MbV02;H;s<HtKR20EHE:0@T4@Dn2222222216L961O5Gf0NSQEp6ClRp8,0*1C",
    "!AIVDM,2,2,1,A,88888888880,2*25",
]


def position(mmsi: int, lon: float, lat: float) -> str:
    """A type 1 position sentence encoded by pyais."""
    fields = {"type": 1, "mmsi": mmsi, "lon": lon, "lat": lat, "speed": 5.0, "course": 90.0, "heading": 91}
    (line,) = encode_dict(fields, talker_id="AI")
    return str(line)


def reference_counts() -> Counter[str]:
    """What the sample holds, read line by line with pyais alone (independent of our decoder)."""
    found: Counter[str] = Counter()
    for raw in SAMPLE.splitlines():
        msg = NMEAMessage.from_bytes(raw)
        if msg.frag_cnt > 1:
            found["fragment"] += 1
        elif not msg.payload:
            found["empty"] += 1
        else:
            decoded = msg.decode()
            if decoded.msg_type in (1, 2, 3, 18, 19):
                found["position" if decoded.lat != 91 else "no_position"] += 1
            elif decoded.msg_type in (5, 24):
                found["static"] += 1
            else:
                found["other"] += 1
    return found


def test_sample_counts() -> None:
    """898 lines: 758 positions, 4 without position, 100 empty, 20 lone fragments, 14 other, 2 static."""
    assert len(SAMPLE.splitlines()) == 898
    assert reference_counts() == {
        "position": 758,
        "no_position": 4,
        "empty": 100,
        "fragment": 20,
        "other": 14,
        "static": 2,
    }
    assert SAMPLE.count(b"!AIVDM,2,2,") == 0  # the 20 first fragments never get their second part
    items = parse_ais(SAMPLE)
    check(items)
    assert sum(isinstance(i, Event) for i in items) == 758
    assert reasons(items) == {
        "undecodable": 100,
        "incomplete_multipart": 20,
        "unsupported_type": 14,
        "no_position": 4,
    }


def test_positions_match_pyais_and_come_out_lon_lat() -> None:
    """Each event's [lon, lat], speed and course equal pyais's decoding of the same line."""
    decoder = AisDecoder()
    compared = 0
    for raw in SAMPLE.decode().splitlines():
        items = decoder.feed_line(raw)
        if len(items) == 1 and isinstance(items[0], Event):
            ref = NMEAMessage.from_string(raw).decode()
            event = items[0]
            assert event.geometry == {"type": "Point", "coordinates": [ref.lon, ref.lat]}
            assert event.id == f"ais:{ref.mmsi}" and event.details["mmsi"] == ref.mmsi
            assert event.details.get("sog", 102.3) == ref.speed
            assert event.details.get("cog", 360.0) == ref.course
            compared += 1
    assert compared == 758


def test_mixed_file_counts() -> None:
    """mixed.txt: 10 positions; 8 non-AIS lines and 1 without checksum; 2 type 5 messages absorbed."""
    items = parse_ais(MIXED)
    check(items)
    assert sum(isinstance(i, Event) for i in items) == 10
    assert reasons(items) == {"not_ais": 8, "malformed": 1}
    rejected = [i for i in items if isinstance(i, Rejection)]
    assert rejected[0].where == "line 7" and "$GPGGA" in rejected[0].error


def test_multipart_static_data_is_carried_by_later_positions() -> None:
    """Type 5 in two fragments gives name, IMO, size, destination, ETA, draught to positions."""
    decoder = AisDecoder()
    assert decoder.feed_line(TYPE5[0]) == [] and decoder.feed_line(TYPE5[1]) == []
    (event,) = decoder.feed_line(position(351759000, -74.02, 40.68))
    assert isinstance(event, Event) and event.id == "ais:351759000"
    assert event.geometry["coordinates"] == [-74.02, 40.68]
    details = event.details
    assert details["name"] == "EVER DIADEM" and details["imo"] == 9134270
    assert details["callsign"] == "3FOF8" and details["destination"] == "NEW YORK"
    assert details["length_m"] == 225 + 70 and details["width_m"] == 1 + 31
    assert details["eta"] == "--05-15T14:00Z" and details["draught_m"] == 12.2
    assert details["ship_type"] == 70 and details["ship_type_name"] == "cargo"
    assert decoder.static(351759000) is not None


def test_fragments_and_lines_split_across_chunks() -> None:
    """A chunk may end mid-line and a multipart message may span chunks."""
    decoder = AisDecoder()
    text = "\n".join([TYPE5[0], TYPE5[1], position(351759000, 4.1, 51.9)]) + "\n"
    got: list[Item] = []
    for start in range(0, len(text), 7):
        got.extend(decoder.feed(text[start : start + 7].encode()))
    got.extend(decoder.flush())
    (event,) = got
    assert isinstance(event, Event) and event.details["name"] == "EVER DIADEM"


def test_received_time_and_tag_block_time() -> None:
    """updated_at is the caller's receive time, else the tag block's c: UNIX time."""
    when = datetime(2024, 5, 1, 12, tzinfo=UTC)
    (event,) = AisDecoder().feed_line(position(227000001, 2.3, 48.8), received_at=when)
    assert isinstance(event, Event) and event.updated_at == when
    (tagged,) = AisDecoder().feed_line("\\s:r1,c:1714564800*00\\" + position(227000001, 2.3, 48.8))
    assert isinstance(tagged, Event) and tagged.updated_at == when


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("!AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0*24", "bad_checksum"),
        ("!AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Iq,0*23", "bad_checksum"),
        ("!AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0", "malformed"),
        ("!AIVDM,1,1,,B,,0*25", "undecodable"),
        ("$GPGGA,184353.07,1929.045,S,02410.506,E,1,04,2.6,100.00,M,-33.9,M,,0000*6D", "not_ais"),
        ("hello", "not_ais"),
        ("!AIVDM,2,2,1,A,88888888880,2*25", "incomplete_multipart"),
    ],
)
def test_bad_lines_are_rejections(line: str, reason: str) -> None:
    """Corrupted checksums, missing checksums, empty payloads and strays are rejected by line."""
    items = AisDecoder().feed_line(line)
    assert len(items) == 1 and isinstance(items[0], Rejection)
    assert items[0].reason == reason and items[0].where == "line 1"


def test_unfinished_multipart_is_rejected_on_flush() -> None:
    """A first fragment without its second is a rejection once the input ends."""
    decoder = AisDecoder()
    assert decoder.feed(TYPE5[0] + "\n") == []
    (item,) = decoder.flush()
    assert isinstance(item, Rejection) and item.reason == "incomplete_multipart"


def test_text_without_any_nmea_is_not_ais() -> None:
    """A document with no NMEA sentence at all cannot be read as AIS."""
    with pytest.raises(FeedFormatError):
        parse_ais((DATA / "cifs-incidents.xml").read_bytes())
    assert parse_ais(b"") == [] and parse_ais(b"# only a comment\n\n") == []


@PROPERTY
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    """Random bytes either raise FeedFormatError or yield only events and rejections."""
    check_or_refused(parse_ais, data)


NMEAISH = st.text("!$\\,*0123456789ABCDEFVDMO:;<=>?@`abcw\n", max_size=8)


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, len(MIXED)), st.integers(0, 8), NMEAISH), max_size=6))
def test_mutated_sentences_never_crash(edits: list[tuple[int, int, str]]) -> None:
    """mixed.txt with random cuts and NMEA-like insertions gives valid items or FeedFormatError."""
    data = MIXED.decode()
    for at, cut, insert in edits:
        data = data[:at] + insert + data[at + cut :]
    check_or_refused(parse_ais, data)


@PROPERTY
@given(st.lists(st.binary(max_size=200), max_size=10))
def test_decoder_never_raises_on_any_chunks(chunks: list[bytes]) -> None:
    """The streaming decoder never raises, whatever chunks it is fed."""
    decoder = AisDecoder(max_pending=4)
    items: list[Item] = []
    for chunk in chunks:
        items.extend(decoder.feed(chunk))
    items.extend(decoder.flush())
    check(items)
