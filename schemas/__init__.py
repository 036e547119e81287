"""Corridor's contracts: one record per topic message, and JSON Schemas for publishers."""

from schemas.alert import Alert, AlertState, alert_id_for
from schemas.event import EVENT_KINDS, Event, EventKind, VehicleConditions
from schemas.rejected import RejectedRecord, Rejection
from schemas.route import Route, RouteMessage, Vehicle

__all__ = [
    "EVENT_KINDS",
    "Alert",
    "AlertState",
    "Event",
    "EventKind",
    "RejectedRecord",
    "Rejection",
    "Route",
    "RouteMessage",
    "Vehicle",
    "VehicleConditions",
    "alert_id_for",
]
