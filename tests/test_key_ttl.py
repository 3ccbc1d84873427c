"""``--key-ttl`` and ``--label-ttl`` on real Flink: an idle key starts again from the template, keyed state
stays bounded, and a label later than its TTL is a dead letter.

A processing-time gap is what makes a key idle, and a bounded file job reads
its input in one go; so the first test pauses the job itself (a model that
sleeps on one event), and the others stream from Kafka and wait between batches.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer

from benchmarks.key_ttl import checkpoint_bytes, keys_in_checkpoint, latest_checkpoint, new_key_events
from jobs.cli.produce import publish
from jobs.model_spec import load_template
from jobs.settings import LifecycleSettings, TuningSettings
from operators.dead_letters import Reason
from operators.model_kinds import make_metric
from tests.support import datagen
from tests.support.flink import expected_predictions, predictions_by_id, run
from tests.support.kafka import new_topic
from tests.support.models import ROOT, example
from tests.support.processes import interruptible
from tests.support.reference import read_trace, river_loop

pytestmark = pytest.mark.minicluster

PAUSING_MODEL = '''
import time

from river import linear_model


class PausingRegression(linear_model.LinearRegression):
    """A linear regression that sleeps while predicting for an event with a ``pause_s`` feature."""

    def predict_one(self, x, **kwargs):
        time.sleep(x.get("pause_s", 0))
        return super().predict_one(x, **kwargs)


model = PausingRegression()
'''

PAUSING_WHILE_LEARNING = PAUSING_MODEL.replace("while predicting", "while learning").replace(
    "def predict_one(self, x, **kwargs):", "def learn_one(self, x, y, **kwargs):").replace(
    "return super().predict_one(x, **kwargs)", "return super().learn_one(x, y, **kwargs)")


def _file(path, lines: list[str]):
    datagen.write_lines(path, lines)
    return path


def test_a_key_back_after_the_ttl_starts_from_the_template_and_idle_keys_report_nothing(tmp_path):
    # Parallelism 1: every key waits while the learner sleeps 6.5 s on the pause event, so
    # "a" and "c" are idle for longer than the 3 s TTL whatever the machine's speed.
    (tmp_path / "pausing.py").write_text(PAUSING_MODEL)
    spec = f"{tmp_path / 'pausing.py'}:model"
    template, kind = load_template(spec)
    new_metric = make_metric(kind, None, template).clone
    events = datagen.many_keys("regressor", n_keys=2, n_events=60)
    for event in events:
        event["key"] = {"k0": "a", "k1": "c"}[event["key"]]
    a_events = [e for e in events if e["key"] == "a"]
    before = datagen.to_lines([e for e in events if e["key"] == "c"] + a_events[:12])
    pause = [json.dumps({"key": "b", "id": "pause", "x": {"pause_s": 6.5}, "y": 1.0})]
    after = datagen.to_lines(a_events[12:])
    outputs = run(tmp_path, spec, [datagen.write_lines(tmp_path / "in.jsonl", before + pause + after)], parallelism=1,
                  key_ttl=3, tuning=TuningSettings(metrics_interval=3600, snapshot_interval=3600))

    first, _ = river_loop(before, template, "regressor", new_metric)
    fresh, _ = river_loop(after, template, "regressor", new_metric)
    assert outputs.dead_letters == []
    expected = expected_predictions(first) | expected_predictions(fresh)
    expected[("b", "pause")] = (0.0, 0)
    assert outputs.predictions_by_id() == expected
    assert [p["model_version"] for p in outputs.predictions if p["key"] == "a"] == [*range(12), *range(len(after))]
    # "a" came back: it registered its end-of-input timer again and reports its new model only.
    # "b" and "c" were idle at the end: they report nothing.
    final = outputs.final_metrics()
    assert set(final) == {"a", None}
    assert final["a"]["n"] == fresh["a"].n == len(after) and final["a"]["value"] == fresh["a"].metric.get()
    assert [s["key"] for s in outputs.snapshots] == ["a"] and outputs.snapshots[0]["model_version"] == len(after)
    # (the job's copy of the by-value model class is another class object: compare answers, not models)
    probes = [json.loads(line)["x"] for line in before[:10]]
    answers = [outputs.models["a"].predict_one(x) for x in probes]
    assert answers == [fresh["a"].model.predict_one(x) for x in probes]
    never_expired = river_loop(before + after, template, "regressor", new_metric)[0]["a"].model
    assert answers != [never_expired.predict_one(x) for x in probes]


@pytest.mark.parametrize("key_cache_mb", [64, 0.004])  # 0.004: "a" is read back from Flink state on most events
def test_labels_after_the_label_ttl_are_dead_letters_and_teach_nothing(tmp_path, key_cache_mb):
    # The learner sleeps 3 s on the pause event: the predictions "a" made before it wait longer than the 1 s
    # label TTL, and the expiry check they registered fires (and writes their ids) before their labels come.
    (tmp_path / "pausing.py").write_text(PAUSING_MODEL)
    spec = f"{tmp_path / 'pausing.py'}:model"
    template, kind = load_template(spec)
    new_metric = make_metric(kind, None, template).clone
    events = [{**e, "key": "a"} for e in datagen.many_keys("regressor", n_keys=1, n_events=14)]
    waiting = [{k: v for k, v in e.items() if k != "y"} for e in events[:4]]
    labels = [{"key": "a", "id": e["id"], "y": e["y"]} for e in events[:4]]
    late = events[13]
    before = datagen.to_lines(waiting + events[4:13])
    pause = [json.dumps({"key": "b", "id": "pause", "x": {"pause_s": 3.0}, "y": 1.0})]
    after = datagen.to_lines([labels[0], labels[1], waiting[2], {k: v for k, v in late.items() if k != "y"},
                              {"key": "a", "id": late["id"], "y": late["y"]}])
    outputs = run(tmp_path, spec, [datagen.write_lines(tmp_path / "in.jsonl", before + pause + after)],
                  parallelism=1, label_ttl=1, tuning=TuningSettings(key_cache_mb=key_cache_mb))

    assert sorted((d["reason"], json.loads(d["raw"])["id"]) for d in outputs.dead_letters) == [
        (Reason.EXPIRED_ID, labels[0]["id"]), (Reason.EXPIRED_ID, labels[1]["id"])]
    # What plain river does without the expired labels (and without the re-sent prediction, which is dropped).
    reference, _ = river_loop(before + [after[3], after[4]], template, "regressor", new_metric)
    expected = expected_predictions(reference)
    expected[("b", "pause")] = (0.0, 0)
    assert outputs.predictions_by_id() == expected
    final = outputs.final_metrics()
    assert reference["a"].n == 10  # nine events learned before the pause, one after it
    assert (final["a"]["n"], final["a"]["value"]) == (reference["a"].n, reference["a"].metric.get())
    probes = [e["x"] for e in events]
    assert [outputs.models["a"].predict_one(x) for x in probes] == [reference["a"].model.predict_one(x) for x in probes]


def test_the_global_model_learns_no_label_that_came_after_the_label_ttl(tmp_path):
    # Both the learner and the global model sleep 3 s learning the pause event: the predictions "a" made
    # before it wait longer than the 1 s label TTL by each operator's clock, read at each event. The
    # global model's expiry timers (which drop the features of predictions still waiting) run too.
    (tmp_path / "pausing.py").write_text(PAUSING_WHILE_LEARNING)
    spec = f"{tmp_path / 'pausing.py'}:model"
    events = [{**e, "key": "a"} for e in datagen.many_keys("regressor", n_keys=1, n_events=10)]
    waiting = [{k: v for k, v in e.items() if k != "y"} for e in events[:2]]
    late = events[9]
    lines = datagen.to_lines(
        waiting + events[2:9] + [{"key": "b", "id": "pause", "x": {"pause_s": 3.0}, "y": 1.0}]
        + [{"key": "a", "id": e["id"], "y": e["y"]} for e in events[:2]]
        + [{k: v for k, v in late.items() if k != "y"}, {"key": "a", "id": late["id"], "y": late["y"]}])
    outputs = run(tmp_path, spec, [datagen.write_lines(tmp_path / "in.jsonl", lines)], parallelism=1, label_ttl=1,
                  lifecycle=LifecycleSettings(global_model=spec, global_every=1),
                  destinations={"global_trace": str(tmp_path / "trace")})

    assert sorted((d["reason"], json.loads(d["raw"])["id"]) for d in outputs.dead_letters) == [
        (Reason.EXPIRED_ID, events[0]["id"]), (Reason.EXPIRED_ID, events[1]["id"])]
    trace = read_trace(tmp_path / "trace")
    assert [(step["version"], step["id"]) for step in trace] == list(
        enumerate([e["id"] for e in events[2:9]] + ["pause", late["id"]], start=1))


class StreamingJob:
    """``riverflink run`` reading a topic until interrupted (Ctrl-C, as a person would); its output in ``log``."""

    def __init__(self, log, bootstrap: str, topic: str, model: str, *options: str):
        self.log = log
        command = [sys.executable, "-m", "jobs.cli", "run", "--model", model, "--kafka-bootstrap", bootstrap,
                   "--kafka-topic", topic, "--kafka-group", topic, "--job-name", topic, "--checkpoint-interval", "1",
                   "--quiet", *options]
        with log.open("w") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                            env={**os.environ, "PYTHONHASHSEED": "0"}, preexec_fn=interruptible)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def assert_running(self) -> None:
        assert self.process.poll() is None, self.log.read_text()[-3000:]

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        assert self.process.returncode == 130, self.log.read_text()[-3000:]


class Committed:
    """Every committed (``read_committed``) JSON record of a topic, read as it comes."""

    def __init__(self, bootstrap: str, topic: str):
        self.records: list[dict] = []
        self.consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, isolation_level="read_committed",
                                      auto_offset_reset="earliest", enable_auto_commit=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.consumer.close()

    def wait_until(self, done, job: StreamingJob, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.records):
            job.assert_running()
            assert time.monotonic() < deadline, f"timed out with {len(self.records)} records"
            for batch in self.consumer.poll(timeout_ms=500).values():
                self.records += [json.loads(record.value) for record in batch]


@pytest.mark.kafka
def test_a_streaming_key_idle_past_the_ttl_starts_again_while_a_busy_key_keeps_learning(kafka_bootstrap, tmp_path):
    spec, template, _, new_metric = example("regressor")
    events = datagen.many_keys("regressor", n_keys=4, n_events=120)
    before, after = datagen.to_lines(events[:60]), datagen.to_lines(events[60:])
    busy = [json.dumps({**e, "key": "busy", "id": f"busy-{i}"})
            for i, e in enumerate(datagen.many_keys("regressor", n_keys=1, n_events=20, seed=3))]
    topic, predictions, metrics = (new_topic(kafka_bootstrap, partitions=2) for _ in range(3))
    publish(kafka_bootstrap, topic, [_file(tmp_path / "before.jsonl", before)])
    fresh, _ = river_loop(after, template, "regressor", new_metric)
    busy_alone, _ = river_loop(busy, template, "regressor", new_metric)
    with (StreamingJob(tmp_path / "job.log", kafka_bootstrap, topic, spec, "--parallelism", "2", "--key-ttl", "2",
                       "--metrics-interval", "0.5", "--predictions", f"kafka://{predictions}",
                       "--metrics", f"kafka://{metrics}") as job,
          Committed(kafka_bootstrap, predictions) as committed, Committed(kafka_bootstrap, metrics) as metric_records):
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        committed.wait_until(lambda records: len(records) == len(before), job, timeout=180)
        # Over 4.5 s without an event for k0-k3 (> TTL 2 s + 1 s timer granularity); "busy" has one every 0.25 s.
        for line in busy[:18]:
            producer.send(topic, key=b"busy", value=line.encode()).get(timeout=30)
            time.sleep(0.25)
        producer.close()
        publish(kafka_bootstrap, topic, [_file(tmp_path / "after.jsonl", after + busy[18:])])
        committed.wait_until(lambda records: len(records) == len(before) + len(after) + len(busy), job, timeout=60)
        final_n = {key: result.n for key, result in (fresh | busy_alone).items()}
        metric_records.wait_until(
            lambda records: final_n.items() <= {(r["key"], r["n"]) for r in records if r["key"] is not None}, job, 30)
        job.interrupt()

    first, _ = river_loop(before, template, "regressor", new_metric)
    by_id = predictions_by_id(committed.records)
    assert by_id == expected_predictions(first) | expected_predictions(fresh) | expected_predictions(busy_alone)
    assert sorted(v for (key, _), (_, v) in by_id.items() if key == "busy") == list(range(len(busy)))
    # per-key metrics started again too: k0-k3 never counted their events before and after the gap together
    for key, result in fresh.items():
        reported = [r for r in metric_records.records if r["key"] == key]
        assert max(r["n"] for r in reported) < result.n + first[key].n, key
        assert any(r["n"] == result.n and r["value"] == result.metric.get() for r in reported), key


@pytest.mark.kafka
def test_keyed_state_stays_bounded_under_ever_new_keys(kafka_bootstrap, tmp_path):
    # 150 events/s of keys never seen again (3 events each) for 20 s: 1,000 keys. With a 2 s TTL
    # a checkpoint holds the keys of the last 2-3 s of processing only, and none once the stream stops.
    rate, seconds, events_per_key = 150, 20, 3
    topic = new_topic(kafka_bootstrap, partitions=2)
    checkpoints = tmp_path / "checkpoints"
    publish(kafka_bootstrap, topic, [_file(tmp_path / "warm-up.jsonl", [json.dumps({"key": "warm-up", "x": {"a": 1}, "y": 1})])])
    predictions = new_topic(kafka_bootstrap)
    streaming, after = [], []  # (checkpoint, keys held, bytes) once a second
    with (StreamingJob(tmp_path / "job.log", kafka_bootstrap, topic, "examples/classifier.py:model", "--key-ttl", "2",
                       "--checkpoint-dir", str(checkpoints), "--predictions", f"kafka://{predictions}") as job,
          Committed(kafka_bootstrap, predictions) as committed):
        committed.wait_until(lambda records: len(records) == 1, job, timeout=180)
        producer = threading.Thread(target=_produce_new_keys, args=(kafka_bootstrap, topic, rate, seconds, events_per_key))
        producer.start()
        while producer.is_alive():
            _sample(checkpoints, streaming)
        deadline = time.monotonic() + 60
        while not (after and after[-1][1] == 0) and time.monotonic() < deadline:
            _sample(checkpoints, after)
        job.interrupt()
    keys_sent = rate * seconds // events_per_key
    held = [keys for _, keys, _ in streaming]
    assert len(streaming) >= seconds - 2 and 0 < max(held) < keys_sent / 2, streaming
    # every key dropped, and its end-of-input timer with it (a timer would keep its key's name in the checkpoint)
    assert after[-1][1] == 0, after
    assert after[-1][2] < max(size for _, _, size in streaming) / 5, (streaming, after)


def _sample(checkpoints, samples: list) -> None:
    time.sleep(1)
    checkpoint = latest_checkpoint(checkpoints)
    if checkpoint is None:
        return
    try:
        samples.append((checkpoint.name, len(keys_in_checkpoint(checkpoint)), checkpoint_bytes(checkpoint)))
    except FileNotFoundError:  # retired while being read
        pass


def _produce_new_keys(bootstrap: str, topic: str, rate: float, seconds: float, events_per_key: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    start = time.monotonic()
    for i, event in enumerate(new_key_events(rate, seconds, events_per_key)):
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
        producer.send(topic, key=event["key"].encode(), value=json.dumps(event).encode())
    producer.flush()
    producer.close()


def test_by_ts_a_backfill_expires_keys_as_the_live_stream_did(tmp_path):
    """--key-ttl-by ts: a gap in the events' ts, not in the clock, makes a key idle; read in one go from a file."""
    spec, template, _, new_metric = example("regressor")
    events = datagen.many_keys("regressor", n_keys=2, n_events=60)
    for i, event in enumerate(events):
        event["key"] = {"k0": "a", "k1": "c"}[event["key"]]
        event["ts"] = float(i)  # one second apart
    a_events = [e for e in events if e["key"] == "a"]
    before = datagen.to_lines([e for e in events if e["key"] == "c"] + a_events[:12])
    later = [{**e, "ts": e["ts"] + 1_000} for e in a_events[12:]]  # "a" comes back 1,000 s later
    after = datagen.to_lines(later)
    outputs = run(tmp_path, spec, [datagen.write_lines(tmp_path / "in.jsonl", before + after)], parallelism=1,
                  key_ttl=100, key_ttl_by="ts", tuning=TuningSettings(metrics_interval=3600, snapshot_interval=3600))

    first, _ = river_loop(before, template, "regressor", new_metric)
    fresh, _ = river_loop(after, template, "regressor", new_metric)
    assert outputs.predictions_by_id() == expected_predictions(first) | expected_predictions(fresh)
    # "c" was last seen at ts 59, more than 100 s before the end of the input (ts 1,059): it reports nothing.
    assert set(outputs.final_metrics()) == {"a", None}
    assert outputs.final_metrics()["a"]["n"] == len(after)
