"""``riverflink evaluate`` against ``river.evaluate.progressive_val_score``, labels as late as in the log."""

import collections
import html
import json
import re

import matplotlib.colors
import matplotlib.image
import pytest
from river import evaluate as river_evaluate
from river import metrics, naive_bayes, stream

from jobs.cli.evaluate import SERVED, evaluate
from jobs.cli.metric_reports import final_metrics
from jobs.cli.produce import publish
from jobs.settings import KafkaSettings, LifecycleSettings, OutputSettings, Settings, TuningSettings
from state.destinations import read_records
from tests.support.kafka import new_topic
from tests.support.models import DATA, EXAMPLES, example
from tests.support.reference import lifecycle_loop
from tests.test_cli import riverflink

pytestmark = pytest.mark.minicluster

CHALLENGER = "river.naive_bayes:GaussianNB"
DELAY = 25  # each label arrives after this many more events of its key
BY_DIET = """
from river import compose, linear_model, optim, preprocessing

model = (compose.Select("time") + (compose.Select("diet") | preprocessing.OneHotEncoder())) | linear_model.LinearRegression(
    optimizer=optim.SGD(0.01), intercept_lr=0.5)
"""


def delayed_log(lines: list[str], delay: int) -> tuple[list[str], dict]:
    """Each key's events as river's ``simulate_qa`` delays them, keys interleaved; and key -> its (x, y) data set."""
    by_key: dict[str, list] = {}
    for event in map(json.loads, lines):
        by_key.setdefault(event["key"], []).append((event["x"], event["y"]))
    streams = {}
    for key, dataset in by_key.items():
        streams[key] = [
            {"key": key, "id": f"{key}-{i}", "x": x} if y is None else {"key": key, "id": f"{key}-{i}", "y": y}
            for i, x, y in stream.simulate_qa(dataset, moment=None, delay=delay)
        ]
    log = []
    while any(streams.values()):  # round robin: every key's order is kept, keys interleave
        for key in list(streams):
            if streams[key]:
                log.append(json.dumps(streams[key].pop(0)))
    return log, by_key


