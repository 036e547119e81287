"""Prometheus metrics of every Corridor process (``corridor_`` prefix), and their endpoint.

Each process serves its own registry on its own port (``CORRIDOR_METRICS_PORT``): workers and
gateways are single processes, so no multiprocess mode is needed. A server that forks (e.g. the
publish API under a pre-fork server) sets ``PROMETHEUS_MULTIPROC_DIR`` and ``serve`` then
aggregates its children's files.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

if TYPE_CHECKING:  # the gateway imports these metrics: no numba and numpy (~77 MB) for a type
    from stream.core.wire import WireAlerts

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TOP_EVENTS = 10
PUBLISHER_ENDPOINTS = ("events", "portcalls")
PUBLISHER_STATUSES = ("2xx", "4xx", "5xx")

# The stages of an event's way through a worker whose CPU ``stage`` measures (synchronous code
# only: what runs while a stage awaits, such as Faust's consumer thread and the sockets, is not in
# any stage). ``corridor bench pipeline`` divides them by the events of a run.
STAGES = (
    "decode_events",  # fan_out_events: reading corridor.events (envelopes or single events)
    "stamp_events",  # fan_out_events: stamping, encoding and packing the fan-out's envelopes
    "decode_copies",  # match_events: recognising copies, decoding the stamped events
    "match",  # match_events: the engine, and encoding its transitions (ids, marks, JSON)
    "store_alerts",  # publish_alerts: preparing the Redis script calls
    "publish_alerts",  # publish_alerts: counting and packing the alerts topic's envelopes
)
stage_cpu = Counter(
    "corridor_stage_cpu_seconds_total",
    "CPU seconds of the worker's main thread in each stage of the event path (synchronous work).",
    ["stage"],
)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Count the CPU time of the thread inside the block towards ``name`` (one of ``STAGES``);
    the block must not await, or another task's time would count too."""
    started = time.thread_time()
    try:
        yield
    finally:
        stage_cpu.labels(name).inc(time.thread_time() - started)


events_in = Counter(
    "corridor_events_in_total",
    "Events accepted into the stream, by source and kind.",
    ["source", "kind"],
)
events_rejected = Counter(
    "corridor_events_rejected_total",
    "Records refused by a parser or validator, by source and reason.",
    ["source", "reason"],
)
active_routes = Gauge("corridor_active_routes", "Routes currently active in this worker's index.")
active_events = Gauge("corridor_active_events", "Events currently active in this worker's index.")
alerts_emitted = Counter(
    "corridor_alerts_total",
    "Alert transitions emitted by the matcher, by event kind and state.",
    ["kind", "state"],
)
matches = Counter(
    "corridor_matches_total",
    "Route-event pairs the matcher found concerned (raised or updated), by side of the join and kind.",
    ["side", "kind"],
)
match_batch_seconds = Histogram(
    "corridor_match_batch_seconds",
    "Time to match one batch of events or routes.",
    ["side"],
    buckets=LATENCY_BUCKETS,
)
for _side in ("events", "routes"):  # both series exist from the start, so their rates do too
    match_batch_seconds.labels(_side)
messages_processed = Counter(
    "corridor_messages_processed_total",
    "Messages taken from a topic by this worker's agents.",
    ["topic"],
)
consumer_lag = Gauge(
    "corridor_consumer_lag",
    "Messages not yet committed by this worker: partition highwater minus committed offset.",
    ["topic", "partition"],
)
drivers_affected = Gauge(
    "corridor_drivers_affected",
    "Distinct drivers with at least one raised alert on the routes this worker holds.",
)
event_routes_affected = Gauge(
    "corridor_event_routes_affected",
    f"Routes an event concerns in this worker, for its {TOP_EVENTS} events concerning the most routes.",
    ["event_id"],
)
alerts_stored = Counter(
    "corridor_alerts_stored_total",
    "Alerts appended to driver streams, by state (after dedupe).",
    ["state"],
)
alerts_deduplicated = Counter(
    "corridor_alerts_deduplicated_total",
    "Alert transitions dropped as already delivered.",
)
publisher_requests = Counter(
    "corridor_publisher_requests_total",
    "Requests to the publisher API, by endpoint and status class (2xx, 4xx, 5xx).",
    ["endpoint", "status"],
)
connected_drivers = Gauge("corridor_connected_drivers", "Driver websocket connections open.")
alerts_sent = Counter("corridor_alerts_sent_total", "Alerts written to driver websockets.")
resumes = Counter("corridor_resumes_total", "Driver connections that resumed from a last id.")
refusals = Counter(
    "corridor_connection_refusals_total",
    "Driver connections refused, by reason.",
    ["reason"],
)
delivery_seconds = Histogram(
    "corridor_delivery_seconds",
    "Alert appended to Redis until written on the driver's socket.",
    buckets=LATENCY_BUCKETS,
)
end_to_end_seconds = Histogram(
    "corridor_end_to_end_seconds",
    "Event received by Corridor until its alert is on a socket.",
    buckets=LATENCY_BUCKETS,
)

# Every endpoint and status class exists from the start: the rate panel reads 0, not "No data".
for _endpoint in PUBLISHER_ENDPOINTS:
    for _status in PUBLISHER_STATUSES:
        publisher_requests.labels(_endpoint, _status)

_lag_labels: set[tuple[str, str]] = set()
_top_events: set[str] = set()


def count_publisher_request(endpoint: str, status_code: int) -> None:
    """Count one publisher API request under its status class."""
    publisher_requests.labels(endpoint, f"{status_code // 100}xx").inc()


