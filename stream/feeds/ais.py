"""AIS NMEA -> ``vessel`` events keyed by MMSI: incremental decoder and bulk parser."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, BinaryIO

from schemas.event import Event
from schemas.rejected import Rejection
from stream.feeds import nmea
from stream.feeds.ais_payload import POSITION_TYPES, STATIC_TYPES, decode_payload
from stream.feeds.base import (
    CHUNK_BYTES,
    RECOGNITION_LINES,
    FeedFormatError,
    Item,
    RecordError,
    collect,
    gc_paused,
    reject,
)

SOURCE = "ais"
Pending = tuple[str, list[nmea.Sentence], list[str]]


MAX_PARTIAL_CHARS = 4096
"""Longest partial line kept between two chunks; NMEA sentences are at most 82 characters."""


class AisDecoder:
    """Feed NMEA lines, get vessel events and rejections; keeps static data by MMSI.

    Multipart messages are assembled across calls; static/voyage data (types 5, 24) is
    remembered and carried by that vessel's later position events. A chunk may end in the
    middle of a line: the rest is kept until the next ``feed`` or ``flush``.
    """

    def __init__(self, max_pending: int = 1024, max_vessels: int = 100_000) -> None:
        self.max_pending = max_pending
        self.max_vessels = max_vessels
        self.line_no = 0
        self.stats: Counter[str] = Counter()
        self._partial = ""
        self._pending: OrderedDict[tuple[str, ...], Pending] = OrderedDict()
        self._static: OrderedDict[int, dict[str, Any]] = OrderedDict()

    def static(self, mmsi: int) -> dict[str, Any] | None:
        """The static and voyage data known for a vessel, or None."""
        return self._static.get(mmsi)

    def feed(self, data: bytes | str, received_at: datetime | None = None) -> list[Item]:
        """Decode a chunk of text; a trailing partial line waits for the next chunk."""
        chunk = data.decode("latin-1") if isinstance(data, bytes) else data
        lines = (self._partial + chunk).split("\n")
        self._partial = lines.pop()
        out: list[Item] = []
        if len(self._partial) > MAX_PARTIAL_CHARS:
            out.append(
                Rejection(
                    f"no line end within {MAX_PARTIAL_CHARS} characters: not an NMEA stream",
                    where="stream",
                    reason="line_too_long",
                    raw=self._partial[:200],
                )
            )
            self.stats["lines"] += 1
            self._partial = ""
        for line in lines:
            out.extend(self.feed_line(line, received_at))
        return out

    def feed_lines(self, lines: Iterable[str], received_at: datetime | None = None) -> list[Item]:
        """Decode complete lines (no partial-line buffering)."""
        out: list[Item] = []
        for line in lines:
            out.extend(self.feed_line(line, received_at))
        return out

    def flush(self) -> list[Item]:
        """End of input: decode a buffered partial line, reject unfinished multipart groups."""
        out = self.feed_line(self._partial) if self._partial else []
        self._partial = ""
        while self._pending:
            out.append(self._incomplete(self._pending.popitem(last=False)[1]))
        return out

    def feed_line(self, line: str, received_at: datetime | None = None) -> list[Item]:
        """Decode one line: [] for blanks, comments and held fragments, else one item."""
        self.line_no += 1
        line = line.strip()
        if not line or line.startswith("#"):
            return []
        self.stats["lines"] += 1
        where = f"line {self.line_no}"
        try:
            sentence = nmea.sentence(line)
        except RecordError as exc:
            return [reject(where, exc, line)]
        self.stats["sentences"] += 1
        if sentence.frag_cnt == 1:
            stamp = received_at or sentence.received_at
            return self._message(where, sentence.payload, sentence.fill_bits, line, stamp)
        return self._fragment(where, sentence, line, received_at)

    def _fragment(
        self, where: str, part: nmea.Sentence, line: str, received_at: datetime | None
    ) -> list[Item]:
        key = (part.talker, part.seq_id, part.channel, str(part.frag_cnt))
        out: list[Item] = []
        if part.frag_num == 1:
            if key in self._pending:
                out.append(self._incomplete(self._pending.pop(key)))
            if len(self._pending) >= self.max_pending:
                out.append(self._incomplete(self._pending.popitem(last=False)[1]))
            self._pending[key] = (where, [part], [line])
            return out
        group = self._pending.get(key)
        if group is None or len(group[1]) != part.frag_num - 1:
            error = f"fragment {part.frag_num} of {part.frag_cnt} arrived without the ones before"
            return [Rejection(error, where, "incomplete_multipart", line)]
        group[1].append(part)
        group[2].append(line)
        if part.frag_num < part.frag_cnt:
            return []
        del self._pending[key]
        payload = "".join(p.payload for p in group[1])
        stamp = received_at or part.received_at or group[1][0].received_at
        return self._message(group[0], payload, part.fill_bits, "\n".join(group[2]), stamp)

    def _incomplete(self, group: Pending) -> Rejection:
        where, parts, lines = group
        error = f"multipart message ended after {len(parts)} of {parts[0].frag_cnt} fragments"
        return Rejection(error, where, "incomplete_multipart", "\n".join(lines))

    def _message(
        self, where: str, payload: str, fill: int, raw: str, received_at: datetime | None
    ) -> list[Item]:
        try:
            msg_type, mmsi, fields = decode_payload(payload, fill)
        except RecordError as exc:
            return [reject(where, exc, raw)]
        if msg_type in STATIC_TYPES:
            self._remember(mmsi, fields)
            self.stats["static"] += 1
            if msg_type not in POSITION_TYPES:
                return []
        position = fields.pop("_position")
        static = self._static.get(mmsi)
        details = {**static, **fields} if static else fields
        return [
            Event(
                id=f"{SOURCE}:{mmsi}",
                source=SOURCE,
                kind="vessel",
                geometry={"type": "Point", "coordinates": position},
                updated_at=received_at,
                details=details,
            )
        ]

    def _remember(self, mmsi: int, fields: dict[str, Any]) -> None:
        known = self._static.pop(mmsi, None) or {}
        known.update((k, v) for k, v in fields.get("_static", {}).items() if v is not None)
        self._static[mmsi] = known
        if len(self._static) > self.max_vessels:
            self._static.popitem(last=False)
        fields.pop("_static", None)


def iter_ais(stream: BinaryIO) -> Iterator[Item]:
    """AIS NMEA text read in chunks: vessel events and rejected lines as they are decoded.

    Nothing comes out until a line is a checksummed AIS sentence: when none of the first
    RECOGNITION_LINES lines (or no line at all) is one, the input is not AIS and FeedFormatError
    says so instead of rejecting every line.
    """
    decoder = AisDecoder()
    held: list[Item] | None = []
    while True:
        chunk = stream.read(CHUNK_BYTES)
        items = decoder.feed(chunk) if chunk else decoder.flush()
        if held is None:
            yield from items
        elif decoder.stats["sentences"]:
            yield from held
            yield from items
            held = None
        else:
            held.extend(items)
            if decoder.stats["lines"] >= RECOGNITION_LINES or (not chunk and decoder.stats["lines"]):
                raise FeedFormatError(_NOT_AIS.format(lines=decoder.stats["lines"]))
        if not chunk:
            yield from held or ()
            return


_NOT_AIS = (
    "no line among the first {lines} is a checksummed AIS sentence (!AIVDM/!AIVDO, one per line): "
    "not AIS NMEA"
)


@gc_paused
def parse_ais(data: bytes | str) -> list[Item]:
    """AIS NMEA text held in memory (one sentence per line) as vessel events and rejected lines."""
    return collect(iter_ais, data)
