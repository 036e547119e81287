"""Shared fixtures: the real embedded broker and Redis, started once per test session."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.runtime.services import EmbeddedServices
from tests.support.processes import Deployment


@pytest.fixture(scope="session")
def embedded_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServices]:
    """The embedded broker (Tansu) and Redis on free ports, for the whole session."""
    embedded = EmbeddedServices(tmp_path_factory.mktemp("services"))
    try:
        embedded.up()
        yield embedded
    finally:
        embedded.down()


@pytest.fixture(scope="session")
def services(embedded_services: EmbeddedServices) -> dict[str, str]:
    """The URLs of the session's broker and Redis."""
    return embedded_services.info()


@pytest.fixture
def deployment(services: dict[str, str], tmp_path: Path) -> Iterator[Deployment]:
    """A deployment of its own (topics, consumer group, Redis keys) on the shared services."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "services.json").write_text(json.dumps(services))
    name = f"t{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "CORRIDOR_STATE_DIR": str(state),
        "CORRIDOR_TOPIC_PREFIX": name,
        "CORRIDOR_APP_ID": name,
        "CORRIDOR_PARTITIONS": "4",
        "CORRIDOR_SIGNING_KEY": "test:" + uuid.uuid4().hex,
    }
    env.pop("CORRIDOR_KAFKA_URL", None)
    env.pop("CORRIDOR_REDIS_URL", None)
    with Deployment(env, tmp_path) as dep:
        yield dep
