"""Flink metrics that cost the learner next to nothing per event.

In thread mode every call on a Flink metric object crosses into the JVM;
at two counters and a distribution per event that was a few percent of the
learner's time. Counts are kept in Python and handed over in batches, and
the processing-time distribution is fed a sample of the events.
"""

__all__ = ["BatchedCounter", "SAMPLE_EVERY", "COUNTERS_EVERY_S"]

SAMPLE_EVERY = 64  # one event in this many reports its processing time
COUNTERS_EVERY_S = 1.0  # batched counts reach Flink at least this often while batches come


class BatchedCounter:
    """Counts in Python; the Flink counter lags by fewer than ``batch`` increments until ``flush``.

    Parameters
    ----------
    counter
        The Flink counter (anything with ``inc(n)``).
    batch
        How many increments are handed to ``counter`` at once.

    Examples
    --------
    >>> class FlinkCounter:
    ...     count = 0
    ...     def inc(self, n=1): self.count += n
    >>> flink = FlinkCounter(); counter = BatchedCounter(flink, batch=3)
    >>> counter.inc(); counter.inc(); flink.count
    0
    >>> counter.inc(); flink.count
    3
    >>> counter.inc(); counter.flush(); flink.count
    4
    """

    def __init__(self, counter, batch: int = 1000):
        self._counter = counter
        self._batch = batch
        self._pending = 0

    def inc(self) -> None:
        """Count one; every ``batch``-th call hands the count over."""
        self._pending += 1
        if self._pending >= self._batch:
            self.flush()

    def flush(self) -> None:
        """Hand what is counted over to the Flink counter (when the function closes)."""
        if self._pending:
            self._counter.inc(self._pending)
            self._pending = 0
