"""When the keyed operators' timers fire: interval boundaries, idle-key checks, the end of a bounded input.

Flink keeps one timer per key and timestamp, so timers that fall on shared
boundaries cost one entry however often a key registers them: every time
here is rounded up to a boundary. Plain arithmetic, no Flink: the learner
(``operators.learner_function``) and the all-keys metric
(``operators.overall_metric``) register what these functions compute.
"""

__all__ = ["END_OF_INPUT", "next_boundary", "KeyExpiry"]

END_OF_INPUT = 2**63 - 1  # Flink's maximum watermark: reached only when a bounded input ends


def next_boundary(now_ms: int, interval_ms: int) -> int:
    """The next multiple of ``interval_ms`` after ``now_ms``: keys updated in one interval share one timer time.

    Parameters
    ----------
    now_ms
        The current time, in milliseconds.
    interval_ms
        The spacing of the boundaries, in milliseconds.

    Returns
    -------
    int
        The first boundary strictly after ``now_ms``.

    Examples
    --------
    >>> next_boundary(1_234, 1_000), next_boundary(2_000, 1_000)
    (2000, 3000)
    """
    return (now_ms // interval_ms + 1) * interval_ms


class KeyExpiry:
    """When an idle key is dropped (``--key-ttl``): a key that has seen no event for ``ttl_ms`` (processing time).

    The caller remembers when each key last saw an event and asks ``idle`` with
    the current time, before applying an event and when a timer fires; an idle
    key's state is dropped whole, and its next event starts from the template.
    After each event it registers a timer at ``check_at(now_ms)``: coarse
    boundaries (``granularity_ms``: a tenth of the TTL, at least 1 s) let keys
    share timer times and keep a busy key's pending checks to at most
    ``ttl / granularity + 1`` (11), and a key is dropped at most one
    granularity after it has been idle for the TTL.

    Parameters
    ----------
    ttl_ms
        How long a key may go without an event, in milliseconds; positive.

    Examples
    --------
    >>> expiry = KeyExpiry(2_000)
    >>> expiry.idle(last_seen_ms=10_000, now_ms=11_999), expiry.idle(last_seen_ms=10_000, now_ms=12_000)
    (False, True)
    >>> expiry.check_at(10_300)
    13000
    >>> expiry.idle(None, 99_999)  # nothing remembered: nothing to drop
    False
    """

    def __init__(self, ttl_ms: int):
        if ttl_ms <= 0:
            raise ValueError(f"a key TTL must be positive, not {ttl_ms} ms")
        self.ttl_ms = ttl_ms
        self.granularity_ms = max(1_000, ttl_ms // 10)

    def idle(self, last_seen_ms: int | None, now_ms: int) -> bool:
        """Whether a key last seen at ``last_seen_ms`` (None: never, or already dropped) is to be dropped at ``now_ms``."""
        return last_seen_ms is not None and now_ms - last_seen_ms >= self.ttl_ms

    def check_at(self, now_ms: int) -> int:
        """When to check a key seen at ``now_ms``: the first boundary at which it may have been idle for the TTL."""
        return next_boundary(now_ms + self.ttl_ms - 1, self.granularity_ms)
