"""Alert lifecycle: raised once, updated when it matters, cleared for every reason, both directions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from schemas import Alert, Event, Route, Vehicle, alert_id_for
from stream.core.config import EngineConfig
from stream.core.engine import Engine
from stream.core.geo import unproject_xy

X0, Y0 = 652_000.0, 6_862_000.0
AT = datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
EAST = [(float(x), 0.0) for x in range(0, 5001, 100)]


def lonlat(*xy: tuple[float, float]) -> list[list[float]]:
    """Local metres as lon/lat pairs."""
    arr = np.asarray(xy, dtype=float)
    lon, lat = unproject_xy(arr[:, 0] + X0, arr[:, 1] + Y0)
    return [[a, b] for a, b in zip(lon.tolist(), lat.tolist(), strict=True)]


def route(rid: str = "r1", xy: list[tuple[float, float]] = EAST, **kw: Any) -> Route:
    """A route 5 km due east (by default)."""
    coords = tuple(tuple(c) for c in lonlat(*xy))
    return Route(rid, f"d-{rid}", coords, Vehicle(height_m=4.0), AT, **kw)  # type: ignore[arg-type]


def event(eid: str = "e1", x: float = 3000.0, y: float = 0.0, **kw: Any) -> Event:
    """A closure point at local metres."""
    geometry = {"type": "Point", "coordinates": lonlat((x, y))[0]}
    return Event(id=eid, source="test", kind=kw.pop("kind", "closure"), geometry=geometry, **kw)


def states(alerts: list[Alert]) -> list[tuple[str, str, str]]:
    """(state, route, event) of each alert, sorted."""
    return sorted((a.state, a.route_id, a.event_id) for a in alerts)


def at_x(x: float) -> tuple[float, float]:
    """The lon/lat of a point on the route."""
    lon, lat = lonlat((x, 2.0))[0]
    return lon, lat


def test_raised_once_with_deterministic_id() -> None:
    """A matching pair is raised once, with the id derived from route and event."""
    engine = Engine()
    engine.upsert_route(route(), AT)
    (alert,) = engine.apply_events([event()], AT)
    assert (alert.state, alert.alert_id) == ("raised", alert_id_for("r1", "e1"))
    assert alert.created_at == AT and alert.driver_id == "d-r1"
    assert engine.apply_events([event()], AT) == []
    assert engine.upsert_route(route(), AT) == []
    assert engine.alert_count == 1


def test_same_pair_from_both_directions_is_not_raised_twice() -> None:
    """Event first then route raises once; re-sending either raises nothing more."""
    engine = Engine()
    assert engine.apply_events([event()], AT) == []
    assert states(engine.upsert_route(route(), AT)) == [("raised", "r1", "e1")]
    assert engine.apply_events([event()], AT) == []
    assert engine.upsert_route(route(), AT) == []


def test_event_change_updates() -> None:
    """A changed event (new title) updates its alerts, keeping the id."""
    engine = Engine()
    engine.upsert_route(route(), AT)
    (raised,) = engine.apply_events([event()], AT)
    (updated,) = engine.apply_events([event(title="Bridge closed")], AT)
    assert (updated.state, updated.title, updated.alert_id) == ("updated", "Bridge closed", raised.alert_id)


def test_event_moved_off_the_route_clears() -> None:
    """An event updated to a place away from the route clears its alert."""
    engine = Engine()
    engine.upsert_route(route(), AT)
    engine.apply_events([event()], AT)
    (cleared,) = engine.apply_events([event(y=500.0)], AT)
    assert (cleared.state, cleared.reason) == ("cleared", "no longer concerns the route")
    assert engine.alert_count == 0


def test_event_cancelled_clears() -> None:
    """A cancelled event clears its alerts and leaves the engine."""
    engine = Engine()
    engine.upsert_route(route(), AT)
    engine.upsert_route(route("r2"), AT)
    engine.apply_events([event()], AT)
    cleared = engine.apply_events([event(status="cancelled")], AT)
    assert states(cleared) == [("cleared", "r1", "e1"), ("cleared", "r2", "e1")]
    assert {a.reason for a in cleared} == {"event cancelled"}
    assert engine.event_count == 0 and engine.alert_count == 0


def test_event_expired_clears() -> None:
    """expire() drops events whose validity ended and clears their alerts."""
    engine = Engine()
    engine.upsert_route(route(), AT)
    engine.apply_events([event(valid_until=AT + timedelta(hours=1))], AT)
    assert engine.expire(AT + timedelta(minutes=30)) == []
    (cleared,) = engine.expire(AT + timedelta(hours=1))
    assert (cleared.state, cleared.reason) == ("cleared", "event expired")
    assert engine.event_count == 0


def test_route_changed_away_clears_and_new_crossing_raises() -> None:
    """A re-planned route clears events it no longer crosses and raises the new ones."""
    engine = Engine()
    engine.upsert_route(route(), AT)
    engine.apply_events([event("e1", 3000, 0), event("e2", 3000, 800)], AT)
    north = [(x, 800.0 if x >= 2000 else 0.0) for x, _ in EAST]
    out = engine.upsert_route(route(xy=north), AT)
    assert states(out) == [("cleared", "r1", "e1"), ("raised", "r1", "e2")]
    assert next(a for a in out if a.state == "cleared").reason == "route changed"


def test_position_updates_distance_past_threshold_only() -> None:
    """Moving closer updates the alert once the distance changed by more than the threshold."""
    engine = Engine(EngineConfig(update_threshold_m=200.0))
    engine.upsert_route(route(), AT)
    (raised,) = engine.apply_events([event()], AT)
    assert raised.distance_ahead_m is not None and abs(raised.distance_ahead_m - 3000) < 1
    assert engine.route_position("r1", at_x(150), AT + timedelta(seconds=20)) == []
    (updated,) = engine.route_position("r1", at_x(1000), AT + timedelta(seconds=80))
    assert updated.state == "updated" and updated.distance_ahead_m is not None
    assert abs(updated.distance_ahead_m - 2000) < 1
    assert updated.expected_at is not None
    assert updated.expected_at > AT + timedelta(seconds=80)


def test_vehicle_passing_clears() -> None:
    """Once the vehicle is past the event, the alert is cleared as passed."""
    engine = Engine()
    engine.upsert_route(route(), AT)
    engine.apply_events([event()], AT)
    (cleared,) = engine.route_position("r1", at_x(3100), AT + timedelta(minutes=4))
    assert (cleared.state, cleared.reason) == ("cleared", "vehicle passed")
    assert engine.route_position("r1", at_x(3200), AT + timedelta(minutes=5)) == []
    assert engine.apply_events([event(title="still there")], AT + timedelta(minutes=5)) == []


def test_vehicle_does_not_go_back() -> None:
    """A position behind the last one does not bring passed events back."""
    engine = Engine()
    engine.upsert_route(route(), AT)
    engine.apply_events([event()], AT)
    engine.route_position("r1", at_x(3100), AT + timedelta(minutes=4))
    assert engine.route_position("r1", at_x(2000), AT + timedelta(minutes=5)) == []


def test_route_ended_clears() -> None:
    """Ending a route clears its alerts and forgets it."""
    engine = Engine()
    engine.upsert_route(route(), AT)
    engine.apply_events([event("e1"), event("e2", 4000)], AT)
    out = engine.end_route("r1", AT)
    assert states(out) == [("cleared", "r1", "e1"), ("cleared", "r1", "e2")]
    assert {a.reason for a in out} == {"route ended"}
    assert engine.route_count == 0 and engine.alert_count == 0
    assert engine.end_route("r1", AT) == []


def test_ended_route_slot_reuse_does_not_leak_alerts() -> None:
    """A new route reusing an ended route's slot starts with no alerts of its own."""
    engine = Engine()
    engine.upsert_route(route("r1"), AT)
    engine.apply_events([event()], AT)
    engine.end_route("r1", AT)
    far = [(x, 5000.0) for x, _ in EAST]
    assert engine.upsert_route(route("r2", xy=far), AT) == []
    assert engine.apply_events([event(title="changed")], AT) == []


