"""The dashboard's figures, plots and routes, without a job: records written by hand, a real uvicorn server.

What it proves: each key's figure is its record with the largest ``n`` and
the spread, quantiles and worst keys are computed over those; a bad record is
counted and skipped; the page fetches nothing from any address; the overview,
a key's view and ``/metrics`` say what the records said; with a token a browser
gets in through ``/?token=`` and a cookie, and not without.
"""

import http.client
import json
import re
import time

import numpy as np
import pytest
from river import linear_model

from jobs.cli.parser import build_parser
from jobs.cli.serve import build_app
from jobs.serve.dashboard.board import SERVED, Board, bigger_is_better
from jobs.serve.dashboard.charts import line_chart
from operators.records import drift_record, model_snapshot_record, promotion_record
from state.envelope import dump_state
from tests.support.serving import serve_in_thread

pytestmark = pytest.mark.unit


def _metric(key, value, n, model=None, metric="Accuracy", ts=100.0):
    record = {"key": key, "metric": metric, "value": value, "n": n, "ts": ts}
    if model is not None:
        record["model"] = model
    return record


def test_a_keys_figure_is_its_record_with_the_largest_n_and_its_curve_runs_forwards():
    board = Board(key_points=4)
    for n, value in ((1, 0.0), (2, 0.5), (4, 0.75), (3, 0.6), (4, 0.8)):  # a late n=3, then n=4 reported again
        board.take_metric(_metric("a", value, n), 0)
    figures = board.key("a")
    assert figures["models"][SERVED]["value"] == 0.8 and figures["models"][SERVED]["n"] == 4
    assert figures["models"][SERVED]["curve"] == [(1.0, 0.0), (2.0, 0.5), (4.0, 0.8)]
    for n in range(5, 12):
        board.take_metric(_metric("a", n / 100, n), 0)
    assert len(board.key("a")["models"][SERVED]["curve"]) <= 4  # thinned, never longer


@pytest.mark.parametrize("metric", ["Accuracy", "MAE"])
def test_the_spread_and_the_worst_keys_are_over_each_keys_final_figure(metric):
    board = Board()
    rng = np.random.default_rng(3)
    final = {}
    for number in range(500):
        key, n = f"k{number}", int(rng.integers(1, 30))
        board.take_metric(_metric(key, 0.5, n - 1, metric=metric) if n > 1 else _metric(key, 0.1, 0, metric=metric), 0)
        final[key] = (float(rng.choice([0.0, 0.25, 0.5, 1.0])), n)
        board.take_metric(_metric(key, final[key][0], n, metric=metric), 0)
    board.take_metric(_metric(None, 0.5, 9999, metric=metric), 0)
    spread = board.overview()["spread"]
    values = np.array([value for value, _ in final.values()])
    assert spread["keys"] == 500
    assert spread["quantiles"] == dict(zip(["0.05", "0.25", "0.5", "0.75", "0.95"],
                                           np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95]).tolist()))
    assert sum(count for *_, count in spread["histogram"]) == 500
    worst_value = min(values) if bigger_is_better(metric) else max(values)
    most = max(n for value, n in final.values() if value == worst_value)
    assert spread["worst"][0] == {"key": spread["worst"][0]["key"], "value": worst_value, "n": most}
    assert final[spread["worst"][0]["key"]] == (worst_value, most)
    upwards = bigger_is_better(metric)
    ranked = [(entry["value"] if upwards else -entry["value"], -entry["n"]) for entry in spread["worst"]]
    assert ranked == sorted(ranked) and len(ranked) == 10


def test_an_overview_is_kept_until_the_board_changes_and_a_second_has_passed():
    board = Board(refresh_seconds=1.0)
    board.take_metric(_metric(None, 0.5, 10), 0)
    first = board.overview(now=100.0)
    assert board.overview(now=100.1) is first
    board.take_metric(_metric(None, 0.6, 20), 0)
    assert board.overview(now=100.5) is first  # changed, but less than a second ago
    assert board.overview(now=101.1)["models"][0]["value"] == 0.6


@pytest.mark.parametrize("take, record, message", [
    ("take_metric", {"value": 0.5, "n": 1}, "needs a 'key'"),
    ("take_metric", {"key": "a", "value": "high", "n": 1}, "number 'value'"),
    ("take_metric", {"key": "a", "value": 0.5, "n": 1.5}, "integer 'n'"),
    ("take_event", {"key": "a"}, "string 'event'"),
    ("take_dead_letter", {"raw": "x"}, "string 'reason'"),
])
def test_a_record_that_is_not_what_its_destination_holds_is_refused(take, record, message):
    with pytest.raises(ValueError, match=message):
        getattr(Board(), take)(record, 0)


