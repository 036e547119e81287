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


def test_the_events_topic_has_one_partition_unless_told() -> None:
    """Every worker matches every event, so the events topic needs one partition by default; the
    routes keep CORRIDOR_PARTITIONS."""
    default = Settings.from_env({})
    assert (default.event_partitions, default.partitions) == (1, 8)
    told = Settings.from_env({"CORRIDOR_EVENT_PARTITIONS": "4", "CORRIDOR_PARTITIONS": "16"})
    assert (told.event_partitions, told.partitions) == (4, 16)


@pytest.mark.parametrize("name", ["CORRIDOR_EVENT_PARTITIONS", "CORRIDOR_PARTITIONS"])
def test_a_partition_count_below_one_says_which_variable(name: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}=0 must be at least 1"):
        Settings.from_env({name: "0"})
