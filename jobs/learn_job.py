"""The riverflink job: source (files, Kafka, or both) -> key (in Java) -> decode and learn -> sinks.

A job module only wires; decoding, learning and state live in ``operators/``
and ``state/``.
"""

import contextlib
import logging
import tempfile
import time
from collections.abc import Collection

from pyflink.common import Types
from pyflink.datastream import DataStream, StreamExecutionEnvironment

from jobs.kafka_topics import ensure_compacted
from jobs.model_spec import load_template
from jobs.runtime.environment import create_environment
from jobs.runtime.jvm import stop_jvm
from jobs.settings import Settings, kafka_topic_of
from jobs.sinks import add_sinks
from jobs.sources import event_lines
from operators.batching import batched_process
from operators.global_model import GLOBAL_KINDS, GLOBAL_VERSIONS, GlobalConfig, GlobalLearnerFunction
from operators.keying import UNROUTABLE, keyed_by_first_field, with_keys
from operators.learner_config import LearnerConfig
from operators.learner_function import LearnerFunction
from operators.lifecycle import BLEND, GLOBAL, LifecycleOptions, check_lifecycle, make_detector
from operators.model_kinds import Kind, make_metric
from operators.outputs import DEAD_LETTERS, LIFECYCLE_EVENTS, METRIC_UPDATES, METRICS, MODEL_SNAPSHOTS
from operators.overall_metric import OverallMetricFunction
from operators.records import template_record
from state.descriptors import LIVE_KEY_STATES
from state.envelope import dump_state
from state.exceptions import SettingsError

__all__ = ["build_job", "learned_streams", "learner_config", "load_models", "run_job"]

logger = logging.getLogger(__name__)

STATUS_POLL_S = 0.05  # how often an attached run asks a cluster whether its job has ended


def build_job(env: StreamExecutionEnvironment, settings: Settings, templates: dict, kind: Kind, metric,
              stop_offsets: dict | None = None) -> None:
    """Add riverflink's operator graph to ``env``: source -> key -> learn -> sinks.

    Parameters
    ----------
    env
        The environment to add the graph to (``jobs.runtime.environment.create_environment``).
    settings
        The run's settings.
    templates, kind, metric
        What ``load_models`` returned for ``settings``.
    stop_offsets
        Where a bounded Kafka read ends (``jobs.kafka_offsets.end_offsets``); None: it does not.
    """
    lines = event_lines(env, settings, stop_offsets)
    wanted = [name for name, destination in settings.outputs.destinations.items() if destination is not None]
    streams = learned_streams(lines, settings, templates, kind, metric, wanted)
    add_sinks(env, settings, {name: stream for name, stream in streams.items() if name in wanted})  # predictions too


