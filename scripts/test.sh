#!/usr/bin/env bash
# Installs what the tests need, then runs them (real Flink mini-clusters inside).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYTHONHASHSEED=0  # same string hashing as the job's Python workers (jobs/runtime/environment.py)
exec .venv/bin/python -m pytest "$@"
