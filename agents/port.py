"""predict_closures: vessel positions -> predicted bridge lifts and lock closures on the road.

The track table and the predictions live in this worker's memory only: a restart starts empty and
rebuilds them from the next position reports (AIS repeats every few seconds while under way). A
prediction whose vessel is never heard from again after a restart is not cancelled; it ends at its
``valid_until``. Vessel events are keyed by MMSI, so one worker owns each vessel; when a partition
moves to another worker its tracks are dropped here without cancelling anything.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from faust.types import StreamT

from schemas import Event
from schemas.codec import dumps
from stream.core.port.infrastructure import load
from stream.core.port.predict import ClosurePredictor
from stream.core.port.tracks import TrackTable
from stream.runtime import envelopes
from stream.worker.app import Worker, take_events

log = logging.getLogger("corridor.agents.port")

EXPIRE_EVERY_S = 30.0


def install(worker: Worker) -> None:
    """Load the port's infrastructure (``CORRIDOR_PORT_INFRASTRUCTURE``, else the bundled one) and
    install ``predict_closures`` and its timer on ``worker``."""
    settings, app, events_topic = worker.settings, worker.app, worker.events_topic
    infrastructure = load(settings.port_infrastructure, settings.metric_crs)
    tracks = TrackTable()
    predictor = ClosurePredictor(infrastructure)
    partition_of: dict[int, int] = {}  # MMSI -> partition of corridor.events its reports arrive on
    log.info(
        "port infrastructure: %d structures, %d terminals (%s)",
        len(infrastructure.structures),
        len(infrastructure.terminals),
        settings.port_infrastructure or "bundled",
    )

    async def publish(events: list[Event]) -> None:
        """Send derived closure events back to the events topic as single events keyed by their
        id, each on the partition Corridor's producers give that id (so its versions stay in
        order)."""
        partitions = worker.partition_count(events_topic)
        for event in events:
            log.info("port closure %s %s until %s", event.id, event.status, event.valid_until)
            partition = envelopes.partition_of(event.id, partitions)
            await events_topic.send(key=event.id.encode(), value=dumps(event), partition=partition)

    @app.agent(events_topic, name="agents.port.predict_closures")
    async def predict_closures(stream: StreamT[bytes]) -> None:
        """Update vessel tracks from vessel events and publish the closures they predict.

        A message is an envelope or a single event; a report that cannot be read or tracked is
        skipped here (``fan_out_events`` dead-letters what it cannot read); the other reports go on.
        """
        limits, max_bytes = settings.event_limits, settings.event_max_bytes
        async for batch in take_events(stream, 500, 0.1):
            out: list[Event] = []
            now = datetime.now(UTC)
            for message in batch:
                if b'"vessel"' not in message.value:  # cheap pre-filter; other kinds are not ours
                    continue
                try:
                    reports = envelopes.read_events(message.value, limits, max_bytes, kind="vessel").events
                except Exception:  # noqa: BLE001 - one odd message costs only itself
                    log.exception("vessel reports at offset %d could not be read", message.message.offset)
                    continue
                for event in reports:
                    try:
                        track = tracks.update(event, now)
                        if track is not None:
                            partition_of[track.mmsi] = message.message.partition
                            out += predictor.observe(track)
                    except Exception:  # noqa: BLE001 - one odd report costs only itself
                        log.exception("vessel report %s could not be tracked", event.id)
            await publish(out)
            worker.health.beat("predict_closures")

    @worker.timer(EXPIRE_EVERY_S)
    async def expire_tracks() -> None:
        """Cancel the predictions of vessels no longer reported; forget those of partitions moved
        away."""
        topic = events_topic.get_topic_name()
        assigned = {tp.partition for tp in app.consumer.assignment() if tp.topic == topic}
        for mmsi in tracks.mmsis():
            if partition_of.get(mmsi) not in assigned:
                tracks.forget(mmsi)
                predictor.forget_vessel(mmsi)
                partition_of.pop(mmsi, None)
        now = datetime.now(UTC)
        out: list[Event] = []
        for track in tracks.expire(now):
            partition_of.pop(track.mmsi, None)
            out += predictor.vessel_gone(track.mmsi, now)
        await publish(out)
