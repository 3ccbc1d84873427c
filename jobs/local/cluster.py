"""``riverflink cluster start|stop``: a local Flink standalone cluster from the distribution inside the apache-flink wheel.

One JobManager and N TaskManagers run as separate JVMs on 127.0.0.1, each
started in the foreground of its own process, so the pid we record is the
JVM's. The cluster gets its own configuration, log and pid folders; the
installed package is never modified, and ``stop`` ends only the processes
that ``start`` recorded, after checking each is still the one it started
(``jobs.local.processes``). Before ``start`` reports the cluster ready, it
runs a first job on every slot (``jobs.local.warm_up``).
"""

import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys
import urllib.request

from jobs.local.processes import PidFile, end, launch, wait_until_ready
from jobs.local.warm_up import warm_up
from jobs.runtime.jars import FLINK_HOME, cache_root
from jobs.runtime.jvm import WORKER_HASH_SEED, python_path
from jobs.runtime.prometheus_reporter import check_ports, reporter_options
from state.exceptions import RiverflinkError

__all__ = ["ClusterProcess", "start_cluster", "stop_cluster", "cluster_dir", "cluster_processes",
           "rest_get"]

START_TIMEOUT_S = 120
QUICK_JIT = "-XX:TieredStopAtLevel=1"  # the JobManager's and TaskManagers' JIT: see _configuration


@dataclasses.dataclass(frozen=True)
class ClusterProcess:
    """A JVM of a local cluster.

    Parameters
    ----------
    role
        ``"jobmanager"`` or ``"taskmanager"``.
    name
        The TaskManager's resource id (``tm-1``, ``tm-2``, ...), or ``"jobmanager"``.
    pid
        The JVM's pid.
    """

    role: str
    name: str
    pid: int

    @classmethod
    def named(cls, name: str, pid: int) -> "ClusterProcess":
        """The process called ``name`` in the cluster's pid file."""
        return cls("jobmanager" if name == "jobmanager" else "taskmanager", name, pid)


def cluster_dir(port: int) -> pathlib.Path:
    """Where the cluster whose REST API listens on ``port`` keeps config, logs and pids, by default.

    Parameters
    ----------
    port
        The port of the cluster's REST API on 127.0.0.1.
    """
    return cache_root() / f"flink-cluster-{port}"


def _configuration(port: int, rpc_port: int, slots: int, home: pathlib.Path,
                   prometheus_ports: str | None = None) -> list[str]:
    """Flink options (``key=value``) of the local cluster; jobs add their own on top."""
    reporter = [] if prometheus_ports is None else [f"{k}={v}" for k, v in reporter_options(prometheus_ports)]
    return reporter + [
        "jobmanager.rpc.address=127.0.0.1", f"jobmanager.rpc.port={rpc_port}", "jobmanager.bind-host=127.0.0.1",
        "rest.address=127.0.0.1", "rest.bind-address=127.0.0.1", f"rest.port={port}",
        "taskmanager.host=127.0.0.1", "taskmanager.bind-host=127.0.0.1",
        f"taskmanager.numberOfTaskSlots={slots}",
        # Python workers: this interpreter, which has riverflink and its dependencies.
        f"python.executable={sys.executable}", f"python.client.executable={sys.executable}",
        f"execution.checkpointing.dir={(home / 'checkpoints').as_uri()}",
        f"execution.checkpointing.savepoint-dir={(home / 'savepoints').as_uri()}",
        # Scratch space of this cluster alone. By default a TaskManager's working directory is
        # /tmp/tm_<resource id>: every local cluster's tm-1 would share one, and its job blobs would
        # pile up there (1.1 GB after 145 jobs) and be hashed again at each start (10 s of CPU).
        f"process.working-dir={home / 'work'}", f"io.tmp.dirs={home / 'tmp'}",
        # A TaskManager killed with -9 is declared lost after 10 s, not the default 50 s.
        "heartbeat.interval=2000", "heartbeat.timeout=10000",
        # Only the quick JIT compiler (C1): Python does the heavy work here, the Java around it is thin,
        # and C2's compiles otherwise take a core from the learners for the first tens of seconds.
        f"env.java.opts.jobmanager={QUICK_JIT}", f"env.java.opts.taskmanager={QUICK_JIT}",
    ]


