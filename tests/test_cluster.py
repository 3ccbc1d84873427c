"""SPEC §5.2 and savepoints on a real local Flink cluster (3 TaskManagers, one slot each) reading real Kafka.

Every comparison is with the plain-river reference, which the mini-cluster
tests prove equal to an uninterrupted run.
"""

import collections
import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading

import pytest
from river import drift, metrics

from jobs.cli.metric_reports import final_metrics
from jobs.cli.produce import publish
from jobs.cli.savepoints import stop_with_savepoint
from jobs.learn_job import run_job
from jobs.local.cluster import rest_get
from jobs.local.processes import command_line
from jobs.local.warm_up import WARM_UP_JOB_NAME
from jobs.model_spec import load_template
from jobs.runtime.environment import _code_bundle
from jobs.settings import KafkaSettings, LifecycleSettings, OutputSettings, Settings, TuningSettings, local_path
from operators.lifecycle import GLOBAL
from state.destinations import read_records
from state.snapshots import load_latest_models
from tests.support import bandits, datagen
from tests.support.cluster import job_state, learner_metric, learner_taskmanagers, local_cluster, wait_until
from tests.support.flink import expected_lifecycle_predictions, expected_predictions, predictions_by_id
from tests.support.kafka import new_topic, send_steadily
from tests.support.lifecycle_data import CHALLENGER, CHAMPION, linear_and_xor_keys, logistic, on_product
from tests.support.models import ROOT, example
from tests.support.processes import descendants
from tests.support.reference import blend_loop, global_versions, lifecycle_loop, river_loop, same_model

pytestmark = pytest.mark.cluster

KIND = "classifier"


@pytest.fixture(scope="module")
def cluster_home(tmp_path_factory):
    return tmp_path_factory.mktemp("cluster")


@pytest.fixture(scope="module")
def cluster(cluster_home):
    with local_cluster(cluster_home) as (jobmanager, processes):
        yield jobmanager, processes


def test_a_started_cluster_has_warmed_up_every_taskmanager_in_its_own_folder(cluster, cluster_home):
    """``riverflink cluster start`` runs the learner on every TaskManager before it returns (``jobs.local.warm_up``).

    Their working folders, with the job blobs they keep, are the cluster's own,
    not ``/tmp/tm_<resource id>`` shared by every local cluster.
    """
    jobmanager, processes = cluster
    jobs = _rest(jobmanager, "/jobs/overview")["jobs"]
    warm_ups = [job for job in jobs if job["name"] == WARM_UP_JOB_NAME]
    assert len(warm_ups) == 1 and warm_ups[0]["state"] == "FINISHED", jobs
    taskmanagers = {p.name for p in processes if p.role == "taskmanager"}
    assert learner_taskmanagers(jobmanager, warm_ups[0]["jid"]) == taskmanagers
    for name in taskmanagers:
        blobs = cluster_home / "work" / f"tm_{name}" / "blobStorage"
        assert (blobs / f"job_{warm_ups[0]['jid']}").is_dir(), sorted(blobs.iterdir())


@pytest.fixture(scope="module")
def stream():
    return datagen.to_lines(datagen.many_keys(KIND, n_keys=60, n_events=2000))


def _settings(tmp_path, jobmanager, topic, kafka_bootstrap, events=None, global_trace=None, **options) -> Settings:
    out = tmp_path / "out"
    options.setdefault("model", example(KIND)[0])
    return Settings(
        kafka=KafkaSettings(bootstrap=kafka_bootstrap, topics=(topic,)),
        outputs=OutputSettings(predictions=str(out / "predictions"), metrics=str(out / "metrics"),
                               models_out=str(out / "models"), dead_letters=str(out / "dead-letters"), events=events,
                               global_trace=global_trace),
        checkpoint_interval=1.0, jobmanager=jobmanager, **options,
    )


def _committed_predictions(settings: Settings) -> list[dict]:
    return list(read_records(settings.outputs.predictions))


