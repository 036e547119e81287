"""The matching engine's interface: routes and events in, alert transitions out.

The engine owns the active routes, the active events and the alerts currently raised, so it can
answer both directions of the join (a new event against the routes, a new route against the
events) and emit each alert transition exactly once: ``raised`` the first time a (route, event)
pair matches, ``updated`` when what the driver sees changes, ``cleared`` when it stops mattering.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import shapely
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from schemas import Alert, Event, Route, alert_id_for
from stream.core.geo import DEFAULT_CRS, line_metric, to_metric


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Tunables of the matching engine."""

    corridor_m: float = 30.0
    crs: str = DEFAULT_CRS


@dataclass(slots=True)
class _ActiveRoute:
    route: Route
    line: BaseGeometry


@dataclass(slots=True)
class _ActiveEvent:
    event: Event
    shape: BaseGeometry


class Engine:
    """Both sides of the join in memory, and the alerts they raised."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self._routes: dict[str, _ActiveRoute] = {}
        self._events: dict[str, _ActiveEvent] = {}
        self._alerts: dict[str, Alert] = {}

    @property
    def route_count(self) -> int:
        """Number of active routes."""
        return len(self._routes)

    @property
    def event_count(self) -> int:
        """Number of active events."""
        return len(self._events)

    @property
    def alert_count(self) -> int:
        """Number of alerts currently raised."""
        return len(self._alerts)

    def upsert_route(self, route: Route, at: datetime) -> list[Alert]:
        """Register or replace a route and match it against every active event."""
        active = _ActiveRoute(route, line_metric(route.coordinates, self.config.crs))
        self._routes[route.route_id] = active
        matched = {
            ev.event.id: ev for ev in self._events.values() if self._concerns(active, ev, at)
        }
        return self._reconcile_route(active, matched, at)

    def end_route(self, route_id: str, at: datetime) -> list[Alert]:
        """Forget a route; its raised alerts are cleared."""
        active = self._routes.pop(route_id, None)
        if active is None:
            return []
        return self._reconcile_route(active, {}, at, reason="route ended")

    def apply_events(self, events: Sequence[Event], at: datetime) -> list[Alert]:
        """Add, update or cancel events and match them against every active route."""
        out: list[Alert] = []
        for event in events:
            if event.status == "cancelled" or _expired(event, at):
                gone = self._events.pop(event.id, None)
                if gone is not None:
                    out.extend(self._clear_event(event.id, at, "event cancelled or expired"))
                continue
            active = _ActiveEvent(event, to_metric(event.geometry, self.config.crs))
            self._events[event.id] = active
            for route in self._routes.values():
                key = alert_id_for(route.route.route_id, event.id)
                if self._concerns(route, active, at):
                    out.extend(self._transition(route, active, at))
                elif key in self._alerts:
                    out.append(self._clear(key, at, "no longer on the route"))
        return out

    def expire(self, at: datetime) -> list[Alert]:
        """Drop events whose validity ended before ``at``; their alerts are cleared."""
        expired = [ev.event.id for ev in self._events.values() if _expired(ev.event, at)]
        out: list[Alert] = []
        for event_id in expired:
            del self._events[event_id]
            out.extend(self._clear_event(event_id, at, "event expired"))
        return out

    def routes(self) -> Iterable[Route]:
        """The active routes."""
        return (r.route for r in self._routes.values())

    def events(self) -> Iterable[Event]:
        """The active events."""
        return (e.event for e in self._events.values())

    def _concerns(self, route: _ActiveRoute, event: _ActiveEvent, at: datetime) -> bool:
        if event.event.valid_from is not None and event.event.valid_from > at and (
            route.route.arrive_by is None or event.event.valid_from > route.route.arrive_by
        ):
            return False
        return bool(shapely.dwithin(route.line, event.shape, self.config.corridor_m))

    def _reconcile_route(
        self,
        route: _ActiveRoute,
        matched: dict[str, _ActiveEvent],
        at: datetime,
        reason: str = "no longer on the route",
    ) -> list[Alert]:
        out: list[Alert] = []
        for event in matched.values():
            out.extend(self._transition(route, event, at))
        stale = [
            key
            for key, alert in self._alerts.items()
            if alert.route_id == route.route.route_id and alert.event_id not in matched
        ]
        out.extend(self._clear(key, at, reason) for key in stale)
        return out

    def _transition(self, route: _ActiveRoute, event: _ActiveEvent, at: datetime) -> list[Alert]:
        key = alert_id_for(route.route.route_id, event.event.id)
        ev = event.event
        ahead_point = nearest_points(route.line, event.shape)[0]
        distance = round(float(route.line.project(ahead_point)), 1)
        fresh = Alert(
            alert_id=key,
            route_id=route.route.route_id,
            driver_id=route.route.driver_id,
            event_id=ev.id,
            kind=ev.kind,
            state="raised",
            distance_ahead_m=distance,
            valid_from=ev.valid_from,
            valid_until=ev.valid_until,
            title=ev.title,
            street=ev.street,
            severity=ev.severity,
            created_at=at,
        )
        previous = self._alerts.get(key)
        if previous is None:
            self._alerts[key] = fresh
            return [fresh]
        if _same_view(previous, fresh):
            return []
        updated = replace(fresh, state="updated")
        self._alerts[key] = updated
        return [updated]

    def _clear_event(self, event_id: str, at: datetime, reason: str) -> list[Alert]:
        keys = [k for k, a in self._alerts.items() if a.event_id == event_id]
        return [self._clear(k, at, reason) for k in keys]

    def _clear(self, key: str, at: datetime, reason: str) -> Alert:
        alert = self._alerts.pop(key)
        return replace(alert, state="cleared", created_at=at, reason=reason)


def _expired(event: Event, at: datetime) -> bool:
    return event.valid_until is not None and event.valid_until <= at


def _same_view(a: Alert, b: Alert) -> bool:
    """What the driver sees is unchanged (distance moves under 200 m are not news)."""
    close = (
        a.distance_ahead_m is not None
        and b.distance_ahead_m is not None
        and abs(a.distance_ahead_m - b.distance_ahead_m) < 200.0
    )
    return close and (a.valid_from, a.valid_until, a.title, a.street, a.severity) == (
        b.valid_from,
        b.valid_until,
        b.title,
        b.street,
        b.severity,
    )
