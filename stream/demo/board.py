"""The demo's console: one line per alert that reaches a driver, a live panel, a final summary."""

from __future__ import annotations

import time
from collections import Counter, deque
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

STATES = ("raised", "updated", "cleared")
COLOURS = {"raised": "bold red", "updated": "yellow", "cleared": "green"}


class Board:
    """Counts what happens and renders it; prints raised and cleared alerts (updates are counted)."""

    def __init__(self, console: Console, trucks: int, duration: float | None) -> None:
        self.console = console
        self.trucks = trucks
        self.duration = duration
        self.started = time.monotonic()
        self.by_kind: Counter[tuple[str, str]] = Counter()
        self.published: Counter[str] = Counter()
        self.affected: dict[str, set[str]] = {}
        self.delivered = 0
        self.status = "starting"
        self.recent: deque[Text] = deque(maxlen=14)

    def alert(self, alert: dict[str, Any]) -> None:
        """Count one alert delivered to a driver's socket; print it unless it is a routine update."""
        self.delivered += 1
        state, kind = alert["state"], alert["kind"]
        self.by_kind[(kind, state)] += 1
        events = self.affected.setdefault(alert["driver_id"], set())
        if state == "cleared":
            events.discard(alert["event_id"])
        else:
            events.add(alert["event_id"])
        if state == "updated" and kind != "port_call":
            return
        ahead = alert.get("distance_ahead_m")
        distance = f", {ahead / 1000:,.1f} km ahead" if ahead is not None and state != "cleared" else ""
        line = Text.assemble(
            (f"{datetime.now():%H:%M:%S} ", "dim"),
            (f"{alert['driver_id']} ", "cyan"),
            (f"{state.upper():8}", COLOURS[state]),
            f" {kind}: {alert.get('title') or ''}{distance} ",
            (alert["event_id"], "dim"),
        )
        self.show(line)

    def show(self, line: Text) -> None:
        """On a terminal, into the panel's rolling feed; elsewhere (logs, pipes), one printed line."""
        if self.console.is_terminal:
            self.recent.append(line)
        else:
            self.console.print(line, soft_wrap=True, highlight=False)

    def note(self, what: str, text: str) -> None:
        """A scenario step (a publication, a cancellation) as one line."""
        self.show(Text.assemble((f"{datetime.now():%H:%M:%S} ", "dim"), (f"{what:8}", "magenta"), " ", text))

    def drivers_affected(self) -> int:
        """Drivers holding at least one alert right now."""
        return sum(1 for events in self.affected.values() if events)

    def __rich__(self) -> RenderableType:
        """The live panel: progress, counters by kind and state, drivers affected."""
        elapsed = time.monotonic() - self.started
        head = Table.grid(padding=(0, 2))
        if self.duration:
            bar = ProgressBar(total=self.duration, completed=min(elapsed, self.duration), width=40)
            head.add_row(Text(f"{elapsed:4.0f} s / {self.duration:.0f} s"), bar, Text(self.status, "dim"))
        else:
            head.add_row(Text(f"{elapsed:4.0f} s (Ctrl-C stops)"), Text(self.status, "dim"))
        sent = " · ".join(f"{name} {count:,}" for name, count in sorted(self.published.items()))
        counters = Table("alerts", *STATES, box=None, padding=(0, 2))
        for kind in sorted({k for k, _ in self.by_kind}):
            counters.add_row(kind, *(f"{self.by_kind[(kind, s)]:,}" for s in STATES))
        counters.add_row(Text("total", "bold"), *(f"{self.total(s):,}" for s in STATES))
        summary = Text(
            f"delivered {self.delivered:,} · drivers affected now {self.drivers_affected()} / {self.trucks}"
        )
        feed = Text("\n").join(self.recent) if self.recent else Text("waiting for the first alert…", "dim")
        parts: list[RenderableType] = [head, Text(f"published: {sent}", "dim"), counters, summary]
        if self.console.is_terminal:
            parts.insert(0, Panel(feed, title="alerts reaching drivers", title_align="left", height=16))
        return Panel(Group(*parts), title="Corridor demo")

    def total(self, state: str) -> int:
        """Alerts delivered in one state."""
        return sum(n for (_, s), n in self.by_kind.items() if s == state)

    def summary(self) -> RenderableType:
        """The final table."""
        table = Table("kind", *STATES, title="alerts delivered to drivers", title_justify="left")
        for kind in sorted({k for k, _ in self.by_kind}):
            table.add_row(kind, *(f"{self.by_kind[(kind, s)]:,}" for s in STATES))
        table.add_row("total", *(f"{self.total(s):,}" for s in STATES))
        return table
