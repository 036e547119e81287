"""NMEA 0183 framing for AIS: tag blocks, checksums and the fields of !xxVDM sentences."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from stream.feeds.base import RecordError

MAX_LINE = 1024
_HEX = frozenset("0123456789ABCDEFabcdef")
_MIN_TIME, _MAX_TIME = 0, 4102444800  # 1970 .. 2100


class Sentence(NamedTuple):
    """One checked AIS sentence: fragment numbering, channel, payload and fill bits."""

    talker: str
    frag_cnt: int
    frag_num: int
    seq_id: str
    channel: str
    payload: str
    fill_bits: int
    received_at: datetime | None


def checksum(body: str) -> int:
    """XOR of the sentence characters between '!' and '*'."""
    raw = body.encode("ascii")
    size, value = len(raw), int.from_bytes(raw, "big")
    while size > 1:
        half = size // 2
        value = (value >> (8 * half)) ^ (value & ((1 << (8 * half)) - 1))
        size -= half
    return value


def _tag_time(tag: str) -> datetime | None:
    """The 'c:' (UNIX seconds) field of a tag block, when plausible."""
    for part in tag.split("*")[0].split(","):
        if part.startswith("c:") and part[2:].isdigit():
            seconds = int(part[2:])
            if seconds > 10**11:  # milliseconds
                seconds //= 1000
            if _MIN_TIME < seconds < _MAX_TIME:
                return datetime.fromtimestamp(seconds, UTC)
    return None


def sentence(line: str) -> Sentence:
    """Parse and check one line; RecordError (not_ais, bad_checksum, malformed) otherwise."""
    if len(line) > MAX_LINE:
        raise RecordError(f"line is {len(line)} characters, over {MAX_LINE}", "malformed")
    received = None
    if line.startswith("\\"):
        end = line.find("\\", 1)
        if end < 0:
            raise RecordError("tag block is not closed by '\\'", "malformed")
        received, line = _tag_time(line[1:end]), line[end + 1 :]
    if not line.startswith("!"):
        if line.startswith("$"):
            name = line[1:].split(",", 1)[0][:8]
            raise RecordError(f"${name} is an NMEA sentence but not AIS (!AIVDM/!AIVDO)", "not_ais")
        raise RecordError("not an NMEA sentence: expected !AIVDM or !AIVDO", "not_ais")
    star = line.rfind("*")
    given = line[star + 1 : star + 3]
    if star < 0 or len(given) != 2 or not _HEX.issuperset(given):
        raise RecordError("sentence has no *hh checksum", "malformed")
    body = line[1:star]
    if not body.isascii():
        raise RecordError("sentence holds non-ASCII characters", "undecodable")
    expected = checksum(body)
    if expected != int(given, 16):
        raise RecordError(
            f"checksum {given.upper()} does not match the sentence ({expected:02X}): corrupted",
            "bad_checksum",
        )
    fields = body.split(",")
    if len(fields) != 7 or fields[0][2:] not in ("VDM", "VDO") or len(fields[0]) != 5:
        raise RecordError(f"{fields[0][:8]} is not an AIS sentence (xxVDM/xxVDO)", "not_ais")
    talker, cnt, num, seq, channel, payload, fill = fields
    if not (cnt.isdigit() and num.isdigit() and fill.isdigit() and len(fill) == 1):
        raise RecordError("fragment count, number or fill bits is not a digit", "malformed")
    frag_cnt, frag_num = int(cnt), int(num)
    if not 1 <= frag_num <= frag_cnt <= 9 or int(fill) > 5:
        raise RecordError(f"fragment {frag_num} of {frag_cnt} is impossible", "malformed")
    if not payload:
        raise RecordError("sentence has an empty payload", "undecodable")
    return Sentence(talker, frag_cnt, frag_num, seq, channel, payload, int(fill), received)
