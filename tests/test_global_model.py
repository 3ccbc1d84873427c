"""The global model beside each key's own, on real Flink at parallelism 2, against plain river.

The order in which the global model learns is real but not reproducible (two
learner channels interleave into its one subtask), so the job records it
(``--global-trace``), and the reference follows it: a plain river loop over
the trace must give every version the learners answered with, and each key
must equal a plain loop over its own events that takes the global model's
answers from the version its prediction names.
"""

import json
import math

import pytest

from jobs.cli.evaluate import SERVED, evaluate
from jobs.serve.models import ServedModels
from jobs.settings import LifecycleSettings, OutputSettings, Settings
from operators.lifecycle import BLEND, GLOBAL, blend_probas
from state.destinations import read_records
from tests.support import datagen
from tests.support.flink import expected_lifecycle_predictions, predictions_by_id, run
from tests.support.models import example
from tests.support.reference import blend_loop, global_versions, lifecycle_loop, read_trace

pytestmark = pytest.mark.minicluster

WINDOW = 8


def _run_global(tmp_path, **lifecycle) -> tuple:
    """60 keys, delayed labels, the example classifier as every key's model and the global one, a version every
    25 learn steps: ``(lines, outputs, trace)``."""
    spec = example("classifier")[0]
    lines = datagen.to_lines(datagen.with_delayed_labels(datagen.many_keys("classifier", n_keys=60, n_events=3000)))
    trace = tmp_path / "trace"
    outputs = run(tmp_path, spec, [datagen.write_lines(tmp_path / "events.jsonl", lines)], parallelism=2,
                  destinations={"global_trace": str(trace)},
                  lifecycle=LifecycleSettings(global_model=spec, global_every=25, **lifecycle))
    return lines, outputs, read_trace(trace)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """One run, promotion over 8 labels."""
    spec, template, _, new_metric = example("classifier")
    lines, outputs, trace = _run_global(tmp_path_factory.mktemp("global"), promotion_window=WINDOW)
    return spec, lines, template, new_metric, outputs, trace


def test_the_global_model_learns_every_label_once_and_in_the_order_it_records(job):
    _, lines, _, _, outputs, trace = job
    labelled = {(e["key"], e["id"]) for e in map(json.loads, lines) if "y" in e}
    assert [record["version"] for record in trace] == list(range(1, len(labelled) + 1))
    assert {(record["key"], record["id"]) for record in trace} == labelled
    assert outputs.dead_letters == []


def test_every_answer_of_a_global_version_is_that_version_of_a_plain_loop(job):
    _, lines, template, _, outputs, trace = job
    x_of = {(e["key"], e["id"]): e["x"] for e in map(json.loads, lines) if "x" in e}
    by_global = [p for p in outputs.predictions if p["model"] == GLOBAL]
    versions = global_versions(template, trace, {p["global_version"] for p in by_global})
    assert len(versions) > 10, "the learners answered with many versions"
    for p in by_global:
        assert p["prediction"] == versions[p["global_version"]].predict_one(x_of[(p["key"], p["id"])]), p


def _reference(spec, lines, template, new_metric, predictions, trace):
    """``lifecycle_loop`` of each key, the global model answering with the version each prediction names."""
    asked = {(p["key"], p["id"]): p["global_version"] for p in predictions}
    versions = global_versions(template, trace, set(asked.values()))

    def global_answer(key, event_id, x):
        prediction = versions[asked[(key, event_id)]].predict_one(x)
        return prediction, prediction  # accuracy judges labels

    return lifecycle_loop(lines, {spec: template}, "classifier", new_metric, window=WINDOW, shared={GLOBAL: global_answer})


def test_each_key_equals_a_plain_loop_given_the_global_answers(job):
    spec, lines, template, new_metric, outputs, trace = job
    expected, expected_events, _ = _reference(spec, lines, template, new_metric, outputs.predictions, trace)
    served = {(p["key"], p["id"]): p["model"] for p in outputs.predictions}
    assert predictions_by_id(outputs.predictions) == expected_lifecycle_predictions(expected)
    assert served == {(key, event_id): GLOBAL if by == GLOBAL else spec
                      for key, result in expected.items() for event_id, _, _, by in result.predictions}
    promotions = [e for e in outputs.events if e["event"] == "promotion"]
    assert {e["to"] for e in promotions} == {spec, GLOBAL}, "keys moved both ways"
    assert len(promotions) == len(expected_events)


def test_a_backfill_answers_each_event_with_a_version_that_learned_only_from_earlier_events(job):
    """The global operator reads the file ahead of the learners; the versions it answers with may not."""
    _, lines, _, _, outputs, trace = job
    ts_of = {(e["key"], e["id"]): e["ts"] for e in map(json.loads, lines) if "ts" in e}
    learned_until = [0.0]  # version -> the latest time of an event it learned (a label has its prediction's)
    for record in trace:
        learned_until.append(max(learned_until[-1], ts_of[(record["key"], record["id"])]))
    answered = [(learned_until[p["global_version"]], ts_of[(p["key"], p["id"])]) for p in outputs.predictions]
    assert all(until < ts for until, ts in answered)
    assert max(p["global_version"] for p in outputs.predictions) > len(trace) / 2, "and later versions did answer"


