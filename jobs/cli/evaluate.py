"""``riverflink evaluate``: judge models on an event log before they serve.

The log is replayed through the very job that would serve it (same keying,
same joining of delayed labels to their predictions, same per-key models and
metrics), so a label arrives exactly as late as it did in the log and the
figures are those of river's progressive validation over those events, per
key and over all keys, for the ``--model`` and each challenger.
"""

import dataclasses
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
from state.destinations import read_records
from state.exceptions import RiverflinkError, SettingsError

__all__ = ["ModelFigures", "Evaluation", "command", "evaluate", "evaluation_table", "plot_curves", "SERVED"]

logger = logging.getLogger(__name__)

SERVED = "served"  # the predictions as served: the --model's, or, with challengers, each key's champion's


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
        if plot is not None and not plot.parent.is_dir():
            raise SettingsError(f"--plot {plot}: no such directory {plot.parent}")
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
        name = model or (SERVED if settings.lifecycle.challengers else settings.model)
        figures.append(ModelFigures(name, overall["metric"], overall["value"], overall["n"], Spread.of(by_key),
                                    tuple(sorted(curves.get(model, ())))))
    order = (SERVED, *settings.models)
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


def plot_curves(evaluation: Evaluation, path: pathlib.Path) -> None:
    """Draw each model's all-keys metric along the stream.

    Parameters
    ----------
    evaluation
        What ``evaluate`` returned.
    path
        The image file to write, in any format matplotlib writes (by its suffix).
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
        figure.savefig(path, dpi=120)
    finally:
        pyplot.close(figure)
    logger.info("plot written to %s", path)