def _prepare(home: pathlib.Path, options: list[str]) -> dict[str, str]:
    """Config and lib folders for the cluster, and the environment its JVMs start with."""
    conf, lib, log = home / "conf", home / "lib", home / "log"
    shutil.rmtree(conf, ignore_errors=True)
    shutil.rmtree(lib, ignore_errors=True)
    shutil.copytree(FLINK_HOME / "conf", conf)
    lib.mkdir(parents=True)
    log.mkdir(parents=True, exist_ok=True)
    # flink-python belongs in lib/ on a session cluster: from opt/ only, a TaskManager's
    # second thread-mode job fails to load pemja on JDK 17 (FLINK-37727).
    for jar in [*FLINK_HOME.glob("lib/*.jar"), *FLINK_HOME.glob("opt/flink-python-*.jar")]:
        (lib / jar.name).symlink_to(jar)
    env = {
        **os.environ,
        "FLINK_HOME": str(FLINK_HOME), "FLINK_CONF_DIR": str(conf), "FLINK_LIB_DIR": str(lib),
        "FLINK_LOG_DIR": str(log),
        # Thread mode embeds Python in the TaskManager: it needs the venv's packages and the
        # worker boot on its path, and one hash seed for every worker. Not the checkout:
        # riverflink's own code comes with each job, as on any other cluster.
        "PYTHONPATH": python_path(include_project=False),
        "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", WORKER_HASH_SEED),
    }
    arguments = [item for option in options for item in ("-D", option)]
    done = subprocess.run(["bash", str(FLINK_HOME / "bin" / "config-parser-utils.sh"), str(conf),
                           str(FLINK_HOME / "bin"), str(lib), *arguments], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RiverflinkError(f"could not write the cluster's Flink configuration: {done.stderr.strip()[-1000:]}")
    return env


def rest_get(port: int, path: str, timeout: float = 5) -> dict:
    """GET a JSON resource of the JobManager's REST API on 127.0.0.1:``port``.

    Parameters
    ----------
    port
        The REST API's port.
    path
        The resource, e.g. ``/overview`` or ``/jobs/<job id>``.
    timeout
        Seconds to wait for the answer.

    Returns
    -------
    dict
        The decoded JSON.
    """
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
        return json.loads(response.read())


def _overview(port: int) -> dict | None:
    """The cluster's ``/overview``, or None while nothing answers on ``port``."""
    try:
        return rest_get(port, "/overview", timeout=2)
    except OSError:  # urllib's URLError included
        return None


def _launch(env: dict, home: pathlib.Path, name: str, extra: list[str]) -> subprocess.Popen:
    """Start the JobManager (``name`` "jobmanager") or a TaskManager.

    ``start-foreground`` execs the JVM, so the process's pid is the JVM's.
    """
    script = FLINK_HOME / "bin" / ("jobmanager.sh" if name == "jobmanager" else "taskmanager.sh")
    return launch(["bash", str(script), "start-foreground", *extra], home / "log" / f"{name}.out", env=env, cwd=home)


def _pid_file(home: pathlib.Path) -> PidFile:
    """The pids of the cluster in ``home``: its JVMs are those started with its own configuration folder."""
    return PidFile(home / "processes.json", (str(home / "conf"),))


def start_cluster(taskmanagers: int = 1, slots: int = 1, port: int = 8081, rpc_port: int = 6123,
                  home: pathlib.Path | None = None, warm: bool = True,
                  prometheus_ports: str | None = None) -> list[ClusterProcess]:
    """Start the cluster and return its processes once every TaskManager has registered (and warmed up).

    Parameters
    ----------
    taskmanagers
        How many TaskManagers, each a JVM of its own.
    slots
        Task slots per TaskManager.
    port
        The port of the REST API and web UI on 127.0.0.1.
    rpc_port
        The JobManager's RPC port on 127.0.0.1.
    home
        The cluster's folder (configuration, logs, pids, checkpoints, scratch); :func:`cluster_dir` by default.
    warm
        Run :func:`jobs.local.warm_up.warm_up` before returning, so the first job starts as fast as later ones.
    prometheus_ports
        ``PORT`` or ``FIRST-LAST``: every JVM serves its metrics to Prometheus on the first free port
        of the range (``jobs.runtime.prometheus_reporter``); None: no reporter.

    Returns
    -------
    list[ClusterProcess]
        The JobManager, then the TaskManagers.

    Raises
    ------
    RiverflinkError
        If the cluster of ``home`` already runs, ``port`` already answers, or the cluster does not
        start or warm up; then every process it started is stopped.
    """
    if taskmanagers < 1 or slots < 1:
        raise RiverflinkError("a cluster needs at least one TaskManager with at least one slot")
    if prometheus_ports is not None:
        check_ports(prometheus_ports)
    home = pathlib.Path(home or cluster_dir(port)).resolve()
    if cluster_processes(home):
        raise RiverflinkError(f"a cluster started from {home} is already running; stop it first")
    if _overview(port) is not None:
        raise RiverflinkError(f"port {port} on 127.0.0.1 already answers as a Flink REST API")
    home.mkdir(parents=True, exist_ok=True)
    for scratch in (home / "work", home / "tmp"):  # a previous run's: no process of this cluster runs to recover it
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
    env = _prepare(home, _configuration(port, rpc_port, slots, home, prometheus_ports))
    started = {"jobmanager": _launch(env, home, "jobmanager", [])}
    for name in (f"tm-{number}" for number in range(1, taskmanagers + 1)):
        started[name] = _launch(env, home, name, ["-D", f"taskmanager.resource-id={name}"])
    pid_file = _pid_file(home)
    pid_file.record({name: process.pid for name, process in started.items()})
    try:
        wait_until_ready(lambda: (_overview(port) or {}).get("taskmanagers") == taskmanagers, started,
                         START_TIMEOUT_S, f"{taskmanagers} TaskManagers to register", home / "log")
        if warm:
            warm_up(f"127.0.0.1:{port}", taskmanagers * slots, home)
    except RiverflinkError:
        end(started.values())  # by Popen: even those not yet exec'ed into Java
        pid_file.remove()
        raise
    return [ClusterProcess.named(name, process.pid) for name, process in started.items()]


def cluster_processes(home: pathlib.Path) -> list[ClusterProcess]:
    """The recorded processes of the cluster in ``home`` that are still running.

    Parameters
    ----------
    home
        The folder the cluster was started from.
    """
    running = _pid_file(pathlib.Path(home).resolve()).running()
    return [ClusterProcess.named(name, pid) for name, pid in running.items()]


def stop_cluster(port: int = 8081, home: pathlib.Path | None = None) -> int:
    """Stop what ``start_cluster`` started from ``home``, TaskManagers first (the JobManager sees them go).

    Parameters
    ----------
    port
        The REST API's port, which names the cluster's default folder.
    home
        The folder the cluster was started from; :func:`cluster_dir` of ``port`` by default.

    Returns
    -------
    int
        How many of its processes were running.
    """
    home = pathlib.Path(home or cluster_dir(port)).resolve()
    return len(_pid_file(home).stop())
