"""A ``riverflink serve`` process for a test, and a plain HTTP client to ask it.

The server is the real command in a process of its own, stopped by its pid;
the client is the standard library's ``http.client``, so nothing of the
server's own stack answers for it.
"""

import contextlib
import http.client
import json
import pathlib
import subprocess
import sys
import time

from jobs.local.processes import end, free_ports, launch

__all__ = ["Client", "serve_process", "serve_in_thread", "until"]


class Client:
    """Requests to one server, each on a connection of its own; answers are ``(status, parsed JSON or text)``."""

    def __init__(self, port: int, token: str | None = None):
        self.port = port
        self.token = token

    def request(self, method: str, path: str, body: bytes | str | None = None, token: str | None = None,
                headers: dict | None = None) -> tuple[int, object]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            sent = dict(headers or {})
            token = token or self.token
            if token is not None:
                sent["Authorization"] = f"Bearer {token}"
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        if response.getheader("content-type", "").startswith("application/json"):
            return response.status, json.loads(text)
        return response.status, text

    def predict(self, request, **options) -> tuple[int, object]:
        return self.request("POST", "/predict", json.dumps(request), **options)

    def healthy(self) -> bool:
        try:
            return self.request("GET", "/health")[0] == 200
        except OSError:
            return False


@contextlib.contextmanager
def serve_process(log: pathlib.Path, *arguments: str, timeout: float = 60):
    """Run ``riverflink serve ARGUMENTS`` on a free port until the block ends; yields a :class:`Client`.

    Waits until ``/health`` answers 200 (what the destination held is loaded).
    """
    port = free_ports(1)[0]
    command = [sys.executable, "-m", "jobs.cli", "serve", "--port", str(port), *arguments]
    process = launch(command, log, cwd=pathlib.Path(__file__).resolve().parents[2])
    try:
        client = Client(port)
        deadline = time.monotonic() + timeout
        while not client.healthy():
            if process.poll() is not None:
                raise AssertionError(f"riverflink serve exited with {process.returncode}: {log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"riverflink serve not healthy after {timeout} s: {log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield client
    finally:
        end([process])
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)


@contextlib.contextmanager
def serve_in_thread(app, token: str | None = None):
    """Run the ASGI ``app`` under uvicorn in a thread of this process until the block ends; yields a :class:`Client`."""
    import threading

    import uvicorn

    port = free_ports(1)[0]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, loop="asyncio", http="httptools",
                                           lifespan="on", access_log=False, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError("uvicorn did not start")
            time.sleep(0.02)
        yield Client(port, token)
    finally:
        server.should_exit = True
        thread.join(10)


def until(condition, timeout: float = 10.0) -> bool:
    """Whether ``condition()`` came true within ``timeout`` seconds (an in-process server's followers read in threads)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
