"""What the dashboard shows, folded from a job's metrics, events and dead letters as a follower reads them.

A job with a million keys writes a million per-key metric records every
interval, and a page must still load in well under a second. So nothing is
kept per record: each key keeps its final figure (the record with the largest
``n``) and a short curve of its figures along the stream (thinned, never
longer than ``key_points``), and each model its all-keys curve. A page asks for
a :meth:`Board.overview`, which sorts and bins the per-key figures with numpy
once per change, at most every ``refresh_seconds``, and is then served from
memory until something new is read.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from array import array

import numpy as np

__all__ = ["Board", "Curve", "SERVED", "bigger_is_better"]

logger = logging.getLogger(__name__)

SERVED = "served"  # the predictions as served (records without "model"): the --model's, or each key's champion's
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
HISTOGRAM_BINS = 20
WORST_KEYS = 10
RECENT_EVENTS = 20


def bigger_is_better(metric: str | None) -> bool:
    """Whether a river metric, by its class name, improves upwards; a metric river does not know is taken to.

    >>> bigger_is_better("Accuracy"), bigger_is_better("MAE"), bigger_is_better("MyOwnScore")
    (True, False, True)
    """
    from river import metrics

    found = getattr(metrics, metric or "", None)
    if isinstance(found, type):
        try:
            return bool(found().bigger_is_better)
        except TypeError:  # a metric that needs arguments to be made: its class attribute, if any
            return bool(getattr(found, "bigger_is_better", True))
    return True


class Curve:
    """A series of ``(x, y)`` points, thinned to every other point whenever it reaches ``limit``.

    A point whose ``x`` is not past the last one replaces the last when equal
    (a bounded input's final report repeats the last ``n``) and is dropped when
    smaller, so the curve always runs forwards.

    >>> curve = Curve(limit=4)
    >>> for n in range(1, 7):
    ...     curve.add(n, n / 10)
    >>> curve.points()
    [(1.0, 0.1), (3.0, 0.3), (5.0, 0.5), (6.0, 0.6)]
    """

    __slots__ = ("xs", "ys", "limit")

    def __init__(self, limit: int):
        self.xs, self.ys, self.limit = array("d"), array("d"), limit

    def add(self, x: float, y: float) -> None:
        if self.xs and x <= self.xs[-1]:
            if x == self.xs[-1]:
                self.ys[-1] = y
            return
        if len(self.xs) >= self.limit:
            del self.xs[1::2], self.ys[1::2]
        self.xs.append(x)
        self.ys.append(y)

    def points(self) -> list[tuple[float, float]]:
        return list(zip(self.xs, self.ys))

    def __len__(self) -> int:
        return len(self.xs)


@dataclasses.dataclass
class _ModelTrack:
    """One model's figures: over all keys, each key's final one, and each key's curve."""

    all_keys: Curve
    overall: dict | None = None  # the all-keys record with the largest n
    final: dict = dataclasses.field(default_factory=dict)  # key -> (value, n)
    curves: dict = dataclasses.field(default_factory=dict)  # key -> Curve


class Board:
    """The dashboard's figures; followers' threads add records, the server's loop reads overviews.

    Parameters
    ----------
    curve_points
        Points kept of each model's all-keys curve.
    key_points
        Points kept of each key's curve.
    timeline
        Drift and promotion events kept for the timeline.
    bucket_seconds
        The width of one bar of dead letters (and of events/s) over time.
    refresh_seconds
        The oldest an overview may be while new records wait to be folded into it.
    """

    def __init__(self, curve_points: int = 2000, key_points: int = 64, timeline: int = 1000,
                 bucket_seconds: float = 10.0, refresh_seconds: float = 1.0):
        self.curve_points, self.key_points = curve_points, key_points
        self.bucket_seconds, self.refresh_seconds = bucket_seconds, refresh_seconds
        self._lock = threading.Lock()
        self.metric: str | None = None
        self._models: dict[str, _ModelTrack] = {}
        self._throughput = Curve(curve_points)  # (ts, labelled events so far) of the served all-keys records
        self._events: collections.deque = collections.deque(maxlen=timeline)
        self._event_counts: collections.Counter = collections.Counter()
        self._events_of_key: dict[str, collections.deque] = {}
        self._dead_letters: collections.Counter = collections.Counter()
        self._dead_letter_buckets: dict[float, collections.Counter] = {}
        self.version = 0  # changes with every record taken
        self._overview: dict | None = None
        self._overview_at = 0.0

    # -- what followers call, each from its own thread --------------------------------------------------

    def take_metric(self, record: dict, received: float) -> None:
        """Fold one metrics output record (``{"key", "metric", "value", "n", "ts"}``, maybe ``"model"``).

        Raises
        ------
        ValueError
            If the record is no metrics record.
        """
        key, value, n, model = record.get("key"), record.get("value"), record.get("n"), record.get("model")
        if "key" not in record or not (key is None or isinstance(key, str)):
            raise ValueError("a metrics record needs a 'key', a string or null")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or type(n) is not int:
            raise ValueError("a metrics record needs a number 'value' and an integer 'n'")
        name = SERVED if model is None else str(model)
        with self._lock:
            self.metric = self.metric or record.get("metric")
            track = self._models.get(name)
            if track is None:
                track = self._models[name] = _ModelTrack(Curve(self.curve_points))
            if key is None:
                track.all_keys.add(n, value)
                if track.overall is None or n >= track.overall["n"]:
                    track.overall = record
                ts = record.get("ts")
                if name == SERVED and isinstance(ts, (int, float)):
                    self._throughput.add(ts, n)
            else:
                known = track.final.get(key)
                if known is None or n >= known[1]:
                    track.final[key] = (float(value), n)
                curve = track.curves.get(key)
                if curve is None:
                    curve = track.curves[key] = Curve(self.key_points)
                curve.add(n, value)
            self.version += 1

    def take_event(self, record: dict, received: float) -> None:
        """Fold one lifecycle event (``"event": "drift"`` or ``"promotion"``, ``operators.records``)."""
        kind, key = record.get("event"), record.get("key")
        if not isinstance(kind, str) or not isinstance(key, str):
            raise ValueError("a lifecycle event needs a string 'event' and 'key'")
        with self._lock:
            self._events.append(record)
            self._event_counts[kind] += 1
            recent = self._events_of_key.get(key)
            if recent is None:
                recent = self._events_of_key[key] = collections.deque(maxlen=RECENT_EVENTS)
            recent.append(record)
            self.version += 1

    def take_dead_letter(self, record: dict, received: float) -> None:
        """Count one dead letter by its reason, in the time bucket it was read in (dead letters carry no time)."""
        reason = record.get("reason")
        if not isinstance(reason, str):
            raise ValueError("a dead letter needs a string 'reason'")
        bucket = received - received % self.bucket_seconds
        with self._lock:
            self._dead_letters[reason] += 1
            self._dead_letter_buckets.setdefault(bucket, collections.Counter())[reason] += 1
            self.version += 1

    # -- what the server reads -----------------------------------------------------------------------

    def overall(self) -> dict[str, dict]:
        """Each model's all-keys record with the largest ``n``, by model name (``SERVED`` first)."""
        with self._lock:
            return {name: track.overall for name, track in self._ordered() if track.overall is not None}

    def overview(self, now: float | None = None) -> dict:
        """Everything the page shows but one key, as plain data; recomputed at most every ``refresh_seconds``."""
        now = time.monotonic() if now is None else now
        cached = self._overview
        if cached is not None and (cached["version"] == self.version or now - self._overview_at < self.refresh_seconds):
            return cached
        started = time.perf_counter()
        with self._lock:
            overview = self._compute_overview()
        overview["seconds"] = time.perf_counter() - started
        self._overview, self._overview_at = overview, now
        logger.debug("dashboard overview of %d keys in %.3f s", overview["spread"]["keys"], overview["seconds"])
        return overview

    def key(self, key: str) -> dict:
        """One key's figures: each model's final value and curve, and its latest drifts and promotions."""
        with self._lock:
            models = {}
            for name, track in self._ordered():
                final = track.final.get(key)
                if final is not None:
                    models[name] = {"value": final[0], "n": final[1], "curve": track.curves[key].points()}
            events = list(self._events_of_key.get(key, ()))
        return {"key": key, "metric": self.metric, "models": models, "events": events}

    def _ordered(self):
        return sorted(self._models.items(), key=lambda item: (item[0] != SERVED, item[0]))

    def _compute_overview(self) -> dict:
        upwards = bigger_is_better(self.metric)
        models = []
        for name, track in self._ordered():
            overall = track.overall or {}
            models.append({"name": name, "value": overall.get("value"), "n": overall.get("n"),
                           "keys": len(track.final), "curve": track.all_keys.points()})
        served = self._models.get(SERVED)
        spread = _spread(served.final if served is not None else {}, upwards)
        buckets = sorted(self._dead_letter_buckets.items())
        return {
            "version": self.version,
            "records": self.version,  # every record taken changes the board once
            "metric": self.metric,
            "bigger_is_better": upwards,
            "models": models,
            "spread": spread,
            "throughput": _rates(self._throughput.points()),
            "events": {"counts": dict(self._event_counts), "recent": list(self._events)[-RECENT_EVENTS:][::-1],
                       "timeline": [(event.get("ts"), event["event"]) for event in self._events]},
            "dead_letters": {"counts": dict(self._dead_letters),
                             "buckets": [(start, dict(counts)) for start, counts in buckets]},
        }


def _spread(final: dict, upwards: bool) -> dict:
    """How the per-key final figures spread: quantiles, a histogram, and the worst keys (ties: more events first)."""
    if not final:
        return {"keys": 0, "quantiles": {}, "histogram": [], "worst": []}
    keys = list(final)
    values = np.fromiter((figure[0] for figure in final.values()), dtype=float, count=len(final))
    counts = np.fromiter((figure[1] for figure in final.values()), dtype=np.int64, count=len(final))
    finite = np.isfinite(values)
    shown = values[finite]
    quantiles = dict(zip(map(str, QUANTILES), np.quantile(shown, QUANTILES).tolist())) if shown.size else {}
    histogram = []
    if shown.size:
        heights, edges = np.histogram(shown, bins=HISTOGRAM_BINS)
        histogram = [(edges[i], edges[i + 1], int(heights[i])) for i in range(len(heights))]
    # Worst first: lowest values when bigger is better, then the keys judged on more events.
    order = np.lexsort((-counts, values if upwards else -values))
    worst = [{"key": keys[i], "value": float(values[i]), "n": int(counts[i])} for i in order[:WORST_KEYS]]
    return {"keys": len(final), "quantiles": quantiles, "histogram": histogram, "worst": worst}


def _rates(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Labelled events per second between successive all-keys reports at least a second apart."""
    rates, last = [], None
    for ts, n in points:
        if last is not None and ts - last[0] >= 1.0:
            rates.append((ts, (n - last[1]) / (ts - last[0])))
            last = (ts, n)
        elif last is None:
            last = (ts, n)
    return rates
