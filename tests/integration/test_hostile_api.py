"""Hostile requests to a `corridor api` process: each gets its status and JSON error, the API goes on."""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession

from stream.local.services import EmbeddedServices, free_port
from stream.local.supervisor import Proc
from tests.support.kafka import read_topic
from tests.support.processes import Deployment, wait_until

START = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)


def _event(event_id: str, source: str = "havre", **changes: Any) -> dict[str, Any]:
    event = {
        "id": event_id,
        "source": source,
        "kind": "roadworks",
        "geometry": {"type": "LineString", "coordinates": [[0.12, 49.47], [0.13, 49.47]]},
        "valid_from": START.isoformat(),
        "valid_until": (START + timedelta(hours=4)).isoformat(),
        "status": "active",
        "title": "one lane",
    }
    event.update(changes)
    return event


def _polygon(event_id: str, vertices: int) -> dict[str, Any]:
    """A perimeter with a ring of ``vertices`` positions (a small circle, short numbers)."""
    ring = [
        [
            round(0.1 + 0.01 * math.cos(2 * math.pi * i / vertices), 5),
            round(49.4 + 0.01 * math.sin(2 * math.pi * i / vertices), 5),
        ]
        for i in range(vertices - 1)
    ]
    return _event(event_id, kind="perimeter", geometry={"type": "Polygon", "coordinates": [[*ring, ring[0]]]})


def _port_call() -> dict[str, Any]:
    return {
        "portCallID": "PC-2030-0042",
        "UNLocationCode": "FRLEH",
        "vesselIMONumber": "9454448",
        "portCallServiceTypeCode": "BERTH",
        "portCallServiceEventTypeCode": "ARRI",
        "classifierCode": "EST",
        "dateTime": START.isoformat(),
        "terminal": {"terminalID": "FRLEH-TDF", "gatePosition": [0.108, 49.468]},
    }


class ApiProcess:
    """A `corridor api` process, its publishers' credentials and an HTTP session to it."""

    def __init__(self, deployment: Deployment, proc: Proc, port: int, session: ClientSession) -> None:
        self.deployment, self.proc, self.session = deployment, proc, session
        self.url = f"http://127.0.0.1:{port}"
        self.pid = proc.popen.pid
        self.credentials: dict[str, str] = {}

    async def add(self, name: str, *options: str) -> str:
        """`corridor publisher add NAME --source NAME OPTIONS`; its credential."""
        done = await asyncio.to_thread(
            self.deployment.run, "publisher", "add", name, "--source", name, *options
        )
        assert done.returncode == 0, done.stderr
        self.credentials[name] = done.stdout.decode().strip()
        return self.credentials[name]

    async def post(self, path: str, body: Any, publisher: str = "havre", raw: bytes | None = None) -> Any:
        """(status, JSON body, headers) of a POST by ``publisher``."""
        headers = {"Authorization": f"Bearer {self.credentials[publisher]}"}
        data = io.BytesIO(raw if raw is not None else orjson.dumps(body))
        async with self.session.post(self.url + path, data=data, headers=headers) as response:
            return response.status, await response.json(), response.headers

    async def health(self) -> tuple[int, Any]:
        """(status, JSON body) of /healthz."""
        async with self.session.get(self.url + "/healthz") as response:
            return response.status, await response.json()

    async def still_serving(self) -> None:
        """The same process accepts a good event right after, and /healthz says 200."""
        good = f"havre:good-{uuid.uuid4().hex[:8]}"
        status, body, _ = await self.post("/v1/events", _event(good))
        assert (status, body) == (202, {"accepted": [good]})
        assert (await self.health())[0] == 200
        assert self.proc.popen.poll() is None and self.proc.popen.pid == self.pid

    async def dead_letters(self, count: int) -> list[Any]:
        """The first ``count`` dead letters of this deployment."""
        return await read_topic(self.deployment.settings, "events.rejected", count)


async def _start(deployment: Deployment, env: dict[str, str] | None = None) -> AsyncIterator[ApiProcess]:
    port = free_port()
    proc = deployment.start("api", "api", "--port", str(port), extra_env=env)

    def listening() -> bool:
        proc.check_alive()
        return "listening" in proc.output()

    await asyncio.to_thread(wait_until, listening, 30, "the api to listen")
    async with ClientSession() as session:
        api = ApiProcess(deployment, proc, port, session)
        await api.add("havre")
        yield api


@pytest.fixture
async def api(deployment: Deployment) -> AsyncIterator[ApiProcess]:
    """`corridor api` on the test deployment, with a city publisher ``havre``."""
    async for value in _start(deployment):
        yield value


async def _raw(api: ApiProcess, authorization: bytes) -> tuple[int, bytes]:
    """A POST whose Authorization header carries these exact bytes; (status, body)."""
    host, port = api.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = orjson.dumps(_event("havre:raw"))
    writer.write(
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
        b"Authorization: "
        + authorization
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), payload