def test_evaluate_equals_river_progressive_validation_per_model_and_key(tmp_path):
    spec, template, _, _ = example("classifier")
    log, datasets = delayed_log((DATA / "phishing.jsonl").read_text().splitlines(), DELAY)
    (tmp_path / "log.jsonl").write_text("\n".join(log) + "\n")
    settings = Settings(model=spec, inputs=(str(tmp_path / "log.jsonl"),),
                        lifecycle=LifecycleSettings(challengers=(CHALLENGER,)),
                        # Reports on time too would add curve points wherever a wall-clock interval boundary falls.
                        tuning=TuningSettings(metrics_every=50, metrics_interval=3600),
                        outputs=OutputSettings(metrics=str(tmp_path / "metrics"), events=str(tmp_path / "events"),
                                               dead_letters=str(tmp_path / "dead")))

    evaluation = evaluate(settings)

    models = {spec: template, CHALLENGER: naive_bayes.GaussianNB()}
    assert [figures.name for figures in evaluation.models] == [SERVED, spec, CHALLENGER]
    assert evaluation.dead_letters == 0
    by_model = final_metrics(read_records(settings.outputs.metrics))
    for figures in evaluation.models[1:]:
        per_key = {key: river_evaluate.progressive_val_score(dataset, models[figures.name].clone(), metrics.Accuracy(),
                                                             delay=DELAY) for key, dataset in datasets.items()}
        assert {key: (record["value"], record["n"]) for key, record in by_model[figures.name].items() if key} == \
            {key: (metric.get(), metric.cm.n_samples) for key, metric in per_key.items()}, figures.name
        values = sorted(metric.get() for metric in per_key.values())
        assert (figures.spread.low, figures.spread.median, figures.spread.high) == \
            (values[0], values[len(values) // 2], values[-1]), figures.name
        right = sum(metric.cm.total_true_positives for metric in per_key.values())
        scored = sum(metric.cm.n_samples for metric in per_key.values())
        assert (figures.value, figures.n) == (pytest.approx(right / scored, rel=1e-12), scored), figures.name
        assert [n for n, _ in figures.curve][:3] == [50, 100, 150] and figures.curve[-1] == (figures.n, figures.value)

    # Served: each key's champion until a challenger beats it over the last 100 labels (the defaults).
    served, promotions, _ = lifecycle_loop(log, models, "classifier", metrics.Accuracy, window=100, margin=0.0)
    assert {key: (record["value"], record["n"]) for key, record in by_model[None].items() if key} == \
        {key: (result.metric.get(), result.n) for key, result in served.items()}
    right = sum(result.metric.cm.total_true_positives for result in served.values())
    scored = sum(result.n for result in served.values())
    assert (evaluation.models[0].value, evaluation.models[0].n) == (pytest.approx(right / scored, rel=1e-12), scored)
    assert evaluation.promotions == collections.Counter(event["to"] for event in promotions)


def test_evaluate_prints_a_table_and_draws_the_plot(tmp_path):
    log, _ = delayed_log((DATA / "chick_weights.jsonl").read_text().splitlines(), 3)
    (tmp_path / "log.jsonl").write_text("\n".join(log) + "\n")
    plot = tmp_path / "mae.png"
    (tmp_path / "by_diet.py").write_text(BY_DIET)
    challenger = f"{tmp_path / 'by_diet.py'}:model"
    page = tmp_path / "report.html"
    result = riverflink("evaluate", "--model", f"{EXAMPLES}/regressor.py:model", "--challenger", challenger,
                        "--input", str(tmp_path / "log.jsonl"), "--plot", str(plot), "--html", str(page))
    assert result.returncode == 0, result.stderr
    table = result.stdout.splitlines()
    _assert_self_contained_report(page.read_text(), result.stdout)
    assert table[0].split() == ["model", "metric", "all", "keys", "n", "keys", "min", "median", "max"]
    assert [line.split()[:2] for line in table[1:4]] == [
        [SERVED, "MAE"], [f"{EXAMPLES}/regressor.py:model", "MAE"], [challenger, "MAE"]]
    assert all(line.split()[3:5] == ["578", "50"] for line in table[2:4])
    pixels = matplotlib.image.imread(plot)[:, :, :3]
    assert pixels.shape == (540, 960, 3)  # 8 x 4.5 inches at 120 dpi
    drawn = {colour: (abs(pixels - matplotlib.colors.to_rgb(colour)) < 2 / 255).all(axis=2).sum()
             for colour in ("C0", "C1", "C2")}  # one curve per row of the table, in its order
    # Where a key's champion served throughout, the dashed served curve lies under the model's: its legend shows.
    assert drawn["C0"] > 10 and drawn["C1"] > 200 and drawn["C2"] > 200, drawn  # a legend sample is ~20 px


def _assert_self_contained_report(page: str, printed: str) -> None:
    """``--html``: the printed table, and the plot with a curve and a legend entry per model, fetching nothing."""
    table = printed[:printed.index("\nplot: ")]
    assert html.escape(table) in page
    svg = page[page.index("<svg"):page.index("</svg>")]
    models = [line.split()[0] for line in table.splitlines()[1:4]]
    legend = re.findall(r">([^<>]+)</text>", svg)
    assert all(html.escape(model) in legend for model in models), legend
    paths = re.findall(r'<path d="([^"]+)"[^>]*style="([^"]*)"', svg)
    for colour in ("#1f77b4", "#ff7f0e", "#2ca02c"):  # C0, C1, C2: a curve per row of the table, not a legend sample
        assert any(f"stroke: {colour}" in style and path.count("\nL ") > 10 for path, style in paths), colour
    # Nothing to fetch: no scripts, stylesheets, images or fonts from elsewhere (the SVG namespace is only a name).
    assert not re.search(r"<(script|link|img|iframe)\b|@import|url\((?!#)", page)  # url(#id): the SVG's own clips
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) <= {"http://www.w3.org/2000/svg",
                                                          "http://www.w3.org/1999/xlink"}


@pytest.mark.kafka
def test_evaluate_replays_a_kafka_topic_up_to_its_end(tmp_path, kafka_bootstrap):
    spec, template, _, _ = example("regressor")
    log, datasets = delayed_log((DATA / "chick_weights.jsonl").read_text().splitlines(), 3)
    (tmp_path / "log.jsonl").write_text("\n".join(log) + "\n")
    topic = new_topic(kafka_bootstrap, partitions=2)
    publish(kafka_bootstrap, topic, [tmp_path / "log.jsonl"])
    settings = Settings(model=spec, parallelism=2, outputs=OutputSettings(metrics=str(tmp_path / "metrics")),
                        kafka=KafkaSettings(bootstrap=kafka_bootstrap, topics=(topic,), stop_at_latest=True,
                                            group="evaluate-test"))

    figures = evaluate(settings).models[0]

    per_key = {key: river_evaluate.progressive_val_score(dataset, template.clone(), metrics.MAE(), delay=3)
               for key, dataset in datasets.items()}
    values = sorted(metric.get() for metric in per_key.values())
    assert (figures.name, figures.n, figures.spread.keys) == (spec, len(log) // 2, len(datasets))
    assert (figures.spread.low, figures.spread.median, figures.spread.high) == \
        (values[0], values[len(values) // 2], values[-1])