def _assert_equals_reference(settings: Settings, lines: list[str]) -> None:
    _, template, _, new_metric = example(KIND)
    expected, expected_overall = river_loop(lines, template, KIND, new_metric)
    assert predictions_by_id(_committed_predictions(settings)) == expected_predictions(expected)
    final = {}
    for record in read_records(settings.outputs.metrics):
        if record["key"] not in final or record["n"] >= final[record["key"]]["n"]:
            final[record["key"]] = record
    models = load_latest_models(settings.outputs.models_out)
    probes = [json.loads(line)["x"] for line in lines[:40]]
    for key, result in expected.items():
        assert (final[key]["value"], final[key]["n"]) == (result.metric.get(), result.n), key
        assert same_model(models[key], result.model, probes), key
    assert final[None]["value"] == pytest.approx(expected_overall.get(), rel=1e-9)
    assert list(read_records(settings.outputs.dead_letters)) == []


@pytest.mark.kafka
@pytest.mark.parametrize("backend", ["hashmap", "rocksdb"])
def test_stop_with_savepoint_at_parallelism_2_and_resume_at_3(cluster, stream, backend, kafka_bootstrap, tmp_path):
    jobmanager, _ = cluster
    topic = new_topic(kafka_bootstrap, partitions=3)
    half = len(stream) // 2
    publish(kafka_bootstrap, topic, [datagen.write_lines(tmp_path / "first.jsonl", stream[:half])])
    first = _settings(tmp_path, jobmanager, topic, kafka_bootstrap=kafka_bootstrap, parallelism=2, detached=True,
                      state_backend=backend)

    job = str(run_job(first).get_job_id())
    wait_until(lambda: len(_committed_predictions(first)) == half, 240, "the first half's predictions")
    keys_first = len({json.loads(line)["key"] for line in stream[:half]})
    wait_until(lambda: learner_metric(jobmanager, job, "keys_live") == keys_first, 60, f"keys_live {keys_first}")
    savepoint = stop_with_savepoint(jobmanager, job)

    publish(kafka_bootstrap, topic, [datagen.write_lines(tmp_path / "second.jsonl", stream[half:])])
    resumed = _settings(tmp_path, jobmanager, topic, kafka_bootstrap=kafka_bootstrap, parallelism=3, detached=True,
                        from_savepoint=savepoint, state_backend=backend)
    job = str(run_job(resumed).get_job_id())
    # Three subtasks count the keys of the key groups they restored, then add the keys new to them.
    keys_all = len({json.loads(line)["key"] for line in stream})
    wait_until(lambda: learner_metric(jobmanager, job, "keys_live") == keys_all, 120, f"keys_live {keys_all}")
    wait_until(lambda: len(_committed_predictions(resumed)) == len(stream), 240, "every prediction")
    stop_with_savepoint(jobmanager, job, drain=True)  # final metrics and model snapshots
    # The REST API answers from a copy of the job's graph up to a few seconds old, taken by keys_live's reads.
    wait_until(lambda: job_state(jobmanager, job) == "FINISHED", 30, "the job to finish")

    _assert_equals_reference(resumed, stream)


