"""The learning step for one key: what one event does to a key's model, with no Flink in sight.

Flink's adapter (``operators.learner_function``) only moves events and state in
and out (the state through ``state.key_store``); every rule of SPEC §1 lives
here so it can be tested, and compared with plain river, without a JVM.

Contract with the caller: ``process`` mutates ``state`` and ``ids`` in place
when the event is applied. When the model raises, the outcome carries a
``model_error`` dead letter and ``ids`` is untouched, but ``state.model`` may
be half-updated: the caller must discard it and keep the last stored bytes
(``state.key_store.KeyStore.roll_back``).

Every outcome that changed the state or the key's event ids carries a
``replay`` entry, small and picklable: ``replay(state, entry)`` makes the same
change again, from the state as it was before, to the last bit (river's
learning is deterministic given the same state and the same events in the
same order), and returns the id statuses the event wrote. The key store
(``state.key_store``) stores these entries instead of re-serializing the
whole state, or writing the ids, after each event.
"""

import dataclasses
import typing

from operators.bandits import BanditVerbs, policy_for_key
from operators.dead_letters import DeadLetter, Reason
from operators.events import Event, decode_event
from operators.lifecycle import BLEND, GLOBAL, Lifecycle, LifecyclePolicy, blend_probas
from operators.model_kinds import Kind, Predictor
from operators.records import Prediction
from state.exceptions import StateError

__all__ = ["KeyState", "Outcome", "LearningStep", "PENDING", "DONE", "EXPIRED"]

# Status of an event id in a key's id map. A pending entry is
# (PENDING, x, for_metric, kept_at_ms); the others are a 1-tuple.
PENDING = "pending"
DONE = "done"
EXPIRED = "expired"


def expire_pending(ids, now_ms: int, label_ttl_ms: int | None) -> int:
    """Mark a key's predictions that waited longer than ``label_ttl_ms`` for their label as expired; how many.

    Their features go: a label arriving later is refused all the same.
    ``ids`` is id -> status tuple (``(PENDING, x, ts, received_ms)``, ...).
    """
    if label_ttl_ms is None:
        return 0
    expired = [event_id for event_id, kept in ids.items() if kept[0] == PENDING and now_ms - kept[3] > label_ttl_ms]
    for event_id in expired:
        ids[event_id] = (EXPIRED,)
    return len(expired)


@dataclasses.dataclass
class KeyState:
    """Everything one key owns, stored as one envelope in Flink's keyed state."""

    model: typing.Any
    metric: typing.Any = None
    model_version: int = 0  # learn steps made so far
    metric_n: int = 0  # metric updates made so far
    lifecycle: Lifecycle | None = None  # challengers and drift detection, when the job has them
    keyed: bool = False  # a bandit policy: seeded for its key (operators.bandits.policy_for_key)

    @property
    def changed_since_new(self) -> bool:
        """Whether any event has changed this state (a key's ids may change first: predictions waiting for labels).

        Every change learns or scores, or pulls a bandit's arm (which seeds the key's policy first): a drift
        reset restarts ``model_version`` only on a scored event.
        """
        return self.model_version > 0 or self.metric_n > 0 or self.keyed


# Not frozen: a frozen dataclass's __init__ costs four times as much, once or more per event.
@dataclasses.dataclass(slots=True)
class Outcome:
    """What one event did.

    ``metric_update`` is ``(y, for_metric)`` for the all-keys metric of served
    predictions; ``model_updates`` the same per model name (with challengers);
    ``events`` the key's promotions and drifts, as output records (``operators.records``).
    """

    prediction: Prediction | None = None
    metric_update: tuple | None = None
    model_updates: tuple = ()
    events: tuple = ()
    dead_letter: DeadLetter | None = None
    learned: bool = False
    duplicate: bool = False
    replay: tuple | None = None  # set when the state or the ids changed: ``LearningStep.replay`` makes the change again
    state_changed: bool = False  # the model, metric or counters changed (not only the ids)

    @property
    def model_ran(self) -> bool:
        """Whether model code ran on the key's state (a prediction, or a failure part-way through)."""
        failed = self.dead_letter is not None and self.dead_letter.reason == Reason.MODEL_ERROR
        return self.prediction is not None or failed


_DUPLICATE = Outcome(duplicate=True)


