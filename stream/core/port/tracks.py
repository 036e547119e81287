"""Vessel tracks from ``vessel`` events: last position, motion and static data, stale ones expire."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from schemas import Event

STATIC_FIELDS = ("name", "imo", "ship_type", "length_m", "width_m", "draught_m", "destination", "eta")
DEFAULT_MAX_AGE = timedelta(minutes=15)
STOPPED_STATUSES = frozenset({"at_anchor", "moored", "aground"})


@dataclass(frozen=True, slots=True)
class VesselTrack:
    """What is known of one vessel: its last position report and its static and voyage data."""

    mmsi: int
    lon: float
    lat: float
    seen_at: datetime
    sog_kn: float | None = None
    cog_deg: float | None = None
    heading_deg: float | None = None
    nav_status: str | None = None
    name: str | None = None
    imo: int | None = None
    ship_type: int | None = None
    length_m: float | None = None
    width_m: float | None = None
    draught_m: float | None = None
    air_draught_m: float | None = None
    destination: str | None = None
    eta: str | None = None

    @property
    def label(self) -> str:
        """The vessel's name, else its MMSI."""
        return self.name or f"MMSI {self.mmsi}"

    @property
    def stopped(self) -> bool:
        """Moored, at anchor or aground by its own report."""
        return self.nav_status in STOPPED_STATUSES


def mmsi_of(event: Event) -> int | None:
    """The MMSI of a vessel event: ``details.mmsi``, else the number after the id's last colon."""
    raw: Any = event.details.get("mmsi")
    if raw is None:
        raw = event.id.rsplit(":", 1)[-1]
    try:
        mmsi = int(raw)
    except (TypeError, ValueError):
        return None
    return mmsi if 0 < mmsi < 1_000_000_000 else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def track_from(event: Event, seen_at: datetime, previous: VesselTrack | None) -> VesselTrack | None:
    """The track after a vessel event (static data carried over from ``previous``); None if unusable."""
    mmsi = mmsi_of(event)
    geometry = event.geometry
    if mmsi is None or geometry.get("type") != "Point":
        return None
    lon, lat = (float(v) for v in geometry["coordinates"][:2])
    d = event.details
    static: dict[str, Any] = {}
    for name in (*STATIC_FIELDS, "air_draught_m"):
        value = d.get(name)
        if value is None and previous is not None:
            value = getattr(previous, name)
        static[name] = value
    for name in ("length_m", "width_m", "draught_m", "air_draught_m"):
        static[name] = _number(static[name])
    for name in ("imo", "ship_type"):
        static[name] = int(static[name]) if _number(static[name]) is not None else None
    return VesselTrack(
        mmsi=mmsi,
        lon=lon,
        lat=lat,
        seen_at=seen_at,
        sog_kn=_number(d.get("sog")),
        cog_deg=_number(d.get("cog")),
        heading_deg=_number(d.get("heading")),
        nav_status=d.get("nav_status") if isinstance(d.get("nav_status"), str) else None,
        **static,
    )


class TrackTable:
    """The latest track of each vessel by MMSI; tracks not heard from within ``max_age`` expire."""

    def __init__(self, max_age: timedelta = DEFAULT_MAX_AGE, max_tracks: int = 100_000) -> None:
        self.max_age = max_age
        self.max_tracks = max_tracks
        self._tracks: OrderedDict[int, VesselTrack] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tracks)

    def get(self, mmsi: int) -> VesselTrack | None:
        """The track of a vessel, or None."""
        return self._tracks.get(mmsi)

    def update(self, event: Event, received_at: datetime) -> VesselTrack | None:
        """Apply a vessel event (its ``updated_at``, else ``received_at``); None when ignored.

        A report older than the track it would replace is ignored (out of order), except for the
        static data it may bring.
        """
        if event.kind != "vessel" or event.status == "cancelled":
            return None
        seen_at = event.updated_at or received_at
        mmsi = mmsi_of(event)
        previous = self._tracks.get(mmsi) if mmsi is not None else None
        track = track_from(event, seen_at, previous)
        if track is None:
            return None
        if previous is not None and seen_at < previous.seen_at:
            self._tracks[track.mmsi] = replace(
                previous, **{n: getattr(track, n) for n in (*STATIC_FIELDS, "air_draught_m")}
            )
            return None
        self._tracks.pop(track.mmsi, None)
        self._tracks[track.mmsi] = track
        while len(self._tracks) > self.max_tracks:
            self._tracks.popitem(last=False)
        return track

    def forget(self, mmsi: int) -> VesselTrack | None:
        """Drop a vessel's track without expiring it (e.g. its partition moved to another worker)."""
        return self._tracks.pop(mmsi, None)

    def mmsis(self) -> list[int]:
        """The MMSIs tracked."""
        return list(self._tracks)

    def expire(self, now: datetime) -> list[VesselTrack]:
        """Remove and return the tracks last seen more than ``max_age`` before ``now``."""
        cutoff = now - self.max_age
        stale = [t for t in self._tracks.values() if t.seen_at < cutoff]
        for track in stale:
            del self._tracks[track.mmsi]
        return stale
