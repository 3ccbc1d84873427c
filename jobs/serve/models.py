"""The served models: every key's latest snapshot as bytes, and a bounded set of them restored.

A server follows millions of keys but is asked about far fewer at a time, and
a restored river model costs tens of times its pickle's size in Python
objects. So each key keeps only its latest snapshot's bytes; a key's model is
restored on its first request into an LRU of ``live`` models, and a newer
snapshot of the key evicts its restored model.

The server never learns: every answer comes from a snapshot the job wrote,
or, for a key with none yet, from the job's template; a key the job serves
with its global model, from the newest version of it the job wrote.
"""

import base64
import collections
import dataclasses
import threading

from operators.bandits import BanditVerbs, policy_for_key
from operators.lifecycle import BLEND, GLOBAL, blend_probas
from operators.model_kinds import Kind, Predictor, kind_of
from state.envelope import load_state

__all__ = ["Snapshot", "ServedModels", "Answer", "NeedsArms"]


class NeedsArms(ValueError):
    """A bandit policy was asked without the arms to choose from."""


@dataclasses.dataclass(slots=True)
class Snapshot:
    """One key's model as a job wrote it (``operators.records.model_snapshot_record``).

    Parameters
    ----------
    model_version
        Learn steps the model had made.
    ts
        When the job wrote it, in epoch seconds.
    blob
        The model's envelope (``state.envelope.dump_state``).
    serving
        The name of the model the key serves, when the job runs challengers or drift detection.
    received
        When this server read it, in epoch seconds (for the snapshot lag).
    global_weight
        Under ``--global-blend``: the global model's share of the key's blend with this model.
    """

    model_version: int
    ts: float
    blob: bytes
    serving: str | None = None
    received: float = 0.0
    global_weight: float | None = None

    def is_newer_than(self, other: "Snapshot") -> bool:
        """Whether this snapshot may replace ``other``: more learn steps, or as many and written later.

        Examples
        --------
        >>> Snapshot(5, 10.0, b"").is_newer_than(Snapshot(4, 20.0, b""))
        True
        >>> Snapshot(4, 30.0, b"").is_newer_than(Snapshot(5, 20.0, b""))  # a replay cannot go back in time
        False
        """
        return (self.model_version, self.ts) > (other.model_version, other.ts)

    @classmethod
    def from_record(cls, record: dict, received: float) -> "Snapshot":
        """The snapshot of a models output record, its ``model`` decoded from base64.

        Raises
        ------
        ValueError
            If the record lacks a field or holds one of the wrong type.
        """
        try:
            version, ts, model = record["model_version"], record.get("ts") or 0.0, record["model"]
        except KeyError as missing:
            raise ValueError(f"a model snapshot without {missing}") from None
        if type(version) is not int or not isinstance(ts, (int, float)) or not isinstance(model, str):
            raise ValueError("a model snapshot needs an integer 'model_version', a number 'ts' and a base64 'model'")
        serving, weight = record.get("serving"), record.get("global_weight")
        if serving == BLEND and (not isinstance(weight, (int, float)) or not 0 <= weight <= 1):
            raise ValueError("a model snapshot of a blend needs its 'global_weight', from 0 to 1")
        return cls(version, float(ts), base64.b64decode(model, validate=True), serving, received, weight)


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """What a key's model said: the prediction record's fields and the kind's extras (``proba``, ``score``)."""

    key: str
    prediction: object
    model_version: int
    model_ts: float | None
    extras: dict

    def record(self) -> dict:
        """The answer as the JSON object ``POST /predict`` returns, class labels as strings (JSON object keys)."""
        record = {"key": self.key, "prediction": self.prediction, "model_version": self.model_version,
                  "model_ts": self.model_ts}
        for name, value in self.extras.items():
            record[name] = {str(k): v for k, v in value.items()} if isinstance(value, dict) else value
        return record


