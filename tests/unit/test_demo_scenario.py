"""The demo's scenario builder: deterministic for a seed, plausible routes, ships and port calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import LineString, shape

from schemas import Event
from stream.core.engine import Engine
from stream.core.port.infrastructure import load
from stream.core.port.predict import ClosurePredictor
from stream.core.port.tracks import TrackTable
from stream.demo import geometry as geo
from stream.demo.scenario import build
from stream.demo.ships import fleet_of_ships
from stream.feeds.ais import AisDecoder
from stream.feeds.portcall import parse_portcall

NOW = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def scenario():  # type: ignore[no-untyped-def]
    """The default scenario at a fixed time."""
    return build(NOW, seed=7, trucks=120)


def test_same_seed_same_fleet(scenario) -> None:  # type: ignore[no-untyped-def]
    """Two builds with the same seed and time give the same routes; another seed differs."""
    again = build(NOW, seed=7, trucks=120)
    assert [t.route for t in again.trucks] == [t.route for t in scenario.trucks]
    other = build(NOW, seed=8, trucks=120)
    assert [t.route for t in other.trucks] != [t.route for t in scenario.trucks]


def test_describe_rebuilds_the_same_scenario(scenario) -> None:  # type: ignore[no-untyped-def]
    """The printed scenario line pins the re-timing: rebuilt from it, the events are identical."""
    params = dict(item.split("=") for item in scenario.describe().removeprefix("scenario: ").split())
    later = NOW + timedelta(minutes=30)
    rebuilt = build(
        later,
        seed=int(params["seed"]),
        trucks=int(params["trucks"]),
        day=datetime.strptime(params["day"], "%Y-%m-%d").date(),
        reslot=int(params["reslot"]),
    )
    assert rebuilt.closures == scenario.closures and rebuilt.replay.day == scenario.replay.day
    assert [t.route.coordinates for t in rebuilt.trucks] != []


def test_fleet_mix_and_timing(scenario) -> None:  # type: ignore[no-untyped-def]
    """Every kind of trip is there; each truck has left already and is expected to arrive later."""
    kinds = {t.kind for t in scenario.trucks}
    assert kinds == {"havre-paris", "paris-havre", "rouen-paris", "delivery"}
    for truck in scenario.trucks:
        route = truck.route
        assert route.depart_at is not None and route.arrive_by is not None
        assert route.depart_at <= NOW < route.arrive_by
        assert 0 <= truck.started_s < truck.duration_s
        assert len(set(route.coordinates)) == len(route.coordinates) >= 2


def test_long_haul_routes_cross_the_gustave_flaubert_bridge(scenario) -> None:  # type: ignore[no-untyped-def]
    """Trips between Le Havre or Rouen and Paris drive over the bridge's road line."""
    bridge = LineString(load().structures["FRURO-GUSTAVE-FLAUBERT"].road["coordinates"])
    for truck in scenario.trucks:
        crosses = LineString(truck.route.coordinates).distance(bridge) < 1e-6
        assert crosses == (truck.kind != "delivery"), truck.route.route_id


def test_trucks_to_le_havre_name_their_terminal(scenario) -> None:  # type: ignore[no-untyped-def]
    """Trips to Le Havre end at a terminal gate and carry its id as destination, others none."""
    terminals = load().terminals
    for truck in scenario.trucks:
        if truck.kind == "paris-havre":
            assert truck.route.destination in terminals
            gate = terminals[truck.route.destination].gate
            assert geo.metres(truck.route.coordinates[-1], gate) < 30
        else:
            assert truck.route.destination is None


def test_truck_positions_follow_the_route(scenario) -> None:  # type: ignore[no-untyped-def]
    """A truck is at each vertex at that vertex's route time, on the route in between, still at the end."""
    truck = scenario.trucks[0]
    coords = truck.route.coordinates
    line = LineString(coords)
    for i, t in enumerate(truck.times):
        assert geo.metres(truck.position(t), coords[i]) < 0.01
        if i:
            lon, lat = truck.position((t + truck.times[i - 1]) / 2)
            assert line.distance(shape({"type": "Point", "coordinates": [lon, lat]})) < 1e-7
    assert truck.position(truck.duration_s + 999) == coords[-1]
    assert truck.position(-5) == coords[0]


def test_static_scenario_raises_perimeter_closure_and_port_call_alerts(scenario) -> None:  # type: ignore[no-untyped-def]
    """Matched in process, the re-timed city data and the port call concern many drivers."""
    engine = Engine()
    for truck in scenario.trucks:
        engine.upsert_route(truck.route, NOW)
        engine.route_position(truck.route.route_id, truck.position(truck.started_s), NOW)
    calls = [e for e in parse_portcall(str(scenario.port_calls[0]).replace("'", '"')) if isinstance(e, Event)]
    alerts = engine.apply_events([*scenario.events, *calls], NOW)
    kinds = {a.kind for a in alerts if a.state == "raised"}
    assert {"perimeter", "closure", "port_call"} <= kinds
    assert len({a.driver_id for a in alerts}) >= len(scenario.trucks) // 3


def test_first_ship_predicts_a_bridge_lift_and_the_small_boat_none() -> None:
    """AIS of the demo's ships, decoded and tracked, predicts lifts only for the cargo ship in the zone."""
    infrastructure = load()
    predictor = ClosurePredictor(infrastructure)
    tracks = TrackTable()
    decoder = AisDecoder()
    lines = [line for ship in fleet_of_ships() for line in (*ship.static_lines(), *ship.position_lines(0))]
    predicted = []
    for event in decoder.feed("\n".join(lines) + "\n", NOW):
        assert isinstance(event, Event)
        track = tracks.update(event, NOW)
        if track is not None:
            predicted += predictor.observe(track)
    assert [(e.kind, e.id.rsplit(":", 1)[1]) for e in predicted] == [("bridge_lift", "227900001")]
