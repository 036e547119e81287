"""The publish API against the real broker and Redis: credentials, validation, limits, delivery."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from stream.core.port.infrastructure import load
from stream.ingest.api import Limits, PublishApi
from stream.ingest.producer import Publisher
from stream.ingest.publishers import PublisherStore
from stream.runtime.settings import Settings
from tests.support.kafka import read_topic
from tests.support.processes import Deployment

START = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)


def _event(event_id: str = "havre:works-1", source: str = "havre", **changes: Any) -> dict[str, Any]:
    event = {
        "id": event_id,
        "source": source,
        "kind": "roadworks",
        "geometry": {"type": "LineString", "coordinates": [[0.12, 49.47], [0.13, 49.47]]},
        "valid_from": START.isoformat(),
        "valid_until": (START + timedelta(hours=4)).isoformat(),
        "status": "active",
        "title": "Route de l'Estuaire: one lane",
    }
    event.update(changes)
    return event


def _port_call(when: datetime, **changes: Any) -> dict[str, Any]:
    call = {
        "portCallID": "PC-2030-0042",
        "UNLocationCode": "FRLEH",
        "vesselIMONumber": "9454448",
        "vesselName": "CMA CGM EXAMPLE",
        "portCallServiceTypeCode": "BERTH",
        "portCallServiceEventTypeCode": "ARRI",
        "classifierCode": "EST",
        "dateTime": when.isoformat(),
        "terminal": {"terminalID": "FRLEH-TDF", "gatePosition": [0.108, 49.468]},
    }
    call.update(changes)
    return call


class Api:
    """An in-process API server and what the tests need around it."""

    def __init__(self, client: TestClient[Any, Any], store: PublisherStore, settings: Settings) -> None:
        self.client, self.store, self.settings = client, store, settings

    async def post(self, path: str, body: Any, credential: str | None, raw: bytes | None = None) -> Any:
        """POST a JSON body (or raw bytes) with a bearer credential; (status, json, headers)."""
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        data = io.BytesIO(raw if raw is not None else orjson.dumps(body))
        response = await self.client.post(
            path, data=data, headers={**headers, "Content-Type": "application/json"}
        )
        return response.status, await response.json(), response.headers


async def _api(deployment: Deployment, redis_client: aioredis.Redis, **limits: Any) -> AsyncIterator[Api]:
    settings = deployment.settings
    publisher = Publisher(settings)
    async with publisher:
        service = PublishApi(publisher, redis_client, settings.redis_prefix, load(), Limits(**limits))
        async with TestClient(TestServer(service.app())) as client:
            yield Api(client, service.store, settings)


@pytest.fixture
async def api(deployment: Deployment, redis_client: aioredis.Redis) -> AsyncIterator[Api]:
    """The API on a free port, its broker producer on the test deployment's topics."""
    async for value in _api(deployment, redis_client):
        yield value


