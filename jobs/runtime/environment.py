"""A StreamExecutionEnvironment configured from Settings: the only place that knows a job's Flink option names.

For a job submitted to a cluster, it also ships riverflink's own packages
with it. What Flink's Python workers start with (their PYTHONPATH, with
``worker_boot/``, and a fixed hash seed) is set where the JVM starts,
``jobs.runtime.jvm``.
"""

import atexit
import functools
import os
import pathlib
import shutil
import sys
import tempfile

from pyflink.common import Configuration
from pyflink.datastream import CheckpointingMode, RuntimeExecutionMode, StreamExecutionEnvironment
from pyflink.java_gateway import get_gateway
from pyflink.util.java_utils import get_j_env_configuration

from jobs.runtime.jars import kafka_connector_jar, operators_jar
from jobs.runtime.jvm import PROJECT_ROOT, python_path, start_jvm
from jobs.runtime.prometheus_reporter import FACTORY, client_jars, reporter_options
from jobs.settings import Settings, local_path
from state.exceptions import SettingsError

__all__ = ["create_environment", "flink_configuration", "prepare_environment"]

# What a job ships to a cluster's workers (with their subpackages: jobs.cli, jobs.local, jobs.runtime, ...),
# and what worker_boot/sitecustomize.py forgets of an earlier job.
CODE_PACKAGES = ("jobs", "operators", "state")
# Restarts after a failure: 1, 2, 4, 8, 16, 30 s apart, then the job fails. Long enough to outlast
# a lost TaskManager's heartbeat timeout; short enough that a job broken for good fails within
# about a minute instead of retrying forever (Flink's default with checkpointing).
RESTART_ATTEMPTS = 6
RESTART_BACKOFF = ("1 s", "30 s")
RESTART_JITTER = "0.1"  # each delay up to 10 % longer or shorter, so many failed jobs do not restart in step


def _as_uri(path: str) -> str:
    """A local path (or ``file:`` URI) as an absolute ``file:`` URI; any other URI (``s3://``) as it is."""
    local = local_path(path)
    return path if local is None else local.resolve().as_uri()


