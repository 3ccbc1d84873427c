"""Imports river's native dependencies once, while Flink's embedded interpreter starts.

In thread mode (pemja), Flink runs Python in its task threads with thread
states the ``PyGILState`` API does not know. The first import of a pybind11
extension (scipy's, pulled in by ``river.metrics``) from such a thread
deadlocks the task for good. Python imports ``sitecustomize`` during
interpreter start-up, on the thread that owns the interpreter, so importing
those extensions here makes the later imports from task threads mere lookups.
This directory is put on the workers' PYTHONPATH by ``jobs.runtime.environment``.

The interpreter also outlives jobs: riverflink's own modules stay imported
from the folder Flink unpacked the first job's code into, which Flink deletes
when that job ends. A later job would then run the first job's code, and fail
on any riverflink module the first did not import. So before Flink unpickles
a job's function here, riverflink's modules from another job's folder are
forgotten and imported again from this job's (``_forget_other_jobs_code``).

Every other Python process started with that PYTHONPATH skips the imports:
before a task's interpreter opens, Flink and pemja start the Python
executable four times to ask it about itself, and at 1.5 s of imports each
that was 6 s of every job's start-up. Only a process whose executable is the
JVM embeds an interpreter; where ``/proc`` cannot tell, the imports run.
"""

import os
import sys

CODE_PACKAGES = ("jobs", "operators", "state")  # what a job ships: jobs.runtime.environment.CODE_PACKAGES


def _embedded_in_a_jvm() -> bool:
    executable = "/proc/self/exe"
    return not os.path.exists(executable) or os.path.basename(os.path.realpath(executable)) == "java"


def _ours(name: str) -> bool:
    return name.partition(".")[0] in CODE_PACKAGES


def _forget_other_jobs_code() -> None:
    """Drop riverflink's modules if they came from another folder than the first on the path that has them.

    Flink puts the folder of the job being opened first on ``sys.path``.
    """
    folder = next((entry for entry in sys.path if os.path.isfile(os.path.join(entry, "operators", "__init__.py"))), None)
    if folder is None:
        return
    inside = os.path.join(os.path.realpath(folder), "")
    loaded = [module for name, module in sys.modules.items() if name in CODE_PACKAGES]
    if all(os.path.realpath(getattr(module, "__file__", None) or "").startswith(inside) for module in loaded):
        return
    for name in [name for name in sys.modules if _ours(name)]:
        del sys.modules[name]


def _unpickle_with_this_jobs_code() -> None:
    """Make PyFlink's loader of a job's functions (thread mode) forget other jobs' riverflink modules first."""
    from pyflink.fn_execution import pickle as function_pickle

    loads = function_pickle.loads

    def loads_with_this_jobs_code(payload):
        with function_pickle._lock:
            _forget_other_jobs_code()
            return loads(payload)

    function_pickle.loads = loads_with_this_jobs_code


if _embedded_in_a_jvm():
    import river.anomaly  # noqa: F401
    import river.cluster  # noqa: F401
    import river.metrics  # noqa: F401  (imports scipy.stats, scipy.spatial)
    import river.time_series  # noqa: F401
    _unpickle_with_this_jobs_code()
