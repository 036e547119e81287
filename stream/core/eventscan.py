"""The event side of the join, compiled: a batch of events against the route segments of the grid
cells under their query boxes.

Three passes, each over a flat list, each fetching ahead the memory its next iterations read
(``prefetch``): the grid cells are at random places of a large arena, the routes and vertices at
random places of their arrays, and waiting for each in turn cost more than all the arithmetic.

1. Candidates (``candidates``): the route pieces of each box's cells, sure or to be measured.
2. First segments (``measures.firsts``): per (event, route), the first candidate segment ahead of
   the vehicle.
3. Measures (``measures.measures``): the kept segments, measured exactly against all their
   event's primitives, with the distance ahead of the vehicle.

The output columns are sized once, for the most rows a pass can give (each cell entry gives at
most one candidate, each candidate at most one row): an array reassigned inside a compiled loop,
to grow it, costs reference counting on every iteration (~30 ns a cell, ~1.5 ms a batch).

Compiled code is cached on disk (``cache=True``, where ``stream.core.kernel_cache`` says).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from stream.core.candidates import candidates
from stream.core.measures import firsts, measures

Array = np.ndarray[Any, Any]


@numba.njit(cache=True, nogil=True)
def scan_cells(
    pair_box: Array,
    pair_start: Array,
    pair_count: Array,
    pair_cx: Array,
    pair_cy: Array,
    box_ev: Array,
    box_lo: Array,
    box_hi: Array,
    box_rel: Array,
    box_inside: Array,
    box_bbox: Array,
    box_elo: Array,
    box_ehi: Array,
    prims: Array,
    thr: Array,
    origin: Array,
    cell_m: float,
    ap: Array,
    aq: Array,
    block_route: Array,
    vx: Array,
    vy: Array,
    vs: Array,
    cur_p: Array,
    has_pos: Array,
    px: Array,
    py: Array,
    base_s: Array,
    reach: float,
) -> tuple[Array, Array, Array, Array, Array, Array, Array]:
    """Per (event, route), the first segment ahead of the vehicle within the event's corridor.

    ``pair_box`` lists the grid cells of each query box, grouped by event, with each cell's slice
    of the arena (``pair_start``, ``pair_count``) and its column and row (``pair_cx``, ``pair_cy``)
    (``box_ev``: the event of each box, as its slot); a box pairs its candidates with primitives
    ``box_lo .. box_hi`` of ``prims`` (its event's are ``box_elo .. box_ehi``). ``box_rel`` holds
    the boxes relative to the grid ``origin``; a box with ``box_inside`` also matches segments that
    start inside its event's rings (bounding box ``box_bbox``), at distance 0. Returns the columns
    event slot, route slot, segment, distance, parameter on the segment, primitive, and the
    distance ahead of the vehicle (``vs``: distance along the route at each vertex, ``base_s``:
    the vehicle's).
    """
    c_p, c_k, c_x = candidates(
        pair_box,
        pair_start,
        pair_count,
        pair_cx,
        pair_cy,
        box_ev,
        box_lo,
        box_hi,
        box_rel,
        box_inside,
        box_bbox,
        prims,
        thr,
        origin,
        cell_m,
        ap,
        aq,
        reach,
    )
    o_r, o_p, o_b = firsts(
        c_p,
        c_k,
        c_x,
        pair_box,
        box_ev,
        box_lo,
        box_hi,
        box_inside,
        box_bbox,
        prims,
        thr,
        block_route,
        vx,
        vy,
        cur_p,
        has_pos,
        px,
        py,
    )
    return measures(
        o_r,
        o_p,
        o_b,
        box_ev,
        box_inside,
        box_bbox,
        box_elo,
        box_ehi,
        prims,
        thr,
        vx,
        vy,
        vs,
        cur_p,
        has_pos,
        px,
        py,
        base_s,
    )
