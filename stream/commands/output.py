"""Console output of the commands: tables that stay whole when the output is piped."""

from __future__ import annotations

from typing import Any

from rich.console import Console

PIPED_WIDTH = 200
"""Columns a table may take when the output is not a terminal (rich would cut it to 80)."""


def console(**options: Any) -> Console:
    """A rich console: the terminal's width, or ``PIPED_WIDTH`` columns into a pipe or a file."""
    shown = Console(**options)
    if shown.is_terminal or "width" in options:
        return shown
    return Console(width=PIPED_WIDTH, **options)
