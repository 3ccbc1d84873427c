"""The edge of the pipeline: one raw JSON line becomes a validated Event or a dead letter.

River accepts a NaN feature silently and then predicts NaN for that key
forever, and a nested object makes most models raise deep inside ``learn_one``.
Everything a model could choke on is therefore refused here, before any state
is touched.
"""

import dataclasses
import datetime
import math

from operators.dead_letters import DeadLetter, Reason
from state.json_lines import parse_json

__all__ = ["Event", "decode_event", "decode_query", "decode_arms"]


# Not frozen: a frozen dataclass's __init__ costs four times as much, once or more per event.
@dataclasses.dataclass(slots=True)
class Event:
    """One validated event.

    Built by :func:`decode_event`, which guarantees what the fields hold, so the
    learning step never checks them again.

    Parameters
    ----------
    key
        The entity the event belongs to, as a non-empty string (an integer key is written as a string).
    x
        The features: only finite numbers, strings and bools, a ``null`` feature
        dropped (river's way of saying "missing"); None for a label-only event.
    y
        The target, or None for an event to predict on only.
    id
        The event's id, which a later label-only event names to find its prediction; None without one.
    ts
        When the event happened, in epoch seconds (an ISO-8601 ``ts`` converted), or None.
    raw
        The original line, so a later failure (a model error, an unknown id) can
        still produce a dead letter with it.
    arms
        A bandit decision's arms to choose from (strings or integers, at least one, none twice), or None.
    arm
        The arm a logged interaction pulled (a bandit replay, SPEC §7), or None.

    Examples
    --------
    >>> event = decode_event('{"key": "a", "id": "e1", "y": 2.5}')
    >>> event.x is None, event.is_label_only
    (True, True)
    """

    key: str
    x: dict | None
    y: float | bool | str | None
    id: str | None
    ts: float | None
    raw: str
    arms: list | None = None
    arm: str | int | None = None

    @property
    def is_label_only(self) -> bool:
        """Whether the event only brings the label of an earlier prediction (``y`` without ``x``)."""
        return self.x is None and self.y is not None


