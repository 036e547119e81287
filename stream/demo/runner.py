"""Runs the demo end to end on real processes: services, worker, gateway, trucks and drivers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import websockets
from rich.console import Console

from schemas import Event
from stream.core.tokens import Keyring
from stream.demo.scenario import Truck, closures, trucks
from stream.runtime.producer import Publisher
from stream.runtime.services import EmbeddedServices
from stream.runtime.settings import Settings
from stream.runtime.supervisor import Supervisor

PUBLISH_EVERY_S = 1.0


class DriverView:
    """One driver's websocket: prints each alert as it arrives and counts them."""

    def __init__(self, console: Console, truck: Truck, url: str, token: str) -> None:
        self.console = console
        self.truck = truck
        self.url = url
        self.token = token
        self.delivered = 0

    async def listen(self) -> None:
        """Receive until cancelled, reconnecting from the last id after a drop."""
        last_id = "0"
        while True:
            try:
                async with websockets.connect(
                    f"{self.url}?last_id={last_id}",
                    additional_headers={"Authorization": f"Bearer {self.token}"},
                ) as ws:
                    async for raw in ws:
                        message = json.loads(raw)
                        if message.get("type") == "alert":
                            last_id = message["id"]
                            self.show(message["alert"])
            except (OSError, websockets.ConnectionClosedError):
                await asyncio.sleep(0.5)

    def show(self, alert: dict[str, Any]) -> None:
        """One line per alert, coloured by state."""
        self.delivered += 1
        colour = {"raised": "bold red", "updated": "yellow", "cleared": "green"}[alert["state"]]
        where = alert.get("street") or alert["event_id"]
        ahead = alert.get("distance_ahead_m")
        distance = f", {ahead:,.0f} m ahead" if ahead is not None else ""
        self.console.print(
            f"[dim]{datetime.now().strftime('%H:%M:%S')}[/] [cyan]{alert['driver_id']}[/] "
            f"[{colour}]{alert['state'].upper():8}[/] {alert['kind']}: {alert.get('title') or ''} "
            f"— {where}{distance}"
        )


async def play(console: Console, settings: Settings, port: int, keyring: Keyring, until: float) -> int:
    """Register trucks, connect drivers, publish closures, cancel one; returns alerts delivered."""
    fleet = trucks()
    views = [
        DriverView(
            console,
            truck,
            f"ws://127.0.0.1:{port}/drivers/{truck.route.driver_id}/alerts",
            keyring.issue(truck.route.driver_id, time.time(), 3600),
        )
        for truck in fleet
    ]
    listeners = [asyncio.create_task(v.listen()) for v in views]
    async with Publisher(settings) as publisher:
        await publisher.register_routes([t.route for t in fleet])
        for truck in fleet:
            console.print(
                f"[dim]route[/] {truck.route.route_id} [cyan]{truck.route.driver_id}[/] {truck.label}"
            )
        events = closures(datetime.now(UTC))
        for event in events:
            if time.monotonic() > until:
                break
            await asyncio.sleep(PUBLISH_EVERY_S)
            console.print(f"[magenta]publish[/] {event.kind} {event.street or ''} [dim]{event.id}[/]")
            await publisher.events([event])
        if events and time.monotonic() < until:
            await asyncio.sleep(PUBLISH_EVERY_S * 2)
            cancelled: Event = replace(events[0], status="cancelled")
            console.print(f"[magenta]cancel[/] {cancelled.street or ''} [dim]{cancelled.id}[/]")
            await publisher.events([cancelled])
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(max(0.0, until - time.monotonic()))
    for task in listeners:
        task.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    return sum(v.delivered for v in views)


def run_demo(duration: float | None, console: Console) -> int:
    """The whole demo; returns the number of alerts delivered over websockets."""
    external = bool(os.environ.get("CORRIDOR_KAFKA_URL") and os.environ.get("CORRIDOR_REDIS_URL"))
    workdir = Path(tempfile.mkdtemp(prefix="corridor-demo-"))
    services = EmbeddedServices(workdir / "state")
    env = {
        **os.environ,
        "CORRIDOR_STATE_DIR": str(workdir / "state"),
        "CORRIDOR_TOPIC_PREFIX": f"demo{int(time.time())}",
        "CORRIDOR_APP_ID": f"corridor-demo-{int(time.time())}",
        "CORRIDOR_LOG_FORMAT": "json",
    }
    delivered = 0
    started = time.monotonic()
    try:
        with console.status("starting the broker and Redis…"):
            if not external:
                info = services.up()
                console.print(f"[green]✓[/] broker {info['kafka_url']}  redis {info['redis_url']}")
        settings = Settings.from_env(env)
        keyring = Keyring.parse(env.get("CORRIDOR_SIGNING_KEY") or f"demo:{os.urandom(16).hex()}")
        env["CORRIDOR_SIGNING_KEY"] = ",".join(f"{k}:{v.decode()}" for k, v in keyring.keys.items())
        with Supervisor(env, workdir / "logs") as supervisor:
            with console.status("starting the worker and the gateway…"):
                supervisor.start_worker()
                _, port = supervisor.start_gateway()
            console.print(
                f"[green]✓[/] worker and gateway up (logs in {workdir / 'logs'}), drivers on ws://127.0.0.1:{port}"
            )
            until = started + duration if duration else float("inf")
            try:
                delivered = asyncio.run(play(console, settings, port, keyring, until))
            except KeyboardInterrupt:
                console.print("[yellow]stopping…[/]")
    finally:
        if not external:
            services.down()
        shutil.rmtree(workdir, ignore_errors=True)
    return delivered
