"""The yardstick: the same events through a plain, single-process river loop.

Deliberately written without any riverflink code, the way a user would glue a
dict of river models to a stream, so that agreeing with it means something.
"""

import collections
import dataclasses
import json
import math

from river import utils
from river.time_series.base import Forecaster

from state.destinations import read_records

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


def river_loop(lines, template, kind: str, new_metric, new_model=None) -> tuple[dict[str, KeyResult], object]:
    """Per-key results and the all-keys metric of valid event lines, in order.

    Each new key's model is ``new_model()``, by default ``template.clone()``.
    """
    new_model = new_model or template.clone
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
            result.model, result.metric = new_model(), new_metric()
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
    if a.__class__ is not b.__class__ or repr(a) != repr(b):  # params; some (KNN's distance) have no ==
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


@dataclasses.dataclass
class LifecycleResult:
    predictions: list = dataclasses.field(default_factory=list)  # (id, prediction, model_version, serving)
    metric: object = None  # of served predictions
    n: int = 0
    models: dict = None  # name -> model
    metrics: dict = None  # name -> progressive metric
    windows: dict = None  # name -> river.utils.Rolling
    serving: str = None
    detector: object = None
    learned: int = 0
    labels: int = 0


def lifecycle_loop(lines, templates: dict, kind: str, new_metric, window: int = 100, margin: float = 0.0,
                   detector=None, reset_on_drift: bool = False, new_models: dict | None = None, shared: dict | None = None,
                   admit_after: int | None = None):
    """Per-key results, lifecycle events (promotion, drift) and each model's all-keys metric, in order.

    For a classifier or regressor stream.

    Every key trains every model of ``templates`` (name -> template; the first
    serves first), serves from one, and switches to the model whose accuracy
    over the key's last ``window`` labelled events beats the serving one's by
    at least ``margin`` (the best such). With ``detector``, the serving
    model's errors feed a copy per key; on a detection with
    ``reset_on_drift``, every model of the key starts over.

    ``shared`` (name -> ``answer(key, event_id, x) -> (prediction, metric input)``)
    adds models no key trains, such as the global model: each is judged in every key
    like the others, and the first serves a new key. With ``admit_after``, a key's
    own models exist only from its ``admit_after``-th label on, the first they learn.
    """
    assert kind in ("classifier", "regressor")
    new_models = new_models or {name: template.clone for name, template in templates.items()}
    shared = shared or {}
    names = [*templates, *shared]
    first = names[len(templates)] if shared else names[0]
    bigger_is_better = new_metric().bigger_is_better
    results: dict[str, LifecycleResult] = {}
    events = []
    pending = {}
    overall = {name: new_metric() for name in names}  # each model over all keys

    def admitted(result):
        return {name: make() for name, make in new_models.items()} if result.labels >= (admit_after or 0) else {}

    def fresh(result):
        result.models = admitted(result)
        result.windows = {name: utils.Rolling(new_metric(), window) for name in names}
        result.learned = 0

    uses_proba = kind == "classifier" and not new_metric().requires_labels

    def guesses(result, key, event_id, x):
        """name -> (its prediction, what its metric is updated with)."""
        answers = {}
        for name, model in result.models.items():
            prediction = model.predict_one(x)
            answers[name] = (prediction, model.predict_proba_one(x) if uses_proba else prediction)
        for name, answer in shared.items():
            answers[name] = answer(key, event_id, x)
        return answers

    def label(key, result, x, y, answers, served_by):
        result.labels += 1
        if result.labels == admit_after:
            result.models = admitted(result)
        for model in result.models.values():
            model.learn_one(x, y)
        result.learned += 1
        served_label, served_score = answers[served_by]  # the model that served the prediction, then
        scored = served_score is not None and served_score != {}
        if scored:
            result.metric.update(y, served_score)
            result.n += 1
        for name, (_, score) in answers.items():
            if score is not None and score != {}:
                result.metrics[name].update(y, score)
                result.windows[name].update(y, score)
                overall[name].update(y, score)
        if detector is not None and scored:
            result.detector.update(served_label != y if kind == "classifier" else abs(y - served_label))
            if result.detector.drift_detected:
                events.append({"key": key, "event": "drift", "model": result.serving, "n": result.n})
                if reset_on_drift:
                    fresh(result)
        serving = result.windows[result.serving]
        if len(names) > 1 and len(serving.window) == window:
            best, best_gain = None, 0.0
            for name, rolling in result.windows.items():
                if name != result.serving and len(rolling.window) == window:
                    gain = (rolling.get() - serving.get()) * (1 if bigger_is_better else -1)
                    if gain > best_gain and gain >= margin:
                        best, best_gain = name, gain
            if best is not None:
                events.append({"key": key, "event": "promotion", "from": result.serving, "to": best, "n": result.n})
                result.serving = best
                if detector is not None:
                    result.detector = detector.clone()

    for line in lines:
        event = json.loads(line)
        key, x, y, event_id = str(event["key"]), event.get("x"), event.get("y"), event.get("id")
        if key not in results:
            result = results[key] = LifecycleResult(metric=new_metric(), serving=first)
            result.metrics = {name: new_metric() for name in names}
            result.detector = None if detector is None else detector.clone()
            fresh(result)
        result = results[key]
        if x is None:
            kept_x, answers, served_by = pending.pop((key, event_id))
            label(key, result, kept_x, y, answers, served_by)
            continue
        answers = guesses(result, key, event_id, x)
        result.predictions.append((event_id, answers[result.serving][0], result.learned, result.serving))
        if y is None:
            pending[(key, event_id)] = (x, answers, result.serving)
        else:
            label(key, result, x, y, answers, result.serving)
    return results, events, overall


