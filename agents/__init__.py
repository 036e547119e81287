"""Faust agents: thin wiring from a topic through the pure core to a topic or a sink.

Each module's ``install(worker)`` registers its agents and timers on a built worker
(``stream.worker.app.build``); ``install_all`` installs every one, as ``corridor worker`` runs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stream.worker.app import Worker


def install_all(worker: Worker) -> None:
    """Every agent of the worker: routes, matching, notification, port predictions, dead letters."""
    from agents import dead_letters, match, notify, port, routes  # noqa: PLC0415 - they import Faust

    for module in (routes, match, notify, port, dead_letters):
        module.install(worker)
