"""A gateway process against hostile drivers: one bad ``last_id`` never stops the others' alerts."""

from __future__ import annotations

import urllib.request

import pytest

from stream.local.services import free_port
from stream.worker.outbox import RedisOutbox
from tests.support.drivers import DriverClient, alert_for, metric, token_for, until
from tests.support.processes import Deployment

pytestmark = pytest.mark.e2e


def _health(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:  # noqa: S310
        return int(response.status)


# As they arrive in the query string: the gateway's old check (\d, $) let each of them through.
@pytest.mark.parametrize(
    "last_id",
    ["99999999999999999999-0", "0%0A", "%D9%A1-0"],
    ids=["beyond 64 bits", "trailing newline", "Arabic-Indic digit"],
)
async def test_hostile_last_id_is_closed_and_other_drivers_keep_receiving(
    deployment: Deployment, outbox: RedisOutbox, last_id: str
) -> None:
    """A last_id Redis refuses gets 1008; a driver on the same gateway still receives, health is 200."""
    metrics_port = free_port()
    gateway, port = deployment.start_gateway(metrics_port=metrics_port)
    pid = gateway.popen.pid
    started_at = metric(metrics_port, "process_start_time_seconds")
    good = DriverClient(port, "truck-good", token_for(deployment.env, "truck-good"))
    hostile = DriverClient(port, "truck-evil", token_for(deployment.env, "truck-evil"), last_id=last_id)
    async with good:
        await until(lambda: good.messages, 10, "the good driver's hello")
        await outbox.append([alert_for("truck-evil", "bait")])  # something for the hostile read to find
        async with hostile:
            await hostile.wait_closed(timeout=10)
        await outbox.append([alert_for("truck-good", "after-hostile")])
        await good.wait_for(lambda a: a["event_id"] == "after-hostile", timeout=10)
    assert hostile.close_code == 1008 and "stream id" in hostile.close_reason
    assert hostile.messages == []
    assert gateway.popen.poll() is None and gateway.popen.pid == pid
    assert metric(metrics_port, "process_start_time_seconds") == started_at
    assert _health(port) == 200
    assert metric(metrics_port, "corridor_connection_refusals_total", 'reason="bad_last_id"') == 1
    assert "Traceback" not in gateway.output()
