"""``riverflink``: the command line. Parses, validates, runs; prints for people.

Every refusal (bad option, unknown model, missing input) is one line on
stderr and a non-zero exit, before any Flink job is started. Each command
lives in a module of its own, imported only when it is the one chosen:
``run`` and ``evaluate`` bring in Flink, and nothing else should wait for it.
"""

import atexit
import gc
import importlib
import logging
import sys

from jobs.cli.failures import EXIT_USAGE
from jobs.cli.parser import build_parser
from state.exceptions import RiverflinkError

__all__ = ["main"]

# command -> the module of jobs.cli whose command(args) carries it out
COMMAND_MODULES = {
    "run": "run", "evaluate": "evaluate", "models": "models", "produce": "produce",
    "cluster": "local", "kafka": "local", "savepoint": "savepoints", "stop": "savepoints", "serve": "serve",
}


def main(argv: list[str] | None = None) -> int:
    """Run the ``riverflink`` command ``argv`` names; returns its exit status.

    Parameters
    ----------
    argv
        The arguments after the program's name; None: ``sys.argv[1:]``.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    module = importlib.import_module(f"jobs.cli.{COMMAND_MODULES[args.command]}")
    try:
        return module.command(args)
    except RiverflinkError as exc:
        print(f"riverflink: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if (3, 12, 0) <= sys.version_info[:3] < (3, 12, 3):
            # These refuse new threads once the interpreter shuts down (python/cpython#113964), and the
            # exit handler PyFlink registers to stop its loopback gRPC server starts one: a traceback
            # after every mini-cluster run. Run the exit handlers now, while threads may still start.
            atexit._run_exitfuncs()
        # The process ends next. Python's shutdown would walk every object of river, scipy and
        # pandas with the cyclic collector once more, 0.4 s after the work is done; a frozen heap
        # is skipped (atexit handlers, finalizers and reference counting still run).
        gc.freeze()
