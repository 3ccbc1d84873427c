"""A key's model lifecycle: challengers trained in shadow, promotion, drift detection and reset.

Entities differ, so the question "which model, and is it still right?" is
asked per key: every key trains each challenger on its own events beside the
model it serves, judges them all on its own labelled events, switches to a
challenger that has become clearly better there, and, with a drift detector,
notices when its own error stream changes and can start over. All of it is
plain Python on the key's state, deterministic given the same events, so the
learning step can replay it and checkpoints capture it like the model itself.
"""

import dataclasses
import math
import typing

from river import base, drift, utils

from operators.bandits import policy_for_key
from operators.model_kinds import Kind, Predictor
from operators.records import drift_record, promotion_record
from state.envelope import dump_state, load_state
from state.exceptions import SettingsError

__all__ = ["BLEND", "GLOBAL", "Candidate", "Lifecycle", "LifecycleOptions", "LifecyclePolicy", "blend_probas",
           "check_lifecycle", "make_detector"]

GLOBAL = "global"  # the global model's name among each key's candidates and in outputs (operators.global_model)
BLEND = "blend"  # what serves a key under --global-blend: its own model's and the global model's answers mixed


@dataclasses.dataclass
class Candidate:
    """One of a key's models and how it has done on that key's labelled events."""

    model: typing.Any
    metric: typing.Any  # progressive metric over all the key's labelled events
    window: typing.Any  # the same metric over the last ``promotion_window`` of them (``river.utils.Rolling``)
    metric_n: int = 0
    log_loss: float = 0.0  # summed over the key's labels both blended models answered (--global-blend)


@dataclasses.dataclass
class Lifecycle:
    """What a key owns beyond its serving model (``KeyState.lifecycle``).

    ``candidates`` holds every model of the key, the serving one included, by
    name, in the order the models were given; it is empty without challengers.
    """

    serving: str
    candidates: dict = dataclasses.field(default_factory=dict)
    detector: typing.Any = None
    labels: int = 0  # labelled events seen, counted only for admission (``LifecyclePolicy.admit_after``)
    admitted_from: int | None = None  # the global version the key's own model was copied from (warm from global)


@dataclasses.dataclass(frozen=True)
class LifecycleOptions:
    """A job's lifecycle options, as the learner is configured with them (picklable, and so shipped to the workers).

    ``detector`` is the envelope (``state.envelope.dump_state``) of the drift
    detector each key copies, or None; the others are ``LifecyclePolicy``'s.
    """

    promotion_window: int = 100
    promotion_margin: float = 0.0
    detector: bytes | None = None
    on_drift: str = "none"
    admit_after: int | None = None
    warm_from_global: bool = False
    global_blend: bool = False


def blend_probas(global_proba: dict, own_proba: dict | None, global_weight: float) -> tuple[dict, float]:
    """What a key serves under ``--global-blend``: ``(probabilities, the global model's share in them)``.

    ``global_weight`` is the global model's share, the own model's being the
    rest (``LifecyclePolicy.global_weight``). Where one of them has nothing to
    say (no own model yet: None; an untrained one: empty), the other's alone.
    The job and ``riverflink serve`` both blend with this.

    >>> blend_probas({True: 0.75, False: 0.25}, {True: 0.25, False: 0.75}, 0.75)
    ({True: 0.625, False: 0.375}, 0.75)
    >>> blend_probas({True: 0.75, False: 0.25}, None, 0.75)
    ({True: 0.75, False: 0.25}, 1.0)
    """
    if not own_proba or not global_proba:  # one has nothing to say (no own model yet, or an untrained one)
        return dict(own_proba or global_proba), 0.0 if own_proba else 1.0
    blended = {label: global_weight * global_proba.get(label, 0.0) + (1 - global_weight) * own_proba.get(label, 0.0)
               for label in {**global_proba, **own_proba}}
    return blended, global_weight


def _log_loss(proba: dict, y) -> float:
    return -math.log(min(max(proba.get(y, 0.0), 1e-15), 1.0))


