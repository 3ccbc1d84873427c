"""The one frozen, validated description of a run. Everything downstream trusts it."""

import dataclasses
import datetime
import os
import pathlib
import re
import urllib.parse

from state.exceptions import SettingsError

__all__ = [
    "Settings", "STATE_BACKENDS", "EXECUTION_MODES", "OUTPUT_NAMES", "KAFKA_DELIVERIES", "ON_DRIFT", "KAFKA_OFFSETS",
    "kafka_topic_of", "parse_start_offset", "local_path", "worker_location",
]

STATE_BACKENDS = ("hashmap", "rocksdb")
EXECUTION_MODES = ("thread", "process")
OUTPUT_NAMES = ("predictions", "metrics", "dead_letters", "models_out", "events")
KAFKA_DELIVERIES = ("exactly-once", "at-least-once")
ON_DRIFT = ("none", "reset")  # what a key does when its drift detector fires: report it, or also start over
KAFKA_OFFSETS = ("earliest", "latest", "committed")  # or a point in time, see parse_start_offset
KAFKA_SCHEME = "kafka://"
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


def kafka_topic_of(destination: str | None) -> str | None:
    """The topic of a ``kafka://TOPIC`` destination; None for a directory."""
    if destination is None or not destination.startswith(KAFKA_SCHEME):
        return None
    return destination.removeprefix(KAFKA_SCHEME)


def _scheme(location: str) -> str | None:
    """The URI scheme of ``location`` (``file``, ``s3``), None for a plain path."""
    scheme, colon, _ = location.partition(":")
    return scheme if colon and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]+", scheme) else None


def local_path(location: str) -> pathlib.Path | None:
    """The local path a location names (``/x``, ``x``, ``file:/x``, ``file:///x``); None for a remote one (``s3://``).

    >>> local_path("file:/tmp/sp"), local_path("s3://bucket/sp")
    (PosixPath('/tmp/sp'), None)
    """
    scheme = _scheme(location)
    if scheme is None:
        return pathlib.Path(location)
    if scheme != "file":
        return None
    return pathlib.Path(urllib.parse.urlparse(location).path)


def worker_location(location: str) -> str:
    """``location`` as Flink's workers must be given it: a relative path made absolute here, anything else as it is.

    A relative ``--input`` or ``--out`` means relative to where riverflink
    runs, but a cluster's TaskManagers run in a folder of their own.

    >>> import os; worker_location("out/p") == os.path.join(os.getcwd(), "out/p"), worker_location("s3://b/p")
    (True, 's3://b/p')
    """
    if _scheme(location) is None and not os.path.isabs(location):
        return os.path.abspath(location)
    return location


def parse_start_offset(text: str) -> str | int:
    """``earliest``, ``latest``, ``committed``, or a point in time as epoch milliseconds.

    >>> parse_start_offset("2026-01-01T00:00:00Z")
    1767225600000
    >>> parse_start_offset("1767225600000")
    1767225600000
    """
    if text in KAFKA_OFFSETS:
        return text
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise SettingsError(
            f"--kafka-offsets must be one of {', '.join(KAFKA_OFFSETS)}, epoch milliseconds or an ISO-8601 time, "
            f"not {text!r}"
        ) from None
    if moment.tzinfo is None:
        raise SettingsError(f"--kafka-offsets {text}: give a time zone (e.g. {text}Z), a Kafka timestamp is absolute")
    return int(moment.timestamp() * 1000)


# Chosen through options, so that a stray property cannot contradict them (or break exactly-once).
_FIXED_CLIENT_PROPERTIES = frozenset({
    "bootstrap.servers", "group.id", "transactional.id", "isolation.level", "enable.auto.commit",
    "key.deserializer", "value.deserializer", "key.serializer", "value.serializer",
})


