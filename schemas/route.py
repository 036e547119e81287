"""Truck routes and the messages that register, move and end them on ``corridor.routes``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from schemas.codec import instant, measure
from schemas.errors import InvalidRecord
from schemas.geometry import position as lonlat
from schemas.geometry import route_line

RouteOp = Literal["registered", "updated", "position", "ended"]


MAX_ROUTE_VERTICES = 100_000
MAX_SEGMENT_KM = 200.0
DRIVER_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")  # what a driver's socket path accepts
ROUTE_OPS = ("registered", "updated", "position", "ended")


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
    def from_dict(cls, data: Any) -> Vehicle:
        """Build from the JSON form; InvalidRecord names a wrong field."""
        if not isinstance(data, dict):
            raise InvalidRecord(f"vehicle: must be an object, not {type(data).__name__}", "schema")
        critair = data.get("critair")
        if critair is not None and (not isinstance(critair, str | int) or isinstance(critair, bool)):
            raise InvalidRecord("vehicle/critair: must be a Crit'Air class such as '2'", "schema")
        hazmat = data.get("hazmat", False)
        if not isinstance(hazmat, bool) and hazmat is not None:
            raise InvalidRecord("vehicle/hazmat: must be true or false", "schema")
        return cls(
            weight_t=measure(data, "weight_t", "vehicle"),
            height_m=measure(data, "height_m", "vehicle"),
            width_m=measure(data, "width_m", "vehicle"),
            length_m=measure(data, "length_m", "vehicle"),
            critair=str(critair)[:8] if critair is not None else None,
            hazmat=bool(hazmat),
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
    def from_dict(cls, data: Any) -> Route:
        """Build from the wire form (flat dict with ``coordinates``); InvalidRecord names a wrong
        field, and the line is bounded (``MAX_ROUTE_VERTICES``, ``MAX_SEGMENT_KM``)."""
        if not isinstance(data, dict):
            raise InvalidRecord(f"route: must be an object, not {type(data).__name__}", "schema")
        route_id = _ident(data.get("route_id"), "route_id")
        driver_id = data.get("driver_id")
        if not isinstance(driver_id, str) or not DRIVER_ID.fullmatch(driver_id):
            raise InvalidRecord("driver_id: letters, digits and _.:@- only, 1 to 128 of them", "schema")
        coords = tuple(route_line(data.get("coordinates"), MAX_ROUTE_VERTICES, MAX_SEGMENT_KM))
        destination = data.get("destination")
        if destination is not None and (not isinstance(destination, str) or len(destination) > 64):
            raise InvalidRecord("destination: must be a terminal id of at most 64 characters", "schema")
        return cls(
            route_id=route_id,
            driver_id=driver_id,
            coordinates=coords,
            vehicle=Vehicle.from_dict(data.get("vehicle") or {}),
            depart_at=instant(data, "depart_at"),
            arrive_by=instant(data, "arrive_by"),
            destination=destination,
        )

    @classmethod
    def from_feature(cls, feature: dict[str, Any]) -> Route:
        """Build from a GeoJSON Feature with a LineString geometry and route properties."""
        if not isinstance(feature, dict):
            raise InvalidRecord("a route is a GeoJSON Feature object", "schema")
        geometry = feature.get("geometry") or {}
        if not isinstance(geometry, dict) or geometry.get("type") != "LineString":
            raise InvalidRecord("geometry: a route feature needs a LineString geometry", "invalid_geometry")
        props = feature.get("properties") or {}
        if not isinstance(props, dict):
            raise InvalidRecord("properties: must be an object", "schema")
        return cls.from_dict({**props, "coordinates": geometry.get("coordinates")})


@dataclass(frozen=True, slots=True)
class RouteMessage:
    """One message on ``corridor.routes``: a route registered/updated, a position, or an end."""

    op: RouteOp
    route_id: str
    at: datetime
    route: Route | None = None
    position: tuple[float, float] | None = None

    @classmethod
    def from_dict(cls, data: Any) -> RouteMessage:
        """Build from the wire form; the op decides which of route/position must be present.
        Raises InvalidRecord (naming the field) and nothing else for any content."""
        if not isinstance(data, dict):
            raise InvalidRecord(
                f"(record): expected a route message object, got {type(data).__name__}", "not_an_object"
            )
        op = data.get("op")
        if op not in ROUTE_OPS:
            raise InvalidRecord(f"op: {str(op)[:32]!r} is not one of {', '.join(ROUTE_OPS)}", "schema")
        route_id = _ident(data.get("route_id"), "route_id")
        route = Route.from_dict(data["route"]) if data.get("route") else None
        if op in ("registered", "updated"):
            if route is None:
                raise InvalidRecord(f"route: a {op!r} message needs a route", "schema")
            if route.route_id != route_id:
                raise InvalidRecord("route/route_id: differs from the message's route_id", "schema")
        position = data.get("position")
        point: tuple[float, float] | None = None
        if op == "position":
            if not position:
                raise InvalidRecord("position: a 'position' message needs a position [lon, lat]", "schema")
            point = lonlat(position)
            if point == (0.0, 0.0):
                raise InvalidRecord("position: [0, 0] is a placeholder rather than a place", "null_position")
        at = instant(data, "at")
        if at is None:
            raise InvalidRecord("at: is a required time with its UTC offset", "bad_time")
        return cls(op=op, route_id=route_id, at=at, route=route, position=point)


def _ident(value: Any, name: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 256:
        raise InvalidRecord(f"{name}: must be a string of 1 to 256 characters", "schema")
    return value
