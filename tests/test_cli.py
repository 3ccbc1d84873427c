"""``riverflink run`` from a shell: bad arguments are one line and no job; a good run prints a summary."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

from tests.support.models import DATA, EXAMPLES

RIVERFLINK = [sys.executable, "-m", "jobs.cli"]
ROOT = EXAMPLES.parent


def riverflink(*args, env=None):
    return subprocess.run([*RIVERFLINK, *args], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)


def without_java() -> dict:
    """An environment in which starting Flink's JVM would fail loudly, to prove no job is started."""
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "PATH")}
    env["PATH"] = str(pathlib.Path(sys.executable).parent)
    return env


CHICKS = str(DATA / "chick_weights.jsonl")
MODEL = f"{EXAMPLES}/regressor.py:model"


@pytest.mark.unit
@pytest.mark.parametrize(
    "args, message",
    [
        (["--input", CHICKS], "the following arguments are required: --model"),
        (["--model", "no_such.module:model", "--input", CHICKS], "cannot import"),
        (["--model", "river.preprocessing:StandardScaler", "--input", CHICKS], "transformer"),
        (["--model", MODEL, "--input", "no/such/file.jsonl"], "no such file or directory"),
        (["--model", MODEL], "no input"),
        (["--model", MODEL, "--input", CHICKS, "--parallelism", "0"], "--parallelism must be at least 1"),
        (["--model", MODEL, "--input", CHICKS, "--batch-lines", "0"], "--batch-lines must be at least 1"),
        (["--model", MODEL, "--input", CHICKS, "--batch-delay", "-1"], "--batch-delay must be zero or more"),
        (["--model", MODEL, "--input", CHICKS, "--state-backend", "memory"], "invalid choice: 'memory'"),
        (["--model", MODEL, "--input", CHICKS, "--metric", "Nonsense"], "not a metric class"),
        (["--model", MODEL, "--input", CHICKS, "--metric", "Accuracy"], "does not work with a regressor"),
        (["--model", MODEL, "--input", CHICKS, "--checkpoint-interval", "-1"], "must be positive"),
        (["--model", MODEL, "--input", CHICKS, "--predictions", "p", "--metrics", "p"], "share one destination"),
        (["--model", MODEL, "--input", CHICKS, "--predictions", CHICKS], "is a file"),
        (["--model", MODEL, "--kafka-topic", "events"], "given without --kafka-bootstrap"),
        (["--model", MODEL, "--input", CHICKS, "--predictions", "kafka://p"], "given without --kafka-bootstrap"),
        (["--model", MODEL, "--input", CHICKS, "--kafka-bootstrap", "h:1"], "no --kafka-topic and no kafka:// output"),
        (["--model", MODEL, "--kafka-bootstrap", "h:1", "--kafka-topic", "bad topic!"], "not a Kafka topic name"),
        (["--model", MODEL, "--input", CHICKS, "--kafka-stop-at-latest"], "needs --kafka-topic"),
        (["--model", MODEL, "--kafka-bootstrap", "h:1", "--kafka-topic", "t", "--kafka-offsets", "yesterday"],
         "--kafka-offsets must be one of earliest, latest, committed"),
        (["--model", MODEL, "--kafka-bootstrap", "h:1", "--kafka-topic", "t", "--kafka-offsets", "2026-01-01T00:00"],
         "give a time zone"),
        (["--model", MODEL, "--kafka-bootstrap", "h:1", "--kafka-topic", "t", "--kafka-property", "group.id=g"],
         "is set by riverflink"),
        (["--model", MODEL, "--kafka-bootstrap", "h:1", "--kafka-topic", "t", "--kafka-delivery", "maybe"],
         "invalid choice: 'maybe'"),
        (["--model", MODEL, "--input", CHICKS, "--detached"], "--detached needs --jobmanager"),
        (["--model", MODEL, "--input", CHICKS, "--jobmanager", "nohost"], "--jobmanager must be HOST:PORT"),
        (["--model", MODEL, "--input", CHICKS, "--from-savepoint", "no/such/savepoint"], "no such savepoint"),
        (["--model", MODEL, "--input", CHICKS, "--watch-inputs", "1", "--kafka-bootstrap", "h:1", "--kafka-topic", "t"],
         "choose one"),
        (["--model", MODEL, "--input", CHICKS, "--on-drift", "reset"], "--on-drift reset needs a --drift-detector"),
        (["--model", MODEL, "--input", CHICKS, "--events", "e"], "--events reports promotions and drifts"),
        (["--model", MODEL, "--input", CHICKS, "--drift-detector", "Nope"], "not a detector class of river.drift"),
        (["--model", MODEL, "--input", CHICKS, "--drift-detector", "DDM"], "watches right/wrong answers"),
        (["--model", MODEL, "--input", CHICKS, "--challenger", f"{EXAMPLES}/classifier.py:model"],
         "is a classifier, but --model is a regressor"),
        (["--model", MODEL, "--input", CHICKS, "--challenger", MODEL], "repeats --model"),
        (["--model", MODEL, "--input", CHICKS, "--challenger", "x.pkl", "--promotion-window", "0"],
         "--promotion-window must be at least 1"),
    ],
)
def test_bad_arguments_exit_non_zero_with_one_line_and_no_job(args, message, tmp_path):
    done = riverflink("run", *args, "--out", str(tmp_path / "out"), env=without_java())
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("riverflink: error:") and message in lines[0], done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "out").exists()


