"""Port-call delays: each new time of a port-call timestamp compared with its previous estimate.

A port call's timestamps share an event id per service and event type (e.g. the berth arrival),
whatever their classifier (estimated, planned, actual): a later time than the one published before
is a delay, an earlier one an advance. The event then carries ``delay_minutes`` and a title that
says it, so a driver bound to the terminal learns that the vessel is late, not just a new time.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from schemas import Event
from schemas.codec import opt_datetime

LOCAL = ZoneInfo("Europe/Paris")


def event_time(event: Event) -> datetime | None:
    """The time a port-call event announces (``details.event_time``, else ``valid_from``)."""
    try:
        return opt_datetime(event.details.get("event_time")) or event.valid_from
    except (TypeError, ValueError):
        return event.valid_from


def with_delay(event: Event, previous: datetime | None, terminal_name: str | None = None) -> Event:
    """The port-call event annotated with its delay versus the previous time (None: first one)."""
    now = event_time(event)
    details = dict(event.details)
    if terminal_name and not details.get("terminal_name"):
        details["terminal_name"] = terminal_name
    if now is None or previous is None:
        return replace(event, details=details)
    minutes = round((now - previous).total_seconds() / 60.0)
    details["previous_time"] = previous.isoformat()
    details["delay_minutes"] = minutes
    title = event.title or event.id
    if minutes:
        word = "delayed" if minutes > 0 else "advanced"
        was, new = previous.astimezone(LOCAL), now.astimezone(LOCAL)
        title = f"{title} — {word} by {abs(minutes)} min (was {was:%d/%m %H:%M}, now {new:%d/%m %H:%M})"
    return replace(event, details=details, title=title[:512])
