"""``riverflink``: the command line. Parses, validates, runs; prints for people.

Every refusal (bad option, unknown model, missing input) is one line on
stderr and a non-zero exit, before any Flink job is started.
"""

import argparse
import logging
import os
import pathlib
import sys

from jobs.runtime.jars import FLINK_HOME
from jobs.settings import EXECUTION_MODES, KAFKA_DELIVERIES, ON_DRIFT, OUTPUT_NAMES, STATE_BACKENDS, Settings
from state.exceptions import RiverflinkError, SettingsError

__all__ = ["main"]

logger = logging.getLogger("riverflink")

EXIT_USAGE = 2
# Where Flink's own log goes: FLINK_LOG_DIR on a configured cluster image, else the wheel's log folder.
FLINK_LOG_DIR = pathlib.Path(os.environ.get("FLINK_LOG_DIR") or FLINK_HOME / "log")
EXIT_JOB_FAILED = 1
EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(EXIT_USAGE, f"riverflink: error: {message}\n")


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def _key_value(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        # Never echo the text: it may be a credential typed without its name.
        raise argparse.ArgumentTypeError("must be KEY=VALUE")
    return name.strip(), value


def _add_kafka_client(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kafka-bootstrap", metavar="HOST:PORT[,...]", help="Kafka bootstrap servers")
    parser.add_argument("--kafka-property", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                        help="a Kafka client property (SASL, SSL, ...), repeatable; never printed or logged")


def _add_lifecycle(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--warm-start", action="store_true",
                        help="new keys start from a copy of the --model as it is (pre-trained), not a blank clone")
    parser.add_argument("--challenger", action="append", default=[], metavar="SPEC",
                        help="a model trained in shadow on every key, served where it beats the serving model; "
                             "repeatable")
    parser.add_argument("--promotion-window", type=int, default=100, metavar="N",
                        help="a challenger is judged on each key's last N labelled events (default 100)")
    parser.add_argument("--promotion-margin", type=float, default=0.0, metavar="M",
                        help="by how much of the metric it must be better there (default 0: any better)")
    parser.add_argument("--drift-detector", metavar="NAME",
                        help="a river.drift detector class (ADWIN, PageHinkley, DDM, ...) on each key's errors")
    parser.add_argument("--on-drift", choices=ON_DRIFT, default="none",
                        help="reset: each of the key's models starts over when its detector fires")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="riverflink", description="One river model per key in Apache Flink's keyed state.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="run the learning job")
    run.add_argument("--model", required=True, help="package.module:name, path/to/file.py:name or model.pkl")
    run.add_argument("--input", action="append", default=[], help="JSON-lines file or directory (.gz ok); repeatable")
    run.add_argument("--watch-inputs", type=_positive_float, metavar="S",
                     help="keep running and read files that appear in the --input directories, looking every S seconds")
    _add_kafka_client(run)
    run.add_argument("--kafka-topic", action="append", default=[], help="read events from this topic; repeatable; "
                     "with --input, the files are read first, then Kafka, in one job")
    run.add_argument("--kafka-group", default="riverflink", help="consumer group (offsets are committed on checkpoints)")
    run.add_argument("--kafka-offsets", default="earliest", metavar="WHERE",
                     help="where to start without a checkpoint: earliest, latest, committed, or a time "
                          "(epoch ms or ISO-8601 with zone)")
    run.add_argument("--kafka-stop-at-latest", action="store_true",
                     help="read only up to the offsets present when the job starts, then finish")
    run.add_argument("--kafka-delivery", choices=KAFKA_DELIVERIES, default="exactly-once",
                     help="for kafka:// outputs: transactions committed on checkpoints, or lower latency")
    run.add_argument("--job-name", default="riverflink",
                     help="also the Kafka transactional id prefix: concurrent jobs need different names")
    run.add_argument("--out", help="write every output under this directory")
    run.add_argument("--predictions", help="predictions destination: a directory or kafka://TOPIC")
    run.add_argument("--metrics", help="metrics destination: a directory or kafka://TOPIC")
    run.add_argument("--dead-letters", help="dead letters destination: a directory or kafka://TOPIC")
    run.add_argument("--models-out", help="model snapshots destination: a directory or kafka://TOPIC")
    run.add_argument("--events", help="promotions and drifts destination: a directory or kafka://TOPIC")
    _add_lifecycle(run)
    run.add_argument("--parallelism", type=int, default=1)
    run.add_argument("--checkpoint-interval", type=_positive_float, default=10.0, metavar="S")
    run.add_argument("--checkpoint-dir")
    run.add_argument("--state-backend", choices=STATE_BACKENDS, default="hashmap")
    run.add_argument("--execution-mode", choices=EXECUTION_MODES, default="thread")
    run.add_argument("--metric", help="a river.metrics class name (default by model kind)")
    run.add_argument("--label-ttl", type=_positive_float, metavar="S", help="how long a prediction waits for its label")
    run.add_argument("--key-ttl", type=_positive_float, metavar="S",
                     help="drop the model and all state of a key idle this long (processing time; default never)")
    run.add_argument("--key-cache-mb", type=float, default=64.0, metavar="MB",
                     help="per learner subtask, keep deserialized key states up to this serialized size between "
                          "events; 0 turns it off (default 64)")
    run.add_argument("--batch-lines", type=int, default=256, metavar="N",
                     help="thread mode: hand the learner up to N lines per call from Java; 1 turns batching off "
                          "(default 256)")
    run.add_argument("--batch-delay", type=float, default=0.01, metavar="S",
                     help="thread mode: how long a line waits at most for its batch to fill (default 0.01)")
    run.add_argument("--metrics-interval", type=_positive_float, default=10.0, metavar="S")
    run.add_argument("--snapshot-interval", type=_positive_float, default=60.0, metavar="S")
    run.add_argument("--quiet", action="store_true", help="print no summary")
    run.add_argument("--flink-option", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                     help="any Flink option for this job, applied last (e.g. taskmanager.network.memory.buffer-debloat.enabled=true)")
    run.add_argument("--jobmanager", metavar="HOST:PORT",
                     help="submit to this Flink cluster's REST address instead of the embedded mini-cluster")
    run.add_argument("--detached", action="store_true", help="with --jobmanager: print the job id and return")
    run.add_argument("--from-savepoint", metavar="PATH", help="resume from a savepoint or retained checkpoint")
    run.add_argument("--allow-non-restored-state", action="store_true",
                     help="with --from-savepoint: drop state of operators the job no longer has (a backfill's file source)")

    evaluate = commands.add_parser("evaluate", help="replay an event log through the job and report each model's "
                                   "progressive metric")
    evaluate.add_argument("--model", required=True, help="package.module:name, path/to/file.py:name or model.pkl")
    evaluate.add_argument("--input", action="append", default=[], help="JSON-lines file or directory; repeatable")
    _add_kafka_client(evaluate)
    evaluate.add_argument("--kafka-topic", action="append", default=[],
                          help="replay this topic up to the offsets present when evaluate starts; repeatable")
    evaluate.add_argument("--kafka-stop-at-latest", action="store_true", help="always on: an evaluation ends")
    evaluate.add_argument("--kafka-group", default="riverflink-evaluate",
                          help="consumer group whose offsets the replay commits (never the serving job's)")
    _add_lifecycle(evaluate)
    evaluate.add_argument("--metric", help="a river.metrics class name (default by model kind)")
    evaluate.add_argument("--label-ttl", type=_positive_float, metavar="S", help="how long a prediction waits for its label")
    evaluate.add_argument("--parallelism", type=int, default=1)
    evaluate.add_argument("--plot", metavar="FILE.png", help="draw each model's all-keys metric along the stream")
    evaluate.add_argument("--plot-every", type=int, metavar="N",
                          help="a point every N labelled events (default: about 200 points for file inputs)")
    evaluate.add_argument("--out", help="keep the replay's outputs (predictions, metrics, ...) under this directory")

    models = commands.add_parser("models", help="inspect the models a run published (--models-out)")
    models.add_argument("action", choices=("show",))
    models.add_argument("destination", metavar="DEST", help="a --models-out directory")
    models.add_argument("--key", help="only this key")

    produce = commands.add_parser("produce", help="publish JSON-lines event files to a Kafka topic, keyed by 'key'")
    _add_kafka_client(produce)
    produce.add_argument("--topic", required=True)
    produce.add_argument("--partitions", type=int, default=1, help="for a topic that does not exist yet")
    produce.add_argument("--replication-factor", type=int, default=1, help="for a topic that does not exist yet")
    produce.add_argument("files", nargs="+", metavar="FILE", help="JSON-lines files (.gz ok)")

    cluster = commands.add_parser("cluster", help="a local Flink standalone cluster from the installed distribution")
    cluster.add_argument("action", choices=("start", "stop"))
    cluster.add_argument("--taskmanagers", type=int, default=1)
    cluster.add_argument("--slots", type=int, default=1, help="slots per TaskManager (one Python interpreter each TM)")
    cluster.add_argument("--port", type=int, default=8081, help="the JobManager's REST port")
    cluster.add_argument("--rpc-port", type=int, default=6123, help="the JobManager's RPC port")
    cluster.add_argument("--dir", help="config, logs, pids, checkpoints (default: ~/.cache/riverflink/flink-cluster-PORT)")
    cluster.add_argument("--no-warm-up", dest="warm", action="store_false",
                         help="start: report the cluster ready without its warm-up job (the first job then starts slower)")

    for name, purpose in (("savepoint", "take a savepoint of a running job"),
                          ("stop", "stop a running job with a savepoint and print its path")):
        command = commands.add_parser(name, help=purpose)
        command.add_argument("job_id", metavar="JOB_ID")
        command.add_argument("--jobmanager", default="127.0.0.1:8081", metavar="HOST:PORT")
        command.add_argument("--savepoint-dir", help="default: the cluster's execution.checkpointing.savepoint-dir")
    commands.choices["stop"].add_argument("--drain", action="store_true",
                                          help="end as if the input ended: final metrics and model snapshots first")

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
            reported = name != "events" or args.challenger or args.drift_detector
            if value is None and reported:
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
        key_ttl=args.key_ttl,
        key_cache_mb=args.key_cache_mb,
        batch_lines=args.batch_lines,
        batch_delay=args.batch_delay,
        metrics_interval=args.metrics_interval,
        snapshot_interval=args.snapshot_interval,
        job_name=args.job_name,
        kafka_bootstrap=args.kafka_bootstrap,
        kafka_topics=tuple(args.kafka_topic),
        kafka_group=args.kafka_group,
        kafka_offsets=args.kafka_offsets,
        kafka_stop_at_latest=args.kafka_stop_at_latest,
        kafka_delivery=args.kafka_delivery,
        kafka_properties=tuple(args.kafka_property),
        jobmanager=args.jobmanager,
        detached=args.detached,
        from_savepoint=args.from_savepoint,
        allow_non_restored_state=args.allow_non_restored_state,
        watch_inputs=args.watch_inputs,
        flink_options=tuple(args.flink_option),
        warm_start=args.warm_start,
        challengers=tuple(args.challenger),
        promotion_window=args.promotion_window,
        promotion_margin=args.promotion_margin,
        drift_detector=args.drift_detector,
        on_drift=args.on_drift,
        **outputs,
    )


def _root_cause(exc: Exception) -> str:
    """The innermost "Caused by" of a JVM error, which is the line a person needs."""
    causes = [line.strip() for line in str(exc).splitlines() if line.strip().startswith("Caused by:")]
    return causes[-1].removeprefix("Caused by:").strip() if causes else f"{type(exc).__name__}: {exc}"


def _run(args) -> int:
    # Imported here so that argument errors are reported without starting a JVM.
    from jobs.learn_job import run_job
    from jobs.cli.run import summarize

    settings = _settings(args)
    if not settings.bounded and not settings.detached and not args.quiet:
        source = f"Kafka ({', '.join(settings.kafka_topics)})" if settings.kafka_topics else "watched inputs"
        print(f"riverflink: learning from {source} until stopped (Ctrl-C)", file=sys.stderr)
    try:
        submitted = run_job(settings)
    except RiverflinkError:
        raise
    except KeyboardInterrupt:  # how a streaming run on the mini-cluster ends; the JVM goes with this process
        print("riverflink: stopped; outputs are committed up to the last completed checkpoint", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # the JVM's error: its root cause here, the whole trace in Flink's log
        logger.debug("job failed", exc_info=True)
        print(f"riverflink: job failed: {_root_cause(exc)} (full trace in {FLINK_LOG_DIR})", file=sys.stderr)
        return EXIT_JOB_FAILED
    if settings.detached:
        print(submitted.get_job_id())
    elif not args.quiet:
        print(summarize(settings))
    return 0


def _evaluate(args) -> int:
    import tempfile

    from jobs.cli.evaluate import evaluate, plot_curves

    with tempfile.TemporaryDirectory(prefix="riverflink-evaluate-") as scratch:
        out = pathlib.Path(args.out or scratch)
        settings = Settings(
            model=args.model, inputs=tuple(args.input), kafka_bootstrap=args.kafka_bootstrap,
            kafka_topics=tuple(args.kafka_topic), kafka_stop_at_latest=bool(args.kafka_topic),
            kafka_group=args.kafka_group, kafka_properties=tuple(args.kafka_property),
            warm_start=args.warm_start, challengers=tuple(args.challenger), promotion_window=args.promotion_window,
            promotion_margin=args.promotion_margin, drift_detector=args.drift_detector, on_drift=args.on_drift,
            metric=args.metric, label_ttl=args.label_ttl, parallelism=args.parallelism, job_name="riverflink-evaluate",
            metrics_every=args.plot_every or _plot_every(args.input), metrics_interval=3600, snapshot_interval=3600,
            predictions=str(out / "predictions"), metrics=str(out / "metrics"), dead_letters=str(out / "dead-letters"),
            events=str(out / "events") if args.challenger or args.drift_detector else None,
        )
        plot = None if args.plot is None else pathlib.Path(args.plot)
        if plot is not None and not plot.parent.is_dir():
            raise SettingsError(f"--plot {plot}: no such directory {plot.parent}")
        try:
            evaluation = evaluate(settings)
        except RiverflinkError:
            raise
        except Exception as exc:  # the JVM's error: its root cause here, the whole trace in Flink's log
            logger.debug("evaluation failed", exc_info=True)
            print(f"riverflink: evaluation failed: {_root_cause(exc)} (full trace in {FLINK_LOG_DIR})", file=sys.stderr)
            return EXIT_JOB_FAILED
    print(_evaluation_table(evaluation))
    if plot is not None:
        plot_curves(evaluation, plot)
        print(f"plot: {plot}")
    return 0


def _plot_every(inputs) -> int:
    """About 200 points along the stream for file inputs (counted cheaply, by newlines); 100 otherwise."""
    paths = [path for location in inputs for path in
             (sorted(pathlib.Path(location).rglob("*")) if pathlib.Path(location).is_dir() else [pathlib.Path(location)])]
    lines = sum(path.read_bytes().count(b"\n") for path in paths if path.is_file() and path.suffix != ".gz")
    return max(1, lines // 200) if lines else 100


def _evaluation_table(evaluation) -> str:
    rows = [("model", "metric", "all keys", "n", "keys", "min", "median", "max")]
    for model in evaluation.models:
        spread = model.spread
        per_key = ("", "", "", "") if spread is None else (
            str(spread.keys), f"{spread.low:.4f}", f"{spread.median:.4f}", f"{spread.high:.4f}")
        rows.append((model.name, model.metric, f"{model.value:.4f}", str(model.n), *per_key))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) if i < 2 else cell.rjust(width) for i, (cell, width) in
                       enumerate(zip(row, widths))).rstrip() for row in rows]
    for name, keys in evaluation.promotions.items():
        lines.append(f"promoted to {name} on {keys} key(s)")
    if evaluation.drifts:
        lines.append(f"drifts detected: {evaluation.drifts}")
    lines.append(f"dead letters: {evaluation.dead_letters}")
    return "\n".join(lines)


