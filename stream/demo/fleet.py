"""The demo's trucks: plausible routes on the Seine axis and in Paris, and where each truck is when.

Four kinds of trips, in fixed proportions: Le Havre's terminals to Paris over the Gustave-Flaubert
bridge; Paris to a Le Havre terminal (the route's ``destination`` is the terminal id, so port calls
there concern it); Rouen's right bank to Paris over the bridge; deliveries inside Paris from a
depot through a few stops, drawn from the places where something is in force (perimeters, closures)
and from random addresses. Every truck is already on its way: it left some time ago, at a highway
or urban speed, and moves on at that speed times the demo's speed-up.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas import Route, Vehicle
from stream.demo import geometry as geo
from stream.demo.geometry import Point

HIGHWAY_KMH = 80.0
URBAN_KMH = 22.0
SHARES = (("havre-paris", 0.2), ("paris-havre", 0.1), ("rouen-paris", 0.1), ("delivery", 0.6))
TERMINALS = ("FRLEH-TDF", "FRLEH-TPO", "FRLEH-TNMSC")
VEHICLES = (
    Vehicle(weight_t=44, height_m=4.0, length_m=16.5, critair="2"),
    Vehicle(weight_t=40, height_m=4.0, length_m=16.5, critair="1"),
    Vehicle(weight_t=19, height_m=3.8, length_m=10.0, critair="2"),
    Vehicle(weight_t=12, height_m=3.4, length_m=8.0, critair="1"),
    Vehicle(weight_t=7.5, height_m=3.0, length_m=7.0, critair="E"),
    Vehicle(weight_t=3.5, height_m=2.6, length_m=6.0, critair="1"),
)


@dataclass(frozen=True)
class Truck:
    """A driver, its route, and the timing of its trip (route time of each vertex, seconds)."""

    route: Route
    kind: str
    label: str
    times: tuple[float, ...]
    started_s: float  # route time already driven when the demo starts
    cum: tuple[float, ...] = field(repr=False)

    @property
    def duration_s(self) -> float:
        """Route time from start to end."""
        return self.times[-1]

    def position(self, route_time_s: float) -> Point:
        """Where the truck is after ``route_time_s`` seconds of driving (stays at the end)."""
        t = min(max(route_time_s, 0.0), self.times[-1])
        line = self.route.coordinates
        for i in range(1, len(self.times)):
            if self.times[i] >= t:
                span = self.times[i] - self.times[i - 1]
                frac = (t - self.times[i - 1]) / span if span else 1.0
                s = self.cum[i - 1] + frac * (self.cum[i] - self.cum[i - 1])
                return geo.along(line, self.cum, s)
        return line[-1]


def _times(line: Sequence[Point], cum: Sequence[float]) -> tuple[float, ...]:
    out = [0.0]
    for i in range(1, len(line)):
        urban = geo.in_paris(line[i - 1]) and geo.in_paris(line[i])
        speed = (URBAN_KMH if urban else HIGHWAY_KMH) / 3.6
        out.append(out[-1] + (cum[i] - cum[i - 1]) / speed)
    return tuple(out)


def _paris_stops(rng: random.Random, hotspots: Sequence[Point], count: int) -> list[Point]:
    stops = []
    for _ in range(count):
        if hotspots and rng.random() < 0.5:
            stops.append(geo.offset(rng.choice(hotspots), rng.uniform(-60, 60), rng.uniform(-60, 60)))
        else:
            west, south, east, north = geo.PARIS_BOX
            stops.append((rng.uniform(west + 0.02, east - 0.02), rng.uniform(south + 0.01, north - 0.01)))
    return stops


def _trip(
    kind: str, rng: random.Random, hotspots: Sequence[Point], exact: Sequence[Point]
) -> tuple[list[Point], str, str | None]:
    """Waypoints, a label and a destination for one trip of ``kind``."""
    trunk = [*geo.HAVRE_TO_BRIDGE, *geo.BRIDGE_DECK, *geo.BRIDGE_TO_PARIS]
    if kind == "havre-paris":
        terminal = rng.choice(TERMINALS)
        stop = _paris_stops(rng, hotspots, 1)[0]
        line = [_gate(terminal), *trunk, *geo.city_leg(trunk[-1], stop, rng)]
        return line, f"{terminal} → Rouen → Paris", None
    if kind == "paris-havre":
        terminal = rng.choice(TERMINALS)
        start = _paris_stops(rng, hotspots, 1)[0]
        back = list(reversed(trunk))
        line = [start, *geo.city_leg(start, back[0], rng), *back[1:], _gate(terminal)]
        return line, f"Paris → Rouen → {terminal}", terminal
    if kind == "rouen-paris":
        stop = _paris_stops(rng, hotspots, 1)[0]
        line = [
            geo.ROUEN_NORTH,
            *trunk[trunk.index(geo.HAVRE_TO_BRIDGE[-1]) :],
            *geo.city_leg(trunk[-1], stop, rng),
        ]
        return line, "Rouen → Paris", None
    depot_name, depot = rng.choice(sorted(geo.DEPOTS.items()))
    stops = _paris_stops(rng, hotspots, rng.randint(2, 4))
    if exact and rng.random() < 0.25:
        stops.insert(rng.randrange(len(stops) + 1), rng.choice(exact))
    line = [depot]
    for stop in stops:
        line += geo.city_leg(line[-1], stop, rng)
    return line, f"{depot_name} → {len(stops)} deliveries in Paris", None


def _gate(terminal: str) -> Point:
    return {"FRLEH-TDF": (0.1080, 49.4680), "FRLEH-TPO": (0.1270, 49.4670), "FRLEH-TNMSC": (0.1500, 49.4660)}[
        terminal
    ]


def build_fleet(
    count: int, now: datetime, seed: int, hotspots: Sequence[Point] = (), exact: Sequence[Point] = ()
) -> list[Truck]:
    """``count`` trucks already on their way at ``now``; the same seed gives the same fleet.

    ``hotspots`` are places deliveries go near (within ~60 m); ``exact`` are places some of them
    drive right through (closed streets).
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible fleet, not a secret
    kinds = [kind for kind, share in SHARES for _ in range(round(count * share))]
    kinds = (kinds + ["delivery"] * count)[:count]
    trucks = []
    for n, kind in enumerate(kinds, start=1):
        waypoints, label, destination = _trip(kind, rng, hotspots, exact)
        keep = frozenset(i for i, p in enumerate(waypoints) if p in geo.BRIDGE_DECK or p in exact)
        line = geo.jitter(waypoints, rng, 8.0, keep)
        cum = geo.cumulative(line)
        times = _times(line, cum)
        started = rng.uniform(0.0, 0.85) * times[-1]
        depart = now - timedelta(seconds=started)
        route = Route(
            route_id=f"route-{n:03d}",
            driver_id=f"truck-{n:03d}",
            coordinates=tuple(line),
            vehicle=rng.choice(VEHICLES),
            depart_at=depart.replace(microsecond=0),
            arrive_by=(depart + timedelta(seconds=times[-1])).replace(microsecond=0),
            destination=destination,
        )
        trucks.append(Truck(route, kind, label, times, started, tuple(cum)))
    return trucks