def test_port_call_lifecycle() -> None:
    """A port call raises for routes to its terminal, and clears when they end."""
    engine = Engine()
    engine.upsert_route(route("r1", destination="T1"), AT)
    engine.upsert_route(route("r2", destination="T2"), AT)
    call = event("p1", 90_000, 90_000, kind="port_call", terminal="T1")
    (raised,) = engine.apply_events([call], AT)
    assert (raised.route_id, raised.kind) == ("r1", "port_call")
    assert raised.distance_ahead_m is not None and abs(raised.distance_ahead_m - 5000) < 1
    assert states(engine.upsert_route(route("r3", destination="T1"), AT)) == [("raised", "r3", "p1")]
    assert states(engine.end_route("r1", AT)) == [("cleared", "r1", "p1")]


def test_batch_equals_one_by_one() -> None:
    """A batch of events raises the same alerts as the events applied one at a time."""
    events = [event(f"e{i}", 100.0 * i, float(i % 5) * 5) for i in range(50)]
    batch, single = Engine(), Engine()
    for engine in (batch, single):
        engine.upsert_route(route(), AT)
        engine.upsert_route(route("r2", xy=[(x, 20.0) for x, _ in EAST]), AT)
    one_by_one = [a for e in events for a in single.apply_events([e], AT)]
    assert states(batch.apply_events(events, AT)) == states(one_by_one)
    assert batch.alert_count == single.alert_count == 100


