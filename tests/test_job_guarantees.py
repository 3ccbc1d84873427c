"""SPEC §1 and §5.3 on real Flink: delayed labels, bad input, re-deliveries, gzip input."""

import collections
import gzip
import json

import pytest

from jobs.settings import TuningSettings
from operators.dead_letters import Reason
from tests.support import datagen
from tests.support.flink import expected_predictions, run
from tests.support.models import DATA, example
from tests.support.reference import river_loop, same_model

pytestmark = pytest.mark.minicluster


def test_delayed_labels_match_plain_river_with_the_same_delays(tmp_path):
    spec, template, _, new_metric = example("classifier")
    lines = datagen.to_lines(datagen.with_delayed_labels(datagen.many_keys("classifier", n_keys=30, n_events=3000)))
    outputs = run(tmp_path, spec, [datagen.write_lines(tmp_path / "delayed.jsonl", lines)], parallelism=2,
                  tuning=TuningSettings(metrics_interval=0.2, snapshot_interval=0.2))

    # reported periodically while running, and once more at the end (the largest n)
    assert len([m for m in outputs.metrics if m["key"] is None]) > 1
    assert max(collections.Counter(m["key"] for m in outputs.metrics).values()) > 1
    assert max(collections.Counter(m["key"] for m in outputs.snapshots).values()) > 1
    # a snapshot is written only for a changed key: never the same model twice in a row, not even at the end
    by_key = collections.defaultdict(list)
    for snapshot in sorted(outputs.snapshots, key=lambda s: s["ts"]):
        by_key[snapshot["key"]].append(snapshot["model"])
    assert all(a != b for models in by_key.values() for a, b in zip(models, models[1:]))

    expected, expected_overall = river_loop(lines, template, "classifier", new_metric)
    assert outputs.dead_letters == []
    assert outputs.predictions_by_id() == expected_predictions(expected)
    final = outputs.final_metrics()
    for key, result in expected.items():
        assert final[key]["value"] == result.metric.get() and final[key]["n"] == result.n, key
    assert final[None]["value"] == pytest.approx(expected_overall.get(), rel=1e-9)


# Every kind of bad record, each with the reason it must be rejected with.
BAD_RECORDS = [
    ("{not json", Reason.NOT_JSON),
    ('{"key": "chick-1", "x": ' + "[" * 1500, Reason.NOT_JSON),  # deeper than Python's parser recurses
    ("[1, 2, 3]", Reason.NOT_OBJECT),
    ('"just a string"', Reason.NOT_OBJECT),
    ('{"x": {"time": 1}, "y": 1}', Reason.MISSING_KEY),
    ('{"key": null, "x": {"time": 1}, "y": 1}', Reason.MISSING_KEY),
    ('{"key": 1.5, "x": {"time": 1}, "y": 1}', Reason.INVALID_KEY),
    ('{"key": true, "x": {"time": 1}, "y": 1}', Reason.INVALID_KEY),
    ('{"key": "chick-1", "x": [1, 2], "y": 1}', Reason.INVALID_FEATURES),
    ('{"key": "chick-1", "x": {"time": {"nested": 1}}, "y": 1}', Reason.INVALID_FEATURES),
    ('{"key": "chick-1", "x": {"time": [1, 2]}, "y": 1}', Reason.INVALID_FEATURES),
    ('{"key": "chick-1", "x": {"time": NaN}, "y": 1}', Reason.NON_FINITE),
    ('{"key": "chick-1", "x": {"time": Infinity}, "y": 1}', Reason.NON_FINITE),
    ('{"key": "chick-1", "x": {"time": 1}, "y": NaN}', Reason.NON_FINITE),
    ('{"key": "chick-1", "x": {"time": 1}, "y": {"kg": 1}}', Reason.INVALID_TARGET),
    ('{"key": "chick-1", "id": {"a": 1}, "x": {"time": 1}, "y": 1}', Reason.INVALID_ID),
    ('{"key": "chick-1", "ts": "yesterday", "x": {"time": 1}, "y": 1}', Reason.INVALID_TS),
    ('{"key": "chick-1"}', Reason.NOTHING_TO_DO),
    ('{"key": "chick-1", "y": 50}', Reason.NOTHING_TO_DO),
    ('{"key": "chick-1", "id": "never-predicted", "y": 50}', Reason.UNKNOWN_ID),
    # Poison: valid shape, but the model raises half-way through learning (the
    # scaler has learned, the regression has not): the key's model must not change.
    ('{"key": "chick-1", "id": "poison-1", "x": {"time": 3}, "y": "heavy"}', Reason.MODEL_ERROR),
    ('{"key": "chick-2", "id": "poison-2", "x": {"time": 5}, "y": "light"}', Reason.MODEL_ERROR),
]


