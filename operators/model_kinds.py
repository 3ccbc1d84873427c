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

from operators.bandits import MeanReward, is_policy
from state.exceptions import ModelSpecError, SettingsError

__all__ = ["Kind", "kind_of", "make_metric", "Predictor"]


class Kind(enum.Enum):
    """The kinds of river estimator riverflink serves; each decides the verbs, the default metric and the outputs.

    Examples
    --------
    >>> Kind("regressor"), Kind.REGRESSOR.supervised, Kind.ANOMALY_DETECTOR.supervised
    (<Kind.REGRESSOR: 'regressor'>, True, False)
    """

    CLASSIFIER = "classifier"
    REGRESSOR = "regressor"
    ANOMALY_DETECTOR = "anomaly_detector"
    CLUSTERER = "clusterer"
    FORECASTER = "forecaster"
    BANDIT = "bandit"  # a river.bandit policy: decisions, and rewards for them (operators.bandits)

    @property
    def supervised(self) -> bool:
        """Whether the model learns from ``y`` (and so waits for delayed labels, or a bandit's rewards)."""
        return self in (Kind.CLASSIFIER, Kind.REGRESSOR, Kind.FORECASTER, Kind.BANDIT)


_DEFAULT_METRIC = {
    Kind.CLASSIFIER: "Accuracy",
    Kind.REGRESSOR: "MAE",
    Kind.ANOMALY_DETECTOR: "ROCAUC",
    Kind.CLUSTERER: None,
    Kind.FORECASTER: "MAE",
    Kind.BANDIT: "MeanReward",
}


def kind_of(model) -> Kind:
    """Read an estimator's kind from river's base classes, or refuse it with the reason.

    Parameters
    ----------
    model
        A river estimator, a pipeline included (its last step decides).

    Returns
    -------
    Kind
        What the model is.

    Raises
    ------
    ModelSpecError
        If ``model`` is not a river estimator, or one of a kind riverflink does
        not serve (a transformer, an active learner, a multi-output model, ...).

    Examples
    --------
    >>> from river import linear_model, preprocessing
    >>> kind_of(preprocessing.StandardScaler() | linear_model.LogisticRegression())
    <Kind.CLASSIFIER: 'classifier'>
    >>> kind_of(preprocessing.StandardScaler())
    Traceback (most recent call last):
    ...
    state.exceptions.ModelSpecError: StandardScaler is a river transformer, not a classifier, regressor, anomaly detector, clusterer, forecaster or bandit policy
    """
    name = type(model).__name__
    if is_policy(model):
        return Kind.BANDIT
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
        f"{name} is a river {what}, not a classifier, regressor, anomaly detector, clusterer, forecaster "
        "or bandit policy"
    )


def make_metric(kind: Kind, name: str | None, model) -> metrics.base.Metric | None:
    """A fresh metric: ``name`` (a class of ``river.metrics``) or the kind's default.

    Parameters
    ----------
    kind
        What the model is (``kind_of(model)``).
    name
        The name of a metric class of ``river.metrics`` (``--metric``), or None for the kind's default.
    model
        The model the metric will judge: classifiers' and regressors' metrics must work with it.

    Returns
    -------
    river.metrics.base.Metric or None
        A metric built without arguments; None for a clusterer without ``name``, which has no default.

    Raises
    ------
    SettingsError
        If ``name`` is not a metric class of ``river.metrics``, needs arguments, or does not fit the model.

    Examples
    --------
    >>> from river import linear_model
    >>> make_metric(Kind.REGRESSOR, None, linear_model.LinearRegression())
    MAE: 0.
    >>> make_metric(Kind.CLASSIFIER, "LogLoss", linear_model.LogisticRegression())
    LogLoss: 0.
    >>> make_metric(Kind.REGRESSOR, "Nope", linear_model.LinearRegression())
    Traceback (most recent call last):
    ...
    state.exceptions.SettingsError: --metric 'Nope' is not a metric class of river.metrics
    """
    name = name or _DEFAULT_METRIC[kind]
    if name is None:
        return None
    if kind is Kind.BANDIT or name == MeanReward.__name__:
        if (kind is Kind.BANDIT) != (name == MeanReward.__name__):
            raise SettingsError(f"--metric {name}: a bandit policy is judged by MeanReward, and only a policy is")
        return MeanReward()
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

    Built with :meth:`for_model`, which reads from the metric and the model
    what the parameters below should be.

    Parameters
    ----------
    kind
        What the model is.
    metric_uses_proba
        A classifier's metric is updated with ``predict_proba_one`` (it does not
        require labels), as in river's progressive validation.
    label_is_likeliest
        A classifier's ``predict_one`` is river's default, the argmax of
        ``predict_proba_one``, so the label is read off the probabilities
        instead of asking the model twice.

    Examples
    --------
    >>> from river import linear_model, metrics
    >>> model = linear_model.LinearRegression()
    >>> predictor = Predictor.for_model(Kind.REGRESSOR, metrics.MAE(), model)
    >>> predictor.learn(model, {"a": 1.0}, 2.0)
    >>> predictor.predict(model, {"a": 1.0})
    (0.08, 0.08, {})
    >>> model = linear_model.LogisticRegression()
    >>> predictor = Predictor.for_model(Kind.CLASSIFIER, metrics.LogLoss(), model)
    >>> predictor.metric_uses_proba, predictor.label_is_likeliest
    (True, True)
    >>> predictor.learn(model, {"a": 1.0}, True)
    >>> label, for_metric, extras = predictor.predict(model, {"a": 1.0})
    >>> label, for_metric is extras["proba"], round(extras["proba"][True], 3)
    (True, True, 0.502)
    """

    kind: Kind
    metric_uses_proba: bool
    label_is_likeliest: bool = False  # the classifier's predict_one is river's default: argmax of predict_proba_one

    def predict(self, model, x: dict):
        """Predict for ``x`` with the kind's verb.

        Parameters
        ----------
        model
            The key's model.
        x
            The event's features.

        Returns
        -------
        tuple
            ``(prediction, for_metric, extras)``: what is served, what the metric
            is updated with, and the kind's extra output fields (a classifier's
            ``proba``, an anomaly detector's ``score``).
        """
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
        """Learn from one event with the kind's ``learn_one`` signature (a forecaster learns ``y`` first).

        Parameters
        ----------
        model
            The key's model, changed in place.
        x
            The event's features.
        y
            The event's target; ignored by unsupervised kinds.
        """
        kind = self.kind
        if kind is Kind.FORECASTER:
            model.learn_one(y, x=x or None)
        elif kind.supervised:
            model.learn_one(x, y)
        else:
            model.learn_one(x)

    @classmethod
    def for_model(cls, kind: Kind, metric, model) -> "Predictor":
        """The verbs for ``model``, judged by ``metric``.

        Parameters
        ----------
        kind
            What the model is (``kind_of(model)``).
        metric
            The metric every prediction updates (``make_metric``), or None.
        model
            The template every key's model starts from.

        Returns
        -------
        Predictor
        """
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
