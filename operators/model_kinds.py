"""What each kind of river estimator does with one event.

The kind is read once from river's base classes; after that the learning step
calls the right river verbs without asking again. The choices mirror
``river.evaluate.progressive_val_score`` so that our metrics equal river's:
classifiers are scored with ``predict_proba_one`` unless the metric needs
labels, anomaly detectors with ``score_one``.
"""

import dataclasses
import enum

from river import base, compose, metrics
from river.time_series.base import Forecaster
from river.utils import inspect as river_inspect

from state.exceptions import ModelSpecError, SettingsError

__all__ = ["Kind", "kind_of", "make_metric", "Predictor"]


class Kind(enum.Enum):
    CLASSIFIER = "classifier"
    REGRESSOR = "regressor"
    ANOMALY_DETECTOR = "anomaly_detector"
    CLUSTERER = "clusterer"
    FORECASTER = "forecaster"

    @property
    def supervised(self) -> bool:
        """Whether the model learns from ``y`` (and so waits for delayed labels)."""
        return self in (Kind.CLASSIFIER, Kind.REGRESSOR, Kind.FORECASTER)


_DEFAULT_METRIC = {
    Kind.CLASSIFIER: "Accuracy",
    Kind.REGRESSOR: "MAE",
    Kind.ANOMALY_DETECTOR: "ROCAUC",
    Kind.CLUSTERER: None,
    Kind.FORECASTER: "MAE",
}


def kind_of(model) -> Kind:
    """Read an estimator's kind from river's base classes, or refuse it with the reason.

    >>> from river import linear_model, preprocessing
    >>> kind_of(preprocessing.StandardScaler() | linear_model.LogisticRegression())
    <Kind.CLASSIFIER: 'classifier'>
    >>> kind_of(preprocessing.StandardScaler())
    Traceback (most recent call last):
    ...
    state.exceptions.ModelSpecError: StandardScaler is a river transformer, not a classifier, regressor, anomaly detector, clusterer or forecaster
    """
    name = type(model).__name__
    if not isinstance(model, base.Estimator):
        raise ModelSpecError(f"{name} is not a river estimator")
    if river_inspect.isactivelearner(model) or river_inspect.isanomalyfilter(model):
        raise ModelSpecError(f"{name}: active learners and anomaly filters are not supported")
    if river_inspect.ismoclassifier(model) or river_inspect.ismoregressor(model):
        raise ModelSpecError(f"{name}: multi-output models are not supported")
    if river_inspect.isanomalydetector(model):
        return Kind.ANOMALY_DETECTOR
    if isinstance(river_inspect.extract_relevant(model), Forecaster):
        return Kind.FORECASTER
    if river_inspect.isclassifier(model):
        return Kind.CLASSIFIER
    if river_inspect.isregressor(model):
        return Kind.REGRESSOR
    if river_inspect.isclusterer(model):
        return Kind.CLUSTERER
    what = "transformer" if river_inspect.istransformer(model) else "estimator of an unsupported kind"
    raise ModelSpecError(
        f"{name} is a river {what}, not a classifier, regressor, anomaly detector, clusterer or forecaster"
    )


def make_metric(kind: Kind, name: str | None, model) -> metrics.base.Metric | None:
    """A fresh metric: ``name`` (a class of ``river.metrics``) or the kind's default.

    >>> from river import linear_model
    >>> make_metric(Kind.REGRESSOR, None, linear_model.LinearRegression())
    MAE: 0.
    """
    name = name or _DEFAULT_METRIC[kind]
    if name is None:
        return None
    metric_class = getattr(metrics, name, None)
    if not isinstance(metric_class, type) or not issubclass(metric_class, metrics.base.Metric):
        raise SettingsError(f"--metric {name!r} is not a metric class of river.metrics")
    try:
        metric = metric_class()
    except TypeError as exc:
        raise SettingsError(f"--metric {name}: cannot be built without arguments ({exc})") from exc
    if kind in (Kind.CLASSIFIER, Kind.REGRESSOR) and not metric.works_with(model):
        raise SettingsError(f"--metric {name} does not work with a {kind.value} ({type(model).__name__})")
    return metric


@dataclasses.dataclass(frozen=True)
class Predictor:
    """The river verbs for one kind, chosen once.

    ``predict`` returns ``(prediction, for_metric, extras)``: what is served,
    what the metric is updated with (as in river's progressive validation),
    and kind-specific output fields.
    """

    kind: Kind
    metric_uses_proba: bool
    label_is_likeliest: bool = False  # the classifier's predict_one is river's default: argmax of predict_proba_one

    def predict(self, model, x: dict):
        kind = self.kind
        if kind is Kind.CLASSIFIER:
            proba = model.predict_proba_one(x)
            if self.label_is_likeliest:  # what river's Classifier.predict_one computes, without a second pass
                prediction = max(proba, key=proba.get) if proba else None
            else:
                prediction = model.predict_one(x)
            return prediction, proba if self.metric_uses_proba else prediction, {"proba": proba}
        if kind is Kind.ANOMALY_DETECTOR:
            score = model.score_one(x)
            return score, score, {"score": score}
        if kind is Kind.FORECASTER:
            forecast = model.forecast(horizon=1, xs=[x] if x else None)[0]
            return forecast, forecast, {}
        prediction = model.predict_one(x)
        return prediction, prediction, {}

    def learn(self, model, x: dict, y) -> None:
        kind = self.kind
        if kind is Kind.FORECASTER:
            model.learn_one(y, x=x or None)
        elif kind.supervised:
            model.learn_one(x, y)
        else:
            model.learn_one(x)

    @classmethod
    def for_model(cls, kind: Kind, metric, model) -> "Predictor":
        uses_proba = kind is Kind.CLASSIFIER and metric is not None and not metric.requires_labels
        return cls(kind=kind, metric_uses_proba=uses_proba, label_is_likeliest=_label_is_likeliest(model))


def _label_is_likeliest(model) -> bool:
    """Whether ``model.predict_one(x)`` is by definition the argmax of ``model.predict_proba_one(x)``.

    True when the estimator that predicts (a pipeline's last step) keeps
    river's default ``Classifier.predict_one``; a pipeline's predict verbs
    transform ``x`` the same way before handing it to that step.

    >>> from river import linear_model, preprocessing, tree
    >>> _label_is_likeliest(preprocessing.StandardScaler() | linear_model.LogisticRegression())
    True
    >>> class Custom(tree.HoeffdingTreeClassifier):
    ...     def predict_one(self, x, **kwargs):
    ...         return "always"
    >>> _label_is_likeliest(Custom())
    False
    """
    while isinstance(model, compose.Pipeline):
        model = list(model.steps.values())[-1]
    return isinstance(model, base.Classifier) and type(model).predict_one is base.Classifier.predict_one