class LearningStep:
    """Applies events to one key's state, in arrival order (SPEC §1).

    Parameters
    ----------
    kind
        What the model is.
    new_model
        Returns a fresh model for a new key (``template.clone`` or a warm copy).
    new_metric
        Returns a fresh metric, or None for no metric.
    label_ttl_ms
        How long a prediction waits for its label; None is forever.
    policy
        Challengers and drift detection (``operators.lifecycle``), or None for one model per key.
    arms
        A bandit's arms for decisions that name none (``--arms``); None: every decision names its arms.

    Examples
    --------
    >>> from river import linear_model, metrics
    >>> from operators.events import decode_event
    >>> step = LearningStep(Kind.REGRESSOR, linear_model.LinearRegression, metrics.MAE)
    >>> state, ids = step.new_state(), {}
    >>> outcome = step.process(state, ids, decode_event('{"key": "a", "id": "e1", "x": {"f": 1.0}}'), now_ms=0)
    >>> outcome.prediction.to_json()
    '{"key": "a", "id": "e1", "ts": null, "prediction": 0.0, "model_version": 0}'
    >>> outcome = step.process(state, ids, decode_event('{"key": "a", "id": "e1", "y": 2.0}'), now_ms=10)
    >>> outcome.learned, state.model_version, state.metric.get()
    (True, 1, 2.0)
    """

    def __init__(self, kind: Kind, new_model, new_metric, label_ttl_ms: int | None = None,
                 policy: LifecyclePolicy | None = None, arms: tuple | None = None):
        self.kind = kind
        self.new_model = new_model
        self.new_metric = new_metric
        self.label_ttl_ms = label_ttl_ms
        self.policy = policy
        template = new_model()
        self.predictor = Predictor.for_model(kind, new_metric(), template)
        self.bandit = BanditVerbs.for_policy(template) if kind is Kind.BANDIT else None
        self.bandit_template = template
        self.arms = None if arms is None else list(arms)
        self.has_global = policy is not None and policy.has_global
        self.admits = self.has_global and policy.admit_after is not None
        # The global model's version the learner holds (use_global); version 0 is its template.
        self.global_version, self.global_model = 0, policy.global_template if self.has_global else None

    def use_global(self, version: int, model) -> None:
        """Answer for the global model with ``model``, its version ``version``, from now on."""
        self.global_version, self.global_model = version, model

    def new_state(self) -> KeyState:
        state = KeyState(model=self.new_model(), metric=self.new_metric())
        if self.policy is not None:
            state.lifecycle = self.policy.new_lifecycle(state.model)
            if state.lifecycle.serving in (GLOBAL, BLEND):  # the key's own model learns in shadow
                state.model = None
        return state

    def _predictor(self, state: KeyState) -> Predictor:
        life = state.lifecycle
        if life is None and self.policy is None:
            return self.predictor
        names = None if life is None else tuple(life.candidates) or (life.serving,)
        wanted = None if self.policy is None else self.policy.names
        if names != wanted:
            raise StateError(
                f"a key's state has the models {names or 'of a job without challengers or drift detection'}, "
                f"but this job has {wanted or 'neither challengers nor drift detection'}: "
                "run it with the --model, --challenger and --drift-detector options the state was written with"
            )
        if not life.candidates:
            return self.predictor
        return self.policy.predictors[self.policy.names[0] if life.serving == BLEND else life.serving]

    def process(self, state: KeyState, ids, event: Event, now_ms: int, global_answer: tuple | None = None,
                admitted: tuple | None = None) -> Outcome:
        """Apply ``event`` to ``state``; ``ids`` maps event ids to their status (see module doc).

        With a global model, ``global_answer`` is what it answered for the
        event when it was first processed (a replay); None asks the version
        this step holds (``use_global``). ``admitted``: the version and envelope
        of the copy of the global model the event admitted the key with (a replay).
        """
        kept = ids.get(event.id) if event.id is not None else None
        if event.is_label_only:
            return self._label(state, ids, event, kept, now_ms, admitted)
        if kept is not None:
            return _DUPLICATE
        if self.bandit is not None:
            return self._decide(state, ids, event, now_ms)
        life = state.lifecycle
        predictor = self._predictor(state)
        try:
            if self.has_global and global_answer is None:
                global_answer = self._global_answer(event.x)
            serving = None if life is None else life.serving  # global or blend: the key's state.model is None
            blended = None
            if serving == GLOBAL:
                _, prediction, for_metric, extras = global_answer
            elif serving == BLEND:
                prediction, for_metric, extras, blended = self._blend(life, event.x, global_answer, predictor)
            else:
                prediction, for_metric, extras = predictor.predict(state.model, event.x)
            if self.has_global:  # which model answered, and the global model's version, served or judged
                extras = {**extras, "model": serving, "global_version": global_answer[0]}
            served = Prediction(event.key, event.id, event.ts, prediction, state.model_version, extras)
            if life is not None:  # what the labels will judge: every model's guess, and the served one
                if blended is None:
                    global_for_metric = None if global_answer is None else global_answer[2]
                    judged = self.policy.shadow_predict(life, event.x, global_for_metric)
                    judged[serving] = for_metric
                    for_metric = (for_metric, prediction, judged)
                else:  # and what weighs the blended models: their probabilities
                    for_metric = (for_metric, prediction, *blended)
            learns = event.y is not None or not self.kind.supervised
            if learns:
                if self.admits:
                    admitted = self.policy.admit(state, event.key, self.global_version, self.global_model, admitted)
                if state.model is not None:
                    predictor.learn(state.model, event.x, event.y)
                if life is not None:
                    self.policy.shadow_learn(life, event.x, event.y)
                state.model_version += 1
            judgement = None if event.y is None else self._judge(state, event, for_metric)
        except Exception as exc:  # any model failure becomes a dead letter; the caller rolls back
            return self._model_error(event, exc)
        if event.id is not None:
            ids[event.id] = (DONE,) if event.y is not None else (
                PENDING, event.x if self.kind.supervised else None, for_metric, now_ms)
        metric_update, model_updates, events = judgement or (None, (), ())
        changed = learns or metric_update is not None or bool(model_updates)
        replay = (event.raw, None, now_ms) if changed or event.id is not None else None
        if replay is not None and global_answer is not None:  # a replay must not ask a version that has moved on
            replay += (global_answer, admitted) if admitted is not None else (global_answer,)
        return Outcome(prediction=served, metric_update=metric_update, model_updates=model_updates, events=events,
                       learned=learns, replay=replay, state_changed=changed)

    def _label(self, state: KeyState, ids, event: Event, kept, now_ms: int, admitted: tuple | None = None) -> Outcome:
        if kept is None:
            detail = f"no prediction with id {event.id!r} is waiting for a label"
            return Outcome(dead_letter=DeadLetter(event.raw, Reason.UNKNOWN_ID, detail, event.key))
        status = kept[0]
        if status == DONE:
            return _DUPLICATE
        if status == EXPIRED or self._expired(kept, now_ms):
            detail = f"the prediction with id {event.id!r} waited longer than the label TTL"
            dead_letter = DeadLetter(event.raw, Reason.EXPIRED_ID, detail, event.key)
            if status == EXPIRED:
                return Outcome(dead_letter=dead_letter)
            ids[event.id] = (EXPIRED,)
            return Outcome(dead_letter=dead_letter, replay=(event.raw, kept, now_ms))
        _, x, for_metric, _ = kept
        learns = self.kind.supervised
        life = state.lifecycle
        predictor = self._predictor(state)
        if self.bandit is not None:  # a reward for the arm the key's policy pulled
            try:
                metric_update, model_updates, events = self._reward(
                    state, event, for_metric, for_metric if life is None else for_metric[0], x)
            except Exception as exc:  # any policy failure becomes a dead letter; the caller rolls back
                return self._model_error(event, exc)
            ids[event.id] = (DONE,)
            return Outcome(metric_update=metric_update, model_updates=model_updates, events=events, learned=True,
                           replay=(event.raw, kept, now_ms), state_changed=True)
        try:
            if learns:
                if self.admits:
                    admitted = self.policy.admit(state, event.key, self.global_version, self.global_model, admitted)
                if state.model is not None:
                    predictor.learn(state.model, x, event.y)
                if life is not None:
                    self.policy.shadow_learn(life, x, event.y)
                state.model_version += 1
            metric_update, model_updates, events = self._judge(state, event, for_metric)
        except Exception as exc:  # any model failure becomes a dead letter; the caller rolls back
            return self._model_error(event, exc)
        ids[event.id] = (DONE,)
        changed = learns or metric_update is not None or bool(model_updates)
        replay = (event.raw, kept, now_ms) if admitted is None else (event.raw, kept, now_ms, None, admitted)
        return Outcome(metric_update=metric_update, model_updates=model_updates, events=events,
                       learned=learns, replay=replay, state_changed=changed)

    def _decide(self, state: KeyState, ids, event: Event, now_ms: int) -> Outcome:
        """A bandit decision: pull an arm, and keep it under the event's id for its reward (SPEC §7).

        A logged interaction (``arm`` and ``y`` given) pulls too, and learns
        its reward only when the pull is the logged arm: river's replay
        (``bandit.evaluate_offline``).
        """
        arms = event.arms or self.arms
        if arms is None:
            detail = "a decision needs its 'arms' (or the job's --arms)"
            return Outcome(dead_letter=DeadLetter(event.raw, Reason.MISSING_ARMS, detail, event.key))
        if event.arm is not None and event.arm not in arms:
            detail = f"the logged arm {event.arm!r} is not one of the arms {arms!r}"
            return Outcome(dead_letter=DeadLetter(event.raw, Reason.INVALID_ARM, detail, event.key))
        bandit, x, life = self.bandit, event.x if self.bandit.contextual else None, state.lifecycle
        metric_update, model_updates, events = None, (), ()
        try:
            if not state.keyed:  # the key's own exploration, whatever policies the fresh state held
                self._key_policies(state, event.key)
            arm = bandit.pull(state.model, arms, x)
            served = Prediction(event.key, event.id, event.ts, arm, state.model_version, {})
            for_metric = arm
            if life is not None:  # every challenger pulls in shadow: its reward is known where its arm is rewarded
                pulled = {name: bandit.pull(candidate.model, arms, x)
                          for name, candidate in life.candidates.items() if name != life.serving}
                pulled[life.serving] = arm
                for_metric = (arm, arm, pulled)
            learns = event.arm is not None and arm == event.arm
            if event.arm is not None:  # a logged interaction: its reward is the logged arm's
                metric_update, model_updates, events = self._reward(state, event, for_metric, event.arm, x)
        except Exception as exc:  # any policy failure becomes a dead letter; the caller rolls back
            return self._model_error(event, exc)
        if event.id is not None:
            ids[event.id] = (DONE,) if event.arm is not None else (PENDING, x, for_metric, now_ms)
        # A pull changes the policy even when nothing is learned: its random draws go on.
        return Outcome(prediction=served, metric_update=metric_update, model_updates=model_updates, events=events,
                       learned=learns, replay=(event.raw, None, now_ms), state_changed=True)

    def _key_policies(self, state: KeyState, key: str) -> None:
        """Give the key its own policies, each seeded for it (SPEC §7), the serving one shared with its candidate."""
        life = state.lifecycle
        state.model = policy_for_key(self.bandit_template, key)
        if life is not None:
            for name, candidate in life.candidates.items():
                candidate.model = state.model if name == life.serving else self.policy.fresh_model(name, key)
        state.keyed = True

    def _reward(self, state: KeyState, event: Event, for_metric, rewarded, x) -> tuple:
        """Learn a reward of the arm ``rewarded``: every policy that pulled it learns it and is scored on it.

        ``for_metric`` is what the decision kept: the served arm, or with a
        lifecycle ``(served arm, served arm, name -> arm each model pulled)``.
        Returns ``(metric update, model updates, events)``, as ``_judge``.
        """
        bandit, life = self.bandit, state.lifecycle
        served = for_metric if life is None else for_metric[0]
        if life is None or not life.candidates:
            if served != rewarded:
                return None, (), ()
            bandit.update(state.model, served, x, event.y)
        else:
            for name, arm in for_metric[2].items():
                if arm == rewarded:
                    bandit.update(life.candidates[name].model, arm, x, event.y)
        if served == rewarded:
            state.model_version += 1
        metric_update = self._update_metric(state, event.y, served) if served == rewarded else None
        if life is None:
            return metric_update, (), ()
        matched = {name: arm for name, arm in for_metric[2].items() if arm == rewarded}
        model_updates, events = self.policy.score(state, event.key, event.y, served if served == rewarded else None,
                                                  matched, event.ts)
        return metric_update, tuple(model_updates), tuple(events)

    def _judge(self, state: KeyState, event: Event, for_metric) -> tuple:
        """Score what was predicted for ``event``'s id against its label: ``(metric update, model updates, events)``.

        ``for_metric`` is what ``process`` kept: the served metric input, or,
        with a lifecycle, ``(served input, served prediction, name -> input)``.
        """
        if state.lifecycle is None:
            return self._update_metric(state, event.y, for_metric), (), ()
        served_input, served, judged, *blended = for_metric
        metric_update = self._update_metric(state, event.y, served_input)
        if metric_update is None:  # a model with nothing to say has made no error either
            served = None
        model_updates, events = self.policy.score(state, event.key, event.y, served, judged, event.ts,
                                                  blended[0] if blended else None)
        return metric_update, tuple(model_updates), tuple(events)

    def replay(self, state: KeyState, entry: tuple) -> dict:
        """Apply again to ``state`` the change an earlier ``process`` call reported as ``Outcome.replay``.

        ``state`` must be as it was just before that call (the state a
        previous replay, or the stored envelope, left); outputs are not
        produced again. Returns the id statuses the event wrote, for the
        caller to apply to the key's ids. Raises
        ``StateError`` if the entry does not make the same change again (a
        model that fails where it once learned, an entry that does not belong
        to this state).
        """
        # With a global model, also what it answered, and the copy of it the event admitted the key with.
        raw, kept, now_ms, *more = entry
        answered, admitted = (*more, None, None)[:2]
        event = decode_event(raw, decisions=self.bandit is not None)
        ids = {} if kept is None else {event.id: kept}
        outcome = None
        if isinstance(event, Event):
            outcome = self.process(state, ids, event, now_ms, global_answer=answered, admitted=admitted)
        if outcome is None or outcome.replay is None or outcome.replay[:3] != entry[:3]:
            key = getattr(event, "key", None)
            raise StateError(f"replaying an event of key {key!r} did not change its state as it first did")
        return ids

    def expire(self, ids, now_ms: int) -> int:
        """Mark pending predictions older than the label TTL as expired; return how many."""
        return expire_pending(ids, now_ms, self.label_ttl_ms)

    def _expired(self, kept, now_ms: int) -> bool:
        return self.label_ttl_ms is not None and kept[0] == PENDING and now_ms - kept[3] > self.label_ttl_ms

    def _blend(self, life: Lifecycle, x: dict, global_answer: tuple, own_predictor: Predictor) -> tuple:
        """``(prediction, metric input, extras, (name -> metric input, name -> probabilities))`` of a key's blend.

        The blended models are the global model (its ``global_answer``) and
        the key's own model, once it has one (``--admit-after``).
        """
        policy, own_name = self.policy, self.policy.names[0]
        own = life.candidates[own_name].model
        _, _, global_for_metric, global_extras = global_answer
        judged, probas = {GLOBAL: global_for_metric}, {GLOBAL: global_extras["proba"]}
        if own is not None:
            _, judged[own_name], own_extras = own_predictor.predict(own, x)
            probas[own_name] = own_extras["proba"]
        weight = 1.0 if own is None else policy.global_weight(life)
        proba, weight = blend_probas(probas[GLOBAL], probas.get(own_name), weight)
        prediction = max(proba, key=proba.get) if proba else None
        extras = {"proba": proba, "global_weight": weight}
        return prediction, proba if own_predictor.metric_uses_proba else prediction, extras, (judged, probas)

    def _global_answer(self, x: dict) -> tuple:
        """``(version, prediction, metric input, extras)`` of the global model's version this step holds."""
        prediction, for_metric, extras = self.policy.predictors[GLOBAL].predict(self.global_model, x)
        return self.global_version, prediction, for_metric, extras

    @staticmethod
    def _update_metric(state: KeyState, y, for_metric) -> tuple | None:
        # As river's progressive validation: a model with nothing to say is not scored.
        if state.metric is None or for_metric is None or for_metric == {}:
            return None
        state.metric.update(y, for_metric)
        state.metric_n += 1
        return (y, for_metric)

    @staticmethod
    def _model_error(event: Event, exc: Exception) -> Outcome:
        detail = f"{type(exc).__name__}: {exc}"
        return Outcome(dead_letter=DeadLetter(event.raw, Reason.MODEL_ERROR, detail, event.key))

