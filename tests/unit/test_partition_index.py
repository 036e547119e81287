"""A partition's index skips replays of older versions, so at-least-once delivery is harmless."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from schemas import Event, Route, RouteMessage, Vehicle
from stream.core.engine import Engine
from stream.core.partition import PartitionIndex, StampedEvent
from tests.support.geometry import lonlat, point

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
ROUTE = Route("r1", "d1", tuple((a, b) for a, b in lonlat([(0, 0), (2000, 0)])), Vehicle())
LONG = Route(
    "r1", "d1", tuple((a, b) for a, b in lonlat([(0, 0), (500, 0), (1000, 0), (2000, 0)])), Vehicle()
)
CLOSURE = Event(id="t:c", source="t", kind="closure", geometry=point(900, 5), title="closed")


def _index() -> PartitionIndex:
    index = PartitionIndex(Engine())
    index.apply_routes([RouteMessage("registered", "r1", T0, route=ROUTE)], T0)
    return index


def test_replayed_older_event_version_is_skipped() -> None:
    """After version 2 of an event, a replay of version 1 changes nothing."""
    index = _index()
    v1, v2 = CLOSURE, replace(CLOSURE, title="closed until noon")
    assert [a.state for a in index.apply_events([StampedEvent(1, v1)], T0)] == ["raised"]
    assert [a.state for a in index.apply_events([StampedEvent(2, v2)], T0)] == ["updated"]
    assert list(index.apply_events([StampedEvent(1, v1)], T0)) == []


def test_cancelled_event_is_not_resurrected_by_a_replay() -> None:
    """A replay of the active version after the cancellation raises nothing."""
    index = _index()
    index.apply_events([StampedEvent(1, CLOSURE)], T0)
    cleared = index.apply_events([StampedEvent(2, replace(CLOSURE, status="cancelled"))], T0)
    assert [a.state for a in cleared] == ["cleared"]
    assert list(index.apply_events([StampedEvent(1, CLOSURE)], T0)) == []


def test_newest_version_in_a_batch_wins() -> None:
    """Within one batch only the newest version of an event is applied."""
    index = _index()
    batch = [StampedEvent(5, replace(CLOSURE, title="latest")), StampedEvent(3, CLOSURE)]
    [alert] = index.apply_events(batch, T0)
    assert alert.title == "latest"
    assert alert.event_received_at == datetime.fromtimestamp(5e-9, UTC)  # the newest version's receipt


def test_ended_route_is_not_resurrected_by_a_replayed_registration() -> None:
    """Once a route ended, replaying its older registration does not bring it back."""
    index = _index()
    index.apply_events([StampedEvent(1, CLOSURE)], T0)
    ended = index.apply_routes([RouteMessage("ended", "r1", T0 + timedelta(minutes=5))], T0)
    assert [a.state for a in ended] == ["cleared"]
    assert list(index.apply_routes([RouteMessage("registered", "r1", T0, route=ROUTE)], T0)) == []
    assert index.engine.route_count == 0


def test_older_position_is_skipped() -> None:
    """A position older than the last one applied does not move the vehicle back."""
    index = _index()
    index.apply_events([StampedEvent(1, CLOSURE)], T0)
    far = lonlat([(1500, 0)])[0]
    near = lonlat([(100, 0)])[0]
    passed = index.apply_routes([RouteMessage("position", "r1", T0 + timedelta(minutes=2), position=far)], T0)
    assert [a.state for a in passed] == ["cleared"]
    late = RouteMessage("position", "r1", T0 + timedelta(minutes=1), position=near)
    assert list(index.apply_routes([late], T0)) == []


def test_forgotten_route_leaves_silently_and_can_come_back() -> None:
    """A route of a revoked partition is dropped without clears, and reloads from its snapshot later."""
    index = PartitionIndex(Engine())
    index.apply_routes([RouteMessage("registered", "r1", T0, route=LONG)], T0)
    index.apply_events([StampedEvent(1, CLOSURE)], T0)
    index.apply_routes(
        [RouteMessage("position", "r1", T0 + timedelta(minutes=1), position=lonlat([(600, 0)])[0])], T0
    )
    index.forget_route("r1", T0)
    assert index.engine.route_count == 0
    snapshot = [
        RouteMessage("registered", "r1", T0, route=LONG),
        RouteMessage("position", "r1", T0 + timedelta(minutes=1), position=lonlat([(600, 0)])[0]),
    ]
    alerts = list(index.apply_routes(snapshot, T0))
    assert alerts[0].state == "raised" and alerts[-1].distance_ahead_m is not None
    assert alerts[-1].distance_ahead_m < 500  # measured from the restored position, not the start
    assert index.engine.route_count == 1
