"""Every output record of riverflink (SPEC §3) and the JSON writer that turns it into a line.

Users read these lines from files and topics, and alert and filter on their
fields, so their shapes are a contract: each is built here and nowhere else.
Predictions are written once per event, so ``Prediction.to_json`` writes
plain values itself, in about half the encoder's time; every other record
goes through ``to_json``, which also takes the numpy scalars river may
return.
"""

import base64
import dataclasses
import json
import math
import typing
from json.encoder import encode_basestring_ascii

__all__ = [
    "to_json", "Prediction", "metric_record", "model_snapshot_record", "template_record", "dead_letter_record",
    "drift_record", "promotion_record", "RAW_LIMIT",
]

RAW_LIMIT = 2000  # characters of the original record kept in a dead letter


def _json_default(value):
    """JSON for what river returns besides plain Python: numpy scalars and the like."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(default=_json_default)  # one encoder: json.dumps(default=...) builds one per call


def to_json(record: dict) -> str:
    """One output line: ``record`` as JSON, numpy scalars as their Python values.

    Parameters
    ----------
    record
        The record's fields, in the order they are written.

    Returns
    -------
    str
        The JSON text, without a line break.

    Examples
    --------
    >>> import numpy
    >>> to_json({"key": "a", "value": numpy.float64(0.5), "n": numpy.int64(2)})
    '{"key": "a", "value": 0.5, "n": 2}'
    """
    return _ENCODER.encode(record)


def _float_json(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


# The JSON of a plain value, exactly as the encoder writes it, by exact type (a bool is no int here).
_PLAIN_JSON = {
    str: encode_basestring_ascii, bool: lambda value: "true" if value else "false", int: int.__repr__,
    float: _float_json, type(None): lambda value: "null",
}


# Not frozen: a frozen dataclass's __init__ costs four times as much, once or more per event.
@dataclasses.dataclass(slots=True)
class Prediction:
    """A prediction output record: ``{"key", "id", "ts", "prediction", "model_version"}`` and the kind's extras.

    Examples
    --------
    >>> Prediction("a", "e1", 1.5, True, 3, {"proba": {False: 0.25, True: 0.75}}).to_json()
    '{"key": "a", "id": "e1", "ts": 1.5, "prediction": true, "model_version": 3, "proba": {"False": 0.25, "True": 0.75}}'
    """

    key: str
    id: str | None
    ts: float | None
    prediction: typing.Any
    model_version: int  # learn steps the key's model had made before this prediction
    extras: dict  # kind-specific fields, such as a classifier's ``proba``

    def to_json(self) -> str:
        """The prediction's output line, as ``to_json`` of its ``record()`` writes it.

        One is written per event: plain values (strings, numbers, bools, None,
        and dicts of them such as class probabilities) are written here in
        about half the encoder's time; anything else goes to the encoder.
        """
        plain = _PLAIN_JSON
        try:
            line = (f'{{"key": {plain[type(self.key)](self.key)}, "id": {plain[type(self.id)](self.id)}, '
                    f'"ts": {plain[type(self.ts)](self.ts)}, "prediction": {plain[type(self.prediction)](self.prediction)}, '
                    f'"model_version": {self.model_version:d}')
            if not self.extras:
                return line + "}"
            parts = [line]
            for name, value in self.extras.items():
                if type(value) is dict:  # JSON object keys are strings: class labels become their str()
                    fields = ", ".join([f"{encode_basestring_ascii(str(k))}: {plain[type(v)](v)}" for k, v in value.items()])
                    parts.append(f"{encode_basestring_ascii(name)}: {{{fields}}}")
                else:
                    parts.append(f"{encode_basestring_ascii(name)}: {plain[type(value)](value)}")
            return ", ".join(parts) + "}"
        except KeyError:  # a value of another type (a numpy scalar, a list, a date)
            return to_json(self.record())

    def record(self) -> dict:
        """The record as a dict, class labels of dict extras as strings (JSON object keys)."""
        record = {
            "key": self.key, "id": self.id, "ts": self.ts,
            "prediction": self.prediction, "model_version": self.model_version,
        }
        for name, value in self.extras.items():
            record[name] = {str(k): v for k, v in value.items()} if isinstance(value, dict) else value
        return record


def metric_record(key: str | None, metric, n: int, now_ms: int, model: str | None = None) -> str:
    """A metrics output line: ``{"key", "metric", "value", "n", "ts"}``, and ``"model"`` for one of a key's models.

    Parameters
    ----------
    key
        The key the metric is of; None for the all-keys metric.
    metric
        A river metric.
    n
        How many updates the metric has had.
    now_ms
        When it is reported (processing time, milliseconds; written in seconds).
    model
        The model the metric judges, when a key has challengers.

    Examples
    --------
    >>> from river import metrics
    >>> metric_record(None, metrics.MAE(), 0, 1_500)
    '{"key": null, "metric": "MAE", "value": 0.0, "n": 0, "ts": 1.5}'
    """
    record = {"key": key, "metric": type(metric).__name__, "value": metric.get(), "n": n, "ts": now_ms / 1000}
    if model is not None:
        record["model"] = model
    return to_json(record)


def model_snapshot_record(key: str, model_version: int, model: bytes, now_ms: int, serving: str | None = None,
                          global_weight: float | None = None) -> str:
    """A model snapshot output line: ``{"key", "model_version", "ts", "model"}``, and ``"serving"`` with a lifecycle.

    Parameters
    ----------
    key
        The key the model is of.
    model_version
        Learn steps the model has made.
    model
        The model's envelope (``state.envelope.dump_state``), written in base64.
    now_ms
        When it is reported (processing time, milliseconds; written in seconds).
    serving
        The name of the model the key serves, when it has challengers or drift detection.
    global_weight
        Under ``--global-blend`` (``serving`` ``"blend"``): the global model's share of the
        key's blend with this model (``operators.lifecycle.blend_probas``).

    Examples
    --------
    >>> model_snapshot_record("a", 7, b"RFLK", 2_000)
    '{"key": "a", "model_version": 7, "ts": 2.0, "model": "UkZMSw=="}'
    """
    record = {"key": key, "model_version": model_version, "ts": now_ms / 1000, "model": base64.b64encode(model).decode()}
    if serving is not None:
        record["serving"] = serving
    if global_weight is not None:
        record["global_weight"] = global_weight
    return to_json(record)


def template_record(model: bytes, now_ms: int, serving: str | None = None, global_version: int | None = None,
                    global_model: bytes | None = None, global_weight: float | None = None) -> str:
    """The models output's record of the template: what a key with no snapshot yet is answered by.

    ``{"key": "", "template": true, "model_version": 0, "ts", "model"}``: the
    model every new key starts from (the ``--model`` as it is under
    ``--warm-start``, else a blank clone), so that ``riverflink serve``
    answers a key the job has not seen exactly as the job would. Its key is
    empty, which no event's key can be: a compacted Kafka topic refuses
    records without a key.

    With a global model, each of its versions comes in such a record, which
    also holds ``"global_version"`` and ``"global_model"``: the version a key
    served by it is answered with. One key for both, so compaction keeps the
    latest, which holds them all. Under ``--global-blend``, ``"global_weight"``
    is the global model's share of a new key's blend.

    Examples
    --------
    >>> template_record(b"RFLK", 2_000)
    '{"key": "", "template": true, "model_version": 0, "ts": 2.0, "model": "UkZMSw=="}'
    >>> template_record(b"RFLK", 2_000, "global", 25, b"G")[82:]
    '"serving": "global", "global_version": 25, "global_model": "Rw=="}'
    """
    record = {"key": "", "template": True, "model_version": 0, "ts": now_ms / 1000,
              "model": base64.b64encode(model).decode()}
    if serving is not None:
        record["serving"] = serving
    if global_model is not None:
        record["global_version"] = global_version
        record["global_model"] = base64.b64encode(global_model).decode()
    if global_weight is not None:
        record["global_weight"] = global_weight
    return to_json(record)


def dead_letter_record(raw: str, reason: str, detail: str, key: str | None) -> str:
    """A dead-letter output line: ``{"raw", "reason", "detail", "key"}``, ``raw`` cut to ``RAW_LIMIT`` characters.

    Examples
    --------
    >>> dead_letter_record("{", "not_json", "Expecting value", None)
    '{"raw": "{", "reason": "not_json", "detail": "Expecting value", "key": null}'
    """
    return to_json({"raw": raw[:RAW_LIMIT], "reason": reason, "detail": detail, "key": key})


def drift_record(key: str, model: str, n: int, ts, detector: str, action: str) -> dict:
    """A lifecycle event (``--events``): the drift detector of ``key``'s serving ``model`` fired.

    ``n`` counts the key's scored labels, ``ts`` is the label's event time,
    ``action`` what was done (``"none"`` or ``"reset"``).

    Examples
    --------
    >>> to_json(drift_record("a", "champion", 120, 12.5, "ADWIN", "reset"))
    '{"key": "a", "event": "drift", "model": "champion", "n": 120, "ts": 12.5, "detector": "ADWIN", "action": "reset"}'
    """
    return {"key": key, "event": "drift", "model": model, "n": n, "ts": ts, "detector": detector, "action": action}


def promotion_record(key: str, serving: str, best: str, n: int, ts, metric: str, from_value, to_value) -> dict:
    """A lifecycle event (``--events``): ``key`` switched from its ``serving`` model to the challenger ``best``.

    ``from_value`` and ``to_value`` are both models' ``metric`` over the promotion window.

    Examples
    --------
    >>> to_json(promotion_record("a", "champion", "challenger", 80, 9.0, "Accuracy", 0.5, 0.75))
    '{"key": "a", "event": "promotion", "from": "champion", "to": "challenger", "n": 80, "ts": 9.0, "metric": "Accuracy", "from_value": 0.5, "to_value": 0.75}'
    """
    return {
        "key": key, "event": "promotion", "from": serving, "to": best, "n": n, "ts": ts,
        "metric": metric, "from_value": from_value, "to_value": to_value,
    }
