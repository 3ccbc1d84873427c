#!/usr/bin/env bash
# Entry point of the riverflink image. Writes Flink's configuration for this
# container into FLINK_CONF_DIR (a copy of the wheel's conf/; the installed
# package is never edited), then runs a JobManager, a TaskManager, or any other
# command (`flink run ...`, `riverflink produce ...`) with that configuration.
#
# usage: flink-entrypoint.sh jobmanager|taskmanager|COMMAND [ARGS...]
#        (Flink's native Kubernetes pods: bash -c "kubernetes-...sh ..." runs with their mounted configuration)
# FLINK_PROPERTIES: "key: value" lines (Flink option names), applied last.
set -euo pipefail

python_bin="$(command -v python3)"
# -P: ask the installed packages, not whatever the working directory holds.
: "${FLINK_HOME:=$("$python_bin" -P -c 'import os, pyflink; print(os.path.dirname(pyflink.__file__))')}"
: "${FLINK_CONF_DIR:=/tmp/riverflink-flink/conf}"
: "${FLINK_LIB_DIR:=/tmp/riverflink-flink/lib}"
export FLINK_HOME FLINK_CONF_DIR FLINK_LIB_DIR
export PATH="$FLINK_HOME/bin:$PATH"

mkdir -p "$FLINK_LIB_DIR"
# flink-python in the cluster's lib dir: without it a TaskManager's second
# thread-mode job fails (pemja on JDK 17, FLINK-37727).
ln -sf "$FLINK_HOME"/lib/*.jar "$FLINK_HOME"/opt/flink-python-*.jar "$FLINK_LIB_DIR/"

# Flink's native Kubernetes integration (the Flink Kubernetes Operator,
# deploy/kubernetes/) starts every pod as this entry point with
# `bash -c "kubernetes-jobmanager.sh ..."` or `bash -c "kubernetes-taskmanager.sh ..."`,
# its configuration already mounted (read-only) in FLINK_CONF_DIR: run it as it is.
if [ "${1:-}" = bash ] && [ "${2:-}" = -c ] && [[ "${3:-}" == kubernetes-* ]]; then
  exec "$@"
fi

mkdir -p "$FLINK_CONF_DIR"
cp -r "$FLINK_HOME/conf/." "$FLINK_CONF_DIR/"

options=(
  # Other containers reach this one: listen on every interface, and let a
  # TaskManager advertise its own address instead of the default "localhost".
  -repKV "jobmanager.bind-host,localhost,0.0.0.0"
  -repKV "taskmanager.bind-host,localhost,0.0.0.0"
  -D "rest.bind-address=0.0.0.0"
  -rmKV "taskmanager.host=localhost"
  # Python jobs: the client and the workers use this image's interpreter.
  -D "python.client.executable=$python_bin"
  -D "python.executable=$python_bin"
)
while IFS= read -r line; do
  line="$(echo "$line" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')"
  [[ -z "$line" || "$line" == \#* ]] && continue
  key="${line%%:*}"
  value="$(echo "${line#*:}" | sed 's/^[[:space:]]*//')"
  options+=(-D "$key=$value")
done <<< "${FLINK_PROPERTIES:-}"
bash "$FLINK_HOME/bin/config-parser-utils.sh" "$FLINK_CONF_DIR" "$FLINK_HOME/bin" "$FLINK_LIB_DIR" "${options[@]}"

case "${1:-}" in
  jobmanager)
    exec "$FLINK_HOME/bin/jobmanager.sh" start-foreground ;;
  taskmanager)
    # Flink's embedded interpreter imports river's native libraries at start-up
    # (jobs/runtime/worker_boot/sitecustomize.py); the job's client cannot set this here.
    worker_boot="$("$python_bin" -P -c 'import jobs.runtime, os; print(os.path.join(os.path.dirname(jobs.runtime.__file__), "worker_boot"))')"
    export PYTHONPATH="$worker_boot${PYTHONPATH:+:$PYTHONPATH}"
    exec "$FLINK_HOME/bin/taskmanager.sh" start-foreground ;;
  *)
    exec "$@" ;;
esac
