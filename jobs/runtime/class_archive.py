"""The client JVM's classes mapped from a class data sharing archive (AppCDS) that an earlier run's JVM wrote.

Every run's client JVM loads and verifies the same few thousand Flink
classes to configure, build and submit a job; on a cold JVM that is most of
the 0.6 s a submission takes. Java 17 can write the classes a JVM loaded to
an archive when it exits (``-XX:ArchiveClassesAtExit``) and map them into
later JVMs ready-made (``-XX:SharedArchiveFile``): 0.4 s less per run.

- One archive per use (a run on the mini-cluster loads other classes than a
  submission to a cluster) and per Java, Flink and client classpath: the
  file's name holds a digest of them. A JVM whose classpath differs from the
  archive's ignores it.
- The first run's JVM writes it as it exits, after the command has returned,
  to a file of its own (``*.partial``, with its process id beside it). A later
  run renames it into place only once that JVM has ended and a short Java
  process has mapped it with every region's checksum verified: a JVM killed
  while writing leaves a file that would crash any JVM mapping it.
- The JVM's log messages about the archive are off: they would reach the
  user's terminal after the command had ended.
- ``RIVERFLINK_CLASS_ARCHIVE=off`` turns it off; the archives live under
  ``~/.cache/riverflink/client-jvm`` (``RIVERFLINK_CACHE``).
"""

import hashlib
import logging
import os
import pathlib
import shutil
import subprocess
import time

from jobs.runtime.jars import cache_root

__all__ = ["archive_options", "partial_written", "note_writer", "promote_finished", "SWITCH"]

logger = logging.getLogger(__name__)

SWITCH = "RIVERFLINK_CLASS_ARCHIVE"  # "off" turns archives off
QUIET = "-Xlog:cds*=off"  # the JVM's notes on what it could not archive or map
STALE_S = 3600  # a partial archive this old is abandoned: no writer noted, or nobody of its kind runs any more
CHECK_TIMEOUT_S = 60
_WRITE = "-XX:ArchiveClassesAtExit="


def archive_directory() -> pathlib.Path:
    return cache_root() / "client-jvm"


def java_and_classpath() -> tuple[str, str]:
    """The ``java`` and the classpath PyFlink starts its gateway JVM with."""
    from pyflink.pyflink_gateway_server import (
        construct_flink_classpath,
        construct_hadoop_classpath,
        find_java_executable,
        prepare_environment_variables,
    )

    env = dict(os.environ)
    prepare_environment_variables(env)
    return find_java_executable(), os.pathsep.join([construct_flink_classpath(env), construct_hadoop_classpath(env)])


def archive_path(use: str, java: str, classpath: str) -> pathlib.Path:
    """Where the archive for ``use`` lives, named after the Java and classpath it holds classes of.

    Examples
    --------
    >>> archive_path("cluster-client", "/no/java", "a.jar").name.startswith("cluster-client-")
    True
    >>> archive_path("cluster-client", "/no/java", "a.jar") == archive_path("cluster-client", "/no/java", "b.jar")
    False
    """
    found = shutil.which(java)
    java_file = pathlib.Path(found).resolve() if found else pathlib.Path(java)
    stamp = java_file.stat().st_mtime_ns if java_file.exists() else 0
    digest = hashlib.sha256(f"{java_file}\0{stamp}\0{classpath}".encode()).hexdigest()[:16]
    return archive_directory() / f"{use}-{digest}.jsa"


def archive_options(use: str) -> list[str]:
    """JVM options for a client JVM started for ``use``: map the archive, or write it when there is none yet.

    Parameters
    ----------
    use
        What the JVM is for (``mini-cluster``, ``cluster-client``): each has its own archive.

    Returns
    -------
    list of str
        Options for PyFlink's ``JVM_ARGS``; none when ``RIVERFLINK_CLASS_ARCHIVE=off``.
    """
    if os.environ.get(SWITCH, "on") == "off":
        return []
    java, classpath = java_and_classpath()
    archive = archive_path(use, java, classpath)
    promote_finished(archive, java, classpath)
    if archive.exists():
        return [f"-XX:SharedArchiveFile={archive}", QUIET]
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f"{archive.stem}.{os.getpid()}.partial")
    return [f"{_WRITE}{partial}", "-XX:+VerifySharedSpaces", QUIET]


def partial_written(options: list[str]) -> pathlib.Path | None:
    """The partial archive a JVM started with ``options`` writes as it exits; None when it writes none."""
    for option in options:
        if option.startswith(_WRITE):
            return pathlib.Path(option.removeprefix(_WRITE))
    return None


def note_writer(partial: pathlib.Path, jvm_pid: int) -> None:
    """Record that JVM ``jvm_pid`` writes ``partial``: no run takes it before that JVM has ended."""
    _writer_file(partial).write_text(str(jvm_pid))


def _writer_file(partial: pathlib.Path) -> pathlib.Path:
    return partial.with_name(partial.name + ".pid")


def promote_finished(archive: pathlib.Path, java: str, classpath: str) -> None:
    """Rename the first finished, sound partial archive of ``archive`` into place; remove the other finished ones.

    A partial archive is finished once the JVM that writes it has ended, and
    sound when a JVM with the same classpath maps it with every region's
    checksum verified (``-Xshare:on -XX:+VerifySharedSpaces``, 0.05 s).
    Runs that started before the archive existed each wrote one: all but
    the first are removed once their JVMs have ended. Finished partials of
    other archives (another use, or a Java, Flink or venv since removed) are
    removed once they are an hour old.
    """
    for partial in sorted(archive.parent.glob("*.partial")):
        if not _finished(partial):
            continue
        if not partial.name.startswith(f"{archive.stem}."):  # another use's, or a Java or Flink gone since
            if _age(partial) > STALE_S:
                partial.unlink(missing_ok=True)
                _writer_file(partial).unlink(missing_ok=True)
            continue
        sound = False
        if not archive.exists():
            # A cut archive crashes this JVM: no crash report (hs_err_pid*.log) in the user's folder, no core.
            check = [java, f"-XX:SharedArchiveFile={partial}", "-Xshare:on", "-XX:+VerifySharedSpaces", QUIET,
                     f"-XX:ErrorFile={os.devnull}", "-XX:-CreateCoredumpOnCrash", "-cp", classpath, "-version"]
            sound = subprocess.run(check, capture_output=True, timeout=CHECK_TIMEOUT_S).returncode == 0
        try:
            if sound and not archive.exists():
                os.replace(partial, archive)
                logger.info("client JVM classes archived in %s", archive)
            else:
                partial.unlink()
        except FileNotFoundError:  # another run, starting at the same time, took or removed it first
            pass
        _writer_file(partial).unlink(missing_ok=True)


def _finished(partial: pathlib.Path) -> bool:
    """Whether the JVM writing ``partial`` has ended; a partial without a known writer, once it is an hour old."""
    writer = _writer_file(partial)
    try:
        if writer.exists():
            return not _running(int(writer.read_text() or 0))
        return _age(partial) > STALE_S
    except FileNotFoundError:  # another run, starting at the same time, took or removed it first
        return False


def _age(path: pathlib.Path) -> float:
    """Seconds since ``path`` was last written; 0 when it is gone."""
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not ended (a zombie has ended)."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