def check_lifecycle(kind: Kind, metric, challenged: bool, drift_detection: bool) -> None:
    """Refuse a lifecycle the models cannot have, with a ``SettingsError`` that says why.

    Parameters
    ----------
    kind
        What every model is.
    metric
        The job's metric (a river metric), or None if the kind has none.
    challenged
        Whether there are challengers (``--challenger``): they are judged on the metric, over a window.
    drift_detection
        Whether there is a drift detector (``--drift-detector``): it watches errors against labels.

    Examples
    --------
    >>> from river import metrics
    >>> check_lifecycle(Kind.CLASSIFIER, metrics.Accuracy(), challenged=True, drift_detection=True)
    >>> check_lifecycle(Kind.CLUSTERER, None, challenged=True, drift_detection=False)
    Traceback (most recent call last):
    ...
    state.exceptions.SettingsError: --challenger needs a metric to judge models by, and a clusterer has none
    """
    if challenged and metric is None:
        raise SettingsError(f"--challenger needs a metric to judge models by, and a {kind.value} has none")
    if challenged and not callable(getattr(metric, "revert", None)):
        raise SettingsError(f"--challenger: the metric {type(metric).__name__} cannot be computed over a window")
    if drift_detection and not kind.supervised:
        raise SettingsError(f"--drift-detector watches a model's errors against labels; a {kind.value} has none")


