"""``riverflink evaluate``: judge models on an event log before they serve.

The log is replayed through the very job that would serve it (same keying,
same joining of delayed labels to their predictions, same per-key models and
metrics), so a label arrives exactly as late as it did in the log and the
figures are those of river's progressive validation over those events, per
key and over all keys, for the ``--model``, each challenger and the global model.
"""

import dataclasses
import html
import io
import logging
import pathlib
import tempfile

from jobs.cli.failures import report_job_failure
from jobs.cli.metric_reports import Spread, final_metrics
from jobs.cli.parser import settings_from_args
from jobs.cli.tables import format_table
from jobs.earlier_outputs import prepare_file_outputs
from jobs.runtime.jvm import start_jvm_early
from jobs.settings import Settings
from operators.lifecycle import GLOBAL
from state.destinations import read_records
from state.exceptions import RiverflinkError, SettingsError

__all__ = ["ModelFigures", "Evaluation", "command", "evaluate", "evaluation_table", "plot_curves", "html_report", "SERVED"]

logger = logging.getLogger(__name__)

SERVED = "served"  # the predictions as served: the --model's, or, with challengers or a global model, each key's champion's


@dataclasses.dataclass(frozen=True)
class ModelFigures:
    """One model's progressive metric: over all keys, how it spreads across keys, and along the stream."""

    name: str
    metric: str
    value: float
    n: int
    spread: Spread | None
    curve: tuple[tuple[int, float], ...]  # (labelled events so far, all-keys value)


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What an evaluation found: each model's figures, and what happened to the keys along the way."""

    models: tuple[ModelFigures, ...]  # the served predictions first
    promotions: dict[str, int]  # model name -> keys that switched to it
    drifts: int
    dead_letters: int


def command(args) -> int:
    """Carry out ``riverflink evaluate``: replay, print the table, draw the plot; returns the exit status.

    Parameters
    ----------
    args
        The parsed ``evaluate`` arguments.
    """
    with tempfile.TemporaryDirectory(prefix="riverflink-evaluate-") as scratch:
        settings = settings_from_args(args, scratch)
        if args.out is not None:
            prepare_file_outputs(settings.outputs, args.overwrite)
        plot = None if args.plot is None else pathlib.Path(args.plot)
        page = None if args.html is None else pathlib.Path(args.html)
        for option, path in (("--plot", plot), ("--html", page)):
            if path is not None and not path.parent.is_dir():
                raise SettingsError(f"{option} {path}: no such directory {path.parent}")
        start_jvm_early("mini-cluster")  # beside the imports and model loading of the evaluation
        try:
            evaluation = evaluate(settings)
        except RiverflinkError:
            raise
        except Exception as exc:  # the JVM's error: its root cause here, the whole trace in Flink's log
            return report_job_failure("evaluation", exc)
    print(evaluation_table(evaluation))
    if plot is not None:
        plot_curves(evaluation, plot)
        print(f"plot: {plot}")
    if page is not None:
        page.write_text(html_report(evaluation, ", ".join([*args.input, *args.kafka_topic])))
        print(f"report: {page}")
    return 0


def evaluate(settings: Settings) -> Evaluation:
    """Run ``settings`` and read its figures back.

    Parameters
    ----------
    settings
        A bounded run whose ``outputs.metrics`` is a directory; ``outputs.events`` and
        ``outputs.dead_letters``, when directories, are counted too.
    """
    from jobs.learn_job import run_job  # here: the table and the plot do without Flink

    outputs = settings.outputs
    if not settings.bounded or outputs.metrics is None:
        raise ValueError("evaluate needs a bounded input and a metrics directory")
    run_job(settings)
    records = list(read_records(outputs.metrics))
    curves: dict[str | None, set] = {}
    for record in records:
        if record["key"] is None:
            curves.setdefault(record.get("model"), set()).add((record["n"], record["value"]))
    figures = []
    for model, by_key in final_metrics(records).items():
        overall = by_key.get(None)
        if overall is None:
            continue
        name = model or (SERVED if settings.lifecycle.challengers or settings.lifecycle.global_model else settings.model)
        figures.append(ModelFigures(name, overall["metric"], overall["value"], overall["n"], Spread.of(by_key),
                                    tuple(sorted(curves.get(model, ())))))
    order = (SERVED, *settings.models, GLOBAL)
    figures.sort(key=lambda figure: order.index(figure.name))
    events = list(read_records(outputs.events)) if outputs.events is not None else []
    promotions: dict[str, int] = {}
    for event in events:
        if event["event"] == "promotion":
            promotions[event["to"]] = promotions.get(event["to"], 0) + 1
    drifts = sum(event["event"] == "drift" for event in events)
    dead = sum(1 for _ in read_records(outputs.dead_letters)) if outputs.dead_letters is not None else 0
    return Evaluation(tuple(figures), promotions, drifts, dead)


