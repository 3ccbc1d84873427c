"""The job against a real Kafka broker: SPEC §5.1 from a topic, §5.3 for Kafka's bad records, §5.4 files-then-Kafka.

Every job here but the last reads its topic with stop-at-latest, so it ends
by itself like a file job; the last streams until it is interrupted.
"""

import json
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from jobs.cli.failures import FLINK_LOG_DIR
from jobs.cli.produce import publish
from jobs.settings import KafkaSettings
from operators.dead_letters import Reason
from state.destinations import read_records
from tests.support import datagen
from tests.support.flink import expected_predictions, run
from tests.support.kafka import new_topic, read_topic, send
from tests.support.models import DATA, ROOT, example
from tests.support.processes import descendants, interruptible
from tests.support.reference import river_loop, same_model

pytestmark = [pytest.mark.minicluster, pytest.mark.kafka]

SECRET = "hunter2-never-logged"
# Given to source and sink; unused on a PLAINTEXT listener, but handed to every Kafka client the job creates.
SECRET_JAAS = f'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="{SECRET}";'

KAFKA_BAD_RECORDS = [
    ((b"k1", None), Reason.NO_VALUE),  # a tombstone
    ((None, b"\xff\xfe{not utf-8"), Reason.NOT_JSON),
    ((None, b"{not json"), Reason.NOT_JSON),
    ((b"k1", b"[1, 2]"), Reason.NOT_OBJECT),
    ((None, b'{"x": {"a": 1}}'), Reason.MISSING_KEY),
    ((b"k1", b'{"key": "k1", "x": {"a": [1]}}'), Reason.INVALID_FEATURES),
]


def classifier_events() -> list[str]:
    """Real data (river's Phishing, 10 keys) and a generated stream of 60 interleaved keys."""
    real = (DATA / "phishing.jsonl").read_text().splitlines()
    return real + datagen.to_lines(datagen.many_keys("classifier", n_keys=60, n_events=2000))


def test_topic_read_at_parallelism_2_equals_plain_river(kafka_bootstrap, tmp_path):
    spec, template, _, new_metric = example("classifier")
    lines = classifier_events()
    topic = new_topic(kafka_bootstrap, partitions=3)
    half = len(lines) // 2
    publish(kafka_bootstrap, topic, [_file(tmp_path / "first.jsonl", lines[:half])])
    send(kafka_bootstrap, topic, [record for record, _ in KAFKA_BAD_RECORDS])  # between good events: the job goes on
    publish(kafka_bootstrap, topic, [_file(tmp_path / "second.jsonl", lines[half:])])

    outputs = run(tmp_path, spec, [], kafka=KafkaSettings(bootstrap=kafka_bootstrap, topics=(topic,),
                                                          stop_at_latest=True, group="reference"))

    expected, expected_overall = river_loop(lines, template, "classifier", new_metric)
    assert outputs.predictions_by_id() == expected_predictions(expected)
    final = outputs.final_metrics()
    probes = [json.loads(line)["x"] for line in lines[:40]]
    for key, result in expected.items():
        assert final[key]["value"] == result.metric.get() and final[key]["n"] == result.n, key
        assert same_model(outputs.models[key], result.model, probes), key
    assert set(outputs.models) == set(expected)
    assert final[None]["value"] == pytest.approx(expected_overall.get(), rel=1e-9)
    assert sorted(d["reason"] for d in outputs.dead_letters) == sorted(reason for _, reason in KAFKA_BAD_RECORDS)
    assert "\ufffd" in next(d["raw"] for d in outputs.dead_letters if d["raw"].endswith("{not utf-8"))


def _metric_values(outputs) -> dict:
    return {key: (record["value"], record["n"]) for key, record in outputs.final_metrics().items()}


def _file(path, lines: list[str]):
    datagen.write_lines(path, lines)
    return path


@pytest.fixture(scope="module")
def delayed_label_stream():
    """Predictions now, labels 1-25 events later: a label may arrive in Kafka for a prediction made from a file."""
    return datagen.to_lines(datagen.with_delayed_labels(datagen.many_keys("regressor", n_keys=40, n_events=1500)))