async def test_odd_credentials_are_401_json(api: ApiProcess) -> None:
    """Non-UTF-8, non-ASCII, oversized or malformed credentials get 401 JSON, never a 500 or a trace."""
    key_id = api.credentials["havre"].split(".")[1]
    for authorization in (
        b"Bearer cpk." + key_id.encode() + b".\xff\xfe\x80secret",
        b"Bearer cpk." + key_id.encode() + "s\u00e9cret".encode(),
        b"Bearer cpk.\xc3\xa9t\xc3\xa9.secret",
        b"Bearer cpk." + key_id.encode() + b"." + b"a" * 600,
        b"Bearer " + b"x" * 4000,
        b"Bearer cpk..",
        b"Bearer cpk." + key_id.encode() + b".a.b",
    ):
        status, payload = await _raw(api, authorization)
        assert status == 401, (authorization[:40], payload)
        assert json.loads(payload)["errors"][0].startswith("Authorization") and b"Traceback" not in payload
    await api.still_serving()


async def test_details_nested_too_deep_is_422_not_503(api: ApiProcess) -> None:
    """An event whose details nest 255 deep is refused for good (422 naming it) and dead-lettered, not 503."""
    deep = b'{"a":' * 254 + b"{}" + b"}" * 254  # our client's encoder refuses it too: sent as bytes
    ok = orjson.dumps(_event("havre:ok"))
    hostile = orjson.dumps(_event("havre:deep", details={})).replace(b'"details":{}', b'"details":' + deep)
    status, body, _ = await api.post("/v1/events", None, raw=b"[" + ok + b"," + hostile + b"]")
    assert status == 422 and body["errors"][0].startswith("1/"), body
    (letter,) = await api.dead_letters(1)
    assert letter["source"] == "havre" and letter["reason"] != "" and letter["error"].startswith("1/")
    await api.still_serving()


async def test_event_over_a_broker_message_is_413_and_dead_lettered(deployment: Deployment) -> None:
    """Bodies allowed past 1 MiB: an event over a broker message is 413 naming it, dead-lettered, unsent."""
    async for api in _start(deployment, {"CORRIDOR_API_MAX_BODY_BYTES": "3000000"}):
        details = {f"k{i}": "x" * 750 for i in range(1_900)}  # 1.4 MB, within every per-item bound
        status, body, _ = await api.post(
            "/v1/events", [_event("havre:ok"), _event("havre:big", details=details)]
        )
        assert status == 413, body
        assert body["errors"][0].startswith("1/(event) havre:big: encoded message is")
        assert "1048576 byte limit" in body["errors"][0]
        (letter,) = await api.dead_letters(1)
        assert letter["reason"] == "too_large" and "havre:big" in letter["error"]
        await api.still_serving()
        arrived = await read_topic(deployment.settings, "events", 1)
        assert [e["id"] for e in arrived] == [e["id"] for e in arrived if e["id"].startswith("havre:good-")]


async def test_too_many_vertices_in_one_request_is_413_before_validation(api: ApiProcess) -> None:
    """A request over the per-request vertex bound is refused at once (413 naming it), dead-lettered."""
    body = [_polygon(f"havre:p{i}", 13_000) for i in range(4)]  # 52,000 vertices
    started = time.perf_counter()
    status, answer, _ = await api.post("/v1/events", body)
    took = time.perf_counter() - started
    assert status == 413 and "over 50000 vertices" in answer["errors"][0], answer
    assert took < 1.0, f"refused after {took:.2f} s: it was validated first"
    (letter,) = await api.dead_letters(1)
    assert letter["reason"] == "too_many_vertices"
    await api.still_serving()


async def test_largest_accepted_request_does_not_block_healthz(api: ApiProcess) -> None:
    """While a 48,000-vertex request is decoded, checked and encoded, /healthz keeps answering."""
    body = [_polygon(f"havre:big{i}", 16_000) for i in range(3)]
    latencies: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            started = time.perf_counter()
            status, _ = await api.health()
            latencies.append(time.perf_counter() - started)
            assert status == 200
            await asyncio.sleep(0.01)  # pacing of the probe, not a wait for a fact

    async def publish() -> Any:
        try:
            return await api.post("/v1/events", body)
        finally:
            done.set()

    prober = asyncio.create_task(probe())
    status, answer, _ = await publish()
    await prober
    assert status == 202 and len(answer["accepted"]) == 3, answer
    print("healthz during the request (ms):", sorted(round(x * 1000, 1) for x in latencies))
    assert max(latencies) < 0.3, "the event loop was held while the request was checked"
    await api.still_serving()


