"""Metric geometry: GeoJSON in WGS84 (lon, lat) to shapely geometries in metres.

Distances are never computed in degrees. Geometries are projected to a conformal metric CRS,
Lambert-93 (EPSG:2154) by default, whose scale error stays under 0.3 % over mainland France:
9 cm on a 30 m corridor. ``CORRIDOR_METRIC_CRS`` (read by the runtime) picks another one.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

DEFAULT_CRS = "EPSG:2154"


@cache
def _transformer(crs: str) -> Transformer:
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


@cache
def _inverse(crs: str) -> Transformer:
    return Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


def lonlat_columns(positions: Sequence[Sequence[Any]]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Longitudes and latitudes of GeoJSON positions (a third value, if any, is dropped); a
    position without both raises ``ValueError``, a value that is no number ``ValueError`` or
    ``TypeError`` (``None`` reads as NaN)."""
    if not positions:
        return np.zeros(0), np.zeros(0)
    values = tuple(zip(*positions, strict=False))  # as many as the shortest position holds
    if len(values) < 2:
        raise ValueError("a position without both a longitude and a latitude")
    return np.asarray(values[0], dtype=float), np.asarray(values[1], dtype=float)


def project_xy(
    lon: np.ndarray[Any, Any], lat: np.ndarray[Any, Any], crs: str = DEFAULT_CRS
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Project arrays of lon/lat degrees to metric x/y (vectorized)."""
    x, y = _transformer(crs).transform(lon, lat)
    return np.asarray(x), np.asarray(y)


def unproject_xy(
    x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], crs: str = DEFAULT_CRS
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Metric x/y back to lon/lat degrees."""
    lon, lat = _inverse(crs).transform(x, y)
    return np.asarray(lon), np.asarray(lat)


def to_metric(geometry: dict[str, Any] | BaseGeometry, crs: str = DEFAULT_CRS) -> BaseGeometry:
    """A GeoJSON geometry (or shapely geometry in lon/lat) projected to metres; Z is dropped."""
    shape = geometry if isinstance(geometry, BaseGeometry) else shapely.geometry.shape(geometry)
    shape = shapely.force_2d(shape)
    transformer = _transformer(crs)
    return shapely.transform(shape, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


def line_metric(coordinates: Sequence[Sequence[float]], crs: str = DEFAULT_CRS) -> BaseGeometry:
    """A route's lon/lat coordinates as a metric LineString."""
    arr = np.asarray(coordinates, dtype=float)[:, :2]
    x, y = project_xy(arr[:, 0], arr[:, 1], crs)
    return shapely.linestrings(np.column_stack((x, y)))
