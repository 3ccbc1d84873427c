"""The global model's rules without Flink: what it learns, and how each key serves and judges it, against plain river."""

import copy
import dataclasses
import json

import pytest
from river import metrics

from jobs.cli.parser import build_parser, settings_from_args
from jobs.learn_job import load_models
from jobs.settings import KafkaSettings, LifecycleSettings, OutputSettings, Settings
from operators.events import decode_event
from operators.global_model import GlobalState, GlobalStep
from operators.learning_step import LearningStep
from operators.lifecycle import BLEND, GLOBAL, LifecyclePolicy
from operators.model_kinds import Kind
from state.envelope import dump_state
from state.exceptions import SettingsError
from tests.support import datagen
from tests.support.lifecycle_data import logistic
from tests.support.models import DATA
from tests.support.reference import blend_loop, lifecycle_loop

pytestmark = pytest.mark.unit

OWN = "own"
WINDOW = 8


def _lines(n_keys=20, n_events=1500):
    return datagen.to_lines(datagen.with_delayed_labels(datagen.many_keys("classifier", n_keys=n_keys, n_events=n_events)))


def test_the_global_step_learns_each_label_once_in_the_order_labels_come():
    lines = _lines()
    events = [json.loads(line) for line in lines]
    duplicated = lines[:50] + lines  # the first 50 again: already seen, or labels already used
    step, state, ids = GlobalStep(Kind.CLASSIFIER, logistic), GlobalState(logistic.clone()), {}
    for line in duplicated:
        event = decode_event(line)
        step.process(state, ids.setdefault(event.key, {}), event, now_ms=0)

    reference, waiting = logistic.clone(), {}
    for event in events:
        if "x" in event:
            waiting[(event["key"], event["id"])] = event["x"]
        if "y" in event:
            reference.learn_one(waiting[(event["key"], event["id"])], event["y"])
    assert state.model_version == sum("y" in event for event in events)
    probes = [event["x"] for event in events if "x" in event][:50]
    assert [state.model.predict_proba_one(x) for x in probes] == [reference.predict_proba_one(x) for x in probes]


def test_a_label_after_the_label_ttl_is_not_learned():
    step, state, ids = GlobalStep(Kind.CLASSIFIER, logistic, label_ttl_ms=100), GlobalState(logistic.clone()), {}
    step.process(state, ids, decode_event('{"key": "a", "id": "e1", "x": {"f": 1}}'), now_ms=0)
    assert step.process(state, ids, decode_event('{"key": "a", "id": "e1", "y": true}'), now_ms=101) is None
    assert state.model_version == 0 and ids["e1"] == ("expired",)


def _simulate(lines, every=25, admit_after=None, warm=False, blend=False):
    """One process run as the job runs: each event to its key's step, then to the global, whose versions
    reach the learning step every ``every`` learn steps. Returns the key states, their replay logs, the
    predictions, and the global model's versions."""
    policy = LifecyclePolicy(Kind.CLASSIFIER, {OWN: logistic.clone}, metrics.Accuracy, promotion_window=WINDOW,
                             global_template=logistic.clone(), admit_after=admit_after, warm_from_global=warm,
                             global_blend=blend)
    step = LearningStep(Kind.CLASSIFIER, logistic.clone, metrics.Accuracy, policy=policy)
    global_step, global_state, global_ids = GlobalStep(Kind.CLASSIFIER, logistic), GlobalState(logistic.clone()), {}
    versions = {0: logistic.clone()}
    states, ids, logs, predictions = {}, {}, {}, []
    for line in lines:
        event = decode_event(line)
        state = states.setdefault(event.key, step.new_state())
        outcome = step.process(state, ids.setdefault(event.key, {}), event, now_ms=0)
        assert outcome.dead_letter is None
        if outcome.replay is not None:
            logs.setdefault(event.key, []).append(outcome.replay)
        if outcome.prediction is not None:
            predictions.append(outcome.prediction)
        learned = global_step.process(global_state, global_ids.setdefault(event.key, {}), event, now_ms=0)
        if learned is not None and global_state.model_version % every == 0:
            version = copy.deepcopy(global_state.model)
            versions[global_state.model_version] = version
            step.use_global(global_state.model_version, version)
    return step, states, logs, predictions, versions


