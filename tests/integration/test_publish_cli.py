"""``corridor publish``: each record judged alone; bad ones reported by line, good ones published."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from tests.support.geometry import lonlat, point
from tests.support.kafka import read_topic
from tests.support.processes import Deployment


def _event(event_id: str, **changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": event_id,
        "source": "cli",
        "kind": "closure",
        "geometry": point(10, 10),
        "valid_from": None,
        "valid_until": None,
        "status": "active",
    }
    record.update(changes)
    return record


async def test_publish_events_refuses_bad_lines_and_sends_the_rest(
    deployment: Deployment, tmp_path: Path
) -> None:
    """A file with a bad time zone, a vertex at 0,0 and junk between good events: exit 2, each bad
    line named on stderr with its reason, the good events on the topic."""
    lines = [
        orjson.dumps(_event("cli:1")),
        orjson.dumps(_event("cli:tz", schedule={"monday": ["08:00-09:00"]}, timezone="Mars/Olympus")),
        b"",
        orjson.dumps(
            _event("cli:null", geometry={"type": "LineString", "coordinates": [*lonlat([(0, 0)]), [0, 0]]})
        ),
        b"{not json",
        orjson.dumps(_event("cli:2")),
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = deployment.run("publish", "events", str(path))
    assert result.returncode == 2, result.stderr.decode()
    assert json.loads(result.stdout) == {"published": 2, "refused": 3}
    refused = [json.loads(line) for line in result.stderr.decode().splitlines()]
    assert [(r["where"].rsplit(":", 1)[1], r["reason"]) for r in refused] == [
        ("2", "bad_timezone"),
        ("4", "null_position"),
        ("5", "undecodable"),
    ]
    sent = await read_topic(deployment.settings, "events", 2)
    assert sorted(e["id"] for e in sent) == ["cli:1", "cli:2"]


async def test_publish_routes_refuses_a_bad_feature_and_registers_the_rest(
    deployment: Deployment, tmp_path: Path
) -> None:
    """A route with one position among good ones: exit 2, the feature named, the good one sent."""
    good = {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": lonlat([(0, 0), (500, 0)])},
        "properties": {"route_id": "cli-r1", "driver_id": "cli-d1"},
    }
    bad = {**good, "geometry": {"type": "LineString", "coordinates": lonlat([(0, 0)])}}
    path = tmp_path / "routes.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [bad, good]}))
    result = deployment.run("publish", "routes", str(path))
    assert result.returncode == 2, result.stderr.decode()
    [refused] = [json.loads(line) for line in result.stderr.decode().splitlines()]
    assert refused["where"].endswith("features[0]") and refused["reason"] == "invalid_geometry"
    [message] = await read_topic(deployment.settings, "routes", 1)
    assert message["route_id"] == "cli-r1"
