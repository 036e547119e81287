"""Build test geometries in metres and hand them to the engine in lon/lat, as feeds would."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stream.core.geo import DEFAULT_CRS, project_xy, unproject_xy

# A street corner in Paris (Lambert-93 metres), the origin of every test geometry.
ORIGIN_LON, ORIGIN_LAT = 2.3522, 48.8566
_OX, _OY = (float(v[0]) for v in project_xy(np.array([ORIGIN_LON]), np.array([ORIGIN_LAT])))


def lonlat(points_m: Sequence[tuple[float, float]]) -> list[list[float]]:
    """Points given in metres east/north of the origin, as [lon, lat] pairs."""
    xy = np.asarray(points_m, dtype=float)
    lon, lat = unproject_xy(xy[:, 0] + _OX, xy[:, 1] + _OY, DEFAULT_CRS)
    return [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]


def line(points_m: Sequence[tuple[float, float]]) -> dict[str, object]:
    """A GeoJSON LineString from metre offsets."""
    return {"type": "LineString", "coordinates": lonlat(points_m)}


def point(x_m: float, y_m: float) -> dict[str, object]:
    """A GeoJSON Point from metre offsets."""
    return {"type": "Point", "coordinates": lonlat([(x_m, y_m)])[0]}


def square(x_m: float, y_m: float, side_m: float) -> dict[str, object]:
    """A GeoJSON Polygon: an axis-aligned square with its lower-left corner at (x, y)."""
    ring = [(x_m, y_m), (x_m + side_m, y_m), (x_m + side_m, y_m + side_m), (x_m, y_m + side_m)]
    return {"type": "Polygon", "coordinates": [lonlat([*ring, ring[0]])]}