def test_evaluate_shows_the_served_own_and_global_figures_side_by_side(tmp_path):
    spec, template, _, new_metric = example("classifier")
    lines = datagen.to_lines(datagen.with_delayed_labels(datagen.many_keys("classifier", n_keys=20, n_events=800)))
    out = tmp_path / "out"
    settings = Settings(model=spec, inputs=(str(datagen.write_lines(tmp_path / "events.jsonl", lines)),),
                        lifecycle=LifecycleSettings(global_model=spec, global_every=25, promotion_window=WINDOW),
                        outputs=OutputSettings(**{name: str(out / name) for name in (
                            "predictions", "metrics", "events", "dead_letters", "global_trace")}))

    evaluation = evaluate(settings)

    expected, _, overall = _reference(spec, lines, template, new_metric, list(read_records(out / "predictions")),
                                      read_trace(out / "global_trace"))
    served = sum(result.metric.cm.total_true_positives for result in expected.values())
    assert [(figures.name, figures.value, figures.n) for figures in evaluation.models] == [
        (SERVED, pytest.approx(served / overall[spec].cm.n_samples, rel=1e-12), overall[spec].cm.n_samples),
        (spec, pytest.approx(overall[spec].get(), rel=1e-12), overall[spec].cm.n_samples),
        (GLOBAL, pytest.approx(overall[GLOBAL].get(), rel=1e-12), overall[GLOBAL].cm.n_samples),
    ]


def test_serve_answers_as_the_job_serves_each_key_at_its_end(job):
    spec, lines, template, _, outputs, trace = job
    served = ServedModels()
    for record in sorted(outputs.templates + outputs.snapshots, key=lambda record: record["ts"]):
        served.take_record(record, received=0.0)
    final = global_versions(template, trace, {len(trace)})[len(trace)]
    last_serving = {p["key"]: GLOBAL for p in outputs.predictions}  # a key serves the global model until promoted
    for promotion in sorted(outputs.events, key=lambda event: event["n"]):
        last_serving[promotion["key"]] = promotion["to"]
    assert set(last_serving.values()) == {GLOBAL, spec}
    probe = next(json.loads(line)["x"] for line in lines if "x" in json.loads(line))
    for key, serving in last_serving.items():
        answer = served.predict(key, probe).record()
        if serving == GLOBAL:
            assert (answer["model"], answer["global_version"]) == (GLOBAL, len(trace)), key
            assert answer["prediction"] == final.predict_one(probe), key
        else:
            assert "model" not in answer
            assert answer["prediction"] == outputs.models[key].predict_one(probe), key
    assert served.predict("a key never seen", probe).record()["global_version"] == len(trace)


@pytest.fixture(scope="module")
def blended(tmp_path_factory):
    """The same events, each key serving its own model and the global model's probabilities blended."""
    template = example("classifier")[1]
    lines, outputs, trace = _run_global(tmp_path_factory.mktemp("blend"), global_blend=True)
    asked = {(p["key"], p["id"]): p["global_version"] for p in outputs.predictions}
    versions = global_versions(template, trace, {*asked.values(), len(trace)})

    def global_proba(key, event_id, x):
        return versions[asked[(key, event_id)]].predict_proba_one(x)

    expected = blend_loop(lines, template, global_proba)
    return lines, outputs, template, versions[len(trace)], expected


def test_under_global_blend_each_key_serves_the_mix_of_a_plain_weighted_average_forecaster(blended):
    _, outputs, _, _, expected = blended
    served = [(p["key"], p["id"], p["prediction"], p["proba"], p["global_weight"], p["model"])
              for p in outputs.predictions]
    assert served == [(key, event_id, label, {str(c): p for c, p in proba.items()}, share, BLEND)
                      for key, event_id, *_ in served for label, proba, share in [expected[key].served[event_id]]]
    shares = [p["global_weight"] for p in outputs.predictions]
    assert min(shares) < 0.01 and max(shares) > 0.75, "keys lean on their own model, and on the global one"
    assert outputs.dead_letters == []


def test_serve_answers_a_blend_as_the_job_would_at_its_end(blended):
    lines, outputs, template, final, expected = blended
    served = ServedModels()
    for record in sorted(outputs.templates + outputs.snapshots, key=lambda record: record["ts"]):
        served.take_record(record, received=0.0)
    probe = next(json.loads(line)["x"] for line in lines if "x" in json.loads(line))
    for key, result in expected.items():
        assert outputs.models[key].predict_proba_one(probe) == result.own.predict_proba_one(probe), key
        share = 1 / (1 + math.exp(min(max(result.global_loss - result.own_loss, -50.0), 50.0)))
        proba, _ = blend_probas(final.predict_proba_one(probe), result.own.predict_proba_one(probe), share)
        answer = served.predict(key, probe).record()
        assert (answer["model"], answer["global_weight"]) == (BLEND, share), key
        assert answer["proba"] == {str(label): p for label, p in proba.items()}, key
    unseen = served.predict("a key never seen", probe).record()
    proba, _ = blend_probas(final.predict_proba_one(probe), template.clone().predict_proba_one(probe), 0.5)
    assert (unseen["global_weight"], unseen["proba"]) == (0.5, {str(label): p for label, p in proba.items()})
