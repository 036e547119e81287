"""The compiled distance agrees with the vectorised one and with shapely, tie rules included."""

from __future__ import annotations

import math

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core.distance import segment_segment
from stream.core.kernels import nearest_primitive, segment_distance2
from stream.core.measures import one_primitive

coord = st.integers(-50_000, 50_000).map(lambda v: v / 100)  # centimetres, as projected data has
segment = st.tuples(coord, coord, coord, coord)


@settings(max_examples=300, deadline=None)
@given(ab=segment, cd=segment, point=st.booleans())
def test_segment_distance_matches_numpy_and_shapely(
    ab: tuple[float, ...], cd: tuple[float, ...], point: bool
) -> None:
    """Distance and closest-point parameter equal the numpy form's; the distance equals shapely's."""
    if point:
        cd = (cd[0], cd[1], cd[0], cd[1])
    d2, t = segment_distance2(*ab, *cd)
    ref_d, ref_t = segment_segment(*(np.array([v]) for v in (*ab, *cd)))
    assert math.isclose(math.sqrt(d2), float(ref_d[0]), rel_tol=1e-9, abs_tol=1e-6)
    line = shapely.LineString([ab[:2], ab[2:]]) if ab[:2] != ab[2:] else shapely.Point(ab[:2])
    other = shapely.LineString([cd[:2], cd[2:]]) if cd[:2] != cd[2:] else shapely.Point(cd[:2])
    assert math.isclose(math.sqrt(d2), shapely.distance(line, other), rel_tol=1e-9, abs_tol=1e-6)
    ax, ay, bx, by = ab
    here = shapely.Point(ax + t * (bx - ax), ay + t * (by - ay))  # the closest point found on AB
    assert 0.0 <= t <= 1.0
    assert math.isclose(shapely.distance(here, other), math.sqrt(d2), rel_tol=1e-9, abs_tol=1e-6)
    if d2 > 0.0:
        assert math.isclose(t, float(ref_t[0]), abs_tol=1e-9)


def test_crossing_segments_are_at_distance_zero() -> None:
    """An X crossing is at distance 0, the parameter at the crossing point."""
    d2, t = segment_distance2(0.0, 0.0, 10.0, 0.0, 2.5, -1.0, 2.5, 1.0)
    assert d2 == 0.0 and t == 0.25


def test_point_beyond_the_end() -> None:
    """A point past B is measured to B (parameter 1)."""
    d2, t = segment_distance2(0.0, 0.0, 10.0, 0.0, 13.0, 4.0, 13.0, 4.0)
    assert d2 == 25.0 and t == 1.0


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(segment, min_size=1, max_size=40),
    cd=segment,
    point=st.booleans(),
    limit=st.sampled_from([0.0, 5.0, 30.0, 1e9]),
)
def test_one_primitive_measure_is_nearest_primitive_bit_for_bit(
    rows: list[tuple[float, ...]], cd: tuple[float, ...], point: bool, limit: float
) -> None:
    """The event scan's branch-free measure of many segments against one primitive gives exactly
    ``nearest_primitive``'s values (far segments: infinite distance, parameter 0), crossings,
    parallel and zero-length segments included."""
    if point:
        cd = (cd[0], cd[1], cd[0], cd[1])
    rows = rows + [(cd[0], cd[1], cd[0], cd[1]), (cd[0], cd[1], cd[2], cd[3]), (1.0, 2.0, 1.0, 2.0)]
    cols = np.array(rows, dtype=float).T.copy()
    d = np.full(len(rows) + 2, -1.0)
    t = np.full(len(rows) + 2, -1.0)
    one_primitive(cols[0], cols[1], cols[2], cols[3], *cd, limit, 1, len(rows), d, t)
    prims = np.array([cd], dtype=float)
    for i in range(1, len(rows)):
        d2, t_ref, _ = nearest_primitive(*rows[i], prims, 0, 1, limit)
        assert (d[i], t[i]) == (math.sqrt(d2), t_ref)
    assert d[0] == t[0] == d[-2] == t[-1] == -1.0  # only rows 1 .. n - 1 are written
