"""What every parser test checks: each record is a valid event or a complete rejection."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from schemas import Event, Rejection
from schemas.codec import to_plain
from schemas.validate import errors
from stream.feeds.base import FeedFormatError, Item

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""Settings of the property tests: enough examples to find crashes, no per-example deadline."""

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
"""Arbitrary JSON values, to swap into valid records."""


def check(items: list[Item]) -> None:
    """Every item is an Event valid against the event schema, or a complete Rejection."""
    for item in items:
        assert isinstance(item, Event | Rejection)
        if isinstance(item, Event):
            assert errors("event", to_plain(item)) == []
        else:
            assert item.error and item.where and re.fullmatch(r"[a-z_]+", item.reason)


def check_or_refused(parser: Callable[[bytes], list[Item]], data: bytes) -> None:
    """Parsing either refuses the whole document (FeedFormatError) or passes ``check``."""
    try:
        items = parser(data)
    except FeedFormatError:
        return
    check(items)


def reasons(items: list[Item]) -> Counter[str]:
    """Rejection reasons of a parse, counted."""
    return Counter(i.reason for i in items if isinstance(i, Rejection))
