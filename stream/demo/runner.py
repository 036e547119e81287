"""Runs the demo on real processes: services, worker, gateway; trucks, ships, port calls and drivers.

Every truck's driver listens on its own websocket, as a driver's app would; the console counts
what reaches them. Trucks publish ``position`` route messages as they move; ships send AIS NMEA
sentences through the AIS decoder (the feed path), which the worker's port agent turns into
predicted bridge lifts; the terminal publishes port calls; the city lifts one closure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import orjson
import websockets
from rich.console import Console
from rich.live import Live

from schemas import Event, RouteMessage
from stream.demo.board import Board
from stream.demo.fleet import Truck
from stream.demo.scenario import DEFAULT_SEED, DEFAULT_TRUCKS, SPEEDUP, Scenario, build
from stream.feeds.ais import AisDecoder
from stream.feeds.portcall import parse_portcall
from stream.gateway.tokens import Keyring
from stream.ingest.producer import Publisher
from stream.local.services import EmbeddedServices
from stream.local.supervisor import Supervisor
from stream.runtime.redis_keys import scene_key
from stream.runtime.retry import redis_client
from stream.runtime.settings import Settings

POSITION_EVERY_S = 4.0
AIS_EVERY_S = 2.0
STATIC_EVERY_S = 30.0
TICK_S = 0.5
TOKEN_TTL_S = 12 * 3600


async def listen(url: str, token: str, board: Board) -> None:
    """One driver's socket: every alert goes to the board; reconnects from the last id after a drop."""
    last_id = "0"
    while True:
        try:
            async with websockets.connect(
                f"{url}?last_id={last_id}",
                additional_headers={"Authorization": f"Bearer {token}"},
                compression=None,
            ) as ws:
                async for raw in ws:
                    message = json.loads(raw)
                    if message.get("type") == "alert":
                        last_id = message["id"]
                        board.alert(message["alert"])
        except (OSError, websockets.ConnectionClosedError):
            await asyncio.sleep(0.5)


class Player:
    """Publishes the scenario over time: moves trucks and ships, plays the scripted steps."""

    def __init__(self, scenario: Scenario, publisher: Publisher, board: Board, play_s: float) -> None:
        self.scenario = scenario
        self.publisher = publisher
        self.board = board
        self.decoder = AisDecoder()
        self.ended: set[str] = set()
        self.steps = [
            (min(0.5 * play_s, 20.0), self.delay_port_call),
            (min(0.6 * play_s, 25.0), self.lift_closure),
        ]

    async def start(self) -> None:
        """Publish the city's events, the routes with their first positions, and the first port call."""
        s = self.scenario
        await self.publisher.events(s.events)
        self.board.published["events"] += len(s.events)
        self.board.note(
            "publish", f"{len(s.perimeters)} Paris 2024 perimeters, {len(s.closures)} DiaLog closures"
        )
        now = datetime.now(UTC)
        messages = [RouteMessage("registered", t.route.route_id, now, route=t.route) for t in s.trucks]
        messages += [self._position(t, 0.0, now) for t in s.trucks]
        await self.publisher.routes(messages)
        self.board.published["positions"] += len(s.trucks)
        self.board.note("routes", f"{len(s.trucks)} trucks registered with their position")
        await self.ais(0.0, static=True)
        await self.port_call(0)

    def _position(self, truck: Truck, elapsed: float, at: datetime) -> RouteMessage:
        lon, lat = truck.position(truck.started_s + elapsed * SPEEDUP)
        return RouteMessage("position", truck.route.route_id, at, position=(round(lon, 6), round(lat, 6)))

    async def move(self, elapsed: float, tick: int) -> None:
        """Positions of the trucks whose turn it is (each every POSITION_EVERY_S, staggered)."""
        turns = max(1, round(POSITION_EVERY_S / TICK_S))
        now = datetime.now(UTC)
        due = [t for i, t in enumerate(self.scenario.trucks) if i % turns == tick % turns]
        messages = []
        for truck in due:
            if truck.route.route_id in self.ended:
                continue
            if truck.started_s + elapsed * SPEEDUP >= truck.duration_s:
                self.ended.add(truck.route.route_id)
                messages.append(RouteMessage("ended", truck.route.route_id, now))
                continue
            messages.append(self._position(truck, elapsed, now))
        if messages:
            await self.publisher.routes(messages)
            self.board.published["positions"] += len(messages)

    async def ais(self, elapsed: float, static: bool = False) -> None:
        """One AIS report per ship (with its static data now and then), through the AIS decoder."""
        lines: list[str] = []
        for ship in self.scenario.ships:
            if static:
                lines += ship.static_lines()
            lines += ship.position_lines(elapsed * SPEEDUP)
        items = self.decoder.feed("\n".join(lines) + "\n", datetime.now(UTC))
        vessels = [item for item in items if isinstance(item, Event)]
        await self.publisher.events(vessels)
        self.board.published["AIS reports"] += len(vessels)

    async def port_call(self, which: int) -> None:
        """Publish the estimated port call (0) or its delayed update (1)."""
        record = self.scenario.port_calls[which]
        events = [e for e in parse_portcall(orjson.dumps(record)) if isinstance(e, Event)]
        await self.publisher.events(events)
        self.board.published["port calls"] += len(events)
        self.board.note(
            "port", f"{record['terminal']['terminalID']}: {record['vesselName']} berth {record['dateTime']}"
        )

    async def delay_port_call(self) -> None:
        """The terminal moves the berth arrival later."""
        await self.port_call(1)

    async def lift_closure(self) -> None:
        """The city lifts one closure: its alerts are cleared."""
        closure = self.scenario.cancelled_closure
        await self.publisher.events([replace(closure, status="cancelled")])
        self.board.note("cancel", f"{closure.street or closure.title or ''} {closure.id}")

    async def play(self, until: float, stop: asyncio.Event, live: Live) -> None:
        """Run until the deadline or ``stop``; returns when the scenario should end."""
        started = time.monotonic()
        tick = 0
        next_ais = AIS_EVERY_S
        next_static = STATIC_EVERY_S
        steps = list(self.steps)
        while not stop.is_set() and time.monotonic() < until:
            elapsed = time.monotonic() - started
            await self.move(elapsed, tick)
            if elapsed >= next_ais:
                await self.ais(elapsed, static=elapsed >= next_static)
                next_ais += AIS_EVERY_S
                if elapsed >= next_static:
                    next_static += STATIC_EVERY_S
            while steps and elapsed >= steps[0][0]:
                await steps.pop(0)[1]()
            self.board.status = "playing"
            live.refresh()
            tick += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, min(TICK_S, until - time.monotonic())))


