#!/usr/bin/env bash
# Creates .venv (Python 3.11 or 3.12) with riverflink and its test dependencies, once.
# Run by demo.sh and test.sh; safe to run again.
#
# usage: setup.sh [--without-java]
# Flink and Kafka need Java 17, so setup.sh stops early without it, unless told
# --without-java: test.sh does, as its tests check for Java themselves and
# `scripts/test.sh -m unit` runs without it (tests/conftest.py).
#
# RIVERFLINK_PYTHON picks the interpreter (the first of python3.11, python3.12,
# python3 otherwise) and RIVERFLINK_VENV the folder (.venv otherwise): CI runs
# the unit tests on Python 3.12 too, in .venv-3.12.
set -euo pipefail
cd "$(dirname "$0")/.."

supported='import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)))'
python_bin="${RIVERFLINK_PYTHON:-}"
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c "$supported"; then
      python_bin="$candidate"; break
    fi
  done
fi
[ -n "$python_bin" ] || { echo "riverflink needs Python 3.11 or 3.12 (set RIVERFLINK_PYTHON to its path)" >&2; exit 1; }
"$python_bin" -c "$supported" || { echo "riverflink needs Python 3.11 or 3.12, not $python_bin" >&2; exit 1; }
if [ "${1:-}" != "--without-java" ]; then
  command -v java >/dev/null || { echo "riverflink needs Java 17 (java on PATH) for Flink" >&2; exit 1; }
fi

venv="${RIVERFLINK_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  "$python_bin" -m venv "$venv"
fi
stamp="$venv/.riverflink-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing riverflink and its dependencies into $venv (a few minutes the first time)" >&2
  # Twice quiet: errors only, not setuptools' notice about editable installs.
  "$venv/bin/python" -m pip install --quiet --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet --quiet -e '.[test]'
  touch "$stamp"
fi