@dataclasses.dataclass(frozen=True)
class Settings:
    """A validated run configuration (see ``riverflink run --help`` for each field)."""

    model: str
    inputs: tuple[str, ...] = ()
    predictions: str | None = None
    metrics: str | None = None
    dead_letters: str | None = None
    models_out: str | None = None
    events: str | None = None  # promotions and drifts
    warm_start: bool = False  # new keys start from a copy of what the template learned, not a blank clone
    challengers: tuple[str, ...] = ()  # model specs trained in shadow on every key, promoted where better
    promotion_window: int = 100  # labelled events a challenger is judged on
    promotion_margin: float = 0.0  # how much better than the serving model it must be over the window
    drift_detector: str | None = None  # a river.drift detector class name, watching each key's errors
    on_drift: str = "none"  # or "reset": each of the key's models starts over
    parallelism: int = 1
    checkpoint_interval: float = 10.0
    checkpoint_dir: str | None = None
    state_backend: str = "hashmap"
    metric: str | None = None
    label_ttl: float | None = None
    key_ttl: float | None = None
    key_cache_mb: float = 64.0  # deserialized key states kept per learner subtask, by serialized size; 0: none
    batch_lines: int = 256  # thread mode: lines the learner gets per call from Java (1: one call per line)
    batch_delay: float = 0.01  # seconds a line waits at most for its batch to fill
    metrics_interval: float = 10.0
    metrics_every: int | None = None  # the all-keys metrics are also reported every this many labelled events
    snapshot_interval: float = 60.0
    execution_mode: str = "thread"
    job_name: str = "riverflink"
    kafka_bootstrap: str | None = None
    kafka_topics: tuple[str, ...] = ()
    kafka_group: str = "riverflink"
    kafka_offsets: str | int = "earliest"
    kafka_stop_at_latest: bool = False
    kafka_delivery: str = "exactly-once"
    # Client properties may hold credentials (sasl.jaas.config, ssl passwords): never in a repr, a log or an error.
    kafka_properties: tuple[tuple[str, str], ...] = dataclasses.field(default=(), repr=False)
    jobmanager: str | None = None  # HOST:PORT of a running cluster's REST API; None: the embedded mini-cluster
    detached: bool = False
    from_savepoint: str | None = None
    allow_non_restored_state: bool = False
    watch_inputs: float | None = None  # seconds between looks for new files; None: read the inputs once
    flink_options: tuple[tuple[str, str], ...] = ()  # raw Flink options, applied last (tuning, experiments)

    def __post_init__(self):
        if not self.inputs and not self.kafka_topics:
            raise SettingsError("no input: give --input files or directories, or --kafka-topic, or both")
        for path in self.inputs:
            if not pathlib.Path(path).exists():
                raise SettingsError(f"--input {path}: no such file or directory")
        if self.metrics_every is not None and self.metrics_every < 1:
            raise SettingsError(f"--metrics-every must be at least 1, not {self.metrics_every}")
        if self.key_cache_mb < 0:
            raise SettingsError(f"--key-cache-mb must be zero or more, not {self.key_cache_mb}")
        if self.batch_lines < 1:
            raise SettingsError(f"--batch-lines must be at least 1, not {self.batch_lines}")
        if self.batch_delay < 0:
            raise SettingsError(f"--batch-delay must be zero or more, not {self.batch_delay}")
        if self.parallelism < 1:
            raise SettingsError(f"--parallelism must be at least 1, not {self.parallelism}")
        for name in ("checkpoint_interval", "metrics_interval", "snapshot_interval", "label_ttl", "key_ttl"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise SettingsError(f"--{name.replace('_', '-')} must be positive, not {value}")
        if self.state_backend not in STATE_BACKENDS:
            raise SettingsError(f"--state-backend must be one of {', '.join(STATE_BACKENDS)}, not {self.state_backend!r}")
        if self.execution_mode not in EXECUTION_MODES:
            raise SettingsError(f"--execution-mode must be one of {', '.join(EXECUTION_MODES)}, not {self.execution_mode!r}")
        outputs = [path for path in self.outputs.values() if path is not None]
        if len(set(outputs)) != len(outputs):
            raise SettingsError("two outputs share one destination; give each its own")
        for path in outputs + [self.checkpoint_dir]:
            if path is not None and kafka_topic_of(path) is None and pathlib.Path(path).is_file():
                raise SettingsError(f"{path} is a file; an output or checkpoint destination must be a directory")
        self._check_kafka(outputs)
        if self.jobmanager is not None:
            host, _, port = self.jobmanager.rpartition(":")
            if not host or not port.isdigit():
                raise SettingsError(f"--jobmanager must be HOST:PORT (the REST address), not {self.jobmanager!r}")
        self._check_lifecycle()
        if self.watch_inputs is not None and (self.watch_inputs <= 0 or not self.inputs):
            raise SettingsError("--watch-inputs needs --input and a positive number of seconds")
        if self.watch_inputs is not None and self.kafka_topics:
            raise SettingsError("--watch-inputs reads files for ever, so Kafka would never be read: choose one")
        if self.detached and self.jobmanager is None:
            raise SettingsError("--detached needs --jobmanager: a job on the embedded mini-cluster ends with riverflink")
        local = None if self.from_savepoint is None else local_path(self.from_savepoint)
        if local is not None and not local.exists():
            raise SettingsError(f"--from-savepoint {self.from_savepoint}: no such savepoint or checkpoint")

    def _check_lifecycle(self) -> None:
        if len(set(self.models)) != len(self.models):
            raise SettingsError("a --challenger repeats --model or another challenger; give each model once")
        if self.promotion_window < 1:
            raise SettingsError(f"--promotion-window must be at least 1, not {self.promotion_window}")
        if self.promotion_margin < 0:
            raise SettingsError(f"--promotion-margin must be zero or more, not {self.promotion_margin}")
        if self.on_drift not in ON_DRIFT:
            raise SettingsError(f"--on-drift must be one of {', '.join(ON_DRIFT)}, not {self.on_drift!r}")
        if self.on_drift != "none" and self.drift_detector is None:
            raise SettingsError(f"--on-drift {self.on_drift} needs a --drift-detector")
        if self.events is not None and not self.has_lifecycle:
            raise SettingsError("--events reports promotions and drifts: give --challenger or --drift-detector")

    def _check_kafka(self, outputs: list[str]) -> None:
        topics = list(self.kafka_topics) + [topic for topic in map(kafka_topic_of, outputs) if topic is not None]
        if topics and not self.kafka_bootstrap:
            raise SettingsError(f"Kafka topic {topics[0]!r} given without --kafka-bootstrap HOST:PORT")
        for topic in topics:
            if not _TOPIC_NAME.fullmatch(topic):
                raise SettingsError(f"{topic!r} is not a Kafka topic name (letters, digits, '.', '_', '-'; at most 249)")
        if self.kafka_bootstrap and not topics:
            raise SettingsError("--kafka-bootstrap given, but no --kafka-topic and no kafka:// output")
        if self.kafka_stop_at_latest and not self.kafka_topics:
            raise SettingsError("--kafka-stop-at-latest needs --kafka-topic")
        if self.kafka_delivery not in KAFKA_DELIVERIES:
            raise SettingsError(f"--kafka-delivery must be one of {', '.join(KAFKA_DELIVERIES)}, not {self.kafka_delivery!r}")
        if isinstance(self.kafka_offsets, str):
            parse_start_offset(self.kafka_offsets)
        for name, _ in self.kafka_properties:
            if name in _FIXED_CLIENT_PROPERTIES:
                raise SettingsError(f"--kafka-property {name} is set by riverflink; use its own option")

    @property
    def bounded(self) -> bool:
        """Whether the job ends by itself: files only, or Kafka read up to the offsets at start."""
        return self.watch_inputs is None and (not self.kafka_topics or self.kafka_stop_at_latest)

    @property
    def models(self) -> tuple[str, ...]:
        """Every model spec, the serving one's (``--model``) first; also their names in outputs."""
        return (self.model, *self.challengers)

    @property
    def has_lifecycle(self) -> bool:
        """Whether keys have more than one model to judge or a drift detector (``operators.lifecycle``)."""
        return bool(self.challengers) or self.drift_detector is not None

    @property
    def batches_lines(self) -> bool:
        """Whether the learner gets its lines in batches (``operators.batching``): thread mode only."""
        return self.execution_mode == "thread" and self.batch_lines > 1

    @property
    def outputs(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in OUTPUT_NAMES}

    @staticmethod
    def ms(seconds: float | None) -> int | None:
        return None if seconds is None else max(1, int(round(seconds * 1000)))
