"""A ``riverflink serve`` process for a benchmark: started, healthy, and stopped by PID at the end."""

import contextlib
import http.client
import pathlib
import time

from jobs.local.processes import end, launch

__all__ = ["get", "running_server"]

ROOT = pathlib.Path(__file__).resolve().parent.parent


def get(port: int, path: str, timeout: float = 10) -> tuple[int, bytes]:
    """``GET path`` from the server on ``port``: its status and body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def running_server(command: list[str], log: pathlib.Path, timeout: float):
    """Run ``command`` (a ``riverflink serve ... --port PORT``) until the block ends.

    Yields
    ------
    tuple of (subprocess.Popen, float)
        The process, and the seconds from its start until ``GET /health`` answered 200.
    """
    port = int(command[command.index("--port") + 1])
    started = time.perf_counter()
    process = launch(command, log, cwd=ROOT)
    try:
        while True:
            with contextlib.suppress(OSError):
                if get(port, "/health", timeout=2)[0] == 200:
                    break
            if process.poll() is not None:
                raise SystemExit(f"riverflink serve exited with {process.returncode}; see {log}:\n"
                                 f"{log.read_text()[-2000:]}")
            if time.perf_counter() - started > timeout:
                raise SystemExit(f"riverflink serve not healthy after {timeout:g} s; see {log}")
            time.sleep(0.05)
        yield process, time.perf_counter() - started
    finally:
        end([process])