async def test_credentials_missing_invalid_revoked_or_foreign_are_refused(api: Api) -> None:
    """No, malformed, wrong or revoked credentials get 401; another publisher's source gets 403."""
    credential = await api.store.add("havre", ("havre",))
    other = await api.store.add("rouen", ("rouen",))
    key_id = credential.split(".")[1]
    for bad in (None, "cpk.nope", f"cpk.{key_id}.wrong-secret", other.replace("cpk.", "cpk.0")):
        status, body, headers = await api.post("/v1/events", _event(), bad)
        assert status == 401 and body["errors"][0].startswith("Authorization")
        assert "Bearer" in headers["WWW-Authenticate"]
    status, body, _ = await api.post("/v1/events", _event("rouen:x", "rouen"), credential)
    assert status == 403 and body["errors"] == ["0/source: 'rouen' is not a source of publisher 'havre'"]
    status, body, _ = await api.post("/v1/events", _event("rouen:x", "havre"), credential)
    assert status == 403 and body["errors"] == ["0/id: must start with 'havre:'"]
    status, body, _ = await api.post("/v1/port-calls?source=rouen", _port_call(START), credential)
    assert status == 403 and "source" in body["errors"][0]
    assert await api.store.revoke("rouen")
    status, _, _ = await api.post("/v1/events", _event("rouen:y", "rouen"), other)
    assert status == 401


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        (
            "/v1/events",
            {k: v for k, v in _event().items() if k != "geometry"},
            422,
            "'geometry' is a required",
        ),
        ("/v1/events", _event(kind="flood"), 422, "kind: 'flood' is not one of"),
        ("/v1/events", [_event(), _event(valid_from="tomorrow")], 422, "1/valid_from:"),
        (
            "/v1/events",
            _event(valid_until=START.isoformat(), valid_from=(START + timedelta(1)).isoformat()),
            422,
            "valid_until: is before valid_from",
        ),
        ("/v1/events", [], 400, "(body)"),
        ("/v1/port-calls", _port_call(START, classifierCode="GUESS"), 422, "classifierCode:"),
        (
            "/v1/port-calls",
            {k: v for k, v in _port_call(START).items() if k != "terminal"},
            422,
            "'terminal'",
        ),
    ],
)
async def test_malformed_bodies_name_the_field(
    api: Api, path: str, body: Any, status: int, field: str
) -> None:
    """Schema violations answer 422 (400 for a wrong shape) with the offending field in the message."""
    credential = await api.store.add("havre", ("havre",), "port")
    got_status, got, _ = await api.post(path, body, credential)
    assert got_status == status
    assert any(field in message for message in got["errors"]), got


async def test_not_json_is_400_and_refused_records_are_dead_lettered(api: Api) -> None:
    """A body that is not JSON gets 400; refused requests land on the dead-letter topic with a reason."""
    credential = await api.store.add("havre", ("havre",))
    status, body, _ = await api.post("/v1/events", None, credential, raw=b"{not json")
    assert status == 400 and body["errors"][0].startswith("(body): not JSON")
    status, _, _ = await api.post("/v1/events", _event(kind="flood"), credential)
    assert status == 422
    letters = await read_topic(api.settings, "events.rejected", 2)
    assert [(r["source"], r["reason"]) for r in letters] == [("havre", "undecodable"), ("havre", "schema")]
    assert "flood" in letters[1]["error"] and letters[0]["raw"] == "{not json"


async def test_oversized_body_is_413(api: Api) -> None:
    """A body over 1 MiB is refused with 413 before anything is parsed or published."""
    credential = await api.store.add("havre", ("havre",))
    huge = _event(title="x" * 100, details={"padding": "y" * (1024 * 1024)})
    status, body, _ = await api.post("/v1/events", huge, credential)
    assert status == 413 and "larger than" in body["errors"][0]


async def test_rate_limit_answers_429_with_retry_after(
    deployment: Deployment, redis_client: aioredis.Redis
) -> None:
    """Past its burst, a publisher gets 429 and a Retry-After; another publisher is not affected."""
    async for api in _api(deployment, redis_client, rate=0.5, burst=2):
        first = await api.store.add("havre", ("havre",))
        second = await api.store.add("rouen", ("rouen",))
        statuses = [(await api.post("/v1/events", [], first))[0] for _ in range(3)]
        assert statuses == [400, 400, 429]
        status, body, headers = await api.post("/v1/events", [], first)
        assert status == 429 and int(headers["Retry-After"]) >= 1 and "requests/s" in body["errors"][0]
        assert (await api.post("/v1/events", [], second))[0] == 400


async def test_accepted_events_arrive_on_the_events_topic(api: Api) -> None:
    """202 lists the ids, and the events are on <prefix>.events, keyed and as sent."""
    credential = await api.store.add("havre", ("havre", "havre-port"))
    events = [_event("havre:works-1"), _event("havre-port:gate-2", "havre-port", kind="closure")]
    status, body, _ = await api.post("/v1/events", events, credential)
    assert status == 202 and body == {"accepted": ["havre:works-1", "havre-port:gate-2"]}
    arrived = {e["id"]: e for e in await read_topic(api.settings, "events", 2)}
    assert set(arrived) == {"havre:works-1", "havre-port:gate-2"}
    assert arrived["havre-port:gate-2"]["kind"] == "closure"
    assert arrived["havre:works-1"]["geometry"] == events[0]["geometry"]


