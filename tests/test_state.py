"""Model state across every example model: round trips, versions, clones, size, cold start, features."""

import base64
import json
import pickle
import struct

import cloudpickle
import pytest
import river

from operators.learning_step import KeyState
from state.envelope import FORMAT_VERSION, dump_state, load_state, read_header
from state.exceptions import StateError, StateFormatError, StateVersionError
from tests.support import datagen
from tests.support.models import KIND_MODELS, example
from tests.support.reference import KINDS, _learn, _predict, same_model

pytestmark = pytest.mark.unit


def trained(kind, n_events=300, seed=3):
    _, template, _, new_metric = example(kind)
    model = template.clone()
    events = [e for e in datagen.many_keys(kind, n_keys=1, n_events=n_events, seed=seed)]
    for event in events:
        _learn(kind, model, event["x"], event.get("y"))
    return model, [e["x"] for e in events[:40]]


@pytest.mark.parametrize("fast_restore", [True, False], ids=["attribute-pickle", "c-pickle"])
@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_gives_equal_predictions(kind, fast_restore):
    model, probes = trained(kind)
    restored = load_state(dump_state(model, fast_restore=fast_restore))
    assert restored is not model
    assert same_model(restored, model, probes)


def test_snapshots_are_plain_pickles(monkeypatch):
    model, _ = trained("classifier")
    monkeypatch.setattr(cloudpickle, "list_registry_pickle_by_value", set)  # a worker's: no module travels by value
    _, _, offset = read_header(dump_state(model, fast_restore=False))
    assert dump_state(model, fast_restore=False)[offset:] == pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    assert dump_state(model)[offset:] != pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)


@pytest.mark.parametrize("kind", KINDS)
def test_whole_key_state_round_trips(kind):
    _, template, _, new_metric = example(kind)
    model, probes = trained(kind)
    state = KeyState(model=model, metric=new_metric(), model_version=300, metric_n=12)
    restored = load_state(dump_state(state))
    assert (restored.model_version, restored.metric_n) == (300, 12)
    assert same_model(restored.model, model, probes)


def test_state_that_names_a_moved_module_still_loads():
    model, probes = trained("regressor")
    header = dump_state(None)[: -len(pickle.dumps(None, protocol=pickle.HIGHEST_PROTOCOL))]
    payload = pickle.dumps(KeyState(model=model, model_version=7), protocol=2)  # protocol 2 names classes as text
    assert b"coperators.learning_step\nKeyState\n" in payload
    written_before_the_move = header + payload.replace(b"operators.learning_step\n", b"operators.learning\n")
    restored = load_state(written_before_the_move)
    assert isinstance(restored, KeyState) and restored.model_version == 7
    assert same_model(restored.model, model, probes)
    with pytest.raises(StateError, match="No module named 'operators.nowhere'"):
        load_state(header + payload.replace(b"operators.learning_step\n", b"operators.nowhere\n"))


def test_state_written_by_another_river_version_is_refused():
    blob = dump_state(trained("regressor")[0])
    _, version, offset = read_header(blob)
    other = b"0.19.0"
    forged = struct.pack(">4sHB", b"RFLK", FORMAT_VERSION, len(other)) + other + blob[offset:]
    with pytest.raises(StateVersionError, match=f"written by river 0.19.0 but river {river.__version__}"):
        load_state(forged)


def test_unknown_format_and_foreign_bytes_are_refused():
    blob = dump_state(trained("regressor")[0])
    with pytest.raises(StateFormatError, match="format version 99"):
        load_state(blob[:4] + struct.pack(">H", 99) + blob[6:])
    with pytest.raises(StateFormatError, match="marker"):
        load_state(cloudpickle.dumps(trained("regressor")[0]))
    with pytest.raises(StateFormatError, match="too short"):
        load_state(b"RF")


@pytest.mark.parametrize("kind", KINDS)
def test_clones_are_independent(kind):
    _, template, _, _ = example(kind)
    first, second = template.clone(), template.clone()
    events = datagen.many_keys(kind, n_keys=1, n_events=100)
    for event in events:
        _learn(kind, first, event["x"], event.get("y"))
    probes = [e["x"] for e in events[:20]]
    assert not same_model(first, second, probes)
    assert same_model(second, template.clone(), probes)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "forecaster"])
def test_state_size_stays_bounded(kind):
    # SNARIMAX keeps its whole history by design; every other example model is bounded
    small, _ = trained(kind, n_events=300)
    large, _ = trained(kind, n_events=3000)
    assert len(dump_state(large)) < 1.5 * len(dump_state(small)) + 2048


@pytest.mark.parametrize("kind", KINDS)
def test_cold_start_prediction_does_not_raise(kind):
    _, template, _, new_metric = example(kind)
    x = {"x0": 0.1, "x1": 0.2, "t": 0} if kind != "forecaster" else {"t": 0}
    prediction, _ = _predict(kind, template.clone(), x, new_metric())
    assert prediction is None or prediction == prediction  # a value, or None; never NaN


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "forecaster"])
def test_emerging_and_disappearing_features(kind):
    _, template, _, new_metric = example(kind)
    model = template.clone()
    for i in range(50):
        x = {"a": i / 50} if i < 20 else {"a": i / 50, "b": 0.5} if i < 35 else {"b": 0.3}
        _predict(kind, model, x, new_metric())
        _learn(kind, model, x, i % 2 == 0 if kind == "classifier" else float(i))
    prediction, _ = _predict(kind, model, {"c": 1.0}, new_metric())
    assert prediction == prediction


def test_every_kind_has_an_example_model():
    assert set(KIND_MODELS) == set(KINDS)


def test_the_latest_snapshot_is_the_last_written_even_after_a_key_restarted(tmp_path):
    from river import linear_model

    from state.snapshots import load_latest_models

    def snapshot(version, ts, intercept):
        model = linear_model.LinearRegression(intercept_init=intercept)
        return json.dumps({"key": "k", "model_version": version, "ts": ts,
                           "model": base64.b64encode(dump_state(model)).decode()})

    # Before --key-ttl dropped it the key had learned 40 steps; after, it restarted at 0.
    (tmp_path / "part-1").write_text(snapshot(40, 100.0, 1.0) + "\n" + snapshot(2, 160.0, 2.0) + "\n")
    assert load_latest_models(tmp_path)["k"].intercept_init == 2.0
