"""Hardened XML reading for feeds: no network, no entities, no DTD, bounded size."""

from __future__ import annotations

from lxml import etree

from stream.feeds.base import FeedFormatError, as_bytes


def parser() -> etree.XMLParser:
    """A fresh lxml parser that resolves nothing and refuses huge trees."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def parse(data: bytes | str, fmt: str) -> etree._Element:
    """The root element of an XML document, or FeedFormatError saying why it is unreadable."""
    raw = as_bytes(data, fmt)
    if not raw.strip():
        raise FeedFormatError(f"empty input: expected a {fmt} XML document")
    try:
        root = etree.fromstring(raw, parser())
    except etree.XMLSyntaxError as exc:
        raise FeedFormatError(f"not a well-formed {fmt} XML document: {exc}") from None
    if root is None:
        raise FeedFormatError(f"no root element: expected a {fmt} XML document")
    if root.getroottree().docinfo.internalDTD is not None:
        raise FeedFormatError(f"{fmt} documents with a DTD are refused (entities are not resolved)")
    return root


def local(tag: object) -> str:
    """An element's tag without its namespace ('' for comments and entities)."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""