class _Rejected(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def decode_event(line: str | None, decisions: bool = False) -> Event | DeadLetter:
    """Validate one JSON line (None: a Kafka record with no value).

    Never raises on bad input: whatever a model could choke on becomes a dead
    letter whose ``reason`` (``operators.dead_letters.Reason``) says what was wrong.

    Parameters
    ----------
    line
        One raw event line, as read from a file or a Kafka record's value; None for a tombstone.
    decisions
        The job's model is a bandit policy: an event with an ``id`` and neither
        ``x`` nor ``y`` is a decision on the job's ``--arms`` (SPEC §7).

    Returns
    -------
    Event or DeadLetter
        The validated event, or the dead letter that takes its place in the output.

    Examples
    --------
    >>> event = decode_event('{"key": 7, "x": {"a": 1.5, "b": null}, "y": true}')
    >>> event.key, event.x, event.y, event.id, event.ts
    ('7', {'a': 1.5}, True, None, None)
    >>> decoded = decode_event('{"key": "u1", "id": "d1", "arms": ["a", "b"]}', decisions=True)
    >>> decoded.x, decoded.arms, decoded.is_label_only
    ({}, ['a', 'b'], False)
    >>> decode_event('{"key": "k", "x": {"a": NaN}}').reason
    'non_finite_value'
    >>> rejected = decode_event('{"x": {"a": 1}}')
    >>> rejected.reason, rejected.detail
    ('missing_key', "the event has no 'key'")
    >>> decode_event(None).reason, decode_event("not json").reason
    ('no_value', 'not_json')
    """
    if line is None:
        return DeadLetter("", Reason.NO_VALUE, "a record with no value (a Kafka tombstone) is not an event")
    try:
        record = parse_json(line)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the parser goes
        return DeadLetter(line, Reason.NOT_JSON, str(exc))
    if not isinstance(record, dict):
        return DeadLetter(line, Reason.NOT_OBJECT, f"a JSON {type(record).__name__} is not an event object")
    key = None
    try:
        key = _key(record)
        x = _features(record.get("x"))
        y = _target(record.get("y"))
        event_id = _event_id(record.get("id"))
        ts = _timestamp(record.get("ts"))
        if decisions:  # other jobs ignore these fields, as any field they do not read
            arms, arm = _arms(record.get("arms")), _arm(record.get("arm"))
    except _Rejected as rejected:
        return DeadLetter(line, rejected.reason, rejected.detail, key)
    if decisions:
        if event_id is None:
            return DeadLetter(line, Reason.NOTHING_TO_DO, "a decision or a reward needs an 'id'", key)
        if arm is not None and (arms is None or y is None):
            return DeadLetter(line, Reason.NOTHING_TO_DO, "a logged 'arm' needs the 'arms' it was one of and its "
                                                          "reward 'y'", key)
        if y is not None and (type(y) is bool or type(y) is str):
            return DeadLetter(line, Reason.INVALID_TARGET, f"a reward 'y' must be a number, not {type(y).__name__}",
                              key)
        if y is not None and arm is None and (x is not None or arms is not None):
            return DeadLetter(line, Reason.NOTHING_TO_DO, "a reward comes alone, with its decision's 'id', or in a "
                                                          "logged interaction with the 'arm' pulled", key)
        if arms is not None and x is None:
            x = {}
        return Event(key=key, x=x, y=y, id=event_id, ts=ts, raw=line, arms=arms, arm=arm)
    if x is None and y is None:
        return DeadLetter(line, Reason.NOTHING_TO_DO, "an event needs features 'x', a target 'y', or both", key)
    if x is None and event_id is None:
        return DeadLetter(line, Reason.NOTHING_TO_DO, "a label without 'x' needs the 'id' of its prediction", key)
    return Event(key=key, x=x, y=y, id=event_id, ts=ts, raw=line)


def decode_query(record) -> tuple[str, dict] | DeadLetter:
    """Validate a question to a key's model, ``{"key": K, "x": {...}}``, as an event's key and features are.

    ``riverflink serve`` asks models with it, so a request is refused for
    exactly what would make the job dead-letter the same features; a missing
    ``x`` asks with no features (a forecaster's next value).

    Parameters
    ----------
    record
        The request, parsed from JSON.

    Returns
    -------
    tuple or DeadLetter
        ``(key, x)``, or the dead letter whose ``reason`` says what was wrong (``raw`` left empty).

    Examples
    --------
    >>> decode_query({"key": 7, "x": {"a": 1.5, "b": None}})
    ('7', {'a': 1.5})
    >>> decode_query({"key": "k", "x": {"a": [1]}}).reason, decode_query([1]).reason
    ('invalid_features', 'not_object')
    """
    if not isinstance(record, dict):
        return DeadLetter("", Reason.NOT_OBJECT, f"a JSON {type(record).__name__} is not a request object")
    key = None
    try:
        key = _key(record)
        x = _features(record.get("x"))
    except _Rejected as rejected:
        return DeadLetter("", rejected.reason, rejected.detail, key)
    return key, {} if x is None else x


def decode_arms(arms) -> list | DeadLetter:
    """A bandit question's ``arms``, checked as a decision's are (``riverflink serve``); a dead letter if wrong.

    >>> decode_arms(["a", 2]), decode_arms(None).reason, decode_arms(["a", "a"]).reason
    (['a', 2], 'missing_arms', 'invalid_arms')
    """
    if arms is None:
        return DeadLetter("", Reason.MISSING_ARMS, "a bandit policy is asked with the 'arms' to choose from")
    try:
        return _arms(arms)
    except _Rejected as rejected:
        return DeadLetter("", rejected.reason, rejected.detail)


def _key(record: dict) -> str:
    if "key" not in record or record["key"] is None:
        raise _Rejected(Reason.MISSING_KEY, "the event has no 'key'")
    key = record["key"]
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        raise _Rejected(Reason.INVALID_KEY, f"'key' must be a string or an integer, not {type(key).__name__}")
    key = str(key)
    if not key:
        raise _Rejected(Reason.INVALID_KEY, "'key' is an empty string")
    return key


def _features(x) -> dict | None:
    if x is None:
        return None
    if not isinstance(x, dict):
        raise _Rejected(Reason.INVALID_FEATURES, f"'x' must be an object, not {type(x).__name__}")
    try:  # the fast path: all numbers, all finite (a NaN or an infinity makes the sum one)
        if math.isfinite(sum(x.values())):
            return x
    except (TypeError, OverflowError):  # a string, null, list or object; an integer too large for a float
        pass
    features = {}
    for name, value in x.items():  # json.loads gives only these types; exact type checks are the fast path
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                raise _Rejected(Reason.NON_FINITE, f"feature {name!r} is {value}")
            features[name] = value
        elif kind is int or kind is bool or kind is str:
            features[name] = value
        elif value is not None:
            raise _Rejected(
                Reason.INVALID_FEATURES,
                f"feature {name!r} is a {kind.__name__}; features must be numbers, strings, bools or null",
            )
    return features


def _target(y):
    if y is None or type(y) in (bool, str, int):
        return y
    if type(y) is float:
        if not math.isfinite(y):
            raise _Rejected(Reason.NON_FINITE, f"target 'y' is {y}")
        return y
    raise _Rejected(Reason.INVALID_TARGET, f"'y' must be a number, bool or string, not {type(y).__name__}")


def _event_id(event_id) -> str | None:
    if event_id is None:
        return None
    if isinstance(event_id, bool) or not isinstance(event_id, (str, int)):
        raise _Rejected(Reason.INVALID_ID, f"'id' must be a string, not {type(event_id).__name__}")
    return str(event_id)


def _arm(arm):
    if arm is None or type(arm) is str or type(arm) is int:
        return arm
    raise _Rejected(Reason.INVALID_ARM, f"'arm' must be a string or an integer, not {type(arm).__name__}")


def _arms(arms) -> list | None:
    if arms is None:
        return None
    if type(arms) is not list or not arms:
        raise _Rejected(Reason.INVALID_ARMS, "'arms' must be a non-empty list of strings or integers")
    for arm in arms:
        if type(arm) is not str and type(arm) is not int:
            raise _Rejected(Reason.INVALID_ARMS, f"an arm is a string or an integer, not {type(arm).__name__}")
    if len(set(arms)) != len(arms):
        raise _Rejected(Reason.INVALID_ARMS, "an arm is listed twice in 'arms'")
    return arms


def _timestamp(ts) -> float | None:
    if ts is None:
        return None
    if isinstance(ts, bool):
        raise _Rejected(Reason.INVALID_TS, "'ts' must be epoch seconds or an ISO-8601 string, not a bool")
    if type(ts) in (int, float):
        try:
            seconds = float(ts)
        except OverflowError:
            raise _Rejected(Reason.INVALID_TS, "'ts' is too large to be epoch seconds") from None
        if not math.isfinite(seconds):
            raise _Rejected(Reason.NON_FINITE, f"'ts' is {ts}")
        return seconds
    if isinstance(ts, str):
        try:
            moment = datetime.datetime.fromisoformat(ts)
        except ValueError as exc:
            raise _Rejected(Reason.INVALID_TS, f"'ts' is not ISO-8601: {exc}") from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        return moment.timestamp()
    raise _Rejected(Reason.INVALID_TS, f"'ts' must be epoch seconds or an ISO-8601 string, not {type(ts).__name__}")
