"""riverflink's Java operators compile from the sources, with a JDK's javac or with the fetched Eclipse compiler."""

import subprocess
import zipfile

import pytest

from jobs import java_operators

CLASSES = {"riverflink/BatchedPythonKeyedProcessOperator.class", "riverflink/BatchedPythonKeyedProcessOperator$Context.class"}


@pytest.mark.parametrize("compiler", ["javac", "ecj"])
def test_the_operators_compile_once_into_a_jar_named_by_their_sources(compiler, tmp_path, monkeypatch):
    monkeypatch.setenv("RIVERFLINK_CACHE", str(tmp_path / "cache"))
    jar = java_operators.operators_jar(compiler)
    assert jar.parent == tmp_path / "cache" / "operators"
    with zipfile.ZipFile(jar) as archive:
        assert CLASSES <= set(archive.namelist())
    built = jar.stat().st_mtime_ns
    assert java_operators.operators_jar(compiler) == jar and jar.stat().st_mtime_ns == built  # cached
    # Java 17 class files (major version 61), whatever Java compiled them.
    shown = subprocess.run(["javap", "-v", "-cp", str(jar), "riverflink.BatchedPythonKeyedProcessOperator"],
                           capture_output=True, text=True, timeout=60)
    assert "major version: 61" in shown.stdout, shown.stderr


def test_a_changed_source_builds_another_jar(tmp_path, monkeypatch):
    sources = tmp_path / "java"
    (sources / "riverflink").mkdir(parents=True)
    for path in java_operators.JAVA_SOURCES.rglob("*.java"):
        (sources / path.relative_to(java_operators.JAVA_SOURCES)).write_text(path.read_text())
    monkeypatch.setenv("RIVERFLINK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(java_operators, "JAVA_SOURCES", sources)
    first = java_operators.operators_jar("javac")
    source = next(sources.rglob("*.java"))
    source.write_text(source.read_text() + "\n// changed\n")
    assert java_operators.operators_jar("javac") != first


def test_a_source_that_does_not_compile_fails_with_the_compilers_message(tmp_path, monkeypatch):
    (tmp_path / "java" / "riverflink").mkdir(parents=True)
    (tmp_path / "java" / "riverflink" / "Broken.java").write_text("package riverflink; class Broken { int x = ; }\n")
    monkeypatch.setenv("RIVERFLINK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(java_operators, "JAVA_SOURCES", tmp_path / "java")
    with pytest.raises(java_operators.RiverflinkError, match="Broken.java"):
        java_operators.operators_jar("javac")
    assert not list((tmp_path / "cache").rglob("*.jar"))
