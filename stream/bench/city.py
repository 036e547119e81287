"""The reference city: a reproducible (seeded) set of routes and events around Paris.

A 50 km square in Lambert-93 metres; routes of 200 vertices, 50 m apart, whose heading drifts by
a normal turn of 0.3 rad per step, starting uniformly in the square; events uniform in the square:
50 % points, 40 % 100 m segments, 10 % 200 m squares. Geometries are handed out in lon/lat, as the
engine receives them. Routes are generated in chunks from their own seeds, so a consumer can hold
one chunk at a time and a child process can rebuild exactly the same city.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from schemas import Event, Route, Vehicle
from stream.core.geo import DEFAULT_CRS, unproject_xy

Array = np.ndarray[Any, Any]
PARIS_L93 = (652_000.0, 6_862_000.0)
CHUNK = 2_000
TRUCK = Vehicle(weight_t=19.0, height_m=3.8, width_m=2.55, length_m=12.0, critair="2")
DEPART = datetime(2026, 1, 6, 6, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class City:
    """Parameters of a reference city."""

    routes: int = 10_000
    events: int = 10_000
    seed: int = 7
    size_m: float = 50_000.0
    vertices: int = 200
    step_m: float = 50.0
    turn_rad: float = 0.3
    crs: str = DEFAULT_CRS

    def origin(self) -> tuple[float, float]:
        """South-west corner of the square (metres)."""
        return PARIS_L93[0] - self.size_m / 2, PARIS_L93[1] - self.size_m / 2


def route_chunk_xy(city: City, chunk: int) -> tuple[Array, Array]:
    """Metric vertices (k, vertices) of routes ``chunk * CHUNK`` onwards."""
    k = max(0, min(CHUNK, city.routes - chunk * CHUNK))
    rng = np.random.default_rng([city.seed, 0, chunk])
    x0, y0 = city.origin()
    start = rng.uniform(0.0, city.size_m, size=(k, 2))
    heading = rng.uniform(0.0, 2 * np.pi, size=(k, 1)) + np.cumsum(
        rng.normal(0.0, city.turn_rad, size=(k, city.vertices - 1)), axis=1
    )
    dx = np.concatenate((np.zeros((k, 1)), city.step_m * np.cos(heading)), axis=1)
    dy = np.concatenate((np.zeros((k, 1)), city.step_m * np.sin(heading)), axis=1)
    return x0 + start[:, :1] + np.cumsum(dx, axis=1), y0 + start[:, 1:] + np.cumsum(dy, axis=1)


def route_chunks(city: City) -> Iterator[tuple[int, Array, Array]]:
    """(first route index, lon (k, n), lat (k, n)) chunk by chunk."""
    for chunk in range(-(-city.routes // CHUNK)):
        x, y = route_chunk_xy(city, chunk)
        lon, lat = unproject_xy(x.ravel(), y.ravel(), city.crs)
        yield chunk * CHUNK, lon.reshape(x.shape), lat.reshape(x.shape)


def make_route(index: int, lon: Array, lat: Array) -> Route:
    """The route record of route ``index`` from its lon/lat row."""
    return Route(
        route_id=f"r{index}",
        driver_id=f"d{index}",
        coordinates=tuple(zip(lon.tolist(), lat.tolist(), strict=True)),
        vehicle=TRUCK,
        depart_at=DEPART,
    )


def routes(city: City) -> Iterator[Route]:
    """Every route of the city, in order."""
    for first, lon, lat in route_chunks(city):
        for i in range(len(lon)):
            yield make_route(first + i, lon[i], lat[i])


def event_geometries_xy(city: City) -> list[tuple[str, Array]]:
    """(GeoJSON type, metric coordinates) of every event."""
    rng = np.random.default_rng([city.seed, 1])
    x0, y0 = city.origin()
    kinds = rng.choice(3, size=city.events, p=[0.5, 0.4, 0.1])
    centre = rng.uniform(0.0, city.size_m, size=(city.events, 2)) + (x0, y0)
    angle = rng.uniform(0.0, 2 * np.pi, size=city.events)
    out: list[tuple[str, Array]] = []
    for kind, (cx, cy), a in zip(kinds.tolist(), centre.tolist(), angle.tolist(), strict=True):
        if kind == 0:
            out.append(("Point", np.array([[cx, cy]])))
        elif kind == 1:
            hx, hy = 50.0 * np.cos(a), 50.0 * np.sin(a)
            out.append(("LineString", np.array([[cx - hx, cy - hy], [cx + hx, cy + hy]])))
        else:
            ring = [[cx - 100, cy - 100], [cx + 100, cy - 100], [cx + 100, cy + 100]]
            ring += [[cx - 100, cy + 100], [cx - 100, cy - 100]]
            out.append(("Polygon", np.array(ring)))
    return out


def events(city: City) -> list[Event]:
    """Every event of the city (no time window, no vehicle condition: geometry decides)."""
    shapes = event_geometries_xy(city)
    flat = np.concatenate([xy for _, xy in shapes]) if shapes else np.zeros((0, 2))
    lon, lat = unproject_xy(flat[:, 0], flat[:, 1], city.crs)
    out: list[Event] = []
    at = 0
    for i, (kind, xy) in enumerate(shapes):
        coords = [
            [lo, la]
            for lo, la in zip(lon[at : at + len(xy)].tolist(), lat[at : at + len(xy)].tolist(), strict=True)
        ]
        at += len(xy)
        geometry: dict[str, Any] = {"type": kind, "coordinates": coords}
        if kind == "Point":
            geometry["coordinates"] = coords[0]
        elif kind == "Polygon":
            geometry["coordinates"] = [coords]
        label = {"Point": "hazard", "LineString": "closure", "Polygon": "roadworks"}[kind]
        out.append(Event(id=f"city:e{i}", source="city", kind=label, geometry=geometry))  # type: ignore[arg-type]
    return out
