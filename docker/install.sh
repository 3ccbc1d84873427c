#!/usr/bin/env bash
# Installs riverflink (not editable) into a Python environment, fetches the
# Flink Kafka connector jar and builds riverflink's Java operators into
# $RIVERFLINK_CACHE, and checks the result.
# The Dockerfile runs it at build time; tests/test_deployment.py runs it into a
# fresh virtual environment, so the image's install steps are tested without Docker.
#
# usage: docker/install.sh [PYTHON [PROJECT_DIR]]
#   PYTHON       the interpreter whose environment gets riverflink (default: python3)
#   PROJECT_DIR  the riverflink checkout (default: this script's parent folder)
# Needs Java 17 and Maven (mvn) on PATH; RIVERFLINK_CACHE defaults to ~/.cache/riverflink.
set -euo pipefail

python_bin="$(command -v "${1:-python3}")"
project_dir="$(cd "${2:-$(dirname "$0")/..}" && pwd)"

"$python_bin" -m pip install --quiet "$project_dir"

# The checks run outside the checkout, so they see the installed package, not the sources.
cd /
scripts="$("$python_bin" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
"$scripts/riverflink" --help >/dev/null

"$python_bin" - "$project_dir" <<'PY'
import pathlib
import sys

import pyflink  # noqa: F401
import river  # noqa: F401

import jobs.runtime.jvm

project = pathlib.Path(sys.argv[1])
installed = pathlib.Path(jobs.runtime.jvm.__file__).parent
if installed.is_relative_to(project):
    sys.exit(f"jobs was imported from the checkout ({installed}), not from the installed package")
# Flink's embedded interpreter needs it (see jobs/runtime/worker_boot/sitecustomize.py).
if not (jobs.runtime.jvm.WORKER_BOOT / "sitecustomize.py").is_file():
    sys.exit(f"{jobs.runtime.jvm.WORKER_BOOT}/sitecustomize.py is missing from the installed package")
PY

flink_home="$("$python_bin" -c 'import os, pyflink; print(os.path.dirname(pyflink.__file__))')"
if [ -n "${FLINK_HOME:-}" ] && [ "$FLINK_HOME" != "$flink_home" ]; then
  echo "FLINK_HOME is $FLINK_HOME but pyflink is installed in $flink_home" >&2
  exit 1
fi
# Starts a JVM: proves Java runs the Flink distribution that the wheel ships,
# with the wheel's own configuration (the image's FLINK_CONF_DIR is written at start).
flink_log="$(mktemp -d)"
env -u FLINK_CONF_DIR -u FLINK_LIB_DIR FLINK_HOME="$flink_home" FLINK_LOG_DIR="$flink_log" \
  "$flink_home/bin/flink" --version
rm -rf "$flink_log"

# Fetched with Maven by the project's own code, so the image never fetches at run time.
jar="$("$python_bin" -c 'from jobs.runtime.jars import kafka_connector_jar; print(kafka_connector_jar())')"
[ -s "$jar" ] || { echo "the Kafka connector jar $jar is missing or empty" >&2; exit 1; }
# riverflink's Java operators, compiled from the installed package's sources.
operators="$("$python_bin" -c 'from jobs.runtime.jars import operators_jar; print(operators_jar())')"
[ -s "$operators" ] || { echo "the operators jar $operators is missing or empty" >&2; exit 1; }

echo "riverflink installed for $python_bin"
echo "FLINK_HOME=$flink_home"
echo "Kafka connector: $jar"
echo "riverflink operators: $operators"
