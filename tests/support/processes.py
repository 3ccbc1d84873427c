"""Finding the processes a test's processes started, from /proc (never by name), and letting a test Ctrl-C them.

A process's command line is :func:`jobs.local.processes.command_line`, the
one riverflink's local services are recognised by.
"""

import pathlib
import signal

__all__ = ["descendants", "interruptible"]


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, whichever of its threads started it."""
    parents = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def interruptible() -> None:
    """``preexec_fn`` for a child that a test stops with SIGINT, as Ctrl-C would.

    A shell starts background commands with SIGINT ignored, and children
    inherit that: a suite run in the background would see every Ctrl-C test
    time out. The child gets SIGINT's default back, and so its
    KeyboardInterrupt.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
