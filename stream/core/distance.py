"""Vectorized planar distances between route segments and event primitives (metres)."""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


def point_segment(px: Array, py: Array, ax: Array, ay: Array, bx: Array, by: Array) -> tuple[Array, Array]:
    """Distance from points P to segments AB, and the parameter on AB of the closest point."""
    rx, ry = bx - ax, by - ay
    rr = rx * rx + ry * ry
    t = ((px - ax) * rx + (py - ay) * ry) / np.where(rr > 0.0, rr, 1.0)
    np.clip(t, 0.0, 1.0, out=t)
    return np.hypot(ax + t * rx - px, ay + t * ry - py), t


def segment_segment(
    ax: Array, ay: Array, bx: Array, by: Array, cx: Array, cy: Array, dx: Array, dy: Array
) -> tuple[Array, Array]:
    """Distance between segments AB and CD, and the parameter on AB of AB's closest point.

    CD may be degenerate (a point). Crossing segments are at distance 0.
    """
    dist, t = point_segment(cx, cy, ax, ay, bx, by)
    d2, t2 = point_segment(dx, dy, ax, ay, bx, by)
    closer = d2 < dist
    dist = np.where(closer, d2, dist)
    t = np.where(closer, t2, t)
    da, _ = point_segment(ax, ay, cx, cy, dx, dy)
    closer = da < dist
    dist = np.where(closer, da, dist)
    t = np.where(closer, 0.0, t)
    db, _ = point_segment(bx, by, cx, cy, dx, dy)
    closer = db < dist
    dist = np.where(closer, db, dist)
    t = np.where(closer, 1.0, t)
    rx, ry, sx, sy = bx - ax, by - ay, dx - cx, dy - cy
    den = rx * sy - ry * sx
    qx, qy = cx - ax, cy - ay
    with np.errstate(invalid="ignore", divide="ignore"):
        u = (qx * sy - qy * sx) / den
        v = (qx * ry - qy * rx) / den
    cross = (den != 0) & (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)
    return np.where(cross, 0.0, dist), np.where(cross, u, t)
