"""Warm start, challengers with promotion, and drift reset in the learning step, against plain river."""

import copy
import json

import pytest
from river import drift, metrics

from operators.events import decode_event
from operators.learning_step import LearningStep
from operators.lifecycle import LifecyclePolicy
from operators.model_kinds import Kind
from state.exceptions import StateError
from tests.support import datagen
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
from tests.test_learning import drive

pytestmark = pytest.mark.unit

TEMPLATES = {CHAMPION: logistic, CHALLENGER: on_product}


def lifecycle_step(templates, window=50, margin=0.1, detector=None, on_drift="none", new_models=None):
    new_models = new_models or {name: template.clone for name, template in templates.items()}
    policy = LifecyclePolicy(Kind.CLASSIFIER, new_models, metrics.Accuracy, promotion_window=window,
                             promotion_margin=margin, detector=detector, on_drift=on_drift)
    return LearningStep(Kind.CLASSIFIER, next(iter(new_models.values())), metrics.Accuracy, policy=policy)


def served(outcomes):
    """key -> [(id, prediction, model_version)] as the step served them."""
    by_key = {}
    for outcome in outcomes:
        if outcome.prediction is not None:
            p = outcome.prediction
            by_key.setdefault(p.key, []).append((p.id, p.prediction, p.model_version))
    return by_key


def assert_same_as_reference(lines, states, outcomes, expected, expected_events):
    events = [event for outcome in outcomes for event in outcome.events]
    assert [{name: e[name] for name in expected_event} for e, expected_event in zip(events, expected_events)] == \
        expected_events
    assert len(events) == len(expected_events)
    by_key = served(outcomes)
    probes = [event["x"] for event in map(json.loads, lines) if event.get("x")][:40]
    for key, result in expected.items():
        assert by_key[key] == [prediction[:3] for prediction in result.predictions], key
        state = states[key]
        assert state.lifecycle.serving == result.serving, key
        assert (state.metric.get(), state.metric_n) == (result.metric.get(), result.n), key
        for name, candidate in state.lifecycle.candidates.items():
            assert candidate.metric.get() == result.metrics[name].get(), (key, name)
            assert same_model(candidate.model, result.models[name], probes), (key, name)
        if state.lifecycle.candidates:
            assert state.model is state.lifecycle.candidates[state.lifecycle.serving].model, key


def test_warm_start_copies_what_the_base_model_learned_into_every_new_key():
    _, template, kind, new_metric = example("regressor")
    base = template.clone()
    for event in datagen.many_keys("regressor", n_keys=5, n_events=300, seed=1):
        base.learn_one(event["x"], event["y"])
    lines = datagen.to_lines(datagen.with_delayed_labels(datagen.many_keys("regressor", n_keys=6, n_events=400)))
    warm = lambda: copy.deepcopy(base)  # noqa: E731
    step = LearningStep(kind, warm, new_metric)
    states, _, outcomes = drive(step, lines)
    expected, _ = river_loop(lines, base, "regressor", new_metric, new_model=warm)
    cold, _ = river_loop(lines, base, "regressor", new_metric)
    assert served(outcomes) == {key: result.predictions for key, result in expected.items()}
    assert served(outcomes) != {key: result.predictions for key, result in cold.items()}
    probes = [event["x"] for event in map(json.loads, lines) if event.get("x")][:40]
    for key, result in expected.items():
        assert same_model(states[key].model, result.model, probes), key


def test_a_challenger_takes_over_the_keys_it_is_better_on_and_only_those():
    events = linear_and_xor_keys()
    lines = datagen.to_lines(datagen.with_delayed_labels(events))
    step = lifecycle_step(TEMPLATES)
    states, _, outcomes = drive(step, lines)
    expected, expected_events, _ = lifecycle_loop(lines, TEMPLATES, "classifier", metrics.Accuracy, window=50, margin=0.1)
    assert_same_as_reference(lines, states, outcomes, expected, expected_events)
    promoted = {event["key"] for event in expected_events if event["event"] == "promotion"}
    assert promoted == {key for key in expected if key.startswith("xor")}
    for outcome in outcomes:
        for event in outcome.events:
            assert (event["from"], event["to"]) == (CHAMPION, CHALLENGER)
            assert event["to_value"] - event["from_value"] >= 0.1
    # every model of a key reports its own metric updates, the serving one's included
    names = {name for outcome in outcomes for name, _ in outcome.model_updates}
    assert names == set(TEMPLATES)