async def play(
    console: Console,
    board: Board,
    scenario: Scenario,
    settings: Settings,
    port: int,
    keyring: Keyring,
    until: float,
) -> None:
    """Connect the drivers, write the map's scene, and play the scenario until the end or Ctrl-C."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client = redis_client(settings.resolved_redis_url())
    await client.set(scene_key(settings.redis_prefix), orjson.dumps(scenario.scene()))
    await client.aclose()
    listeners = [
        asyncio.create_task(
            listen(
                f"ws://127.0.0.1:{port}/drivers/{t.route.driver_id}/alerts",
                keyring.issue(t.route.driver_id, time.time(), TOKEN_TTL_S),
                board,
            )
        )
        for t in scenario.trucks
    ]
    try:
        with Live(board, console=console, auto_refresh=False, transient=False) as live:
            async with Publisher(settings) as publisher:
                player = Player(scenario, publisher, board, max(1.0, until - time.monotonic()))
                await player.start()
                await player.play(until, stop, live)
            board.status = "stopping" if stop.is_set() else "done"
            if not stop.is_set():  # let the last alerts in flight reach the drivers
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
            live.refresh()
        console.line()
    finally:
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_demo(
    duration: float | None, console: Console, seed: int | None = None, trucks: int | None = None
) -> Board:
    """The whole demo; returns the board (alerts delivered, counters)."""
    external = bool(os.environ.get("CORRIDOR_KAFKA_URL") and os.environ.get("CORRIDOR_REDIS_URL"))
    workdir = Path(tempfile.mkdtemp(prefix="corridor-demo-"))
    services = EmbeddedServices(workdir / "state")
    stamp = int(time.time())
    env = {
        **os.environ,
        "CORRIDOR_STATE_DIR": str(workdir / "state"),
        "CORRIDOR_TOPIC_PREFIX": f"demo{stamp}",
        "CORRIDOR_APP_ID": f"corridor-demo-{stamp}",
        "CORRIDOR_LOG_FORMAT": "json",
    }
    started = time.monotonic()
    until = started + duration if duration else float("inf")
    scenario = build(
        datetime.now(UTC),
        seed=DEFAULT_SEED if seed is None else seed,
        trucks=DEFAULT_TRUCKS if trucks is None else trucks,
    )
    board = Board(console, len(scenario.trucks), duration)
    console.rule("[bold]Corridor[/] — city regulations and ships reaching truck drivers, live")
    for line in scenario.notes:
        console.print(f"[dim]•[/] {line}", highlight=False)
    console.print(scenario.describe(), style="dim", highlight=False)
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
            token = keyring.issue_dispatcher("demo", time.time(), TOKEN_TTL_S)
            console.print(f"[green]✓[/] worker and gateway up (logs in {workdir / 'logs'})")
            console.print(f"[bold]dispatcher map:[/] http://127.0.0.1:{port}/#token={token}", soft_wrap=True)
            try:
                asyncio.run(play(console, board, scenario, settings, port, keyring, until))
            except KeyboardInterrupt:
                board.status = "stopping"
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # stopping: let the clean-up finish
            console.print("[yellow]stopping the worker, the gateway and the services…[/]")
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        console.print("[yellow]stopping…[/]")
    finally:
        if not external:
            services.down()
        shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return board