def learned_streams(lines: DataStream, settings: Settings, templates: dict, kind: Kind, metric,
                    outputs: Collection[str]) -> dict[str, DataStream]:
    """The learner on ``lines``, keyed in Java: its output streams of JSON lines, the graph every riverflink job runs.

    Parameters
    ----------
    lines
        One event's JSON text per record (STRING).
    settings
        The learner's settings; sources and sinks in them are not looked at.
    templates, kind, metric
        What ``load_models`` returned for ``settings``.
    outputs
        Which of ``jobs.settings.OUTPUT_NAMES`` to emit; ``predictions`` always is.

    Returns
    -------
    dict
        ``output name -> DataStream`` for ``predictions`` and each of ``outputs`` the model's kind has
        (a kind without a metric has no ``metrics``).
    """
    global_template = load_global_model(settings, kind)
    config = learner_config(settings, templates, kind, metric, outputs, global_template)
    learner = LearnerFunction(config)
    keyed_rows = with_keys(lines, UNROUTABLE).name("key")  # the key read in Java (operators.keying)
    keyed = keyed_by_first_field(keyed_rows, Types.STRING())
    streams = {}
    versions = global_learned = None
    if global_template is not None:  # beside the learner, on the same lines: a graph has no loops
        global_learned = batched_process(
            keyed_by_first_field(keyed_rows, Types.STRING()),
            GlobalLearnerFunction(_global_config(settings, templates, kind, global_template, outputs)),
            settings.tuning.batch_lines, Settings.ms(settings.batch_delay),
        ).name("global-learn").uid("global-learner").set_parallelism(1)
        versions = global_learned.get_side_output(GLOBAL_VERSIONS)
        streams["global_trace"] = global_learned
    if config.batched:
        learned = batched_process(keyed, learner, settings.tuning.batch_lines, Settings.ms(settings.batch_delay),
                                  live_key_states=LIVE_KEY_STATES, global_versions=versions)
    else:
        learned = keyed.process(learner, output_type=Types.STRING())
    predictions = learned.name("learn").uid("learner")

    streams["predictions"] = predictions
    if config.emits_dead_letters:
        streams["dead_letters"] = predictions.get_side_output(DEAD_LETTERS)
    if config.emits_snapshots:
        env = lines.get_execution_environment()
        template = env.from_collection([_template_line(settings, templates, global_template)], type_info=Types.STRING())
        template = template.name("model-template").uid("model-template")
        streams["models_out"] = predictions.get_side_output(MODEL_SNAPSHOTS).union(template)
        if global_learned is not None:  # its versions, in template records
            streams["models_out"] = streams["models_out"].union(global_learned.get_side_output(MODEL_SNAPSHOTS))
    if config.emits_events:
        streams["events"] = predictions.get_side_output(LIFECYCLE_EVENTS)
    if config.emits_metrics:
        overall = (
            keyed_by_first_field(predictions.get_side_output(METRIC_UPDATES), Types.PICKLED_BYTE_ARRAY())
            .process(
                OverallMetricFunction(dump_state(metric), Settings.ms(settings.tuning.metrics_interval), settings.tuning.metrics_every),
                output_type=Types.STRING(),
            )
            .name("overall-metric")
            .uid("overall-metric")
        )
        streams["metrics"] = predictions.get_side_output(METRICS).union(overall)
    return streams


def _keys_template(settings: Settings, templates: dict) -> bytes:
    """The envelope of the model a new key starts from, as the learner makes it."""
    template = templates[settings.model]
    return dump_state(template if settings.lifecycle.warm_start else template.clone())


def _template_line(settings: Settings, templates: dict, global_template) -> str:
    """The models output's template record: the model a new key starts from, which model serves it, and the
    global model as it starts (version 0)."""
    now_ms, keys_template = time.time_ns() // 1_000_000, _keys_template(settings, templates)
    if global_template is not None:
        serving, weight = _new_keys_served(settings)
        return template_record(keys_template, now_ms, serving=serving, global_version=0,
                               global_model=dump_state(global_template), global_weight=weight)
    return template_record(keys_template, now_ms, serving=settings.model if settings.has_lifecycle else None)


def _new_keys_served(settings: Settings) -> tuple[str, float | None]:
    """With a global model: what serves a key the job has not seen, and the global model's share in a blend.

    Under ``--global-blend`` a new key blends the global model with its own
    from its first event, as equals (no labels judged them yet), unless it
    has no model of its own until a label (``--admit-after``, ``--warm-start``).
    """
    lifecycle = settings.lifecycle
    if not lifecycle.global_blend:
        return GLOBAL, None
    return BLEND, 1.0 if lifecycle.admit_after is not None or lifecycle.warm_start else 0.5


def _global_config(settings: Settings, templates: dict, kind: Kind, template, outputs: Collection[str]) -> GlobalConfig:
    """The global model's operator's configuration: it starts from its spec as it is (a ``.pkl`` learns on)."""
    lifecycle = settings.lifecycle
    serving, weight = _new_keys_served(settings)
    return GlobalConfig(template=dump_state(template), kind=kind, every=lifecycle.global_every,
                        interval_ms=Settings.ms(lifecycle.global_interval), label_ttl_ms=Settings.ms(settings.label_ttl),
                        traced="global_trace" in outputs,
                        keys_template=_keys_template(settings, templates) if "models_out" in outputs else None,
                        keys_serving=serving, keys_global_weight=weight)