@pytest.mark.kafka
def test_challengers_and_drift_detectors_move_with_their_keys_through_a_rescale(cluster, kafka_bootstrap, tmp_path):
    jobmanager, _ = cluster
    lines = datagen.to_lines(datagen.with_delayed_labels(linear_and_xor_keys(n_keys=12, n_events=3000)))
    half = len(lines) // 2
    topic = new_topic(kafka_bootstrap, partitions=3)
    publish(kafka_bootstrap, topic, [datagen.write_lines(tmp_path / "first.jsonl", lines[:half])])
    lifecycle = dict(model=CHAMPION, events=str(tmp_path / "out" / "events"), lifecycle=LifecycleSettings(
        challengers=(CHALLENGER,), promotion_window=50, promotion_margin=0.1, drift_detector="ADWIN"))
    first = _settings(tmp_path, jobmanager, topic, kafka_bootstrap=kafka_bootstrap, parallelism=2, detached=True,
                      **lifecycle)
    job = str(run_job(first).get_job_id())
    wait_until(lambda: len(_committed_predictions(first)) == _predicted(lines[:half]), 240, "the first half")
    savepoint = stop_with_savepoint(jobmanager, job)

    publish(kafka_bootstrap, topic, [datagen.write_lines(tmp_path / "second.jsonl", lines[half:])])
    resumed = dataclasses.replace(first, parallelism=3, from_savepoint=savepoint)
    job = str(run_job(resumed).get_job_id())
    wait_until(lambda: len(_committed_predictions(resumed)) == _predicted(lines), 240, "every prediction")
    stop_with_savepoint(jobmanager, job, drain=True)

    expected, expected_events, _ = lifecycle_loop(lines, {CHAMPION: logistic, CHALLENGER: on_product}, KIND,
                                                  metrics.Accuracy, window=50, margin=0.1, detector=drift.ADWIN())
    assert predictions_by_id(_committed_predictions(resumed)) == expected_lifecycle_predictions(expected)
    happened = sorted((e["key"], e["event"], e["n"]) for e in read_records(resumed.outputs.events))
    assert happened == sorted((e["key"], e["event"], e["n"]) for e in expected_events)
    assert {key for key, event, _ in happened if event == "promotion"} == {k for k in expected if k.startswith("xor")}
    final = final_metrics(read_records(resumed.outputs.metrics))
    for key, result in expected.items():
        assert (final[None][key]["value"], final[None][key]["n"]) == (result.metric.get(), result.n), key
        for name, metric in result.metrics.items():
            assert final[name][key]["value"] == metric.get(), (key, name)


@pytest.mark.kafka
def test_bandit_policies_move_with_their_keys_through_a_rescale(cluster, kafka_bootstrap, tmp_path):
    """SPEC §7: decisions whose rewards come after a savepoint, resumed at parallelism 3, as one plain loop."""
    jobmanager, _ = cluster
    lines = bandits.bandit_stream(n_keys=30, n_decisions=2_000, contextual=True, seed=4)
    expected, _ = bandits.policy_loop(lines, bandits.lin_ucb, default_arms=bandits.ARMS)
    half = len(lines) // 2
    before, _ = bandits.policy_loop(lines[:half], bandits.lin_ucb, default_arms=bandits.ARMS)
    decided_first = sum(len(result.decisions) for result in before.values())
    topic = new_topic(kafka_bootstrap, partitions=3)
    publish(kafka_bootstrap, topic, [datagen.write_lines(tmp_path / "first.jsonl", lines[:half])])
    first = _settings(tmp_path, jobmanager, topic, kafka_bootstrap=kafka_bootstrap, parallelism=2, detached=True,
                      model=bandits.LIN_UCB, arms=tuple(bandits.ARMS), state_backend="rocksdb")
    job = str(run_job(first).get_job_id())
    wait_until(lambda: len(_committed_predictions(first)) == decided_first, 240, "the first half's decisions")
    savepoint = stop_with_savepoint(jobmanager, job)

    publish(kafka_bootstrap, topic, [datagen.write_lines(tmp_path / "second.jsonl", lines[half:])])
    resumed = dataclasses.replace(first, parallelism=3, from_savepoint=savepoint)
    job = str(run_job(resumed).get_job_id())
    decided = sum(len(result.decisions) for result in expected.values())
    wait_until(lambda: len(_committed_predictions(resumed)) == decided, 240, "every decision")
    stop_with_savepoint(jobmanager, job, drain=True)  # final metrics and snapshots

    assert {(p["key"], p["id"]): (p["prediction"], p["model_version"]) for p in _committed_predictions(resumed)} == {
        (key, event_id): (arm, version) for key, result in expected.items() for event_id, arm, version in result.decisions}
    assert {key: bandits.policy_state(policy) for key, policy in load_latest_models(resumed.outputs.models_out).items()} \
        == {key: bandits.policy_state(result.policy) for key, result in expected.items()}


GLOBAL_WINDOW = 8


