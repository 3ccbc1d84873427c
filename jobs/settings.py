"""The one frozen, validated description of a run. Everything downstream trusts it.

``Settings`` holds what every run has (the model, its inputs, parallelism,
state and checkpoints, where the job runs) and one group per concern, each
a frozen dataclass of its own: ``kafka`` (``KafkaSettings``), ``outputs``
(``OutputSettings``), ``lifecycle`` (``LifecycleSettings``) and ``tuning``
(``TuningSettings``). The groups are plain data; ``Settings`` validates them
all at once, because some rules span groups (a ``kafka://`` output needs
``kafka.bootstrap``; ``--events`` needs a lifecycle).

>>> settings = Settings(model="river.linear_model:LinearRegression", kafka=KafkaSettings(
...     bootstrap="localhost:9092", topics=("events",), properties=(("sasl.password", "hunter2"),)))
>>> "hunter2" in repr(settings), settings.kafka.group
(False, 'riverflink')
>>> settings.bounded, settings.models
(False, ('river.linear_model:LinearRegression',))
"""

import dataclasses
import datetime
import os
import pathlib
import re
import urllib.parse

from jobs.kafka_client import RIVERFLINK_PROPERTIES
from jobs.profiles import PROFILE_NAMES, PROFILES, Profile
from jobs.runtime.prometheus_reporter import check_ports
from state.exceptions import SettingsError

__all__ = [
    "Settings", "KafkaSettings", "OutputSettings", "LifecycleSettings", "TuningSettings",
    "STATE_BACKENDS", "EXECUTION_MODES", "KEY_TTL_CLOCKS", "OUTPUT_NAMES", "KAFKA_DELIVERIES", "ON_DRIFT", "KAFKA_OFFSETS",
    "kafka_topic_of", "parse_start_offset", "local_path", "worker_location",
]

STATE_BACKENDS = ("hashmap", "rocksdb")
EXECUTION_MODES = ("thread", "process")
KEY_TTL_CLOCKS = ("processing", "ts")
OUTPUT_NAMES = ("predictions", "metrics", "dead_letters", "models_out", "events", "global_trace")
KAFKA_DELIVERIES = ("exactly-once", "at-least-once")
ON_DRIFT = ("none", "reset")  # what a key does when its drift detector fires: report it, or also start over
KAFKA_OFFSETS = ("earliest", "latest", "committed")  # or a point in time, see parse_start_offset
KAFKA_SCHEME = "kafka://"
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


def kafka_topic_of(destination: str | None) -> str | None:
    """The topic of a ``kafka://TOPIC`` destination; None for a directory.

    Parameters
    ----------
    destination
        An output destination: a directory or ``kafka://TOPIC``.

    Examples
    --------
    >>> kafka_topic_of("kafka://predictions"), kafka_topic_of("out/predictions")
    ('predictions', None)
    """
    if destination is None or not destination.startswith(KAFKA_SCHEME):
        return None
    return destination.removeprefix(KAFKA_SCHEME)


def _scheme(location: str) -> str | None:
    """The URI scheme of ``location`` (``file``, ``s3``), None for a plain path."""
    scheme, colon, _ = location.partition(":")
    return scheme if colon and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]+", scheme) else None


def local_path(location: str) -> pathlib.Path | None:
    """The local path a location names (``/x``, ``x``, ``file:/x``, ``file:///x``); None for a remote one (``s3://``).

    Parameters
    ----------
    location
        A path or URI, as given to ``--from-savepoint`` or returned for a savepoint.

    Examples
    --------
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

    Parameters
    ----------
    location
        An input or output location: a path or a URI.

    Examples
    --------
    >>> import os; worker_location("out/p") == os.path.join(os.getcwd(), "out/p"), worker_location("s3://b/p")
    (True, 's3://b/p')
    """
    if _scheme(location) is None and not os.path.isabs(location):
        return os.path.abspath(location)
    return location


def parse_start_offset(text: str) -> str | int:
    """``earliest``, ``latest``, ``committed``, or a point in time as epoch milliseconds.

    Parameters
    ----------
    text
        The ``--kafka-offsets`` value: a name, epoch milliseconds, or an ISO-8601 time with a zone.

    Examples
    --------
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


@dataclasses.dataclass(frozen=True)
class KafkaSettings:
    """Where events are read from Kafka and how ``kafka://`` outputs are written (``--kafka-*`` options)."""

    bootstrap: str | None = None
    topics: tuple[str, ...] = ()  # read events from these
    group: str = "riverflink"
    offsets: str | int = "earliest"  # where a read starts without a checkpoint, see parse_start_offset
    stop_at_latest: bool = False  # read up to the offsets present at start, then finish
    delivery: str = "exactly-once"  # of kafka:// outputs
    # Client properties may hold credentials (sasl.jaas.config, ssl passwords): never in a repr, a log or an error.
    properties: tuple[tuple[str, str], ...] = dataclasses.field(default=(), repr=False)


