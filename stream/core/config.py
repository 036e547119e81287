"""The matching engine's tunables."""

from __future__ import annotations

from dataclasses import dataclass

from stream.core.geo import DEFAULT_CRS


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Tunables of the matching engine."""

    corridor_m: float = 30.0
    crs: str = DEFAULT_CRS
    speed_kmh: float = 50.0  # when a route has no depart_at/arrive_by to derive its own
    update_threshold_m: float = 200.0  # distance-ahead change that makes an alert "updated"
    at_only: bool = False  # evaluate validity at ``at`` instead of the expected time (``--at``)
    cell_m: float = 40.0  # segment grid cell
    piece_m: float = 52.0  # longest segment piece filed under one midpoint
    # widest event (bounding box side) filed in the event grid: one per 150 m cell of its box, so
    # this bounds one event's memory; the entries refuse far less (CORRIDOR_EVENT_MAX_EXTENT_KM)
    max_event_extent_m: float = 150_000.0
