"""The dispatcher side of the gateway: the map page, the data it draws, and every driver's alerts live.

Plain HTTP (answered from ``process_request``, before any upgrade):

- ``GET /`` and ``GET /static/<file>``: the page (HTML, JS, CSS shipped in the package), with an
  ETag and ``Cache-Control: no-cache`` (revalidated, 304 when unchanged) and a strict CSP.
- ``GET /dispatch/snapshot``: routes, active events, vessels and the optional demo scene (JSON).
- ``GET /dispatch/positions``: the last position of every vehicle (JSON, small: polled).

Both data paths and the websocket ``/dispatch/alerts`` need a dispatcher token (``Authorization:
Bearer …`` or ``?token=``); a driver token is refused (403 / close 4403). The websocket sends
``{"type":"hello",…}``, then the last alerts retained in ``<prefix>:dispatch`` (or those after
``?last_id=``), then each new one as ``{"type":"alert","id":…,"driver_id":…,"alert":{…}}``.

The data comes from records other processes wrote: one that cannot be read (bad JSON, a geometry
that is not an object, a route without its keys) is skipped, logged once and counted
(``corridor_gateway_bad_records_total``), and the rest is served.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import redis.asyncio as aioredis
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from stream.gateway.hub import is_stream_id
from stream.gateway.tokens import Keyring, TokenError
from stream.runtime import metrics, redis_keys
from stream.runtime.redis_keys import dispatch_stream_key

log = logging.getLogger("corridor.gateway.dispatch")

ALERTS_PATH = "/dispatch/alerts"
DATA_PATHS = ("/dispatch/snapshot", "/dispatch/positions")
STATIC_PATH = re.compile(r"^/static/(?P<name>[A-Za-z0-9_-]{1,64}\.(?:js|css|svg|html))$")
CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
    "json": "application/json",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
BACKLOG = 500
MAX_PARTITIONS = 4096  # a noted partition count above this is not believed
READ_BLOCK_MS = 1000
VESSEL_MAX_AGE = timedelta(minutes=15)
SNAPSHOT_TTL_S = 1.0
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY = 4429
BAD_RECORDS_REMEMBERED = 10_000  # bad records logged once each; past this many, logged again


@dataclass(frozen=True)
class Asset:
    """A static file held in memory with its validator."""

    body: bytes
    content_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """Every file of the package's ``static`` folder, by name."""
    assets: dict[str, Asset] = {}
    folder = resources.files("stream.gateway").joinpath("static")
    for entry in folder.iterdir():
        suffix = entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in CONTENT_TYPES:
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            assets[entry.name] = Asset(body, CONTENT_TYPES[suffix], etag)
    return assets


def _response(status: HTTPStatus, body: bytes, content_type: str, **extra: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Connection", "close"),
        ]
    )
    for name, value in extra.items():
        headers[name.replace("_", "-")] = value
    return Response(status.value, status.phrase, headers, body)


def _json(status: HTTPStatus, data: Any) -> Response:
    return _response(status, orjson.dumps(data), CONTENT_TYPES["json"], Cache_Control="no-store")


