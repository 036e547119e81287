"""What the demo plays: truck routes and DiaLog closures from the bundled data, shifted to now."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from importlib import resources

from schemas import Event, Route, Vehicle
from stream.feeds.registry import parse

VALID_FOR = timedelta(hours=2)


@dataclass(frozen=True)
class Truck:
    """A driver and its route, with a line saying where it goes."""

    route: Route
    label: str


def _route(route_id: str, driver_id: str, coords: list[tuple[float, float]], **vehicle: object) -> Route:
    return Route(route_id, driver_id, tuple(coords), Vehicle(**vehicle))  # type: ignore[arg-type]


def trucks() -> list[Truck]:
    """Delivery trucks: three cross Saint-Ouen streets DiaLog closes, one works near Seclin."""
    return [
        Truck(
            _route(
                "route-01",
                "truck-01",
                [(2.3330, 48.9160), (2.3385, 48.9110), (2.3420, 48.9060)],
                weight_t=19,
                height_m=4.0,
                critair="2",
            ),
            "Saint-Ouen, across rue Claude Monet",
        ),
        Truck(
            _route(
                "route-02",
                "truck-02",
                [(2.3390, 48.9102), (2.3440, 48.9100), (2.3500, 48.9098)],
                weight_t=12,
                height_m=3.4,
                critair="1",
            ),
            "Saint-Ouen, eastbound to the Marché",
        ),
        Truck(
            _route(
                "route-03",
                "truck-03",
                [(2.3300, 48.9085), (2.3380, 48.9108), (2.3460, 48.9115)],
                weight_t=26,
                height_m=4.0,
                critair="3",
            ),
            "Saint-Ouen, along both closed streets",
        ),
        Truck(
            _route(
                "route-04",
                "truck-04",
                [(3.0150, 50.5660), (3.0232, 50.5700), (3.0300, 50.5740)],
                weight_t=40,
                height_m=4.0,
                critair="2",
            ),
            "Seclin, near Lille",
        ),
        Truck(
            _route(
                "route-05",
                "truck-05",
                [(2.2950, 48.8380), (2.3100, 48.8330), (2.3300, 48.8300)],
                weight_t=7.5,
                height_m=3.0,
                critair="1",
            ),
            "Paris 15e, no closure on the way",
        ),
        Truck(
            _route(
                "route-06",
                "truck-06",
                [(2.3700, 48.8500), (2.3800, 48.8450), (2.3950, 48.8420)],
                weight_t=19,
                height_m=4.0,
                critair="2",
            ),
            "Paris 12e, no closure on the way",
        ),
    ]


def closures(now: datetime) -> list[Event]:
    """DiaLog's CIFS closures, re-timed: valid from a minute ago for two hours, every day."""
    data = resources.files("stream").joinpath("data/cifs-incidents.xml").read_bytes()
    events = [item for item in parse("cifs", data) if isinstance(item, Event)]
    return [
        replace(e, valid_from=now - timedelta(minutes=1), valid_until=now + VALID_FOR, schedule=None)
        for e in events
    ]
