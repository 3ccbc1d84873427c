"""riverflink's own Java operators (``operators/java``), compiled into a jar on first use and cached.

No jar is committed and no JDK is needed: the Eclipse compiler, a jar from
Maven Central fetched like the Kafka connector, runs on the Java that runs
Flink. The jar's name holds a digest of the sources and of the Flink jars they
are compiled against, so a changed source or a new Flink builds a new jar.
"""

import hashlib
import importlib.util
import logging
import pathlib
import subprocess
import tempfile
import zipfile

from jobs.maven import cache_root, fetch_jars
from state.exceptions import RiverflinkError

__all__ = ["JAVA_SOURCES", "operators_jar"]

logger = logging.getLogger(__name__)

JAVA_SOURCES = pathlib.Path(__file__).resolve().parent.parent / "operators" / "java"
ECJ = "org.eclipse.jdt:ecj:3.33.0"  # the newest that runs on Java 17
_FLINK_HOME = pathlib.Path(importlib.util.find_spec("pyflink").origin).parent


def _classpath() -> list[pathlib.Path]:
    """The Flink jars the sources compile against: the distribution and PyFlink's operators."""
    jars = sorted((_FLINK_HOME / "lib").glob("flink-dist-*.jar")) + sorted((_FLINK_HOME / "opt").glob("flink-python-*.jar"))
    if len(jars) != 2:
        raise RiverflinkError(f"expected flink-dist and flink-python jars in {_FLINK_HOME}, found {jars}")
    return jars


def operators_jar() -> pathlib.Path:
    """The jar of ``operators/java``, compiled on first use (about 2 s, plus fetching the compiler once)."""
    sources = sorted(JAVA_SOURCES.rglob("*.java"))
    if not sources:
        raise RiverflinkError(f"no Java sources in {JAVA_SOURCES}")
    classpath = _classpath()
    digest = hashlib.sha256()
    for path in sources:
        digest.update(str(path.relative_to(JAVA_SOURCES)).encode() + b"\0" + path.read_bytes() + b"\0")
    for jar in classpath:
        digest.update(jar.name.encode() + b"\0")
    jar = cache_root() / "operators" / f"riverflink-operators-{digest.hexdigest()[:16]}.jar"
    if jar.is_file():
        return jar
    version = ECJ.rsplit(":", 1)[1]
    compiler = fetch_jars(f"ecj-{version}", [ECJ], transitive=False) / f"ecj-{version}.jar"
    jar.parent.mkdir(parents=True, exist_ok=True)
    logger.info("compiling %d Java sources into %s", len(sources), jar)
    with tempfile.TemporaryDirectory(prefix="riverflink-javac-") as out:
        command = ["java", "-jar", str(compiler), "-17", "-nowarn", "-proc:none",
                   "-cp", ":".join(map(str, classpath)), "-d", out, *map(str, sources)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RiverflinkError(f"compiling {JAVA_SOURCES} failed: {(done.stdout + done.stderr).strip()[-2000:]}")
        partial = jar.with_suffix(".partial")  # renamed only when complete, as fetch_jars does
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(pathlib.Path(out).rglob("*.class")):
                archive.write(path, path.relative_to(out).as_posix())
        partial.rename(jar)
    return jar
