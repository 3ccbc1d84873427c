"""JSON text read exactly as ``json.loads`` reads it, by orjson wherever that gives the same: several times faster.

Event lines (``operators.events``), request bodies (``riverflink serve``)
and the job's own output lines (``state.destinations``) all go through here.
"""

import json

import orjson

__all__ = ["parse_json"]

_LARGE = 2.0**63  # orjson reads an integer beyond 64 bits as a float, and no float smaller than this


def parse_json(line: str | bytes):
    """``json.loads(line)`` as far as events and records go, by orjson where it gives the same: 2.5 times faster.

    What orjson refuses (NaN, Infinity, lone surrogates, ...) is left to
    ``json.loads``, which accepts it or says what is wrong; so is an object
    whose event fields (``key``, ``id``, ``y``, ``ts``, the features) hold a
    float of 2**63 or more, which may have been a larger integer.

    Parameters
    ----------
    line
        One line of JSON text, or its UTF-8 bytes.

    Returns
    -------
    object
        What ``json.loads(line)`` returns: a dict for an event, but any JSON value.

    Raises
    ------
    ValueError
        If the line is not JSON (``json.JSONDecodeError``).

    Examples
    --------
    >>> parse_json('{"x": {"a": 1, "b": 2.5}, "y": null}'), parse_json('{"y": NaN}')
    ({'x': {'a': 1, 'b': 2.5}, 'y': None}, {'y': nan})
    >>> parse_json('{"key": 123456789012345678901234567890}')
    {'key': 123456789012345678901234567890}
    """
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)
    if type(record) is dict:
        for name in ("key", "id", "y", "ts"):
            value = record.get(name)
            if type(value) is float and not -_LARGE < value < _LARGE:
                return json.loads(line)
        features = record.get("x")
        if type(features) is dict:
            for value in features.values():
                if type(value) is float and not -_LARGE < value < _LARGE:
                    return json.loads(line)
    return record
