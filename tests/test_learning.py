"""The Flink-free learning step against plain river, for every model kind and every rule of SPEC §1."""

import collections
import json
import random

import numpy
import pytest

from operators.dead_letters import DeadLetter, Reason
from operators.events import decode_event
from operators.learning_step import LearningStep
from operators.records import Prediction, to_json
from operators.timers import KeyExpiry
from state.envelope import dump_state, load_state
from state.exceptions import StateError
from tests.support import datagen
from tests.support.models import example
from tests.support.reference import KINDS, river_loop, same_model

pytestmark = pytest.mark.unit


def drive(step: LearningStep, lines, clock=lambda: 0, expiry: KeyExpiry | None = None):
    """Run lines through the step the way the Flink adapter does: state as bytes between events.

    With ``expiry``, a key found idle when its next event comes loses its state and ids first.
    """
    stored: dict[str, bytes] = {}
    ids: dict[str, dict] = {}
    last_seen: dict[str, int] = {}
    outcomes = []
    for line in lines:
        event = decode_event(line)
        assert not isinstance(event, DeadLetter), event
        now_ms = clock()
        if expiry is not None:
            if expiry.idle(last_seen.get(event.key), now_ms):
                del stored[event.key], ids[event.key]
            last_seen[event.key] = now_ms
        blob = stored.get(event.key)
        state = step.new_state() if blob is None else load_state(blob)
        outcome = step.process(state, ids.setdefault(event.key, {}), event, now_ms)
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


def test_key_expiry_decides_idleness_from_the_clock_it_is_given():
    expiry = KeyExpiry(2_000)
    assert not expiry.idle(None, 10**12)  # nothing remembered (never seen, or dropped already)
    assert not expiry.idle(5_000, 5_000) and not expiry.idle(5_000, 6_999)
    assert expiry.idle(5_000, 7_000) and expiry.idle(5_000, 60_000)
    assert expiry.granularity_ms == 1_000 and KeyExpiry(3_600_000).granularity_ms == 360_000
    # keys seen within one granularity share their check time
    assert expiry.check_at(5_001) == expiry.check_at(5_999) == 8_000
    with pytest.raises(ValueError):
        KeyExpiry(0)


@pytest.mark.parametrize("ttl_ms", [1, 999, 1_000, 2_000, 2_500, 86_400_000])
def test_a_keys_last_check_always_finds_it_idle_soon_after_the_ttl(ttl_ms):
    # Every event registers a check at check_at(now); the check of a key's last event must
    # drop it (else nothing ever would), and no later than one granularity after the TTL.
    expiry = KeyExpiry(ttl_ms)
    rng = random.Random(ttl_ms)
    for seen in [0, 1, ttl_ms, expiry.granularity_ms, expiry.granularity_ms - 1] + [rng.randrange(10**13) for _ in range(500)]:
        check = expiry.check_at(seen)
        assert check % expiry.granularity_ms == 0
        assert expiry.idle(seen, check) and not expiry.idle(seen, seen + ttl_ms - 1)
        assert check - seen < ttl_ms + expiry.granularity_ms


def test_a_key_idle_past_its_ttl_starts_again_from_the_template():
    kind = "regressor"
    step, template, new_metric = make_step(kind)
    events = datagen.many_keys(kind, n_keys=6, n_events=600)
    before, after = datagen.to_lines(events[:300]), datagen.to_lines(events[300:])
    # k0 keeps seeing an event every 1.5 s during the 10 s gap; the other keys are idle through it.
    busy = datagen.to_lines([{**e, "id": f"busy-{i}"} for i, e in enumerate(datagen.many_keys(kind, n_keys=1, n_events=6, seed=3))])
    times = [10 * i for i in range(300)] + [3_000 + 1_500 * i for i in range(6)] + [13_000 + 10 * i for i in range(300)]
    clock = iter(times).__next__
    states, ids, outcomes = drive(step, before + busy + after, clock, KeyExpiry(5_000))

    served = {}
    for outcome in outcomes[306:]:
        p = outcome.prediction
        served.setdefault(p.key, []).append((p.id, p.prediction, p.model_version))
    fresh, _ = river_loop(after, template, kind, new_metric)
    whole, _ = river_loop(before + busy + after, template, kind, new_metric)
    assert set(served) == {f"k{i}" for i in range(6)}
    for key, predictions in served.items():
        expected = whole[key] if key == "k0" else fresh[key]
        assert predictions == (expected.predictions[-len(predictions):] if key == "k0" else expected.predictions), key
        assert states[key].model_version == expected.learned and states[key].metric_n == expected.n, key
    assert [version for _, _, version in served["k1"]] == list(range(len(served["k1"])))
    assert served["k0"][0][2] > 0
    # the ids went with the model: an id seen only before the gap is unknown now
    assert "e0" not in ids[events[0]["key"]] and any(event_id.startswith("busy-") for event_id in ids["k0"])