def _global_stream(n_keys: int, n_events: int, seed: int = 7) -> list[str]:
    return datagen.to_lines(datagen.with_delayed_labels(datagen.many_keys(KIND, n_keys=n_keys, n_events=n_events,
                                                                          seed=seed)))


def _global_settings(tmp_path, jobmanager, topic, kafka_bootstrap, blend: bool = False, **options) -> Settings:
    """The example classifier as each key's model and as the global model, its every learn step traced."""
    spec = example(KIND)[0]
    lifecycle = LifecycleSettings(global_model=spec, global_every=25, promotion_window=GLOBAL_WINDOW,
                                  global_blend=blend)
    return _settings(tmp_path, jobmanager, topic, kafka_bootstrap=kafka_bootstrap, model=spec,
                     events=str(tmp_path / "out" / "events"), global_trace=str(tmp_path / "out" / "global-trace"),
                     lifecycle=lifecycle, **options)


def _labelled(lines: list[str]) -> set[tuple[str, str]]:
    return {(e["key"], e["id"]) for e in map(json.loads, lines) if "y" in e}


def _committed_trace(settings: Settings) -> list[dict]:
    return list(read_records(settings.outputs.global_trace))


def _assert_global_equals_reference(settings: Settings, lines: list[str]) -> None:
    """What a job with the global model committed equals plain river, as ``tests/test_global_model.py`` checks it.

    The committed trace is every learn step of the global model, once, as versions 1..N; a plain loop over it
    gives every version a prediction names; each key is ``lifecycle_loop`` given those versions' answers, or,
    under ``--global-blend``, ``blend_loop``.
    """
    template = example(KIND)[1]
    labelled = _labelled(lines)
    # Part files are read in name order: part-...-10 before part-...-2, and a resumed run's in its own random prefix.
    trace = sorted(_committed_trace(settings), key=lambda record: record["version"])
    assert [record["version"] for record in trace] == list(range(1, len(labelled) + 1))
    assert {(record["key"], record["id"]) for record in trace} == labelled

    predictions = _committed_predictions(settings)
    asked = {(p["key"], p["id"]): p["global_version"] for p in predictions}
    versions = global_versions(template, trace, set(asked.values()))
    assert len(versions) > 10, "the learners answered with many versions"
    if settings.lifecycle.global_blend:
        def global_proba(key, event_id, x):
            return versions[asked[(key, event_id)]].predict_proba_one(x)

        expected = blend_loop(lines, template, global_proba)
        assert len(predictions) == len(asked)
        assert {(p["key"], p["id"]): (p["prediction"], p["proba"], p["global_weight"]) for p in predictions} == {
            (key, event_id): (label, {str(c): value for c, value in proba.items()}, share)
            for key, result in expected.items() for event_id, (label, proba, share) in result.served.items()}
    else:
        _assert_promotions_equal_reference(settings, lines, predictions, versions, asked)
    assert list(read_records(settings.outputs.dead_letters)) == []
    # Three partitions read at their own pace, and a restore replays a backlog: still, (almost) every event is
    # answered by a version that learned only from earlier ones (measured: none of 2,400 and of 3,000).
    ts_of = {(e["key"], e["id"]): e["ts"] for e in map(json.loads, lines) if "ts" in e}
    learned_until = [0.0]
    for record in trace:
        learned_until.append(max(learned_until[-1], ts_of[(record["key"], record["id"])]))
    ahead = [p for p in predictions if learned_until[p["global_version"]] >= ts_of[(p["key"], p["id"])]]
    assert len(ahead) <= len(predictions) // 100, f"{len(ahead)} answered by versions that had seen later events"


