"""The Flink-free learning step against plain river, for every model kind and every rule of SPEC §1."""

import json

import pytest

from operators.dead_letters import DeadLetter, Reason
from operators.events import decode_event
from operators.learning import LearningStep
from state.envelope import dump_state, load_state
from tests import datagen
from tests.models import example
from tests.reference import KINDS, river_loop, same_model


def drive(step: LearningStep, lines, clock=lambda: 0):
    """Run lines through the step the way the Flink adapter does: state as bytes between events."""
    stored: dict[str, bytes] = {}
    ids: dict[str, dict] = {}
    outcomes = []
    for line in lines:
        event = decode_event(line)
        assert not isinstance(event, DeadLetter), event
        blob = stored.get(event.key)
        state = step.new_state() if blob is None else load_state(blob)
        outcome = step.process(state, ids.setdefault(event.key, {}), event, clock())
        if outcome.state_changed:
            stored[event.key] = dump_state(state)
        outcomes.append(outcome)
    return {key: load_state(blob) for key, blob in stored.items()}, ids, outcomes


def make_step(kind, label_ttl_ms=None):
    _, template, model_kind, new_metric = example(kind)
    return LearningStep(model_kind, template.clone, new_metric, label_ttl_ms), template, new_metric


def assert_matches_reference(kind, lines, states, outcomes):
    _, template, _, new_metric = example(kind)
    expected, expected_overall = river_loop(lines, template, kind, new_metric)
    served = {}
    for outcome in outcomes:
        if outcome.prediction is not None:
            p = outcome.prediction
            served.setdefault(p.key, []).append((p.id, p.prediction, p.model_version))
    probes = [json.loads(line)["x"] for line in lines if json.loads(line).get("x")][:50]
    for key, result in expected.items():
        assert served.get(key, []) == result.predictions, key
        if result.metric is not None:
            assert states[key].metric.get() == result.metric.get(), key
            assert states[key].metric_n == result.n
        assert same_model(states[key].model, result.model, probes), key


@pytest.mark.parametrize("kind", KINDS)
def test_step_equals_plain_river_on_interleaved_keys(kind):
    lines = datagen.to_lines(datagen.many_keys(kind, n_keys=15, n_events=600))
    step, _, _ = make_step(kind)
    states, _, outcomes = drive(step, lines)
    assert_matches_reference(kind, lines, states, outcomes)


@pytest.mark.parametrize("kind", ["classifier", "regressor", "forecaster"])
def test_delayed_labels_learn_kept_features_and_score_kept_prediction(kind):
    lines = datagen.to_lines(datagen.with_delayed_labels(datagen.many_keys(kind, n_keys=10, n_events=500)))
    step, _, _ = make_step(kind)
    states, ids, outcomes = drive(step, lines)
    assert_matches_reference(kind, lines, states, outcomes)
    assert all(status == ("done",) for key_ids in ids.values() for status in key_ids.values())


def test_redelivered_events_are_dropped_and_counted():
    events = datagen.many_keys("classifier", n_keys=5, n_events=200)
    repeated = events[:50] + events[10:20] + events[50:] + events[:5]
    step, _, _ = make_step("classifier")
    states, _, outcomes = drive(step, datagen.to_lines(repeated))
    assert sum(outcome.duplicate for outcome in outcomes) == 15
    clean_states, _, clean_outcomes = drive(make_step("classifier")[0], datagen.to_lines(events))
    assert [o.prediction for o in outcomes if o.prediction] == [o.prediction for o in clean_outcomes if o.prediction]
    assert {k: s.model_version for k, s in states.items()} == {k: s.model_version for k, s in clean_states.items()}


def test_label_after_ttl_is_a_dead_letter_and_is_not_learned():
    now = {"ms": 0}
    step, _, _ = make_step("regressor", label_ttl_ms=1000)
    lines = [
        '{"key": "a", "id": "1", "x": {"time": 1}}',
        '{"key": "a", "id": "2", "x": {"time": 2}}',
    ]
    states, ids, _ = drive(step, lines, clock=lambda: now["ms"])
    now["ms"] = 1500
    state = step.new_state()
    on_time = step.process(state, ids["a"], decode_event('{"key": "a", "id": "1", "y": 40}'), 900)
    late = step.process(state, ids["a"], decode_event('{"key": "a", "id": "2", "y": 40}'), 1500)
    assert on_time.learned and on_time.dead_letter is None
    assert late.dead_letter.reason == Reason.EXPIRED_ID and not late.learned
    assert state.model_version == 1


def test_expire_marks_only_old_pending_predictions():
    step, _, _ = make_step("regressor", label_ttl_ms=1000)
    ids = {"old": ("pending", {"time": 1}, 3.0, 0), "new": ("pending", {"time": 1}, 3.0, 900), "done": ("done",)}
    assert step.expire(ids, 1500) == 1
    assert ids["old"] == ("expired",) and ids["new"][0] == "pending" and ids["done"] == ("done",)


def test_unknown_label_is_a_dead_letter():
    step, _, _ = make_step("regressor")
    outcome = step.process(step.new_state(), {}, decode_event('{"key": "a", "id": "nope", "y": 1}'), 0)
    assert outcome.dead_letter.reason == Reason.UNKNOWN_ID and not outcome.state_changed


def test_model_error_leaves_stored_model_and_ids_unchanged():
    # A string target gets through StandardScaler.learn_one, then makes LinearRegression raise:
    # the in-memory model is half-updated, so the stored bytes must be what counts.
    step, _, _ = make_step("regressor")
    lines = [f'{{"key": "a", "id": "{i}", "x": {{"time": {i}}}, "y": {40 + i}}}' for i in range(5)]
    states, ids, _ = drive(step, lines)
    before = dump_state(states["a"])
    state = load_state(before)
    outcome = step.process(state, ids["a"], decode_event('{"key": "a", "id": "p", "x": {"time": 9}, "y": "heavy"}'), 0)
    assert outcome.dead_letter.reason == Reason.MODEL_ERROR and "TypeError" in outcome.dead_letter.detail
    assert outcome.prediction is None and not outcome.state_changed and "p" not in ids["a"]
    # The in-memory model was half-updated (the scaler learned), which is why the adapter never
    # writes it back after an error and the stored bytes stay the model of record.
    probes = [{"time": t} for t in range(10)]
    assert not same_model(state.model, load_state(before).model, probes)
    assert same_model(load_state(before).model, states["a"].model, probes)


def test_keys_are_isolated():
    events = datagen.many_keys("regressor", n_keys=6, n_events=300)
    together, _, outcomes = drive(make_step("regressor")[0], datagen.to_lines(events))
    for key in {e["key"] for e in events}:
        alone, _, alone_outcomes = drive(make_step("regressor")[0], datagen.to_lines([e for e in events if e["key"] == key]))
        mine = [o.prediction for o in outcomes if o.prediction and o.prediction.key == key]
        assert mine == [o.prediction for o in alone_outcomes if o.prediction]
        assert together[key].metric.get() == alone[key].metric.get()
