"""The publish API: port operators and cities send events and port calls over HTTP.

``POST /v1/events`` takes one normalized event or an array (schemas/event.schema.json);
``POST /v1/port-calls`` (also ``/v1/portcalls``) one port-call timestamp or an array
(schemas/portcall.schema.json). Each request carries ``Authorization: Bearer cpk.<id>.<secret>``.
A publisher may only publish under its own sources and post its own kinds. A request is all or
nothing: 202 ``{"accepted": [ids]}`` once the broker acknowledged every event, else JSON
``{"errors": ["field: message", …]}`` and nothing is published (refused records go to the
dead-letter topic). Work is paid for before it is done: requests, events and vertices per second
per publisher, counted after decoding and before validation, which runs off the event loop.
Port calls get their source's prefix as id and their delay versus the previous time of the same id
(kept in Redis).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
import redis.exceptions
from aiohttp import web
from aiokafka.errors import KafkaError

from schemas import Event, Rejection
from schemas.event import admit
from schemas.geometry import DEFAULT_LIMITS, GeometryLimits
from stream.core.port.infrastructure import Infrastructure
from stream.core.port.portcall import event_time, with_delay
from stream.feeds.base import RecordError, snippet
from stream.feeds.native import native_event
from stream.feeds.portcall import portcall_event
from stream.ingest.producer import Message, Publisher, RecordRefused, RecordTooLarge
from stream.ingest.publishers import PublisherRecord, PublisherStore, TokenBucket, count_vertices
from stream.runtime import metrics
from stream.runtime.redis_keys import port_estimate_prefix

log = logging.getLogger("corridor.api")

MAX_BODY_BYTES = 1024 * 1024
ESTIMATE_TTL_S = 30 * 86400
HEALTH_TIMEOUT_S = 1.0
HEALTH_TTL_S = 1.0  # /healthz probes Redis and the broker at most once a second
RETRY_AFTER_S = 2
VALIDATION_THREADS = 2
# Bodies over this are decoded, validated and encoded in a worker thread: a 900 kB body costs
# ~40 ms to decode, ~100 ms to validate and ~20 ms to encode, too long to hold the event loop.
INLINE_BODY_BYTES = 64 * 1024
ENDPOINTS = {"/v1/events": "events", "/v1/port-calls": "portcalls", "/v1/portcalls": "portcalls"}
REDIS_DOWN = "(redis): unavailable, nothing accepted; retry"
BROKER_DOWN = "(broker): unavailable, nothing accepted; retry"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """What one publisher may spend, per API process (token buckets), and the bounds of one request."""

    rate: float = 10.0
    burst: float = 20.0
    event_rate: float = 2_000.0
    event_burst: float = 5_000.0
    vertex_rate: float = 200_000.0
    vertex_burst: float = 500_000.0
    max_request_vertices: int = 50_000
    max_body: int = MAX_BODY_BYTES


class Refused(Exception):
    """A request refused with a status and field-named errors; ``records`` go to the dead letters."""

    def __init__(self, status: int, errors: list[str], reason: str, records: list[Rejection] | None = None):
        super().__init__(errors[0] if errors else reason)
        self.status, self.errors, self.reason = status, errors, reason
        self.records = records or []


def _problems(records: list[Any], many: bool, check: Callable[[Any], Event]) -> list[Any]:
    """Each record as an Event, or the list of its 'field: message' problems (checked once)."""
    out: list[Any] = []
    for i, record in enumerate(records):
        where = f"{i}/" if many else ""
        try:
            out.append(check(record))
        except RecordError as exc:
            out.append([f"{where}{exc.error}"])
        except RecursionError:
            out.append([f"{where}(record): nested too deep"])
    return out


@dataclass
class _Buckets:
    """One publisher's token buckets: requests, events and vertices per second."""

    requests: TokenBucket
    events: TokenBucket
    vertices: TokenBucket


