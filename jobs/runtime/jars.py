"""The jars a job needs besides Flink's own, fetched or built on first use and cached at pinned versions.

- Flink's distribution is the one the apache-flink wheel ships (``FLINK_HOME``:
  its bin, conf, lib, opt and log folders).
- Jars from Maven Central are fetched with Maven into ``~/.cache/riverflink``
  (``RIVERFLINK_CACHE`` overrides it), one folder per pinned artifact set;
  nothing fetched is committed.
- The Kafka connector is the *SQL* fat jar: PyFlink's Kafka wrappers call its
  shaded classes (``org.apache.flink.kafka.shaded.org.apache.kafka.*``), on the
  mini-cluster and on a cluster alike.
- riverflink's own Java operators (``operators/java``) are compiled into a jar:
  with a JDK by ``javac``, with only a Java runtime by the Eclipse compiler (a
  jar fetched like the connector). The jar's name holds a digest of the
  sources and of the Flink jars they compile against, so a changed source or a
  new Flink builds a new jar.
"""

import hashlib
import importlib.util
import logging
import os
import pathlib
import shutil
import subprocess
import tempfile
import zipfile

from state.exceptions import RiverflinkError

__all__ = ["FLINK_HOME", "KAFKA_CONNECTOR", "JAVA_SOURCES", "cache_root", "fetch_jars", "kafka_connector_jar",
           "operators_jar"]

logger = logging.getLogger(__name__)

FLINK_HOME = pathlib.Path(importlib.util.find_spec("pyflink").origin).parent  # found without importing pyflink
KAFKA_CONNECTOR = "org.apache.flink:flink-sql-connector-kafka:5.0.0-2.2"
JAVA_SOURCES = pathlib.Path(__file__).resolve().parents[2] / "operators" / "java"
ECJ = "org.eclipse.jdt:ecj:3.33.0"  # the newest Eclipse compiler that runs on Java 17

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>riverflink</groupId><artifactId>{name}</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""
_DEPENDENCY = "    <dependency><groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version></dependency>"


def cache_root() -> pathlib.Path:
    """Where fetched and built jars, and the local services' folders, go.

    ``RIVERFLINK_CACHE``, or ``~/.cache/riverflink`` when it is not set.
    """
    return pathlib.Path(os.environ.get("RIVERFLINK_CACHE", pathlib.Path.home() / ".cache" / "riverflink"))


def fetch_jars(name: str, artifacts: list[str], transitive: bool = True) -> pathlib.Path:
    """The folder holding ``artifacts``, fetched with Maven into the cache on first use.

    Parameters
    ----------
    name
        The cache folder's name. It must change whenever ``artifacts`` do: a
        complete folder is never fetched again.
    artifacts
        Maven coordinates, ``group:artifact:version``.
    transitive
        Whether their dependencies come too.

    Returns
    -------
    pathlib.Path
        ``<cache>/<name>/lib``, holding the jars.

    Raises
    ------
    RiverflinkError
        If ``mvn`` is not on PATH or Maven fails (its output's end in the message).
    """
    home = cache_root() / name
    lib = home / "lib"
    if lib.is_dir():
        return lib
    if shutil.which("mvn") is None:
        raise RiverflinkError(f"fetching {', '.join(artifacts)} needs Maven ('mvn' on PATH)")
    home.mkdir(parents=True, exist_ok=True)
    dependencies = "\n".join(_DEPENDENCY.format(*artifact.split(":")) for artifact in artifacts)
    (home / "pom.xml").write_text(_POM.format(name=name, dependencies=dependencies))
    partial = home / "lib.partial"  # renamed only when complete, so an interrupted fetch is retried
    shutil.rmtree(partial, ignore_errors=True)
    logger.info("fetching %s from Maven Central into %s", ", ".join(artifacts), lib)
    done = subprocess.run(
        ["mvn", "-q", "-B", "-f", str(home / "pom.xml"), "dependency:copy-dependencies",
         f"-DoutputDirectory={partial}", "-DincludeScope=runtime", f"-DexcludeTransitive={str(not transitive).lower()}"],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise RiverflinkError(f"Maven could not fetch {', '.join(artifacts)}: {(done.stdout + done.stderr).strip()[-2000:]}")
    partial.rename(lib)
    return lib


def kafka_connector_jar() -> pathlib.Path:
    """The Kafka connector's jar (:data:`KAFKA_CONNECTOR`), fetched with Maven on first use."""
    version = KAFKA_CONNECTOR.rsplit(":", 1)[1]
    lib = fetch_jars(f"flink-kafka-connector-{version}", [KAFKA_CONNECTOR], transitive=False)
    return lib / f"flink-sql-connector-kafka-{version}.jar"


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
    """The jar of riverflink's Java operators (:data:`JAVA_SOURCES`), compiled on first use (a few seconds).

    Parameters
    ----------
    compiler
        ``"javac"``, ``"ecj"`` (the Eclipse compiler, fetched on first use; it
        needs only a Java runtime), or None: javac if it is on PATH, else ecj.

    Returns
    -------
    pathlib.Path
        ``<cache>/operators/riverflink-operators-<digest>.jar``, the digest of
        the sources and of the Flink jars they compile against.

    Raises
    ------
    RiverflinkError
        If there are no sources, or they do not compile (the compiler's message in it).
    """
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
