"""Dashboards, provisioning, scrape config, docker-compose.yml and Dockerfile hold together."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from stream.runtime import metrics

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "dashboards" / "grafana"
BOARDS = sorted(GRAFANA.glob("*.json"))
COMPOSE = ROOT / "docker-compose.yml"
METRIC = re.compile(r"\bcorridor_[a-z_]+")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _board(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _datasource_uid() -> str:
    uids = [d["uid"] for d in _yaml(GRAFANA / "provisioning/datasources/prometheus.yml")["datasources"]]
    assert len(uids) == 1
    return str(uids[0])


def _exported() -> dict[str, tuple[str, str]]:
    """Every series name Corridor's registry can export -> (type, help), from its collectors."""
    names: dict[str, tuple[str, str]] = {}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    for family in REGISTRY.collect():
        if family.name.startswith("corridor_"):
            for suffix in suffixes[family.type]:
                names[family.name + suffix] = (family.type, family.documentation)
    return names


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _yaml(COMPOSE)["services"]
    return services


def test_metrics_module_defines_the_metrics_the_issue_lists() -> None:
    """Every metric family of stream/runtime/metrics.py is registered, prefixed, and has a help text."""
    exported = _exported()
    for name in (
        "corridor_events_in_total",
        "corridor_events_rejected_total",
        "corridor_consumer_lag",
        "corridor_messages_processed_total",
        "corridor_matches_total",
        "corridor_drivers_affected",
        "corridor_event_routes_affected",
        "corridor_end_to_end_seconds_bucket",
        "corridor_publisher_requests_total",
        "corridor_connected_drivers",
        "corridor_resumes_total",
    ):
        assert name in exported, name
    assert all(help_text.strip() for _, help_text in exported.values())
    assert metrics.TOP_EVENTS <= 20  # the event_id label stays bounded


def test_publisher_requests_exist_before_the_first_request() -> None:
    """Every endpoint and status class is exported at 0 from the start, so its panel shows data."""
    samples = {
        (s.labels["endpoint"], s.labels["status"])
        for family in REGISTRY.collect()
        if family.name == "corridor_publisher_requests"
        for s in family.samples
        if s.name.endswith("_total")
    }
    assert samples == {(e, s) for e in metrics.PUBLISHER_ENDPOINTS for s in metrics.PUBLISHER_STATUSES}


def test_event_routes_affected_keeps_only_the_top_events() -> None:
    """The per-event gauge keeps the top N events and drops the label of an event that leaves it."""
    many = {f"ev-{i:02d}": i for i in range(metrics.TOP_EVENTS + 5)}
    metrics.set_affected(many, 3)
    labelled = {
        s.labels["event_id"]
        for family in REGISTRY.collect()
        if family.name == "corridor_event_routes_affected"
        for s in family.samples
    }
    assert labelled == {f"ev-{i:02d}" for i in range(5, metrics.TOP_EVENTS + 5)}
    metrics.set_affected({"ev-00": 1}, 1)
    assert REGISTRY.get_sample_value("corridor_event_routes_affected", {"event_id": "ev-14"}) is None
    assert REGISTRY.get_sample_value("corridor_event_routes_affected", {"event_id": "ev-00"}) == 1
    assert REGISTRY.get_sample_value("corridor_drivers_affected") == 1


def test_consumer_lag_forgets_revoked_partitions() -> None:
    """Lag is set per topic and partition, and a partition no longer assigned disappears."""
    metrics.set_consumer_lag({("c.events", 0): 5, ("c.events", 1): 0})
    assert REGISTRY.get_sample_value("corridor_consumer_lag", {"topic": "c.events", "partition": "0"}) == 5
    metrics.set_consumer_lag({("c.events", 1): 2})
    assert REGISTRY.get_sample_value("corridor_consumer_lag", {"topic": "c.events", "partition": "0"}) is None
    assert REGISTRY.get_sample_value("corridor_consumer_lag", {"topic": "c.events", "partition": "1"}) == 2