@pytest.fixture(scope="module")
def file_only(delayed_label_stream, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("file-only")
    spec = example("regressor")[0]
    return run(tmp_path, spec, [_file(tmp_path / "all.jsonl", delayed_label_stream)])


@pytest.mark.parametrize("delivery", ["exactly-once", "at-least-once"])
def test_files_then_kafka_equals_files_alone(delivery, delayed_label_stream, file_only, kafka_bootstrap, tmp_path):
    spec, template, _, new_metric = example("regressor")
    lines = delayed_label_stream
    split = len(lines) * 2 // 3
    topic = new_topic(kafka_bootstrap, partitions=3)
    publish(kafka_bootstrap, topic, [_file(tmp_path / "live.jsonl", lines[split:])])
    predictions_topic = new_topic(kafka_bootstrap, partitions=2)

    outputs = run(tmp_path, spec, [_file(tmp_path / "history.jsonl", lines[:split])],
                  kafka=KafkaSettings(
                      bootstrap=kafka_bootstrap, topics=(topic,), stop_at_latest=True, delivery=delivery,
                      properties=(("sasl.jaas.config", SECRET_JAAS), ("client.dns.lookup", "use_all_dns_ips"))),
                  destinations={"predictions": f"kafka://{predictions_topic}"}, job_name=f"hybrid-{delivery}")

    assert outputs.predictions_by_id() == file_only.predictions_by_id()  # raises on a duplicate
    per_key, per_key_from_files = _metric_values(outputs), _metric_values(file_only)
    assert per_key.pop(None) == pytest.approx(per_key_from_files.pop(None), rel=1e-9)  # summation order may differ
    assert per_key == per_key_from_files
    assert outputs.dead_letters == file_only.dead_letters == []
    expected, _ = river_loop(lines, template, "regressor", new_metric)
    assert outputs.predictions_by_id() == expected_predictions(expected)
    probes = [json.loads(line)["x"] for line in lines[:40] if "x" in json.loads(line)]
    for key, result in expected.items():
        assert same_model(outputs.models[key], result.model, probes), key
    # Kafka outputs are keyed by entity: all of a key's predictions in one partition, in order.
    records = read_topic(kafka_bootstrap, predictions_topic)
    partitions = {}
    for record in records:
        assert record.key.decode() == json.loads(record.value)["key"]
        partitions.setdefault(record.key, set()).add(record.partition)
    assert all(len(used) == 1 for used in partitions.values())
    assert len(records) == sum(len(result.predictions) for result in expected.values())
    assert not [log.name for log in FLINK_LOG_DIR.iterdir() if log.is_file() and SECRET in log.read_text(errors="replace")]


def test_starting_offsets_committed_and_by_time(kafka_bootstrap, tmp_path):
    spec = example("regressor")[0]
    events = datagen.to_lines(datagen.many_keys("regressor", n_keys=10, n_events=300))
    topic = new_topic(kafka_bootstrap, partitions=2)
    publish(kafka_bootstrap, topic, [_file(tmp_path / "a.jsonl", events[:200])])
    time.sleep(0.05)
    between = int(time.time() * 1000)  # broker timestamps of the first batch are before this
    time.sleep(0.05)

    def ids_read(name, offsets, group):
        outputs = run(tmp_path / name, spec, [], kafka=KafkaSettings(bootstrap=kafka_bootstrap, topics=(topic,),
                                                                     stop_at_latest=True, offsets=offsets, group=group))
        return sorted(int(p["id"][1:]) for p in outputs.predictions)

    assert ids_read("first", "committed", "resuming") == list(range(200))  # no committed offsets yet: earliest
    publish(kafka_bootstrap, topic, [_file(tmp_path / "b.jsonl", events[200:])])
    assert ids_read("second", "committed", "resuming") == list(range(200, 300))  # committed by the first run
    assert ids_read("by-time", str(between), "another-group") == list(range(200, 300))


def test_a_streaming_run_stops_on_ctrl_c_and_leaves_no_process(kafka_bootstrap, tmp_path):
    topic = new_topic(kafka_bootstrap, partitions=2)
    publish(kafka_bootstrap, topic, [DATA / "chick_weights.jsonl"])
    out = tmp_path / "out"
    job = subprocess.Popen([sys.executable, "-m", "jobs.cli", "run", "--model", "examples/regressor.py:model",
                            "--kafka-bootstrap", kafka_bootstrap, "--kafka-topic", topic, "--out", str(out),
                            "--checkpoint-interval", "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, preexec_fn=interruptible)
    try:
        deadline = time.monotonic() + 180
        while sum(1 for _ in read_records(out / "predictions")) < 578:  # all committed: it is streaming
            assert job.poll() is None and time.monotonic() < deadline, job.stderr.read() if job.poll() else "timeout"
            time.sleep(1)
        started = descendants(job.pid)
        assert started, "the JVM runs as a child process"
        job.send_signal(signal.SIGINT)
        stdout, stderr = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 130, stderr
    assert "until stopped (Ctrl-C)" in stderr and "stopped; outputs are committed" in stderr
    time.sleep(2)
    assert not [pid for pid in started if pathlib.Path(f"/proc/{pid}").exists()]