@dataclasses.dataclass(frozen=True)
class OutputSettings:
    """Where each output goes: a directory, ``kafka://TOPIC``, or None for not written."""

    predictions: str | None = None
    metrics: str | None = None
    dead_letters: str | None = None
    models_out: str | None = None
    events: str | None = None  # promotions and drifts
    global_trace: str | None = None  # what the global model learned, in the order it learned it (audits, tests)

    @property
    def destinations(self) -> dict[str, str | None]:
        """``output name -> destination`` for every name of ``OUTPUT_NAMES``, None where not written."""
        return {name: getattr(self, name) for name in OUTPUT_NAMES}


@dataclasses.dataclass(frozen=True)
class LifecycleSettings:
    """How each key's models start, compete and react to drift (``operators.lifecycle``)."""

    warm_start: bool = False  # new keys start from a copy of what the template learned, not a blank clone
    challengers: tuple[str, ...] = ()  # model specs trained in shadow on every key, promoted where better
    promotion_window: int = 100  # labelled events a challenger is judged on
    promotion_margin: float = 0.0  # how much better than the serving model it must be over the window
    drift_detector: str | None = None  # a river.drift detector class name, watching each key's errors
    on_drift: str = "none"  # or "reset": each of the key's models starts over
    global_model: str | None = None  # a model spec learning from every key's labelled events, a candidate in each key
    global_every: int = 1000  # the global model's learn steps between the versions sent to the learners
    global_interval: float = 5.0  # seconds at most between versions, while the global model learns
    admit_after: int | None = None  # with a global model: a key's own models start at its Nth labelled event
    global_blend: bool = False  # a classifier's keys serve its own and the global model's probabilities, weighted


@dataclasses.dataclass(frozen=True)
class TuningSettings:
    """How the learner trades memory, latency and reporting: results do not depend on these."""

    key_cache_mb: float = 64.0  # deserialized key states kept per learner subtask, by serialized size; 0: none
    batch_lines: int = 256  # thread mode: lines the learner gets per call from Java (1: one call per line)
    profile: str = "auto"  # "latency", "throughput", or "auto": see jobs.profiles
    batch_delay: float | None = None  # seconds a line waits at most for its batch to fill; None: the profile's
    metrics_interval: float = 10.0  # seconds between metric reports
    metrics_every: int | None = None  # the all-keys metrics are also reported every this many labelled events
    snapshot_interval: float = 60.0  # seconds between model snapshots


