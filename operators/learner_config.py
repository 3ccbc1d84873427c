"""What the learner is told when the job is built: its models, rules, intervals and wired outputs.

PyFlink pickles the learner function, and this with it, to ship it to the
workers: so it holds only plain values (models as envelopes), and no Flink
object.
"""

import dataclasses

from operators.lifecycle import LifecycleOptions
from operators.model_kinds import Kind

__all__ = ["LearnerConfig"]


@dataclasses.dataclass(frozen=True)
class LearnerConfig:
    """Everything ``operators.learner_function.LearnerFunction`` needs, chosen once by the job.

    Parameters
    ----------
    templates
        Name -> envelope (``state.envelope.dump_state``) of a model every new key
        starts from: the serving model's first, then the challengers.
    kind
        What every model is.
    metric_name
        The class of ``river.metrics`` each key is judged with, or None for the kind's default.
    metrics_interval_ms
        How often keys report their metrics (processing time).
    snapshot_interval_ms
        How often keys report a model snapshot (processing time).
    label_ttl_ms
        How long a prediction waits for its label; None is forever.
    arms
        A bandit policy's arms for decisions that name none; None: each decision names its arms.
    key_ttl_ms
        How long a key may go without an event before its state is dropped; None is forever.
    key_ttl_by_ts
        The key TTL is judged by the events' ``ts`` (event time), not by the clock.
    cache_bytes
        The size of the cache of deserialized keys (``state.key_cache``); 0 keeps none.
    warm_start
        New keys copy what the templates have learned, instead of cloning them.
    lifecycle
        Challengers' promotion and drift detection options, or None for one model per key.
    global_template
        The envelope of the global model as it starts (``operators.global_model``), or None for none: then
        the learner gets its versions with each batch (``operators.batching``), and each key has it as a candidate.
    process_mode
        The job runs in PyFlink's process mode (Beam workers), not thread mode.
    batched
        Lines come in batches from ``operators.batching``, which also announces every checkpoint barrier.
    batch_lines
        The most lines a batch holds: a smaller one came because the input is slow.
    emits_metrics, emits_metric_updates, emits_snapshots, emits_dead_letters, emits_events
        Which side outputs the job consumes: PyFlink fails on a record sent to any other.

    Examples
    --------
    >>> import pickle
    >>> config = LearnerConfig({"model": b"RFLK"}, Kind.REGRESSOR, None, 10_000, 60_000, emits_metrics=True)
    >>> pickle.loads(pickle.dumps(config)) == config
    True
    """

    templates: dict
    kind: Kind
    metric_name: str | None
    metrics_interval_ms: int
    snapshot_interval_ms: int
    label_ttl_ms: int | None = None
    arms: tuple | None = None
    key_ttl_ms: int | None = None
    key_ttl_by_ts: bool = False
    cache_bytes: int = 0
    warm_start: bool = False
    lifecycle: LifecycleOptions | None = None
    global_template: bytes | None = None
    process_mode: bool = False
    batched: bool = False
    batch_lines: int = 1
    emits_metrics: bool = False
    emits_metric_updates: bool = False
    emits_snapshots: bool = False
    emits_dead_letters: bool = False
    emits_events: bool = False

    @property
    def write_back(self) -> bool:
        """Whether keys' changes may wait in Python until the next barrier: barriers are announced, and a cache bounds what waits."""
        return self.batched and self.cache_bytes > 0
