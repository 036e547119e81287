"""The feeds' coordinate reader refuses every position outside WGS84, wherever it stands."""

from __future__ import annotations

import math

import pytest

from stream.feeds import coords
from stream.feeds.base import RecordError

GOOD = [[2.35, 48.85], [2.36, 48.86], [2.37, 48.87], [2.35, 48.85]]
BAD = {
    "NaN longitude": [math.nan, 48.8],
    "NaN latitude": [2.3, math.nan],
    "infinite longitude": [math.inf, 48.8],
    "infinite latitude": [2.3, -math.inf],
    "longitude 181": [181.0, 48.8],
    "latitude -91": [2.3, -91.0],
    "integer longitude 200": [200, 48],
}


@pytest.mark.parametrize("where", [0, 1, 3])
@pytest.mark.parametrize("case", sorted(BAD))
def test_a_position_outside_wgs84_is_refused_by_name(case: str, where: int) -> None:
    ring = [list(p) for p in GOOD]
    ring[where] = BAD[case]
    for geometry in (
        {"type": "LineString", "coordinates": ring},
        {"type": "Polygon", "coordinates": [GOOD, ring]},
        {"type": "MultiPolygon", "coordinates": [[GOOD], [ring]]},
    ):
        with pytest.raises(RecordError) as caught:
            coords.geometry(geometry)
        assert caught.value.reason in ("invalid_coordinates", "swapped_coordinates"), case
        shown = str(caught.value)
        assert "not finite" in shown or "WGS84" in shown or "swapped" in shown, (case, shown)


def test_positions_inside_wgs84_are_read_with_their_box() -> None:
    read = coords.geometry(
        {"type": "Polygon", "coordinates": [GOOD, [[-180, -90], [180, 90], [0.5, 0.5], [-180, -90]]]}
    )
    assert read.bounds == (-180, -90, 180, 90) and read.vertices == 8
