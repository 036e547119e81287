"""A closure on a driver's route reaches its websocket; a closure 2 km away does not."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.support.drivers import DriverClient
from tests.support.facts import index_holds
from tests.support.geometry import line, lonlat
from tests.support.processes import Deployment

pytestmark = pytest.mark.e2e


def _routes_file(path: Path) -> Path:
    features = [
        {
            "type": "Feature",
            "geometry": {
                "type": "LineString",
                "coordinates": lonlat([(0, 0), (800, 0), (1600, 200)]),
            },
            "properties": {
                "route_id": "route-a",
                "driver_id": "driver-a",
                "vehicle": {"weight_t": 19, "height_m": 4.0},
            },
        },
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": lonlat([(0, 5000), (1500, 5000)])},
            "properties": {"route_id": "route-b", "driver_id": "driver-b", "vehicle": {}},
        },
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _event(event_id: str, geometry: dict[str, object]) -> str:
    return json.dumps(
        {
            "id": event_id,
            "source": "e2e",
            "kind": "closure",
            "geometry": geometry,
            "valid_from": None,
            "valid_until": None,
            "status": "active",
            "title": event_id,
        }
    )


async def test_closure_on_route_reaches_driver_within_10s(deployment: Deployment, tmp_path: Path) -> None:
    """Driver A gets the closure on its route within 10 s, none 2 km away; driver B gets nothing."""
    worker = deployment.start_worker()
    _, port = deployment.start_gateway()
    result = deployment.run("publish", "routes", str(_routes_file(tmp_path / "routes.geojson")))
    assert result.returncode == 0, result.stderr.decode()
    tokens = {
        d: deployment.run("token", "issue", "--driver", d).stdout.decode().strip()
        for d in ("driver-a", "driver-b")
    }
    events, markers = tmp_path / "events.jsonl", tmp_path / "markers.jsonl"
    events.write_text(
        _event("e2e:far", line([(800, 2000), (900, 2000)]))
        + "\n"
        + _event("e2e:near", line([(790, -50), (810, 50)]))
        + "\n"
    )
    async with (
        DriverClient(port, "driver-a", tokens["driver-a"]) as driver_a,
        DriverClient(port, "driver-b", tokens["driver-b"]) as driver_b,
    ):
        await index_holds(worker, routes=2)  # the closures are matched on the event side
        published = time.monotonic()
        result = await asyncio.to_thread(deployment.run, "publish", "events", str(events))
        assert result.returncode == 0, result.stderr.decode()
        message = await driver_a.wait_for(lambda a: a["event_id"] == "e2e:near", timeout=10.0)
        assert time.monotonic() - published < 10.0
        # a marker on each route, published after: an alert the closures caused would come first
        markers.write_text(
            _event("e2e:marker-a", line([(390, -50), (410, 50)]))
            + "\n"
            + _event("e2e:marker-b", line([(700, 4950), (700, 5050)]))
            + "\n"
        )
        result = await asyncio.to_thread(deployment.run, "publish", "events", str(markers))
        assert result.returncode == 0, result.stderr.decode()
        await driver_a.wait_for(lambda a: a["event_id"] == "e2e:marker-a", timeout=10.0)
        await driver_b.wait_for(lambda a: a["event_id"] == "e2e:marker-b", timeout=10.0)
    alert = message["alert"]
    assert alert["route_id"] == "route-a" and alert["state"] == "raised"
    assert alert["distance_ahead_m"] == pytest.approx(800, abs=5)
    assert [m["alert"]["event_id"] for m in driver_a.alerts] == ["e2e:near", "e2e:marker-a"]
    assert [m["alert"]["event_id"] for m in driver_b.alerts] == ["e2e:marker-b"]
