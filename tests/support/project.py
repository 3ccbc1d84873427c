"""The checkout as a user would get it: the files git would commit, copied somewhere else."""

import pathlib
import shutil
import subprocess

from tests.support.models import ROOT

__all__ = ["project_copy"]


def project_copy(destination: pathlib.Path) -> pathlib.Path:
    """The files git would commit now (tracked and new), without the venv or build output."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination
