"""Test-session guards shared by every test module, and what each test needs to run.

Every test says what it needs with one or more marks (registered in pyproject.toml):
``unit`` (pure Python, no JVM), ``minicluster`` (a JVM in or beside the test process:
Flink's embedded mini-cluster, or a Java tool), ``cluster`` (a local standalone Flink
cluster), ``kafka`` (a real local broker). ``scripts/test.sh -m unit`` runs the fast
tests, with no ``java`` needed. A test without a mark stops the collection; doctests are
``unit`` unless :data:`JVM_DOCTESTS` says otherwise.
"""

import os
import shutil

import pytest
from _pytest.doctest import DoctestItem

from jobs.runtime.jvm import WORKER_HASH_SEED

MARKS = ("unit", "minicluster", "cluster", "kafka")
# Doctest files (relative to the project root) whose examples start a JVM, and their marks.
JVM_DOCTESTS = {"README.md": ("minicluster",)}  # the quickstart runs a job on the mini-cluster


def pytest_configure(config):
    # The reference loop runs in this process and the job in Flink's Python
    # workers; models that iterate sets (KMeans) only agree if both use the
    # same string hash seed. scripts/test.sh sets it.
    if os.environ.get("PYTHONHASHSEED") != WORKER_HASH_SEED:
        raise RuntimeError(
            f"run the tests with PYTHONHASHSEED={WORKER_HASH_SEED} (scripts/test.sh sets it): "
            "the plain-river reference must hash strings as riverflink's workers do"
        )


def _marks(item) -> set[str]:
    return {mark.name for mark in item.iter_markers() if mark.name in MARKS}


def _mark_doctest(item) -> None:
    where = item.path.relative_to(item.config.rootpath).as_posix()
    for mark in JVM_DOCTESTS.get(where, ("unit",)):
        item.add_marker(mark)


def _mistake(item) -> str | None:
    """Why ``item``'s marks are wrong, or None."""
    marks = _marks(item)
    if not marks:
        return f"no mark: give it one of {', '.join(MARKS)} (pytestmark = pytest.mark.unit, or @pytest.mark.unit)"
    if "unit" in marks and len(marks) > 1:
        return f"marked unit and {', '.join(sorted(marks - {'unit'}))}: a unit test starts no JVM"
    if "kafka_bootstrap" in getattr(item, "fixturenames", ()) and "kafka" not in marks:
        return "uses the kafka_bootstrap fixture without the kafka mark"
    return None


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by mark
def pytest_collection_modifyitems(items):
    mistakes = {}  # one line per test function, not per parameter set
    for item in items:
        if isinstance(item, DoctestItem):
            _mark_doctest(item)
        elif (mistake := _mistake(item)) is not None:
            mistakes.setdefault(item.nodeid.split("[")[0], mistake)
    if mistakes:
        lines = "\n".join(f"  {test}: {mistake}" for test, mistake in mistakes.items())
        raise pytest.UsageError(f"tests marked wrong (see tests/conftest.py):\n{lines}")


def pytest_collection_finish(session):
    """Stop before the first test if a selected test needs Java and there is none."""
    if session.config.option.collectonly or shutil.which("java") is not None:
        return
    needing = [item for item in session.items if "unit" not in _marks(item)]
    if needing:
        raise pytest.UsageError(
            "riverflink needs Java 17 (java on PATH) for Flink and Kafka. Selected tests that start a JVM: "
            f"{len(needing)} of {len(session.items)} (first: {needing[0].nodeid}). "
            "`bash scripts/test.sh -m unit` runs the tests that need no Java."
        )


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory):
    """One real broker for the whole test session, started on first use (about 10 s) and stopped at the end."""
    from tests.support.kafka import local_broker  # only tests marked kafka get here

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