def test_bad_records_become_dead_letters_and_change_no_model(tmp_path):
    spec, template, _, new_metric = example("regressor")
    valid = (DATA / "chick_weights.jsonl").read_text().splitlines()[:300]
    mixed = []
    for i, line in enumerate(valid):
        mixed.append(line)
        if i % 12 == 0 and i // 12 < len(BAD_RECORDS):
            mixed.append(BAD_RECORDS[i // 12][0])
    assert sum(line in dict(BAD_RECORDS) for line in mixed) == len(BAD_RECORDS)
    outputs = run(tmp_path, spec, [datagen.write_lines(tmp_path / "mixed.jsonl", mixed)], parallelism=2)

    rejected = sorted((d["raw"], d["reason"]) for d in outputs.dead_letters)
    assert rejected == sorted(BAD_RECORDS)
    expected, _ = river_loop(valid, template, "regressor", new_metric)
    assert outputs.predictions_by_id() == expected_predictions(expected)
    probes = [{"time": t} for t in range(0, 22, 3)]
    for key, result in expected.items():
        assert same_model(outputs.models[key], result.model, probes), key


def test_redeliveries_are_learned_once(tmp_path):
    spec, template, _, new_metric = example("regressor")
    events = datagen.many_keys("regressor", n_keys=20, n_events=800)
    # some repeated right away, some much later
    repeated = []
    for i, event in enumerate(events):
        repeated.append(event)
        if i % 10 == 0:
            repeated.append(event)
    repeated += events[100:160]
    lines = datagen.to_lines(events)
    outputs = run(tmp_path, spec, [datagen.write_lines(tmp_path / "repeats.jsonl", datagen.to_lines(repeated))])

    expected, _ = river_loop(lines, template, "regressor", new_metric)
    assert outputs.dead_letters == []
    assert outputs.predictions_by_id() == expected_predictions(expected)
    assert len(outputs.predictions) == len(events)
    probes = [event["x"] for event in events[:30]]
    for key, result in expected.items():
        assert same_model(outputs.models[key], result.model, probes), key


def test_gzip_files_and_directories_are_read(tmp_path):
    spec, template, _, new_metric = example("classifier")
    events = datagen.many_keys("classifier", n_keys=10, n_events=400)
    folder = tmp_path / "input"
    folder.mkdir()
    # keys split by file (SPEC §5.1: each key's events come from one file)
    first = [e for e in events if int(e["key"][1:]) % 2 == 0]
    second = [e for e in events if int(e["key"][1:]) % 2 == 1]
    with gzip.open(folder / "even.jsonl.gz", "wt") as file:
        file.writelines(json.dumps(e) + "\n" for e in first)
    datagen.write_lines(folder / "odd.jsonl", datagen.to_lines(second))
    outputs = run(tmp_path, spec, [folder])

    expected, _ = river_loop(datagen.to_lines(events), template, "classifier", new_metric)
    assert outputs.predictions_by_id() == expected_predictions(expected)


@pytest.mark.parametrize("options", [
    {"state_backend": "rocksdb", "checkpoint_dir": "checkpoints"},
    {"execution_mode": "process"},
    # room for a couple of keys: most events read their key's envelope and replay its log
    {"tuning": TuningSettings(key_cache_mb=0.004)},
    {"tuning": TuningSettings(key_cache_mb=0)},  # no cache: every change rewrites the envelope
])
def test_backends_modes_and_key_cache_sizes_give_the_same_results(tmp_path, options):
    spec, template, _, new_metric = example("regressor")
    lines = datagen.to_lines(datagen.with_delayed_labels(datagen.many_keys("regressor", n_keys=15, n_events=400)))
    if "checkpoint_dir" in options:
        options = {**options, "checkpoint_dir": str(tmp_path / options["checkpoint_dir"])}
    outputs = run(tmp_path, spec, [datagen.write_lines(tmp_path / "in.jsonl", lines)], **options)
    expected, _ = river_loop(lines, template, "regressor", new_metric)
    assert outputs.predictions_by_id() == expected_predictions(expected)
    final = outputs.final_metrics()
    assert all(final[key]["value"] == result.metric.get() for key, result in expected.items())


def test_state_beyond_jobmanager_memory_limit_checkpoints(tmp_path):
    # ~16 MB of keyed state checkpointed mid-run: more than the 5 MB the JobManager's
    # in-memory checkpoint storage accepts, so checkpoints must go to a file system.
    spec, template, _, new_metric = example("classifier")
    rng = __import__("random").Random(5)
    events = [
        {"key": f"k{i % 2000}", "id": f"e{i}", "x": {f"f{j}": rng.gauss(0, 1) for j in range(100)}, "y": i % 3 == 0}
        for i in range(4000)
    ]
    lines = datagen.to_lines(events)
    outputs = run(tmp_path, spec, [datagen.write_lines(tmp_path / "wide.jsonl", lines)], parallelism=1,
                  checkpoint_interval=0.5)
    expected, _ = river_loop(lines, template, "classifier", new_metric)
    assert outputs.predictions_by_id() == expected_predictions(expected)
