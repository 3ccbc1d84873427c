"""How a command ends when it cannot go on: its exit status, and the one line a failed Flink job becomes.

A Flink job fails with a Java stack trace many screens long; a person needs
its innermost cause (``jobs.runtime.jvm_errors``), and where the rest is:
Flink's log folder.
"""

import os
import pathlib
import sys

from jobs.runtime.jars import FLINK_HOME
from jobs.runtime.jvm_errors import root_cause

__all__ = ["EXIT_USAGE", "EXIT_JOB_FAILED", "EXIT_INTERRUPTED", "FLINK_LOG_DIR", "report_job_failure"]

EXIT_USAGE = 2  # a refused option, model or input: nothing was started
EXIT_JOB_FAILED = 1
EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT
# Where Flink's own log goes: FLINK_LOG_DIR on a configured cluster image, else the wheel's log folder.
FLINK_LOG_DIR = pathlib.Path(os.environ.get("FLINK_LOG_DIR") or FLINK_HOME / "log")


def report_job_failure(what: str, exc: Exception) -> int:
    """Print that ``what`` failed, with its root cause and where the full trace is; return the exit status.

    Parameters
    ----------
    what
        What failed, as the line names it: ``job``, ``evaluation``.
    exc
        The error the Flink job raised.
    """
    print(f"riverflink: {what} failed: {root_cause(exc)} (full trace in {FLINK_LOG_DIR})", file=sys.stderr)
    return EXIT_JOB_FAILED
