"""A driver's websocket client, as a phone app would use it, and helpers to watch a gateway."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request
from datetime import UTC, datetime
from typing import Any

import websockets

from schemas import Alert, alert_id_for
from stream.gateway.tokens import Keyring


class DriverClient:
    """Connects to the gateway with a token and collects what arrives.

    ``paused=True`` connects without reading (a stuck phone): call ``resume_reading()`` later.
    ``rcvbuf`` shrinks the socket's receive buffer so that a stuck reader backs up quickly.
    """

    def __init__(
        self,
        port: int,
        driver_id: str,
        token: str,
        last_id: str | None = None,
        *,
        paused: bool = False,
        rcvbuf: int | None = None,
        origin: str | None = None,
    ) -> None:
        query = f"?last_id={last_id}" if last_id else ""
        self.port = port
        self.url = f"ws://127.0.0.1:{port}/drivers/{driver_id}/alerts{query}"
        self.token = token
        self.messages: list[dict[str, Any]] = []
        self.received_at: list[float] = []
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._reading = asyncio.Event()
        if not paused:
            self._reading.set()
        self._rcvbuf = rcvbuf
        self._origin = origin
        self.closed: Any = None

    async def __aenter__(self) -> DriverClient:
        sock = None
        if self._rcvbuf is not None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.port))
        self._ws = await websockets.connect(
            self.url,
            additional_headers={"Authorization": f"Bearer {self.token}"},
            sock=sock,
            origin=self._origin,  # type: ignore[arg-type]
            max_queue=4,
            compression=None,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._reading.set()
        await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    def resume_reading(self) -> None:
        """Start reading again (after ``paused=True``)."""
        self._reading.set()

    async def _read(self) -> None:
        try:
            while True:
                await self._reading.wait()
                raw = await self._ws.recv()
                self.messages.append(json.loads(raw))
                self.received_at.append(time.time())
        except websockets.ConnectionClosed as exc:
            self.closed = exc

    @property
    def alerts(self) -> list[dict[str, Any]]:
        """The alert messages received (stream id plus alert)."""
        return [m for m in self.messages if m.get("type") == "alert"]

    @property
    def close_code(self) -> int | None:
        """The close code the gateway sent, once closed."""
        if self.closed is None or self.closed.rcvd is None:
            return None
        return int(self.closed.rcvd.code)

    @property
    def close_reason(self) -> str:
        """The close reason the gateway sent, once closed."""
        if self.closed is None or self.closed.rcvd is None:
            return ""
        return str(self.closed.rcvd.reason)

    async def wait_for(self, predicate: Any, timeout: float) -> dict[str, Any]:
        """The first alert message matching ``predicate``, waiting up to ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for message in self.alerts:
                if predicate(message["alert"]):
                    return message
            await asyncio.sleep(0.02)
        raise AssertionError(f"no matching alert within {timeout} s; got {self.alerts}")

    async def wait_hello(self, timeout: float) -> dict[str, Any]:
        """The gateway's hello: the connection is accepted and its driver's stream followed."""
        await until(
            lambda: any(m.get("type") == "hello" for m in self.messages) or self.closed is not None,
            timeout,
            "the gateway's hello",
        )
        hello = next((m for m in self.messages if m.get("type") == "hello"), None)
        if hello is None:
            raise AssertionError(f"closed before the hello: {self.close_code} {self.close_reason}")
        return hello

    async def wait_closed(self, timeout: float) -> None:
        """Wait until the gateway has closed the connection."""
        await until(lambda: self.closed is not None, timeout, "the connection to close")


async def until(predicate: Any, timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll ``predicate`` on the event loop until true; fail naming ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


def metric(port: int, name: str, labels: str = "") -> float:
    """One sample from a process's /metrics (0 when absent), e.g. ``metric(p, "x_total")``."""
    wanted = f"{name}{{{labels}}}" if labels else name
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:  # noqa: S310
        for line in response.read().decode().splitlines():
            key, _, value = line.rpartition(" ")
            if key == wanted:
                return float(value)
    return 0.0


def token_for(env: dict[str, str], driver_id: str, ttl_s: float = 600) -> str:
    """A token signed with a deployment's CORRIDOR_SIGNING_KEY."""
    return Keyring.parse(env["CORRIDOR_SIGNING_KEY"]).issue(driver_id, time.time(), ttl_s)


def alert_for(driver_id: str, event_id: str, title: str | None = None) -> Alert:
    """A raised closure alert for ``driver_id`` (distinct per event id)."""
    return Alert(
        alert_id=alert_id_for(f"r-{driver_id}", event_id),
        route_id=f"r-{driver_id}",
        driver_id=driver_id,
        event_id=event_id,
        kind="closure",
        state="raised",
        distance_ahead_m=250.0,
        valid_from=None,
        valid_until=None,
        title=title or event_id,
        created_at=datetime.now(UTC),
    )