async def test_vertex_and_event_rates_answer_429(deployment: Deployment) -> None:
    """Over its vertices/s or events/s a publisher gets 429 and Retry-After; a refusal spends nothing."""
    limits = {
        "CORRIDOR_API_VERTEX_RATE": "10",
        "CORRIDOR_API_VERTEX_BURST": "2000",
        "CORRIDOR_API_EVENT_RATE": "1",
        "CORRIDOR_API_EVENT_BURST": "40",
    }
    async for api in _start(deployment, limits):
        assert (await api.post("/v1/events", _polygon("havre:a", 1_500)))[0] == 202
        status, body, headers = await api.post("/v1/events", _polygon("havre:b", 1_500))
        assert status == 429 and "vertices/s" in body["errors"][0] and int(headers["Retry-After"]) >= 1
        assert (await api.post("/v1/events", [_event(f"havre:e{i}") for i in range(30)]))[0] == 202
        status, body, headers = await api.post("/v1/events", [_event(f"havre:g{i}") for i in range(30)])
        assert status == 429 and "events/s" in body["errors"][0] and int(headers["Retry-After"]) >= 1
        status, body, _ = await api.post("/v1/events", [_event(f"havre:f{i}") for i in range(41)])
        assert status == 413 and "split it" in body["errors"][0]
        await api.still_serving()


async def test_publishers_post_only_their_kinds(api: ApiProcess) -> None:
    """A city publisher may not post port calls (403, dead-lettered); a port one may; --kind narrows."""
    await api.add("tdf", "--role", "port")
    await api.add("bac", "--kind", "hazard")
    status, body, _ = await api.post("/v1/events", _event("havre:pc", kind="port_call", terminal="FRLEH-TDF"))
    assert status == 403 and body["errors"][0].startswith(
        "0/kind: publisher 'havre' may not post 'port_call'"
    )
    status, body, _ = await api.post("/v1/port-calls", _port_call())
    assert status == 403 and "--role port" in body["errors"][0]
    letters = await api.dead_letters(2)
    assert [(r["reason"], r["format"]) for r in letters] == [
        ("forbidden_kind", "native"),
        ("forbidden_kind", "portcall"),
    ]
    assert (await api.post("/v1/port-calls", _port_call(), "tdf"))[0] == 202
    assert (await api.post("/v1/events", _event("tdf:pc", "tdf", kind="port_call"), "tdf"))[0] == 202
    assert (await api.post("/v1/events", _event("bac:r", "bac"), "bac"))[0] == 403
    assert (await api.post("/v1/events", _event("bac:h", "bac", kind="hazard"), "bac"))[0] == 202
    listed = (await asyncio.to_thread(api.deployment.run, "publisher", "list")).stdout.decode()
    assert (
        "bac\tbac\thazard\t" in listed
        and "tdf\ttdf\tclosure,restriction,perimeter,hazard,roadworks,port_call" in listed
    )
    await api.still_serving()


async def test_a_record_stored_before_kinds_may_post_city_kinds_only(api: ApiProcess) -> None:
    """A publisher record without kinds (stored by an older Corridor) gets the city kinds: no port calls."""
    import redis.asyncio as aioredis

    settings = api.deployment.settings
    client = aioredis.Redis.from_url(settings.resolved_redis_url())
    key = f"{settings.redis_prefix}:publishers"
    stored = orjson.loads(await client.hget(key, "havre"))
    del stored["kinds"], stored["role"]
    await client.hset(key, "havre", orjson.dumps(stored))
    await client.aclose()
    assert (await api.post("/v1/events", _event("havre:pc", kind="port_call", terminal="FRLEH-TDF")))[
        0
    ] == 403
    await api.still_serving()


async def _health_is(api: ApiProcess, code: int, down: str | None = None) -> None:
    """Poll /healthz until it answers ``code`` (naming ``down``), for up to 20 s."""
    deadline = time.monotonic() + 20
    status, body = await api.health()
    while time.monotonic() < deadline:
        status, body = await api.health()
        if status == code and (down is None or down in body.get("down", {})):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"/healthz never answered {code} {down or ''}: {status} {body}")


@pytest.fixture
def own_services(tmp_path: Path) -> Iterator[EmbeddedServices]:
    """A broker and Redis of the test's own, which it may stop and start."""
    embedded = EmbeddedServices(tmp_path / "services")
    embedded.up()
    try:
        yield embedded
    finally:
        embedded.down()


async def test_redis_or_broker_down_is_503_json_then_back(
    own_services: EmbeddedServices, tmp_path: Path
) -> None:
    """Redis or broker stopped: 503 JSON naming it; restarted on its port, the same API is back."""
    name = f"t{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "CORRIDOR_STATE_DIR": str(own_services.state_dir), "CORRIDOR_TOPIC_PREFIX": name}
    env.pop("CORRIDOR_KAFKA_URL", None)
    env.pop("CORRIDOR_REDIS_URL", None)
    with Deployment(env, tmp_path / "work") as deployment:
        async for api in _start(deployment):
            await api.still_serving()
            before = own_services.info()
            own_services.redis.stop()
            status, body, headers = await api.post("/v1/events", _event("havre:down"))
            assert (status, body) == (503, {"errors": ["(redis): unavailable, nothing accepted; retry"]})
            assert int(headers["Retry-After"]) >= 1

            await _health_is(api, 503, "redis")
            assert own_services.up() == before
            await _health_is(api, 200)
            await api.still_serving()
            own_services.broker.stop()
            await _health_is(api, 503, "broker")
            assert own_services.up() == before
            await _health_is(api, 200)
            assert api.proc.popen.pid == api.pid