def test_a_chart_draws_one_polyline_per_series_with_every_finite_point():
    svg = line_chart([("served", [(1, 0.5), (2, float("nan")), (3, 0.7)]), ("other", [])], "events", "Accuracy", "t")
    assert re.findall(r'data-series="([^"]+)"', svg) == ["served"]
    assert len(re.search(r'points="([^"]+)"', svg).group(1).split()) == 2


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A job's outputs written by hand: two keys' snapshots, metrics with a challenger, events, dead letters."""
    out = tmp_path_factory.mktemp("out")
    for name in ("models-out", "metrics", "events", "dead-letters"):
        (out / name).mkdir()
    model = linear_model.LogisticRegression()
    (out / "models-out" / "part-0").write_text("".join(
        model_snapshot_record(key, version, dump_state(model), 5_000, serving=serving) + "\n"
        for key, version, serving in (("a", 7, "champion"), ("b<script>", 3, "challenger"))))
    metrics = [_metric("a", 0.5, 6), _metric("a", 0.75, 7), _metric("b<script>", 1.0, 3),
               _metric("a", 0.25, 7, model="challenger"), _metric("b<script>", 0.5, 3, model="challenger"),
               _metric(None, 0.6, 5), _metric(None, 0.7, 10, ts=101.0), _metric(None, 0.4, 10, model="challenger")]
    (out / "metrics" / "part-0").write_text("".join(json.dumps(record) + "\n" for record in metrics) + "not json\n")
    (out / "events" / "part-0").write_text(
        json.dumps(promotion_record("b<script>", "champion", "challenger", 3, 2_000, "Accuracy", 0.5, 1.0)) + "\n"
        + json.dumps(drift_record("a", "champion", 6, 3_000, "ADWIN", "reset")) + "\n")
    (out / "dead-letters" / "part-0").write_text(
        "".join(json.dumps({"raw": "x", "reason": reason, "detail": "", "key": None}) + "\n"
                for reason in ("not_json", "not_json", "missing_key")))
    return out


def _app(out, *options):
    app = build_app(build_parser().parse_args(["serve", "--out", str(out), *options]))
    for follower in (app.follower, *app.followers):
        follower.start()
    return app


def _get(port: int, path: str, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _loaded(client) -> dict:
    overview = {}
    for _ in range(200):  # the followers read the folders in threads of their own
        overview = json.loads(_get(client.port, "/dashboard/overview")[2])
        if overview["records"] == 8 + 2 + 3 and overview["keys_served"] == 2:
            return overview
        time.sleep(0.05)
    raise AssertionError(f"the dashboard never read every record: {overview}")


def test_the_page_overview_key_and_metrics_say_what_the_job_wrote(written):
    app = _app(written)
    with serve_in_thread(app) as client:
        overview = _loaded(client)
        status, headers, page = _get(client.port, "/")
        assert status == 200 and headers["content-type"].startswith("text/html")
        # Nothing is fetched from anywhere: no script, style or image from an address, no import, no url().
        assert not re.search(rb"<(script|link|img|iframe)[^>]+(src|href)=|@import|url\(|https?://", page)
        assert [(model["name"], model["value"], model["n"], model["keys"]) for model in overview["models"]] == [
            (SERVED, 0.7, 10, 2), ("challenger", 0.4, 10, 2)]
        assert overview["metric"] == "Accuracy" and overview["spread"]["keys"] == 2
        assert [(entry["key"], entry["value"], entry["n"]) for entry in overview["spread"]["worst"]] == [
            ("a", 0.75, 7), ("b<script>", 1.0, 3)]
        assert overview["event_counts"] == {"promotion": 1, "drift": 1}
        assert overview["dead_letters"] == {"not_json": 2, "missing_key": 1}
        assert "<script" not in overview["curve"] and overview["curve"].count("<polyline") == 2
        assert app.followers[0].bad_records == 1  # the metrics folder's "not json" line, skipped
        key = json.loads(_get(client.port, "/dashboard/key?key=b%3Cscript%3E")[2])
        assert key["found"] and key["snapshot"]["model_version"] == 3 and key["snapshot"]["serving"] == "challenger"
        assert {name: model["value"] for name, model in key["models"].items()} == {SERVED: 1.0, "challenger": 0.5}
        assert [event["event"] for event in key["events"]] == ["promotion"]
        assert not json.loads(_get(client.port, "/dashboard/key?key=nobody")[2])["found"]
        assert _get(client.port, "/dashboard/key")[0] == 400
        exposition = _get(client.port, "/metrics")[2].decode()
        assert 'riverflink_serve_model_metric{metric="Accuracy",model="served"} 0.7' in exposition
        assert 'riverflink_serve_model_metric_labelled_events{model="challenger"} 10.0' in exposition


def test_with_a_token_a_browser_gets_in_by_the_address_once_then_by_a_cookie(written):
    with serve_in_thread(_app(written, "--token", "s3cret")) as client:
        assert _get(client.port, "/")[0] == 401
        assert _get(client.port, "/?token=wrong")[0] == 401
        status, headers, _ = _get(client.port, "/?token=s3cret")
        assert status == 303 and headers["location"] == "./"
        cookie = headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        sent = {"Cookie": cookie.split(";")[0]}
        assert _get(client.port, "/", sent)[0] == 200
        assert _get(client.port, "/dashboard/overview", sent)[0] == 200
        assert _get(client.port, "/dashboard/overview", {"Cookie": "riverflink_token=wrong"})[0] == 401
        assert _get(client.port, "/dashboard/overview?token=s3cret")[0] == 401  # the address works for the page only
        assert _get(client.port, "/dashboard/overview", {"Authorization": "Bearer s3cret"})[0] == 200


def test_dashboard_sources_are_named_and_conflicts_refused(tmp_path):
    args = ["serve", "--models", str(tmp_path / "m"), "--metrics", "kafka://metrics"]
    with pytest.raises(Exception, match="--metrics kafka://metrics needs --kafka-bootstrap"):
        build_app(build_parser().parse_args(args))
    with pytest.raises(Exception, match="--events goes with --models"):
        build_app(build_parser().parse_args(["serve", "--out", str(tmp_path), "--events", str(tmp_path / "e")]))
    app = build_app(build_parser().parse_args(["serve", "--out", str(tmp_path)]))
    assert app.dashboard.sources == {name: str(tmp_path / folder) for name, folder in (
        ("models", "models-out"), ("metrics", "metrics"), ("events", "events"), ("dead-letters", "dead-letters"))}
