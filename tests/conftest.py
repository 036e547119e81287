"""Shared fixtures: the real embedded broker and Redis, started once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.core.kernel_cache import use_kernel_cache
from stream.local.services import EmbeddedServices
from tests.support.processes import Deployment, deployment_env


def pytest_configure(config: pytest.Config) -> None:
    """The kernels' cache chosen before any test module imports the engine, as ``corridor`` does."""
    use_kernel_cache()


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels() -> None:
    """The engine's kernels compiled into the cache before any test starts a worker: on a cold
    cache (a fresh clone) a worker compiles them for 40 s or more before it joins its group, and a
    test's wait for the worker would count it."""
    from stream.core.engine import warm_up  # noqa: PLC0415 - after the cache is chosen

    warm_up()


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
    env = deployment_env(services, tmp_path / "state")
    with Deployment(env, tmp_path) as dep:
        yield dep
