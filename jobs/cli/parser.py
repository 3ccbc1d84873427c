"""The command line's arguments, in sections, and the one way from parsed arguments to ``Settings``.

Each section of ``riverflink run --help`` is an argument group that matches
a concern of ``jobs.settings`` (Kafka, outputs, model lifecycle, learner
tuning) or of the run as a whole (model and input, state and checkpoints,
cluster and submission). ``evaluate`` adds the same groups where it takes the
same options.
"""

import argparse
import os
import pathlib

from jobs.cli.failures import EXIT_USAGE
from jobs.profiles import PROFILE_NAMES
from jobs.settings import (
    EXECUTION_MODES,
    KAFKA_DELIVERIES,
    KEY_TTL_CLOCKS,
    ON_DRIFT,
    OUTPUT_NAMES,
    STATE_BACKENDS,
    KafkaSettings,
    LifecycleSettings,
    OutputSettings,
    Settings,
    TuningSettings,
)

__all__ = ["build_parser", "settings_from_args"]

MODEL_HELP = "package.module:name, path/to/file.py:name or model.pkl"


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


def _arms(text: str) -> tuple[str, ...]:
    arms = tuple(arm.strip() for arm in text.split(","))
    if not all(arms) or len(set(arms)) != len(arms):
        raise argparse.ArgumentTypeError("must be distinct arm names separated by commas")
    return arms


def _add_judging(group) -> None:
    """How predictions are scored: the same for a run and an evaluation."""
    group.add_argument("--metric", help="a river.metrics class name (default by model kind)")
    group.add_argument("--label-ttl", type=_positive_float, metavar="S", help="how long a prediction waits for its label")
    group.add_argument("--arms", type=_arms, metavar="A,B,...",
                       help="a bandit policy's arms, for decisions that name none (docs/bandits.md)")


def _add_kafka_client(group) -> None:
    group.add_argument("--kafka-bootstrap", metavar="HOST:PORT[,...]", help="Kafka bootstrap servers")
    group.add_argument("--kafka-property", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                       help="a Kafka client property (SASL, SSL, ...), repeatable; never printed or logged")


