"""The example model of every kind, loaded the way the CLI loads it."""

import pathlib

from jobs.model_spec import load_template
from operators.model_kinds import make_metric

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DATA = EXAMPLES / "data"
KIND_MODELS = {kind: f"{kind}.py:model" for kind in ("classifier", "regressor", "anomaly_detector", "clusterer", "forecaster")}


def example(kind: str):
    """(spec, template, Kind, fresh-metric factory) of ``examples/<kind>.py:model``."""
    spec = f"{EXAMPLES / KIND_MODELS[kind]}"
    template, model_kind = load_template(spec)
    metric = make_metric(model_kind, None, template)
    return spec, template, model_kind, (lambda: None if metric is None else metric.clone())
