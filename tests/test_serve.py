"""``riverflink serve`` without a job: snapshots written by hand, a real uvicorn server, a plain HTTP client.

What it proves: answers equal the snapshot's model, a key without one gets the
template, a snapshot never replaces a newer one, and every bad request is a
400 (or 401, 404, 413) with a reason while the server keeps answering.
"""


import pytest
from river import anomaly, base, linear_model

from jobs.cli.parser import build_parser
from jobs.cli.serve import build_app
from operators.records import model_snapshot_record, template_record
from state.envelope import dump_state
from tests.support.serving import serve_in_thread, until

pytestmark = pytest.mark.unit

X = {"a": 1.0, "b": -2.0}


class Fussy(base.Regressor):
    """A regressor that raises on a feature named ``boom``: a model failing on one request."""

    def learn_one(self, x, y):
        pass

    def predict_one(self, x):
        if "boom" in x:
            raise ValueError("boom is not a feature I know")
        return 1.0


def _trained(model, steps: int):
    for i in range(steps):
        model.learn_one({"a": float(i % 3), "b": float(i % 5)}, i % 2 == 0)
    return model


def _write(folder, name: str, lines: list[str]) -> None:
    (folder / name).write_text("".join(line + "\n" for line in lines))


def _serve(folder, *options: str):
    args = build_parser().parse_args(["serve", "--models", str(folder), *options])
    return build_app(args)


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory):
    """A models folder of three trained classifiers and a template, and the models themselves."""
    folder = tmp_path_factory.mktemp("models")
    models = {key: _trained(linear_model.LogisticRegression(), steps) for key, steps in (("a", 5), ("b", 9), ("c", 30))}
    _write(folder, "part-0.jsonl", [template_record(dump_state(linear_model.LogisticRegression()), 1_000)]
           + [model_snapshot_record(key, 5 + i, dump_state(model), 2_000) for i, (key, model) in enumerate(models.items())])
    return folder, models


@pytest.fixture(scope="module")
def client(classifiers):
    app = _serve(classifiers[0])
    app.follower.start()
    with serve_in_thread(app) as client:
        assert until(client.healthy)
        yield client


def test_every_key_is_answered_by_its_snapshot_and_an_unseen_key_by_the_template(client, classifiers):
    _, models = classifiers
    for version, (key, model) in enumerate(models.items(), start=5):
        status, answer = client.predict({"key": key, "x": X})
        assert status == 200
        assert answer["prediction"] == model.predict_one(X)
        assert answer["proba"] == {str(label): p for label, p in model.predict_proba_one(X).items()}
        assert answer["model_version"] == version and answer["model_ts"] == 2.0
    status, answer = client.predict({"key": "never-seen", "x": X})
    assert status == 200
    assert answer["model_version"] == 0 and answer["model_ts"] is None
    assert answer["proba"] == {str(label): p for label, p in linear_model.LogisticRegression().predict_proba_one(X).items()}


def test_a_list_is_answered_in_order(client, classifiers):
    status, answers = client.predict([{"key": key, "x": X} for key in ("c", "a", "zzz")])
    assert status == 200
    assert [(a["key"], a["model_version"]) for a in answers] == [("c", 7), ("a", 5), ("zzz", 0)]


@pytest.mark.parametrize("body, reason", [
    ("{not json", "not_json"),
    ('{"key": "a", "x": {"a": NaN}}', "non_finite_value"),
    ("[1, 2]", "not_object"),
    ('"a"', "not_object"),
    ('{"x": {"a": 1}}', "missing_key"),
    ('{"key": "", "x": {}}', "invalid_key"),
    ('{"key": ["a"], "x": {}}', "invalid_key"),
    ('{"key": "a", "x": [1, 2]}', "invalid_features"),
    ('{"key": "a", "x": {"a": {"nested": 1}}}', "invalid_features"),
    ('[{"key": "a", "x": {}}, {"key": "b", "x": 3}]', "invalid_features"),
    (b"\xff\xfe", "not_json"),
])
def test_a_bad_request_is_a_400_with_the_reason_the_job_would_give(client, body, reason):
    status, answer = client.request("POST", "/predict", body)
    assert status == 400, answer
    assert answer["error"] == reason and answer["detail"]
    assert client.predict({"key": "a", "x": X})[0] == 200  # and the server goes on


def test_routes_methods_and_sizes(client):
    assert client.request("GET", "/nowhere")[0] == 404
    assert client.request("GET", "/predict")[0] == 405
    status, answer = client.request("POST", "/predict", b"[" + b"1," * 600_000 + b"1]")
    assert (status, answer["error"]) == (413, "too_large")
    status, answer = client.request("POST", "/events", "{}")
    assert (status, answer["error"]) == (404, "not_found")  # no --kafka-topic: nothing to forward to


def test_models_route_describes_a_key(client):
    status, described = client.request("GET", "/models/b")
    assert status == 200
    assert (described["model_version"], described["kind"], described["model"]) == (6, "classifier", "LogisticRegression")
    assert described["bytes"] > 0 and described["model_ts"] == 2.0
    assert client.request("GET", "/models/nobody")[0] == 404


