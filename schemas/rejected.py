"""Dead letters: a record that could not be parsed, with where it came from and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

MAX_RAW_CHARS = 4096


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record refused by a parser: ``where`` names the record, ``error`` says why."""

    error: str
    where: str
    reason: str = "invalid"
    raw: str | None = None

    def __post_init__(self) -> None:
        if self.raw is not None and len(self.raw) > MAX_RAW_CHARS:
            object.__setattr__(self, "raw", self.raw[:MAX_RAW_CHARS] + "…[truncated]")


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A message on ``corridor.events.rejected``: the rejection plus its source and arrival time."""

    source: str
    format: str
    error: str
    where: str
    reason: str
    raw: str | None
    received_at: datetime