@pytest.mark.unit
@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "--model", MODEL], "no input"),
        (["evaluate", "--model", MODEL, "--input", CHICKS, "--plot", "no/such/dir/plot.png"], "no such directory"),
        (["models", "show", "no/such/models"], "no such models directory"),
    ],
)
def test_evaluate_and_models_refuse_bad_arguments_with_one_line(args, message):
    done = riverflink(*args, env=without_java())
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("riverflink: error:") and message in lines[0], done.stderr


@pytest.mark.minicluster
def test_run_prints_a_summary_a_person_can_read(tmp_path):
    out = tmp_path / "out"
    done = riverflink("run", "--model", MODEL, "--input", CHICKS, "--out", str(out), "--parallelism", "2",
                      "--checkpoint-interval", "1")
    assert done.returncode == 0, done.stderr
    assert "578 events over 50 keys" in done.stdout
    assert "MAE = " in done.stdout and "over 578 labelled events" in done.stdout
    assert "dead letters          0 (none)" in done.stdout
    assert re.search(r"models +50 keys, [0-9.]+ K?B a key \([0-9.]+ [KMG]B per million keys\) ->", done.stdout), done.stdout
    again = riverflink("run", "--model", MODEL, "--input", CHICKS, "--out", str(out), "--overwrite")
    assert again.returncode == 0, again.stderr
    assert "578 events over 50 keys" in again.stdout, "the earlier run's predictions were not cleared"


@pytest.mark.unit
def test_a_client_property_is_never_echoed(tmp_path):
    done = riverflink("run", "--model", MODEL, "--kafka-bootstrap", "h:1", "--kafka-topic", "t",
                      "--kafka-property", "hunter2-password", env=without_java())
    assert done.returncode == 2 and "--kafka-property: must be KEY=VALUE" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout


@pytest.mark.unit
def test_produce_refuses_without_a_broker_address():
    done = riverflink("produce", "--topic", "t", CHICKS, env=without_java())
    assert done.returncode == 2 and done.stderr.strip() == "riverflink: error: riverflink produce needs --kafka-bootstrap HOST:PORT"


@pytest.mark.unit
def test_cluster_stop_ends_nothing_it_did_not_start(tmp_path):
    done = riverflink("cluster", "stop", "--port", "1", "--dir", str(tmp_path), env=without_java())
    assert done.returncode == 0 and done.stdout.strip() == "no Flink cluster started by riverflink is running on 127.0.0.1:1"


@pytest.mark.unit
def test_cluster_start_refuses_an_empty_cluster(tmp_path):
    done = riverflink("cluster", "start", "--taskmanagers", "0", "--dir", str(tmp_path), env=without_java())
    assert done.returncode == 2
    assert done.stderr.strip() == "riverflink: error: a cluster needs at least one TaskManager with at least one slot"
