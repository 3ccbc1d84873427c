"""``riverflink serve`` over what a real job wrote: a bounded job's directory, and a streaming job's Kafka topic.

What it proves (SPEC §6): every key is answered as its latest model answers,
an unseen key as the job's template, bad bodies get 400; a server following a
streaming job's compacted topic sees a key's new version within two seconds,
forwards events to the job over HTTP, and rebuilds from the topic alone.
"""

import base64
import contextlib
import json
import os
import random
import statistics
import sys
import time

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from jobs.local.processes import end, launch
from state.envelope import load_state
from state.snapshots import load_latest_models
from tests.support.flink import run
from tests.support.kafka import new_topic
from tests.support.models import DATA, EXAMPLES, ROOT
from tests.support.serving import serve_process

CLASSIFIER = f"{EXAMPLES / 'classifier.py'}:model"


def _events(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.minicluster
def test_every_key_is_served_as_its_latest_model_and_an_unseen_key_as_the_template(tmp_path):
    outputs = run(tmp_path, CLASSIFIER, [DATA / "phishing.jsonl"], parallelism=2)
    models_out = tmp_path / "out" / "models_out"
    models = load_latest_models(models_out)
    versions = {}
    for snapshot in outputs.snapshots:
        versions[snapshot["key"]] = max(versions.get(snapshot["key"], 0), snapshot["model_version"])
    assert len(outputs.templates) == 1 and len(models) == 10  # one per provider
    template = load_state(base64.b64decode(outputs.templates[0]["model"]))
    last_x = {event["key"]: event["x"] for event in _events(DATA / "phishing.jsonl")}
    with serve_process(tmp_path / "serve.log", "--models", str(models_out)) as client:
        status, health = client.request("GET", "/health")
        assert (status, health["keys"], health["template"]) == (200, len(models), True)
        status, answers = client.predict([{"key": key, "x": last_x[key]} for key in sorted(models)])
        assert status == 200 and [answer["key"] for answer in answers] == sorted(models)
        for answer in answers:
            model, x = models[answer["key"]], last_x[answer["key"]]
            assert answer["prediction"] == model.predict_one(x)
            assert answer["proba"] == {str(label): p for label, p in model.predict_proba_one(x).items()}
            assert answer["model_version"] == versions[answer["key"]]
        x = last_x["provider-0"]
        status, unseen = client.predict({"key": "a-key-the-job-never-saw", "x": x})
        assert status == 200 and (unseen["model_version"], unseen["model_ts"]) == (0, None)
        assert unseen["proba"] == {str(label): p for label, p in template.predict_proba_one(x).items()}
        for body, reason in (('{"key": "provider-0"', "not_json"), ('{"x": {}}', "missing_key"),
                             ('{"key": "provider-0", "x": {"https": [1]}}', "invalid_features"),
                             ('{"key": "provider-0", "x": {"https": 1e999}}', "non_finite_value"),
                             ('{"key": "provider-0", "x": {"https": "yes"}}', "model_error")):
            status, answer = client.request("POST", "/predict", body)
            assert (status, answer["error"]) == (400, reason), body
        assert client.predict({"key": "provider-0", "x": x})[0] == 200  # a model error stopped nothing


@contextlib.contextmanager
def _streaming_job(log, *options: str):
    """``riverflink run`` from the CLI until the block ends, stopped by its pid."""
    job = launch([sys.executable, "-m", "jobs.cli", "run", "--model", CLASSIFIER, "--quiet", *options], log,
                 cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": "0"})
    try:
        yield job
    finally:
        end([job], timeout=60)


def _served_version(client, key: str) -> int | None:
    """The key's served model version; None while the job has written nothing yet, not even its template."""
    status, answer = client.predict({"key": key, "x": {"https": 1.0}})
    if status == 503 and answer["error"] == "no_template":
        return None
    assert status == 200, answer
    return answer["model_version"]


def _labelled(key: str, count: int, start: int = 0) -> str:
    rng = random.Random(f"{key}-{start}")
    return "\n".join(json.dumps({"key": key, "id": f"{key}-{i}", "x": {"https": rng.random(), "long_url": rng.random()},
                                 "y": rng.random() > 0.5}) for i in range(start, start + count))


def _wait_for(condition, timeout: float, what: str, log) -> float:
    """Seconds until ``condition()`` held; fails with the log's tail after ``timeout``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what} after {timeout} s; {log.read_text()[-3000:]}"
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.mark.kafka
def test_a_server_follows_a_streaming_job_through_a_compacted_topic(kafka_bootstrap, tmp_path):
    topic = new_topic(kafka_bootstrap, partitions=2)
    models = f"{topic}-models"
    job_log = tmp_path / "job.log"
    serve = ("--models", f"kafka://{models}", "--kafka-bootstrap", kafka_bootstrap)
    with _streaming_job(job_log, "--kafka-bootstrap", kafka_bootstrap, "--kafka-topic", topic,
                        "--models-out", f"kafka://{models}", "--snapshot-interval", "1",
                        "--checkpoint-interval", "0.5", "--out", str(tmp_path / "out")):
        with serve_process(tmp_path / "serve.log", *serve, "--kafka-topic", topic) as client:
            # Events over HTTP, forwarded to the job's topic; the first ones wait for the job to start.
            status, answer = client.request("POST", "/events", _labelled("warm", 3))
            assert (status, answer) == (202, {"forwarded": 3})
            _wait_for(lambda: _served_version(client, "warm") == 3, 240, "the job's first snapshot", job_log)
            lags = []
            for round_ in range(5):
                key = f"user-{round_}"
                assert client.request("POST", "/events", _labelled(key, 10))[0] == 202
                lags.append(_wait_for(lambda: _served_version(client, key) == 10, 30, f"{key}'s snapshot", job_log))
            status, answer = client.request("POST", "/events", '{"key": "k", "x": {"a": NaN}}')
            assert (status, answer["error"]) == (400, "non_finite_value")  # checked as the job checks it
            served = {key: _served_version(client, key) for key in ("warm", *(f"user-{i}" for i in range(5)))}
    assert statistics.median(lags) <= 2.0, f"freshness lags {lags}"
    # No job now: a new server rebuilds every key from the compacted topic alone.
    with serve_process(tmp_path / "again.log", *serve) as client:
        assert client.request("GET", "/health")[1]["keys"] == len(served)
        assert {key: _served_version(client, key) for key in served} == served
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:  # riverflink run created it compacted: each key's latest snapshot stays
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, models, ["cleanup.policy"])])
    finally:
        admin.close()
    assert described["topic"][models]["cleanup.policy"]["value"] == "compact"
