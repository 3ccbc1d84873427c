"""riverflink's own Java operators (``operators/java``), compiled into a jar on first use and cached.

No jar is committed. With a JDK, ``javac`` compiles them; with only a Java
runtime, the Eclipse compiler does, a jar fetched from Maven Central like the
Kafka connector. The jar's name holds a digest of the sources and of the
Flink jars they are compiled against, so a changed source or a new Flink
builds a new jar.
"""

import hashlib
import logging
import pathlib
import shutil
import subprocess
import tempfile
import zipfile

from jobs.flink_home import FLINK_HOME
from jobs.maven import cache_root, fetch_jars
from state.exceptions import RiverflinkError

__all__ = ["JAVA_SOURCES", "operators_jar"]

logger = logging.getLogger(__name__)

JAVA_SOURCES = pathlib.Path(__file__).resolve().parent.parent / "operators" / "java"
ECJ = "org.eclipse.jdt:ecj:3.33.0"  # the newest that runs on Java 17


def _classpath() -> list[pathlib.Path]:
    """The Flink jars the sources compile against: the distribution and PyFlink's operators."""
    jars = sorted((FLINK_HOME / "lib").glob("flink-dist-*.jar")) + sorted((FLINK_HOME / "opt").glob("flink-python-*.jar"))
    if len(jars) != 2:
        raise RiverflinkError(f"expected flink-dist and flink-python jars in {FLINK_HOME}, found {jars}")
    return jars


def _compiler(name: str | None) -> list[str]:
    """The command that compiles Java 17 sources: ``javac``, or ``ecj`` (fetched on first use); None: javac if on PATH."""
    if name is None:
        name = "javac" if shutil.which("javac") else "ecj"
    if name == "javac":
        return ["javac", "--release", "17"]
    version = ECJ.rsplit(":", 1)[1]
    jar = fetch_jars(f"ecj-{version}", [ECJ], transitive=False) / f"ecj-{version}.jar"
    return ["java", "-jar", str(jar), "-17"]


def operators_jar(compiler: str | None = None) -> pathlib.Path:
    """The jar of ``operators/java``, compiled on first use (a few seconds) by ``compiler`` (see ``_compiler``)."""
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
    command = _compiler(compiler)
    jar.parent.mkdir(parents=True, exist_ok=True)
    logger.info("compiling %d Java sources into %s with %s", len(sources), jar, command[0])
    with tempfile.TemporaryDirectory(prefix="riverflink-javac-") as out:
        command += ["-nowarn", "-proc:none", "-cp", ":".join(map(str, classpath)), "-d", out, *map(str, sources)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RiverflinkError(f"compiling {JAVA_SOURCES} failed: {(done.stdout + done.stderr).strip()[-2000:]}")
        partial = jar.with_suffix(".partial")  # renamed only when complete, as fetch_jars does
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(pathlib.Path(out).rglob("*.class")):
                archive.write(path, path.relative_to(out).as_posix())
        partial.rename(jar)
    return jar
