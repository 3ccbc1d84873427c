"""Imports river's native dependencies once, while Flink's embedded interpreter starts.

In thread mode (pemja), Flink runs Python in its task threads with thread
states the ``PyGILState`` API does not know. The first import of a pybind11
extension (scipy's, pulled in by ``river.metrics``) from such a thread
deadlocks the task for good. Python imports ``sitecustomize`` during
interpreter start-up, on the thread that owns the interpreter, so importing
those extensions here makes the later imports from task threads mere lookups.
This directory is put on the workers' PYTHONPATH by ``jobs.flink_env``.
"""

import river.anomaly  # noqa: F401
import river.cluster  # noqa: F401
import river.metrics  # noqa: F401  (imports scipy.stats, scipy.spatial)
import river.time_series  # noqa: F401