def evaluation_table(evaluation: Evaluation) -> str:
    """One line per model, then promotions, drifts and dead letters.

    Parameters
    ----------
    evaluation
        What ``evaluate`` returned.

    Examples
    --------
    >>> figures = ModelFigures("m.pkl", "MAE", 1.5, 10, Spread(2, 1.0, 2.0, 2.0), ())
    >>> print(evaluation_table(Evaluation((figures,), {}, 0, 1)))
    model  metric  all keys   n  keys     min  median     max
    m.pkl  MAE       1.5000  10     2  1.0000  2.0000  2.0000
    dead letters: 1
    """
    header = ("model", "metric", "all keys", "n", "keys", "min", "median", "max")
    rows = []
    for model in evaluation.models:
        spread = model.spread
        per_key = ("", "", "", "") if spread is None else (
            str(spread.keys), f"{spread.low:.4f}", f"{spread.median:.4f}", f"{spread.high:.4f}")
        rows.append((model.name, model.metric, f"{model.value:.4f}", str(model.n), *per_key))
    lines = [format_table(header, rows, right=header[2:])]
    for name, keys in evaluation.promotions.items():
        lines.append(f"promoted to {name} on {keys} key(s)")
    if evaluation.drifts:
        lines.append(f"drifts detected: {evaluation.drifts}")
    lines.append(f"dead letters: {evaluation.dead_letters}")
    return "\n".join(lines)


def plot_curves(evaluation: Evaluation, path) -> None:
    """Draw each model's all-keys metric along the stream.

    Parameters
    ----------
    evaluation
        What ``evaluate`` returned.
    path
        The image file to write, in any format matplotlib writes (by its suffix), or a
        binary file object to write SVG to.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(8, 4.5))
    try:
        for model in evaluation.models:
            if model.curve:
                steps, values = zip(*model.curve)
                axes.plot(steps, values, label=model.name, linestyle="--" if model.name == SERVED else "-")
        metric = evaluation.models[0].metric if evaluation.models else "metric"
        axes.set_xlabel("labelled events")
        axes.set_ylabel(f"{metric} (progressive, all keys)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
        figure.tight_layout()
        if isinstance(path, (str, pathlib.Path)):
            figure.savefig(path, dpi=120)
        else:  # text stays text, in the fonts of whoever opens it: nothing to fetch, and searchable
            with matplotlib.rc_context({"svg.fonttype": "none"}):
                # No metadata block: it names the format's and matplotlib's web addresses, nothing the page needs.
                figure.savefig(path, format="svg", metadata={"Creator": None, "Date": None, "Format": None,
                                                             "Type": None})
    finally:
        pyplot.close(figure)
    logger.info("plot written to %s", path)


def html_report(evaluation: Evaluation, title: str) -> str:
    """The evaluation as one self-contained HTML page: the table, then the plot as inline SVG.

    Nothing in it is fetched from elsewhere (no scripts, stylesheets, fonts or
    images), so it opens behind a firewall and can be mailed as it is.

    Parameters
    ----------
    evaluation
        What ``evaluate`` returned.
    title
        What the page is about, e.g. the evaluated log.
    """
    svg = io.BytesIO()
    plot_curves(evaluation, svg)
    drawing = svg.getvalue().decode()
    drawing = drawing[drawing.index("<svg"):]  # the XML declaration and doctype belong to a file, not a page
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>riverflink evaluate: {html.escape(title)}</title>\n"
        "<style>body{font-family:sans-serif;margin:2em;max-width:60em}pre{background:#f6f6f6;padding:1em}"
        "svg{max-width:100%;height:auto}</style>\n</head>\n<body>\n"
        f"<h1>riverflink evaluate</h1>\n<p>{html.escape(title)}</p>\n"
        f"<pre>{html.escape(evaluation_table(evaluation))}</pre>\n{drawing}\n</body>\n</html>\n"
    )
