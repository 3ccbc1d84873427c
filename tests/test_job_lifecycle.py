"""Warm start, challengers and drift reset on real Flink (parallelism 2), against plain river."""

import base64
import copy
import json

import cloudpickle
import pytest
from river import drift, metrics

from jobs.settings import LifecycleSettings
from tests.support import datagen
from tests.support.flink import expected_lifecycle_predictions, expected_predictions, run
from tests.support.lifecycle_data import (
    CHALLENGER,
    CHAMPION,
    NEVER_FORGETS,
    flipping_concept,
    gaussian_nb,
    linear_and_xor_keys,
    logistic,
    on_product,
)
from tests.support.models import example
from tests.support.reference import lifecycle_loop, river_loop, same_model
from tests.test_cli import riverflink

pytestmark = pytest.mark.minicluster


def test_warm_start_serves_every_new_key_from_the_pre_trained_base(tmp_path):
    _, template, _, new_metric = example("regressor")
    base = template.clone()
    for event in datagen.many_keys("regressor", n_keys=5, n_events=300, seed=1):
        base.learn_one(event["x"], event["y"])
    (tmp_path / "base.pkl").write_bytes(cloudpickle.dumps(base))
    lines = datagen.to_lines(datagen.with_delayed_labels(datagen.many_keys("regressor", n_keys=20, n_events=800)))

    outputs = run(tmp_path, str(tmp_path / "base.pkl"), [datagen.write_lines(tmp_path / "in.jsonl", lines)],
                  lifecycle=LifecycleSettings(warm_start=True))

    expected, overall = river_loop(lines, base, "regressor", new_metric, new_model=lambda: copy.deepcopy(base))
    assert outputs.predictions_by_id() == expected_predictions(expected)
    probes = [json.loads(line)["x"] for line in lines if json.loads(line).get("x")][:30]
    for key, result in expected.items():
        assert same_model(outputs.models[key], result.model, probes), key
    assert outputs.final_metrics()[None]["value"] == pytest.approx(overall.get(), rel=1e-9)


def test_challengers_are_promoted_per_key_with_metrics_per_model(tmp_path):
    lines = datagen.to_lines(datagen.with_delayed_labels(linear_and_xor_keys(n_keys=12, n_events=3000)))

    outputs = run(tmp_path, CHAMPION, [datagen.write_lines(tmp_path / "in.jsonl", lines)],
                  lifecycle=LifecycleSettings(challengers=(CHALLENGER,), promotion_window=50, promotion_margin=0.1))

    templates = {CHAMPION: logistic, CHALLENGER: on_product}
    expected, expected_events, overall = lifecycle_loop(lines, templates, "classifier", metrics.Accuracy,
                                                        window=50, margin=0.1)
    assert outputs.predictions_by_id() == expected_lifecycle_predictions(expected)
    promotions = sorted((e["key"], e["from"], e["to"], e["n"]) for e in outputs.events)
    assert promotions == sorted((e["key"], e["from"], e["to"], e["n"]) for e in expected_events)
    assert {e["key"] for e in outputs.events} == {key for key in expected if key.startswith("xor")}
    assert all(e["event"] == "promotion" and e["metric"] == "Accuracy" for e in outputs.events)
    for name in templates:
        final = outputs.final_metrics(model=name)
        for key, result in expected.items():
            assert final[key]["value"] == result.metrics[name].get(), (key, name)
        assert final[None]["value"] == pytest.approx(overall[name].get(), rel=1e-9), name
    served_metrics = outputs.final_metrics()
    for key, result in expected.items():
        assert (served_metrics[key]["value"], served_metrics[key]["n"]) == (result.metric.get(), result.n), key
    probes = [json.loads(line)["x"] for line in lines if json.loads(line).get("x")][:30]
    snapshots = {}
    for snapshot in outputs.snapshots:
        known = snapshots.get(snapshot["key"])
        if known is None or snapshot["model_version"] >= known["model_version"]:
            snapshots[snapshot["key"]] = snapshot
    for key, result in expected.items():
        assert snapshots[key]["serving"] == result.serving, key
        assert same_model(outputs.models[key], result.models[result.serving], probes), key

    shown = riverflink("models", "show", str(tmp_path / "out" / "models_out"))
    assert shown.returncode == 0, shown.stderr
    rows = {line.split()[0]: line.split() for line in shown.stdout.splitlines()[1:-1]}
    assert set(rows) == set(expected) and shown.stdout.splitlines()[-1] == f"{len(expected)} keys"
    assert shown.stdout.splitlines()[0].split() == ["key", "version", "serving", "kind", "model", "bytes"]
    steps = {CHAMPION: ["LogisticRegression"], CHALLENGER: ["FuncTransformer", "|", "LogisticRegression"]}
    for key, result in expected.items():
        size = len(base64.b64decode(snapshots[key]["model"]))
        assert rows[key][1:] == [str(result.learned), result.serving, "classifier", *steps[result.serving],
                                 f"{size:,}"], key
    promoted = next(key for key in expected if key.startswith("xor"))
    one = riverflink("models", "show", str(tmp_path / "out" / "models_out"), "--key", promoted)
    assert one.returncode == 0, one.stderr
    assert [line.split() for line in one.stdout.splitlines()] == [
        ["key", "version", "serving", "kind", "model", "bytes"], rows[promoted]]
    unknown = riverflink("models", "show", str(tmp_path / "out" / "models_out"), "--key", "no-such-key")
    assert unknown.returncode == 2 and "no model for key 'no-such-key'" in unknown.stderr, unknown.stderr


def test_drift_reset_restarts_a_keys_model_when_its_errors_change(tmp_path):
    lines = datagen.to_lines(flipping_concept(n_keys=6))

    outputs = run(tmp_path, NEVER_FORGETS, [datagen.write_lines(tmp_path / "in.jsonl", lines)],
                  lifecycle=LifecycleSettings(drift_detector="ADWIN", on_drift="reset"))

    expected, expected_events, _ = lifecycle_loop(lines, {NEVER_FORGETS: gaussian_nb}, "classifier",
                                                  metrics.Accuracy, detector=drift.ADWIN(), reset_on_drift=True)
    assert outputs.predictions_by_id() == expected_lifecycle_predictions(expected)
    drifts = sorted((e["key"], e["n"], e["detector"], e["action"]) for e in outputs.events)
    assert drifts == sorted((e["key"], e["n"], "ADWIN", "reset") for e in expected_events)
    assert {e["key"] for e in outputs.events} == set(expected)
    probes = [json.loads(line)["x"] for line in lines][:30]
    for key, result in expected.items():
        assert same_model(outputs.models[key], result.models[NEVER_FORGETS], probes), key