def test_end_to_end_latency_is_read_from_the_alert() -> None:
    """An alert sent to a driver carrying event_received_at is observed; one without it is not;
    a title quoting the key is not taken for it."""
    from stream.gateway.hub import _framed, _observe_sent

    before = REGISTRY.get_sample_value("corridor_end_to_end_seconds_count") or 0
    received = (
        b'{"alert_id":"a","title":"\\"event_received_at\\":\\"x",'
        b'"event_received_at":"2026-01-01T00:00:00+00:00"}'
    )
    quoted = b'{"alert_id":"b","title":"\\"event_received_at\\":\\"2026-01-01T00:00:00+00:00"}'
    sent = b"1767225600000-0"  # appended when the event was received
    entries = [_framed(sent, sent.decode(), received), _framed(sent, sent.decode(), quoted)]
    _observe_sent(entries, now=1767225600.4)
    assert REGISTRY.get_sample_value("corridor_end_to_end_seconds_count") == before + 1
    le = {"le": "0.5"}
    assert (REGISTRY.get_sample_value("corridor_end_to_end_seconds_bucket", le) or 0) >= 1


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    """Unique panel ids, the provisioned datasource everywhere, units, thresholds, env and instance."""
    board = _board(path)
    assert board["schemaVersion"] >= 39 and board["uid"] and board["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), ids
    uid = _datasource_uid()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert {"env", "instance"} <= set(variables)
    assert all(v["datasource"]["uid"] == uid for v in variables.values())
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["unit"] in {"ops", "reqps", "s", "short", "opm"}, panel["title"]
        assert defaults["thresholds"]["steps"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]
            assert '$env"' in target["expr"] and '$instance"' in target["expr"], target["expr"]


def test_dashboards_have_distinct_uids_and_cover_the_issue() -> None:
    """Two boards, Dispatch and Operations, with distinct uids and the panels dispatchers asked for."""
    boards = {_board(p)["title"]: _board(p) for p in BOARDS}
    assert set(boards) == {"Corridor / Dispatch", "Corridor / Operations"}
    assert len({b["uid"] for b in boards.values()}) == 2
    dispatch = " ".join(p["title"] for p in boards["Corridor / Dispatch"]["panels"]).lower()
    for words in (
        "alerts raised per minute by kind",
        "drivers affected",
        "most routes",
        "p50 / p99",
        "connected",
    ):
        assert words in dispatch, words
    operations = " ".join(p["title"] for p in boards["Corridor / Operations"]["panels"]).lower()
    for words in ("ingest", "rejections", "consumer lag", "throughput", "gateway"):
        assert words in operations, words


def test_every_metric_a_panel_uses_exists_in_the_code() -> None:
    """Each corridor_* series named in a panel query is exported by the metrics registry."""
    exported = _exported()
    used = {
        m
        for path in BOARDS
        for p in _board(path)["panels"]
        for t in p["targets"]
        for m in METRIC.findall(t["expr"])
    }
    assert used and used <= set(exported), sorted(used - set(exported))


def test_every_metric_is_documented_in_the_readme() -> None:
    """The README's metrics table names every metric family of the registry."""
    readme = (ROOT / "README.md").read_text()
    families = {
        re.sub(r"_(bucket|sum|count)$", "", n) for n, (kind, _) in _exported().items() if kind == "histogram"
    }
    families |= {n for n, (kind, _) in _exported().items() if kind != "histogram"}
    missing = [name for name in sorted(families) if f"`{name}`" not in readme]
    assert not missing, missing


def test_grafana_provisioning_points_at_the_mounted_dashboards() -> None:
    """The dashboard provider's path is where compose mounts the JSON files; the datasource is Prometheus."""
    provider = _yaml(GRAFANA / "provisioning/dashboards/corridor.yml")["providers"][0]
    datasource = _yaml(GRAFANA / "provisioning/datasources/prometheus.yml")["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    mounts = dict(v.split(":")[:2] for v in _services()["grafana"]["volumes"] if v.startswith("./"))
    for board in BOARDS:
        host = f"./{board.relative_to(ROOT)}"
        assert mounts[host] == f"{provider['options']['path']}/{board.name}"
    assert mounts["./dashboards/grafana/provisioning/datasources"] == "/etc/grafana/provisioning/datasources"
    assert mounts["./dashboards/grafana/provisioning/dashboards"] == "/etc/grafana/provisioning/dashboards"


def test_prometheus_scrapes_every_corridor_service_on_its_metrics_port() -> None:
    """Scrape targets are compose services on CORRIDOR_METRICS_PORT; the jobs the panels name exist."""
    config = _yaml(ROOT / "dashboards/prometheus/prometheus.yml")
    services = _services()
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    scraped = set()
    for name, job in jobs.items():
        if not name.startswith("corridor-"):
            continue
        for group in job["static_configs"]:
            assert group["labels"]["env"]
            for target in group["targets"]:
                host, port = target.split(":")
                assert host in services, target
                assert services[host]["environment"]["CORRIDOR_METRICS_PORT"] == port, target
                scraped.add(host)
    corridor = {name for name, s in services.items() if "build" in s}
    assert corridor == scraped
    exprs = " ".join(t["expr"] for path in BOARDS for p in _board(path)["panels"] for t in p["targets"])
    assert set(re.findall(r'job="([^"]+)"', exprs)) <= set(jobs)


def test_compose_file_runs_the_real_thing() -> None:
    """Kafka KRaft, Redis, two workers, a gateway, a CIFS poller, Prometheus and Grafana, all supervised."""
    services = _services()
    assert {"kafka", "redis", "worker-1", "worker-2", "gateway", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["redis"]["image"].startswith("redis:7")
    for name in ("kafka", "redis", "gateway", "worker-1", "worker-2"):
        assert services[name]["healthcheck"]["test"], name
    corridor = {name: s for name, s in services.items() if "build" in s}
    assert [s["command"][0] for s in corridor.values()].count("worker") == 2
    assert any(s["command"][:4] == ["feed", "poll", "--format", "cifs"] for s in corridor.values())
    for name, service in corridor.items():
        env = service["environment"]
        assert env["CORRIDOR_KAFKA_URL"].startswith("kafka://kafka:"), name
        assert env["CORRIDOR_REDIS_URL"].startswith("redis://redis:"), name
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy", name


def test_compose_bind_mounts_exist_in_the_repository() -> None:
    """Every host path mounted into a container exists in the repository."""
    mounted = [
        volume.split(":")[0]
        for service in _services().values()
        for volume in service.get("volumes", [])
        if volume.startswith(("./", "/"))
    ]
    assert mounted
    for host in mounted:
        assert (ROOT / host).resolve().exists(), host


def test_dockerfile_installs_corridor_as_a_non_root_user() -> None:
    """python:3.11-slim, pip install of the package, a non-root user, corridor as the entrypoint."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.MULTILINE)
    assert "pip install ." in dockerfile
    user = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user and user[-1] not in {"root", "0"}
    assert re.search(r'^ENTRYPOINT \["corridor"\]', dockerfile, re.MULTILINE)
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), path
