"""The one line a person needs from a Java error that reached Python.

A Flink job fails in Python with a Java stack trace many screens long; its
innermost ``Caused by`` says what went wrong.
"""

__all__ = ["root_cause"]


def root_cause(exc: Exception) -> str:
    """The innermost "Caused by" of a JVM error, or the error itself when it has none.

    Parameters
    ----------
    exc
        The error a Flink call raised in Python; its text holds the Java stack trace.

    Examples
    --------
    >>> root_cause(RuntimeError("JobExecutionException: failed\\nCaused by: java.io.IOException: disk full"))
    'java.io.IOException: disk full'
    >>> root_cause(ValueError("no trace"))
    'ValueError: no trace'
    """
    causes = [line.strip() for line in str(exc).splitlines() if line.strip().startswith("Caused by:")]
    return causes[-1].removeprefix("Caused by:").strip() if causes else f"{type(exc).__name__}: {exc}"
