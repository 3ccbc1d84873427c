#!/usr/bin/env bash
# Quickstart: per-chick weight models learned from river's ChickWeights data,
# on Flink's embedded mini-cluster; prints a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out="${1:-out/demo}"
exec .venv/bin/riverflink run \
  --model examples/regressor.py:model \
  --input examples/data/chick_weights.jsonl \
  --out "$out" --overwrite --parallelism 2 --checkpoint-interval 2
