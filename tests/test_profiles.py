"""A run that streams waits milliseconds at each batching place; a bounded run keeps Flink's and Kafka's batching."""

import pytest

from jobs.cli.parser import build_parser, settings_from_args
from jobs.kafka_client import sink_properties
from jobs.profiles import PROFILES
from jobs.settings import KafkaSettings, Settings, TuningSettings
from state.exceptions import SettingsError
from tests.test_cli import CHICKS, MODEL

STREAMING = KafkaSettings(bootstrap="127.0.0.1:9092", topics=("events",))


def settings(**fields) -> Settings:
    return Settings(model=MODEL, **{"inputs": (CHICKS,), **fields})


@pytest.mark.unit
@pytest.mark.parametrize("fields, expected", [
    ({}, "throughput"),  # files only: a backfill, saturated
    ({"kafka": STREAMING}, "latency"),  # files then Kafka: it streams in the end
    ({"kafka": KafkaSettings(bootstrap="127.0.0.1:9092", topics=("events",), stop_at_latest=True)}, "throughput"),
    ({"watch_inputs": 1.0}, "latency"),
    ({"kafka": STREAMING, "tuning": TuningSettings(profile="throughput")}, "throughput"),
    ({"tuning": TuningSettings(profile="latency")}, "latency"),
])
def test_auto_picks_latency_for_a_run_that_streams_and_throughput_for_a_bounded_one(fields, expected):
    assert settings(**fields).profile is PROFILES[expected]


@pytest.mark.unit
def test_batch_delay_is_the_profiles_unless_given():
    assert settings().batch_delay == PROFILES["throughput"].batch_delay
    assert settings(kafka=STREAMING).batch_delay == PROFILES["latency"].batch_delay
    assert settings(kafka=STREAMING, tuning=TuningSettings(batch_delay=0.05)).batch_delay == 0.05


@pytest.mark.unit
def test_the_profile_comes_from_the_command_line_and_an_unknown_one_is_refused():
    args = build_parser().parse_args(["run", "--model", MODEL, "--input", CHICKS, "--profile", "latency"])
    assert settings_from_args(args).profile.name == "latency"
    with pytest.raises(SettingsError, match="--profile must be one of auto, latency, throughput"):
        settings(tuning=TuningSettings(profile="fast"))


@pytest.mark.unit
def test_kafka_outputs_linger_as_the_profile_says_unless_the_user_set_it():
    assert sink_properties(STREAMING, PROFILES["latency"].sink_linger_ms)["linger.ms"] == "0"
    assert "linger.ms" not in sink_properties(STREAMING, PROFILES["throughput"].sink_linger_ms)
    mine = KafkaSettings(bootstrap="127.0.0.1:9092", topics=("events",), properties=(("linger.ms", "20"),))
    assert sink_properties(mine, 0)["linger.ms"] == "20"


@pytest.mark.minicluster
def test_flinks_buffer_timeout_is_the_profiles_unless_a_flink_option_says_otherwise():
    from jobs.runtime.environment import flink_configuration

    def buffer_timeout(run: Settings) -> str:
        return flink_configuration(run, None).to_dict()["execution.buffer-timeout.interval"]

    assert buffer_timeout(settings(kafka=STREAMING)) == "1 ms"
    assert buffer_timeout(settings()) == "100 ms"
    assert buffer_timeout(settings(kafka=STREAMING,
                                   flink_options=(("execution.buffer-timeout.interval", "5 ms"),))) == "5 ms"

