"""Feed processes as a user runs them: HTTP polling with lifecycle, AIS over TCP and UDP, files."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import pytest
from aiohttp import web

from schemas import Event
from stream.ingest.poll import SnapshotStore
from stream.ingest.producer import Publisher
from stream.ingest.sink import FeedSink
from stream.local.services import free_port
from stream.runtime.retry import redis_client
from tests.support.drivers import until
from tests.support.kafka import read_topic
from tests.support.processes import Deployment

DATA = resources.files("stream").joinpath("data")
CIFS = DATA.joinpath("cifs-incidents.xml").read_bytes()
INCIDENTS = re.findall(rb'<incident id="([^"]+)"', CIFS)


class FeedServer:
    """A city's HTTP feed: serves a document with an ETag and answers 304 when it is unchanged."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.requests: list[int] = []

    async def handle(self, request: web.Request) -> web.Response:
        etag = f'"{hash(self.body) & 0xFFFFFFFF:x}"'
        if request.headers.get("If-None-Match") == etag:
            self.requests.append(304)
            return web.Response(status=304)
        self.requests.append(200)
        return web.Response(body=self.body, headers={"ETag": etag}, content_type="application/xml")


@pytest.fixture
async def feed_server() -> AsyncIterator[tuple[FeedServer, str]]:
    """The feed served on a free loopback port."""
    server = FeedServer(CIFS)
    app = web.Application()
    app.router.add_get("/cifs.xml", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield server, f"http://127.0.0.1:{port}/cifs.xml"
    finally:
        await runner.cleanup()


async def test_poll_publishes_new_then_nothing_then_the_cancellation(
    deployment: Deployment, feed_server: tuple[FeedServer, str]
) -> None:
    """First poll: every incident; unchanged feed: nothing (304); an incident gone: it is cancelled."""
    server, url = feed_server
    poll = ("feed", "poll", "--format", "cifs", "--every", "0", url)
    for _ in range(2):
        result = await asyncio.to_thread(deployment.run, *poll)
        assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert server.requests == [200, 304]
    first_id = INCIDENTS[0].decode()
    server.body = re.sub(
        rb'<incident id="' + re.escape(INCIDENTS[0]) + rb'">.*?</incident>', b"", CIFS, flags=re.S
    )
    result = await asyncio.to_thread(deployment.run, *poll)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    events = await read_topic(deployment.settings, "events", len(INCIDENTS) + 1)
    assert len(events) == len(INCIDENTS) + 1
    active = [e["id"] for e in events if e["status"] == "active"]
    cancelled = [e["id"] for e in events if e["status"] == "cancelled"]
    assert sorted(active) == sorted(f"cifs:{i.decode()}" for i in INCIDENTS)
    assert cancelled == [f"cifs:{first_id}"]


async def test_document_cut_part_way_cancels_nothing(
    deployment: Deployment, feed_server: tuple[FeedServer, str]
) -> None:
    """A feed cut after its fourth incident is refused whole: dead-lettered, its snapshot kept."""
    server, url = feed_server
    poll = ("feed", "poll", "--format", "cifs", "--every", "0", url)
    assert (await asyncio.to_thread(deployment.run, *poll)).returncode == 0
    fifth = CIFS.index(b'<incident id="' + INCIDENTS[4])
    server.body = CIFS[:fifth] + b'<incident id="cut"><type>ROAD_'
    result = await asyncio.to_thread(deployment.run, *poll)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    (rejected,) = await read_topic(deployment.settings, "events.rejected", 1, timeout=10)
    assert rejected["reason"] == "unreadable_document" and "malformed after byte" in rejected["error"]
    settings = deployment.settings
    client = redis_client(settings.resolved_redis_url())
    try:
        state = await SnapshotStore(client, settings.redis_prefix, "cifs").load()
    finally:
        await client.aclose()
    assert sorted(state.snapshot) == sorted(f"cifs:{i.decode()}" for i in INCIDENTS)
    assert {entry.event.status for entry in state.snapshot.values()} == {"active"}


async def test_ais_over_tcp_publishes_vessels_and_dead_letters(deployment: Deployment) -> None:
    """A TCP NMEA feed becomes vessel events; its undecodable lines land in the dead letters."""
    lines = DATA.joinpath("mixed.txt").read_bytes()

    writers: list[asyncio.StreamWriter] = []
    finished = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        for chunk in (lines[:700], lines[700:]):  # a sentence split across two reads
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.05)  # pacing: the second half comes in a read of its own
        await finished.wait()  # then stays silent, as a quiet feed does

    port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    try:
        proc = deployment.start("ais", "feed", "ais", "--tcp", f"127.0.0.1:{port}")
        events = await read_topic(deployment.settings, "events", 10, timeout=20)
        rejected = await read_topic(deployment.settings, "events.rejected", 9, timeout=10)
        assert proc.stop(signal.SIGTERM) == 0
    finally:
        finished.set()
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
    assert len(events) == 10 and {e["kind"] for e in events} == {"vessel"}
    assert len(rejected) == 9 and {r["source"] for r in rejected} == {"ais"}
    assert all(r["error"] and r["where"] for r in rejected)


def _udp_bound(port: int) -> bool:
    """Whether something listens on a loopback UDP port (it cannot be bound again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


async def test_ais_over_udp(deployment: Deployment) -> None:
    """NMEA datagrams on a UDP port become vessel events keyed by MMSI."""
    port = free_port()
    proc = deployment.start("ais-udp", "feed", "ais", "--udp", str(port))
    sentences = [
        line
        for line in DATA.joinpath("nmea_data_sample.txt").read_bytes().splitlines()
        if line.startswith(b"!AIVDM,1,1")
    ][:50]
    await until(lambda: _udp_bound(port) or proc.popen.poll() is not None, 30, "the listener to bind")
    proc.check_alive()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for sentence in sentences:
            sock.sendto(sentence + b"\n", ("127.0.0.1", port))
            await asyncio.sleep(0.002)  # pacing: a burst of datagrams overflows a socket buffer
    events = await read_topic(deployment.settings, "events", 1, timeout=15)
    proc.stop(signal.SIGTERM)
    assert events and all(e["id"].startswith("ais:") and e["kind"] == "vessel" for e in events)


def test_feed_file_reports_counts(deployment: Deployment, tmp_path: Path) -> None:
    """Publishing the Paris 2024 perimeters: 875 events, 6 features without geometry dead-lettered."""
    path = tmp_path / "zones.geojson"
    path.write_bytes(DATA.joinpath("zones.geojson").read_bytes())
    result = deployment.run("feed", "file", "--format", "perimeters", str(path))
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert json.loads(result.stdout) == {"events": 875, "rejected": 6}


async def test_a_refused_record_costs_only_itself(deployment: Deployment) -> None:
    """In a feed's batch, an event over a broker message is a too_large rejection; the others are sent."""
    point = {"type": "Point", "coordinates": [2.35, 48.85]}
    batch = [
        Event("feed:before", "feed", "closure", point),
        Event("feed:huge", "feed", "closure", point, details={"text": "x" * 1_100_000}),
        Event("feed:after", "feed", "closure", point),
    ]
    async with Publisher(deployment.settings) as publisher:
        counts = await FeedSink(publisher, "feed", "native").publish(batch)
    assert (counts.events, counts.rejected) == (2, 1)
    events = await read_topic(deployment.settings, "events", 2, timeout=10)
    (rejected,) = await read_topic(deployment.settings, "events.rejected", 1, timeout=10)
    assert [e["id"] for e in events] == ["feed:before", "feed:after"]
    assert rejected["reason"] == "too_large" and rejected["where"] == "feed:huge"
