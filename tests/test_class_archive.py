"""The client JVM's class archive: written by one run's JVM, checked, then mapped by the next; a broken one never used."""

import os
import pathlib
import subprocess
import sys
import time

import pytest

from jobs.runtime import class_archive
from jobs.runtime.class_archive import archive_options, archive_path, java_and_classpath, promote_finished
from jobs.runtime.jvm import PROJECT_ROOT

# Starts a client JVM for a use, as the CLI does, and prints where Flink's client classes came from.
CLIENT = """
import sys
from jobs.runtime.jvm import start_jvm, start_jvm_early
start_jvm_early(sys.argv[1])
gateway = start_jvm()
gateway.jvm.org.apache.flink.configuration.Configuration()
"""


@pytest.fixture
def cache(tmp_path, monkeypatch) -> pathlib.Path:
    monkeypatch.setenv("RIVERFLINK_CACHE", str(tmp_path))
    monkeypatch.delenv(class_archive.SWITCH, raising=False)
    return tmp_path


def start_client(use: str, class_log: pathlib.Path) -> None:
    """A client JVM for ``use`` in a process of its own that ends at once, logging where classes came from."""
    env = {**os.environ, "JVM_ARGS": f"-Xlog:class+load=info:file={class_log}"}
    subprocess.run([sys.executable, "-c", CLIENT, use], cwd=PROJECT_ROOT, env=env, check=True, timeout=120)


def wait_for_partial(directory: pathlib.Path, timeout: float = 60) -> pathlib.Path:
    """The partial archive an ended client's JVM wrote, once that JVM has ended too."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for partial in directory.glob("*.partial"):
            writer = partial.with_name(partial.name + ".pid")
            if writer.exists() and not class_archive._running(int(writer.read_text())):
                return partial
        time.sleep(0.2)
    raise AssertionError(f"no finished partial archive in {directory}: {sorted(directory.iterdir())}")


@pytest.mark.unit
def test_without_an_archive_the_jvm_writes_one_of_its_own_and_off_means_none(cache, monkeypatch):
    options = archive_options("cluster-client")
    assert options[0].startswith(f"-XX:ArchiveClassesAtExit={cache / 'client-jvm'}/cluster-client-")
    assert options[0].endswith(f".{os.getpid()}.partial") and "-XX:+VerifySharedSpaces" in options
    assert "-Xlog:cds*=off" in options, "the JVM's notes would reach the terminal after the command ended"
    monkeypatch.setenv(class_archive.SWITCH, "off")
    assert archive_options("cluster-client") == []


@pytest.mark.unit
def test_a_partial_archive_is_left_alone_while_its_writer_runs(cache):
    java, classpath = java_and_classpath()
    archive = archive_path("mini-cluster", java, classpath)
    archive.parent.mkdir(parents=True)
    partial = archive.with_name(f"{archive.stem}.1.partial")
    partial.write_bytes(b"being written")
    partial.with_name(partial.name + ".pid").write_text(str(os.getpid()))  # a process that runs: this one
    fresh = archive.with_name(f"{archive.stem}.2.partial")  # a writer not yet noted
    fresh.write_bytes(b"being written")
    promote_finished(archive, java, classpath)
    assert partial.exists() and fresh.exists() and not archive.exists()


@pytest.mark.unit
def test_once_the_archive_exists_the_partials_of_runs_that_ended_are_removed(cache):
    java, classpath = java_and_classpath()
    archive = archive_path("mini-cluster", java, classpath)
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"the archive")
    ended = archive.with_name(f"{archive.stem}.1.partial")  # a run that started before the archive existed
    ended.write_bytes(b"written")
    ended.with_name(ended.name + ".pid").write_text("0")
    promote_finished(archive, java, classpath)
    assert not ended.exists() and not ended.with_name(ended.name + ".pid").exists()
    assert archive.read_bytes() == b"the archive"


@pytest.mark.unit
def test_partials_of_other_archives_are_removed_once_abandoned_for_an_hour(cache):
    java, classpath = java_and_classpath()
    archive = archive_path("mini-cluster", java, classpath)
    archive.parent.mkdir(parents=True)
    gone, recent = (archive.parent / f"mini-cluster-0123456789abcdef.{n}.partial" for n in (1, 2))  # a venv since removed
    for partial in (gone, recent):
        partial.write_bytes(b"written")
        partial.with_name(partial.name + ".pid").write_text("0")
    an_hour_ago = time.time() - class_archive.STALE_S - 1
    os.utime(gone, (an_hour_ago, an_hour_ago))
    promote_finished(archive, java, classpath)
    assert not gone.exists() and recent.exists() and not archive.exists()


@pytest.mark.minicluster
def test_one_clients_jvm_writes_the_archive_and_the_next_maps_flinks_classes_from_it(cache, tmp_path):
    start_client("mini-cluster", tmp_path / "first.log")
    partial = wait_for_partial(cache / "client-jvm")
    assert "shared objects file (top)" not in (tmp_path / "first.log").read_text()

    start_client("mini-cluster", tmp_path / "second.log")  # checks the partial, renames it into place, maps it
    java, classpath = java_and_classpath()
    assert archive_path("mini-cluster", java, classpath).exists() and not partial.exists()
    shared = [line for line in (tmp_path / "second.log").read_text().splitlines()
              if "org.apache.flink.configuration.Configuration " in line]
    assert shared and "source: shared objects file (top)" in shared[0], shared
    assert not list((cache / "client-jvm").glob("cluster-client-*")), "each use has an archive of its own"


@pytest.mark.minicluster
def test_a_partial_archive_cut_short_is_removed_not_mapped(cache, tmp_path):
    start_client("cluster-client", tmp_path / "first.log")
    partial = wait_for_partial(cache / "client-jvm")
    cut = partial.with_name(partial.name.replace(".partial", "0.partial"))
    cut.write_bytes(partial.read_bytes()[: partial.stat().st_size // 2])  # a JVM killed while writing
    cut.with_name(cut.name + ".pid").write_text("0")
    partial.unlink()
    java, classpath = java_and_classpath()
    before = set(pathlib.Path.cwd().glob("hs_err_pid*.log"))
    promote_finished(archive_path("cluster-client", java, classpath), java, classpath)
    assert not cut.exists() and not archive_path("cluster-client", java, classpath).exists()
    assert set(pathlib.Path.cwd().glob("hs_err_pid*.log")) == before, "the crashed check left a report behind"
