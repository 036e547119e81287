"""CIFS XML documents read into plain incident records (text fields, schedule by day)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from stream.feeds import xmldoc
from stream.feeds.base import FeedFormatError, RecordError

_FIELDS = frozenset(
    {
        "type",
        "subtype",
        "description",
        "street",
        "polyline",
        "direction",
        "starttime",
        "endtime",
        "creationtime",
        "updatetime",
        "location_description",
    }
)


def _fields(element: Any, rec: dict[str, Any]) -> None:
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag[0] == "{":
            tag = tag.rpartition("}")[2]
        if tag in _FIELDS:
            rec[tag] = child.text or ""
        elif tag == "schedule":
            rec["schedule"] = {xmldoc.local(d.tag): d.text or "" for d in child if d.tag}
        elif tag == "location":
            _fields(child, rec)
        elif tag == "source":
            for part in child:
                if xmldoc.local(part.tag) == "reference":
                    rec["reference"] = part.text


def xml_records(stream: BinaryIO) -> Iterator[tuple[str, dict[str, Any] | RecordError]]:
    """(where, record) for every <incident> of a CIFS XML document, as they are read."""
    count = 0
    for root, element in xmldoc.records(stream, "CIFS", ["incident"], depth=1):
        if element is root:
            if xmldoc.local(root.tag) != "incidents":
                raise FeedFormatError(
                    f"root element is <{xmldoc.local(root.tag)}>, not <incidents>: not a CIFS document"
                )
            continue
        count += 1
        if isinstance(element, xmldoc.RecordTooLarge):
            yield (f"incident {element.ident}" if element.ident else f"incident #{count - 1}"), element
            continue
        rec: dict[str, Any] = {"id": element.get("id")}
        _fields(element, rec)
        ident = rec["id"]
        yield (f"incident {ident}" if ident else f"incident #{count - 1}", rec)
