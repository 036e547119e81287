"""Event geometries as metric primitives: points and segments, projected once per batch.

A point is a degenerate segment; lines give their segments; polygons give their rings' segments
and keep a shapely polygon for the inside test (a route segment that starts inside is at
distance 0). Each event gets query boxes: one around the whole event when that is compact, one
per primitive otherwise (a long diagonal closure should not scan its whole bounding box). An area
whose primitives are exactly the rings of a valid polygon gets one box around it, in which the scan
also tests segment starts for being inside (even-odd over the rings); other areas (collections,
invalid rings, more than ``RING_EDGES_MAX`` edges) get one box per edge and their inside is found
with the shapely polygon.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from stream.core.geo import lonlat_columns, project_xy

Array = np.ndarray[Any, Any]
_POINT, _LINE, _RING = 0, 1, 2
# An area with more edges gets a box per edge and the shapely inside test: the scan's own inside
# test reads every edge for each candidate in the area's box (a detailed perimeter has thousands).
RING_EDGES_MAX = 64


@dataclass(slots=True)
class ShapeBatch:
    """The primitives of a batch of events (all arrays in metres)."""

    prims: Array  # (P, 4): x0, y0, x1, y1
    prim_event: Array  # (P,) index of the event in the batch
    prim_lo: Array  # (E,) first primitive of each event
    prim_hi: Array  # (E,) one past its last primitive
    bbox: Array  # (E, 4): xmin, ymin, xmax, ymax of each event
    polygons: list[BaseGeometry | None]  # areal events only
    rings: Array  # (E,) bool: an area whose primitives are exactly its valid polygon's rings
    boxes: Array  # (B, 4) query boxes, already grown by the margin
    box_event: Array  # (B,)
    box_lo: Array  # (B,) primitives a box's candidates are paired with
    box_hi: Array  # (B,)
    box_inside: Array  # (B,) bool: also test segment starts for being inside the event's rings


def _walk(geom: dict[str, Any], out: list[tuple[int, list[Any]]]) -> bool:
    """Collect (kind, coordinates) parts; True when the geometry has an area."""
    kind = geom.get("type")
    coords = geom.get("coordinates")
    if kind == "Point":
        out.append((_POINT, [coords]))
    elif kind == "MultiPoint":
        out.extend((_POINT, [c]) for c in coords or ())
    elif kind == "LineString":
        out.append((_LINE, list(coords or ())))
    elif kind == "MultiLineString":
        out.extend((_LINE, list(c)) for c in coords or ())
    elif kind == "Polygon":
        out.extend((_RING, list(r)) for r in coords or ())
        return True
    elif kind == "MultiPolygon":
        out.extend((_RING, list(r)) for poly in coords or () for r in poly)
        return True
    elif kind == "GeometryCollection":
        return any([_walk(g, out) for g in geom.get("geometries") or ()])
    else:
        raise ValueError(f"unsupported geometry type {kind!r}")
    return False


def shapes_for(geometries: Sequence[dict[str, Any]], crs: str, margin: float) -> ShapeBatch:
    """Project a batch of GeoJSON geometries and cut them into primitives and query boxes."""
    positions: list[Any] = []  # every vertex of every part, in order
    sizes: list[int] = []  # per part: its vertices, its kind and its event
    kinds: list[int] = []
    owners: list[int] = []
    areal: list[bool] = []
    simple: list[int] = []  # single-ring polygons
    add, extend = positions.append, positions.extend
    add_size, add_kind, add_owner, add_areal = sizes.append, kinds.append, owners.append, areal.append
    for i, geometry in enumerate(geometries):
        kind = geometry.get("type")
        coords = geometry.get("coordinates")
        if kind == "Point" and coords:  # the common shapes without building their parts
            add(coords)
            add_size(1)
            add_kind(_POINT)
            add_owner(i)
            add_areal(False)
            continue
        if kind == "LineString" and coords and len(coords) == 2:  # a closed street, say: one segment
            extend(coords)
            add_size(2)
            add_kind(_LINE)
            add_owner(i)
            add_areal(False)
            continue
        parts: list[tuple[int, list[Any]]] = []
        if kind == "LineString" and coords and len(coords) > 1:
            parts.append((_LINE, coords))
            add_areal(False)
        elif kind == "Polygon" and coords and len(coords) == 1 and len(coords[0]) > 1:
            parts.append((_RING, coords[0]))
            add_areal(True)
            simple.append(i)
        else:
            add_areal(_walk(geometry, parts))
            if kind == "Polygon" and coords and len(coords) == 1:
                simple.append(i)
        for part, points in parts:
            if not points:
                continue
            extend(points)
            add_size(len(points))
            add_kind(_POINT if len(points) == 1 else part)
            add_owner(i)
    lon, lat = lonlat_columns(positions)
    x, y = project_xy(lon, lat, crs)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):  # None reads as NaN; pyproj gives inf
        raise ValueError("a coordinate that is not a number, or outside the projection")
    part_size = np.asarray(sizes, dtype=np.int64)
    part_kind = np.asarray(kinds, dtype=np.int64)
    vkind = np.repeat(part_kind, part_size)  # a part's kind at each vertex, -1 - kind at its last
    vkind[np.cumsum(part_size) - 1] = -1 - part_kind
    start = np.nonzero((vkind >= _LINE) | (vkind == -1 - _POINT))[0]
    end = np.where(vkind[start] >= _LINE, start + 1, start)
    prims = np.column_stack((x[start], y[start], x[end], y[end]))
    vertex_event = np.repeat(np.asarray(owners, dtype=np.int64), part_size)
    prim_event = vertex_event[start]
    n = len(geometries)
    prim_lo = np.searchsorted(prim_event, np.arange(n))
    prim_hi = np.searchsorted(prim_event, np.arange(n), side="right")
    if (prim_hi == prim_lo).any():  # ``prim_event`` is sorted: an event without primitives
        raise ValueError("a geometry without coordinates")
    lo_xy = np.minimum(prims[:, :2], prims[:, 2:])
    hi_xy = np.maximum(prims[:, :2], prims[:, 2:])
    bbox = np.concatenate((np.minimum.reduceat(lo_xy, prim_lo), np.maximum.reduceat(hi_xy, prim_lo)), axis=1)
    polygons, rings = _polygons(geometries, areal, simple, x, y, vertex_event)
    rings &= (prim_hi - prim_lo) <= RING_EDGES_MAX
    return _with_boxes(prims, prim_event, prim_lo, prim_hi, bbox, polygons, areal, rings, margin)


def _polygons(
    geometries: Sequence[dict[str, Any]],
    areal: list[bool],
    simple: list[int],
    x: Array,
    y: Array,
    events: Array,
) -> tuple[list[BaseGeometry | None], Array]:
    """Metric shapely polygons of the areal events (rebuilt from the projected rings; ``simple``:
    the polygons of one ring), and which of them are valid polygons made of exactly the event's
    rings."""
    out: list[BaseGeometry | None] = [None] * len(geometries)
    rings = np.zeros(len(geometries), dtype=bool)  # ``events``: the event of each vertex
    if not any(areal):
        return out, rings
    first = np.searchsorted(events, np.arange(len(geometries)))
    last = np.searchsorted(events, np.arange(len(geometries)), side="right")
    if simple:
        chosen = np.asarray(simple, dtype=np.int64)
        sizes = last[chosen] - first[chosen]
        idx = np.arange(int(sizes.sum())) + np.repeat(first[chosen] - (np.cumsum(sizes) - sizes), sizes)
        ring = np.repeat(np.arange(len(simple)), sizes)
        polys = shapely.polygons(shapely.linearrings(np.column_stack((x[idx], y[idx])), indices=ring))
        bad = ~shapely.is_valid(polys)
        rings[simple] = ~bad
        if bad.any():
            polys[bad] = shapely.make_valid(polys[bad])
        shapely.prepare(polys)
        for i, poly in zip(simple, polys.tolist(), strict=True):
            out[i] = poly
    done = set(simple)
    for i in np.nonzero(np.asarray(areal, dtype=bool))[0].tolist():
        if i in done:
            continue
        sel = events == i
        geom = shapely.transform(
            shapely.geometry.shape(geometries[i]), lambda _xy, s=sel: np.column_stack((x[s], y[s]))
        )
        polys_i = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon"]
        rings[i] = geometries[i].get("type") in ("Polygon", "MultiPolygon") and bool(geom.is_valid)
        shape = shapely.make_valid(shapely.union_all(polys_i))
        shapely.prepare(shape)
        out[i] = shape
    return out, rings


def _with_boxes(
    prims: Array,
    prim_event: Array,
    prim_lo: Array,
    prim_hi: Array,
    bbox: Array,
    polygons: list[BaseGeometry | None],
    areal: list[bool],
    rings: Array,
    margin: float,
) -> ShapeBatch:
    """Pick one box per compact event or ring-tested area, one per primitive for spread-out ones."""
    grow = np.array([-margin, -margin, margin, margin])
    pw = np.abs(prims[:, 2] - prims[:, 0]) + 2 * margin
    ph = np.abs(prims[:, 3] - prims[:, 1]) + 2 * margin
    prim_area = np.add.reduceat(pw * ph, prim_lo)
    whole = (bbox[:, 2] - bbox[:, 0] + 2 * margin) * (bbox[:, 3] - bbox[:, 1] + 2 * margin)
    is_areal = np.asarray(areal, dtype=bool)
    single = ((whole <= 1.5 * prim_area) & ~is_areal) | rings  # other areas: per edge
    ev_single = np.nonzero(single)[0]
    split = ~single[prim_event]
    split_prims = np.nonzero(split)[0]
    lo_xy = np.minimum(prims[split, :2], prims[split, 2:])
    hi_xy = np.maximum(prims[split, :2], prims[split, 2:])
    boxes = np.concatenate((bbox[ev_single], np.column_stack((lo_xy, hi_xy)))) + grow
    box_event = np.concatenate((ev_single, prim_event[split]))
    box_lo = np.concatenate((prim_lo[ev_single], split_prims))
    box_hi = np.concatenate((prim_hi[ev_single], split_prims + 1))
    box_inside = np.concatenate((rings[ev_single], np.zeros(len(split_prims), dtype=bool)))
    return ShapeBatch(
        prims,
        prim_event,
        prim_lo,
        prim_hi,
        bbox,
        polygons,
        rings,
        boxes,
        box_event,
        box_lo,
        box_hi,
        box_inside,
    )
