"""The client's JVM (PyFlink's gateway): started with what Flink's Python workers need, and as early as a run knows it needs one.

A run's client spends about a second on one core importing river and
PyFlink and loading its models before it asks Flink for anything; the JVM's
start, about 0.6 s in a process of its own, can run beside that instead of
after it (``start_jvm_early``). This module imports only PyFlink's gateway
for that reason.
"""

import contextlib
import os
import pathlib
import signal
import site
import threading
import time

import pyflink.java_gateway
from pyflink.java_gateway import get_gateway

from jobs.runtime.class_archive import archive_options, note_writer, partial_written

__all__ = ["start_jvm", "start_jvm_early", "stop_jvm", "expose_worker_environment", "python_path", "PROJECT_ROOT", "WORKER_BOOT", "WORKER_HASH_SEED"]

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[2]  # holds jobs/, operators/, state/
WORKER_BOOT = pathlib.Path(__file__).resolve().parent / "worker_boot"  # see its sitecustomize.py
WORKER_HASH_SEED = "0"

_early_start: threading.Thread | None = None
_early_failure: list[BaseException] = []  # what the early start raised, raised again by start_jvm


def _expose_python_path() -> None:
    """Let Python workers import pyflink, river and this project.

    In thread mode, Flink embeds an interpreter (pemja) that starts from the
    base installation, not from the virtual environment running the client:
    without PYTHONPATH it cannot even import pemja. The JVM inherits this
    process's environment, so this must run before the first Flink call.
    """
    os.environ["PYTHONPATH"] = python_path()


def python_path(include_project: bool = True) -> str:
    """PYTHONPATH for Flink's Python workers: this project, the worker boot, this environment's packages.

    Parameters
    ----------
    include_project
        Whether the project's own folder comes first. A cluster's workers get the
        project from each job instead (False): ``create_environment`` ships it, so
        a job runs the code of the client that submitted it.

    Returns
    -------
    str
        The folders, separated by ``os.pathsep``, then this process's own PYTHONPATH.

    Examples
    --------
    >>> path = python_path(include_project=False).split(os.pathsep)
    >>> str(WORKER_BOOT) in path, str(PROJECT_ROOT) in path
    (True, False)
    """
    wanted = [str(PROJECT_ROOT)] if include_project else []
    wanted += [str(WORKER_BOOT), *site.getsitepackages()]
    # This process's own PYTHONPATH may hold the project already (an earlier in-process job put it there).
    current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(PROJECT_ROOT)]
    return os.pathsep.join(dict.fromkeys(wanted + current))


def _pin_hash_seed() -> None:
    """Give Python workers a fixed hash seed unless the user chose one.

    Some river models iterate over sets of feature names (KMeans' distances,
    for one), so their results depend on the interpreter's string hash seed.
    With a random seed per worker, a worker restarted after a failure would
    learn differently from the one it replaces, and the models after recovery
    would not equal those of an uninterrupted run.
    """
    os.environ.setdefault("PYTHONHASHSEED", WORKER_HASH_SEED)


def start_jvm(extra_jars=()):
    """The JVM's gateway, started now unless ``start_jvm_early`` did, with the environment workers need.

    Parameters
    ----------
    extra_jars
        Jars the JVM's own classpath needs beyond Flink's, if this call starts it (a reporter
        the mini-cluster must find there); a JVM that runs already is returned as it is.

    Raises
    ------
    Exception
        What starting the JVM raised (no Java, a broken Flink distribution), early or now.
    """
    if _early_start is not None:
        _early_start.join()
        if _early_failure:
            raise _early_failure[0]
    return _start(extra_jars=extra_jars)


def stop_jvm(timeout_s: float = 30.0) -> None:
    """End the client's JVM, and with it an embedded mini-cluster and its Python workers, and wait until it is gone.

    The JVM ends by itself when this process does; a run interrupted with
    Ctrl-C ends it first, so that a job still checkpointing into a temporary
    folder does not write into it while the folder is removed.

    Parameters
    ----------
    timeout_s
        How long to wait for the JVM's shutdown hooks before killing it.
    """
    if pyflink.java_gateway._gateway is None or "PYFLINK_GATEWAY_PORT" in os.environ:  # none, or not ours (flink run)
        return
    pid = get_gateway().jvm.java.lang.ProcessHandle.current().pid()
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Whether the child ``pid`` still runs; reaps it once it has ended."""
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:  # already reaped, or not this process's child
        return pathlib.Path(f"/proc/{pid}").exists()


def expose_worker_environment() -> None:
    """Put what Flink's Python workers start with (PYTHONPATH, hash seed) in this process's environment.

    A JVM started afterwards inherits it, whoever starts it: ``start_jvm``, or
    a user's own ``StreamExecutionEnvironment.get_execution_environment()``
    after importing ``operators.learn_per_key``.
    """
    _expose_python_path()
    _pin_hash_seed()


def _start(use: str | None = None, extra_jars=()):
    expose_worker_environment()
    if pyflink.java_gateway._gateway is not None:
        return get_gateway()
    with _extra_classpath(extra_jars):
        if use is None:  # no archive
            return get_gateway()
        options = archive_options(use)  # its name holds a digest of the classpath, extra jars included
        with _jvm_args(options):
            gateway = get_gateway()
    partial = partial_written(options)
    if partial is not None:
        note_writer(partial, gateway.jvm.java.lang.ProcessHandle.current().pid())
    return gateway


def _extra_classpath(jars):
    """``jars`` on the classpath of a gateway started in the block, through PyFlink's one hook for that.

    PyFlink builds the gateway's classpath from Flink's lib folder and
    ``HADOOP_CLASSPATH`` alone; the variable is as it was afterwards, so
    processes started later (a local cluster's) do not inherit the jars.
    """
    if not jars:
        return contextlib.nullcontext()
    return _variable_extended("HADOOP_CLASSPATH",
                              lambda before: os.pathsep.join([*map(str, jars), *filter(None, [before])]))


def _jvm_args(options: list[str]):
    """PyFlink's ``JVM_ARGS`` with ``options`` added while the gateway starts, and as they were afterwards."""
    return _variable_extended("JVM_ARGS", lambda before: " ".join([before or "", *options]).strip())


@contextlib.contextmanager
def _variable_extended(name: str, extend):
    """The environment variable ``name`` set to ``extend(its value or None)`` in the block, and as it was afterwards."""
    before = os.environ.get(name)
    os.environ[name] = extend(before)
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


def _start_noting_failure(use: str | None, extra_jars) -> None:
    try:
        _start(use, extra_jars)
    except BaseException as failure:  # raised again in the main thread, by start_jvm, where it is reported
        _early_failure.append(failure)


def start_jvm_early(use: str | None = None, extra_jars=()) -> None:
    """Start the JVM in a background thread; the next ``start_jvm`` waits for it.

    Call it once the run is known to go ahead (its settings are valid), before
    the slow imports: a run refused later only leaves a JVM that ends with this process.

    Parameters
    ----------
    use
        What the JVM is for (``mini-cluster``, ``cluster-client``): its classes are mapped from
        that use's archive (``jobs.runtime.class_archive``); None: no archive.
    extra_jars
        Jars the JVM's own classpath needs beyond Flink's (``start_jvm``).
    """
    global _early_start
    if _early_start is None:
        _early_start = threading.Thread(target=_start_noting_failure, args=(use, tuple(extra_jars)),
                                        name="riverflink-jvm-start",
                                        daemon=True)
        _early_start.start()
