"""The byte splitter gives what the event-by-event walk gives, on any document, valid or broken."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.feeds import jsonsplit, jsonstream
from stream.feeds.base import CHUNK_BYTES, FeedFormatError, RecordError

PATHS = [("item",), ("features", "item")]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.sampled_from('ab"\\[]{}, é\n'), max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
    max_leaves=20,
)


def outcome(walker: Any, data: bytes, path: tuple[str, ...]) -> list[Any]:
    """What a walk yields, RecordErrors by reason, ending with the FeedFormatError if one is raised."""
    out: list[Any] = []
    try:
        for what, key, value in walker(io.BytesIO(data), "test", path):
            out.append((what, key, (value.reason,) if isinstance(value, RecordError) else value))
    except FeedFormatError:
        out.append("refused")
    return out


def same(data: bytes, path: tuple[str, ...]) -> None:
    fast = outcome(jsonstream.walk, data, path)
    slow = outcome(jsonstream.walk_events, data, path)
    if fast[-1:] == ["refused"] and slow[-1:] != ["refused"] and data.rstrip().endswith(b'"'):
        # ijson lets an unterminated string after the document pass; the splitter refuses it.
        assert fast[:-1] == slow
        return
    if fast[-1:] == ["refused"] or slow[-1:] == ["refused"]:
        # Both refuse the document; what came before the refusal may stop at a different record.
        assert fast[-1:] == slow[-1:] == ["refused"], (data[:200], fast[-3:], slow[-3:])
        return
    assert fast == slow, data[:300]


def document(records: list[Any], path: tuple[str, ...], extra: dict[str, Any]) -> bytes:
    """JSON text (the standard library's: it writes integers of any size)."""
    doc: Any = records
    if path != ("item",):
        doc = {"type": "FeatureCollection", **extra, "features": records, "after": 1}
    return json.dumps(doc, ensure_ascii=False).encode()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(values, max_size=6),
    path=st.sampled_from(PATHS),
    extra=st.dictionaries(st.sampled_from(["name", "crs", "n"]), values, max_size=2),
)
def test_valid_documents_are_read_alike(
    records: list[Any], path: tuple[str, ...], extra: dict[str, Any]
) -> None:
    """Any valid document (integers past 64 bits and brackets in strings included) reads the same."""
    same(document(records, path, extra), path)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(values, min_size=1, max_size=4),
    path=st.sampled_from(PATHS),
    cut=st.integers(min_value=0),
    junk=st.sampled_from([b"", b"]", b"}", b"{", b"[", b'"', b",", b"\\", b"1e999", b"tru", b"\xff"]),
)
def test_broken_documents_are_refused_alike(
    records: list[Any], path: tuple[str, ...], cut: int, junk: bytes
) -> None:
    """A document cut anywhere, or with a stray byte, is refused by both or read alike."""
    data = document(records, path, {})
    at = cut % (len(data) + 1)
    same(data[:at] + junk + data[at:], path)


def test_records_across_chunks_and_bracket_in_strings() -> None:
    """Records larger than a read, split anywhere, and strings holding brackets and quotes."""
    tricky = {"a": "}]{[", "b": 'say "}"', "c": [[1.5, 2], {"d": "\\"}], "big": 18446744073709551616}
    long = {"pad": "x" * (CHUNK_BYTES + 17), "n": [1, 2, 3]}
    data = json.dumps({"type": "FeatureCollection", "features": [tricky, long, tricky] * 3}).encode()
    same(data, ("features", "item"))
    records = [v for w, _, v in jsonsplit.walk(io.BytesIO(data), "t", ("features", "item")) if w == "record"]
    assert records[1] == long
    assert isinstance(records[0], RecordError) and records[0].reason == "undecodable"


def test_other_shapes_are_walked_event_by_event() -> None:
    """A root object read for a root array path goes to the event walk, with its bytes."""
    data = b'{"item": [1], "x": 2}'
    assert outcome(jsonstream.walk, data, ("item",)) == outcome(jsonstream.walk_events, data, ("item",))
    with pytest.raises(jsonsplit.Unsupported):
        list(jsonsplit.walk(io.BytesIO(data), "t", ("item",)))
