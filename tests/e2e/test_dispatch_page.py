"""The dispatcher map in headless Chromium: it loads, draws routes and events, and shows a live alert."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
import websockets

from schemas import Event, RouteMessage
from stream.demo.scenario import build
from stream.feeds.ais import AisDecoder
from stream.gateway.tokens import Keyring
from stream.ingest.producer import Publisher
from stream.runtime.redis_keys import dispatch_stream_key, scene_key
from stream.runtime.retry import redis_client
from tests.support.processes import Deployment

pytestmark = pytest.mark.e2e

DOCS = Path(__file__).resolve().parents[2] / "docs"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1440,900",
)


def _chromium() -> str:
    found = shutil.which("chromium")
    assert found, "chromium is not installed: run `make tools` (apt-get install chromium)"
    return found


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command and return its result (events in between are skipped)."""
        self.next_id += 1
        ident = self.next_id
        await self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
            if message.get("id") == ident:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result

    async def js(self, expression: str) -> Any:
        """Evaluate an expression in the page and return its JSON value."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str, timeout: float = 45.0) -> Any:
        """Poll an expression until it is truthy."""
        deadline = time.monotonic() + timeout
        value = None
        guarded = f"(() => {{ try {{ return ({expression}); }} catch (e) {{ return null; }} }})()"
        while time.monotonic() < deadline:
            value = await self.js(guarded)
            if value:
                return value
            await asyncio.sleep(0.25)
        state = await self.js("JSON.stringify(document.body.dataset)")
        raise AssertionError(f"page never showed {what}; last value {value!r}; body {state}")


def _start_chromium(profile: Path) -> tuple[subprocess.Popen[bytes], int]:
    chromium = subprocess.Popen(
        [
            _chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert chromium.poll() is None, f"chromium exited with {chromium.returncode}"
        if marker.exists() and marker.read_text().strip():
            return chromium, int(marker.read_text().split()[0])
        time.sleep(0.1)
    chromium.kill()
    raise AssertionError("chromium did not open its DevTools port")


def _page_socket(devtools_port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=5) as response:  # noqa: S310
        targets = json.loads(response.read())
    return str(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


async def _publish_scenario(deployment: Deployment, trucks: int) -> tuple[Any, Event]:
    """A small Seine-corridor scenario (the demo's builder): scene, events, routes, positions."""
    settings = deployment.settings
    scenario = build(datetime.now(UTC), trucks=trucks)
    client = redis_client(settings.resolved_redis_url())
    await client.set(scene_key(settings.redis_prefix), orjson.dumps(scenario.scene()))
    await client.aclose()
    now = datetime.now(UTC)
    async with Publisher(settings) as publisher:
        await publisher.events(scenario.events)
        messages = [RouteMessage("registered", t.route.route_id, now, route=t.route) for t in scenario.trucks]
        for truck in scenario.trucks:
            lon, lat = truck.position(truck.started_s)
            messages.append(RouteMessage("position", truck.route.route_id, now, position=(lon, lat)))
        await publisher.routes(messages)
        decoder = AisDecoder()  # ships through the AIS feed path: the port agent predicts a bridge lift
        lines = [line for ship in scenario.ships for line in (*ship.static_lines(), *ship.position_lines(0))]
        vessels = [e for e in decoder.feed("\n".join(lines) + "\n", now) if isinstance(e, Event)]
        await publisher.events(vessels)
    return scenario, scenario.closures[0]


def _late_closure(truck: Any) -> Event:
    """A closure published while the page is open, on a street ahead of one truck."""
    coords = truck.route.coordinates
    i = next(i for i in range(len(coords) - 1) if truck.times[i] > truck.started_s + 60)
    a, b = coords[i], coords[i + 1]
    mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    now = datetime.now(UTC)
    return Event(
        id="test:late-closure",
        source="test",
        kind="closure",
        geometry={"type": "LineString", "coordinates": [list(a), list(mid)]},
        valid_from=now - timedelta(minutes=5),
        valid_until=now + timedelta(hours=12),
        title="Late closure published during the test",
        street="Rue du Test",
    )


def test_dispatch_endpoints_need_a_dispatcher_token(deployment: Deployment) -> None:
    """The page is public and cached by ETag; its data needs a dispatcher token, not a driver's."""
    _, port = deployment.start_gateway()
    keyring = Keyring.parse(deployment.env["CORRIDOR_SIGNING_KEY"])
    base = f"http://127.0.0.1:{port}"
    status, headers, body = _get(base + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"dispatch.js" in body
    assert (
        headers["Cache-Control"] == "no-cache" and "script-src 'self'" in headers["Content-Security-Policy"]
    )
    assert _get(base + "/", {"If-None-Match": headers["ETag"]})[0] == 304
    status, headers, _ = _get(base + "/static/dispatch.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert _get(base + "/static/../gateway.py")[0] == 404
    assert _get(base + "/dispatch/snapshot")[0] == 401
    driver = keyring.issue("truck-001", time.time(), 60)
    assert _get(base + "/dispatch/snapshot", {"Authorization": f"Bearer {driver}"})[0] == 403
    dispatcher = keyring.issue_dispatcher("ops", time.time(), 60)
    status, _, body = _get(f"{base}/dispatch/snapshot?token={dispatcher}")
    assert status == 200 and set(json.loads(body)) >= {"routes", "events", "vessels", "scene"}

    async def refused(token: str) -> int:
        async with websockets.connect(f"ws://127.0.0.1:{port}/dispatch/alerts?token={token}") as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code

    assert asyncio.run(refused(driver)) == 4403
    assert asyncio.run(refused("")) == 4401


async def test_map_loads_draws_routes_and_events_and_shows_a_live_alert(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Chromium opens the map: routes, events and vehicles are drawn; an alert published now appears."""
    deployment.start_worker()
    _, port = deployment.start_gateway()
    scenario, _ = await _publish_scenario(deployment, trucks=40)
    keyring = Keyring.parse(deployment.env["CORRIDOR_SIGNING_KEY"])
    token = keyring.issue_dispatcher("test", time.time(), 600)
    client: aioredis.Redis = redis_client(deployment.settings.resolved_redis_url())
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and not await client.xlen(
        dispatch_stream_key(deployment.settings.redis_prefix)
    ):
        await asyncio.sleep(0.2)
    await client.aclose()
    chromium, devtools_port = _start_chromium(tmp_path / "chromium")
    try:
        async with websockets.connect(_page_socket(devtools_port), max_size=64 * 2**20) as ws:
            page = DevTools(ws)
            await page.call("Page.enable")
            await page.call(
                "Emulation.setDeviceMetricsOverride",
                width=1440,
                height=900,
                deviceScaleFactor=1,
                mobile=False,
            )
            await page.call("Page.navigate", url=f"http://127.0.0.1:{port}/#token={token}")
            await page.wait_for("document.body.dataset.status === 'live'", "a live connection")
            await page.wait_for(
                f"Number(document.body.dataset.routes) === {len(scenario.trucks)}", "every route"
            )
            await page.wait_for("Number(document.body.dataset.vehicles) > 0", "vehicle positions")
            await page.wait_for(
                f"Number(document.body.dataset.vessels) === {len(scenario.ships)}", "the ships"
            )
            await page.wait_for(
                "!!document.querySelector('#layer-events path[data-kind=bridge_lift]')", "the bridge lift"
            )
            drawn = await page.js(
                "({routes: document.querySelectorAll('#layer-routes path[data-route]').length,"
                " perimeters: document.querySelectorAll('#layer-perimeters path[data-event]').length,"
                " closures: document.querySelectorAll('#layer-events path[data-kind=closure]').length,"
                " water: document.querySelectorAll('#layer-water path').length})"
            )
            assert drawn["routes"] == len(scenario.trucks)
            now = datetime.now(UTC)
            assert drawn["perimeters"] == sum(1 for p in scenario.perimeters if p.valid_until > now)
            assert drawn["closures"] >= 1 and drawn["water"] == 1
            await page.wait_for("Number(document.body.dataset.alerts) > 0", "the dispatch stream's backlog")
            truck = next(
                t
                for t in scenario.trucks
                if t.kind == "delivery" and any(x > t.started_s + 60 for x in t.times[:-1])
            )
            late = _late_closure(truck)
            async with Publisher(deployment.settings) as publisher:
                await publisher.events([late])
            row = await page.wait_for(
                f"(() => {{ const li = document.querySelector("
                f'\'#feed li[data-event-id="{late.id}"][data-driver="{truck.route.driver_id}"]\');'
                " return li && li.textContent; })()",
                "the late closure's alert",
            )
            assert truck.route.driver_id in row and "Late closure" in row
            listed = await page.js(
                f"document.querySelector('#drivers li[data-driver=\"{truck.route.driver_id}\"]').textContent"
            )
            assert "Late closure" in listed
            await page.wait_for(
                f"!!document.querySelector('#layer-events path[data-event=\"{late.id}\"]')",
                "the late closure",
            )
            shots = {"dispatch.png": await page.call("Page.captureScreenshot", format="png")}
            paris = "document.querySelector('#views button[data-view=paris]')"
            await page.js(f"{paris}.click()")
            await page.wait_for(f"{paris}.getAttribute('aria-pressed') === 'true'", "the Paris view chosen")
            shots["dispatch-paris.png"] = await page.call("Page.captureScreenshot", format="png")
    finally:
        chromium.terminate()
        chromium.wait(10)
    for name, shot in shots.items():
        png = base64.b64decode(shot["data"])
        assert png.startswith(b"\x89PNG") and len(png) > 20_000
        (tmp_path / name).write_bytes(png)
        if os.environ.get("CORRIDOR_UPDATE_SCREENSHOTS"):  # refresh the README's pictures on request
            (DOCS / name).write_bytes(png)
