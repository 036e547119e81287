"""``corridor match``: match events against routes offline and print the alerts as JSON lines."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from schemas import Event, Route
from schemas.codec import dumps, loads, opt_datetime
from schemas.errors import InvalidRecord


def _reject(where: str, error: str) -> None:
    click.echo(dumps({"error": error, "where": where}).decode(), err=True)


def _routes(path: Path) -> tuple[list[Route], bool]:
    """Routes of a GeoJSON FeatureCollection; bad features are reported and skipped."""
    try:
        data = loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"{path}: cannot read routes: {exc}") from exc
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise click.ClickException(f"{path}: expected a GeoJSON FeatureCollection")
    routes: list[Route] = []
    bad = False
    for i, feature in enumerate(data.get("features") or []):
        try:
            routes.append(Route.from_feature(feature))
        except InvalidRecord as exc:
            _reject(f"{path}:feature {i}", exc.error)
            bad = True
    return routes, bad


def _events(path: Path) -> tuple[list[Event], dict[str, int], bool]:
    """Events of a JSON lines file; bad lines are reported (with their number) and skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: cannot read events: {exc}") from exc
    events: list[Event] = []
    line_of: dict[str, int] = {}
    bad = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = Event.from_json(line.encode())
        except InvalidRecord as exc:
            _reject(f"{path}:{number}", exc.error)
            bad = True
            continue
        events.append(event)
        line_of[event.id] = number
    return events, line_of, bad


@click.command("match")
@click.option("--routes", "routes_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--events", "events_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--at", "at_text", default=None, help="Evaluate validity at this ISO 8601 instant.")
@click.option("--corridor-m", type=float, default=30.0, show_default=True, help="Corridor half-width.")
def match(routes_path: Path, events_path: Path, at_text: str | None, corridor_m: float) -> None:
    """Match events (JSON lines) against routes (GeoJSON); alerts as JSON lines on stdout.

    Without --at, each event is checked at the time the vehicle is expected there, from the
    route's departure time and a speed model.
    """
    from stream.core.config import EngineConfig
    from stream.core.engine import Engine

    try:
        at = opt_datetime(at_text)
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from exc
    routes, bad_routes = _routes(routes_path)
    events, line_of, bad_events = _events(events_path)
    departs = [r.depart_at for r in routes if r.depart_at is not None]
    now = at or (min(departs) if departs else datetime.now(UTC))
    engine = Engine(EngineConfig(corridor_m=corridor_m, at_only=at is not None))
    for route in routes:
        engine.upsert_route(route, now)
    alerts = engine.apply_events(events, now)
    for event_id, why in engine.rejected:
        _reject(f"{events_path}:{line_of.get(event_id, '?')}", why)
    route_order = {r.route_id: i for i, r in enumerate(routes)}
    alerts.sort(key=lambda a: (line_of.get(a.event_id, 0), route_order.get(a.route_id, 0)))
    out = sys.stdout.buffer
    for alert in alerts:
        out.write(dumps(alert) + b"\n")
    out.flush()
    if bad_routes or bad_events or engine.rejected:
        sys.exit(2)
