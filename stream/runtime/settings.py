"""Runtime configuration, read once from ``CORRIDOR_*`` environment variables."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from schemas.geometry import GeometryLimits


class ConfigError(RuntimeError):
    """Configuration is missing or wrong; the message says what to do."""


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None


def _env_count(env: Mapping[str, str], name: str, default: int) -> int:
    count = _env_int(env, name, default)
    if count < 1:
        raise ConfigError(f"{name}={count} must be at least 1")
    return count


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None


EMBEDDED_FETCH_WAIT_MS = 10
KAFKA_FETCH_WAIT_MS = 500


@dataclass(frozen=True)
class Settings:
    """Where the services are, how topics are named, and the knobs of each process."""

    state_dir: Path = field(default_factory=lambda: Path(".state"))
    kafka_url: str | None = None
    redis_url: str | None = None
    topic_prefix: str = "corridor"
    app_id: str = "corridor"
    partitions: int = 8
    # Partitions of ``<prefix>.events``: every worker matches every event (the broadcast), so more
    # only spread the fan-out's reading and stamping (~20 us an event), and each costs one produce
    # batch per publisher flush (see README, "Topics").
    event_partitions: int = 1
    corridor_m: float = 30.0
    metric_crs: str = "EPSG:2154"
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8765
    metrics_port: int = 0
    signing_key: str | None = None
    stream_maxlen: int = 1000
    broadcast_maxlen: int = 2000
    port_infrastructure: Path | None = None  # None: the bundled stream/data/port-infrastructure.geojson
    stream_retention_s: int = 86400
    fetch_wait_ms: int | None = None  # None: see ``fetch_wait``
    gateway_origins: tuple[str, ...] = ()
    gateway_max_connections_per_driver: int = 3
    gateway_queue_max: int = 256
    gateway_write_limit: int = 32768
    gateway_max_message_bytes: int = 4096
    gateway_ping_interval_s: float = 20.0
    gateway_ping_timeout_s: float = 20.0
    gateway_drain_s: float = 5.0
    event_max_vertices: int = 20_000
    event_max_extent_km: float = 60.0
    event_max_bytes: int = 900_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment (``CORRIDOR_*``), with the defaults of a laptop."""
        env = os.environ if environ is None else environ
        return cls(
            state_dir=Path(env.get("CORRIDOR_STATE_DIR") or ".state"),
            kafka_url=env.get("CORRIDOR_KAFKA_URL") or None,
            redis_url=env.get("CORRIDOR_REDIS_URL") or None,
            topic_prefix=env.get("CORRIDOR_TOPIC_PREFIX") or "corridor",
            app_id=env.get("CORRIDOR_APP_ID") or "corridor",
            partitions=_env_count(env, "CORRIDOR_PARTITIONS", 8),
            event_partitions=_env_count(env, "CORRIDOR_EVENT_PARTITIONS", 1),
            corridor_m=_env_float(env, "CORRIDOR_CORRIDOR_M", 30.0),
            metric_crs=env.get("CORRIDOR_METRIC_CRS") or "EPSG:2154",
            gateway_host=env.get("CORRIDOR_GATEWAY_HOST") or "127.0.0.1",
            gateway_port=_env_int(env, "CORRIDOR_GATEWAY_PORT", 8765),
            metrics_port=_env_int(env, "CORRIDOR_METRICS_PORT", 0),
            signing_key=env.get("CORRIDOR_SIGNING_KEY") or None,
            stream_maxlen=_env_int(env, "CORRIDOR_STREAM_MAXLEN", 1000),
            broadcast_maxlen=_env_int(env, "CORRIDOR_BROADCAST_MAXLEN", 2000),
            port_infrastructure=Path(env["CORRIDOR_PORT_INFRASTRUCTURE"])
            if env.get("CORRIDOR_PORT_INFRASTRUCTURE")
            else None,
            stream_retention_s=_env_int(env, "CORRIDOR_STREAM_RETENTION_S", 86400),
            fetch_wait_ms=_env_int(env, "CORRIDOR_FETCH_WAIT_MS", 0) or None,
            gateway_origins=tuple(
                o.strip() for o in (env.get("CORRIDOR_GATEWAY_ORIGINS") or "").split(",") if o.strip()
            ),
            gateway_max_connections_per_driver=_env_int(
                env, "CORRIDOR_GATEWAY_MAX_CONNECTIONS_PER_DRIVER", 3
            ),
            gateway_queue_max=_env_int(env, "CORRIDOR_GATEWAY_QUEUE_MAX", 256),
            gateway_write_limit=_env_int(env, "CORRIDOR_GATEWAY_WRITE_LIMIT", 32768),
            gateway_max_message_bytes=_env_int(env, "CORRIDOR_GATEWAY_MAX_MESSAGE_BYTES", 4096),
            gateway_ping_interval_s=_env_float(env, "CORRIDOR_GATEWAY_PING_INTERVAL_S", 20.0),
            gateway_ping_timeout_s=_env_float(env, "CORRIDOR_GATEWAY_PING_TIMEOUT_S", 20.0),
            gateway_drain_s=_env_float(env, "CORRIDOR_GATEWAY_DRAIN_S", 5.0),
            event_max_vertices=_env_int(env, "CORRIDOR_EVENT_MAX_VERTICES", 20_000),
            event_max_extent_km=_env_float(env, "CORRIDOR_EVENT_MAX_EXTENT_KM", 60.0),
            event_max_bytes=_env_int(env, "CORRIDOR_EVENT_MAX_BYTES", 900_000),
        )

    @property
    def fetch_wait(self) -> int:
        """Milliseconds a consumer's fetch may wait on the broker for new data
        (``CORRIDOR_FETCH_WAIT_MS``). Kafka answers a fetch as soon as data arrives, so the wait
        costs no latency there: 500. The embedded broker holds every fetch for its whole wait and
        answers with what was there when the fetch began, so each topic an event crosses adds 1.5
        waits on average: 10 (a shorter wait is no faster on 2 cores, where the broker's CPU is the
        limit; see ``faust_tuning`` and the README's event path)."""
        if self.fetch_wait_ms:
            return self.fetch_wait_ms
        return EMBEDDED_FETCH_WAIT_MS if self.kafka_url is None else KAFKA_FETCH_WAIT_MS

    @property
    def event_limits(self) -> GeometryLimits:
        """What one event's geometry may hold, at every entry."""
        return GeometryLimits(self.event_max_vertices, self.event_max_extent_km)

    def topic(self, name: str) -> str:
        """Full topic name, e.g. ``topic('events')`` -> ``corridor.events``."""
        return f"{self.topic_prefix}.{name}"

    @property
    def redis_prefix(self) -> str:
        """Prefix of every Redis key this deployment writes."""
        return self.topic_prefix

    def _embedded(self) -> dict[str, str]:
        path = self.state_dir / "services.json"
        try:
            data: dict[str, str] = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        return data

    def resolved_kafka_url(self) -> str:
        """The broker: ``CORRIDOR_KAFKA_URL``, else the embedded one started by ``services up``."""
        url = self.kafka_url or self._embedded().get("kafka_url")
        if not url:
            raise ConfigError(
                "no broker: set CORRIDOR_KAFKA_URL=kafka://host:9092, "
                "or start the embedded one with `corridor services up`"
            )
        return url

    def resolved_redis_url(self) -> str:
        """Redis: ``CORRIDOR_REDIS_URL``, else the embedded one started by ``services up``."""
        url = self.redis_url or self._embedded().get("redis_url")
        if not url:
            raise ConfigError(
                "no Redis: set CORRIDOR_REDIS_URL=redis://host:6379/0, "
                "or start the embedded one with `corridor services up`"
            )
        return url

    def bootstrap_servers(self) -> str:
        """The broker as aiokafka wants it (``host:port``, comma-separated)."""
        url = self.resolved_kafka_url()
        return ",".join(part.split("://", 1)[-1] for part in url.split(","))
