"""Waits on observable facts of a running deployment: what a worker's index holds, what it took.

Tests synchronise on these instead of sleeping: a wait ends as soon as the fact holds, and fails
naming the fact when it does not within its timeout.
"""

from __future__ import annotations

from stream.local.supervisor import Proc
from tests.support.drivers import metric, until


def _port(worker: Proc) -> int:
    if worker.metrics_port is None:
        raise AssertionError(f"{worker.name} serves no metrics")
    return worker.metrics_port


async def index_holds(worker: Proc, routes: int = 0, events: int = 0, timeout: float = 30) -> None:
    """Wait until the worker's index holds at least ``routes`` routes and ``events`` events (its
    gauges, set after each batch is applied)."""
    port = _port(worker)

    def holds() -> bool:
        worker.check_alive()
        return (
            metric(port, "corridor_active_routes") >= routes
            and metric(port, "corridor_active_events") >= events
        )

    await until(holds, timeout, f"{worker.name}'s index to hold {routes} routes and {events} events")


async def taken(worker: Proc, topic: str, messages: int, timeout: float = 30) -> None:
    """Wait until the worker's agents have taken at least ``messages`` messages from ``topic``
    (the full topic name), whatever became of them."""
    port = _port(worker)

    def done() -> bool:
        worker.check_alive()
        return metric(port, "corridor_messages_processed_total", f'topic="{topic}"') >= messages

    await until(done, timeout, f"{worker.name} to take {messages} messages from {topic}")


async def routes_held(workers: list[Proc], routes: int, timeout: float = 30) -> None:
    """Wait until the workers' indexes hold ``routes`` routes between them (each its partitions')."""
    ports = [_port(worker) for worker in workers]

    def held() -> bool:
        for worker in workers:
            worker.check_alive()
        return sum(metric(port, "corridor_active_routes") for port in ports) >= routes

    await until(held, timeout, f"{routes} routes in the indexes of {len(workers)} workers")
