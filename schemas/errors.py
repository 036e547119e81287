"""The one error every record reader raises: what is wrong with a record, and a stable reason slug."""

from __future__ import annotations


class InvalidRecord(ValueError):
    """One record is invalid: ``error`` says why (naming the field), ``reason`` is a slug for metrics.

    Readers raise nothing else for a record's content, so a caller that catches this refuses the
    record alone and goes on with the rest of its batch.
    """

    def __init__(self, error: str, reason: str = "invalid") -> None:
        super().__init__(error)
        self.error = error
        self.reason = reason
