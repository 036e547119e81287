"""Snapshot differ for polled feeds: new, updated, cancelled, unchanged."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from schemas.event import Event
from stream.feeds.snapshot import diff, entry

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def event(ident: str, title: str = "Fermée") -> Event:
    """A small closure event."""
    geometry = {"type": "LineString", "coordinates": [[2.35, 48.85], [2.36, 48.86]]}
    return Event(id=ident, source="cifs", kind="closure", geometry=geometry, title=title)


def test_first_poll_is_all_new() -> None:
    """With no previous snapshot every event is new."""
    result = diff({}, [event("a"), event("b")])
    assert [(c.kind, c.event.id) for c in result.changes] == [("new", "a"), ("new", "b")]
    assert set(result.snapshot) == {"a", "b"} and result.unchanged == 0


def test_second_poll_updates_cancels_and_skips() -> None:
    """Same content is skipped, changed content updated, a missing id cancelled."""
    first = diff({}, [event("a"), event("b"), event("c")]).snapshot
    result = diff(first, [event("a"), event("b", "Rouverte partiellement"), event("d")], now=NOW)
    kinds = sorted((c.kind, c.event.id) for c in result.changes)
    assert kinds == [("cancelled", "c"), ("new", "d"), ("updated", "b")]
    cancelled = next(c.event for c in result.changes if c.kind == "cancelled")
    assert cancelled.status == "cancelled" and cancelled.updated_at == NOW
    assert cancelled.title == "Fermée" and result.unchanged == 1
    assert set(result.snapshot) == {"a", "b", "d"}


def test_updated_at_alone_is_not_a_change() -> None:
    """A feed that only bumps its timestamps does not produce updates."""
    previous = {"a": entry(event("a"))}
    result = diff(previous, [dataclasses.replace(event("a"), updated_at=NOW)])
    assert result.changes == [] and result.unchanged == 1


def test_feed_marked_cancellation_is_reported_once() -> None:
    """An event the feed itself marks cancelled is reported once, then remembered as cancelled."""
    previous = {"a": entry(event("a"))}
    gone = dataclasses.replace(event("a"), status="cancelled")
    first = diff(previous, [gone])
    assert [c.kind for c in first.changes] == ["cancelled"]
    assert diff(first.snapshot, [gone]).changes == []
    assert diff(first.snapshot, []).changes == []
