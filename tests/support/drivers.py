"""A driver's websocket client, as a phone app would use it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets


class DriverClient:
    """Connects to the gateway with a token and collects what arrives."""

    def __init__(self, port: int, driver_id: str, token: str, last_id: str | None = None) -> None:
        query = f"?last_id={last_id}" if last_id else ""
        self.url = f"ws://127.0.0.1:{port}/drivers/{driver_id}/alerts{query}"
        self.token = token
        self.messages: list[dict[str, Any]] = []
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self.closed: Any = None

    async def __aenter__(self) -> DriverClient:
        self._ws = await websockets.connect(
            self.url, additional_headers={"Authorization": f"Bearer {self.token}"}
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                self.messages.append(json.loads(raw))
        except websockets.ConnectionClosed as exc:
            self.closed = exc
        self.closed = self.closed or self._ws.close_code

    @property
    def alerts(self) -> list[dict[str, Any]]:
        """The alert messages received (stream id plus alert)."""
        return [m for m in self.messages if m.get("type") == "alert"]

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
