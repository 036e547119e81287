"""``corridor listen``: a driver's client for humans, which prints alerts and resumes after drops.

It connects to a gateway (or the first of several that answers), prints each alert as it arrives,
and when the connection drops it reconnects, to the next gateway in its list, with the last stream
id it saw, so that it gets what it missed, once and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import click
import websockets

from stream.gateway.keyring import load_keyring
from stream.runtime.settings import Settings

# Close codes after which reconnecting with the same token cannot help.
FATAL_CODES = {4401: "token refused", 4403: "token is for another driver"}


def stream_key(stream_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


async def follow(
    urls: Sequence[str],
    driver_id: str,
    token: str,
    on_message: Callable[[dict[str, Any]], None],
    last_id: str | None = None,
    stop: asyncio.Event | None = None,
    max_backoff_s: float = 5.0,
) -> str | None:
    """Receive a driver's alerts across drops and gateways; returns the last id seen.

    ``on_message`` gets every hello, alert (never the same stream id twice) and a
    ``{"type": "closed", "code": …, "reason": …}`` for each drop. Stops when ``stop`` is set or
    the token is refused.
    """
    stop = stop or asyncio.Event()
    backoff = 0.1
    attempt = 0
    while not stop.is_set():
        base = urls[attempt % len(urls)].rstrip("/")
        attempt += 1
        url = f"{base}/drivers/{quote(driver_id)}/alerts" + (f"?last_id={last_id}" if last_id else "")
        code: int | None = None
        reason = ""
        try:
            async with websockets.connect(
                url,
                additional_headers={"Authorization": f"Bearer {token}"},
                compression=None,
                open_timeout=5,
            ) as ws:
                backoff = 0.1
                stopping = asyncio.ensure_future(stop.wait())
                try:
                    while True:
                        receiving = asyncio.ensure_future(ws.recv())
                        await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                        if not receiving.done():
                            receiving.cancel()
                            return last_id
                        message = json.loads(receiving.result())
                        if message.get("type") == "alert":
                            if last_id and stream_key(message["id"]) <= stream_key(last_id):
                                continue  # already seen (a resume overlapping what arrived)
                            last_id = message["id"]
                        on_message(message)
                finally:
                    stopping.cancel()
        except websockets.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else 1006
            reason = exc.rcvd.reason if exc.rcvd else "connection lost"
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            code, reason = 1006, f"cannot connect to {base}: {exc}"
        on_message({"type": "closed", "code": code, "reason": reason, "url": base})
        if code in FATAL_CODES:
            return last_id
        if code != 1012:  # a restarting gateway: go straight to the next one
            delay = backoff * (1 + random.random())  # noqa: S311 - jitter, not security
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            backoff = min(backoff * 2, max_backoff_s)
    return last_id


def _printer(as_json: bool) -> Callable[[dict[str, Any]], None]:
    def show(message: dict[str, Any]) -> None:
        if as_json:
            click.echo(json.dumps(message))
            return
        kind = message.get("type")
        if kind == "hello":
            click.echo(f"connected as {message['driver_id']} (after {message['last_id']})", err=True)
        elif kind == "closed":
            click.echo(f"disconnected: {message['code']} {message['reason']}", err=True)
        elif kind == "alert":
            alert = message["alert"]
            distance = alert.get("distance_ahead_m")
            where = f"{distance / 1000:.1f} km ahead" if isinstance(distance, int | float) else ""
            title = alert.get("title") or alert.get("event_id")
            click.echo(f"{message['id']}  {alert['state'].upper():8} {alert['kind']:12} {title}  {where}")

    return show


@click.command()
@click.option("--driver", "driver_id", required=True, help="The driver to listen as.")
@click.option("--token", default=None, help="Its token (default: issue one with the local key).")
@click.option(
    "--url",
    "urls",
    multiple=True,
    help="Gateway, e.g. ws://127.0.0.1:8765; repeat for fallbacks (default: the configured one).",
)
@click.option("--last-id", default=None, help="Resume after this stream id.")
@click.option("--json", "as_json", is_flag=True, help="Print every message as a JSON line.")
def listen(
    driver_id: str, token: str | None, urls: tuple[str, ...], last_id: str | None, as_json: bool
) -> None:
    """Print DRIVER's alerts as they arrive; reconnect and resume from the last id after drops."""
    settings = Settings.from_env()
    if token is None:
        token = load_keyring(settings).issue(driver_id, time.time(), 12 * 3600)
    targets = list(urls) or [f"ws://{settings.gateway_host}:{settings.gateway_port}"]

    async def main() -> str | None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await follow(targets, driver_id, token, _printer(as_json), last_id, stop)

    last = asyncio.run(main())
    if last:
        click.echo(f"last id: {last}", err=True)
