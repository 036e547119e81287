"""DATEX II v3 TrafficRegulationPublication (and SituationPublication) -> events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from lxml import etree

from schemas.event import Event, EventKind
from schemas.rejected import Rejection
from stream.feeds import xmldoc
from stream.feeds.base import FeedFormatError, Item, RecordError, collect, gc_paused, reject, text
from stream.feeds.datex2_common import (
    Validity,
    children,
    first,
    location,
    validity,
    value,
    xsi_type,
)
from stream.feeds.datex2_situation import situation_items
from stream.feeds.datex2_vehicles import vehicle_conditions

SOURCE = "datex2"
CANCELLED_ORDERS = frozenset({"cancelled", "revoked", "withdrawn", "suspended"})


def _conditions(element: etree._Element, found: dict[str, list[etree._Element]]) -> None:
    """Collect the leaf conditions of a (nested) ConditionSet by type."""
    kind = xsi_type(element)
    if kind == "ConditionSet":
        for child in children(element, "conditions"):
            _conditions(child, found)
    else:
        found.setdefault(kind, []).append(element)


def _regulation_types(regulation: etree._Element) -> list[str]:
    names = []
    for element in children(regulation, "typeOfRegulation"):
        words = " ".join(" ".join(element.itertext()).split())  # its texts, blanks collapsed
        names.append(":".join([xsi_type(element), words[:80]]).rstrip(":"))
    return names


def _validities(found: dict[str, list[etree._Element]], order: etree._Element) -> list[Validity]:
    own = [validity(c) for c in found.get("ValidityCondition", [])]
    if own:
        return own
    by_order = children(order, "validityByOrder")
    return [validity(by_order[0])] if by_order else [Validity(None, None, None, "Europe/Paris")]


def regulation_items(order: etree._Element, index: int, regulation: etree._Element) -> list[Item]:
    """Events for one trafficRegulation: one per (location, validity) it holds."""
    order_id = order.get("id") or value(order, "regulationId") or f"order-{index}"
    where = f"trafficRegulationOrder {order_id} regulation {index}"
    found: dict[str, list[etree._Element]] = {}
    for condition in children(regulation, "condition"):
        _conditions(condition, found)
    validities = _validities(found, order)
    vehicles, vehicle_notes, restricts = vehicle_conditions(found.get("VehicleCondition", []))
    types = _regulation_types(regulation)
    no_entry = any(t.startswith("AccessRestriction:noEntry") for t in types)
    kind: EventKind = "closure" if no_entry and not restricts else "restriction"
    description = first(order, "description")
    title = text(" ".join(description.itertext()), "description") if description is not None else None
    cancelled = (value(order, "status") or "") in CANCELLED_ORDERS
    cancelled = cancelled or (text(_status(regulation), "status") == "inactive")
    details: dict[str, Any] = {
        "order_id": order_id,
        "regulation_id": value(order, "regulationId"),
        "regulations": types,
        **vehicle_notes,
    }
    locations = found.get("LocationCondition", [])
    if not locations:
        return [Rejection("regulation has no LocationCondition", where, "missing_geometry")]
    items: list[Item] = []
    for n_loc, loc in enumerate(locations):
        try:
            geometry, street = location(loc)
        except RecordError as exc:
            items.append(reject(f"{where} location {n_loc}", exc))
            continue
        for n_val, valid in enumerate(validities):
            extra = {"schedule_exceptions": list(valid.exceptions)} if valid.exceptions else {}
            items.append(
                Event(
                    id=f"{SOURCE}:{order_id}:r{index}:l{n_loc}:v{n_val}",
                    source=SOURCE,
                    kind=kind,
                    geometry=geometry,
                    valid_from=valid.start,
                    valid_until=valid.end,
                    status="cancelled" if cancelled or valid.suspended else "active",
                    schedule=valid.schedule,
                    timezone=valid.timezone,
                    vehicles=vehicles,
                    title=title,
                    street=street,
                    severity="high" if kind == "closure" else None,
                    details={**details, **extra},
                )
            )
    return items


def _status(regulation: etree._Element) -> str | None:
    found = children(regulation, "status")
    return found[0].text if found else None


def order_items(order: etree._Element) -> list[Item]:
    """Events for one trafficRegulationOrder: its regulations' items, or their rejections."""
    items: list[Item] = []
    for index, regulation in enumerate(children(order, "trafficRegulation")):
        try:
            items.extend(regulation_items(order, index, regulation))
        except RecordError as exc:
            where = f"trafficRegulationOrder {order.get('id')} regulation {index}"
            items.append(reject(where, exc))
    return items


_RECORDS = {"trafficRegulationOrder": "TrafficRegulationPublication", "situation": "SituationPublication"}


def iter_datex2(stream: BinaryIO) -> Iterator[Item]:
    """A DATEX II v3 payload (regulations or situations) as events, order by order as read.

    The payload's xsi:type says which records it holds; without one, the first record decides.
    """
    publication = ""
    for root, element in xmldoc.records(stream, "DATEX II", _RECORDS):
        if element is root:
            publication = xsi_type(root)
            if publication not in _RECORDS.values():
                publication = ""
            continue
        name = element.tag if isinstance(element, xmldoc.RecordTooLarge) else xmldoc.local(element.tag)
        publication = publication or _RECORDS[name]
        if _RECORDS[name] != publication:
            continue
        if isinstance(element, xmldoc.RecordTooLarge):
            yield reject(f"{name} {element.ident}", element)
        elif name == "situation":
            yield from situation_items(element)
        else:
            yield from order_items(element)
    if not publication:
        raise FeedFormatError(
            "the payload's xsi:type is neither TrafficRegulationPublication nor SituationPublication "
            "and it holds no trafficRegulationOrder or situation"
        )


@gc_paused
def parse_datex2(data: bytes | str) -> list[Item]:
    """A DATEX II v3 payload held in memory (regulations or situations) as events and rejections."""
    return collect(iter_datex2, data)
