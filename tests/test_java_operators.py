"""riverflink's Java operators: they compile from the sources (javac or the fetched Eclipse compiler), and route as Python reads."""

import subprocess
import zipfile

import pytest

from jobs.runtime import jars
from operators.events import decode_event
from state.exceptions import RiverflinkError

pytestmark = pytest.mark.minicluster  # Java's compilers, and Flink's JVM in this process

CLASSES = {"riverflink/BatchedPythonKeyedProcessOperator.class", "riverflink/BatchedPythonKeyedProcessOperator$Context.class"}


@pytest.mark.parametrize("compiler", ["javac", "ecj"])
def test_the_operators_compile_once_into_a_jar_named_by_their_sources(compiler, tmp_path, monkeypatch):
    monkeypatch.setenv("RIVERFLINK_CACHE", str(tmp_path / "cache"))
    jar = jars.operators_jar(compiler)
    assert jar.parent == tmp_path / "cache" / "operators"
    with zipfile.ZipFile(jar) as archive:
        assert CLASSES <= set(archive.namelist())
    built = jar.stat().st_mtime_ns
    assert jars.operators_jar(compiler) == jar and jar.stat().st_mtime_ns == built  # cached
    # Java 17 class files (major version 61), whatever Java compiled them.
    shown = subprocess.run(["javap", "-v", "-cp", str(jar), "riverflink.BatchedPythonKeyedProcessOperator"],
                           capture_output=True, text=True, timeout=60)
    assert "major version: 61" in shown.stdout, shown.stderr


def test_a_changed_source_builds_another_jar(tmp_path, monkeypatch):
    sources = tmp_path / "java"
    (sources / "riverflink").mkdir(parents=True)
    for path in jars.JAVA_SOURCES.rglob("*.java"):
        (sources / path.relative_to(jars.JAVA_SOURCES)).write_text(path.read_text())
    monkeypatch.setenv("RIVERFLINK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(jars, "JAVA_SOURCES", sources)
    first = jars.operators_jar("javac")
    source = next(sources.rglob("*.java"))
    source.write_text(source.read_text() + "\n// changed\n")
    assert jars.operators_jar("javac") != first


def test_a_source_that_does_not_compile_fails_with_the_compilers_message(tmp_path, monkeypatch):
    (tmp_path / "java" / "riverflink").mkdir(parents=True)
    (tmp_path / "java" / "riverflink" / "Broken.java").write_text("package riverflink; class Broken { int x = ; }\n")
    monkeypatch.setenv("RIVERFLINK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(jars, "JAVA_SOURCES", tmp_path / "java")
    with pytest.raises(RiverflinkError, match="Broken.java"):
        jars.operators_jar("javac")
    assert not list((tmp_path / "cache").rglob("*.jar"))


LINES = [
    '{"key": "a", "x": {"f": 1}}', '{"key": 7, "y": 1}', '{"key": -0, "y": 1}',
    '{"key": 123456789012345678901234567890, "y": 1}', '{"key": "caf\\u00e9 \\"q\\"\\n", "y": 1}',
    '{"key": "\u2603 snow", "y": 1}', '{"key": "a", "key": "b", "y": 1}', '{"id": "e", "x": {"key": "x"}, "key": "k"}',
    '{"key": "a", "x": {"f": NaN}, "y": -Infinity}', '{"key": "a", "x": [1, {"key": "b"}]}',
    '{"key": ' + "7" * 4300 + ', "y": 1}', '{"key": "k", "snapshot": "' + "A" * 30_000_000 + '"}',
    # no key Python would route by: these go to the unroutable key
    '{"key": "a", "key": null, "y": 1}', '{"x": {"key": "nested"}, "y": 1}', '{"key": 1.5, "y": 1}',
    '{"key": true, "y": 1}', '{"key": ["a"], "y": 1}', '{"key": {"a": 1}, "y": 1}', '{"key": "", "y": 1}',
    '[1, 2]', '"key"', 'not json', '', '{"key": "a"', '{"key": "a", "y": }', '{"key": "a", "y": 1} x',
    '{"key": ' + "7" * 4301 + ', "y": 1}', '{"key": "a", "x": ' + "[" * 1500, None,
]


@pytest.fixture(scope="module")
def key_of_line():
    """``riverflink.KeyOfLine`` in the test process's JVM, with the operators jar on its class path."""
    from pyflink.java_gateway import get_gateway
    from pyflink.util.java_utils import add_jars_to_context_class_loader

    add_jars_to_context_class_loader([jars.operators_jar().as_uri()])
    return get_gateway().jvm.riverflink.KeyOfLine


@pytest.mark.parametrize("line", LINES)
def test_java_routes_each_line_by_the_key_python_reads_in_it(key_of_line, line):
    routed = key_of_line("").map(line)
    assert (routed.getField(0), routed.getField(1)) == (decode_event(line).key or "", line)


def test_an_output_line_without_a_key_gets_none_for_its_kafka_record_key(key_of_line):
    keyed = key_of_line(None)
    assert keyed.map('{"key": null, "metric": "Accuracy", "value": 0.5}').getField(0) is None
    assert keyed.map('{"key": "k", "prediction": 1.0}').getField(0) == "k"
