"""Truck routes and the messages that register, move and end them on ``corridor.routes``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from schemas.codec import opt_datetime, opt_float

RouteOp = Literal["registered", "updated", "position", "ended"]


@dataclass(frozen=True, slots=True)
class Vehicle:
    """The truck on a route: what vehicle conditions of events are checked against."""

    weight_t: float | None = None
    height_m: float | None = None
    width_m: float | None = None
    length_m: float | None = None
    critair: str | None = None
    hazmat: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vehicle:
        """Build from the JSON form."""
        critair = data.get("critair")
        return cls(
            weight_t=opt_float(data.get("weight_t")),
            height_m=opt_float(data.get("height_m")),
            width_m=opt_float(data.get("width_m")),
            length_m=opt_float(data.get("length_m")),
            critair=str(critair) if critair is not None else None,
            hazmat=bool(data.get("hazmat", False)),
        )


@dataclass(frozen=True, slots=True)
class Route:
    """A truck's planned route: a WGS84 line (lon, lat), its driver, vehicle and timing."""

    route_id: str
    driver_id: str
    coordinates: tuple[tuple[float, float], ...]
    vehicle: Vehicle
    depart_at: datetime | None = None
    arrive_by: datetime | None = None
    destination: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Route:
        """Build from the wire form (flat dict with ``coordinates``)."""
        coords = tuple((float(x), float(y)) for x, y, *_ in data["coordinates"])
        if len(coords) < 2:
            raise ValueError(f"route {data.get('route_id')!r} needs at least two points")
        return cls(
            route_id=str(data["route_id"]),
            driver_id=str(data["driver_id"]),
            coordinates=coords,
            vehicle=Vehicle.from_dict(data.get("vehicle") or {}),
            depart_at=opt_datetime(data.get("depart_at")),
            arrive_by=opt_datetime(data.get("arrive_by")),
            destination=data.get("destination"),
        )

    @classmethod
    def from_feature(cls, feature: dict[str, Any]) -> Route:
        """Build from a GeoJSON Feature with a LineString geometry and route properties."""
        geometry = feature.get("geometry") or {}
        if geometry.get("type") != "LineString":
            raise ValueError("a route feature needs a LineString geometry")
        props = dict(feature.get("properties") or {})
        props["coordinates"] = geometry["coordinates"]
        return cls.from_dict(props)


@dataclass(frozen=True, slots=True)
class RouteMessage:
    """One message on ``corridor.routes``: a route registered/updated, a position, or an end."""

    op: RouteOp
    route_id: str
    at: datetime
    route: Route | None = None
    position: tuple[float, float] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RouteMessage:
        """Build from the wire form; the op decides which of route/position must be present."""
        op = data["op"]
        if op not in ("registered", "updated", "position", "ended"):
            raise ValueError(f"unknown route op {op!r}")
        route = Route.from_dict(data["route"]) if data.get("route") else None
        if op in ("registered", "updated") and route is None:
            raise ValueError(f"route message {op!r} needs a route")
        position = data.get("position")
        if op == "position" and not position:
            raise ValueError("route message 'position' needs a position")
        at = opt_datetime(data["at"])
        assert at is not None  # noqa: S101 - opt_datetime only returns None for None
        return cls(
            op=op,
            route_id=str(data["route_id"]),
            at=at,
            route=route,
            position=(float(position[0]), float(position[1])) if position else None,
        )
