"""Command output piped into a file keeps its tables whole (rich would cut them to 80 columns)."""

from __future__ import annotations

import io

from rich.table import Table

from stream.commands.output import console


def test_a_piped_table_keeps_every_column() -> None:
    """A table wider than 80 columns printed into a pipe keeps its cells, not ellipses."""
    table = Table()
    names = [f"column number {n}" for n in range(8)]
    for name in names:
        table.add_column(name)
    table.add_row(*[f"value {n:,}" for n in range(8)])
    sink = io.StringIO()
    console(file=sink).print(table)
    text = sink.getvalue()
    assert all(name in text for name in names), text
    assert "…" not in text