def read_trace(destination) -> list[dict]:
    """A ``--global-trace`` in the order the global model learned: by version (part files read by name are not)."""
    return sorted(read_records(destination), key=lambda record: record["version"])


def global_versions(template, trace: list[dict], wanted: set[int]) -> dict:
    """Version -> the global model after that many steps of a plain river loop over ``trace``, for each wanted one."""
    model, versions = template.clone(), {}
    if 0 in wanted:
        versions[0] = model.clone(include_attributes=True)
    for record in trace:
        model.learn_one(record["x"], record["y"])
        if record["version"] in wanted:
            versions[record["version"]] = model.clone(include_attributes=True)
    return versions


@dataclasses.dataclass
class BlendResult:
    """One key under ``--global-blend`` in a plain loop: what it served, and its own model."""

    own: object = None
    labels: int = 0
    global_loss: float = 0.0  # log loss over the labels both models answered
    own_loss: float = 0.0
    served: dict = dataclasses.field(default_factory=dict)  # event id -> (label, probabilities, global share)


def blend_loop(lines, template, global_proba, admit_after: int | None = None, own_copy=None) -> dict:
    """Key -> ``BlendResult``: each key serves its own and the global model's probabilities, mixed.

    The exponentially weighted average forecaster over two experts: the
    global model (``global_proba(key, event_id, x)``, the version that
    answered) and the key's own model, each weighted by ``exp(-its log
    loss)`` over the key's labels both answered. The own model is a clone of
    ``template`` from the key's first event, or from its ``admit_after``-th
    label, or ``own_copy(key)`` at its first label (a warm copy of the
    global model). Predictions and labels may come apart (delayed labels).
    """
    results, pending = {}, {}
    first_label = 1 if own_copy is not None and admit_after is None else admit_after
    for event in map(json.loads, lines):
        key, event_id = event["key"], event.get("id")
        result = results.get(key)
        if result is None:
            result = results[key] = BlendResult(own=template.clone() if first_label is None else None)
        if "x" in event:
            x = event["x"]
            answers = (global_proba(key, event_id, x), None if result.own is None else result.own.predict_proba_one(x))
            both = all(answers)
            share = 1 / (1 + math.exp(min(max(result.global_loss - result.own_loss, -50.0), 50.0))) if both \
                else 0.0 if answers[1] else 1.0  # the global model's share: all of it, or none, if one is silent
            if both:
                proba = {c: share * answers[0].get(c, 0.0) + (1 - share) * answers[1].get(c, 0.0)
                         for c in {**answers[0], **answers[1]}}
            else:
                proba = dict(answers[1] or answers[0])
            result.served[event_id] = (max(proba, key=proba.get), proba, share)
            pending[(key, event_id)] = (x, answers)
        if "y" in event:
            x, answers = pending.pop((key, event_id))
            result.labels += 1
            if result.labels == first_label:
                result.own = template.clone() if own_copy is None else own_copy(key)
            if result.own is not None:
                result.own.learn_one(x, event["y"])
            if all(answers):
                result.global_loss -= math.log(min(max(answers[0].get(event["y"], 0.0), 1e-15), 1.0))
                result.own_loss -= math.log(min(max(answers[1].get(event["y"], 0.0), 1e-15), 1.0))
    return results
