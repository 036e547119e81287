"""Polled feeds publish whole snapshots: diff them into new / updated / cancelled events."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from schemas.codec import dumps
from schemas.event import Event

ChangeKind = Literal["new", "updated", "cancelled"]


def content_hash(event: Event) -> str:
    """A hash of everything that matters in an event (``updated_at`` excluded)."""
    body = dumps(dataclasses.replace(event, updated_at=None))
    return hashlib.blake2b(body, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """What the differ remembers of an event between two polls."""

    hash: str
    event: Event


@dataclass(frozen=True, slots=True)
class Change:
    """One lifecycle step to publish: the event as it now stands."""

    kind: ChangeKind
    event: Event


@dataclass(slots=True)
class Diff:
    """The changes between two snapshots and the snapshot to keep for the next poll."""

    changes: list[Change] = field(default_factory=list)
    snapshot: dict[str, Entry] = field(default_factory=dict)
    unchanged: int = 0


def entry(event: Event) -> Entry:
    """The snapshot entry of an event."""
    return Entry(content_hash(event), event)


def diff(previous: Mapping[str, Entry], current: Iterable[Event], now: datetime | None = None) -> Diff:
    """Compare a new poll with the previous snapshot.

    New ids are ``new``; a changed event is ``updated``; an id gone from the feed (or now
    marked cancelled) is ``cancelled``, carrying the last known event with status cancelled and
    ``updated_at`` = ``now``. Unchanged events are counted, not repeated. When an id appears
    twice in one poll, the last one wins.
    """
    result = Diff()
    latest: dict[str, Event] = {}
    for event in current:
        latest[event.id] = event
    for ident, event in latest.items():
        known = previous.get(ident)
        new_entry = entry(event)
        if event.status == "cancelled":
            if known is not None and known.event.status != "cancelled":
                result.changes.append(Change("cancelled", event))
            elif known is None:
                result.unchanged += 1
            result.snapshot[ident] = new_entry
            continue
        result.snapshot[ident] = new_entry
        if known is None:
            result.changes.append(Change("new", event))
        elif known.hash != new_entry.hash:
            result.changes.append(Change("updated", event))
        else:
            result.unchanged += 1
    for ident, known in previous.items():
        if ident not in latest and known.event.status != "cancelled":
            gone = dataclasses.replace(known.event, status="cancelled", updated_at=now)
            result.changes.append(Change("cancelled", gone))
    return result
