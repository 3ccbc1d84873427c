"""A real headless Chromium (Debian's ``chromium`` package) driven over the DevTools protocol, for dashboard tests.

The protocol runs over a pipe (``--remote-debugging-pipe``: the browser reads
commands from its fd 3 and answers on fd 4, JSON messages ending in NUL), so
no WebSocket client is needed and no debugging port is opened. The browser is
started in a session of its own and stopped by its pid, its helper processes
with it (their process group is the browser's pid).
"""

import base64
import contextlib
import fcntl
import json
import os
import pathlib
import shutil
import signal
import subprocess
import time

import pytest

__all__ = ["chromium", "Page", "chromium_binary", "skip_without_chromium", "NO_CHROMIUM"]


NO_CHROMIUM = "no chromium on PATH: install Debian's chromium package (.ci/run does)"


def chromium_binary() -> str | None:
    """The Chromium on PATH, or None."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found is not None:
            return found
    return None


def skip_without_chromium() -> None:
    """Skip the test, saying why, where there is no Chromium."""
    if chromium_binary() is None:
        pytest.skip(NO_CHROMIUM)


class Page:
    """One tab, driven by DevTools commands over the browser's pipe."""

    def __init__(self, to_browser, from_browser):
        self._to, self._from = to_browser, from_browser
        self._buffer = b""
        self._next_id = 0
        target = self._command("Target.createTarget", url="about:blank")["targetId"]
        self._session = self._command("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable")

    def _command(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to, json.dumps(message).encode() + b"\0")
        while True:  # events and other answers arrive in between: skip them
            answer = self._read()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, **params) -> dict:
        """A command to this tab."""
        return self._command(method, self._session, **params)

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str):
        """Poll ``expression`` until it is truthy; returns its value. One that throws (before the page loads) is not."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value, thrown = self.evaluate(expression), None
            except AssertionError as exc:
                value, thrown = None, exc
            if value:
                return value
            if time.monotonic() > deadline:
                text = self.evaluate("document.body ? document.body.innerText.slice(0, 3000) : ''")
                raise AssertionError(f"the page never showed {what} in {timeout} s (last: {thrown or value!r}); "
                                     f"it says: {text}")
            time.sleep(0.2)

    def screenshot(self, path: pathlib.Path, width: int = 1400, height: int = 1800) -> None:
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))


@contextlib.contextmanager
def chromium(folder: pathlib.Path):
    """A headless Chromium with a profile in ``folder``; yields a :class:`Page`, stops the browser after."""
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError(NO_CHROMIUM)
    commands_read, commands_write = os.pipe()
    answers_read, answers_write = os.pipe()
    folder.mkdir(parents=True, exist_ok=True)

    def pipes_as_3_and_4():  # in the child, before it closes every fd but pass_fds
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (commands_read, answers_write)]  # out of 3 and 4's way
        os.dup2(high[0], 3)
        os.dup2(high[1], 4)

    with (folder / "chromium.log").open("ab") as log:
        process = subprocess.Popen(
            [binary, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", "--disable-sync", f"--user-data-dir={folder / 'profile'}",
             "about:blank"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, pass_fds=(3, 4),
            preexec_fn=pipes_as_3_and_4)
    os.close(commands_read)
    os.close(answers_write)
    try:
        yield Page(commands_write, answers_read)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        os.close(commands_write)
        os.close(answers_read)