async def test_port_calls_become_port_call_events_with_their_delay(api: Api) -> None:
    """Port calls are published under the publisher's source, for the terminal, with the delay vs before."""
    credential = await api.store.add("tdf", ("tdf",), "port")
    status, body, _ = await api.post("/v1/port-calls", _port_call(START), credential)
    assert status == 202 and body == {"accepted": ["tdf:PC-2030-0042:BERTH:ARRI"]}
    later = START + timedelta(minutes=45)
    status, body, _ = await api.post("/v1/port-calls", [_port_call(later)], credential)
    assert status == 202
    first, second = await read_topic(api.settings, "events", 2)
    assert first["kind"] == second["kind"] == "port_call" and second["terminal"] == "FRLEH-TDF"
    assert first["source"] == "tdf" and "delay_minutes" not in first["details"]
    assert first["details"]["terminal_name"] == "Terminal de France (Port 2000)"
    assert second["details"]["delay_minutes"] == 45 and "delayed by 45 min" in second["title"]


async def test_publisher_command_prints_a_credential_that_works(api: Api, deployment: Deployment) -> None:
    """`corridor publisher add` prints a credential the API accepts; list shows no secret; revoke ends it."""
    added = await asyncio.to_thread(deployment.run, "publisher", "add", "havre", "--source", "havre")
    assert added.returncode == 0, added.stderr
    credential = added.stdout.decode().strip()
    assert credential.startswith("cpk.") and len(credential.split(".")) == 3
    listed = await asyncio.to_thread(deployment.run, "publisher", "list")
    assert (
        listed.stdout.decode().startswith("havre\thavre\t")
        and credential.split(".")[2] not in listed.stdout.decode()
    )
    assert (await api.post("/v1/events", _event(), credential))[0] == 202
    again = await asyncio.to_thread(deployment.run, "publisher", "add", "havre", "--source", "havre")
    assert again.returncode != 0 and b"exists" in again.stderr
    revoked = await asyncio.to_thread(deployment.run, "publisher", "revoke", "havre")
    assert revoked.returncode == 0
    assert (await api.post("/v1/events", _event(), credential))[0] == 401


async def test_corridor_api_process_accepts_into_the_broker(deployment: Deployment) -> None:
    """`corridor api` started as a user would: healthz answers, an accepted event is on the topic."""
    from aiohttp import ClientSession

    from stream.local.services import free_port
    from tests.support.processes import wait_until

    added = await asyncio.to_thread(deployment.run, "publisher", "add", "havre", "--source", "havre")
    credential = added.stdout.decode().strip()
    port = free_port()
    proc = deployment.start("api", "api", "--port", str(port))
    await asyncio.to_thread(wait_until, lambda: "listening" in proc.output(), 30, "the api to listen")
    async with ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200
        headers = {"Authorization": f"Bearer {credential}"}
        url = f"http://127.0.0.1:{port}/v1/events"
        async with session.post(url, data=orjson.dumps(_event("havre:p1")), headers=headers) as response:
            assert response.status == 202 and await response.json() == {"accepted": ["havre:p1"]}
    (arrived,) = await read_topic(deployment.settings, "events", 1)
    assert arrived["id"] == "havre:p1"
    assert credential.split(".")[2] not in proc.output()


async def test_an_unexpected_error_is_json_500_without_a_trace(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug while serving is JSON 500 with no stack in the body; the log has the stack, not the secret."""
    credential = await api.store.add("havre", ("havre",))

    async def broken(credential: str) -> None:
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(api.store, "authenticate", broken)
    status, body, _ = await api.post("/v1/events", _event(), credential)
    assert status == 500 and body["errors"][0].startswith("(server): internal error")
    assert "Traceback" not in str(body) and "a bug of ours" not in str(body)
    logged = "\n".join(r.getMessage() + str(r.exc_text or r.exc_info) for r in caplog.records)
    assert "a bug of ours" in logged and credential.split(".")[2] not in logged
