"""The yardstick: the same events through a plain, single-process river loop.

Deliberately written without any riverflink code, the way a user would glue a
dict of river models to a stream, so that agreeing with it means something.
"""

import collections
import dataclasses
import json

from river import utils
from river.time_series.base import Forecaster

KINDS = ("classifier", "regressor", "anomaly_detector", "clusterer", "forecaster")


@dataclasses.dataclass
class KeyResult:
    predictions: list = dataclasses.field(default_factory=list)  # (id, prediction, model_version)
    metric: object = None
    n: int = 0
    model: object = None
    learned: int = 0


def _predict(kind, model, x, metric):
    if kind == "classifier":
        proba = model.predict_proba_one(x)
        prediction = model.predict_one(x)
        return prediction, (prediction if metric is None or metric.requires_labels else proba)
    if kind == "anomaly_detector":
        score = model.score_one(x)
        return score, score
    if kind == "forecaster":
        forecast = model.forecast(horizon=1, xs=[x] if x else None)[0]
        return forecast, forecast
    prediction = model.predict_one(x)
    return prediction, prediction


def _learn(kind, model, x, y):
    if kind == "forecaster":
        model.learn_one(y, x=x or None)
    elif kind in ("classifier", "regressor"):
        model.learn_one(x, y)
    else:
        model.learn_one(x)


def river_loop(lines, template, kind: str, new_metric) -> tuple[dict[str, KeyResult], object]:
    """Per-key results and the all-keys metric of valid event lines, in order."""
    assert kind in KINDS
    supervised = kind in ("classifier", "regressor", "forecaster")
    results: dict[str, KeyResult] = collections.defaultdict(KeyResult)
    overall = new_metric()
    pending = {}
    seen = set()

    def score(result, y, for_metric):
        if result.metric is None or for_metric is None or for_metric == {}:
            return
        result.metric.update(y, for_metric)
        overall.update(y, for_metric)
        result.n += 1

    for line in lines:
        event = json.loads(line)
        key, x, y, event_id = str(event["key"]), event.get("x"), event.get("y"), event.get("id")
        if x is not None:
            x = {name: value for name, value in x.items() if value is not None}
        result = results[key]
        if result.model is None:
            result.model, result.metric = template.clone(), new_metric()
        if x is None:  # a delayed label
            if (key, event_id) in seen and (key, event_id) not in pending:
                continue
            kept_x, for_metric = pending.pop((key, event_id))
            if supervised:
                _learn(kind, result.model, kept_x, y)
                result.learned += 1
            score(result, y, for_metric)
            continue
        if event_id is not None:
            if (key, event_id) in seen:
                continue
            seen.add((key, event_id))
        prediction, for_metric = _predict(kind, result.model, x, result.metric)
        result.predictions.append((event_id, prediction, result.learned))
        if y is not None or not supervised:
            _learn(kind, result.model, x, y)
            result.learned += 1
        if y is not None:
            score(result, y, for_metric)
        elif event_id is not None:
            pending[(key, event_id)] = (x, for_metric)
    return dict(results), overall


def same_model(a, b, probes) -> bool:
    """Two models are the same if they answer every probe identically (and have the same params)."""
    if a.__class__ is not b.__class__ or a._get_params() != b._get_params():
        return False
    if utils.inspect.isclusterer(a) and hasattr(a, "centers"):  # cluster ids hide moved centers
        return {i: dict(c) for i, c in a.centers.items()} == {i: dict(c) for i, c in b.centers.items()}
    for x in probes:
        if utils.inspect.isanomalydetector(a):
            if a.score_one(x) != b.score_one(x):
                return False
        elif isinstance(utils.inspect.extract_relevant(a), Forecaster):
            if a.forecast(horizon=3) != b.forecast(horizon=3):
                return False
        elif a.predict_one(x) != b.predict_one(x):
            return False
        if utils.inspect.isclassifier(a) and a.predict_proba_one(x) != b.predict_proba_one(x):
            return False
    return True