@pytest.mark.parametrize("admit_after", [None, 70])
def test_each_key_serves_the_global_model_until_its_own_beats_it_as_a_plain_loop_does(admit_after):
    lines = _lines()
    _, states, _, predictions, versions = _simulate(lines, admit_after=admit_after)
    asked = {(p.key, p.id): p.extras["global_version"] for p in predictions}

    def global_answer(key, event_id, x):
        prediction = versions[asked[(key, event_id)]].predict_one(x)
        return prediction, prediction

    expected, events, _ = lifecycle_loop(lines, {OWN: logistic}, "classifier", metrics.Accuracy, window=WINDOW,
                                         shared={GLOBAL: global_answer}, admit_after=admit_after)
    assert [(p.key, p.id, p.prediction, p.model_version, p.extras["model"]) for p in predictions] == [
        (p.key, p.id, *by_id[p.id]) for p in predictions
        for by_id in [{e: (pred, v, by) for e, pred, v, by in expected[p.key].predictions}]]
    assert {p.extras["model"] for p in predictions} == {OWN, GLOBAL}
    moves = {(e["from"], e["to"]) for e in events}
    assert moves == {(GLOBAL, OWN), (OWN, GLOBAL)} if admit_after is None else (GLOBAL, OWN) in moves
    for key, result in expected.items():
        assert states[key].lifecycle.serving == result.serving
        assert (states[key].model is None) == (result.serving == GLOBAL)
        assert (states[key].lifecycle.candidates[OWN].model is None) == (result.labels < (admit_after or 0))
    if admit_after is not None:  # the long tail holds no model of its own
        assert any(result.labels < admit_after for result in expected.values())


@pytest.mark.parametrize("admit_after, warm", [(None, False), (30, False), (None, True)])
def test_under_global_blend_each_key_serves_the_mix_of_a_plain_weighted_average_forecaster(admit_after, warm):
    lines = _lines()
    step, states, _, predictions, versions = _simulate(lines, admit_after=admit_after, warm=warm, blend=True)
    asked = {(p.key, p.id): p.extras["global_version"] for p in predictions}

    def own_copy(key):
        return copy.deepcopy(versions[states[key].lifecycle.admitted_from])

    def global_proba(key, event_id, x):
        return versions[asked[(key, event_id)]].predict_proba_one(x)

    expected = blend_loop(lines, logistic, global_proba, admit_after=admit_after, own_copy=own_copy if warm else None)
    assert [(p.prediction, p.extras["proba"], p.extras["global_weight"], p.extras["model"]) for p in predictions] == [
        (*expected[p.key].served[p.id], BLEND) for p in predictions]
    shares = [p.extras["global_weight"] for p in predictions]
    assert min(shares) < 0.01 and max(shares) > 0.75, "keys lean on their own model, and on the global one"
    probes = [event["x"] for event in map(json.loads, lines[:40]) if "x" in event]
    for key, result in expected.items():
        own = states[key].lifecycle.candidates[OWN].model
        assert states[key].lifecycle.serving == BLEND and states[key].model is None
        assert (own is None) == (result.own is None), key
        if own is not None:
            assert [own.predict_proba_one(x) for x in probes] == [result.own.predict_proba_one(x) for x in probes]


@pytest.mark.parametrize("warm, blend", [(False, False), (True, False), (False, True), (True, True)])
def test_a_key_replayed_after_the_global_model_moved_on_is_rebuilt_exactly(warm, blend):
    step, states, logs, _, versions = _simulate(_lines(n_keys=8, n_events=600), warm=warm, blend=blend)
    assert step.global_version == max(versions) > 0  # every key's log was written under older versions
    for key, entries in logs.items():
        assert any(len(entry) == 4 and entry[3][0] < step.global_version for entry in entries)
        rebuilt = step.new_state()
        for entry in entries:
            step.replay(rebuilt, entry)
        assert dump_state(rebuilt) == dump_state(states[key]), key


