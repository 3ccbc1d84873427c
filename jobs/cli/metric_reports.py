"""Reading a metrics destination back: each key's and model's final figure, and how figures spread across keys.

The job reports every metric periodically and once more at the end; the
record with the largest ``n`` is the final one. The summary after a run,
``riverflink evaluate`` and the tests all read metrics this way.
"""

import dataclasses

__all__ = ["final_metrics", "fold_final_metrics", "Spread"]


def final_metrics(records) -> dict[str | None, dict[str | None, dict]]:
    """``model -> key -> final record``; model ``None`` is the served predictions, key ``None`` all keys.

    >>> final_metrics([{"key": "a", "n": 1, "value": 0.5}, {"key": "a", "n": 2, "value": 0.7},
    ...                {"key": None, "model": "m", "n": 3, "value": 0.1}])
    {None: {'a': {'key': 'a', 'n': 2, 'value': 0.7}}, 'm': {None: {'key': None, 'model': 'm', 'n': 3, 'value': 0.1}}}
    """
    return fold_final_metrics({}, records)


def fold_final_metrics(final: dict, records) -> dict[str | None, dict[str | None, dict]]:
    """``final`` (what ``final_metrics`` returns) updated with more ``records``, for a reader that reads a file at a time.

    >>> final = fold_final_metrics({}, [{"key": "a", "n": 2, "value": 0.7}])
    >>> fold_final_metrics(final, [{"key": "a", "n": 1, "value": 0.5}])
    {None: {'a': {'key': 'a', 'n': 2, 'value': 0.7}}}
    """
    for record in records:
        by_key = final.setdefault(record.get("model"), {})
        known = by_key.get(record["key"])
        if known is None or record["n"] >= known["n"]:
            by_key[record["key"]] = record
    return final


@dataclasses.dataclass(frozen=True)
class Spread:
    """How a metric's final value spreads across keys."""

    keys: int
    low: float
    median: float
    high: float

    @classmethod
    def of(cls, by_key: dict) -> "Spread | None":
        """The spread of the per-key records in ``by_key`` (the all-keys record, key None, left out)."""
        values = sorted(record["value"] for key, record in by_key.items() if key is not None)
        if not values:
            return None
        return cls(keys=len(values), low=values[0], median=values[len(values) // 2], high=values[-1])
