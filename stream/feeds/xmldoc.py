"""Hardened XML reading for feeds: no network, no entities, no DTD, read record by record."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from lxml import etree

from stream.feeds.base import (
    MAX_RECORD_BYTES,
    CountingReader,
    FeedFormatError,
    RecordError,
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
}
"""lxml options that resolve nothing (no entities, DTD or network) and refuse huge trees."""


def local(tag: object) -> str:
    """An element's tag without its namespace ('' for comments and entities)."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def records(
    stream: BinaryIO, fmt: str, wanted: Callable[[str, int], bool]
) -> Iterator[tuple[etree._Element, etree._Element | RecordTooLarge]]:
    """(root, record) for each record element as soon as it is complete, the tree kept small.

    The root comes first as (root, root), so callers can check it before any record.
    ``wanted(local name, depth)`` says which elements are records (the root is at depth 0; an
    element inside a record is never one). A record over MAX_RECORD_BYTES comes as RecordTooLarge,
    its content dropped while it is read. Every element is removed from the tree once read, so
    memory holds one record and the open elements around it.
    """
    source = CountingReader(stream, fmt)
    root: etree._Element | None = None
    depth, record_depth, start, oversized = -1, -1, 0, False
    try:
        for event, element in etree.iterparse(source, events=("start", "end"), **PARSER_OPTIONS):
            source.mark = source.count
            if record_depth >= 0 and source.count - start > MAX_RECORD_BYTES:
                oversized = True
            if event == "start":
                depth += 1
                if root is None:
                    root = element
                    if element.getroottree().docinfo.internalDTD is not None:
                        raise FeedFormatError(
                            f"{fmt} documents with a DTD are refused (entities are not resolved)"
                        )
                    yield root, root
                elif record_depth < 0 and wanted(local(element.tag), depth):
                    record_depth, start, oversized = depth, source.count, False
                continue
            depth -= 1
            if depth + 1 == record_depth:
                record_depth = -1
                yield root, RecordTooLarge(element) if oversized else element
            elif record_depth >= 0 and not oversized:
                continue  # part of the record being read: kept until the record ends
            parent = element.getparent()
            if parent is not None:
                parent.remove(element)
    except etree.XMLSyntaxError as exc:
        if root is None:
            raise FeedFormatError(f"not a well-formed {fmt} XML document: {exc}") from None
        raise FeedFormatError(
            f"the {fmt} XML document is malformed after byte {source.mark}: {exc}"
        ) from None


class RecordTooLarge(RecordError):
    """A record element over MAX_RECORD_BYTES, dropped while read: its name and id remain."""

    def __init__(self, element: etree._Element) -> None:
        self.tag, self.ident = local(element.tag), element.get("id")
        label = f"<{self.tag} id={self.ident[:100]!r}>" if self.ident else f"<{self.tag}>"
        super().__init__(f"{label} is over {MAX_RECORD_BYTES // 2**20} MiB: split it", "too_large")