def test_health_and_metrics(client):
    status, health = client.request("GET", "/health")
    assert status == 200 and health == {"status": "ok", "keys": 3, "template": True}
    client.predict({"key": "a", "x": X})
    status, text = client.request("GET", "/metrics")
    assert status == 200
    series = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert float(series['riverflink_serve_requests_total{route="/predict",status="200"}']) >= 1
    assert float(series["riverflink_serve_keys"]) == 3
    assert float(series["riverflink_serve_loaded"]) == 1
    assert float(series['riverflink_serve_request_seconds_count{route="/predict"}']) >= 1


def test_a_snapshot_never_replaces_a_newer_one_and_a_newer_one_is_served(tmp_path):
    old, new = _trained(linear_model.LogisticRegression(), 3), _trained(linear_model.LogisticRegression(), 40)
    _write(tmp_path, "part-0.jsonl", [template_record(dump_state(linear_model.LogisticRegression()), 1_000),
                                      model_snapshot_record("k", 10, dump_state(old), 5_000)])
    app = _serve(tmp_path)
    app.follower.start()
    with serve_in_thread(app) as client:
        assert until(client.healthy)
        assert client.predict({"key": "k", "x": X})[1]["model_version"] == 10  # restored now
        # A replay writes an older version later: the key keeps version 10.
        _write(tmp_path, "part-1.jsonl", [model_snapshot_record("k", 3, dump_state(new), 9_000)])
        assert until(lambda: app.follower.records == 3)
        assert client.predict({"key": "k", "x": X})[1]["model_version"] == 10
        # An in-progress file is not committed: not read.
        _write(tmp_path, ".part-2.jsonl.inprogress", [model_snapshot_record("k", 50, dump_state(new), 9_000)])
        _write(tmp_path, "part-3.jsonl", [model_snapshot_record("k", 40, dump_state(new), 9_500)])
        assert until(lambda: client.predict({"key": "k", "x": X})[1]["model_version"] == 40)
        answer = client.predict({"key": "k", "x": X})[1]
        assert answer["prediction"] == new.predict_one(X) and answer["model_ts"] == 9.5


def test_a_model_that_raises_is_a_400_and_the_server_goes_on(tmp_path):
    _write(tmp_path, "part-0.jsonl", [template_record(dump_state(Fussy()), 1_000),
                                      model_snapshot_record("k", 1, dump_state(Fussy()), 2_000)])
    app = _serve(tmp_path)
    app.follower.start()
    with serve_in_thread(app) as client:
        assert until(client.healthy)
        status, answer = client.predict({"key": "k", "x": {"boom": 1.0}})
        assert (status, answer["error"]) == (400, "model_error") and "boom is not a feature" in answer["detail"]
        assert client.predict({"key": "k", "x": {"a": 1.0}}) == (200, {
            "key": "k", "prediction": 1.0, "model_version": 1, "model_ts": 2.0})


def test_anomaly_scores_and_a_token(tmp_path):
    model = anomaly.HalfSpaceTrees(seed=1)
    for i in range(50):
        model.learn_one({"a": (i % 7) / 7, "b": (i % 3) / 3})
    _write(tmp_path, "part-0.jsonl", [template_record(dump_state(anomaly.HalfSpaceTrees(seed=1)), 1_000),
                                      model_snapshot_record("s", 50, dump_state(model), 2_000)])
    app = _serve(tmp_path, "--token", "s3cret")
    app.follower.start()
    with serve_in_thread(app) as client:
        assert until(client.healthy)  # /health needs no token
        status, answer = client.predict({"key": "s", "x": {"a": 0.5, "b": 0.1}})
        assert (status, answer["error"]) == (401, "unauthorized")
        assert client.request("GET", "/metrics")[0] == 401
        assert client.predict({"key": "s", "x": {"a": 0.5, "b": 0.1}}, token="wrong")[0] == 401
        status, answer = client.predict({"key": "s", "x": {"a": 0.5, "b": 0.1}}, token="s3cret")
        assert status == 200
        assert answer["score"] == answer["prediction"] == model.score_one({"a": 0.5, "b": 0.1})


def test_a_loaded_server_with_no_destination_yet_is_healthy_and_says_no_template(tmp_path):
    app = _serve(tmp_path / "not-yet")
    app.follower.start()
    with serve_in_thread(app) as client:
        assert until(client.healthy)
        status, answer = client.predict({"key": "k", "x": X})
        assert (status, answer["error"]) == (503, "no_template")


@pytest.mark.parametrize("argv, message", [
    (["--models", "kafka://models"], "kafka://models needs --kafka-bootstrap"),
    (["--out", "x", "--kafka-topic", "events"], "--kafka-topic events needs --kafka-bootstrap"),
    (["--models", "m", "--live-models", "0"], "--live-models must be at least 1"),
])
def test_bad_serve_arguments_are_refused_with_one_line(argv, message):
    from state.exceptions import SettingsError

    with pytest.raises(SettingsError, match=message):
        build_app(build_parser().parse_args(["serve", *argv]))

