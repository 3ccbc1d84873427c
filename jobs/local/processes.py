"""The processes of riverflink's local services (a Flink cluster, a Kafka broker): started, recorded, stopped by pid.

A service outlives the command that starts it, so the pids of its processes
are recorded in a file in the service's own folder (:class:`PidFile`), and a
later command stops them from that record. Pids are reused once a process is
gone: a recorded pid still counts as the service's only while the process's
command line (``/proc/PID/cmdline``) holds the arguments that name that
folder. Nothing is ever found or stopped by its name.
"""

import dataclasses
import json
import logging
import os
import pathlib
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping

from state.exceptions import RiverflinkError

__all__ = ["PidFile", "command_line", "launch", "wait_until_ready", "end", "free_ports", "STOP_TIMEOUT_S"]

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30  # how long a process gets to stop after SIGTERM before it is killed


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports, for a service that must not collide with anything (tests, benchmarks).

    Parameters
    ----------
    count
        How many ports.

    Returns
    -------
    list[int]
        ``count`` ports, all different, free when this returns.

    Examples
    --------
    >>> ports = free_ports(3)
    >>> len(set(ports))
    3
    """
    probes = [socket.socket() for _ in range(count)]  # held open together, so no port repeats
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def command_line(pid: int) -> bytes:
    """The command line of process ``pid``, its arguments separated by NUL bytes; ``b""`` once it is gone.

    Parameters
    ----------
    pid
        The process.

    Examples
    --------
    >>> import os
    >>> b"python" in command_line(os.getpid())
    True
    >>> command_line(2**22 + 1)  # above any pid Linux gives out
    b''
    """
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def _started_with(pid: int, arguments: Iterable[str]) -> bool:
    """Whether process ``pid`` runs and each of ``arguments`` is one of its command-line arguments."""
    command = command_line(pid)
    return bool(command) and all(argument.encode() in command.split(b"\0") for argument in arguments)


def launch(command: list[str], log: pathlib.Path, **options) -> subprocess.Popen:
    """Start ``command`` in a session of its own, its output appended to ``log``.

    Its own session keeps the process alive after the caller exits, and out of
    the caller's Ctrl-C.

    Parameters
    ----------
    command
        The program and its arguments.
    log
        The file that gets the process's standard output and error.
    **options
        More arguments of :class:`subprocess.Popen` (``env``, ``cwd``).

    Returns
    -------
    subprocess.Popen
        The started process.
    """
    with log.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **options)


def wait_until_ready(ready: Callable[[], bool], started: Mapping[str, subprocess.Popen], timeout: float,
                     waiting_for: str, log: pathlib.Path, poll: float = 1.0) -> None:
    """Poll ``ready()`` until it holds, while every process in ``started`` runs.

    Parameters
    ----------
    ready
        The condition, asked every ``poll`` seconds.
    started
        The processes that make the service ready, by the name an error gives them.
    timeout
        Seconds to wait at the most.
    waiting_for
        What ``ready()`` means, for the error after ``timeout``.
    log
        Where the service's logs are, named by the error.
    poll
        Seconds between two polls.

    Raises
    ------
    RiverflinkError
        If one of ``started`` exits first, or ``ready()`` does not hold within ``timeout``. The
        processes are left running: the caller ends them (:func:`end`) along with its own records.
    """
    deadline = time.monotonic() + timeout
    while True:
        exited = [f"{name} (status {process.returncode})" for name, process in started.items()
                  if process.poll() is not None]
        if exited:
            raise RiverflinkError(f"{', '.join(exited)} exited while starting; see {log}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise RiverflinkError(f"timed out after {timeout} s waiting for {waiting_for}; see {log}")
        time.sleep(poll)


def end(started: Iterable[subprocess.Popen], timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop processes this process started (a service that failed to start): SIGTERM, then SIGKILL after ``timeout``.

    By their :class:`subprocess.Popen`, so even one that has not yet become the
    program its command line names (a script before its ``exec``) is stopped.

    Parameters
    ----------
    started
        The processes.
    timeout
        Seconds each gets to stop after SIGTERM.
    """
    started = list(started)
    for process in started:
        if process.poll() is None:
            process.terminate()
    for process in started:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclasses.dataclass(frozen=True)
class PidFile:
    """The record of a local service's processes: a JSON object of pids by name, in the order they started.

    Parameters
    ----------
    path
        The file, in the service's own folder.
    arguments
        Command-line arguments that every process of the service has and no
        other process does (a path inside the service's folder): a recorded pid
        whose process lacks them is no longer the service's.

    Examples
    --------
    >>> import shutil, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> sleeper = launch(["sleep", "600"], folder / "sleep.log")
    >>> record = PidFile(folder / "processes.json", arguments=("sleep", "600"))
    >>> record.record({"sleeper": sleeper.pid, "long gone": 2**22 + 1})
    >>> wait_until_ready(lambda: bool(record.running()), {"sleeper": sleeper}, 10, "sleep to start",
    ...                  folder / "sleep.log", poll=0.05)  # until the child has exec'ed into sleep
    >>> list(record.running())
    ['sleeper']
    >>> record.stop() == {"sleeper": sleeper.pid}
    True
    >>> sleeper.wait(), record.running()
    (-15, {})
    >>> shutil.rmtree(folder)
    """

    path: pathlib.Path
    arguments: tuple[str, ...]

    def record(self, pids: Mapping[str, int]) -> None:
        """Record ``pids`` (by name, in the order they started) as the service's processes."""
        self.path.write_text(json.dumps(dict(pids)))

    def running(self) -> dict[str, int]:
        """The recorded processes that still run as the service's, by name, in the order they started."""
        if not self.path.exists():
            return {}
        recorded = json.loads(self.path.read_text())
        return {name: pid for name, pid in recorded.items() if _started_with(pid, self.arguments)}

    def remove(self) -> None:
        """Forget the record (the processes are stopped, or never became ready)."""
        self.path.unlink(missing_ok=True)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> dict[str, int]:
        """Stop the recorded processes that still run, the last started first, then forget the record.

        Each gets SIGTERM; those still running ``timeout`` seconds later get SIGKILL.

        Parameters
        ----------
        timeout
            Seconds the processes get to stop after SIGTERM.

        Returns
        -------
        dict[str, int]
            The processes that were running, by name.
        """
        running = self.running()
        for pid in reversed(running.values()):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(_started_with(pid, self.arguments) for pid in running.values()) and time.monotonic() < deadline:
            time.sleep(0.2)
        for name, pid in running.items():
            if _started_with(pid, self.arguments):
                logger.warning("%s (pid %d) did not stop within %d s; killing it", name, pid, timeout)
                os.kill(pid, signal.SIGKILL)
        self.remove()
        return running