def _assert_promotions_equal_reference(settings: Settings, lines: list[str], predictions: list[dict], versions: dict,
                                       asked: dict) -> None:
    """Each key serves, and moves between, its own model and the global one as ``lifecycle_loop`` does."""
    spec, template, _, new_metric = example(KIND)
    x_of = {(e["key"], e["id"]): e["x"] for e in map(json.loads, lines) if "x" in e}
    for p in predictions:
        if p["model"] == GLOBAL:
            assert p["prediction"] == versions[p["global_version"]].predict_one(x_of[(p["key"], p["id"])]), p

    def global_answer(key, event_id, x):
        prediction = versions[asked[(key, event_id)]].predict_one(x)
        return prediction, prediction  # accuracy judges labels

    expected, expected_events, _ = lifecycle_loop(lines, {spec: template}, KIND, new_metric, window=GLOBAL_WINDOW,
                                                  shared={GLOBAL: global_answer})
    assert predictions_by_id(predictions) == expected_lifecycle_predictions(expected)
    assert {(p["key"], p["id"]): p["model"] for p in predictions} == {
        (key, event_id): GLOBAL if by == GLOBAL else spec
        for key, result in expected.items() for event_id, _, _, by in result.predictions}
    happened = sorted((e["key"], e["event"], e["from"], e["to"], e["n"]) for e in read_records(settings.outputs.events))
    assert happened == sorted((e["key"], e["event"], e["from"], e["to"], e["n"]) for e in expected_events)
    assert {to for *_, to, _ in happened} == {spec, GLOBAL}, "keys moved both ways"


@pytest.mark.kafka
@pytest.mark.parametrize("blend", [False, True], ids=["promotion", "blend"])
def test_the_global_model_moves_through_a_savepoint_rescale(cluster, kafka_bootstrap, tmp_path, blend):
    """The global learner's model and log, and the version each learner holds, through parallelism 2 to 3."""
    jobmanager, _ = cluster
    lines = _global_stream(n_keys=40, n_events=2400)
    half = len(lines) // 2
    topic = new_topic(kafka_bootstrap, partitions=3)
    publish(kafka_bootstrap, topic, [datagen.write_lines(tmp_path / "first.jsonl", lines[:half])])
    first = _global_settings(tmp_path, jobmanager, topic, kafka_bootstrap, blend=blend, parallelism=2, detached=True)
    job = str(run_job(first).get_job_id())
    wait_until(lambda: len(_committed_predictions(first)) == _predicted(lines[:half]), 240, "the first half")
    savepoint = stop_with_savepoint(jobmanager, job)
    learned_first = len(_committed_trace(first))
    assert 0 < learned_first < len(_labelled(lines)), learned_first

    publish(kafka_bootstrap, topic, [datagen.write_lines(tmp_path / "second.jsonl", lines[half:])])
    resumed = dataclasses.replace(first, parallelism=3, from_savepoint=savepoint)
    job = str(run_job(resumed).get_job_id())
    wait_until(lambda: len(_committed_predictions(resumed)) == _predicted(lines), 240, "every prediction")
    # The last labels come after the last prediction: the global learner has read them all before the stop.
    wait_until(lambda: len(_committed_trace(resumed)) >= len(_labelled(lines)), 120, "every label learned")
    stop_with_savepoint(jobmanager, job, drain=True)

    _assert_global_equals_reference(resumed, lines)


def _predicted(lines: list[str]) -> int:
    return sum("x" in json.loads(line) for line in lines)


def _python_workers(pid: int) -> list[int]:
    """Descendants of ``pid`` that are PyFlink's Python worker processes (process mode)."""
    return [child for child in descendants(pid) if b"pyflink.fn_execution" in command_line(child)]


def _kill(victim: str, cluster: list, jobmanager: str, job: str) -> int:
    """SIGKILL a TaskManager running the learner, or one of its Python workers; returns the pid killed."""
    running = learner_taskmanagers(jobmanager, job)
    taskmanager = next(p for p in cluster if p.name == sorted(running)[0])
    pid = taskmanager.pid if victim == "taskmanager" else _python_workers(taskmanager.pid)[0]
    os.kill(pid, signal.SIGKILL)
    return pid