def _models(args) -> int:
    from jobs.cli.models import describe_models, models_table

    infos = describe_models(args.destination, args.key)
    print(models_table(infos))
    if args.key is None:
        print(f"{len(infos)} keys")
    return 0


def _kafka(args) -> int:
    from jobs.local.kafka import start_broker, stop_broker

    if args.action == "start":
        pid = start_broker(args.port, args.controller_port, args.data_dir)
        print(f"Kafka broker running on 127.0.0.1:{args.port} (pid {pid})")
    elif stop_broker(args.port, args.data_dir):
        print(f"Kafka broker on 127.0.0.1:{args.port} stopped")
    else:
        print(f"no Kafka broker started by riverflink is running on 127.0.0.1:{args.port}")
    return 0


def _produce(args) -> int:
    from jobs.cli.produce import publish

    if args.kafka_bootstrap is None:
        raise SettingsError("riverflink produce needs --kafka-bootstrap HOST:PORT")
    if args.partitions < 1 or args.replication_factor < 1:
        raise SettingsError("--partitions and --replication-factor must be at least 1")
    show = _progress_bar if sys.stderr.isatty() else None
    published = publish(args.kafka_bootstrap, args.topic, [pathlib.Path(f) for f in args.files], args.partitions,
                        args.replication_factor, tuple(args.kafka_property), show)
    if show is not None:
        print(file=sys.stderr)
    topic = f"{args.topic} ({'created, ' if published.created else ''}{published.partitions} partitions)"
    print(f"published {published.records} records from {len(args.files)} file(s) to {topic}; "
          f"{published.unkeyed} without a key")
    return 0


