"""SPEC §8: learn_per_key in a user's own PyFlink job equals plain river, as ``riverflink run`` does."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
from pyflink.common import Configuration, Types
from pyflink.datastream import RuntimeExecutionMode, StreamExecutionEnvironment

from examples import own_job
from jobs.cli.metric_reports import final_metrics
from jobs.runtime.jars import FLINK_HOME
from jobs.runtime.jvm import WORKER_BOOT
from operators import learn_per_key
from state.destinations import read_records
from state.exceptions import SettingsError
from state.snapshots import load_latest_models
from tests.support import datagen
from tests.support.cluster import local_cluster
from tests.support.flink import expected_predictions, predictions_by_id
from tests.support.models import DATA, ROOT, example
from tests.support.project import user_environment
from tests.support.reference import river_loop, same_model

pytestmark = pytest.mark.minicluster


# Where a thread-mode worker's interpreter got its sitecustomize from, asked by a map in a user's job.
PROBE = """
from operators import learn_per_key
from pyflink.common import Types
from pyflink.datastream import StreamExecutionEnvironment

def where(_):
    import sys
    return str(getattr(sys.modules.get("sitecustomize"), "__file__", None))

env = StreamExecutionEnvironment.get_execution_environment()
lines = env.from_collection(["{}"], type_info=Types.STRING())
learn_per_key(lines, "river.linear_model:LogisticRegression")
with lines.map(where, output_type=Types.STRING()).execute_and_collect() as found:
    print("sitecustomize:", *found)
"""


def run_script(*command: str) -> subprocess.CompletedProcess:
    """A user's job in a process of its own, as they would start it: its JVM is PyFlink's, not riverflink's."""
    done = subprocess.run([sys.executable, *command], cwd=ROOT, env={**user_environment(), "PYTHONHASHSEED": "0"},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def assert_equals_plain_river(lines: list[str], out, kind: str = "classifier", models: bool = True) -> None:
    _, template, _, new_metric = example(kind)
    expected, overall = river_loop(lines, template, kind, new_metric)
    assert list(read_records(out / "dead_letters")) == []
    assert predictions_by_id(read_records(out / "predictions")) == expected_predictions(expected)
    final = final_metrics(read_records(out / "metrics"))[None]
    for key, result in expected.items():
        assert (final[key]["value"], final[key]["n"]) == (result.metric.get(), result.n), key
    assert final[None]["value"] == pytest.approx(overall.get(), rel=1e-9)
    if models:
        learned = load_latest_models(out / "models")
        probes = [json.loads(line)["x"] for line in lines if "x" in json.loads(line)][:20]
        assert set(learned) == set(expected)
        for key, result in expected.items():
            assert same_model(learned[key], result.model, probes), key


def test_a_users_own_job_with_delayed_labels_equals_plain_river_at_parallelism_2(tmp_path):
    real = (DATA / "phishing.jsonl").read_text().splitlines()
    generated = datagen.many_keys("classifier", n_keys=40, n_events=1500)
    lines = real + datagen.to_lines(datagen.with_delayed_labels(generated))
    events = datagen.write_lines(tmp_path / "events.jsonl", lines)
    spec = str(ROOT / "examples" / "classifier.py") + ":model"
    run_script("tests/fixtures/own_job.py", str(events), spec, str(tmp_path / "out"))
    assert_equals_plain_river(lines, tmp_path / "out")


def test_the_example_job_learns_what_plain_river_learns(tmp_path):
    run_script("examples/own_job.py", str(tmp_path / "out"), "--events", "3000", "--parallelism", "2")
    lines = [own_job.event_line(n) for n in range(3000)]
    assert_equals_plain_river(lines, tmp_path / "out", models=False)


def test_the_workers_of_a_users_job_start_with_riverflinks_worker_boot():
    done = run_script("-c", PROBE)
    assert f"sitecustomize: {WORKER_BOOT / 'sitecustomize.py'}" in done.stdout, done.stdout + done.stderr
    assert "before creating the environment" not in done.stderr, done.stderr


def test_an_environment_made_before_riverflink_was_imported_is_warned_about():
    made_first = "from pyflink.datastream import StreamExecutionEnvironment as E; E.get_execution_environment(); " \
                 "from operators import learn_per_key"
    done = run_script("-c", made_first)
    assert "run `from operators import learn_per_key` before creating the environment" in done.stderr, done.stderr


@pytest.fixture
def environment_kept():
    """This process's environment as it was before the test: the cluster's warm-up job sets Flink's folders in it."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.cluster
def test_the_example_job_runs_on_a_cluster_through_flink_run(tmp_path, environment_kept):
    with local_cluster(tmp_path / "cluster", taskmanagers=1, slots=2) as (rest, _):
        flink = FLINK_HOME / "bin" / "flink"
        env = {**os.environ, "PYTHONHASHSEED": "0", "PATH": f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}"}
        command = [str(flink), "run", "-m", rest, "-py", "examples/own_job.py", "-pyexec", sys.executable,
                   str(tmp_path / "out"), "--events", "3000", "--parallelism", "2"]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    lines = [own_job.event_line(n) for n in range(3000)]
    assert_equals_plain_river(lines, tmp_path / "out", models=False)


def test_a_batch_environment_or_another_python_mode_is_refused_with_what_to_set():
    config = Configuration()
    config.set_string("python.execution-mode", "thread")
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    lines = env.from_collection(["{}"], type_info=Types.STRING())
    with pytest.raises(SettingsError, match="needs execution.runtime-mode STREAMING"):
        learn_per_key(lines, "river.linear_model:LogisticRegression")
    env.set_runtime_mode(RuntimeExecutionMode.STREAMING)
    with pytest.raises(SettingsError, match="in thread mode, and learn_per_key was asked for execution_mode='process'"):
        learn_per_key(lines, "river.linear_model:LogisticRegression", execution_mode="process")