@lru_cache(maxsize=4096)
def epoch_of(text: bytes) -> float:
    """An ISO 8601 time with its offset as epoch seconds (0.0 when it is not one). Cached: an event's
    alerts share its times, and so do the alerts of one batch."""
    try:
        parsed = datetime.fromisoformat(text.decode().replace("Z", "+00:00"))
    except (ValueError, UnicodeDecodeError):
        return 0.0
    return parsed.timestamp() if parsed.tzinfo is not None else 0.0


def count_matches(side: str, alerts: WireAlerts) -> None:
    """Count the raised and updated alerts of one match batch by event kind."""
    for (kind, state), count in alerts.counts().items():
        if state != "cleared":
            matches.labels(side, kind).inc(count)


def set_consumer_lag(lags: Mapping[tuple[str, int], int]) -> None:
    """Publish the lag of each assigned (topic, partition); forget partitions no longer assigned."""
    current = {(topic, str(partition)) for topic, partition in lags}
    for gone in _lag_labels - current:
        consumer_lag.remove(*gone)
    for (topic, partition), lag in lags.items():
        consumer_lag.labels(topic, str(partition)).set(max(0, lag))
    _lag_labels.clear()
    _lag_labels.update(current)


def set_affected(routes_by_event: Mapping[str, int], drivers: int) -> None:
    """Publish the drivers affected and the top events by routes concerned (bounded label set)."""
    drivers_affected.set(drivers)
    top = sorted(routes_by_event.items(), key=lambda item: (-item[1], item[0]))[:TOP_EVENTS]
    keep = {event_id for event_id, _ in top}
    for gone in _top_events - keep:
        event_routes_affected.remove(gone)
    for event_id, count in top:
        event_routes_affected.labels(event_id).set(count)
    _top_events.clear()
    _top_events.update(keep)


feed_records = Counter(
    "corridor_feed_records_total",
    "Records read by a feed process (poller, AIS listener, file import), by feed and result.",
    ["source", "result"],
)


def serve(port: int, health: Callable[[], tuple[bool, bytes]] | None = None) -> None:
    """Expose /metrics on ``port`` (0: do not serve), and ``/healthz`` when ``health`` is given
    (200 or 503 with its JSON body)."""
    if not port:
        return
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess  # noqa: PLC0415 - only for pre-fork servers

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if health is None or environ.get("PATH_INFO") != "/healthz":
            result: Iterable[bytes] = metrics_app(environ, start_response)
            return result
        try:
            ok, body = health()
        except Exception as exc:  # noqa: BLE001 - a failing check is an unhealthy answer, not a crash
            ok, body = (
                False,
                b'{"status":"unhealthy","problems":["health check failed: %s"]}'
                % (type(exc).__name__.encode()),
            )
        start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
        return [body]

    server = make_server("0.0.0.0", port, app, ThreadingWSGIServer, handler_class=_QuietHandler)  # noqa: S104
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()


class _QuietHandler(WSGIRequestHandler):
    """Scrapes are not logged (one line per scrape would drown the process's own logs)."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Say nothing."""


# --- Driver gateway: delivery, back-pressure, wake-ups and pauses --------------------------------
created_to_sent_seconds = Histogram(
    "corridor_alert_created_to_sent_seconds",
    "Alert created by the matcher (its created_at) until written on the driver's socket.",
    buckets=LATENCY_BUCKETS,
)
queue_overflows = Counter(
    "corridor_gateway_queue_overflows_total",
    "Connections cut off (close 4408, resume from last id) because their send queue was full.",
)
gateway_disconnects = Counter(
    "corridor_gateway_disconnects_total",
    "Driver connections ended, by reason (client, too_slow, heartbeat, shutdown, error).",
    ["reason"],
)
gateway_wakeups = Counter(
    "corridor_gateway_wakeups_total",
    "Wake-up messages received from Redis (one per outbox call, carrying what it appended).",
)
gateway_live_alerts = Counter(
    "corridor_gateway_live_alerts_total",
    "Alerts written to drivers straight from wake-up messages (the rest are read from their streams).",
)
gateway_stream_reads = Counter(
    "corridor_gateway_stream_reads_total",
    "XREAD round trips to Redis; each reads many woken driver streams at once.",
)
gateway_streams_per_read = Histogram(
    "corridor_gateway_streams_per_read",
    "Driver streams read in one XREAD round trip (how well wake-ups coalesce).",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
)
gc_pause_seconds = Histogram(
    "corridor_gc_pause_seconds",
    "Python garbage-collection pauses of this process, by generation (2 = full collection).",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
gc_freezes = Counter(
    "corridor_gc_freezes_total",
    "gc.freeze() calls that moved settled long-lived objects (a gateway's connections, a worker's index) "
    "out of the collector's scans.",
)
gateway_task_restarts = Counter(
    "corridor_gateway_task_restarts_total",
    "Restarts of a gateway loop (reader, wakeups) after an unexpected error; /healthz is 503 until it "
    "works again.",
    ["task"],
)
gateway_bad_records = Counter(
    "corridor_gateway_bad_records_total",
    "Records the gateway skipped because they cannot be read (stream_entry, wakeup, route, event, "
    "position, scene): the others are still served.",
    ["kind"],
)
for _task in ("reader", "wakeups"):  # both series exist from the start, so their rates do too
    gateway_task_restarts.labels(_task)
agent_crashes = Counter(
    "corridor_agent_crashes_total",
    "Worker agents that raised and were restarted, by agent (the worker's /healthz shows the last error).",
    ["agent"],
)
records_quarantined = Counter(
    "corridor_records_quarantined_total",
    "Stored events and routes moved out of the worker's Redis state because they cannot be used "
    "(unreadable, or refused by the engine): rebuilds never read them again.",
    ["kind"],
)
