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

from jobs.learn_job import run_job
from jobs.cli.metric_reports import Spread, final_metrics
from jobs.settings import Settings
from state.destinations import read_records

__all__ = ["ModelFigures", "Evaluation", "evaluate", "plot_curves", "SERVED"]

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
    models: tuple[ModelFigures, ...]  # the served predictions first
    promotions: dict[str, int]  # model name -> keys that switched to it
    drifts: int
    dead_letters: int


def evaluate(settings: Settings) -> Evaluation:
    """Run ``settings`` (a bounded job whose ``metrics`` destination is a directory) and read its figures."""
    if not settings.bounded or settings.metrics is None:
        raise ValueError("evaluate needs a bounded input and a metrics directory")
    run_job(settings)
    records = list(read_records(settings.metrics))
    curves: dict[str | None, set] = {}
    for record in records:
        if record["key"] is None:
            curves.setdefault(record.get("model"), set()).add((record["n"], record["value"]))
    figures = []
    for model, by_key in final_metrics(records).items():
        overall = by_key.get(None)
        if overall is None:
            continue
        name = model or (SERVED if settings.challengers else settings.model)
        figures.append(ModelFigures(name, overall["metric"], overall["value"], overall["n"], Spread.of(by_key),
                                    tuple(sorted(curves.get(model, ())))))
    order = (SERVED, *settings.models)
    figures.sort(key=lambda figure: order.index(figure.name))
    events = list(read_records(settings.events)) if settings.events is not None else []
    promotions: dict[str, int] = {}
    for event in events:
        if event["event"] == "promotion":
            promotions[event["to"]] = promotions.get(event["to"], 0) + 1
    drifts = sum(event["event"] == "drift" for event in events)
    dead = sum(1 for _ in read_records(settings.dead_letters)) if settings.dead_letters is not None else 0
    return Evaluation(tuple(figures), promotions, drifts, dead)


def plot_curves(evaluation: Evaluation, path: pathlib.Path) -> None:
    """Draw each model's all-keys metric along the stream into ``path`` (any format matplotlib writes)."""
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
