"""Imports river's native dependencies once, while Flink's embedded interpreter starts.

In thread mode (pemja), Flink runs Python in its task threads with thread
states the ``PyGILState`` API does not know. The first import of a pybind11
extension (scipy's, pulled in by ``river.metrics``) from such a thread
deadlocks the task for good. Python imports ``sitecustomize`` during
interpreter start-up, on the thread that owns the interpreter, so importing
those extensions here makes the later imports from task threads mere lookups.
This directory is put on the workers' PYTHONPATH by ``jobs.flink_env``.

Every other Python process started with that PYTHONPATH skips the imports:
before a task's interpreter opens, Flink and pemja start the Python
executable four times to ask it about itself, and at 1.5 s of imports each
that was 6 s of every job's start-up. Only a process whose executable is the
JVM embeds an interpreter; where ``/proc`` cannot tell, the imports run.
"""

import os


def _embedded_in_a_jvm() -> bool:
    executable = "/proc/self/exe"
    return not os.path.exists(executable) or os.path.basename(os.path.realpath(executable)) == "java"


if _embedded_in_a_jvm():
    import river.anomaly  # noqa: F401
    import river.cluster  # noqa: F401
    import river.metrics  # noqa: F401  (imports scipy.stats, scipy.spatial)
    import river.time_series  # noqa: F401
