"""The job's Flink options: what a setting turns on, and that a --flink-option still wins."""

import pytest

from jobs.settings import Settings
from tests.test_cli import CHICKS, MODEL

pytestmark = pytest.mark.minicluster


def incremental(**fields) -> str | None:
    from jobs.runtime.environment import flink_configuration

    run = Settings(model=MODEL, inputs=(CHICKS,), **fields)
    return flink_configuration(run, None).to_dict().get("execution.checkpointing.incremental")


def test_rocksdb_checkpoints_are_incremental_unless_a_flink_option_says_otherwise():
    assert incremental(state_backend="rocksdb") == "true"
    assert incremental() is None  # hashmap: Flink's default
    assert incremental(state_backend="rocksdb", flink_options=(("execution.checkpointing.incremental", "false"),)) == "false"