def learner_config(settings: Settings, templates: dict, kind: Kind, metric, outputs: Collection[str],
                   global_template=None) -> LearnerConfig:
    """The learner's configuration for ``settings``.

    Parameters
    ----------
    settings
        The run's settings.
    templates, kind, metric
        What ``load_models`` returned; ``metric`` None (a kind without one) emits no metrics.
    outputs
        Which outputs to emit besides predictions (``jobs.settings.OUTPUT_NAMES``).
    global_template
        The ``--global-model`` as ``load_global_model`` returned it, or None.
    """
    lifecycle = None
    if settings.has_lifecycle:
        detector = None if settings.lifecycle.drift_detector is None else make_detector(settings.lifecycle.drift_detector, kind)
        lifecycle = LifecycleOptions(
            promotion_window=settings.lifecycle.promotion_window, promotion_margin=settings.lifecycle.promotion_margin,
            detector=None if detector is None else dump_state(detector), on_drift=settings.lifecycle.on_drift,
            admit_after=settings.lifecycle.admit_after,
            warm_from_global=settings.lifecycle.warm_start and settings.lifecycle.global_model is not None,
            global_blend=settings.lifecycle.global_blend,
        )
    emits_metrics = "metrics" in outputs and metric is not None
    return LearnerConfig(
        templates={name: dump_state(template) for name, template in templates.items()},
        kind=kind,
        metric_name=settings.metric,
        metrics_interval_ms=Settings.ms(settings.tuning.metrics_interval),
        snapshot_interval_ms=Settings.ms(settings.tuning.snapshot_interval),
        label_ttl_ms=Settings.ms(settings.label_ttl),
        arms=settings.arms,
        key_ttl_ms=Settings.ms(settings.key_ttl),
        key_ttl_by_ts=settings.key_ttl_by == "ts",
        cache_bytes=int(settings.tuning.key_cache_mb * 2**20),
        warm_start=settings.lifecycle.warm_start,
        lifecycle=lifecycle,
        global_template=None if global_template is None else dump_state(global_template),
        process_mode=settings.execution_mode == "process",
        batched=settings.batches_lines,
        batch_lines=settings.tuning.batch_lines,
        emits_metrics=emits_metrics,
        emits_metric_updates=emits_metrics,
        emits_snapshots="models_out" in outputs,
        emits_dead_letters="dead_letters" in outputs,
        emits_events="events" in outputs,
    )


def load_models(settings: Settings) -> tuple[dict, Kind, object]:
    """Load and check the models of ``settings`` before any JVM starts.

    Parameters
    ----------
    settings
        The run's settings: ``--model``, challengers, metric and drift detector.

    Returns
    -------
    tuple
        ``(spec -> template, kind, metric)``; ``metric`` is None for a kind without one.

    Raises
    ------
    RiverflinkError
        A model that cannot be loaded, kinds that differ, or a metric or detector that does not fit.
    """
    templates, kinds = {}, {}
    for spec in settings.models:
        templates[spec], kinds[spec] = load_template(spec)
    kind = kinds[settings.model]
    for spec, other in kinds.items():
        if other is not kind:
            raise SettingsError(f"--challenger {spec} is a {other.value}, but --model is a {kind.value}")
    metric = make_metric(kind, settings.metric, templates[settings.model])
    if settings.arms is not None and kind is not Kind.BANDIT:
        raise SettingsError(f"--arms is for a bandit policy, and --model is a {kind.value}")
    if kind is Kind.BANDIT and settings.lifecycle.warm_start:
        raise SettingsError("--warm-start copies what a model learned, but each key's bandit policy starts as a "
                            "fresh clone with the key's own seed (docs/bandits.md)")
    for spec, template in templates.items():
        if kind is Kind.BANDIT and getattr(template, "seed", None) is None:
            logger.warning("%s has no seed: its keys draw differently on every run, and after a restore from a "
                           "checkpoint they no longer draw as an uninterrupted run would; give it a seed", spec)
    shared = load_global_model(settings, kind) is not None
    if settings.has_lifecycle:  # what depends on the models: the metric judges challengers, the kind has errors
        detector = None if settings.lifecycle.drift_detector is None else make_detector(settings.lifecycle.drift_detector, kind)
        check_lifecycle(kind, metric, challenged=len(templates) > 1 or shared, drift_detection=detector is not None)
    return templates, kind, metric


