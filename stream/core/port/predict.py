"""Closure predictions: a vessel that needs an opening approaches a bridge or lock -> a road event.

For each (structure, vessel) the predictor keeps the event it last published. A vessel is
*approaching* when it is inside an approach zone (within ``half_width_m`` of the channel axis),
its course over ground is within the zone's tolerance of the axis direction, and its speed is at
least the zone's minimum. Its ETA is the distance left along the axis over its speed; the road is
closed from ``ETA - lead_minutes`` to ``ETA + closure_minutes``. The event is re-published when
the window moves by ``update_threshold`` or more, and cancelled when the vessel has passed, has
stopped, has turned away or has left the zones (or its track expired).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from schemas import Event
from stream.core.geo import project_xy
from stream.core.port.infrastructure import Approach, Infrastructure, Structure
from stream.core.port.tracks import VesselTrack

SOURCE = "port"
KNOT_MS = 1852.0 / 3600.0
LOCAL = ZoneInfo("Europe/Paris")
PASSED = "passed"
STOPPED = "stopped"
TURNED_AWAY = "turned away"
LEFT = "left the approach zone"
EXPIRED = "no longer reported"


@dataclass(frozen=True, slots=True)
class PredictConfig:
    """Tunables of the predictor."""

    update_threshold: timedelta = timedelta(minutes=2)
    pass_radius_m: float = 400.0  # a vessel this close to the crossing, no longer approaching, passed


@dataclass(frozen=True, slots=True)
class Approaching:
    """A vessel on an approach: which one, how far along the water, and when it gets there."""

    approach: Approach
    remaining_m: float
    eta: datetime


def event_id(structure: Structure, mmsi: int) -> str:
    """Deterministic id of a structure's closure for one vessel: ``port:<kind>:<structure>:<mmsi>``."""
    return f"{SOURCE}:{structure.event_kind}:{structure.id}:{mmsi}"