@pytest.mark.kafka
@pytest.mark.parametrize("mode, backend, victim, at", [
    ("thread", "hashmap", "taskmanager", 0.25),
    ("thread", "rocksdb", "taskmanager", 0.5),
    ("process", "hashmap", "python worker", 0.2),
    ("process", "rocksdb", "python worker", 0.6),
])
def test_a_kill_mid_stream_changes_no_committed_output(mode, backend, victim, at, kafka_bootstrap, tmp_path):
    events = datagen.to_lines(datagen.many_keys(KIND, n_keys=200, n_events=6_000, seed=3))
    topic = new_topic(kafka_bootstrap, partitions=3)
    with local_cluster(tmp_path / "cluster") as (jobmanager, processes):  # its own: a killed TaskManager stays dead
        settings = _settings(tmp_path, jobmanager, topic, kafka_bootstrap=kafka_bootstrap, parallelism=2,
                             detached=True, execution_mode=mode, state_backend=backend,
                             tuning=TuningSettings(metrics_interval=1.0, snapshot_interval=1.0))
        job = str(run_job(settings).get_job_id())
        wait_until(lambda: _rest(jobmanager, f"/jobs/{job}/checkpoints")["counts"]["completed"], 180,
                   "the job to start and checkpoint")  # Python workers and Kafka readers take a while to start
        # Events arrive at a steady rate while the job runs, so the kill lands mid-stream wherever `at` says.
        producer = threading.Thread(target=send_steadily, args=(kafka_bootstrap, topic, events, 200))
        producer.start()
        try:
            wait_until(lambda: len(_committed_predictions(settings)) >= at * len(events), 300, f"{at:.0%} committed")
            assert producer.is_alive(), "the job lagged so far behind that the kill was not mid-stream"
            _kill(victim, processes, jobmanager, job)
            wait_until(lambda: _failures(jobmanager, job), 120, "the job to notice the kill")
        finally:
            producer.join()
        wait_until(lambda: len(_committed_predictions(settings)) >= len(events), 300, "every prediction")
        # The final models and metrics from periodic reports, not from a drain: in process mode, what
        # timers emit at a drain's final watermark can miss the final savepoint (seen with PyFlink 2.2.1).
        wait_until(lambda: _reported_versions(settings) == _learn_steps(events), 120, "every key's final report")
        scored = _scored_events(events)
        wait_until(lambda: _overall_n(settings) == scored, 120, "the all-keys metric's final report")
        stop_with_savepoint(jobmanager, job)
    _assert_equals_reference(settings, events)


@pytest.mark.kafka
def test_a_kill_with_the_global_model_running_changes_no_committed_output(kafka_bootstrap, tmp_path):
    """The TaskManager of the global learner killed mid-stream: its versions go on from the checkpoint's."""
    lines = _global_stream(n_keys=40, n_events=3000, seed=3)
    topic = new_topic(kafka_bootstrap, partitions=3)
    with local_cluster(tmp_path / "cluster") as (jobmanager, processes):  # its own: a killed TaskManager stays dead
        settings = _global_settings(tmp_path, jobmanager, topic, kafka_bootstrap, parallelism=2, detached=True,
                                    state_backend="rocksdb")
        job = str(run_job(settings).get_job_id())
        wait_until(lambda: _rest(jobmanager, f"/jobs/{job}/checkpoints")["counts"]["completed"], 180,
                   "the job to start and checkpoint")
        producer = threading.Thread(target=send_steadily, args=(kafka_bootstrap, topic, lines, 200))
        producer.start()
        try:
            wait_until(lambda: len(_committed_predictions(settings)) >= 0.4 * _predicted(lines), 300, "40% committed")
            assert producer.is_alive(), "the job lagged so far behind that the kill was not mid-stream"
            learned_before = len(_committed_trace(settings))
            victim = sorted(learner_taskmanagers(jobmanager, job, "global-learn"))[0]  # it runs a learner subtask too
            os.kill(next(p for p in processes if p.name == victim).pid, signal.SIGKILL)
            wait_until(lambda: _failures(jobmanager, job), 120, "the job to notice the kill")
        finally:
            producer.join()
        assert 0 < learned_before < len(_labelled(lines)), learned_before
        wait_until(lambda: len(_committed_predictions(settings)) >= _predicted(lines), 300, "every prediction")
        wait_until(lambda: len(_committed_trace(settings)) >= len(_labelled(lines)), 120, "every label learned")
        stop_with_savepoint(jobmanager, job)
    _assert_global_equals_reference(settings, lines)


