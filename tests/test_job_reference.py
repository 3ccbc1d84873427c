"""SPEC §5.1 on real Flink: at parallelism 2, every model kind equals a plain river loop, key by key.

Each job reads two files: a real data set bundled with river and a generated
many-key stream with interleaved keys (disjoint keys, so each key's events come
from one file, as §5.1 requires).
"""

import json

import pytest
from river import evaluate

from jobs.settings import TuningSettings
from tests.support import datagen
from tests.support.flink import expected_predictions, run
from tests.support.models import DATA, example
from tests.support.reference import KINDS, river_loop, same_model

pytestmark = pytest.mark.minicluster


def real_events(kind: str) -> list[str]:
    """The bundled real data set for ``kind``, shaped as that kind's events."""
    if kind in ("regressor", "forecaster"):
        lines = (DATA / "chick_weights.jsonl").read_text().splitlines()
        if kind == "forecaster":  # exogenous features must be numeric for SNARIMAX
            lines = [json.dumps({**e, "x": {"time": e["x"]["time"]}}) for e in map(json.loads, lines)]
        return lines
    lines = (DATA / "phishing.jsonl").read_text().splitlines()
    if kind == "clusterer":
        lines = [json.dumps({k: v for k, v in json.loads(line).items() if k != "y"}) for line in lines]
    return lines


@pytest.mark.parametrize("backend", ["hashmap", "rocksdb"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_equals_plain_river_at_parallelism_2(kind, backend, tmp_path):
    _assert_equals_plain_river(kind, tmp_path, state_backend=backend)


@pytest.mark.parametrize("options", [
    {"tuning": TuningSettings(batch_lines=1)},  # PyFlink's own operator, every change written as it happens
    {"tuning": TuningSettings(batch_lines=7, batch_delay=0.0)},  # batches cut short, by size and at once by time
    # a cache of a few keys: dirty keys it lets go are written at the end of their batch
    {"tuning": TuningSettings(key_cache_mb=0.004)},
    {"tuning": TuningSettings(key_cache_mb=0.0)},  # no cache: every change folded at once
], ids=["unbatched", "small-batches", "tiny-cache", "no-cache"])
def test_how_lines_reach_the_learner_and_when_state_is_written_change_nothing(options, tmp_path):
    _assert_equals_plain_river("classifier", tmp_path, **options)


def _assert_equals_plain_river(kind: str, tmp_path, **options) -> None:
    spec, template, _, new_metric = example(kind)
    real = real_events(kind)
    generated = datagen.to_lines(datagen.many_keys(kind, n_keys=60, n_events=2000))
    inputs = [datagen.write_lines(tmp_path / "real.jsonl", real), datagen.write_lines(tmp_path / "gen.jsonl", generated)]

    outputs = run(tmp_path, spec, inputs, parallelism=2, **options)

    expected, expected_overall = river_loop(real + generated, template, kind, new_metric)
    assert outputs.dead_letters == []
    assert outputs.predictions_by_id() == expected_predictions(expected)
    final = outputs.final_metrics()
    probes = [json.loads(line)["x"] for line in (real[:20] + generated[:20])]
    for key, result in expected.items():
        assert same_model(outputs.models[key], result.model, probes), key
        if result.metric is not None:
            assert final[key]["value"] == result.metric.get(), key
            assert final[key]["n"] == result.n
    assert set(outputs.models) == set(expected)
    if expected_overall is not None:
        assert final[None]["value"] == pytest.approx(expected_overall.get(), rel=1e-9)
        assert final[None]["n"] == sum(result.n for result in expected.values())


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_per_key_metric_equals_river_progressive_val_score(kind, tmp_path):
    spec, template, _, new_metric = example(kind)
    lines = real_events(kind)
    outputs = run(tmp_path, spec, [datagen.write_lines(tmp_path / "real.jsonl", lines)], parallelism=2)
    final = outputs.final_metrics()
    events = [json.loads(line) for line in lines]
    for key in {e["key"] for e in events}:
        dataset = [(e["x"], e["y"]) for e in events if e["key"] == key]
        metric = evaluate.progressive_val_score(dataset, template.clone(), new_metric())
        assert final[key]["value"] == metric.get(), key