@dataclasses.dataclass(frozen=True)
class Settings:
    """A validated run configuration (see ``riverflink run --help`` for each field).

    Parameters
    ----------
    model
        The ``--model`` spec: ``package.module:name``, ``path/to/file.py:name`` or ``model.pkl``.
    inputs
        JSON-lines files or directories, read before any Kafka topic.
    kafka, outputs, lifecycle, tuning
        The groups; each defaults to its dataclass's defaults.

    Raises
    ------
    SettingsError
        On the first option that is wrong or conflicts with another, naming the option.
    """

    model: str
    inputs: tuple[str, ...] = ()
    watch_inputs: float | None = None  # seconds between looks for new files; None: read the inputs once
    metric: str | None = None
    label_ttl: float | None = None
    arms: tuple[str, ...] | None = None  # a bandit's arms for decisions that name none
    key_ttl: float | None = None
    key_ttl_by: str = "processing"  # or "ts": idle by the events' ts, so a backfill expires keys as the live stream did
    parallelism: int = 1
    execution_mode: str = "thread"
    state_backend: str = "hashmap"
    checkpoint_interval: float = 10.0
    checkpoint_dir: str | None = None
    from_savepoint: str | None = None
    allow_non_restored_state: bool = False
    job_name: str = "riverflink"
    jobmanager: str | None = None  # HOST:PORT of a running cluster's REST API; None: the embedded mini-cluster
    detached: bool = False
    flink_options: tuple[tuple[str, str], ...] = ()  # raw Flink options, applied last (tuning, experiments)
    prometheus_port: str | None = None  # PORT or FIRST-LAST of Flink's Prometheus reporter (mini-cluster only)
    kafka: KafkaSettings = dataclasses.field(default_factory=KafkaSettings)
    outputs: OutputSettings = dataclasses.field(default_factory=OutputSettings)
    lifecycle: LifecycleSettings = dataclasses.field(default_factory=LifecycleSettings)
    tuning: TuningSettings = dataclasses.field(default_factory=TuningSettings)
    own_stream: bool = False  # the events come from a user's own stream (operators.learn_per_key), not inputs

    def __post_init__(self):
        if not self.inputs and not self.kafka.topics and not self.own_stream:
            raise SettingsError("no input: give --input files or directories, or --kafka-topic, or both")
        for path in self.inputs:
            if not pathlib.Path(path).exists():
                raise SettingsError(f"--input {path}: no such file or directory")
        self._check_tuning()
        if self.parallelism < 1:
            raise SettingsError(f"--parallelism must be at least 1, not {self.parallelism}")
        positive = {
            "--checkpoint-interval": self.checkpoint_interval, "--metrics-interval": self.tuning.metrics_interval,
            "--snapshot-interval": self.tuning.snapshot_interval, "--label-ttl": self.label_ttl, "--key-ttl": self.key_ttl,
        }
        for option, value in positive.items():
            if value is not None and value <= 0:
                raise SettingsError(f"{option} must be positive, not {value}")
        if self.key_ttl_by not in KEY_TTL_CLOCKS:
            raise SettingsError(f"--key-ttl-by must be one of {', '.join(KEY_TTL_CLOCKS)}, not {self.key_ttl_by!r}")
        if self.key_ttl_by != "processing" and self.key_ttl is None:
            raise SettingsError(f"--key-ttl-by {self.key_ttl_by} needs a --key-ttl")
        if self.state_backend not in STATE_BACKENDS:
            raise SettingsError(f"--state-backend must be one of {', '.join(STATE_BACKENDS)}, not {self.state_backend!r}")
        if self.execution_mode not in EXECUTION_MODES:
            raise SettingsError(f"--execution-mode must be one of {', '.join(EXECUTION_MODES)}, not {self.execution_mode!r}")
        outputs = [path for path in self.outputs.destinations.values() if path is not None]
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
        if self.watch_inputs is not None and self.kafka.topics:
            raise SettingsError("--watch-inputs reads files for ever, so Kafka would never be read: choose one")
        if self.prometheus_port is not None:
            check_ports(self.prometheus_port)
            if self.jobmanager is not None:
                raise SettingsError("--prometheus-port turns on the mini-cluster's reporter; a cluster's is set where it "
                                    "starts (riverflink cluster start --prometheus-port, or its Flink configuration)")
        if self.detached and self.jobmanager is None:
            raise SettingsError("--detached needs --jobmanager: a job on the embedded mini-cluster ends with riverflink")
        local = None if self.from_savepoint is None else local_path(self.from_savepoint)
        if local is not None and not local.exists():
            raise SettingsError(f"--from-savepoint {self.from_savepoint}: no such savepoint or checkpoint")

    def _check_tuning(self) -> None:
        tuning = self.tuning
        if tuning.metrics_every is not None and tuning.metrics_every < 1:
            raise SettingsError(f"--metrics-every must be at least 1, not {tuning.metrics_every}")
        if tuning.key_cache_mb < 0:
            raise SettingsError(f"--key-cache-mb must be zero or more, not {tuning.key_cache_mb}")
        if tuning.batch_lines < 1:
            raise SettingsError(f"--batch-lines must be at least 1, not {tuning.batch_lines}")
        if tuning.batch_delay is not None and tuning.batch_delay < 0:
            raise SettingsError(f"--batch-delay must be zero or more, not {tuning.batch_delay}")
        if tuning.profile not in PROFILE_NAMES:
            raise SettingsError(f"--profile must be one of {', '.join(PROFILE_NAMES)}, not {tuning.profile!r}")

    def _check_lifecycle(self) -> None:
        lifecycle = self.lifecycle
        if len(set(self.models)) != len(self.models):
            raise SettingsError("a --challenger repeats --model or another challenger; give each model once")
        if lifecycle.promotion_window < 1:
            raise SettingsError(f"--promotion-window must be at least 1, not {lifecycle.promotion_window}")
        if lifecycle.promotion_margin < 0:
            raise SettingsError(f"--promotion-margin must be zero or more, not {lifecycle.promotion_margin}")
        if lifecycle.on_drift not in ON_DRIFT:
            raise SettingsError(f"--on-drift must be one of {', '.join(ON_DRIFT)}, not {lifecycle.on_drift!r}")
        if lifecycle.on_drift != "none" and lifecycle.drift_detector is None:
            raise SettingsError(f"--on-drift {lifecycle.on_drift} needs a --drift-detector")
        if self.outputs.events is not None and not self.has_lifecycle:
            raise SettingsError("--events reports promotions and drifts: give --challenger or --drift-detector")
        if lifecycle.global_every < 1:
            raise SettingsError(f"--global-every must be at least 1, not {lifecycle.global_every}")
        if lifecycle.global_interval <= 0:
            raise SettingsError(f"--global-interval must be positive, not {lifecycle.global_interval}")
        if self.outputs.global_trace is not None and lifecycle.global_model is None:
            raise SettingsError("--global-trace records what the global model learns: give --global-model or --global")
        if kafka_topic_of(self.outputs.global_trace) is not None:
            raise SettingsError("--global-trace must be a directory: a topic would keep its order only per key")
        if lifecycle.admit_after is not None and (lifecycle.admit_after < 1 or lifecycle.global_model is None):
            raise SettingsError("--admit-after N (1 or more) lets a key's own models start at its Nth label, the "
                                "global model answering until then: give --global-model or --global")
        if lifecycle.global_blend and (lifecycle.global_model is None or lifecycle.challengers
                                       or lifecycle.drift_detector is not None):
            raise SettingsError("--global-blend serves a blend of each key's own model and the global model, in "
                                "place of promotion: give --global-model or --global, and neither --challenger nor "
                                "--drift-detector")
        if lifecycle.global_model is not None and not self.batches_lines:
            raise SettingsError("--global-model needs the learner's batches (thread mode, --batch-lines above 1), "
                                "through which its versions reach the learner")

    def _check_kafka(self, outputs: list[str]) -> None:
        kafka = self.kafka
        topics = list(kafka.topics) + [topic for topic in map(kafka_topic_of, outputs) if topic is not None]
        if topics and not kafka.bootstrap:
            raise SettingsError(f"Kafka topic {topics[0]!r} given without --kafka-bootstrap HOST:PORT")
        for topic in topics:
            if not _TOPIC_NAME.fullmatch(topic):
                raise SettingsError(f"{topic!r} is not a Kafka topic name (letters, digits, '.', '_', '-'; at most 249)")
        if kafka.bootstrap and not topics:
            raise SettingsError("--kafka-bootstrap given, but no --kafka-topic and no kafka:// output")
        if kafka.stop_at_latest and not kafka.topics:
            raise SettingsError("--kafka-stop-at-latest needs --kafka-topic")
        if kafka.delivery not in KAFKA_DELIVERIES:
            raise SettingsError(f"--kafka-delivery must be one of {', '.join(KAFKA_DELIVERIES)}, not {kafka.delivery!r}")
        if isinstance(kafka.offsets, str):
            parse_start_offset(kafka.offsets)
        for name, _ in kafka.properties:
            if name in RIVERFLINK_PROPERTIES:
                raise SettingsError(f"--kafka-property {name} is set by riverflink; use its own option")

    @property
    def bounded(self) -> bool:
        """Whether the job ends by itself: files only, or Kafka read up to the offsets at start.

        A user's own stream (``own_stream``) may never end: not bounded.
        """
        return not self.own_stream and self.watch_inputs is None and (not self.kafka.topics or self.kafka.stop_at_latest)

    @property
    def profile(self) -> Profile:
        """The latency or throughput profile of this run (``jobs.profiles``): ``auto`` picks by ``bounded``.

        >>> Settings(model="m.pkl", kafka=KafkaSettings(bootstrap="k:9092", topics=("events",))).profile.name
        'latency'
        """
        name = self.tuning.profile
        if name == "auto":
            name = "throughput" if self.bounded else "latency"
        return PROFILES[name]

    @property
    def batch_delay(self) -> float:
        """Seconds a line waits at most for the learner's batch to fill: ``--batch-delay``, else the profile's."""
        return self.profile.batch_delay if self.tuning.batch_delay is None else self.tuning.batch_delay

    @property
    def models(self) -> tuple[str, ...]:
        """Every model spec of each key, the ``--model``'s first; also their names in outputs (the global model is not one)."""
        return (self.model, *self.lifecycle.challengers)

    @property
    def has_lifecycle(self) -> bool:
        """Whether keys have more than one model to judge or a drift detector (``operators.lifecycle``)."""
        lifecycle = self.lifecycle
        return bool(lifecycle.challengers) or lifecycle.drift_detector is not None or lifecycle.global_model is not None

    @property
    def batches_lines(self) -> bool:
        """Whether the learner gets its lines in batches (``operators.batching``): thread mode only."""
        return self.execution_mode == "thread" and self.tuning.batch_lines > 1

    @staticmethod
    def ms(seconds: float | None) -> int | None:
        """``seconds`` as the whole milliseconds Flink takes, at least 1; None stays None.

        >>> Settings.ms(0.01), Settings.ms(None)
        (10, None)
        """
        return None if seconds is None else max(1, int(round(seconds * 1000)))
