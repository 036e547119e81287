"""The demo's ships: synthetic AIS (encoded with pyais) along the Seine, and port calls at Le Havre.

Ships and their names are invented. Two cargo ships head up the Seine for Rouen and need the
Gustave-Flaubert bridge lifted: the first is already in the bridge's approach zone, the second
enters it a few tens of seconds into the demo. A river cruiser further down and a pleasure craft
near the bridge need no lift. A container ship approaches Port 2000, whose terminal publishes port
calls (one estimated arrival, later delayed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyais

from stream.demo import geometry as geo
from stream.demo.geometry import Point

KNOT_MS = 1852.0 / 3600.0
APPROACH_TO_PORT_2000: tuple[Point, ...] = ((0.0000, 49.4900), (0.0700, 49.4800), (0.1300, 49.4700))


@dataclass(frozen=True)
class Ship:
    """A vessel: its static data, its track and where it is on it when the demo starts."""

    mmsi: int
    name: str
    ship_type: int
    length_m: int
    speed_kn: float
    path: tuple[Point, ...]
    start_m: float  # metres along the path at the start of the demo
    destination: str

    def position(self, seconds: float) -> tuple[Point, float]:
        """Position and course (degrees) after ``seconds`` of sailing from the start point."""
        cum = geo.cumulative(self.path)
        s = min(self.start_m + seconds * self.speed_kn * KNOT_MS, cum[-1])
        here = geo.along(self.path, cum, s)
        ahead = geo.along(self.path, cum, min(s + 50.0, cum[-1]))
        if ahead == here:
            ahead = here
            here = geo.along(self.path, cum, s - 50.0)
        return here, bearing(here, ahead)

    def static_lines(self) -> list[str]:
        """AIS type 5 (static and voyage data) as NMEA sentences."""
        return pyais.encode_dict(
            {
                "type": 5,
                "mmsi": self.mmsi,
                "shipname": self.name,
                "ship_type": self.ship_type,
                "to_bow": int(self.length_m * 0.8),
                "to_stern": self.length_m - int(self.length_m * 0.8),
                "to_port": 8,
                "to_starboard": 8,
                "destination": self.destination,
                "imo": 9_000_000 + self.mmsi % 1_000_000,
            }
        )

    def position_lines(self, seconds: float) -> list[str]:
        """AIS type 1 (position report) at ``seconds`` of sailing, as NMEA sentences."""
        (lon, lat), course = self.position(seconds)
        report = {"type": 1, "mmsi": self.mmsi, "lon": lon, "lat": lat, "speed": self.speed_kn}
        return pyais.encode_dict(
            {**report, "course": round(course, 1), "heading": round(course) % 360, "status": 0}
        )


def bearing(a: Point, b: Point) -> float:
    """Initial bearing from a to b, degrees clockwise from north."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    dlon = lon2 - lon1
    y = math.sin(dlon) * math.cos(lat2)
    x = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(dlon)
    return math.degrees(math.atan2(y, x)) % 360


def _to_bridge(remaining_m: float) -> float:
    """Metres along the Seine polyline that are ``remaining_m`` before the Gustave-Flaubert bridge."""
    cum = geo.cumulative(geo.SEINE)
    return cum[geo.SEINE.index(geo.BRIDGE_DECK[1])] - remaining_m


def fleet_of_ships() -> list[Ship]:
    """The demo's vessels (fixed: the story is the same every time)."""
    seine = geo.SEINE
    return [
        Ship(227_900_001, "AZUR TRADER", 70, 135, 8.0, seine, _to_bridge(1300), "FRURO"),
        Ship(227_900_002, "NORDIC SPIRIT", 80, 150, 9.0, seine, _to_bridge(5200), "FRURO"),
        Ship(227_900_003, "BELLE DE SEINE", 60, 110, 9.0, seine, _to_bridge(42_000), "FRURO"),
        Ship(227_900_004, "RIVER LARK", 37, 14, 6.0, seine, _to_bridge(2200), "FRURO"),
        Ship(228_900_005, "OCEAN MERIDIAN", 71, 366, 7.0, APPROACH_TO_PORT_2000, 1500.0, "FRLEH"),
    ]


def port_call(terminal: str, name: str, gate: Point, when: datetime, **extra: Any) -> dict[str, Any]:
    """A port-call timestamp (``corridor parse --format portcall`` input) for a berth arrival."""
    record = {
        "portCallID": f"FRLEH-{when:%Y%m%d}-{name.replace(' ', '')}",
        "UNLocationCode": "FRLEH",
        "MMSINumber": "228900005",
        "vesselName": name,
        "portCallServiceTypeCode": "BERTH",
        "portCallServiceEventTypeCode": "ARRI",
        "classifierCode": "EST",
        "dateTime": when.replace(microsecond=0).isoformat(),
        "terminal": {"terminalID": terminal, "name": "Terminal de Normandie MSC", "gatePosition": list(gate)},
        "publisher": "demo terminal",
    }
    return {**record, **extra}


def port_calls(now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """OCEAN MERIDIAN's estimated berth arrival at FRLEH-TNMSC, then the same call delayed by 50 min."""
    gate = (0.1500, 49.4660)
    estimated = port_call("FRLEH-TNMSC", "OCEAN MERIDIAN", gate, now + timedelta(minutes=40))
    delayed = {**estimated, "dateTime": (now + timedelta(minutes=90)).replace(microsecond=0).isoformat()}
    delayed["remark"] = "berth occupied: arrival moved 50 min later"
    return estimated, delayed
