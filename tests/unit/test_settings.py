"""Settings read from the environment: the defaults that depend on where the services are."""

from __future__ import annotations

import pytest

from stream.runtime.settings import ConfigError, Settings


@pytest.mark.parametrize(
    ("env", "wait_ms"),
    [
        ({}, 10),  # the embedded broker holds a fetch for its whole wait: short
        ({"CORRIDOR_KAFKA_URL": "kafka://kafka:9092"}, 500),  # Kafka answers when data arrives
        ({"CORRIDOR_KAFKA_URL": "kafka://kafka:9092", "CORRIDOR_FETCH_WAIT_MS": "50"}, 50),
        ({"CORRIDOR_FETCH_WAIT_MS": "250"}, 250),
        ({"CORRIDOR_FETCH_WAIT_MS": ""}, 10),
    ],
)
def test_fetch_wait_suits_the_broker(env: dict[str, str], wait_ms: int) -> None:
    """The fetch wait is short on the embedded broker, long on Kafka, and what it is set to."""
    assert Settings.from_env(env).fetch_wait == wait_ms


def test_a_fetch_wait_that_is_not_a_number_says_which_variable() -> None:
    """A typo names the variable and the value, instead of a traceback from deep inside."""
    with pytest.raises(ConfigError, match="CORRIDOR_FETCH_WAIT_MS='10ms'"):
        Settings.from_env({"CORRIDOR_FETCH_WAIT_MS": "10ms"})
