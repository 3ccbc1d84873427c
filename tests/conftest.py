"""Test-session guards shared by every test module."""

import os

import pytest

from jobs.runtime.environment import WORKER_HASH_SEED
from tests.support.kafka import local_broker


def pytest_configure(config):
    # The reference loop runs in this process and the job in Flink's Python
    # workers; models that iterate sets (KMeans) only agree if both use the
    # same string hash seed. scripts/test.sh sets it.
    if os.environ.get("PYTHONHASHSEED") != WORKER_HASH_SEED:
        raise RuntimeError(
            f"run the tests with PYTHONHASHSEED={WORKER_HASH_SEED} (scripts/test.sh sets it): "
            "the plain-river reference must hash strings as riverflink's workers do"
        )


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory):
    """One real broker for the whole test session, started on first use (about 10 s) and stopped at the end."""
    with local_broker(tmp_path_factory.mktemp("kafka-broker")) as bootstrap:
        yield bootstrap


@pytest.fixture(autouse=True)
def _no_worker_environment_leaks():
    """Keep one test's in-process Python workers from breaking the next test's subprocesses.

    In process mode on the mini-cluster, PyFlink's Python workers run inside
    the test process and set PYFLINK_GATEWAY_DISABLED there; a riverflink
    client started afterwards would inherit it and refuse to start Flink.
    """
    yield
    os.environ.pop("PYFLINK_GATEWAY_DISABLED", None)
