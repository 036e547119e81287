"""DATEX II VehicleConditions -> Corridor's VehicleConditions (limits a truck can exceed)."""

from __future__ import annotations

from typing import Any

from lxml import etree

from schemas.event import VehicleConditions
from stream.feeds.base import RecordError
from stream.feeds.datex2_common import firsts, value, value_of

HGV_WEIGHT_T = 3.5
LIMITS = {
    "grossVehicleWeight": "max_weight_t",
    "vehicleHeight": "max_height_m",
    "vehicleWidth": "max_width_m",
    "vehicleLength": "max_length_m",
}
CRITAIR = {"critairve": "0", "critair0": "0", "nonclasse": "nc", "critairnc": "nc"}
CRITAIR.update({f"critair{n}": str(n) for n in range(1, 6)})
DESCRIPTIVE = ("vehicleType", "vehicleUsage", "otherVehicleType", "fuelType")


def _limit(found: etree._Element | None, name: str) -> tuple[float, str] | None:
    if found is None or not (found.text or "").strip():
        return None
    try:
        number = float(found.text or "")
    except ValueError:
        raise RecordError(f"{name} {found.text!r} is not a number", "schema") from None
    if not 0 <= number < 1000:
        raise RecordError(f"{name} {number} is not a plausible limit", "schema")
    parent = found.getparent()
    operator = (value(parent, "comparisonOperator") if parent is not None else None) or ""
    return number, operator


def vehicle_conditions(
    conditions: list[etree._Element],
) -> tuple[VehicleConditions | None, dict[str, Any], bool]:
    """(limits, notes for details, whether the regulation targets only some vehicles).

    A limit is read as the maximum permitted (the regulation applies to vehicles exceeding
    it), as DiaLog writes it; the literal comparison operators are kept in the notes.
    """
    if not conditions:
        return None, {}, False
    limits: dict[str, Any] = {}
    critair: list[str] = []
    hazmat: bool | None = None
    targets: list[str] = []
    exempt: list[str] = []
    operators: list[str] = []
    restricts = False
    for condition in conditions:
        named = firsts(condition)
        negate = (value_of(named, "negate") or "false").lower() == "true"
        words = [w for name in DESCRIPTIVE if (w := value_of(named, name))]
        (exempt if negate else targets).extend(words)
        for name, field in LIMITS.items():
            found = _limit(named.get(name), name)
            if found is None or (negate and found[1].startswith("greater")):
                continue
            limits[field] = min(found[0], limits.get(field, found[0]))
            operators.append(f"{name} {'not ' if negate else ''}{found[1]} {found[0]:g}")
        if not negate:
            restricts = True
            for emission in condition.iter("{*}emissionClassificationOther"):
                code = CRITAIR.get((emission.text or "").strip().lower())
                if code and code not in critair:
                    critair.append(code)
            if (value_of(named, "loadType") or "") in ("hazardousMaterials", "dangerousGoods"):
                hazmat = True
            if "heavyGoodsVehicle" in words and "max_weight_t" not in limits:
                limits["max_weight_t"] = HGV_WEIGHT_T
    notes: dict[str, Any] = {}
    if targets:
        notes["vehicle_types"] = targets
    if exempt:
        notes["exempted"] = exempt
    if operators:
        notes["vehicle_limits_as_published"] = operators
    vehicles = VehicleConditions(
        max_weight_t=limits.get("max_weight_t"),
        max_height_m=limits.get("max_height_m"),
        max_width_m=limits.get("max_width_m"),
        max_length_m=limits.get("max_length_m"),
        critair=tuple(critair) or None,
        hazmat=hazmat,
    )
    empty = vehicles.is_empty()
    return (None if empty else vehicles), notes, restricts or not empty
