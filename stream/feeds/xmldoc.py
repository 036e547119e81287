"""Hardened XML reading for feeds: no network, no entities, no DTD, read record by record."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from lxml import etree

from stream.feeds.base import (
    CHUNK_BYTES,
    MAX_RECORD_BYTES,
    CountingReader,
    FeedFormatError,
    RecordError,
    replay,
)

PARSER_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
    "collect_ids": False,
    "remove_blank_text": True,
}
"""lxml options that resolve nothing (no entities, DTD or network) and refuse huge trees."""


def local(tag: object) -> str:
    """An element's tag without its namespace ('' for comments and entities), and without its
    prefix when the prefix was never declared (lxml then keeps ``sit:situation`` as the tag)."""
    return tag.rpartition("}")[2].rpartition(":")[2] if isinstance(tag, str) else ""


def records(
    stream: BinaryIO, fmt: str, names: Iterable[str], depth: int | None = None
) -> Iterator[tuple[etree._Element, etree._Element | RecordTooLarge]]:
    """(root, record) for each record element as soon as it is complete, the tree kept small.

    The root comes first as (root, root), so callers can check it before any record. Records are
    the elements with one of these local ``names`` (in any namespace), at ``depth`` when it is
    given (the root is at depth 0), that are not inside a record. lxml hands only those elements
    to Python (its tag filter), so the elements inside a record cost no Python step. A record
    over MAX_RECORD_BYTES comes as RecordTooLarge (its name and id); a record or a gap between
    records over twice that refuses the document, as any value that large does. Each record is
    removed from the tree once read, with what came before it, so memory holds one record.
    """
    root, head = _root(stream, fmt)
    yield root, root
    source = CountingReader(replay(head, stream), fmt)
    opened: list[int] = []  # where each open element with a record's name started
    tags = [f"{{*}}{name}" for name in sorted(set(names))]
    parse = etree.iterparse(source, events=("start", "end"), tag=tags, **PARSER_OPTIONS)
    try:
        for event, element in parse:
            if event == "start":
                opened.append(source.count)
                continue
            start = opened.pop()
            if opened:
                continue  # inside a record: part of it
            source.mark = source.count
            if element.getparent() is not None and (depth is None or _depth(element) == depth):
                large = source.count - start > MAX_RECORD_BYTES
                yield root, RecordTooLarge(element) if large else element
            _drop(element)
    except etree.XMLSyntaxError as exc:
        where = source.mark
        raise FeedFormatError(f"the {fmt} XML document is malformed after byte {where}: {exc}") from None


def _root(stream: BinaryIO, fmt: str) -> tuple[etree._Element, bytes]:
    """The root element as soon as its start tag is read (a parser of its own, so that a
    document that is not the format is refused at its first bytes), and the bytes read."""
    source = CountingReader(stream, fmt)
    head = etree.XMLPullParser(events=("start",), **PARSER_OPTIONS)
    read: list[bytes] = []
    try:
        while True:
            chunk = source.read(CHUNK_BYTES)
            read.append(chunk)
            if chunk:
                head.feed(chunk)
            else:
                head.close()  # a short document's events may wait for its end
            for _, element in head.read_events():
                if element.getroottree().docinfo.internalDTD is not None:
                    raise FeedFormatError(f"{fmt} documents with a DTD are refused (entities not resolved)")
                return element, b"".join(read)
            if not chunk:
                break
    except etree.XMLSyntaxError as exc:
        raise FeedFormatError(f"not a well-formed {fmt} XML document: {exc}") from None
    raise FeedFormatError(f"not a well-formed {fmt} XML document: it has no root element")


def _depth(element: etree._Element) -> int:
    depth = 0
    parent = element.getparent()
    while parent is not None:
        depth += 1
        parent = parent.getparent()
    return depth


def _drop(element: etree._Element) -> None:
    """Remove a read record from the tree, with the siblings before it."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is None:
        return
    while element.getprevious() is not None:
        del parent[0]
    parent.remove(element)


class RecordTooLarge(RecordError):
    """A record element over MAX_RECORD_BYTES, dropped while read: its name and id remain."""

    def __init__(self, element: etree._Element) -> None:
        self.tag, self.ident = local(element.tag), element.get("id")
        label = f"<{self.tag} id={self.ident[:100]!r}>" if self.ident else f"<{self.tag}>"
        super().__init__(f"{label} is over {MAX_RECORD_BYTES // 2**20} MiB: split it", "too_large")
