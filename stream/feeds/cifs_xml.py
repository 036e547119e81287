"""CIFS XML documents read into plain incident records (text fields, schedule by day)."""

from __future__ import annotations

from typing import Any

from stream.feeds import xmldoc
from stream.feeds.base import MAX_RECORDS, FeedFormatError

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


def xml_records(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(where, record) for every <incident> of a CIFS XML document."""
    root = xmldoc.parse(raw, "CIFS")
    if xmldoc.local(root.tag) != "incidents":
        raise FeedFormatError(
            f"root element is <{xmldoc.local(root.tag)}>, not <incidents>: not a CIFS document"
        )
    records: list[tuple[str, dict[str, Any]]] = []
    for n, element in enumerate(root):
        if xmldoc.local(element.tag) != "incident":
            continue
        if n >= MAX_RECORDS:
            raise FeedFormatError(f"CIFS document has over {MAX_RECORDS} incidents")
        rec: dict[str, Any] = {"id": element.get("id")}
        _fields(element, rec)
        ident = rec["id"]
        records.append((f"incident {ident}" if ident else f"incident #{len(records)}", rec))
    return records