class LifecyclePolicy:
    """The lifecycle rules of a job, chosen once; the state they act on is each key's ``Lifecycle``.

    Parameters
    ----------
    kind
        What every model is (challengers are refused unless they are the same kind).
    new_models
        Name -> a function returning that model for a new key, the serving model's first.
    new_metric
        Returns a fresh metric (candidates are judged on it); None if the job has no metric.
    promotion_window
        Labelled events a challenger is judged on.
    promotion_margin
        How much better than the serving model a challenger must be over the window.
    detector
        A river drift detector to copy for each key, or None.
    on_drift
        ``"none"`` (report) or ``"reset"`` (each of the key's models starts over).
    global_template
        The global model as it starts (``operators.global_model``), or None for none. It is the last
        candidate, named ``GLOBAL``, and serves a new key first; it has no model in the key
        (``Candidate.model`` None, and so ``KeyState.model`` while it serves): its answers come
        with each event, from the version the learner holds.
    admit_after
        With a global model: a key's own models exist only from its ``admit_after``-th labelled
        event on, which is the first they learn; until then the key holds no model of its own
        and the global model answers. None: from its first event.
    warm_from_global
        With a global model: at admission (its first labelled event, unless ``admit_after``), a
        key's first own model is a copy of the global model's version the learner holds then,
        and serves the key (blended, under ``global_blend``).
    global_blend
        With a global model, for classifiers: a key is served by a blend of the global model's
        and its own model's probabilities (``blend_probas``), weighted as the exponentially
        weighted average forecaster does: each by ``exp(-its log loss)`` over the key's labels
        both answered. This replaces promotion: a new key is served as the global model would,
        and its own model takes over as it proves better.
        No challengers nor drift detection with it.

    The options themselves are validated by ``jobs.settings``; what depends on
    the models (their kind, the metric) is refused by ``check_lifecycle``,
    here and, before a job starts, on the client.
    """

    def __init__(self, kind: Kind, new_models: dict, new_metric, promotion_window: int = 100,
                 promotion_margin: float = 0.0, detector=None, on_drift: str = "none", global_template=None,
                 admit_after: int | None = None, warm_from_global: bool = False, global_blend: bool = False):
        metric = new_metric()
        shared = global_template is not None
        cannot_blend = not shared or kind is not Kind.CLASSIFIER or len(new_models) > 1 or detector is not None
        if global_blend and cannot_blend:
            raise SettingsError("--global-blend mixes a classifier's probabilities with a global model's: it needs "
                                "--global-model (or --global), and takes neither --challenger nor --drift-detector")
        check_lifecycle(kind, metric, challenged=len(new_models) > 1 or shared, drift_detection=detector is not None)
        self.kind = kind
        self.new_models = new_models
        self.new_metric = new_metric
        self.names = (*new_models, GLOBAL) if shared else tuple(new_models)
        self.predictors = {name: Predictor.for_model(kind, metric, make()) for name, make in new_models.items()}
        if shared:
            self.predictors[GLOBAL] = Predictor.for_model(kind, metric, global_template)
        self.has_global = shared
        self.global_template = global_template
        self.warm_from_global = shared and warm_from_global
        self.blend = global_blend
        self.admit_after = 1 if self.warm_from_global and admit_after is None else admit_after
        self.window = promotion_window
        self.margin = promotion_margin
        self.bigger_is_better = metric is not None and metric.bigger_is_better
        self.detector = detector
        self.on_drift = on_drift

    @classmethod
    def from_options(cls, kind: Kind, new_models: dict, new_metric, options: LifecycleOptions,
                     global_template=None) -> "LifecyclePolicy":
        """The policy ``options`` describe (its detector restored from its envelope), for these models."""
        detector = None if options.detector is None else load_state(options.detector)
        return cls(kind, new_models, new_metric, promotion_window=options.promotion_window,
                   promotion_margin=options.promotion_margin, detector=detector, on_drift=options.on_drift,
                   global_template=global_template, admit_after=options.admit_after,
                   warm_from_global=options.warm_from_global, global_blend=options.global_blend)

    @property
    def challenged(self) -> bool:
        return len(self.names) > 1

    def new_lifecycle(self, first_model) -> Lifecycle:
        """A new key's lifecycle; ``first_model`` is its ``--model``'s, which serves unless the global model does.

        Its models are None while it waits for admission (``admit_after``).
        """
        life = Lifecycle(serving=BLEND if self.blend else GLOBAL if self.has_global else self.names[0],
                         detector=None if self.detector is None else self.detector.clone())
        if self.challenged:
            models = {self.names[0]: first_model}
            models.update((name, make()) for name, make in list(self.new_models.items())[1:])
            if self.admit_after is not None:
                models = dict.fromkeys(models)
            if self.has_global:
                models[GLOBAL] = None
            life.candidates = {name: self._candidate(model) for name, model in models.items()}
        return life

    def _candidate(self, model) -> Candidate:
        return Candidate(model=model, metric=self.new_metric(), window=utils.Rolling(self.new_metric(), self.window))

    def shadow_predict(self, life: Lifecycle, x: dict, global_for_metric=None) -> dict:
        """name -> what each model other than the serving one would update its metric with.

        ``global_for_metric`` is the global model's, which answered for the event already.
        """
        answers = {
            name: self.predictors[name].predict(candidate.model, x)[1]
            for name, candidate in life.candidates.items() if name != life.serving and candidate.model is not None
        }
        if self.has_global and life.serving != GLOBAL:
            answers[GLOBAL] = global_for_metric
        return answers

    def shadow_learn(self, life: Lifecycle, x: dict, y) -> None:
        """Every model of the key learns but the serving one (the caller's), the global one (learning elsewhere)
        and those not admitted yet."""
        for name, candidate in life.candidates.items():
            if name != life.serving and candidate.model is not None:
                self.predictors[name].learn(candidate.model, x, y)

    def score(self, state, key: str, y, served, for_metric: dict, ts, probas: dict | None = None) -> tuple[list, list]:
        """Judge the key's models on a label; returns ``(model metric updates, lifecycle events)``.

        ``served`` is the prediction the key served, ``for_metric`` name -> what
        each model's metric is updated with (as the models predicted then).
        Switches ``state`` to a challenger, or restarts its models, when the
        rules say so. Under ``global_blend``, ``probas`` is name -> the
        probabilities each blended model answered with, which weigh them.
        """
        life = state.lifecycle
        updates, events = [], []
        for name, candidate in life.candidates.items():
            value = for_metric.get(name)
            if value is None or value == {}:  # as river's progressive validation: nothing to say, not scored
                continue
            candidate.metric.update(y, value)
            candidate.window.update(y, value)
            candidate.metric_n += 1
            updates.append((name, (y, value)))
        if life.detector is not None and served is not None:
            life.detector.update(self._error(y, served))
            if life.detector.drift_detected:
                events.append(self._drift(state, key, ts))
        if probas is not None and len(probas) == 2 and all(probas.values()):  # both answered: the weights move
            for name, proba in probas.items():
                life.candidates[name].log_loss += _log_loss(proba, y)
        if self.challenged and not self.blend:
            promotion = self._promotion(state, key, ts)
            if promotion is not None:
                events.append(promotion)
        return updates, events

    def global_weight(self, life: Lifecycle) -> float:
        """The global model's share of a key's blend: 1 / (1 + e^(how much less log loss the key's own model had))."""
        gain = life.candidates[GLOBAL].log_loss - life.candidates[self.names[0]].log_loss
        return 1.0 / (1.0 + math.exp(min(max(gain, -50.0), 50.0)))

    def _error(self, y, served) -> float:
        if self.kind is Kind.CLASSIFIER:  # a mistake or not: what binary detectors (DDM, ...) take
            return served != y
        if self.kind is Kind.BANDIT:  # a policy has no error: the detector watches its rewards
            return y
        return abs(y - served)

    def admit(self, state, key: str, global_version: int, global_model, copied: tuple | None = None) -> tuple | None:
        """Count a labelled event of the key; at the ``admit_after``-th, give the key its own models.

        They are fresh, but for a warm start from the global model
        (``warm_from_global``): the first is then a copy of ``global_model``,
        of version ``global_version``, or of ``copied`` (``(version,
        envelope)``, when a replay makes the copy again), and serves the key
        from then on (or joins its blend): it knows what the global model knew,
        and learns the key's own labels (the global model stays a candidate). Returns that pair,
        which a replay needs, since that version may be gone by then; else None.
        """
        life = state.lifecycle
        life.labels += 1
        if life.labels != self.admit_after:
            return None
        for name, candidate in life.candidates.items():
            if name != GLOBAL:
                candidate.model = self.fresh_model(name, key)
        if not self.warm_from_global:
            return None
        if copied is None:
            copied = (global_version, dump_state(global_model))
        life.admitted_from, blob = copied
        own = life.candidates[self.names[0]]
        own.model = load_state(blob)
        if not self.blend:
            state.model = own.model
            life.serving = self.names[0]
            if life.detector is not None:  # another model's errors from now on
                life.detector = self.detector.clone()
        return copied

    def fresh_model(self, name: str, key: str):
        """A new model ``name`` for ``key``: a bandit policy gets the key's own seed (``operators.bandits``)."""
        model = self.new_models[name]()
        return policy_for_key(model, key) if self.kind is Kind.BANDIT else model

    def _drift(self, state, key: str, ts) -> dict:
        life = state.lifecycle
        event = drift_record(key, life.serving, state.metric_n, ts, type(life.detector).__name__, self.on_drift)
        if self.on_drift == "reset":
            for name, candidate in life.candidates.items():
                if candidate.model is not None:  # not the global model, which learns elsewhere, nor one not admitted
                    candidate.model = self.fresh_model(name, key)
                candidate.window = utils.Rolling(self.new_metric(), self.window)
            serving = life.candidates.get(life.serving)
            state.model = self.fresh_model(life.serving, key) if serving is None else serving.model
            state.model_version = 0
        return event

    def _promotion(self, state, key: str, ts) -> dict | None:
        life = state.lifecycle
        serving = life.candidates[life.serving]
        if len(serving.window.window) < self.window:
            return None
        best, best_gain = None, 0.0
        for name, candidate in life.candidates.items():
            if name == life.serving or len(candidate.window.window) < self.window:
                continue
            gain = candidate.window.get() - serving.window.get()
            gain = gain if self.bigger_is_better else -gain
            if gain > best_gain and gain >= self.margin:
                best, best_gain = name, gain
        if best is None:
            return None
        event = promotion_record(key, life.serving, best, state.metric_n, ts, type(serving.metric).__name__,
                                 serving.window.get(), life.candidates[best].window.get())
        life.serving = best
        state.model = life.candidates[best].model
        if life.detector is not None:  # another model's errors: a change the detector must not take for drift
            life.detector = self.detector.clone()
        return event


def make_detector(name: str, kind: Kind):
    """A fresh ``river.drift`` (or ``river.drift.binary``, for classifiers' right/wrong stream) detector by class name.

    >>> type(make_detector("ADWIN", Kind.REGRESSOR)).__name__, type(make_detector("DDM", Kind.CLASSIFIER)).__name__
    ('ADWIN', 'DDM')
    """
    detector_class = getattr(drift, name, None) or getattr(drift.binary, name, None)
    if not isinstance(detector_class, type) or not issubclass(detector_class, base.DriftDetector | base.BinaryDriftDetector):
        raise SettingsError(f"--drift-detector {name!r} is not a detector class of river.drift or river.drift.binary")
    if issubclass(detector_class, base.BinaryDriftDetector) and kind is not Kind.CLASSIFIER:
        raise SettingsError(f"--drift-detector {name} watches right/wrong answers; a {kind.value}'s errors are numbers")
    try:
        return detector_class()
    except TypeError as exc:
        raise SettingsError(f"--drift-detector {name}: cannot be built without arguments ({exc})") from exc