@pytest.mark.kafka
def test_a_kill_while_decisions_and_rewards_stream_changes_no_decision_and_no_policy(kafka_bootstrap, tmp_path):
    """SPEC §7: a TaskManager killed mid-stream; committed decisions and final policies equal the plain loop's."""
    template = bandits.epsilon_greedy
    events = bandits.bandit_stream(n_keys=40, n_decisions=4_000, seed=9)
    expected, _ = bandits.policy_loop(events, template, default_arms=bandits.ARMS)
    policies = {key: bandits.policy_state(result.policy) for key, result in expected.items()}
    decided = sum(len(result.decisions) for result in expected.values())
    topic = new_topic(kafka_bootstrap, partitions=3)
    with local_cluster(tmp_path / "cluster") as (jobmanager, processes):  # its own: a killed TaskManager stays dead
        settings = _settings(tmp_path, jobmanager, topic, kafka_bootstrap=kafka_bootstrap, parallelism=2,
                             detached=True, model=bandits.EPSILON_GREEDY, arms=tuple(bandits.ARMS),
                             state_backend="rocksdb", tuning=TuningSettings(metrics_interval=1.0, snapshot_interval=1.0))
        job = str(run_job(settings).get_job_id())
        wait_until(lambda: _rest(jobmanager, f"/jobs/{job}/checkpoints")["counts"]["completed"], 180,
                   "the job to start and checkpoint")
        producer = threading.Thread(target=send_steadily, args=(kafka_bootstrap, topic, events, 200))
        producer.start()
        try:
            wait_until(lambda: len(_committed_predictions(settings)) >= 0.4 * decided, 300, "40% committed")
            assert producer.is_alive(), "the job lagged so far behind that the kill was not mid-stream"
            _kill("taskmanager", processes, jobmanager, job)
            wait_until(lambda: _failures(jobmanager, job), 120, "the job to notice the kill")
        finally:
            producer.join()
        wait_until(lambda: len(_committed_predictions(settings)) >= decided, 300, "every decision")
        wait_until(lambda: {key: bandits.policy_state(policy) for key, policy in
                            load_latest_models(settings.outputs.models_out).items()} == policies, 120,
                   "every key's final policy in its snapshots")
        stop_with_savepoint(jobmanager, job)
    assert {(p["key"], p["id"]): (p["prediction"], p["model_version"]) for p in _committed_predictions(settings)} == {
        (key, event_id): (arm, version) for key, result in expected.items() for event_id, arm, version in result.decisions}
    final = final_metrics(read_records(settings.outputs.metrics))[None]
    assert {key: (record["value"], record["n"]) for key, record in final.items() if key is not None} == {
        key: (result.mean_reward.get(), result.updates) for key, result in expected.items() if result.updates}


def _reported_versions(settings: Settings) -> dict:
    latest = {}
    for snapshot in read_records(settings.outputs.models_out):
        if snapshot.get("template"):
            continue
        latest[snapshot["key"]] = max(latest.get(snapshot["key"], 0), snapshot["model_version"])
    return latest


def _overall_n(settings: Settings) -> int:
    return max((r["n"] for r in read_records(settings.outputs.metrics) if r["key"] is None), default=0)


def _scored_events(lines: list[str]) -> int:
    """How many metric updates plain river makes over ``lines``: what the all-keys metric's last report counts."""
    _, template, _, new_metric = example(KIND)
    expected, _ = river_loop(lines, template, KIND, new_metric)
    return sum(result.n for result in expected.values())


def _learn_steps(lines: list[str]) -> dict:
    return collections.Counter(json.loads(line)["key"] for line in lines)


def _rest(jobmanager: str, path: str) -> dict:
    return rest_get(int(jobmanager.rpartition(":")[2]), path)