def _add_lifecycle(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model lifecycle")
    group.add_argument("--warm-start", action="store_true",
                       help="new keys start from a copy of the --model as it is (pre-trained), not a blank clone")
    group.add_argument("--challenger", action="append", default=[], metavar="SPEC",
                       help="a model trained in shadow on every key, served where it beats the serving model; "
                            "repeatable")
    group.add_argument("--promotion-window", type=int, default=100, metavar="N",
                       help="a challenger is judged on each key's last N labelled events (default 100)")
    group.add_argument("--promotion-margin", type=float, default=0.0, metavar="M",
                       help="by how much of the metric it must be better there (default 0: any better)")
    group.add_argument("--drift-detector", metavar="NAME",
                       help="a river.drift detector class (ADWIN, PageHinkley, DDM, ...) on each key's errors")
    group.add_argument("--on-drift", choices=ON_DRIFT, default="none",
                       help="reset: each of the key's models starts over when its detector fires")
    shared = group.add_mutually_exclusive_group()
    shared.add_argument("--global-model", metavar="SPEC",
                        help="one model learning from every key's labelled events, served by each key until its own "
                             "model beats it over --promotion-window (docs/global-model.md)")
    shared.add_argument("--global", action="store_true", help="--global-model with the --model's spec")
    group.add_argument("--global-every", type=int, default=1000, metavar="N",
                       help="the learners get a new version of the global model every N of its learn steps "
                            "(default 1000)")
    group.add_argument("--global-interval", type=_positive_float, default=5.0, metavar="S",
                       help="... or S seconds after its last version, if it learned since (default 5)")
    group.add_argument("--admit-after", type=int, metavar="N",
                       help="with a global model: a key gets models of its own only at its Nth labelled event "
                            "(default: at its first event); until then it holds none")
    group.add_argument("--global-blend", action="store_true",
                       help="classifiers: each key serves its own and the global model's probabilities, weighted by "
                            "their log loss on its labels, in place of promotion (docs/global-model.md)")


def _add_run(commands) -> None:
    run = commands.add_parser("run", help="run the learning job")
    source = run.add_argument_group("model and input")
    source.add_argument("--model", required=True, help=MODEL_HELP)
    source.add_argument("--input", action="append", default=[], help="JSON-lines file or directory (.gz ok); repeatable")
    source.add_argument("--watch-inputs", type=_positive_float, metavar="S",
                        help="keep running and read files that appear in the --input directories, looking every S seconds")
    _add_judging(source)

    kafka = run.add_argument_group("Kafka")
    _add_kafka_client(kafka)
    kafka.add_argument("--kafka-topic", action="append", default=[], help="read events from this topic; repeatable; "
                       "with --input, the files are read first, then Kafka, in one job")
    kafka.add_argument("--kafka-group", default="riverflink", help="consumer group (offsets are committed on checkpoints)")
    kafka.add_argument("--kafka-offsets", default="earliest", metavar="WHERE",
                       help="where to start without a checkpoint: earliest, latest, committed, or a time "
                            "(epoch ms or ISO-8601 with zone)")
    kafka.add_argument("--kafka-stop-at-latest", action="store_true",
                       help="read only up to the offsets present when the job starts, then finish")
    kafka.add_argument("--kafka-delivery", choices=KAFKA_DELIVERIES, default="exactly-once",
                       help="for kafka:// outputs: transactions committed on checkpoints, or lower latency")

    outputs = run.add_argument_group("outputs")
    outputs.add_argument("--out", help="write every output under this directory")
    outputs.add_argument("--predictions", help="predictions destination: a directory or kafka://TOPIC")
    outputs.add_argument("--metrics", help="metrics destination: a directory or kafka://TOPIC")
    outputs.add_argument("--dead-letters", help="dead letters destination: a directory or kafka://TOPIC")
    outputs.add_argument("--global-trace", help="with --global-model: every event it learned from, in the order "
                                                "it learned them, in one file (a directory)")
    outputs.add_argument("--models-out", help="model snapshots destination: a directory or kafka://TOPIC")
    outputs.add_argument("--events", help="promotions and drifts destination: a directory or kafka://TOPIC")
    outputs.add_argument("--overwrite", action="store_true",
                         help="clear the part files an earlier run left in directory outputs (without it, such "
                              "outputs are refused, unless --from-savepoint resumes that run)")
    outputs.add_argument("--quiet", action="store_true", help="print no summary")

    _add_lifecycle(run)

    state = run.add_argument_group("state and checkpoints")
    state.add_argument("--checkpoint-interval", type=_positive_float, default=10.0, metavar="S")
    state.add_argument("--checkpoint-dir")
    state.add_argument("--state-backend", choices=STATE_BACKENDS, default="hashmap")
    state.add_argument("--key-ttl", type=_positive_float, metavar="S",
                       help="drop the model and all state of a key idle this long (processing time; default never)")
    state.add_argument("--key-ttl-by", choices=KEY_TTL_CLOCKS, default="processing",
                       help="ts: a key is idle by its events' ts (event time), so a backfill expires keys as the "
                            "live stream did (default: processing time)")
    state.add_argument("--from-savepoint", metavar="PATH", help="resume from a savepoint or retained checkpoint")
    state.add_argument("--allow-non-restored-state", action="store_true",
                       help="with --from-savepoint: drop state of operators the job no longer has (a backfill's file source)")

    tuning = run.add_argument_group("learner tuning")
    tuning.add_argument("--execution-mode", choices=EXECUTION_MODES, default="thread")
    tuning.add_argument("--key-cache-mb", type=float, default=64.0, metavar="MB",
                        help="per learner subtask, keep deserialized key states up to this serialized size between "
                             "events; 0 turns it off (default 64)")
    tuning.add_argument("--batch-lines", type=int, default=256, metavar="N",
                        help="thread mode: hand the learner up to N lines per call from Java; 1 turns batching off "
                             "(default 256)")
    tuning.add_argument("--profile", choices=PROFILE_NAMES, default="auto",
                        help="latency: short waits for network buffers, batches and Kafka outputs; throughput: "
                             "Flink's and Kafka's longer ones; auto (default): latency when the run streams, "
                             "throughput when it is bounded")
    tuning.add_argument("--batch-delay", type=float, metavar="S",
                        help="thread mode: how long a line waits at most for its batch to fill "
                             "(default: the profile's, 0.001 for latency, 0.01 for throughput)")
    tuning.add_argument("--metrics-interval", type=_positive_float, default=10.0, metavar="S")
    tuning.add_argument("--snapshot-interval", type=_positive_float, default=60.0, metavar="S")
    tuning.add_argument("--flink-option", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                        help="any Flink option for this job, applied last (e.g. taskmanager.network.memory.buffer-debloat.enabled=true)")

    cluster = run.add_argument_group("cluster and submission")
    cluster.add_argument("--parallelism", type=int, default=1)
    cluster.add_argument("--job-name", default="riverflink",
                         help="also the Kafka transactional id prefix: concurrent jobs need different names")
    cluster.add_argument("--jobmanager", metavar="HOST:PORT",
                         help="submit to this Flink cluster's REST address instead of the embedded mini-cluster")
    cluster.add_argument("--detached", action="store_true", help="with --jobmanager: print the job id and return")
    cluster.add_argument("--prometheus-port", metavar="PORT[-PORT]",
                         help="serve the job's Flink metrics to Prometheus on this port of the mini-cluster (a cluster "
                              "has its own: riverflink cluster start --prometheus-port)")


def _add_evaluate(commands) -> None:
    evaluate = commands.add_parser("evaluate", help="replay an event log through the job and report each model's "
                                   "progressive metric")
    source = evaluate.add_argument_group("model and input")
    source.add_argument("--model", required=True, help=MODEL_HELP)
    source.add_argument("--input", action="append", default=[], help="JSON-lines file or directory; repeatable")
    _add_judging(source)

    kafka = evaluate.add_argument_group("Kafka")
    _add_kafka_client(kafka)
    kafka.add_argument("--kafka-topic", action="append", default=[],
                       help="replay this topic up to the offsets present when evaluate starts; repeatable")
    kafka.add_argument("--kafka-stop-at-latest", action="store_true", help="always on: an evaluation ends")
    kafka.add_argument("--kafka-group", default="riverflink-evaluate",
                       help="consumer group whose offsets the replay commits (never the serving job's)")

    _add_lifecycle(evaluate)

    report = evaluate.add_argument_group("evaluation")
    report.add_argument("--parallelism", type=int, default=1)
    report.add_argument("--plot", metavar="FILE.png", help="draw each model's all-keys metric along the stream")
    report.add_argument("--html", metavar="FILE.html",
                        help="the table and the plot as one self-contained HTML page (nothing fetched from elsewhere)")
    report.add_argument("--plot-every", type=int, metavar="N",
                        help="a point every N labelled events (default: about 200 points for file inputs)")
    report.add_argument("--out", help="keep the replay's outputs (predictions, metrics, ...) under this directory")
    report.add_argument("--overwrite", action="store_true", help="clear an earlier evaluation's outputs from --out first")


def _add_tools(commands) -> None:
    """The commands around the job: inspecting models, publishing events, local services, savepoints."""
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
    cluster.add_argument("--prometheus-port", metavar="PORT[-PORT]",
                         help="start: every JVM serves its Flink metrics to Prometheus on the first free port of "
                              "this range (one port each for the JobManager and every TaskManager)")
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


def _add_serve(commands) -> None:
    serve = commands.add_parser("serve", help="answer predictions of every key's latest model over HTTP (docs/serving.md)")
    follow = serve.add_argument_group("what to serve")
    where = follow.add_mutually_exclusive_group(required=True)
    where.add_argument("--models", metavar="DEST", help="a job's --models-out: a directory or kafka://TOPIC")
    where.add_argument("--out", metavar="DIR",
                       help="a job's --out: serve DIR/models-out; the dashboard follows DIR/metrics, events, dead-letters")
    board = serve.add_argument_group("what the dashboard at / follows (with --models; --out finds them under DIR)")
    board.add_argument("--metrics", metavar="DEST", help="the job's --metrics: a directory or kafka://TOPIC")
    board.add_argument("--events", metavar="DEST", help="the job's --events (drifts, promotions)")
    board.add_argument("--dead-letters", metavar="DEST", help="the job's --dead-letters")
    follow.add_argument("--live-models", type=int, default=100_000, metavar="N",
                        help="keys whose model is kept restored; others keep only their snapshot's bytes")
    http = serve.add_argument_group("HTTP")
    http.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: loopback only)")
    http.add_argument("--port", type=int, default=8000)
    http.add_argument("--token", default=os.environ.get("RIVERFLINK_SERVE_TOKEN"),
                      help="a bearer token every route but /health needs (default: $RIVERFLINK_SERVE_TOKEN)")
    http.add_argument("--max-body", type=int, default=1 << 20, metavar="BYTES", help="the largest request body taken")
    kafka = serve.add_argument_group("Kafka")
    _add_kafka_client(kafka)
    kafka.add_argument("--kafka-topic", metavar="TOPIC", help="forward POST /events lines to the job's input topic")


