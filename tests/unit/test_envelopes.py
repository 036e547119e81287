"""Events fanned out to partitions travel in size-bounded envelopes and come back unchanged."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import orjson

from schemas import Alert, Event, VehicleConditions
from schemas.codec import dumps, to_plain
from stream.core.partition import StampedEvent
from stream.runtime.envelopes import encode_alert
from stream.runtime.stamped import decode_stamped, encode_stamped, pack_stamped, unpack_stamped


def _stamped(n: int) -> StampedEvent:
    geometry = {"type": "LineString", "coordinates": [[2.3 + i * 1e-4, 48.8] for i in range(20)]}
    return StampedEvent(1_000 + n, Event(id=f"t:{n}", source="t", kind="closure", geometry=geometry))


def test_envelopes_are_bounded_and_lose_nothing() -> None:
    """300 events split into envelopes under the byte limit, in order, none lost or repeated."""
    items = [_stamped(n) for n in range(300)]
    envelopes = pack_stamped(items, max_bytes=20_000)
    assert len(envelopes) > 1
    assert all(len(e) <= 20_000 for e in envelopes)
    assert [s for e in envelopes for s in unpack_stamped(e)[0]] == items


def test_an_event_larger_than_the_limit_travels_alone() -> None:
    """An event bigger than the limit is not dropped: it gets an envelope of its own."""
    items = [_stamped(1), _stamped(2)]
    envelopes = pack_stamped(items, max_bytes=100)
    assert len(envelopes) == 2
    assert [s for e in envelopes for s in unpack_stamped(e)[0]] == items


def test_no_events_no_envelope() -> None:
    """An empty batch sends nothing."""
    assert pack_stamped([]) == []


def test_driver_partition_is_stable_and_spread() -> None:
    """A driver always maps to the same partition, in any process; drivers spread over all of them."""
    import subprocess
    import sys

    from stream.runtime.envelopes import partition_of

    code = "from stream.runtime.envelopes import partition_of; print(partition_of('truck-001', 8))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == partition_of("truck-001", 8)
    assert {partition_of(f"d{n}", 8) for n in range(200)} == set(range(8))


def test_a_single_record_reads_as_a_batch_of_one() -> None:
    """An envelope holding one bare object (not an array) still unpacks to one record."""
    from stream.runtime.envelopes import unpack

    assert unpack(b'{"a": 1}') == [{"a": 1}]
    assert unpack(b'[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]


def _alert(**changes: object) -> Alert:
    alert = Alert(
        alert_id="a1",
        route_id="r1",
        driver_id="d1",
        event_id="e1",
        kind="closure",
        state="raised",
        distance_ahead_m=120.5,
        valid_from=datetime(2026, 5, 4, 8, 0, tzinfo=UTC),
        valid_until=None,
        title='a title with "event_received_at":null inside',
        street="Rue \u00e9",
        expected_at=datetime(2026, 5, 4, 9, 30, 15, 123456, tzinfo=UTC),
        created_at=datetime(2026, 5, 4, 8, 1, tzinfo=timezone(timedelta(hours=2))),
    )
    return replace(alert, **changes)  # type: ignore[arg-type]


def test_encoded_alerts_are_what_the_codec_writes() -> None:
    """An alert's wire form, with or without its receipt time, is the codec's encoding of the record."""
    received = datetime(2026, 5, 4, 8, 0, 0, 250000, tzinfo=UTC)
    for alert in (_alert(), _alert(distance_ahead_m=None, title=None, state="cleared", reason="expired")):
        assert encode_alert(alert) == dumps(alert)
        encoded = encode_alert(alert, received)
        assert encoded == dumps(replace(alert, event_received_at=received))
        assert Alert.from_dict(orjson.loads(encoded)) == replace(alert, event_received_at=received)


def test_a_receipt_time_replaces_one_already_set() -> None:
    """An alert that already carries a receipt time gets the one given."""
    earlier = datetime(2026, 5, 4, 7, 0, tzinfo=UTC)
    received = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
    encoded = encode_alert(_alert(event_received_at=earlier), received)
    assert encoded == dumps(_alert(event_received_at=received))


def test_stamped_events_are_encoded_as_the_codec_writes_them() -> None:
    """The stored and fanned-out form of an event is the codec's plain form, datetimes and all."""
    event = Event(
        id="t:rich",
        source="t",
        kind="restriction",
        geometry={"type": "Point", "coordinates": [2.35, 48.85]},
        valid_from=datetime(2026, 5, 4, 8, 0, tzinfo=timezone(timedelta(hours=2))),
        valid_until=datetime(2026, 5, 4, 18, 0, 0, 500, tzinfo=UTC),
        schedule={"monday": ("08:00-12:00",)},
        vehicles=VehicleConditions(max_weight_t=7.5, critair=("4", "5"), hazmat=True),
        title="Poids lourds \u2265 7,5 t",
        details={"lanes": 2, "note": None},
    )
    item = StampedEvent(1_234_567_890_123, event)
    assert encode_stamped(item) == orjson.dumps({"seq": item.seq, "event": to_plain(event)})
    assert decode_stamped(encode_stamped(item)) == item


