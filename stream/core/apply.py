"""Apply decoded topic messages to the engine (the pure part of the route and event agents)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from schemas import Alert, Event, RouteMessage
from stream.core.engine import Engine


def apply_route_messages(engine: Engine, messages: Sequence[RouteMessage], at: datetime) -> list[Alert]:
    """Registered/updated routes are matched, positions move the vehicle, ended routes clear."""
    alerts: list[Alert] = []
    for msg in messages:
        if msg.op in ("registered", "updated") and msg.route is not None:
            alerts.extend(engine.upsert_route(msg.route, at))
        elif msg.op == "position" and msg.position is not None:
            alerts.extend(engine.route_position(msg.route_id, msg.position, msg.at))
        elif msg.op == "ended":
            alerts.extend(engine.end_route(msg.route_id, at))
    return alerts


def latest_events(events: Sequence[Event]) -> list[Event]:
    """Keep only the last version of each event id in a batch, in arrival order."""
    latest: dict[str, Event] = {}
    for event in events:
        latest.pop(event.id, None)
        latest[event.id] = event
    return list(latest.values())