def build_parser() -> argparse.ArgumentParser:
    """The ``riverflink`` parser, every command included; an error exits with status 2 and one line.

    Examples
    --------
    >>> args = build_parser().parse_args(["run", "--model", "m.pkl", "--kafka-bootstrap", "k:9092"])
    >>> args.command, args.kafka_bootstrap, args.batch_lines
    ('run', 'k:9092', 256)
    """
    parser = _Parser(prog="riverflink", description="One river model per key in Apache Flink's keyed state.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run(commands)
    _add_evaluate(commands)
    _add_serve(commands)
    _add_tools(commands)
    return parser


def settings_from_args(args: argparse.Namespace, scratch: str | None = None) -> Settings:
    """The validated ``Settings`` that parsed ``riverflink run`` or ``riverflink evaluate`` arguments describe.

    ``run``'s ``--out DIR`` places each output not given its own destination
    under ``DIR`` (``events`` only with a lifecycle to report). ``evaluate``
    replays its input to the end into predictions, metrics, dead letters and
    events under ``--out`` (or ``scratch``), and reports the metrics along
    the stream often enough for a plot.

    Parameters
    ----------
    args
        What ``build_parser().parse_args`` returned for ``run`` or ``evaluate``.
    scratch
        For ``evaluate`` without ``--out``: the directory its outputs go to.

    Raises
    ------
    SettingsError
        When the arguments are wrong or conflict, naming the option.

    Examples
    --------
    >>> argv = ["run", "--model", "river.linear_model:LinearRegression", "--kafka-bootstrap", "k:9092",
    ...         "--kafka-topic", "events", "--out", "out", "--challenger", "river.linear_model:PARegressor"]
    >>> settings = settings_from_args(build_parser().parse_args(argv))
    >>> settings.kafka.topics, settings.outputs.events, settings.models[1]
    (('events',), 'out/events', 'river.linear_model:PARegressor')
    """
    lifecycle = LifecycleSettings(
        warm_start=args.warm_start, challengers=tuple(args.challenger), promotion_window=args.promotion_window,
        promotion_margin=args.promotion_margin, drift_detector=args.drift_detector, on_drift=args.on_drift,
        global_model=args.model if args.__dict__["global"] else args.global_model, global_every=args.global_every,
        global_interval=args.global_interval, admit_after=args.admit_after, global_blend=args.global_blend,
    )
    reported = bool(lifecycle.challengers) or lifecycle.drift_detector is not None or lifecycle.global_model is not None
    if args.command == "evaluate":
        if args.out is None and scratch is None:
            raise ValueError("evaluate arguments without --out need a scratch directory for the replay's outputs")
        return _evaluation_settings(args, lifecycle, reported, pathlib.Path(args.out or scratch))
    outputs = {name: getattr(args, name) for name in OUTPUT_NAMES}
    if args.out is not None:
        for name, value in outputs.items():
            if value is None and (name != "events" or reported) and name != "global_trace":  # an audit: asked for
                outputs[name] = str(pathlib.Path(args.out) / name.replace("_", "-"))
    return Settings(
        model=args.model,
        inputs=tuple(args.input),
        watch_inputs=args.watch_inputs,
        metric=args.metric,
        label_ttl=args.label_ttl,
        arms=args.arms,
        key_ttl=args.key_ttl,
        key_ttl_by=args.key_ttl_by,
        parallelism=args.parallelism,
        execution_mode=args.execution_mode,
        state_backend=args.state_backend,
        checkpoint_interval=args.checkpoint_interval,
        checkpoint_dir=args.checkpoint_dir,
        from_savepoint=args.from_savepoint,
        allow_non_restored_state=args.allow_non_restored_state,
        job_name=args.job_name,
        jobmanager=args.jobmanager,
        detached=args.detached,
        flink_options=tuple(args.flink_option),
        prometheus_port=args.prometheus_port,
        kafka=KafkaSettings(
            bootstrap=args.kafka_bootstrap, topics=tuple(args.kafka_topic), group=args.kafka_group,
            offsets=args.kafka_offsets, stop_at_latest=args.kafka_stop_at_latest, delivery=args.kafka_delivery,
            properties=tuple(args.kafka_property),
        ),
        outputs=OutputSettings(**outputs),
        lifecycle=lifecycle,
        tuning=TuningSettings(
            key_cache_mb=args.key_cache_mb, batch_lines=args.batch_lines, batch_delay=args.batch_delay, profile=args.profile,
            metrics_interval=args.metrics_interval, snapshot_interval=args.snapshot_interval,
        ),
    )


def _evaluation_settings(args, lifecycle: LifecycleSettings, reported: bool, out: pathlib.Path) -> Settings:
    return Settings(
        model=args.model,
        inputs=tuple(args.input),
        metric=args.metric,
        label_ttl=args.label_ttl,
        arms=args.arms,
        parallelism=args.parallelism,
        job_name="riverflink-evaluate",
        kafka=KafkaSettings(
            bootstrap=args.kafka_bootstrap, topics=tuple(args.kafka_topic), group=args.kafka_group,
            stop_at_latest=bool(args.kafka_topic), properties=tuple(args.kafka_property),
        ),
        outputs=OutputSettings(
            predictions=str(out / "predictions"), metrics=str(out / "metrics"), dead_letters=str(out / "dead-letters"),
            events=str(out / "events") if reported else None,
        ),
        lifecycle=lifecycle,
        tuning=TuningSettings(metrics_every=args.plot_every or _plot_every(args.input), metrics_interval=3600,
                              snapshot_interval=3600),
    )


def _plot_every(inputs) -> int:
    """About 200 points along the stream for file inputs (counted cheaply, by newlines); 100 otherwise."""
    paths = [path for location in inputs for path in
             (sorted(pathlib.Path(location).rglob("*")) if pathlib.Path(location).is_dir() else [pathlib.Path(location)])]
    lines = sum(path.read_bytes().count(b"\n") for path in paths if path.is_file() and path.suffix != ".gz")
    return max(1, lines // 200) if lines else 100