def load_global_model(settings: Settings, kind: Kind):
    """The ``--global-model`` of ``settings`` as loaded (None without one), checked against the keys' models' ``kind``."""
    spec = settings.lifecycle.global_model
    if spec is None:
        return None
    template, global_kind = load_template(spec)
    if global_kind is not kind:
        raise SettingsError(f"--global-model {spec} is a {global_kind.value}, but --model is a {kind.value}")
    if settings.lifecycle.global_blend and kind is not Kind.CLASSIFIER:
        raise SettingsError(f"--global-blend mixes probabilities: it is for classifiers, and --model is a {kind.value}")
    if kind not in GLOBAL_KINDS:
        raise SettingsError(f"--global-model: a {kind.value} cannot be one; a global model is a classifier or "
                            "a regressor, learning from every key's labels")
    return template


def _stop_jvm_when_interrupted(exc_type, exc, traceback) -> bool:
    """On Ctrl-C, end the mini-cluster that is still checkpointing; the error goes on either way."""
    if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
        stop_jvm()
    return False


def _result_when_done(client):
    """The result of a job submitted to a cluster, asked for as soon as the job ends.

    Flink's REST client polls for a job's result with a backoff that grows
    to 2 s, so an attached run would notice the end of its job up to 2 s late;
    the job's status is a cheap request to repeat.
    """
    while not client.get_job_status().result().is_globally_terminal_state():
        time.sleep(STATUS_POLL_S)
    return client.get_job_execution_result().result()


def run_job(settings: Settings):
    """Build and run the job on the embedded mini-cluster, or submit it to ``settings.jobmanager``.

    Parameters
    ----------
    settings
        The run's settings.

    Returns
    -------
    JobExecutionResult or JobClient
        Flink's result once the job ends; detached, the client of the submitted job.
    """
    # The model specs and metric are checked before the JVM starts: a bad one costs no job.
    templates, kind, metric = load_models(settings)
    with contextlib.ExitStack() as cleanup:
        checkpoint_dir = settings.checkpoint_dir
        if checkpoint_dir is None and settings.jobmanager is None:  # nobody will resume from these: gone with the run
            checkpoint_dir = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="riverflink-checkpoints-"))
            cleanup.push(_stop_jvm_when_interrupted)  # unwound first: the job stops writing before its folder goes
        models_topic = kafka_topic_of(settings.outputs.models_out)
        if models_topic is not None:
            ensure_compacted(settings.kafka, models_topic, settings.parallelism)
        env = create_environment(settings, checkpoint_dir)
        stop_offsets = None
        if settings.kafka.stop_at_latest:
            from jobs.kafka_offsets import commit_offsets, end_offsets  # kafka-python: 0.05 s a file-only run skips

            stop_offsets = end_offsets(settings.kafka)
        build_job(env, settings, templates, kind, metric, stop_offsets)
        where = settings.jobmanager or "the embedded mini-cluster"
        logger.info("running %s on %s (parallelism %d)", settings.job_name, where, settings.parallelism)
        if settings.detached:
            return env.execute_async(settings.job_name)
        if settings.jobmanager is None:
            result = env.execute(settings.job_name)
        else:
            result = _result_when_done(env.execute_async(settings.job_name))
        if stop_offsets is not None:  # Flink commits only on checkpoints the finished reader may have missed
            commit_offsets(settings.kafka, stop_offsets)
        return result
