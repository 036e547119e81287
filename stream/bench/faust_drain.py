"""The framework's own ceiling: a Faust agent that takes a topic's messages and does nothing else.

Run as a process by ``corridor bench pipeline`` (``python -m stream.bench.faust_drain``), configured
like a worker (the embedded broker's group timings, the same fetch wait, batches of 1,000 as
``fan_out_events`` takes them). It reads ``CORRIDOR_DRAIN_COUNT`` messages of
``CORRIDOR_DRAIN_TOPIC`` and prints one JSON line: messages/s from the first batch to the last, and
the process's CPU seconds per message. Whatever a worker does on top of this costs more.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import faust
import orjson

from stream.runtime.settings import Settings
from stream.worker.faust_tuning import set_fetch_wait


def main() -> None:
    """Drain the topic, print the figures, exit."""
    settings = Settings.from_env()
    topic_name = os.environ["CORRIDOR_DRAIN_TOPIC"]
    count = int(os.environ["CORRIDOR_DRAIN_COUNT"])
    set_fetch_wait(settings.fetch_wait)
    datadir = settings.state_dir.resolve() / "faust" / f"{topic_name}.drain"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{topic_name}.drain",
        broker=settings.resolved_kafka_url(),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        store="memory://",
        datadir=str(datadir),
        broker_rebalance_timeout=2,
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
    )
    topic = app.topic(topic_name)
    seen: dict[str, float] = {"n": 0, "first": 0.0, "cpu": 0.0, "skip": 0}
    started = time.perf_counter()

    @app.agent(topic)
    async def drain(stream: Any) -> None:
        async for batch in stream.take_events(1000, within=0.02):
            if not seen["n"]:  # the clock starts once the first batch is in (the group joined)
                seen["first"], seen["cpu"], seen["skip"] = (
                    time.perf_counter(),
                    time.process_time(),
                    len(batch),
                )
            seen["n"] += len(batch)
            if seen["n"] >= count:
                timed = seen["n"] - seen["skip"]
                seconds = time.perf_counter() - seen["first"]
                cpu = time.process_time() - seen["cpu"]
                if not timed:  # one batch held every message: time it from the start, join included
                    timed, seconds, cpu = seen["n"], time.perf_counter() - started, time.process_time()
                result = {"msg_per_s": timed / seconds, "cpu_us_per_msg": 1e6 * cpu / max(1, timed)}
                os.write(1, orjson.dumps(result) + b"\n")  # fd 1: Faust logs what goes to sys.stdout
                os._exit(0)  # noqa: SLF001 - the figures are out; no orderly shutdown to wait for

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()


if __name__ == "__main__":
    main()
