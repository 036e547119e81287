"""The port-call quick check agrees with schemas/portcall.schema.json, record by record.

``schemas.portcall_shape`` (msgspec) stands in for the JSON Schema validator on the records it
accepts; on generated valid timestamps and mutations of them, both accept or both refuse and name
the same field, and ``portcall_event`` answers as the validator followed by the event's reading.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import InvalidRecord
from schemas.event import Event
from schemas.portcall_shape import fits, shape_error
from schemas.validate import errors
from stream.feeds import portcall
from tests.support.feeds import JSON_VALUES, PROPERTY

BASE: dict[str, Any] = {
    "portCallID": "PC1",
    "UNLocationCode": "NLRTM",
    "vesselIMONumber": "9134270",
    "portCallServiceTypeCode": "BERTH",
    "portCallServiceEventTypeCode": "ARRI",
    "classifierCode": "EST",
    "dateTime": "2024-08-15T14:00:00+02:00",
    "terminal": {"terminalID": "ECTDE", "gatePosition": [4.0412, 51.9536]},
}
FIELDS = [*BASE, "timestampID", "MMSINumber", "vesselName", "delayReasonCode", "remark", "publisher", "x"]
SPECIMENS: list[Any] = [
    None,
    "",
    "x" * 11,
    "x" * 65,
    "x" * 101,
    "x" * 201,
    "x" * 501,
    "PC 1",
    "nlrtm",
    "NLRT1",
    "913427",
    "91342700",
    "123456789",
    "12345678",
    "berth",
    "ARRIVAL",
    "2024-08-15T14:00:00",
    "2024-08-15T14:00:00+02:00\n",
    0,
    -1,
    True,
    [],
    {},
    [4.0, 51.9],
    [51.9, 4.0],
    [4.0, 51.9, 0],
    [200, 51.9],
    [4.0, "51.9"],
    [True, 51.9],
    {"terminalID": "T"},
    {"terminalID": "", "gatePosition": [4.0, 51.9]},
    {"terminalID": "T", "gatePosition": [4.0, 51.9], "name": 5},
    {"terminalID": "T", "gatePosition": [4.0, 51.9], "gate": 1},
]


def field_of_schema(message: str) -> str:
    """The top-level field a 'field/path: message' error names ('(record)' for the object)."""
    return message.split(":", 1)[0].split("/", 1)[0]


def field_of_shape(message: str) -> str:
    """The top-level field msgspec names, '(record)' for the object itself."""
    found = re.search(r"`\$\.([A-Za-z_]+)", message)
    return found.group(1) if found else "(record)"


def answer(record: Any) -> Event | tuple[str, str]:
    """What portcall_event gives: the event, or its error and reason."""
    try:
        return portcall.portcall_event(record)
    except InvalidRecord as exc:
        return exc.error, exc.reason


def agree(record: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Shape and schema judge alike, name the same field; the reader answers as with the schema alone."""
    problems = errors("portcall", record)
    assert fits(record) == (problems == []), (problems, shape_error(record))
    if problems:
        assert field_of_shape(shape_error(record) or "") in {field_of_schema(p) for p in problems}
    fast = answer(record)
    with monkeypatch.context() as patch:
        patch.setattr(portcall, "fits", lambda record: False)  # the validator on every record
        assert fast == answer(record)


@pytest.mark.parametrize("field", FIELDS)
def test_every_specimen_in_every_field(field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each specimen in each field, in the terminal too, or the field removed: judged alike."""
    agree({k: v for k, v in BASE.items() if k != field}, monkeypatch)
    for value in SPECIMENS:
        agree({**BASE, field: value}, monkeypatch)
        if field == "terminal":
            for key in ("terminalID", "gatePosition", "name"):
                agree({**BASE, "terminal": {**BASE["terminal"], key: value}}, monkeypatch)


def test_mmsi_stands_in_for_imo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an IMO number an MMSI is required (the schema's if/then), and enough."""
    without = {k: v for k, v in BASE.items() if k != "vesselIMONumber"}
    assert not fits(without)
    assert fits({**without, "MMSINumber": "244123456"})
    agree(without, monkeypatch)


@PROPERTY
@given(st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES | st.sampled_from(SPECIMENS), max_size=3))
def test_mutated_timestamps_are_judged_alike(changes: dict[str, Any]) -> None:
    """Arbitrary values swapped into a valid timestamp: shape and schema judge alike."""
    with pytest.MonkeyPatch.context() as patch:
        agree({**BASE, **changes}, patch)
