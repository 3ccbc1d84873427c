"""Order statistics the benchmarks report."""

__all__ = ["percentile"]


def percentile(values: list[float], share: float) -> float:
    """The value at ``share`` (0 to 1) of ``values`` in order, by the nearest-rank rule.

    Examples
    --------
    >>> percentile([3.0, 1.0, 2.0, 4.0], 0.5), percentile([3.0, 1.0, 2.0, 4.0], 0.99)
    (3.0, 4.0)
    """
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
