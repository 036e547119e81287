"""What the demo plays, built from the bundled data: pure, deterministic for a seed and a time.

City regulations (Paris 2024 perimeters, DiaLog closures) re-timed to now (see timeshift), ships
on the Seine and port calls at Le Havre (see ships), and a few hundred trucks (see fleet), plus the
scene the dispatcher map draws under the live data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from shapely.geometry import shape

from schemas import Event
from stream.core.port.infrastructure import load as load_infrastructure
from stream.core.rules import compile_schedule, in_schedule
from stream.demo import geometry as geo
from stream.demo.fleet import Truck, build_fleet
from stream.demo.ships import Ship, fleet_of_ships, port_calls
from stream.demo.timeshift import PARIS, Replay, Reslot, active_between, choose_replay, choose_reslot
from stream.feeds.registry import parse

DEFAULT_SEED = 2024
DEFAULT_TRUCKS = 200
SPEEDUP = 10.0  # vehicles move this many times faster than real, so that the map moves
HORIZON = timedelta(hours=6)  # perimeters published: those in force at some point in the next hours
CITY_BOX = (2.22, 48.80, 2.47, 48.95)  # where deliveries may go: Paris and its inner suburbs
PLACES = {
    "Le Havre": (0.1079, 49.4944),
    "Rouen": (1.0993, 49.4431),
    "Paris": (2.3522, 48.8566),
    "Saint-Ouen": (2.3340, 48.9120),
    "Mantes": (1.7170, 48.9910),
}


@cache
def _data(name: str) -> bytes:
    return resources.files("stream").joinpath(f"data/{name}").read_bytes()


def load_perimeters() -> list[Event]:
    """The Paris 2024 perimeters, as published (2024 dates)."""
    return [e for e in parse("perimeters", _data("zones.geojson")) if isinstance(e, Event)]


def load_closures() -> list[Event]:
    """DiaLog's CIFS closures, as published (2023 dates)."""
    return [e for e in parse("cifs", _data("cifs-incidents.xml")) if isinstance(e, Event)]


def _inside(point: tuple[float, float], box: tuple[float, float, float, float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _middle(event: Event) -> tuple[float, float]:
    point = shape(event.geometry).interpolate(0.5, normalized=True)
    return (round(point.x, 7), round(point.y, 7))


@dataclass(frozen=True)
class Scenario:
    """Everything the demo publishes, and how it was re-timed."""

    now: datetime
    seed: int
    replay: Replay
    reslot: Reslot
    perimeters: list[Event]
    closures: list[Event]
    trucks: list[Truck]
    ships: list[Ship]
    port_calls: tuple[dict[str, Any], dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def events(self) -> list[Event]:
        """The city events published at the start (perimeters, then closures)."""
        return [*self.perimeters, *self.closures]

    @property
    def cancelled_closure(self) -> Event:
        """The closure the city lifts during the demo (the first one in force now)."""
        live = [e for e in self.closures if in_force_at(e, self.now)]
        return (live or self.closures)[0]

    def describe(self) -> str:
        """One line that lets anyone rebuild this scenario (``build(**params)``)."""
        minutes = int(self.reslot.delta.total_seconds() // 60)
        return f"scenario: seed={self.seed} trucks={len(self.trucks)} day={self.replay.day} reslot={minutes}"

    def scene(self) -> dict[str, Any]:
        """What the dispatcher map draws under the data: river, bridge, terminals, places, views."""
        infra = load_infrastructure()
        return {
            "title": "Corridor — the Seine axis, Le Havre · Rouen · Paris",
            "notes": self.notes,
            "waterways": [{"name": "Seine", "coordinates": [list(p) for p in geo.SEINE]}],
            "structures": [
                {"id": s.id, "name": s.name, "coordinates": s.road["coordinates"]}
                for s in infra.structures.values()
                if s.id.startswith("FRURO")
            ],
            "terminals": [
                {"id": t.id, "name": t.name, "coordinates": list(t.gate)} for t in infra.terminals.values()
            ],
            "places": [{"name": n, "coordinates": list(p)} for n, p in PLACES.items()],
            "views": {
                "corridor": [0.0, 48.74, 2.5, 49.65],
                "rouen": [0.95, 49.38, 1.15, 49.50],
                "paris": [2.22, 48.81, 2.46, 48.93],
            },
        }


def build(
    now: datetime,
    seed: int = DEFAULT_SEED,
    trucks: int = DEFAULT_TRUCKS,
    day: date | None = None,
    reslot: int | None = None,
) -> Scenario:
    """The scenario at ``now``; ``day`` and ``reslot`` (minutes) pin the re-timing (else chosen)."""
    raw_perimeters = load_perimeters()
    replay = choose_replay(raw_perimeters, now, day)
    shifted = replay.shift(raw_perimeters)
    perimeters = [p for p in shifted if active_between(p, now, now + HORIZON)]
    raw_closures = load_closures()
    slot = Reslot(timedelta(minutes=reslot)) if reslot is not None else choose_reslot(raw_closures, now)
    closures = slot.shift(raw_closures)
    in_force = [p for p in perimeters if active_between(p, now, now + timedelta(minutes=1))]
    hotspots = [
        (round(pt.x, 6), round(pt.y, 6))
        for p in in_force
        if _inside((pt := shape(p.geometry).representative_point()).coords[0], CITY_BOX)
    ]
    exact = [m for c in closures if _inside(m := _middle(c), CITY_BOX)]
    fleet = build_fleet(trucks, now, seed, sorted(set(hotspots)), sorted(set(exact)))
    scenario = Scenario(
        now, seed, replay, slot, perimeters, closures, fleet, fleet_of_ships(), port_calls(now)
    )
    scenario.notes.extend(_notes(scenario, in_force))
    return scenario


def in_force_at(event: Event, when: datetime) -> bool:
    """True when the event's window and weekly schedule (if any) hold at ``when``."""
    if not active_between(event, when, when + timedelta(seconds=1)):
        return False
    slots = compile_schedule(event.schedule)
    return slots is None or in_schedule(slots, event.timezone, when.timestamp())


def _notes(s: Scenario, in_force: list[Event]) -> list[str]:
    weeks = s.replay.delta.days // 7
    local = s.now.astimezone(PARIS)
    closures_now = [c for c in s.closures if in_force_at(c, s.now)]
    delta = s.reslot.delta
    sign = "-" if delta < timedelta(0) else "+"
    days, rest = divmod(abs(int(delta.total_seconds())), 86400)
    return [
        f"Paris 2024 perimeters: replaying {s.replay.day:%A %d %B %Y} ({s.replay.games_day}) as today, "
        f"{local:%A %d %B %Y}: the data moves {weeks} weeks ahead, weekdays and local times kept; "
        f"{len(in_force)} perimeters in force now, {len(s.perimeters)} within {HORIZON.seconds // 3600} h.",
        f"DiaLog closures (Saint-Ouen and Seclin, 2023) move {sign}{days} d {rest // 3600} h "
        f"{rest % 3600 // 60:02d} min so that their daily evening slot opens at "
        f"{(local - timedelta(minutes=10)):%H:%M}; {len(closures_now)} of {len(s.closures)} in force now.",
        f"{len(s.trucks)} trucks on their way, {len(s.ships)} ships; "
        f"vehicles move {SPEEDUP:g}x faster than real.",
    ]