def _progress_bar(done: int, total: int) -> None:
    share = done / total if total else 1.0
    print(f"\r[{'#' * int(share * 30):<30}] {share:6.1%}", end="", file=sys.stderr, flush=True)


def _cluster(args) -> int:
    from jobs.local.cluster import start_cluster, stop_cluster

    if args.action == "start":
        processes = start_cluster(args.taskmanagers, args.slots, args.port, args.rpc_port, args.dir, args.warm)
        pids = ", ".join(f"{p.name} {p.pid}" for p in processes)
        print(f"Flink cluster running: REST and web UI on http://127.0.0.1:{args.port} ({pids})")
    elif stop_cluster(args.port, args.dir):
        print(f"Flink cluster on 127.0.0.1:{args.port} stopped")
    else:
        print(f"no Flink cluster started by riverflink is running on 127.0.0.1:{args.port}")
    return 0


def _savepoint(args) -> int:
    from jobs.cli.savepoints import stop_with_savepoint, trigger_savepoint

    if args.command == "stop":
        print(stop_with_savepoint(args.jobmanager, args.job_id, args.savepoint_dir, args.drain))
    else:
        print(trigger_savepoint(args.jobmanager, args.job_id, args.savepoint_dir))
    return 0


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    try:
        commands = {"run": _run, "evaluate": _evaluate, "models": _models, "produce": _produce, "kafka": _kafka, "cluster": _cluster,
                    "savepoint": _savepoint, "stop": _savepoint}
        return commands[args.command](args)
    except RiverflinkError as exc:
        print(f"riverflink: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