def flink_configuration(settings: Settings, checkpoint_dir: str | None) -> Configuration:
    """The job's Flink options.

    Parameters
    ----------
    settings
        The job's settings.
    checkpoint_dir
        Where checkpoints go; None leaves checkpoint storage to the cluster's configuration.

    Returns
    -------
    pyflink.common.Configuration
        The options, ``settings.flink_options`` last so that they win.
    """
    # Before the first Flink object, even a Configuration: the JVM's environment is the workers'.
    gateway = start_jvm(extra_jars=client_jars(settings))
    config = Configuration()
    config.set_string("python.executable", sys.executable)
    config.set_string("python.client.executable", sys.executable)
    config.set_string("python.execution-mode", settings.execution_mode)
    config.set_string("execution.buffer-timeout.interval", settings.profile.buffer_timeout)
    config.set_string("state.backend.type", settings.state_backend)
    if settings.state_backend == "rocksdb":
        # Each checkpoint uploads only the files RocksDB wrote since the one before: with millions of
        # keys, copying the whole state every interval would outlast the interval.
        config.set_string("execution.checkpointing.incremental", "true")
    config.set_string("restart-strategy.type", "exponential-delay")
    config.set_string("restart-strategy.exponential-delay.initial-backoff", RESTART_BACKOFF[0])
    config.set_string("restart-strategy.exponential-delay.max-backoff", RESTART_BACKOFF[1])
    config.set_string("restart-strategy.exponential-delay.backoff-multiplier", "2.0")
    config.set_string("restart-strategy.exponential-delay.attempts-before-reset-backoff", str(RESTART_ATTEMPTS))
    config.set_string("restart-strategy.exponential-delay.jitter-factor", RESTART_JITTER)
    # A slow Python operator holds aligned barriers behind in-flight records.
    config.set_string("execution.checkpointing.unaligned.enabled", "true")
    if checkpoint_dir is not None:
        # Always a file system: the JobManager's in-memory storage refuses state over 5 MB.
        config.set_string("execution.checkpointing.dir", _as_uri(checkpoint_dir))
    if settings.checkpoint_dir is not None:  # a place the user chose: keep the last checkpoint to resume from
        config.set_string("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    if settings.from_savepoint is not None:
        config.set_string("execution.state-recovery.path", _as_uri(settings.from_savepoint))
        config.set_string("execution.state-recovery.ignore-unclaimed-state",
                          str(settings.allow_non_restored_state).lower())
    if settings.jobmanager is not None:
        host, _, port = settings.jobmanager.rpartition(":")
        config.set_string("execution.target", "remote")
        config.set_string("rest.address", host)
        config.set_string("rest.port", port)
        config.set_string("execution.attached", str(not settings.detached).lower())
    if settings.prometheus_port is not None:
        _check_reporter_loads(gateway)
        for key, value in reporter_options(settings.prometheus_port):
            config.set_string(key, value)
    for key, value in settings.flink_options:
        config.set_string(key, value)
    return config


def _check_reporter_loads(gateway) -> None:
    """Refuse a reporter the mini-cluster would not find: a JVM started before without its jar."""
    try:
        gateway.jvm.java.lang.Class.forName(FACTORY)
    except Exception as exc:  # Py4J's error: the class is not on the running JVM's classpath
        raise SettingsError(
            "--prometheus-port: this process's JVM started without Flink's Prometheus reporter on its classpath; "
            "start the run in a new process (riverflink run does)") from exc


@functools.cache
def _code_bundle() -> pathlib.Path:
    """A folder holding only riverflink's packages, to ship with a job; removed when this process exits.

    Flink puts a shipped folder itself on the workers' PYTHONPATH, so the
    packages must be inside one: shipping ``operators/`` alone would make
    ``import learner_function`` work, not ``import operators.learner_function``.
    """
    bundle = pathlib.Path(tempfile.mkdtemp(prefix="riverflink-code-"))
    atexit.register(shutil.rmtree, bundle, ignore_errors=True)
    for package in CODE_PACKAGES:
        shutil.copytree(PROJECT_ROOT / package, bundle / package, ignore=shutil.ignore_patterns("__pycache__"))
    return bundle


def create_environment(settings: Settings, checkpoint_dir: str | None) -> StreamExecutionEnvironment:
    """An environment for ``settings``, checkpointing to ``checkpoint_dir``; STREAMING mode even for bounded inputs.

    BATCH mode would discard a key's state when it moves on to the next key and
    does not keep per-key order, both fatal to per-key online learning.

    Parameters
    ----------
    settings
        The job's settings: a ``jobmanager`` makes a remote environment that
        ships riverflink's packages with the job; none, the mini-cluster in this process.
    checkpoint_dir
        Where checkpoints go (see :func:`flink_configuration`).

    Returns
    -------
    pyflink.datastream.StreamExecutionEnvironment
        With riverflink's Java operators (and the Kafka connector when the job reads
        Kafka) on its class path, its parallelism and exactly-once checkpointing set.
    """
    # Fetched or built before the JVM is asked for anything.
    jars = [operators_jar().as_uri()]
    if settings.kafka.bootstrap:
        jars.append(kafka_connector_jar().as_uri())
    config = flink_configuration(settings, checkpoint_dir)
    if settings.jobmanager is None:
        env = StreamExecutionEnvironment.get_execution_environment(config)
    else:
        # get_execution_environment() outside `flink run` always builds a local environment,
        # whatever execution.target says; the plain constructor honours "remote".
        java_environment = get_gateway().jvm.org.apache.flink.streaming.api.environment.StreamExecutionEnvironment
        env = StreamExecutionEnvironment(java_environment(config._j_configuration))
    if jars:
        env.add_jars(*jars)
    if settings.jobmanager is not None:  # the cluster's Python workers import riverflink's operators
        env.add_python_file(str(_code_bundle()))
    env.set_runtime_mode(RuntimeExecutionMode.STREAMING)
    env.set_parallelism(settings.parallelism)
    env.enable_checkpointing(Settings.ms(settings.checkpoint_interval), CheckpointingMode.EXACTLY_ONCE)
    return env


def prepare_environment(env: StreamExecutionEnvironment, settings: Settings) -> None:
    """Add what the learner needs to an environment someone else made: riverflink's jar and code, the workers' options.

    ``operators.learn_per_key`` calls it on the environment of a user's own
    stream. What the user set stays: their runtime mode, checkpointing,
    parallelism and state backend are theirs to choose.

    Parameters
    ----------
    env
        The user's environment (``StreamExecutionEnvironment.get_execution_environment()``, or ``flink run``'s).
    settings
        The learner's settings: its ``execution_mode``.

    Raises
    ------
    SettingsError
        If the environment runs in BATCH mode, or its Python functions in another execution mode than
        ``settings.execution_mode``.
    """
    config = get_j_env_configuration(env._j_stream_execution_environment)
    if (config.getString("execution.runtime-mode", None) or "STREAMING").upper() == "BATCH":
        raise SettingsError("learn_per_key needs execution.runtime-mode STREAMING: BATCH mode drops a key's state "
                            "when it moves on to the next key and does not keep each key's order")
    mode = config.getString("python.execution-mode", None)
    if mode is not None and mode != settings.execution_mode:
        raise SettingsError(f"the environment runs Python functions in {mode} mode, and learn_per_key was asked for "
                            f"execution_mode={settings.execution_mode!r}: set one for both")
    config.setString("python.execution-mode", settings.execution_mode)
    for key in ("python.executable", "python.client.executable"):
        if config.getString(key, None) is None:
            config.setString(key, sys.executable)
    # Flink's embedded interpreter (thread mode) starts from the base installation: it needs this
    # environment's packages and the worker boot on its path, as jobs.runtime.jvm gives riverflink's own runs.
    paths = [p for p in (config.getString("python.pythonpath", None) or "").split(os.pathsep) if p]
    config.setString("python.pythonpath", os.pathsep.join(dict.fromkeys([*paths, *python_path(False).split(os.pathsep)])))
    jar = operators_jar().as_uri()
    if jar not in (config.getString("pipeline.jars", None) or ""):
        env.add_jars(jar)
    bundle = str(_code_bundle())
    if bundle not in (config.getString("python.files", None) or ""):
        env.add_python_file(bundle)
