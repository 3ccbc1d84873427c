"""``riverflink``: the command line. Parses, validates, runs; prints for people.

Every refusal (bad option, unknown model, missing input) is one line on
stderr and a non-zero exit, before any Flink job is started.
"""

import argparse
import importlib.util
import logging
import pathlib
import sys

from jobs.settings import EXECUTION_MODES, OUTPUT_NAMES, STATE_BACKENDS, Settings
from state.exceptions import RiverflinkError

__all__ = ["main"]

logger = logging.getLogger("riverflink")

EXIT_USAGE = 2
FLINK_LOG_DIR = pathlib.Path(importlib.util.find_spec("pyflink").origin).parent / "log"
EXIT_JOB_FAILED = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(EXIT_USAGE, f"riverflink: error: {message}\n")


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="riverflink", description="One river model per key in Apache Flink's keyed state.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="run the learning job")
    run.add_argument("--model", required=True, help="package.module:name, path/to/file.py:name or model.pkl")
    run.add_argument("--input", action="append", default=[], help="JSON-lines file or directory (.gz ok); repeatable")
    run.add_argument("--out", help="write all four outputs under this directory")
    run.add_argument("--predictions", help="predictions destination directory")
    run.add_argument("--metrics", help="metrics destination directory")
    run.add_argument("--dead-letters", help="dead letters destination directory")
    run.add_argument("--models-out", help="model snapshots destination directory")
    run.add_argument("--parallelism", type=int, default=1)
    run.add_argument("--checkpoint-interval", type=_positive_float, default=10.0, metavar="S")
    run.add_argument("--checkpoint-dir")
    run.add_argument("--state-backend", choices=STATE_BACKENDS, default="hashmap")
    run.add_argument("--execution-mode", choices=EXECUTION_MODES, default="thread")
    run.add_argument("--metric", help="a river.metrics class name (default by model kind)")
    run.add_argument("--label-ttl", type=_positive_float, metavar="S", help="how long a prediction waits for its label")
    run.add_argument("--metrics-interval", type=_positive_float, default=10.0, metavar="S")
    run.add_argument("--snapshot-interval", type=_positive_float, default=60.0, metavar="S")
    run.add_argument("--quiet", action="store_true", help="print no summary")

    kafka = commands.add_parser("kafka", help="a local single-node Kafka broker for development and tests")
    kafka.add_argument("action", choices=("start", "stop"))
    kafka.add_argument("--port", type=int, default=9092)
    kafka.add_argument("--controller-port", type=int, help="KRaft controller port (default: port + 1)")
    kafka.add_argument("--data-dir", help="data, config, log and pid (default: ~/.cache/riverflink/kafka-broker-PORT)")
    return parser


def _settings(args) -> Settings:
    outputs = {name: getattr(args, name) for name in OUTPUT_NAMES}
    if args.out is not None:
        for name, value in outputs.items():
            if value is None:
                outputs[name] = str(pathlib.Path(args.out) / name.replace("_", "-"))
    return Settings(
        model=args.model,
        inputs=tuple(args.input),
        parallelism=args.parallelism,
        checkpoint_interval=args.checkpoint_interval,
        checkpoint_dir=args.checkpoint_dir,
        state_backend=args.state_backend,
        execution_mode=args.execution_mode,
        metric=args.metric,
        label_ttl=args.label_ttl,
        metrics_interval=args.metrics_interval,
        snapshot_interval=args.snapshot_interval,
        **outputs,
    )


def _root_cause(exc: Exception) -> str:
    """The innermost "Caused by" of a JVM error, which is the line a person needs."""
    causes = [line.strip() for line in str(exc).splitlines() if line.strip().startswith("Caused by:")]
    return causes[-1].removeprefix("Caused by:").strip() if causes else f"{type(exc).__name__}: {exc}"


def _run(args) -> int:
    # Imported here so that argument errors are reported without starting a JVM.
    from jobs.learn_job import run_job
    from jobs.summary import summarize

    settings = _settings(args)
    try:
        run_job(settings)
    except RiverflinkError:
        raise
    except Exception as exc:  # the JVM's error: its root cause here, the whole trace in Flink's log
        logger.debug("job failed", exc_info=True)
        print(f"riverflink: job failed: {_root_cause(exc)} (full trace in {FLINK_LOG_DIR})", file=sys.stderr)
        return EXIT_JOB_FAILED
    if not args.quiet:
        print(summarize(settings))
    return 0


def _kafka(args) -> int:
    from jobs.local_kafka import start_broker, stop_broker

    if args.action == "start":
        pid = start_broker(args.port, args.controller_port, args.data_dir)
        print(f"Kafka broker running on 127.0.0.1:{args.port} (pid {pid})")
    elif stop_broker(args.port, args.data_dir):
        print(f"Kafka broker on 127.0.0.1:{args.port} stopped")
    else:
        print(f"no Kafka broker started by riverflink is running on 127.0.0.1:{args.port}")
    return 0


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    try:
        return _kafka(args) if args.command == "kafka" else _run(args)
    except RiverflinkError as exc:
        print(f"riverflink: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
