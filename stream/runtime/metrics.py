"""Prometheus metrics of every Corridor process (``corridor_`` prefix), and their endpoint."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

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
match_batch_seconds = Histogram(
    "corridor_match_batch_seconds",
    "Time to match one batch of events or routes.",
    ["side"],
    buckets=LATENCY_BUCKETS,
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


def serve(port: int) -> None:
    """Expose /metrics on ``port`` (0: do not serve)."""
    if port:
        start_http_server(port, addr="0.0.0.0")  # noqa: S104 - scraped from other hosts
