"""Polylines of the demo: the Seine road axis, the river, Paris; lengths, jitter, points along a line.

No road network is available offline: the axes are hand-placed waypoints along the A29/A150 (Le
Havre to Rouen), the Gustave-Flaubert bridge (the road line of the bundled port infrastructure),
the N338 and the A13 to the Porte d'Auteuil; they are plausible, not surveyed.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

Point = tuple[float, float]
EARTH_M = 6_371_000.0

# Le Havre (Port 2000 road) -> A131/A29 -> A150 -> Rouen, NE bank of the Gustave-Flaubert bridge.
HAVRE_TO_BRIDGE: tuple[Point, ...] = (
    (0.2000, 49.4655),
    (0.2600, 49.4690),
    (0.3000, 49.4900),
    (0.3600, 49.5150),
    (0.4500, 49.5450),
    (0.5500, 49.5700),
    (0.6500, 49.5900),
    (0.7500, 49.6050),
    (0.8500, 49.5850),
    (0.9300, 49.5500),
    (0.9900, 49.5100),
    (1.0300, 49.4800),
    (1.0500, 49.4650),
)
BRIDGE_DECK: tuple[Point, ...] = ((1.0676, 49.4466), (1.0652, 49.4446), (1.0629, 49.4427))
# SW bank of the bridge -> N338 (Sud III) -> A13 -> Porte d'Auteuil.
BRIDGE_TO_PARIS: tuple[Point, ...] = (
    (1.0600, 49.4300),
    (1.0650, 49.4100),
    (1.0750, 49.3900),
    (1.0900, 49.3700),
    (1.1000, 49.3500),
    (1.1000, 49.3300),
    (1.1300, 49.2900),
    (1.1600, 49.2500),
    (1.2500, 49.1900),
    (1.3500, 49.1400),
    (1.4500, 49.1000),
    (1.5500, 49.0500),
    (1.6500, 49.0000),
    (1.7500, 48.9750),
    (1.8500, 48.9600),
    (1.9500, 48.9350),
    (2.0500, 48.9000),
    (2.1100, 48.8500),
    (2.1700, 48.8400),
    (2.2250, 48.8420),
    (2.2550, 48.8460),
)
# Rouen's right bank (Maromme) to the bridge, for regional trucks.
ROUEN_NORTH: Point = (1.0300, 49.4800)
# The Seine from Port 2000 up to Rouen's quays: schematic, joins the bridge's approach axes.
SEINE: tuple[Point, ...] = (
    (0.1000, 49.4740),
    (0.2000, 49.4640),
    (0.3300, 49.4540),
    (0.4500, 49.4700),
    (0.5800, 49.4900),
    (0.7200, 49.5250),
    (0.7800, 49.5150),
    (0.8500, 49.4800),
    (0.9000, 49.4300),
    (0.9300, 49.3600),
    (0.9800, 49.3700),
    (0.9950, 49.4000),
    (1.0000, 49.4300),
    (1.0150, 49.4550),
    (1.0300, 49.4630),
    (1.0470, 49.4550),
    (1.0652, 49.4446),
    (1.0720, 49.4412),
    (1.0790, 49.4375),
)
PARIS_BOX = (2.255, 48.825, 2.415, 48.900)  # inside the Boulevard périphérique, roughly
DEPOTS: dict[str, Point] = {
    "Gennevilliers port": (2.2850, 48.9360),
    "Saint-Ouen": (2.3300, 48.9160),
    "Rungis": (2.3550, 48.7550),
    "Bercy": (2.3850, 48.8350),
    "La Villette": (2.3900, 48.8950),
}


def metres(a: Point, b: Point) -> float:
    """Great-circle distance between two lon/lat points (haversine)."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_M * math.asin(math.sqrt(h))


def cumulative(line: Sequence[Point]) -> list[float]:
    """Distance from the start at each vertex, metres."""
    return [0.0, *accumulate(metres(a, b) for a, b in zip(line, line[1:], strict=False))]


def along(line: Sequence[Point], cum: Sequence[float], s: float) -> Point:
    """The point ``s`` metres along the line (clamped to its ends)."""
    if s <= 0:
        return line[0]
    if s >= cum[-1]:
        return line[-1]
    i = bisect_right(cum, s) - 1
    span = cum[i + 1] - cum[i]
    t = (s - cum[i]) / span if span else 0.0
    (x0, y0), (x1, y1) = line[i], line[i + 1]
    return (x0 + t * (x1 - x0), y0 + t * (y1 - y0))


def offset(point: Point, east_m: float, north_m: float) -> Point:
    """A point moved by metres east and north."""
    lon, lat = point
    dlat = north_m / EARTH_M
    dlon = east_m / (EARTH_M * math.cos(math.radians(lat)))
    return (lon + math.degrees(dlon), lat + math.degrees(dlat))


def jitter(line: Sequence[Point], rng: random.Random, metres_max: float, keep: frozenset[int]) -> list[Point]:
    """Each vertex moved by up to ``metres_max`` (those in ``keep`` stay), rounded to ~1 cm."""
    out = []
    for i, point in enumerate(line):
        if i not in keep:
            point = offset(point, rng.uniform(-metres_max, metres_max), rng.uniform(-metres_max, metres_max))
        out.append((round(point[0], 7), round(point[1], 7)))
    return out


def city_leg(a: Point, b: Point, rng: random.Random) -> list[Point]:
    """From a to b through one street corner (an L, east-west or north-south first): no diagonals."""
    if metres(a, b) < 300:
        return [b]
    corner = (b[0], a[1]) if rng.random() < 0.5 else (a[0], b[1])
    return [corner, b]


def in_paris(point: Point) -> bool:
    """True inside the rough box of Paris (urban speed applies)."""
    lon, lat = point
    west, south, east, north = PARIS_BOX
    return west <= lon <= east and south <= lat <= north