def _token(headers: Headers, query: dict[str, list[str]]) -> str:
    auth = headers.get("Authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    return token or (query.get("token") or [""])[0]


def _round(coords: Any) -> Any:
    if isinstance(coords, list | tuple):
        if coords and isinstance(coords[0], int | float):
            return [round(float(c), 5) for c in coords[:2]]
        return [_round(c) for c in coords]
    return coords


def _text(value: Any) -> str:
    """A string field of a stored record (anything else makes the record unreadable)."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _point(value: Any) -> list[float]:
    """A stored ``[lon, lat]`` rounded for the map (anything else makes the record unreadable)."""
    point = _round(value)
    if not (isinstance(point, list) and len(point) == 2 and all(isinstance(c, float) for c in point)):
        raise ValueError("position is not [lon, lat]")
    return point


def _route(raw: bytes) -> dict[str, Any] | None:
    """The map's form of a stored route record; None when it is not active."""
    msg = orjson.loads(raw)
    route = msg.get("route")
    if msg.get("op") == "ended" or not route:
        return None
    return {
        "route_id": _text(route["route_id"]),
        "driver_id": _text(route["driver_id"]),
        "destination": route.get("destination"),
        "coordinates": _round(route["coordinates"]),
    }


def _event(raw: bytes, now: datetime) -> dict[str, Any] | None:
    """The map's form of a stored event, with ``vessel`` set for ships; None when not active now."""
    # Imported on a dispatcher's first request: it brings the matching engine (numba, shapely,
    # pyproj, ~100 MB) that a gateway serving only drivers never needs.
    from stream.runtime.stamped import decode_stamped  # noqa: PLC0415

    event = decode_stamped(raw).event
    if event.status != "active" or (event.valid_until is not None and event.valid_until <= now):
        return None
    geometry = event.geometry
    if not isinstance(geometry, dict):
        raise TypeError(f"geometry is a {type(geometry).__name__}, not an object")
    item: dict[str, Any] = {
        "id": _text(event.id),
        "kind": event.kind,
        "title": event.title,
        "street": event.street,
        "geometry": {"type": _text(geometry["type"]), "coordinates": _round(geometry["coordinates"])},
        "valid_from": event.valid_from.isoformat() if event.valid_from else None,
        "valid_until": event.valid_until.isoformat() if event.valid_until else None,
        "vessel": event.kind == "vessel",
    }
    if item["vessel"]:
        if event.updated_at is not None and now - event.updated_at >= VESSEL_MAX_AGE:
            return None
        details = event.details if isinstance(event.details, dict) else {}
        item["name"] = details.get("shipname") or details.get("name")
        item["course"] = details.get("course")
    return item


class Dispatch:
    """Serves the dispatcher page, its data from the workers' Redis state, and the alert feed."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        keyring: Keyring,
        partitions: int,
        max_connections: int = 32,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._keyring = keyring
        self._partitions = max(1, partitions)
        self._max_connections = max_connections
        self._assets = load_assets()
        self._snapshot: tuple[float, bytes] | None = None
        self._bad_records: set[tuple[str, bytes]] = set()
        self.connections = 0

    async def _partition_count(self) -> int:
        """How many route partitions the workers keep (as they noted it), else as configured."""
        raw = await self._redis.get(redis_keys.partitions_key(self._prefix))
        try:
            count = int(raw) if raw is not None else self._partitions
        except ValueError:
            count = self._partitions
        return count if 1 <= count <= MAX_PARTITIONS else self._partitions

    def owns(self, path: str) -> bool:
        """True for the paths this module answers."""
        return path in ("/", "/index.html", ALERTS_PATH, *DATA_PATHS) or path.startswith("/static/")

    def authenticate(self, headers: Headers, query: dict[str, list[str]]) -> str:
        """The dispatcher's name; raises TokenError (``missing``, ``wrong_role``, …) otherwise."""
        token = _token(headers, query)
        if not token:
            raise TokenError("missing", "no token: open the page with #token=<dispatcher token>")
        return self._keyring.verify_dispatcher(token, time.time())

    async def respond(self, request: Request) -> Response | None:
        """The HTTP answer for one of our paths; None lets ``/dispatch/alerts`` upgrade."""
        parts = urlsplit(request.path)
        path = parts.path
        if path in ("/", "/index.html"):
            return self._asset("index.html", request)
        static = STATIC_PATH.match(path)
        if static is not None:
            return self._asset(static["name"], request)
        if path.startswith("/static/"):
            return _response(HTTPStatus.NOT_FOUND, b"no such file\n", "text/plain; charset=utf-8")
        if path == ALERTS_PATH:
            return None
        try:
            self.authenticate(request.headers, parse_qs(parts.query))
        except TokenError as exc:
            metrics.refusals.labels(f"dispatch_{exc.reason}").inc()
            status = HTTPStatus.FORBIDDEN if exc.reason == "wrong_role" else HTTPStatus.UNAUTHORIZED
            return _json(status, {"error": str(exc)})
        try:
            if path == "/dispatch/positions":
                return _json(HTTPStatus.OK, await self.positions())
            return _response(
                HTTPStatus.OK, await self.snapshot(), CONTENT_TYPES["json"], Cache_Control="no-store"
            )
        except aioredis.RedisError:
            return _json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "redis unreachable"})

    def _asset(self, name: str, request: Request) -> Response:
        asset = self._assets.get(name)
        if asset is None:
            return _response(HTTPStatus.NOT_FOUND, b"no such file\n", "text/plain; charset=utf-8")
        caching = {"Cache_Control": "no-cache", "ETag": asset.etag}
        if request.headers.get("If-None-Match") == asset.etag:
            return _response(HTTPStatus.NOT_MODIFIED, b"", asset.content_type, **caching)
        return _response(
            HTTPStatus.OK, asset.body, asset.content_type, Content_Security_Policy=CSP, **caching
        )

    async def positions(self) -> dict[str, Any]:
        """Every vehicle's last position: ``{"vehicles": {route_id: [lon, lat, at]}}``."""
        keys = [redis_keys.positions_key(self._prefix, p) for p in range(await self._partition_count())]
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(key)
            replies = await pipe.execute()
        vehicles: dict[str, list[Any]] = {}
        for key, reply in zip(keys, replies, strict=True):
            for field, raw in reply.items():
                try:
                    msg = orjson.loads(raw)
                    if msg.get("position"):
                        vehicles[_text(msg["route_id"])] = [*_point(msg["position"]), msg.get("at")]
                except Exception as exc:  # noqa: BLE001 - one bad record must not hide every vehicle
                    self._skip("position", key, field, exc)
        return {"generated_at": datetime.now(UTC).isoformat(), "vehicles": vehicles}

    async def snapshot(self) -> bytes:
        """Active routes, active events, recent vessels and the scene, as JSON (cached ~1 s)."""
        cached = self._snapshot
        if cached is not None and time.monotonic() - cached[0] < SNAPSHOT_TTL_S:
            return cached[1]
        route_keys = [redis_keys.routes_key(self._prefix, p) for p in range(await self._partition_count())]
        events_key = redis_keys.events_key(self._prefix)
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in route_keys:
                pipe.hgetall(key)
            pipe.hgetall(events_key)
            pipe.get(redis_keys.scene_key(self._prefix))
            *route_replies, event_reply, scene = await pipe.execute()
        routes = []
        for key, reply in zip(route_keys, route_replies, strict=True):
            for field, raw in reply.items():
                try:
                    route = _route(raw)
                except Exception as exc:  # noqa: BLE001 - one bad record must not hide every route
                    self._skip("route", key, field, exc)
                    continue
                if route is not None:
                    routes.append(route)
        now = datetime.now(UTC)
        events: list[dict[str, Any]] = []
        vessels: list[dict[str, Any]] = []
        for field, raw in event_reply.items():
            try:
                item = _event(raw, now)
            except Exception as exc:  # noqa: BLE001 - one bad record must not hide every event
                self._skip("event", events_key, field, exc)
                continue
            if item is not None:
                (vessels if item.pop("vessel") else events).append(item)
        try:
            scene_data = orjson.loads(scene) if scene else None
        except orjson.JSONDecodeError as exc:
            self._skip("scene", redis_keys.scene_key(self._prefix), b"", exc)
            scene_data = None
        body = orjson.dumps(
            {
                "generated_at": now.isoformat(),
                "routes": sorted(routes, key=lambda r: r["route_id"]),
                "events": sorted(events, key=lambda e: e["id"]),
                "vessels": vessels,
                "scene": scene_data,
            }
        )
        self._snapshot = (time.monotonic(), body)
        return body

    def _skip(self, kind: str, key: str, field: bytes, exc: Exception) -> None:
        """Count a record that cannot be drawn, and log it the first time it is seen."""
        seen = (key, field)
        if seen in self._bad_records:
            return
        if len(self._bad_records) >= BAD_RECORDS_REMEMBERED:
            self._bad_records.clear()
        self._bad_records.add(seen)
        metrics.gateway_bad_records.labels(kind).inc()
        log.warning(
            "skipped a %s record that cannot be read: key=%s field=%.80r (%s: %.200s); fix or delete it",
            kind,
            key,
            field,
            type(exc).__name__,
            exc,
        )

    async def handle(self, ws: ServerConnection) -> None:
        """Serve one dispatcher's live feed until it closes."""
        assert ws.request is not None  # noqa: S101 - set once the handshake is done
        query = parse_qs(urlsplit(ws.request.path).query)
        try:
            name = self.authenticate(ws.request.headers, query)
        except TokenError as exc:
            metrics.refusals.labels(f"dispatch_{exc.reason}").inc()
            code = CLOSE_FORBIDDEN if exc.reason == "wrong_role" else CLOSE_UNAUTHORIZED
            await ws.close(code, str(exc))
            return
        last_id = (query.get("last_id") or [""])[0]
        if last_id and not is_stream_id(last_id):
            await ws.close(1008, "last_id must be a stream id like 1700000000000-0")
            return
        if self.connections >= self._max_connections:
            await ws.close(CLOSE_TOO_MANY, f"too many dispatchers (at most {self._max_connections})")
            return
        self.connections += 1
        log.info("dispatcher %s connected", name)
        try:
            await ws.send(orjson.dumps({"type": "hello", "dispatcher": name}).decode())
            await self._pump(ws, last_id)
        except ConnectionClosed:
            pass
        finally:
            self.connections -= 1

    async def _pump(self, ws: ServerConnection, last_id: str) -> None:
        key = dispatch_stream_key(self._prefix)
        if last_id:
            cursor = last_id
        else:
            recent: Any = await self._redis.xrevrange(key, count=BACKLOG)
            await self._send(ws, list(reversed(recent)))
            cursor = recent[0][0].decode() if recent else "0"
        while ws.protocol.state is State.OPEN:
            try:
                reply: Any = await self._redis.xread({key: cursor}, count=200, block=READ_BLOCK_MS)
            except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as exc:
                log.warning("dispatch read failed (%s)", exc)
                await asyncio.sleep(1.0)
                continue
            except aioredis.ResponseError as exc:  # not this client's fault: say so, do not crash
                log.warning("redis refused the dispatch feed from cursor=%.64r (%s)", cursor, exc)
                await ws.close(1011, "the alert feed cannot be read: reconnect later")
                return
            for _, entries in reply or ():
                if entries:
                    cursor = entries[-1][0].decode()
                    await self._send(ws, entries)

    async def _send(self, ws: ServerConnection, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        for raw_id, fields in entries:
            frame = (
                b'{"type":"alert","id":"'
                + raw_id
                + b'","driver_id":'
                + orjson.dumps(fields.get(b"d", b"").decode())
                + b',"alert":'
                + fields[b"a"]
                + b"}"
            )
            await ws.send(frame, text=True)
