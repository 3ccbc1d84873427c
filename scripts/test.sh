#!/usr/bin/env bash
# Installs what the tests need, then runs them (real Flink mini-clusters, a local
# cluster and a Kafka broker inside). Arguments go to pytest:
#   bash scripts/test.sh -m unit     the fast tests, no JVM (java not needed)
#   bash scripts/test.sh -m "minicluster or cluster or kafka"    the others
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --without-java  # the tests that need Java say so (tests/conftest.py)
export PYTHONHASHSEED=0  # same string hashing as the job's Python workers (jobs/runtime/jvm.py)
exec "${RIVERFLINK_VENV:-.venv}/bin/python" -m pytest "$@"
