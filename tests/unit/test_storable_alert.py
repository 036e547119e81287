"""An outside producer's alert is checked once and written once, in the layout the outbox reads."""

from __future__ import annotations

import orjson
import pytest

from schemas import Alert, alert_id_for
from schemas.alert import state_offset
from schemas.codec import to_plain
from stream.worker.outbox import MAX_ALERT_BYTES, InvalidAlert, storable_alert


def _plain(**changes: object) -> dict[str, object]:
    alert = Alert(alert_id_for("r1", "e1"), "r1", "d1", "e1", "closure", "updated", 10.0, None, None, "t")
    return {**to_plain(alert), **changes}


def test_the_payload_is_the_alert_as_decoded_written_once() -> None:
    record = {"title": 'quotes "state":"raised"', **_plain()}  # another key order than Corridor's
    storable = storable_alert(orjson.loads(orjson.dumps(record)))
    assert orjson.loads(storable.payload) == record
    assert storable.payload[state_offset(storable.payload) :].startswith(b'updated"')
    assert storable.plain["driver_id"] == "d1"


@pytest.mark.parametrize(
    ("record", "why"),
    [
        ([1, 2], "JSON object"),
        (_plain(driver_id="d 1"), "driver_id"),
        (_plain(state="exploded"), "state"),
        (_plain(title="x" * MAX_ALERT_BYTES), "bytes, over"),
    ],
    ids=["not an object", "driver id", "state", "too large"],
)
def test_an_alert_that_cannot_be_stored_is_refused_with_its_reason(record: object, why: str) -> None:
    with pytest.raises(InvalidAlert, match=why):
        storable_alert(record)