def _failures(jobmanager: str, job: str) -> list:
    return _rest(jobmanager, f"/jobs/{job}/exceptions")["exceptionHistory"]["entries"]


def _riverflink(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_an_attached_run_ships_the_project_and_exits_with_the_job(cluster, stream, mode, tmp_path):
    """The cluster's workers have no riverflink on their path (``jobs.local.cluster``): each job brings its own.

    Relative paths are the client's, not the TaskManagers' working folder.
    """
    jobmanager, _ = cluster
    lines = stream[:400]
    spec = f"{ROOT / 'tests/fixtures/code_origin.py'}:model"
    out = tmp_path / "out"
    datagen.write_lines(tmp_path / "events.jsonl", lines)
    ran = _riverflink("run", "--jobmanager", jobmanager, "--model", spec, "--execution-mode", mode,
                      "--input", "events.jsonl", "--checkpoint-interval", "1", "--out", "out", cwd=tmp_path)
    assert ran.returncode == 0 and "riverflink run finished" in ran.stdout, ran.stdout + ran.stderr

    models = load_latest_models(str(out / "models-out"))
    origins = {pathlib.Path(model.learned_by) for model in models.values()}
    assert len(origins) == 1, origins
    origin = origins.pop()
    assert origin.parts[-2:] == ("operators", "learner_function.py") and not origin.is_relative_to(ROOT), origin
    # Nor the code of the cluster's warm-up job, which this process submitted: the TaskManagers ran that first.
    assert _code_bundle().name not in origin.parts, origin
    expected, _ = river_loop(lines, load_template(spec)[0], KIND, lambda: None)
    assert predictions_by_id(read_records(str(out / "predictions"))) == expected_predictions(expected)


@pytest.mark.kafka
def test_backfill_from_files_then_stream_from_its_savepoint(cluster, stream, kafka_bootstrap, tmp_path):
    jobmanager, _ = cluster
    split = len(stream) * 2 // 3
    history = datagen.write_lines(tmp_path / "history.jsonl", stream[:split])
    topic = new_topic(kafka_bootstrap, partitions=3)
    backfill = dataclasses.replace(
        _settings(tmp_path, jobmanager, topic, kafka_bootstrap=kafka_bootstrap, parallelism=2, detached=True),
        inputs=(history,), kafka=KafkaSettings(), watch_inputs=1.0,
    )

    out = tmp_path / "out"
    submitted = _riverflink("run", "--jobmanager", jobmanager, "--detached", "--model", backfill.model,
                            "--input", history, "--watch-inputs", "1", "--checkpoint-interval", "1",
                            "--parallelism", "2", "--predictions", str(out / "predictions"),
                            "--metrics", str(out / "metrics"), "--models-out", str(out / "models"),
                            "--dead-letters", str(out / "dead-letters"))
    job = submitted.stdout.strip()
    assert len(job) == 32, submitted.stdout + submitted.stderr
    wait_until(lambda: len(_committed_predictions(backfill)) == split, 240, "the history's predictions")
    stopped = _riverflink("stop", job, "--jobmanager", jobmanager)
    savepoint = stopped.stdout.strip()
    assert stopped.returncode == 0 and "savepoint" in savepoint, stopped.stderr

    publish(kafka_bootstrap, topic, [datagen.write_lines(tmp_path / "live.jsonl", stream[split:])])
    live = _settings(tmp_path, jobmanager, topic, kafka_bootstrap=kafka_bootstrap, parallelism=2, detached=True,
                     from_savepoint=savepoint, allow_non_restored_state=True)  # the file source is gone
    job = str(run_job(live).get_job_id())
    wait_until(lambda: len(_committed_predictions(live)) == len(stream), 240, "every prediction")
    kept = _riverflink("savepoint", job, "--jobmanager", jobmanager)  # the job goes on
    assert kept.returncode == 0 and local_path(kept.stdout.strip()).is_dir(), kept.stderr
    assert job_state(jobmanager, job) == "RUNNING"
    stop_with_savepoint(jobmanager, job, drain=True)

    _assert_equals_reference(live, stream)