class ServedModels:
    """Every key's latest snapshot, the template for the others, and an LRU of restored models.

    Thread-safe: a follower thread offers snapshots while the HTTP server asks.

    Parameters
    ----------
    live
        How many restored models are kept at most; the least recently asked is dropped first.

    Examples
    --------
    >>> from river import linear_model
    >>> from state.envelope import dump_state
    >>> served = ServedModels(live=2)
    >>> model = linear_model.LinearRegression()
    >>> model.learn_one({"a": 1.0}, 2.0)
    >>> served.offer_template(Snapshot(0, 1.0, dump_state(linear_model.LinearRegression())))
    >>> served.offer("k", Snapshot(1, 2.0, dump_state(model)))
    True
    >>> served.offer("k", Snapshot(0, 3.0, dump_state(linear_model.LinearRegression())))  # older: refused
    False
    >>> served.predict("k", {"a": 1.0}).model_version, served.predict("new", {"a": 1.0}).prediction
    (1, 0.0)
    """

    def __init__(self, live: int = 10_000):
        if live < 1:
            raise ValueError(f"live models must be at least 1, not {live}")
        self.live = live
        self._snapshots: dict[str, Snapshot] = {}
        self._restored: collections.OrderedDict[str, tuple] = collections.OrderedDict()
        self._template: Snapshot | None = None
        self._template_model = None
        self._global = None  # (version, model, predictor): the newest version of the job's global model read
        self._lock = threading.Lock()
        self.snapshot_bytes = 0  # what the snapshots' blobs hold together
        self.newest_ts = 0.0  # when the newest snapshot held was written
        self.offered = 0
        self.refused = 0
        self.restores = 0

    def __len__(self) -> int:
        return len(self._snapshots)

    @property
    def restored(self) -> int:
        """How many keys' models are restored now."""
        return len(self._restored)

    @property
    def is_bandit(self) -> bool:
        """Whether the job's models are bandit policies, as its template says (False before one is read)."""
        template = self._template_model
        return template is not None and template[1].kind is Kind.BANDIT

    @property
    def template(self) -> Snapshot | None:
        """The job's template snapshot, once one was read."""
        return self._template

    def snapshot(self, key: str) -> Snapshot | None:
        """The key's latest snapshot, or None."""
        return self._snapshots.get(key)

    def offer(self, key: str, snapshot: Snapshot) -> bool:
        """Keep ``snapshot`` as the key's latest unless the key has a newer one.

        Returns
        -------
        bool
            Whether it was kept.
        """
        with self._lock:
            self.offered += 1
            known = self._snapshots.get(key)
            if known is not None and not snapshot.is_newer_than(known):
                self.refused += 1
                return False
            self._snapshots[key] = snapshot
            self.newest_ts = max(self.newest_ts, snapshot.ts)
            self.snapshot_bytes += len(snapshot.blob) - (0 if known is None else len(known.blob))
            self._restored.pop(key, None)
            return True

    def take_record(self, record: dict, received: float) -> None:
        """Offer a models output record: a key's snapshot, or the job's template (a follower's ``accept``).

        Raises
        ------
        ValueError
            If the record is no model snapshot.
        """
        snapshot = Snapshot.from_record(record, received)
        if record.get("template"):
            self.offer_template(snapshot)
            if "global_model" in record:
                self.offer_global(record["global_version"], base64.b64decode(record["global_model"], validate=True))
        elif isinstance(record.get("key"), str):
            self.offer(record["key"], snapshot)
        else:
            raise ValueError("a model snapshot needs a string 'key'")

    def offer_template(self, snapshot: Snapshot) -> None:
        """Keep the job's template, what keys without a snapshot are answered by; the one written last wins."""
        model = load_state(snapshot.blob)
        kind_of(model)  # a template of a kind riverflink does not serve fails here, not on a request
        with self._lock:
            if self._template is None or snapshot.ts >= self._template.ts:
                self._template, self._template_model = snapshot, (model, _predictor_of(model))

    def offer_global(self, version: int, blob: bytes) -> None:
        """Keep a version of the job's global model, if newer than the one held: keys served by it are answered by it."""
        if type(version) is not int:
            raise ValueError("a global model version needs an integer 'global_version'")
        model = load_state(blob)
        with self._lock:
            if self._global is None or version > self._global[0]:
                self._global = (version, model, _predictor_of(model))

    def _served_by_global(self, key: str) -> str | None:
        """``GLOBAL`` or ``BLEND`` if the job serves ``key`` with its global model or a blend with it, as the
        key's snapshot (or the template) says; else None."""
        snapshot = self._snapshots.get(key) or self._template
        return snapshot.serving if snapshot is not None and snapshot.serving in (GLOBAL, BLEND) else None

    def predict(self, key: str, x: dict, arms: list | None = None) -> Answer:
        """Ask the key's latest model (or the template) about ``x``, without changing any model.

        A bandit policy answers the arm it would pull now among ``arms``: a
        copy pulls, restored from the snapshot's bytes (40 µs, where a deep
        copy takes 250), so the served policy, random draws included, stays
        as the job wrote it, and the same question gets the same arm until
        the next snapshot.

        A key the job serves with its global model (``"serving": "global"``)
        is answered by the newest version of it read, and the answer says
        which (``model``, ``global_version``), as the job's predictions do.
        Under ``--global-blend`` (``"serving": "blend"``) that version's
        probabilities are blended with the key's model's (or, for a key not
        seen, the template's), the global model's share as the snapshot says.

        Raises
        ------
        LookupError
            If the key has no snapshot and no template was read.
        NeedsArms
            If the key's model is a bandit policy and ``arms`` is None.
        Exception
            Whatever the model raises on ``x``.
        """
        shared = self._served_by_global(key)
        if shared is not None:
            return self._global_answer(key, x, blended=shared == BLEND)
        model, predictor, snapshot = self._model_of(key)
        if predictor.kind is Kind.BANDIT:
            if arms is None:
                raise NeedsArms("a bandit policy is asked with the 'arms' to choose from")
            policy = load_state(snapshot.blob) if snapshot is not None else policy_for_key(model, key)
            prediction, extras = BanditVerbs.for_policy(policy).pull(policy, arms, x), {}
        else:
            prediction, _, extras = predictor.predict(model, x)
        if snapshot is None:
            return Answer(key, prediction, 0, None, extras)
        return Answer(key, prediction, snapshot.model_version, snapshot.ts, extras)

    def _global_answer(self, key: str, x: dict, blended: bool) -> Answer:
        shared, snapshot = self._global, self._snapshots.get(key)
        if shared is None:
            raise LookupError(f"the key {key!r} is served by the global model, and no version of it was read yet")
        version, model, predictor = shared
        prediction, _, extras = predictor.predict(model, x)
        if blended:
            own, own_predictor, written = self._model_of(key)  # the key's own model, or the template's
            _, _, own_extras = own_predictor.predict(own, x)
            share = (written or self._template).global_weight
            proba, weight = blend_probas(extras["proba"], own_extras["proba"], share)
            prediction = max(proba, key=proba.get) if proba else None
            extras = {"proba": proba, "global_weight": weight}
        extras = {**extras, "model": BLEND if blended else GLOBAL, "global_version": version}
        if snapshot is None:
            return Answer(key, prediction, 0, None, extras)
        return Answer(key, prediction, snapshot.model_version, snapshot.ts, extras)

    def _model_of(self, key: str) -> tuple:
        with self._lock:
            snapshot = self._snapshots.get(key)
            if snapshot is None:
                if self._template_model is None:
                    raise LookupError(f"the key {key!r} has no snapshot and no template was read yet")
                model, predictor = self._template_model
                return model, predictor, None
            restored = self._restored.get(key)
            if restored is not None and restored[2] is snapshot:
                self._restored.move_to_end(key)
                return restored
        model = load_state(snapshot.blob)  # outside the lock: other keys are answered meanwhile
        restored = (model, _predictor_of(model), snapshot)
        with self._lock:
            self.restores += 1
            if self._snapshots.get(key) is snapshot:
                self._restored[key] = restored
                self._restored.move_to_end(key)
                while len(self._restored) > self.live:
                    self._restored.popitem(last=False)
        return restored

    def describe(self, key: str) -> dict | None:
        """What ``GET /models/{key}`` says: version, kind, serving model, size and when it was written; None if unknown."""
        snapshot = self._snapshots.get(key)
        if snapshot is None:
            return None
        model, predictor, snapshot = self._model_of(key)
        return {"key": key, "model_version": snapshot.model_version, "model_ts": snapshot.ts,
                "kind": predictor.kind.value, "model": _described(model), "serving": snapshot.serving,
                "bytes": len(snapshot.blob), "received": snapshot.received}


def _described(model) -> str:
    """The estimator as river prints it; a policy by its class and parameters (river's repr of one can raise)."""
    if kind_of(model) is Kind.BANDIT:
        return f"{type(model).__name__}({model._get_params()})"
    return str(model)


def _predictor_of(model) -> Predictor:
    return Predictor.for_model(kind_of(model), None, model)