def _full(n: int) -> Event:
    """An event with every field set, times in several offsets (the strict reader's output)."""
    paris = timezone(timedelta(hours=2))
    return Event.from_dict(
        {
            "id": f"full:{n}",
            "source": "city.paris",
            "kind": ["closure", "restriction", "perimeter", "roadworks"][n % 4],
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[2.3, 48.8], [2.31, 48.8], [2.31, 48.81], [2.3, 48.8]]],
            },
            "valid_from": datetime(2026, 7, 1, 8, tzinfo=paris).isoformat(),
            "valid_until": "2026-07-02T18:00:00Z",
            "status": "cancelled" if n % 5 == 0 else "active",
            "direction": "forward" if n % 2 else "both",
            "schedule": {"everyday": ["08:00-12:00"], "monday": ["14:00-18:00", "20:00-24:00"]},
            "timezone": "America/Martinique" if n % 3 else "Europe/Paris",
            "vehicles": {"max_weight_t": 3.5 + n, "max_height_m": 4, "critair": ["3", "NC"], "hazmat": True},
            "title": f"Rue n°{n} \u2028 fermée",
            "street": "A13",
            "severity": "high",
            "updated_at": "2026-06-30T10:00:00.123456+00:00",
            "terminal": "T1",
            "details": {"dialog": {"id": n, "tags": ["a", None, 1.5, {"deep": [True]}]}},
        }
    )


def test_the_typed_decoder_reads_the_fan_outs_envelopes_as_the_strict_reader_does() -> None:
    """Every field of an event, in every form the strict reader leaves it, comes back equal."""
    items = [StampedEvent(10_000 + n, _full(n)) for n in range(40)] + [_stamped(n) for n in range(5)]
    [envelope] = pack_stamped(items)
    decoded, refused = unpack_stamped(envelope)
    assert refused == [] and decoded == items
    strict = [decode_stamped(orjson.dumps(record)) for record in orjson.loads(envelope)]
    assert decoded == strict


def test_a_bad_record_in_a_fan_out_envelope_is_refused_alone_with_the_strict_readers_reason() -> None:
    """A record the typed decoder refuses sends the envelope to the strict reader, record by record."""
    records = [orjson.loads(encode_stamped(_stamped(n))) for n in range(3)]
    records[1]["event"]["timezone"] = "Mars/Olympus"
    records[2]["seq"] = -1
    decoded, refused = unpack_stamped(orjson.dumps(records))
    assert decoded == [_stamped(0)]
    assert [exc.reason for exc in refused] == ["bad_timezone", "schema"]


def test_an_unknown_time_zone_alone_is_refused_by_the_strict_reader() -> None:
    """A time zone is a plain string to the typed decoder: it is checked apart, and refused alone."""
    records = [orjson.loads(encode_stamped(_stamped(n))) for n in range(2)]
    records[1]["event"]["timezone"] = "Mars/Olympus"
    decoded, refused = unpack_stamped(orjson.dumps(records))
    assert decoded == [_stamped(0)]
    assert [exc.reason for exc in refused] == ["bad_timezone"]
