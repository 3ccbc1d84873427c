"""riverflink as users install it: a wheel built from the checkout's files, in a fresh venv, run from any folder."""

import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from tests.support.models import ROOT
from tests.support.project import project_copy, user_environment

pytestmark = pytest.mark.minicluster

RUN = ["run", "--model", "regressor.py:model", "--input", "chick_weights.jsonl", "--out", "out",
       "--parallelism", "2", "--checkpoint-interval", "2"]


def _user_env() -> dict:
    """A user's environment (``user_environment``). A class archive for a venv gone after the test would only be
    cleared an hour later (jobs/runtime/class_archive.py)."""
    return {**user_environment(), "PYTHONHASHSEED": "0", "RIVERFLINK_CLASS_ARCHIVE": "off"}


@pytest.fixture(scope="module")
def wheel_build(tmp_path_factory) -> tuple[pathlib.Path, str]:
    """The wheel built from a copy of the files git would commit, and pip's build output."""
    work = tmp_path_factory.mktemp("wheel")
    source = project_copy(work / "source")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(work / "dist"), str(source)],
                           capture_output=True, text=True, timeout=600, env=_user_env())
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (work / "dist").glob("riverflink-*.whl")
    return wheel, built.stdout + built.stderr


@pytest.fixture(scope="module")
def venv(wheel_build, tmp_path_factory) -> pathlib.Path:
    """A fresh venv of this Python with the wheel and its dependencies installed."""
    folder = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=120)
    try:
        installed = subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel_build[0])],
                                   capture_output=True, text=True, timeout=1200, env=_user_env())
        assert installed.returncode == 0, installed.stdout + installed.stderr
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # a gigabyte; pytest keeps old tmp dirs around


def test_the_wheel_builds_without_setuptools_warnings(wheel_build):
    warnings = re.findall(r".*Setuptools\w*Warning.*", wheel_build[1])
    assert not warnings, "\n".join(warnings)


def test_the_installed_package_holds_its_code_java_sources_and_worker_boot(venv, tmp_path):
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import jobs, operators, state; from jobs.runtime import jars, jvm; "
         "print(jobs.__file__); print(*sorted(p.name for p in jars.JAVA_SOURCES.rglob('*.java'))); "
         "print((jvm.WORKER_BOOT / 'sitecustomize.py').is_file())"],
        cwd=tmp_path, capture_output=True, text=True, check=True, env=_user_env(), timeout=60,
    ).stdout.splitlines()
    assert pathlib.Path(where[0]).is_relative_to(venv), where[0]
    assert where[1].split() == sorted(p.name for p in (ROOT / "operators" / "java").rglob("*.java"))
    assert where[2] == "True"


def test_riverflink_run_from_any_folder_prints_what_the_checkout_prints(venv, tmp_path):
    summaries = []
    for place, command in (("installed", [str(venv / "bin" / "riverflink")]),
                           ("checkout", [sys.executable, "-m", "jobs.cli"])):
        folder = tmp_path / place
        folder.mkdir()
        shutil.copy(ROOT / "examples" / "regressor.py", folder)
        shutil.copy(ROOT / "examples" / "data" / "chick_weights.jsonl", folder)
        env = _user_env() if place == "installed" else {**_user_env(), "PYTHONPATH": str(ROOT)}
        done = subprocess.run([*command, *RUN], cwd=folder, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        summaries.append(done.stdout.splitlines()[1:])  # after the job's duration
    assert summaries[0] == summaries[1]
    assert "578 events over 50 keys" in summaries[0][0]
