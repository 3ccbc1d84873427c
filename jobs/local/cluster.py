"""``riverflink cluster start|stop``: a local Flink standalone cluster from the distribution inside the apache-flink wheel.

One JobManager and N TaskManagers run as separate JVMs on 127.0.0.1, each
started in the foreground of its own process, so the pid we record is the
JVM's. The cluster gets its own configuration, log and pid folders; the
installed package is never modified, and ``stop`` ends only the processes
that ``start`` recorded, after checking each is still the one it started.
"""

import dataclasses
import json
import logging
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from jobs.local.warm_up import warm_up
from jobs.runtime.environment import WORKER_HASH_SEED, python_path
from jobs.runtime.jars import FLINK_HOME, cache_root
from state.exceptions import RiverflinkError

__all__ = ["ClusterProcess", "start_cluster", "stop_cluster", "cluster_dir", "cluster_processes",
           "rest_get"]

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30
QUICK_JIT = "-XX:TieredStopAtLevel=1"  # the JobManager's and TaskManagers' JIT: see _configuration


@dataclasses.dataclass(frozen=True)
class ClusterProcess:
    role: str  # "jobmanager" or "taskmanager"
    name: str  # the TaskManager's resource id (tm-1, tm-2, ...), or "jobmanager"
    pid: int


def cluster_dir(port: int) -> pathlib.Path:
    """Where the cluster whose REST API listens on ``port`` keeps config, logs and pids, by default."""
    return cache_root() / f"flink-cluster-{port}"


def _configuration(port: int, rpc_port: int, slots: int, home: pathlib.Path) -> list[str]:
    """Flink options (``key=value``) of the local cluster; jobs add their own on top."""
    return [
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
    """GET a JSON resource of the JobManager's REST API on 127.0.0.1:``port``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
        return json.loads(response.read())


def _accepts_connections(port: int) -> bool:
    try:
        rest_get(port, "/overview", timeout=2)
        return True
    except (OSError, urllib.error.URLError):
        return False


def _launch(env: dict, home: pathlib.Path, role: str, name: str, extra: list[str]) -> subprocess.Popen:
    script = FLINK_HOME / "bin" / ("jobmanager.sh" if role == "jobmanager" else "taskmanager.sh")
    with (home / "log" / f"{name}.out").open("ab") as out:
        # start-foreground execs the JVM, so this pid is the JVM's; its own session keeps
        # it alive after the caller exits and out of the caller's Ctrl-C.
        process = subprocess.Popen(["bash", str(script), "start-foreground", *extra], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True, cwd=home)
    process.cluster_process = ClusterProcess(role, name, process.pid)
    return process


def start_cluster(taskmanagers: int = 1, slots: int = 1, port: int = 8081, rpc_port: int = 6123,
                  home: pathlib.Path | None = None, warm: bool = True) -> list[ClusterProcess]:
    """Start the cluster and return its processes once every TaskManager has registered.

    ``warm``: and has run ``jobs.local.warm_up``, so the first job starts as fast as later ones.
    """
    if taskmanagers < 1 or slots < 1:
        raise RiverflinkError("a cluster needs at least one TaskManager with at least one slot")
    home = pathlib.Path(home or cluster_dir(port)).resolve()
    if cluster_processes(home):
        raise RiverflinkError(f"a cluster started from {home} is already running; stop it first")
    if _accepts_connections(port):
        raise RiverflinkError(f"port {port} on 127.0.0.1 already answers as a Flink REST API")
    home.mkdir(parents=True, exist_ok=True)
    for scratch in (home / "work", home / "tmp"):  # a previous run's: no process of this cluster runs to recover it
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
    env = _prepare(home, _configuration(port, rpc_port, slots, home))
    launched = [_launch(env, home, "jobmanager", "jobmanager", [])]
    for number in range(1, taskmanagers + 1):
        name = f"tm-{number}"
        launched.append(_launch(env, home, "taskmanager", name, ["-D", f"taskmanager.resource-id={name}"]))
    processes = [process.cluster_process for process in launched]
    (home / "processes.json").write_text(json.dumps([dataclasses.asdict(p) for p in processes]))
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        dead = [process.cluster_process.name for process in launched if process.poll() is not None]
        if dead:
            _abandon(launched, home)
            raise RiverflinkError(f"{', '.join(dead)} exited while starting; see {home / 'log'}")
        if _accepts_connections(port) and rest_get(port, "/overview")["taskmanagers"] == taskmanagers:
            break
        time.sleep(1)
    else:
        _abandon(launched, home)
        raise RiverflinkError(f"the cluster did not have {taskmanagers} TaskManagers within {START_TIMEOUT_S} s")
    if warm:
        try:
            warm_up(f"127.0.0.1:{port}", taskmanagers * slots, home)
        except Exception as exc:
            _abandon(launched, home)
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise RiverflinkError(f"the cluster started but could not run its warm-up job ({first_line}); "
                                  f"see {home / 'log'}") from exc
    return processes


def _abandon(launched: list[subprocess.Popen], home: pathlib.Path) -> None:
    """Stop a cluster that failed to start: its processes by pid, even those not yet exec'ed into Java."""
    for process in launched:
        if process.poll() is None:
            process.terminate()
    for process in launched:
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    (home / "processes.json").unlink(missing_ok=True)


def _is_ours(pid: int, home: pathlib.Path) -> bool:
    """Whether ``pid`` is still a Flink JVM of the cluster in ``home`` (pids get reused)."""
    try:
        command = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return str(home / "conf").encode() in command


def cluster_processes(home: pathlib.Path) -> list[ClusterProcess]:
    """The recorded processes of the cluster in ``home`` that are still running."""
    record = pathlib.Path(home) / "processes.json"
    if not record.exists():
        return []
    recorded = [ClusterProcess(**fields) for fields in json.loads(record.read_text())]
    return [process for process in recorded if _is_ours(process.pid, pathlib.Path(home).resolve())]


def stop_cluster(port: int = 8081, home: pathlib.Path | None = None) -> int:
    """Stop what ``start_cluster`` started from ``home``; returns how many processes were running."""
    home = pathlib.Path(home or cluster_dir(port)).resolve()
    running = cluster_processes(home)
    for process in reversed(running):  # TaskManagers first: the JobManager sees them go
        os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while any(_is_ours(p.pid, home) for p in running) and time.monotonic() < deadline:
        time.sleep(0.2)
    for process in running:
        if _is_ours(process.pid, home):
            logger.warning("%s (pid %d) did not stop within %d s; killing it", process.name, process.pid,
                           STOP_TIMEOUT_S)
            os.kill(process.pid, signal.SIGKILL)
    (home / "processes.json").unlink(missing_ok=True)
    return len(running)