def test_drift_reset_restarts_the_keys_models_and_recovers_faster():
    events = flipping_concept()
    lines = datagen.to_lines(events)
    template = {NEVER_FORGETS: gaussian_nb}
    accuracy_after_flip = {}
    for on_drift in ("none", "reset"):
        step = lifecycle_step(template, detector=drift.ADWIN(), on_drift=on_drift)
        states, _, outcomes = drive(step, lines)
        expected, expected_events, _ = lifecycle_loop(lines, template, "classifier", metrics.Accuracy,
                                                   detector=drift.ADWIN(), reset_on_drift=on_drift == "reset")
        assert_same_as_reference(lines, states, outcomes, expected, expected_events)
        drifts = [event for outcome in outcomes for event in outcome.events]
        assert drifts and all(event["event"] == "drift" and event["action"] == on_drift for event in drifts)
        assert {event["key"] for event in drifts} == set(expected)
        first = {}
        for event in drifts:
            first.setdefault(event["key"], event["n"])
        assert all(300 < n < 400 for n in first.values()), first  # soon after each key's flip, not before
        right = total = 0
        seen = {}
        for event, outcome in zip(events, outcomes):
            seen[event["key"]] = seen.get(event["key"], 0) + 1
            if 300 < seen[event["key"]] <= 450:
                right += outcome.prediction.prediction == event["y"]
                total += 1
        accuracy_after_flip[on_drift] = right / total
    # measured: 0.07 without a reset, 0.71 with one
    assert accuracy_after_flip["reset"] > accuracy_after_flip["none"] + 0.4, accuracy_after_flip


def test_a_drift_reset_restarts_a_warm_started_key_from_the_base_not_from_scratch():
    events = flipping_concept()
    base = gaussian_nb.clone()
    for event in events[:200]:  # the first concept, learned once for every key
        base.learn_one(event["x"], event["y"])
    lines = datagen.to_lines(events)
    warm = {NEVER_FORGETS: lambda: copy.deepcopy(base)}
    step = lifecycle_step({NEVER_FORGETS: base}, detector=drift.ADWIN(), on_drift="reset", new_models=warm)
    states, _, outcomes = drive(step, lines)
    expected, expected_events, _ = lifecycle_loop(lines, {NEVER_FORGETS: base}, "classifier", metrics.Accuracy,
                                                  detector=drift.ADWIN(), reset_on_drift=True, new_models=warm)
    assert_same_as_reference(lines, states, outcomes, expected, expected_events)
    assert expected_events and all(event["event"] == "drift" for event in expected_events)
    cold, _, _ = lifecycle_loop(lines, {NEVER_FORGETS: base}, "classifier", metrics.Accuracy,
                                detector=drift.ADWIN(), reset_on_drift=True)
    assert served(outcomes) != {key: [p[:3] for p in result.predictions] for key, result in cold.items()}


@pytest.mark.parametrize("written_with, read_with", [
    ({"challengers": TEMPLATES}, {"challengers": {CHAMPION: logistic}, "detector": drift.ADWIN()}),
    ({"challengers": TEMPLATES}, {}),
    ({}, {"challengers": TEMPLATES}),
])
def test_a_key_state_written_with_other_models_is_refused_not_misread(written_with, read_with):
    def step_for(options):
        if not options:
            return LearningStep(Kind.CLASSIFIER, logistic.clone, metrics.Accuracy)
        return lifecycle_step(options["challengers"], detector=options.get("detector"))

    writer, reader = step_for(written_with), step_for(read_with)
    lines = datagen.to_lines(linear_and_xor_keys(n_keys=1, n_events=3))
    states, _, _ = drive(writer, lines)
    with pytest.raises(StateError, match="run it with the --model, --challenger and --drift-detector options"):
        reader.process(next(iter(states.values())), {}, decode_event(lines[-1].replace('"e2"', '"e9"')), 0)


def test_replaying_the_logged_changes_rebuilds_challengers_and_detectors_exactly():
    lines = datagen.to_lines(datagen.with_delayed_labels(linear_and_xor_keys(n_events=1200)))
    step = lifecycle_step(TEMPLATES, detector=drift.ADWIN(), on_drift="reset")
    states, _, outcomes = drive(step, lines)
    logs: dict[str, list] = {}
    for line, outcome in zip(lines, outcomes):
        if outcome.replay is not None:
            logs.setdefault(json.loads(line)["key"], []).append(outcome.replay)
    probes = [event["x"] for event in map(json.loads, lines) if event.get("x")][:40]
    for key, entries in logs.items():
        rebuilt = step.new_state()
        for entry in entries:
            step.replay(rebuilt, entry)
        driven = states[key]
        assert rebuilt.lifecycle.serving == driven.lifecycle.serving
        assert (rebuilt.model_version, rebuilt.metric_n, rebuilt.metric.get()) == \
            (driven.model_version, driven.metric_n, driven.metric.get()), key
        for name, candidate in driven.lifecycle.candidates.items():
            assert same_model(rebuilt.lifecycle.candidates[name].model, candidate.model, probes), (key, name)
            assert rebuilt.lifecycle.candidates[name].window.get() == candidate.window.get(), (key, name)
