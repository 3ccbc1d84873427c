"""Peak memory of the processes a benchmark measures, from /proc (found by parentage, never by name)."""

import os
import pathlib

__all__ = ["peak_rss_mib", "status_mib", "java_descendants"]


def status_mib(pid: int, field: str) -> float:
    """A memory field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``, ...) in MiB; 0 once the process is gone."""
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size so far (VmHWM); 0 once it is gone."""
    return status_mib(pid, "VmHWM")


def java_descendants(pid: int | None = None) -> list[int]:
    """The JVMs among the descendants of ``pid`` (default: this process), e.g. the mini-cluster's."""
    parents = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            name, fields = stat.read_text().rsplit(")", 1)
        except (FileNotFoundError, ProcessLookupError):
            continue
        parents[int(stat.parent.name)] = (int(fields.split()[1]), name.partition("(")[2])
    found, frontier = [], [os.getpid() if pid is None else pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, (ppid, _) in parents.items() if ppid == parent]
        found += [child for child in children if parents[child][1] == "java"]
        frontier += children
    return found
