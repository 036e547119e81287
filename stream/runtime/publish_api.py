"""The publish API: port operators and cities send events and port calls over HTTP.

``POST /v1/events`` takes one normalized event or an array (schemas/event.schema.json);
``POST /v1/port-calls`` (also ``/v1/portcalls``) one port-call timestamp or an array
(schemas/portcall.schema.json). Each request carries ``Authorization: Bearer cpk.<id>.<secret>``.
A publisher may only publish under its own sources. A request is all or nothing: 202
``{"accepted": [ids]}`` once the broker acknowledged every event, else 4xx
``{"errors": ["field: message", …]}`` and nothing is published (refused records go to the
dead-letter topic). Port calls get their source's prefix as id and their delay versus the
previous time of the same id (kept in Redis).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web

from schemas import Event, Rejection
from schemas.validate import errors as schema_errors
from stream.core.port.infrastructure import Infrastructure
from stream.core.port.portcall import event_time, with_delay
from stream.feeds.base import RecordError, snippet
from stream.feeds.native import native_event
from stream.feeds.portcall import portcall_event
from stream.runtime import metrics
from stream.runtime.producer import Publisher
from stream.runtime.publishers import PublisherRecord, PublisherStore, TokenBucket

log = logging.getLogger("corridor.api")

MAX_BODY_BYTES = 1024 * 1024
ESTIMATE_TTL_S = 30 * 86400
ENDPOINTS = {"/v1/events": "events", "/v1/port-calls": "portcalls", "/v1/portcalls": "portcalls"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Refused(Exception):
    """A request refused with a status and field-named errors; ``records`` go to the dead letters."""

    def __init__(self, status: int, errors: list[str], reason: str, records: list[Rejection] | None = None):
        super().__init__(errors[0] if errors else reason)
        self.status, self.errors, self.reason = status, errors, reason
        self.records = records or []


def _problems(records: list[Any], many: bool, check: Callable[[Any], Event], schema: str) -> list[Any]:
    """Each record as an Event, or the list of its 'field: message' problems."""
    out: list[Any] = []
    for i, record in enumerate(records):
        where = f"{i}/" if many else ""
        found = [where + e for e in schema_errors(schema, record)]
        if not found:
            try:
                out.append(check(record))
                continue
            except RecordError as exc:
                found = [f"{where}{exc.error}"]
        out.append(found)
    return out


class PublishApi:
    """The aiohttp application of the publish API, bound to a broker, Redis and the publishers."""

    def __init__(
        self,
        publisher: Publisher,
        client: aioredis.Redis,
        prefix: str,
        infrastructure: Infrastructure | None = None,
        rate: float = 10.0,
        burst: float = 20.0,
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self.publisher = publisher
        self.redis = client
        self.store = PublisherStore(client, prefix)
        self.estimates = f"{prefix}:port:estimate:"
        self.terminals = infrastructure.terminals if infrastructure else {}
        self.rate, self.burst, self.max_body = rate, burst, max_body
        self.buckets: dict[str, TokenBucket] = {}

    def app(self) -> web.Application:
        """The web application (routes, the error middleware, the body size limit)."""
        app = web.Application(client_max_size=self.max_body, middlewares=[self._middleware])
        app.router.add_get("/healthz", self.healthz)
        app.router.add_post("/v1/events", self.post_events)
        app.router.add_post("/v1/port-calls", self.post_port_calls)
        app.router.add_post("/v1/portcalls", self.post_port_calls)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        endpoint = ENDPOINTS.get(request.path)
        try:
            response = await handler(request)
        except _Early as early:
            response = early.response
        except Refused as exc:
            response = web.json_response({"errors": exc.errors}, status=exc.status)
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="corridor"'
            log.info("refused %s %s: %d %s", request.method, request.path, exc.status, exc.reason)
        except web.HTTPRequestEntityTooLarge:
            response = self._too_large()
        except web.HTTPException as exc:
            response = web.json_response({"errors": [exc.reason]}, status=exc.status)
        if endpoint is not None:
            metrics.count_publisher_request(endpoint, response.status)
        return response

    def _too_large(self) -> web.Response:
        return web.json_response({"errors": [f"(body): larger than {self.max_body} bytes"]}, status=413)

    async def healthz(self, request: web.Request) -> web.Response:
        """Liveness: 200 while the process serves."""
        return web.json_response({"status": "ok"})

    async def _admit(self, request: web.Request) -> PublisherRecord:
        """Authenticate and rate-limit: the publisher, or a refusal (401, 429)."""
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        if not header:
            raise Refused(401, ["Authorization: missing; send 'Bearer <credential>'"], "no_credential")
        if scheme.lower() != "bearer" or not credential:
            raise Refused(401, ["Authorization: expected 'Bearer <credential>'"], "bad_scheme")
        publisher = await self.store.authenticate(credential)
        if publisher is None:
            raise Refused(401, ["Authorization: unknown, revoked or invalid credential"], "bad_credential")
        bucket = self.buckets.setdefault(publisher.name, TokenBucket(self.rate, self.burst))
        wait = bucket.take()
        if wait > 0:
            response = web.json_response(
                {"errors": [f"(publisher): over {self.rate:g} requests/s; retry later"]}, status=429
            )
            response.headers["Retry-After"] = str(max(1, round(wait + 0.5)))
            raise _Early(response)
        return publisher

    async def _body(self, request: web.Request) -> Any:
        """The decoded JSON body, refused when too large (413), not JSON or of the wrong shape (400)."""
        if request.content_length is not None and request.content_length > self.max_body:
            raise _Early(self._too_large())
        body = await request.read()
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            rejection = Rejection(f"body is not JSON: {exc}", "body", "undecodable", snippet(body))
            raise Refused(400, [f"(body): not JSON ({exc})"], "undecodable", [rejection]) from None
        if not isinstance(data, dict | list) or data == []:
            raise Refused(400, ["(body): expected a JSON object or a non-empty array of objects"], "shape")
        return data

    async def post_events(self, request: web.Request) -> web.StreamResponse:
        """Publish normalized events under the publisher's sources."""
        publisher = await self._admit(request)
        try:
            data = await self._body(request)
            events = self._checked(data, native_event, "event")
            foreign = [
                f"{i}/source: {e.source!r} is not a source of publisher {publisher.name!r}"
                for i, e in enumerate(events)
                if e.source not in publisher.sources
            ]
            foreign += [
                f"{i}/id: must start with '{e.source}:'"
                for i, e in enumerate(events)
                if e.source in publisher.sources and not e.id.startswith(f"{e.source}:")
            ]
            if foreign:
                raise Refused(
                    403, foreign, "forbidden_source", _rejections(foreign, data, "forbidden_source")
                )
            return await self._publish(events)
        except Refused as exc:
            await self._dead_letter(publisher, "native", exc)
            raise

    async def post_port_calls(self, request: web.Request) -> web.StreamResponse:
        """Publish port-call timestamps as port_call events, with their delay versus the last time."""
        publisher = await self._admit(request)
        try:
            data = await self._body(request)
            source = request.query.get("source")
            if source is None and len(publisher.sources) == 1:
                source = publisher.sources[0]
            if source is None:
                raise Refused(
                    422, ["source: publisher has several sources; name one with ?source="], "source"
                )
            if source not in publisher.sources:
                why = [f"source: {source!r} is not a source of publisher {publisher.name!r}"]
                raise Refused(403, why, "forbidden_source", _rejections(why, data, "forbidden_source"))
            events = [_as_source(e, source) for e in self._checked(data, portcall_event, "portcall")]
            events = await self._with_delays(events)
            response = await self._publish(events)
            await self._remember(events)
            return response
        except Refused as exc:
            await self._dead_letter(publisher, "portcall", exc)
            raise

    def _checked(self, data: Any, check: Callable[[Any], Event], schema: str) -> list[Event]:
        many = isinstance(data, list)
        results = _problems(data if many else [data], many, check, schema)
        found = [p for r in results if isinstance(r, list) for p in r]
        if found:
            raise Refused(422, found[:100], "schema", _rejections(found, data, "schema"))
        return [r for r in results if isinstance(r, Event)]

    async def _publish(self, events: list[Event]) -> web.Response:
        try:
            await self.publisher.events(events)
        except Exception as exc:  # the broker is down or refused: nothing was accepted
            log.warning("broker did not acknowledge %d events: %s", len(events), type(exc).__name__)
            return web.json_response(
                {"errors": ["(broker): unavailable, nothing accepted; retry"]}, status=503
            )
        for event in events:
            metrics.events_in.labels(event.source, event.kind).inc()
        return web.json_response({"accepted": [e.id for e in events]}, status=202)

    async def _with_delays(self, events: list[Event]) -> list[Event]:
        previous = await self.redis.mget([self.estimates + e.id for e in events]) if events else []
        out = []
        for event, raw in zip(events, previous, strict=True):
            text = raw.decode() if isinstance(raw, bytes) else raw
            before = datetime.fromisoformat(text) if text else None
            terminal = self.terminals.get(event.terminal or "")
            out.append(with_delay(event, before, terminal.name if terminal else None))
        return out

    async def _remember(self, events: list[Event]) -> None:
        for event in events:
            when = event_time(event)
            if when is not None:
                await self.redis.set(self.estimates + event.id, when.isoformat(), ex=ESTIMATE_TTL_S)

    async def _dead_letter(self, publisher: PublisherRecord, fmt: str, exc: Refused) -> None:
        if not exc.records:
            return
        try:
            await self.publisher.rejected(publisher.sources[0], fmt, exc.records)
        except Exception as error:  # the refusal stands even if the dead letter cannot be written
            log.warning("could not dead-letter %d records: %s", len(exc.records), type(error).__name__)


class _Early(Exception):
    """A ready response that ends the request before the body is read (429, 413)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _rejections(errors: list[str], data: Any, reason: str) -> list[Rejection]:
    """One dead letter for the request body, listing its errors."""
    return [Rejection("; ".join(errors)[:2000], "request", reason, snippet(data))]


def _as_source(event: Event, source: str) -> Event:
    """A port-call event under the publisher's source: ``portcall:X`` becomes ``<source>:X``."""
    rest = event.id.split(":", 1)[1]
    return replace(event, id=f"{source}:{rest}", source=source)


async def run_api(api: PublishApi, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve the API on host:port until ``stop`` is set."""
    runner = web.AppRunner(api.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("publish api listening on http://%s:%d", host, port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
