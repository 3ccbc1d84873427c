"""Jars from Maven Central, fetched with Maven on first use and cached at pinned versions.

Nothing fetched is committed: everything lands under ``~/.cache/riverflink``
(``RIVERFLINK_CACHE`` overrides it), one folder per pinned artifact set.
"""

import logging
import os
import pathlib
import shutil
import subprocess

from state.exceptions import RiverflinkError

__all__ = ["cache_root", "fetch_jars"]

logger = logging.getLogger(__name__)

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
    return pathlib.Path(os.environ.get("RIVERFLINK_CACHE", pathlib.Path.home() / ".cache" / "riverflink"))


def fetch_jars(name: str, artifacts: list[str], transitive: bool = True) -> pathlib.Path:
    """The folder holding ``artifacts`` (``group:artifact:version``), fetched into the cache on first use.

    ``name`` must change whenever ``artifacts`` do: a complete folder is never fetched again.
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
