"""``corridor match``: files in, alerts as JSON lines out, bad lines named on stderr with exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from stream.cli import main
from stream.core.geo import unproject_xy

X0, Y0 = 652_000.0, 6_862_000.0


def lonlat(*xy: tuple[float, float]) -> list[list[float]]:
    """Local metres as lon/lat pairs."""
    arr = np.asarray(xy, dtype=float)
    lon, lat = unproject_xy(arr[:, 0] + X0, arr[:, 1] + Y0)
    return [[a, b] for a, b in zip(lon.tolist(), lat.tolist(), strict=True)]


def feature(rid: str, y: float, **props: Any) -> dict[str, Any]:
    """A 2 km eastbound route at local northing ``y``."""
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": lonlat((0, y), (1000, y), (2000, y))},
        "properties": {
            "route_id": rid,
            "driver_id": f"d-{rid}",
            "depart_at": "2026-01-06T08:00:00+01:00",
            **props,
        },
    }


def event(eid: str, x: float, y: float, **fields: Any) -> dict[str, Any]:
    """A closure point event in its JSON form."""
    return {
        "id": eid,
        "source": "test",
        "kind": "closure",
        "geometry": {"type": "Point", "coordinates": lonlat((x, y))[0]},
        "valid_from": None,
        "valid_until": None,
        "status": "active",
        **fields,
    }


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """Two routes 500 m apart and three events: near r1, near r2 only later in the day, far."""
    routes = tmp_path / "routes.geojson"
    routes.write_text(
        json.dumps({"type": "FeatureCollection", "features": [feature("r1", 0), feature("r2", 500)]})
    )
    events = tmp_path / "events.jsonl"
    lines = [
        event("e1", 1000, 10),
        event("e2", 1500, 520, valid_from="2026-01-06T12:00:00+01:00"),
        event("e3", 1000, 250),
    ]
    events.write_text("\n".join(json.dumps(e) for e in lines) + "\n")
    return routes, events


def run(*args: str) -> Any:
    """Invoke the CLI in-process."""
    return CliRunner().invoke(main, ["match", *args])


def alerts(stdout: str) -> list[dict[str, Any]]:
    """Parse JSON lines."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_alerts_as_json_lines(files: tuple[Path, Path]) -> None:
    """Without --at, each route's own travel window applies: e2 is not valid yet when r2 passes."""
    routes, events = files
    result = run("--routes", str(routes), "--events", str(events))
    assert result.exit_code == 0, result.output
    out = alerts(result.stdout)
    assert [(a["route_id"], a["event_id"], a["state"]) for a in out] == [("r1", "e1", "raised")]
    assert out[0]["distance_ahead_m"] == pytest.approx(1000, abs=1)
    assert out[0]["alert_id"].startswith("al-")


def test_at_evaluates_validity_then(files: tuple[Path, Path]) -> None:
    """With --at after e2 starts, e2 concerns r2."""
    routes, events = files
    result = run("--routes", str(routes), "--events", str(events), "--at", "2026-01-06T13:00:00+01:00")
    assert result.exit_code == 0, result.output
    assert {(a["route_id"], a["event_id"]) for a in alerts(result.stdout)} == {("r1", "e1"), ("r2", "e2")}


def test_corridor_width_option(files: tuple[Path, Path]) -> None:
    """A 300 m corridor also catches the event between the routes."""
    routes, events = files
    result = run("--routes", str(routes), "--events", str(events), "--corridor-m", "300")
    pairs = {(a["route_id"], a["event_id"]) for a in alerts(result.stdout)}
    assert {("r1", "e3"), ("r2", "e3")} <= pairs


def test_bad_lines_are_named_and_exit_2(files: tuple[Path, Path]) -> None:
    """Unreadable lines are reported with their line number; good ones are still matched."""
    routes, events = files
    text = events.read_text().splitlines()
    broken = [
        text[0],
        "{not json",
        json.dumps({"id": "x"}),
        json.dumps(event("e9", 0, 0, geometry={"type": "Point", "coordinates": []})),
    ]
    events.write_text("\n".join(broken) + "\n")
    result = run("--routes", str(routes), "--events", str(events))
    assert result.exit_code == 2
    errors = [json.loads(line) for line in result.stderr.splitlines()]
    assert [e["where"] for e in errors] == [f"{events}:2", f"{events}:3", f"{events}:4"]
    assert [a["event_id"] for a in alerts(result.stdout)] == ["e1"]


def test_bad_route_feature_is_named(tmp_path: Path, files: tuple[Path, Path]) -> None:
    """A route feature that is not a LineString is reported by index; the others still match."""
    _, events = files
    routes = tmp_path / "bad.geojson"
    bad = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.3, 48.8]}, "properties": {}}
    routes.write_text(json.dumps({"type": "FeatureCollection", "features": [bad, feature("r1", 0)]}))
    result = run("--routes", str(routes), "--events", str(events))
    assert result.exit_code == 2
    assert json.loads(result.stderr.splitlines()[0])["where"] == f"{routes}:feature 0"
    assert [a["event_id"] for a in alerts(result.stdout)] == ["e1"]


def test_unreadable_routes_file(tmp_path: Path, files: tuple[Path, Path]) -> None:
    """A routes file that is not GeoJSON is an error, not an empty result."""
    _, events = files
    routes = tmp_path / "routes.geojson"
    routes.write_text("not json")
    result = run("--routes", str(routes), "--events", str(events))
    assert result.exit_code == 1 and "cannot read routes" in result.output


def test_a_huge_zigzag_polygon_is_refused_alone(files: tuple[Path, Path], tmp_path: Path) -> None:
    """A 100,000-vertex zigzag polygon is refused by its vertex count (named, exit 2); the others match."""
    routes, events = files
    zigzag = [[2.35 + i * 1e-6, 48.85 + (i % 2) * 1e-4] for i in range(100_000)]
    huge = event("test:huge", 500, 0) | {
        "geometry": {"type": "Polygon", "coordinates": [[*zigzag, zigzag[0]]]}
    }
    events.write_text(events.read_text() + json.dumps(huge) + "\n")
    result = CliRunner().invoke(main, ["match", "--routes", str(routes), "--events", str(events)])
    assert result.exit_code == 2
    [refusal] = [json.loads(line) for line in result.stderr.splitlines()]
    assert refusal["where"].endswith("events.jsonl:4") and "over" in refusal["error"]
    assert any(json.loads(line)["route_id"] == "r1" for line in result.stdout.splitlines())