class PublishApi:
    """The aiohttp application of the publish API, bound to a broker, Redis and the publishers."""

    def __init__(
        self,
        publisher: Publisher,
        client: aioredis.Redis,
        prefix: str,
        infrastructure: Infrastructure | None = None,
        limits: Limits | None = None,
        event_limits: GeometryLimits = DEFAULT_LIMITS,
    ) -> None:
        self.publisher = publisher
        self.event_limits = event_limits
        self.redis = client
        self.store = PublisherStore(client, prefix)
        self.estimates = port_estimate_prefix(prefix)
        self.terminals = infrastructure.terminals if infrastructure else {}
        self.limits = limits or Limits()
        self.buckets: dict[str, _Buckets] = {}
        # Validation is CPU work in Python: a few threads keep the event loop (and /healthz) answering.
        self._validation = ThreadPoolExecutor(VALIDATION_THREADS, thread_name_prefix="corridor-validate")
        self._health_lock = asyncio.Lock()
        self._health: tuple[float, dict[str, str]] | None = None

    def app(self) -> web.Application:
        """The web application (routes, the error middleware, the body size limit)."""
        app = web.Application(client_max_size=self.limits.max_body, middlewares=[self._middleware])
        app.router.add_get("/healthz", self.healthz)
        app.router.add_post("/v1/events", self.post_events)
        app.router.add_post("/v1/port-calls", self.post_port_calls)
        app.router.add_post("/v1/portcalls", self.post_port_calls)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, app: web.Application) -> None:
        self._validation.shutdown(wait=False, cancel_futures=True)

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
        except redis.exceptions.RedisError as exc:
            log.warning(
                "redis unavailable serving %s %s: %s", request.method, request.path, type(exc).__name__
            )
            response = _unavailable(REDIS_DOWN)
        except web.HTTPRequestEntityTooLarge:
            response = self._too_large()
        except web.HTTPException as exc:
            response = web.json_response({"errors": [exc.reason]}, status=exc.status)
        except Exception:  # a bug of ours: the client gets no trace, the log gets the stack
            log.exception("unexpected error serving %s %s", request.method, request.path)
            response = web.json_response(
                {
                    "errors": [
                        "(server): internal error, nothing accepted; the operator's log has the details"
                    ]
                },
                status=500,
            )
        if endpoint is not None:
            metrics.count_publisher_request(endpoint, response.status)
        return response

    def _too_large(self) -> web.Response:
        return web.json_response(
            {"errors": [f"(body): larger than {self.limits.max_body} bytes"]}, status=413
        )

    async def healthz(self, request: web.Request) -> web.Response:
        """Readiness: 200 when Redis answers PING and a broker answers, else 503 naming what is down."""
        down = await self.down()
        if not down:
            return web.json_response({"status": "ok"})
        response = web.json_response({"status": "unavailable", "down": down}, status=503)
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    async def down(self) -> dict[str, str]:
        """What does not answer ({service: why}), probed at most once per HEALTH_TTL_S."""
        loop = asyncio.get_running_loop()
        async with self._health_lock:  # concurrent probes wait for one answer
            if self._health is not None and loop.time() - self._health[0] < HEALTH_TTL_S:
                return self._health[1]
            redis_error, broker_error = await asyncio.gather(
                self._redis_error(), self.publisher.reachable(HEALTH_TIMEOUT_S)
            )
            down = {k: v for k, v in (("redis", redis_error), ("broker", broker_error)) if v is not None}
            if down != (self._health[1] if self._health else {}):
                log.warning("health changed: %s", down or "ok")
            self._health = (loop.time(), down)
            return down

    async def _redis_error(self) -> str | None:
        try:
            await asyncio.wait_for(self.redis.ping(), HEALTH_TIMEOUT_S)
        except TimeoutError:
            return f"no PING answer within {HEALTH_TIMEOUT_S:g} s"
        except Exception as exc:  # any failure to reach it is the answer
            return type(exc).__name__
        return None

    async def _admit(self, request: web.Request) -> PublisherRecord:
        """Authenticate and rate-limit requests: the publisher, or a refusal (401, 429)."""
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        if not header:
            raise Refused(401, ["Authorization: missing; send 'Bearer <credential>'"], "no_credential")
        if scheme.lower() != "bearer" or not credential:
            raise Refused(401, ["Authorization: expected 'Bearer <credential>'"], "bad_scheme")
        publisher = await self.store.authenticate(credential)
        if publisher is None:
            raise Refused(401, ["Authorization: unknown, revoked or invalid credential"], "bad_credential")
        wait = self._buckets(publisher).requests.take()
        if wait > 0:
            raise _Early(_too_many(f"(publisher): over {self.limits.rate:g} requests/s; retry later", wait))
        return publisher

    def _buckets(self, publisher: PublisherRecord) -> _Buckets:
        found = self.buckets.get(publisher.name)
        if found is None:
            lim = self.limits
            found = _Buckets(
                TokenBucket(lim.rate, lim.burst),
                TokenBucket(lim.event_rate, lim.event_burst),
                TokenBucket(lim.vertex_rate, lim.vertex_burst),
            )
            self.buckets[publisher.name] = found
        return found

    def _charge(self, publisher: PublisherRecord, data: Any, records: list[Any], vertices: int) -> None:
        """Spend the request's events and vertices, or refuse it: 413 over a bound, 429 over the rate."""
        lim = self.limits
        if vertices > lim.max_request_vertices:
            why = [
                f"(body): over {lim.max_request_vertices} vertices in one request: "
                "split the request or simplify the geometries"
            ]
            raise Refused(413, why, "too_many_vertices", _rejections(why, data, "too_many_vertices"))
        buckets = self._buckets(publisher)
        costs = ((buckets.events, len(records), "events"), (buckets.vertices, vertices, "vertices"))
        for bucket, cost, what in costs:
            if cost > bucket.burst:
                why = [
                    f"(body): {cost} {what} in one request, over the {bucket.burst:g} "
                    "a publisher may send at once: split it"
                ]
                raise Refused(413, why, f"too_many_{what}", _rejections(why, data, f"too_many_{what}"))
        waits = [(bucket.wait(cost), bucket, what) for bucket, cost, what in costs]
        wait, bucket, what = max(waits, key=lambda w: w[0])
        if wait > 0:
            raise _Early(_too_many(f"(publisher): over {bucket.rate:g} {what}/s; retry later", wait))
        for bucket, cost, _ in costs:
            bucket.take(cost)

    async def _off_loop(self, size: int, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` inline for a small body, in a validation thread for a large one."""
        if size <= INLINE_BODY_BYTES:
            return work(*args)
        return await asyncio.get_running_loop().run_in_executor(self._validation, work, *args)

    async def _body(self, request: web.Request) -> tuple[Any, int]:
        """The decoded JSON body and its size; 413 too large, 400 not JSON or not an object/array."""
        if request.content_length is not None and request.content_length > self.limits.max_body:
            raise _Early(self._too_large())
        body = await request.read()
        try:
            data = await self._off_loop(len(body), orjson.loads, body)
        except orjson.JSONDecodeError as exc:
            rejection = Rejection(f"body is not JSON: {exc}", "body", "undecodable", snippet(body))
            raise Refused(400, [f"(body): not JSON ({exc})"], "undecodable", [rejection]) from None
        if not isinstance(data, dict | list) or data == []:
            raise Refused(400, ["(body): expected a JSON object or a non-empty array of objects"], "shape")
        return data, len(body)

    async def post_events(self, request: web.Request) -> web.StreamResponse:
        """Publish normalized events under the publisher's sources and kinds."""
        publisher = await self._admit(request)
        try:
            data, size = await self._body(request)
            records = data if isinstance(data, list) else [data]
            bound = self.limits.max_request_vertices
            vertices = 0
            for record in records:
                if vertices > bound:
                    break
                geometry = record.get("geometry") if isinstance(record, dict) else None
                vertices += count_vertices(geometry, bound - vertices)
            self._charge(publisher, data, records, vertices)
            events = await self._checked(data, size, partial(native_event, limits=self.event_limits))
            forbidden = [
                f"{i}/source: {e.source!r} is not a source of publisher {publisher.name!r}"
                for i, e in enumerate(events)
                if e.source not in publisher.sources
            ]
            forbidden += [
                f"{i}/id: must start with '{e.source}:'"
                for i, e in enumerate(events)
                if e.source in publisher.sources and not e.id.startswith(f"{e.source}:")
            ]
            if forbidden:
                raise Refused(
                    403, forbidden, "forbidden_source", _rejections(forbidden, data, "forbidden_source")
                )
            kinds = [
                f"{i}/kind: publisher {publisher.name!r} may not post {e.kind!r} events "
                f"(it may post {', '.join(publisher.kinds)})"
                for i, e in enumerate(events)
                if e.kind not in publisher.kinds
            ]
            if kinds:
                raise Refused(403, kinds[:100], "forbidden_kind", _rejections(kinds, data, "forbidden_kind"))
            return await self._publish(events, data, size)
        except Refused as exc:
            await self._dead_letter(publisher, "native", exc)
            raise

    async def post_port_calls(self, request: web.Request) -> web.StreamResponse:
        """Publish port-call timestamps as port_call events, with their delay versus the last time."""
        publisher = await self._admit(request)
        try:
            data, size = await self._body(request)
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
            records = data if isinstance(data, list) else [data]
            if "port_call" not in publisher.kinds:
                why = [
                    f"{i}/kind: publisher {publisher.name!r} may not post 'port_call' events; "
                    "port calls come from publishers added with --role port"
                    for i in range(min(len(records), 100))
                ]
                raise Refused(403, why, "forbidden_kind", _rejections(why, data, "forbidden_kind"))
            self._charge(publisher, data, records, len(records))  # one gate position each
            check = partial(_port_call, limits=self.event_limits)
            events = [_as_source(e, source) for e in await self._checked(data, size, check)]
            events = await self._with_delays(events)
            response = await self._publish(events, data, size)
            if response.status == 202:
                await self._remember(events)
            return response
        except Refused as exc:
            await self._dead_letter(publisher, "portcall", exc)
            raise

    async def _checked(self, data: Any, size: int, check: Callable[[Any], Event]) -> list[Event]:
        """The records validated once each (off the loop when large); 422 naming every problem."""
        many = isinstance(data, list)
        results = await self._off_loop(size, _problems, data if many else [data], many, check)
        found = [p for r in results if isinstance(r, list) for p in r]
        if found:
            raise Refused(422, found[:100], "schema", _rejections(found, data, "schema"))
        return [r for r in results if isinstance(r, Event)]

    def _encode(self, events: list[Event]) -> tuple[list[Message], list[tuple[int, RecordRefused]]]:
        messages: list[Message] = []
        refused: list[tuple[int, RecordRefused]] = []
        for i, event in enumerate(events):
            try:
                messages.append(self.publisher.encode_event(event))
            except RecordRefused as exc:
                refused.append((i, exc))
        return messages, refused

    async def _encoded(self, events: list[Event], data: Any, size: int) -> list[Message]:
        """Every event encoded before anything is sent: 413/422 naming those that cannot be."""
        messages, refused = await self._off_loop(size, self._encode, events)
        if refused:
            why = [f"{i}/(event) {exc.record_id}: {exc.error}" for i, exc in refused]
            status = 413 if any(isinstance(exc, RecordTooLarge) for _, exc in refused) else 422
            reason = refused[0][1].reason
            raise Refused(status, why[:100], reason, _rejections(why, data, reason))
        return messages

    async def _publish(self, events: list[Event], data: Any, size: int) -> web.Response:
        messages = await self._encoded(events, data, size)
        try:
            await self.publisher.send(self.publisher.settings.topic("events"), messages)
        except (KafkaError, OSError, TimeoutError) as exc:  # the broker is down or failed: retry
            log.warning("broker did not acknowledge %d events: %s", len(events), type(exc).__name__)
            return _unavailable(BROKER_DOWN)
        for (source, kind), count in Counter((e.source, e.kind) for e in events).items():
            metrics.events_in.labels(source, kind).inc(count)
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
        """Keep each port call's time for the next delay; the events are accepted whatever happens here."""
        try:
            for event in events:
                when = event_time(event)
                if when is not None:
                    await self.redis.set(self.estimates + event.id, when.isoformat(), ex=ESTIMATE_TTL_S)
        except redis.exceptions.RedisError as exc:
            log.warning("port-call times not kept (next delays may be off): %s", type(exc).__name__)

    async def _dead_letter(self, publisher: PublisherRecord, fmt: str, exc: Refused) -> None:
        if not exc.records:
            return
        try:
            await self.publisher.rejected(publisher.sources[0], fmt, exc.records)
        except Exception as error:  # the refusal stands even if the dead letter cannot be written
            log.warning("could not dead-letter %d records: %s", len(exc.records), type(error).__name__)


class _Early(Exception):
    """A ready response that ends the request without a dead letter (429, 413 by size)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _unavailable(error: str) -> web.Response:
    response = web.json_response({"errors": [error]}, status=503)
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def _too_many(error: str, wait: float) -> web.Response:
    response = web.json_response({"errors": [error]}, status=429)
    response.headers["Retry-After"] = str(max(1, round(wait + 0.5)))
    return response


def _rejections(errors: list[str], data: Any, reason: str) -> list[Rejection]:
    """One dead letter for the request body, listing its errors."""
    return [Rejection("; ".join(errors)[:2000], "request", reason, snippet(data))]


def _port_call(record: Any, limits: GeometryLimits) -> Event:
    """A port-call timestamp as its event, within the bounds every entry applies."""
    return admit(portcall_event(record), limits)


def _as_source(event: Event, source: str) -> Event:
    """A port-call event under the publisher's source: ``portcall:X`` becomes ``<source>:X``."""
    rest = event.id.split(":", 1)[1]
    return replace(event, id=f"{source}:{rest}", source=source)


YOUNG_GC_THRESHOLD = 20_000
"""Allocations between young collections: a request of 100 events allocates a few thousand
objects, which at Python's default (700) started several collections per request."""


def settle_collector() -> None:
    """Keep the collector off the start-up heap (frozen) and off every request's allocations.

    The collections that request bodies' allocations start would otherwise walk the whole heap of
    libraries and schemas again and again, in bursts that make the tail of the request latency
    (about a third of the p99 in `corridor bench api`).
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, middle, old)


async def run_api(api: PublishApi, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve the API on host:port until ``stop`` is set."""
    runner = web.AppRunner(api.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    settle_collector()
    log.info("publish api listening on http://%s:%d", host, port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
