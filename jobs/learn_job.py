"""The riverflink job: source (files, Kafka, or both) -> key (in Java) -> decode and learn -> sinks.

A job module only wires; decoding, learning and state live in ``operators/``
and ``state/``.
"""

import contextlib
import logging
import tempfile

from pyflink.common import Types
from pyflink.datastream import StreamExecutionEnvironment

from operators.batching import batched_process
from jobs.runtime.environment import create_environment
from jobs.kafka_offsets import commit_offsets, end_offsets
from operators.keying import key_lines, keyed_by_first_field
from jobs.model_spec import load_template
from jobs.settings import Settings
from jobs.sinks import add_sinks
from jobs.sources import event_lines
from operators.learner_function import LearnerFunction
from operators.lifecycle import LifecyclePolicy, make_detector
from operators.model_kinds import Kind, make_metric
from operators.outputs import DEAD_LETTERS, LIFECYCLE_EVENTS, METRIC_UPDATES, METRICS, MODEL_SNAPSHOTS
from operators.overall_metric import OverallMetricFunction
from state.envelope import dump_state
from state.exceptions import SettingsError

__all__ = ["build_job", "load_models", "run_job"]

logger = logging.getLogger(__name__)


def build_job(env: StreamExecutionEnvironment, settings: Settings, templates: dict, kind: Kind, metric,
              stop_offsets: dict | None = None) -> None:
    """Add riverflink's operator graph to ``env``.

    ``templates``: ``settings.models`` -> the model every new key starts
    from, checked by ``load_models``. ``stop_offsets``: where a bounded Kafka
    read ends (``jobs.kafka_offsets``).
    """
    lines = event_lines(env, settings, stop_offsets)

    wired = {DEAD_LETTERS: settings.dead_letters is not None, MODEL_SNAPSHOTS: settings.models_out is not None}
    wired[METRICS] = settings.metrics is not None and metric is not None
    wired[METRIC_UPDATES] = wired[METRICS]
    wired[LIFECYCLE_EVENTS] = settings.events is not None
    lifecycle = None
    if settings.has_lifecycle:
        detector = None if settings.drift_detector is None else make_detector(settings.drift_detector, kind)
        lifecycle = {
            "promotion_window": settings.promotion_window, "promotion_margin": settings.promotion_margin,
            "detector": None if detector is None else dump_state(detector), "on_drift": settings.on_drift,
        }
    batched = settings.batches_lines
    learner = LearnerFunction(
        templates={name: dump_state(template) for name, template in templates.items()},
        warm_start=settings.warm_start,
        lifecycle=lifecycle,
        kind=kind,
        metric_name=settings.metric,
        label_ttl_ms=Settings.ms(settings.label_ttl),
        key_ttl_ms=Settings.ms(settings.key_ttl),
        cache_bytes=int(settings.key_cache_mb * 2**20),
        process_mode=settings.execution_mode == "process",
        metrics_interval_ms=Settings.ms(settings.metrics_interval),
        snapshot_interval_ms=Settings.ms(settings.snapshot_interval),
        wired=frozenset(tag.tag_id for tag, on in wired.items() if on),
        batched=batched,
    )
    keyed = key_lines(lines)
    if batched:
        learned = batched_process(keyed, learner, settings.batch_lines, Settings.ms(settings.batch_delay))
    else:
        learned = keyed.process(learner, output_type=Types.STRING())
    predictions = learned.name("learn").uid("learner")

    sinks = {"predictions": predictions}
    if wired[DEAD_LETTERS]:
        sinks["dead_letters"] = predictions.get_side_output(DEAD_LETTERS)
    if wired[MODEL_SNAPSHOTS]:
        sinks["models_out"] = predictions.get_side_output(MODEL_SNAPSHOTS)
    if wired[LIFECYCLE_EVENTS]:
        sinks["events"] = predictions.get_side_output(LIFECYCLE_EVENTS)
    if wired[METRICS]:
        overall = (
            keyed_by_first_field(predictions.get_side_output(METRIC_UPDATES), Types.PICKLED_BYTE_ARRAY())
            .process(
                OverallMetricFunction(dump_state(metric), Settings.ms(settings.metrics_interval), settings.metrics_every),
                output_type=Types.STRING(),
            )
            .name("overall-metric")
            .uid("overall-metric")
        )
        sinks["metrics"] = predictions.get_side_output(METRICS).union(overall)
    add_sinks(env, settings, {name: stream for name, stream in sinks.items() if settings.outputs[name] is not None})


def load_models(settings: Settings) -> tuple[dict, Kind, object]:
    """``(name -> template, kind, metric)`` for ``settings.models``, or a ``RiverflinkError`` that says what is wrong."""
    templates, kinds = {}, {}
    for spec in settings.models:
        templates[spec], kinds[spec] = load_template(spec)
    kind = kinds[settings.model]
    for spec, other in kinds.items():
        if other is not kind:
            raise SettingsError(f"--challenger {spec} is a {other.value}, but --model is a {kind.value}")
    metric = make_metric(kind, settings.metric, templates[settings.model])
    if settings.has_lifecycle:  # what depends on the models: the metric judges challengers, the kind has errors
        detector = None if settings.drift_detector is None else make_detector(settings.drift_detector, kind)
        new_models = {spec: template.clone for spec, template in templates.items()}
        LifecyclePolicy(kind, new_models, lambda: None if metric is None else metric.clone(), detector=detector)
    return templates, kind, metric


def run_job(settings: Settings):
    """Build and run the job on the embedded mini-cluster, or submit it to ``settings.jobmanager``.

    Returns Flink's JobExecutionResult once the job ends, or, detached, the
    JobClient of the submitted job.
    """
    # The model specs and metric are checked before the JVM starts: a bad one costs no job.
    templates, kind, metric = load_models(settings)
    with contextlib.ExitStack() as cleanup:
        checkpoint_dir = settings.checkpoint_dir
        if checkpoint_dir is None and settings.jobmanager is None:  # nobody will resume from these: gone with the run
            checkpoint_dir = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="riverflink-checkpoints-"))
        env = create_environment(settings, checkpoint_dir)
        stop_offsets = end_offsets(settings) if settings.kafka_stop_at_latest else None
        build_job(env, settings, templates, kind, metric, stop_offsets)
        where = settings.jobmanager or "the embedded mini-cluster"
        logger.info("running %s on %s (parallelism %d)", settings.job_name, where, settings.parallelism)
        if settings.detached:
            return env.execute_async(settings.job_name)
        result = env.execute(settings.job_name)
        if stop_offsets is not None:  # Flink commits only on checkpoints the finished reader may have missed
            commit_offsets(settings, stop_offsets)
        return result
