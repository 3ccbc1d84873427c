"""``GET /metrics`` of ``riverflink serve``: Prometheus text, ``riverflink_serve_*`` series.

Request counts and latencies are recorded per route; what the served models
hold (keys, restored models, bytes, how old the newest snapshot is) and each
model's all-keys metric (from the job's metrics the dashboard follows) are read
when Prometheus scrapes, so a request pays for none of it.
"""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

__all__ = ["ServeMetrics"]

# A prediction takes tens of microseconds; a restore or a batch, milliseconds.
LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class ServeMetrics:
    """The server's Prometheus series, in a registry of their own (two apps in one process do not clash).

    Parameters
    ----------
    served
        The served models (``jobs.serve.models.ServedModels``), read at scrape time.
    follower
        The thread following the models destination (``jobs.serve.followers.Follower``).
    board
        The dashboard's figures (``jobs.serve.dashboard.board.Board``), for each model's all-keys metric.
    """

    content_type = CONTENT_TYPE_LATEST.encode()

    def __init__(self, served, follower, board):
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("riverflink_serve_requests", "HTTP requests answered, by route and status",
                                ["route", "status"], registry=registry)
        self.latency = Histogram("riverflink_serve_request_seconds", "Time to answer a request, by route",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=registry)
        self.predictions = Counter("riverflink_serve_predictions", "Predictions answered (a list counts each item)",
                                   registry=registry)
        gauges = {
            "keys": ("Keys with a snapshot", lambda: len(served)),
            "models_restored": ("Keys whose model is restored in memory now", lambda: served.restored),
            "model_restores": ("Models restored from snapshot bytes so far", lambda: served.restores),
            "snapshot_bytes": ("Bytes of the snapshots held", lambda: served.snapshot_bytes),
            "snapshots_refused": ("Snapshots not kept because the key had a newer one", lambda: served.refused),
            "snapshot_records": ("Records read from the models destination", lambda: follower.records),
            "bad_snapshot_records": ("Records of the models destination that were no snapshot",
                                     lambda: follower.bad_records),
            "loaded": ("1 once what the models destination held at start is loaded",
                       lambda: int(follower.loaded.is_set())),
            "snapshot_lag_seconds": ("Seconds since the newest snapshot held was written by the job",
                                     lambda: time.time() - served.newest_ts if served.newest_ts else float("nan")),
        }
        for name, (documentation, read) in gauges.items():
            Gauge(f"riverflink_serve_{name}", documentation, registry=registry).set_function(read)
        registry.register(_ModelMetrics(board))
        self._children = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        children = self._children.get((route, status))
        if children is None:  # label lookups cost more than the update: keep each pair's children
            children = self._children[(route, status)] = (self.requests.labels(route, str(status)),
                                                          self.latency.labels(route))
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        """Every series in Prometheus' text format."""
        return generate_latest(self.registry)


class _ModelMetrics:
    """Each model's latest all-keys figure: ``riverflink_serve_model_metric{model, metric}`` and its labelled events."""

    def __init__(self, board):
        self.board = board

    def describe(self):  # the series exist only once metrics are read: nothing to check at registration
        return []

    def collect(self):
        value = GaugeMetricFamily("riverflink_serve_model_metric",
                                  "The job's latest all-keys progressive metric, by model (served: as served)",
                                  labels=["model", "metric"])
        labelled = GaugeMetricFamily("riverflink_serve_model_metric_labelled_events",
                                     "Labelled events behind riverflink_serve_model_metric, by model", labels=["model"])
        for model, record in self.board.overall().items():
            value.add_metric([model, str(record.get("metric"))], float(record["value"]))
            labelled.add_metric([model], record["n"])
        yield value
        yield labelled