def bearing_deg(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise from true north."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360.0


def angle_between(a: float, b: float) -> float:
    """Smallest difference between two bearings, 0..180 degrees."""
    return abs((a - b + 180.0) % 360.0 - 180.0)


def locate(approach: Approach, x: float, y: float) -> tuple[float, float, int]:
    """(distance to the axis, metres left along it to the crossing, segment index) of a metric point."""
    ax, ay = np.asarray(approach.x[:-1]), np.asarray(approach.y[:-1])
    bx, by = np.asarray(approach.x[1:]), np.asarray(approach.y[1:])
    dx, dy = bx - ax, by - ay
    seg = np.hypot(dx, dy)
    t = np.clip(((x - ax) * dx + (y - ay) * dy) / np.maximum(seg * seg, 1e-9), 0.0, 1.0)
    dist = np.hypot(ax + t * dx - x, ay + t * dy - y)
    i = int(np.argmin(dist))
    after = float(seg[i + 1 :].sum())
    return float(dist[i]), after + float(seg[i] * (1.0 - t[i])), i


def _in_bbox(approach: Approach, track: VesselTrack) -> bool:
    w, s, e, n = approach.bbox
    return w <= track.lon <= e and s <= track.lat <= n


def approaching(structure: Structure, track: VesselTrack, crs: str) -> Approaching | None:
    """How a vessel approaches a structure (nearest crossing first), or None if it does not."""
    if track.sog_kn is None or track.cog_deg is None or track.stopped:
        return None
    best: Approaching | None = None
    for approach in structure.approaches:
        if not _in_bbox(approach, track) or track.sog_kn < approach.min_speed_kn:
            continue
        px, py = project_xy(np.array([track.lon]), np.array([track.lat]), crs)
        dist, remaining, i = locate(approach, float(px[0]), float(py[0]))
        if dist > approach.half_width_m:
            continue
        (lon1, lat1), (lon2, lat2) = approach.coordinates[i], approach.coordinates[i + 1]
        if angle_between(track.cog_deg, bearing_deg(lon1, lat1, lon2, lat2)) > approach.course_tolerance_deg:
            continue
        eta = track.seen_at + timedelta(seconds=remaining / (track.sog_kn * KNOT_MS))
        if best is None or remaining < best.remaining_m:
            best = Approaching(approach, remaining, eta.replace(microsecond=0))
    return best


def why_not(structure: Structure, track: VesselTrack, last_remaining_m: float, config: PredictConfig) -> str:
    """Why a vessel that was approaching no longer is: passed, stopped, turned away or left."""
    if last_remaining_m <= config.pass_radius_m:
        return PASSED
    if track.stopped or (track.sog_kn is not None and track.sog_kn < _min_speed(structure)):
        return STOPPED
    return TURNED_AWAY if _inside_any(structure, track) else LEFT


def _min_speed(structure: Structure) -> float:
    return min((a.min_speed_kn for a in structure.approaches), default=0.0)


def _inside_any(structure: Structure, track: VesselTrack) -> bool:
    return any(_in_bbox(a, track) for a in structure.approaches)


def closure_event(structure: Structure, track: VesselTrack, found: Approaching) -> Event:
    """The road event of a predicted opening for this vessel."""
    valid_from = found.eta - timedelta(minutes=structure.lead_minutes)
    valid_until = found.eta + timedelta(minutes=structure.closure_minutes)
    what = "lifted" if structure.type == "bridge" else "closed for a lock cycle"
    local = found.eta.astimezone(LOCAL)
    return Event(
        id=event_id(structure, track.mmsi),
        source=SOURCE,
        kind=structure.event_kind,  # type: ignore[arg-type]
        geometry=structure.road,
        valid_from=valid_from,
        valid_until=valid_until,
        title=f"{structure.name} {what} for {track.label}: vessel expected at {local:%H:%M}",
        street=structure.name,
        severity="high",
        updated_at=track.seen_at,
        details={
            "structure_id": structure.id,
            "approach_id": found.approach.id,
            "mmsi": track.mmsi,
            "vessel_name": track.name,
            "vessel_length_m": track.length_m,
            "vessel_eta": found.eta.isoformat(),
            "distance_m": round(found.remaining_m),
            "sog_kn": track.sog_kn,
        },
    )


@dataclass(slots=True)
class Prediction:
    """The last event published for a (structure, vessel) and how far the vessel then was."""

    event: Event
    remaining_m: float


class ClosurePredictor:
    """Turns vessel tracks into closure events, their updates and their cancellations."""

    def __init__(self, infrastructure: Infrastructure, config: PredictConfig | None = None) -> None:
        self.infrastructure = infrastructure
        self.config = config or PredictConfig()
        self.active: dict[tuple[str, int], Prediction] = {}

    def observe(self, track: VesselTrack) -> list[Event]:
        """Events to publish after a new track position: new, moved or cancelled closures."""
        out: list[Event] = []
        for structure in self.infrastructure.structures.values():
            key = (structure.id, track.mmsi)
            current = self.active.get(key)
            found = None
            if structure.opening.needs_opening(track):
                found = approaching(structure, track, self.infrastructure.crs)
            if found is not None:
                event = closure_event(structure, track, found)
                if current is None or self._moved(current.event, event):
                    out.append(event)
                    self.active[key] = Prediction(event, found.remaining_m)
                else:
                    current.remaining_m = found.remaining_m
            elif current is not None:
                reason = why_not(structure, track, current.remaining_m, self.config)
                out.append(self._cancel(key, reason, track.seen_at))
        return out

    def vessel_gone(self, mmsi: int, at: datetime) -> list[Event]:
        """Cancel every closure predicted for a vessel whose track expired."""
        keys = [k for k in self.active if k[1] == mmsi]
        return [self._cancel(k, EXPIRED, at) for k in keys]

    def forget_vessel(self, mmsi: int) -> None:
        """Drop a vessel's predictions without cancelling them (another worker now owns it)."""
        for key in [k for k in self.active if k[1] == mmsi]:
            del self.active[key]

    def _moved(self, before: Event, after: Event) -> bool:
        assert before.valid_from and after.valid_from  # noqa: S101 - closure events always have both
        return abs(after.valid_from - before.valid_from) >= self.config.update_threshold

    def _cancel(self, key: tuple[str, int], reason: str, at: datetime) -> Event:
        prediction = self.active.pop(key)
        event = prediction.event
        name = event.details.get("vessel_name") or f"MMSI {key[1]}"
        return replace(
            event,
            status="cancelled",
            title=f"{self.infrastructure.structures[key[0]].name}: no opening for {name} ({reason})",
            updated_at=at,
            details={**event.details, "cancel_reason": reason},
        )