def test_duplicate_ids_in_a_batch_keep_the_last() -> None:
    """When a batch carries two versions of an event, the last one wins."""
    engine = Engine()
    engine.upsert_route(route(), AT)
    out = engine.apply_events([event(title="old"), event(y=900.0, title="new")], AT)
    assert out == [] and [e.title for e in engine.events()] == ["new"]


def test_routes_and_events_round_trip() -> None:
    """routes() and events() give back what was registered (route coordinates to 1e-7 degrees)."""
    engine = Engine()
    original = route(destination="T9")
    engine.upsert_route(original, AT)
    engine.apply_events([event()], AT)
    (back,) = engine.routes()
    assert back == replace(original, coordinates=back.coordinates)
    assert np.abs(np.asarray(back.coordinates) - np.asarray(original.coordinates)).max() <= 0.6e-7
    assert len(back.coordinates) == len(original.coordinates)
    assert [e.id for e in engine.events()] == ["e1"]
    assert (engine.route_count, engine.event_count) == (1, 1)


def test_route_update_keeps_progress() -> None:
    """Re-sending a route after a position keeps the vehicle where it was."""
    engine = Engine()
    engine.upsert_route(route(), AT)
    engine.apply_events([event("e1", 1000), event("e2", 4000)], AT)
    engine.route_position("r1", at_x(2000), AT + timedelta(minutes=2))
    assert engine.alert_count == 1
    assert engine.upsert_route(replace(route(), driver_id="d-r1"), AT + timedelta(minutes=3)) == []
    assert engine.alert_count == 1


def test_many_routes_updated_and_removed_stay_consistent() -> None:
    """Churning routes through the grid (updates, ends, slot reuse) keeps matches exact."""
    engine = Engine()
    engine.apply_events([event(f"e{i}", 250.0 * i, 10.0) for i in range(20)], AT)
    for round_ in range(3):
        for k in range(30):
            y = 15.0 if (k + round_) % 2 else 400.0
            engine.upsert_route(route(f"r{k}", xy=[(x, y) for x, _ in EAST]), AT)
        for k in range(0, 30, 3):
            engine.end_route(f"r{k}", AT)
    near = {f"r{k}" for k in range(30) if k % 3 and (k + 2) % 2}
    assert engine.alert_count == len(near) * 20


def test_coordinates_with_altitude_match_as_without() -> None:
    """A third coordinate value (altitude) is dropped, in a batch mixing both forms."""
    flat, lifted = Engine(), Engine()
    plain = route()
    with_z = replace(plain, coordinates=tuple((lon, lat, 35.0) for lon, lat in plain.coordinates))
    other = route("r2")
    flat.upsert_routes([plain, other], AT)
    lifted.upsert_routes([with_z, other], AT)
    assert states(flat.apply_events([event()], AT)) == states(lifted.apply_events([event()], AT))
    assert flat.alert_count == lifted.alert_count == 2
    assert flat.remaining_m(0) == lifted.remaining_m(0) > 4_900
