"""The checkout and the shell as a user would have them: the files git would commit, an environment without ours."""

import os
import pathlib
import shutil
import subprocess

from tests.support.models import ROOT

__all__ = ["project_copy", "user_environment"]


def project_copy(destination: pathlib.Path) -> pathlib.Path:
    """The files git would commit now (tracked and new), without the venv or build output."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


def user_environment() -> dict[str, str]:
    """This process's environment as a user's shell would have it: no Python path of the checkout or venv of
    this test run, and none of the Flink folders earlier tests or in-process jobs set."""
    return {key: value for key, value in os.environ.items()
            if key not in ("PYTHONPATH", "VIRTUAL_ENV") and not key.startswith("FLINK_")}