def _run_settings(*options: str) -> Settings:
    args = build_parser().parse_args(["run", "--model", "river.linear_model:LogisticRegression",
                                      "--input", str(DATA / "phishing.jsonl"), *options])
    return settings_from_args(args)


def test_the_global_options_are_checked_before_any_job_starts(tmp_path):
    settings = _run_settings("--global", "--global-every", "10", "--out", str(tmp_path / "out"))
    assert settings.lifecycle.global_model == settings.model and settings.lifecycle.global_every == 10
    assert settings.outputs.global_trace is None, "the trace is written only when asked for"
    assert settings.outputs.events is not None, "promotions between the global model and a key's own are reported"
    assert _run_settings("--global", "--admit-after", "3").lifecycle.admit_after == 3
    with pytest.raises(SettingsError, match="--admit-after"):
        _run_settings("--admit-after", "3")
    assert _run_settings("--global", "--global-blend").lifecycle.global_blend
    for refused in (["--global-blend"], ["--global", "--global-blend", "--drift-detector", "ADWIN"],
                    ["--global", "--global-blend", "--challenger", "river.tree:HoeffdingTreeClassifier"]):
        with pytest.raises(SettingsError, match="--global-blend serves a blend"):
            _run_settings(*refused)
    with pytest.raises(SettingsError, match="--global-blend mixes probabilities: it is for classifiers"):
        settings, regression = _run_settings("--global", "--global-blend"), "river.linear_model:LinearRegression"
        load_models(dataclasses.replace(settings, model=regression,
                                        lifecycle=dataclasses.replace(settings.lifecycle, global_model=regression)))
    with pytest.raises(SettingsError, match="--global-trace"):
        Settings(model="m.pkl", inputs=(str(DATA),), outputs=OutputSettings(global_trace=str(tmp_path)))
    with pytest.raises(SettingsError, match="must be a directory"):
        Settings(model="m.pkl", inputs=(str(DATA),), lifecycle=LifecycleSettings(global_model="m.pkl"),
                 kafka=KafkaSettings(bootstrap="127.0.0.1:9092"), outputs=OutputSettings(global_trace="kafka://trace"))
    with pytest.raises(SettingsError, match="thread mode"):
        Settings(model="m.pkl", inputs=(str(DATA),), lifecycle=LifecycleSettings(global_model="m.pkl"),
                 execution_mode="process")
    with pytest.raises(SettingsError, match="is a regressor, but --model is a classifier"):
        load_models(_run_settings("--global-model", "river.linear_model:LinearRegression"))
    with pytest.raises(SettingsError, match="a clusterer cannot be one"):
        settings = _run_settings("--global")
        load_models(dataclasses.replace(settings, model="river.cluster:KMeans", lifecycle=dataclasses.replace(
            settings.lifecycle, global_model="river.cluster:KMeans")))



def test_with_a_warm_start_a_key_s_own_model_starts_as_a_copy_of_the_global_version_it_met_first():
    lines = _lines(n_keys=12, n_events=900)
    _, states, _, _, versions = _simulate(lines, warm=True)
    x_of, labelled = {}, {}
    for event in map(json.loads, lines):
        if "x" in event:
            x_of[(event["key"], event["id"])] = event["x"]
        if "y" in event:
            labelled.setdefault(event["key"], []).append((x_of[(event["key"], event["id"])], event["y"]))
    probes = list(x_of.values())[:30]
    assert len({state.lifecycle.admitted_from for state in states.values()}) > 1, "keys met different versions"
    for key, state in states.items():
        own = copy.deepcopy(versions[state.lifecycle.admitted_from])  # then the key's own labels, from its first
        for x, y in labelled[key]:
            own.learn_one(x, y)
        assert [state.lifecycle.candidates[OWN].model.predict_proba_one(x) for x in probes] == \
            [own.predict_proba_one(x) for x in probes], key