def test_an_expired_keys_event_ids_are_forgotten_with_its_model():
    # A re-delivery after the key expired is a new event for a new model, and a label for a
    # prediction made before the gap is unknown (not expired): its features went with the key.
    step, _, _ = make_step("regressor", label_ttl_ms=60_000)
    lines = [
        '{"key": "a", "id": "1", "x": {"time": 1}, "y": 40}',
        '{"key": "a", "id": "2", "x": {"time": 2}}',
        '{"key": "a", "id": "1", "x": {"time": 1}, "y": 40}',
        '{"key": "a", "id": "2", "y": 45}',
    ]
    clock = iter([0, 100, 10_000, 10_100]).__next__
    states, ids, outcomes = drive(step, lines, clock, KeyExpiry(5_000))
    assert outcomes[2].prediction.model_version == 0 and outcomes[2].learned and not outcomes[2].duplicate
    assert outcomes[3].dead_letter.reason == Reason.UNKNOWN_ID
    assert states["a"].model_version == 1 and ids["a"] == {"1": ("done",)}


@pytest.mark.parametrize("kind", KINDS)
def test_replaying_the_logged_changes_rebuilds_each_key_exactly(kind):
    events = datagen.many_keys(kind, n_keys=8, n_events=300)
    if kind in ("classifier", "regressor", "forecaster"):
        events = datagen.with_delayed_labels(events)
    lines = datagen.to_lines(events + events[:20])  # re-deliveries change nothing and log nothing
    step, _, _ = make_step(kind)
    states, ids, outcomes = drive(step, lines)
    logs: dict[str, list] = {}
    for line, outcome in zip(lines, outcomes):
        if outcome.replay is not None:  # every change to the state or the ids is logged
            logs.setdefault(decode_event(line).key, []).append(outcome.replay)
    assert not any(outcome.replay for outcome in outcomes[len(events):])
    probes = [event["x"] for event in events if event.get("x")][:50]
    for key, entries in logs.items():
        rebuilt, rebuilt_ids = step.new_state(), {}
        for entry in entries:
            rebuilt_ids.update(step.replay(rebuilt, entry))
        assert rebuilt_ids == ids[key], key
        driven = states[key]
        assert (rebuilt.model_version, rebuilt.metric_n) == (driven.model_version, driven.metric_n), key
        assert (rebuilt.metric is None) == (driven.metric is None), key
        assert rebuilt.metric is None or rebuilt.metric.get() == driven.metric.get(), key
        assert same_model(rebuilt.model, driven.model, probes), key


def test_a_replay_that_changes_nothing_fails_loudly():
    step, _, _ = make_step("classifier")
    state, ids = step.new_state(), {}
    step.process(state, ids, decode_event('{"key": "a", "id": "1", "x": {"f": 1.0}}'), 0)
    outcome = step.process(state, ids, decode_event('{"key": "a", "id": "1", "y": true}'), 5)
    raw, kept, now_ms = outcome.replay
    assert kept is not None  # a label's entry carries the prediction it was matched with
    with pytest.raises(StateError, match="did not change its state as it first did"):
        step.replay(step.new_state(), (raw, None, now_ms))  # as if the log had lost what the label belongs to


@pytest.mark.parametrize("prediction, extras", [
    (True, {"proba": {False: 0.25, True: 0.75}}),
    ("caf\u00e9 \"quoted\"\n", {"proba": {"a": 1.0, 3: 0.0, None: 1e-300}}),
    (float("nan"), {}),
    (float("-inf"), {"score": float("inf")}),
    (None, {"proba": {}}),
    (2**70, {"score": -0.0}),
    (numpy.float64(0.5), {}),  # not plain: the encoder writes it
    (1.5, {"proba": collections.OrderedDict(a=0.5)}),
    ([1, 2], {"interval": (0.1, 0.2)}),
])
@pytest.mark.parametrize("event_id, ts", [(None, None), ("e\u2603", 1.7e9), (7, 12)])
def test_a_prediction_line_is_what_the_json_encoder_writes(prediction, extras, event_id, ts):
    served = Prediction("key \u00e9", event_id, ts, prediction, 3, extras)
    expected = {"key": "key \u00e9", "id": event_id, "ts": ts, "prediction": prediction, "model_version": 3}
    for name, value in extras.items():
        expected[name] = {str(k): v for k, v in value.items()} if isinstance(value, dict) else value
    assert served.to_json() == to_json(expected)
