"""``riverflink produce``: publish JSON-lines event files to a Kafka topic, keyed by each event's ``key``.

Keying by the entity keeps each entity's events in one partition, in file
order, which is the order a per-key model must learn them in. Lines are sent
as they are, bad ones included (without a Kafka key): deciding what is a bad
event is the job's business, and its dead letters say why.
"""

import dataclasses
import gzip
import logging
import pathlib
import sys
from collections.abc import Callable, Iterator

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from jobs.kafka_client import event_key, python_options
from state.exceptions import RiverflinkError, SettingsError

__all__ = ["Published", "command", "publish"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Published:
    """What ``publish`` sent: records, those without a key, and the topic's partitions (``created``: by it)."""

    records: int
    unkeyed: int
    partitions: int
    created: bool


def command(args) -> int:
    """Carry out ``riverflink produce``, with a progress bar on a terminal; returns the exit status.

    Parameters
    ----------
    args
        The parsed ``produce`` arguments.
    """
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


def _lines(path: pathlib.Path) -> Iterator[tuple[str, int]]:
    """Each non-blank line of ``path`` with how many bytes of the file have been read so far."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as raw:
        for line in raw:
            position = raw.fileobj.tell() if path.suffix == ".gz" else raw.tell()
            text = line.decode("utf-8", errors="replace").rstrip("\r\n")
            if text.strip():
                yield text, position


def _ensure_topic(admin: KafkaAdminClient, topic: str, partitions: int, replication: int) -> tuple[int, bool]:
    try:
        admin.create_topics([NewTopic(topic, partitions, replication)])
        return partitions, True
    except TopicAlreadyExistsError:
        described = admin.describe_topics([topic])[0]
        return len(described["partitions"]), False


def publish(bootstrap: str, topic: str, files: list[str | pathlib.Path], partitions: int = 1, replication: int = 1,
            properties: tuple[tuple[str, str], ...] = (), progress: Callable[[int, int], None] | None = None) -> Published:
    """Send every line of ``files`` to ``topic``, keyed by ``event_key``; returns what was sent.

    Parameters
    ----------
    bootstrap
        The Kafka bootstrap servers, ``HOST:PORT[,...]``.
    topic
        Created with ``partitions`` and ``replication`` if it does not exist.
    files
        JSON-lines files, gzipped if their name ends in ``.gz``.
    partitions, replication
        For a topic that does not exist yet.
    properties
        Java-style client properties (``--kafka-property``); one kafka-python cannot take is refused.
    progress
        Called now and then with ``(bytes_read, bytes_total)``, for a progress display.

    Raises
    ------
    SettingsError
        For a missing file or a property that cannot be passed on.
    RiverflinkError
        If some records were not published.
    """
    files = [pathlib.Path(path) for path in files]
    for path in files:
        if not path.is_file():
            raise SettingsError(f"{path}: no such file")
    config = python_options(properties, KafkaProducer, KafkaAdminClient, strict=True)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, **config)
    try:
        partitions, created = _ensure_topic(admin, topic, partitions, replication)
    finally:
        admin.close()
    total = sum(path.stat().st_size for path in files)
    # Idempotent (kafka-python's default): a retried batch is neither duplicated nor reordered.
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, **config)
    records = unkeyed = done = 0
    failures = []
    try:
        for path in files:
            for line, position in _lines(path):
                key = event_key(line)
                producer.send(topic, key=key, value=line.encode()).add_errback(failures.append)
                records += 1
                unkeyed += key is None
                if progress is not None and records % 1000 == 0:
                    progress(done + position, total)
            done += path.stat().st_size
        producer.flush()
    finally:
        producer.close()
    if failures:
        raise RiverflinkError(f"{len(failures)} of {records} records were not published to {topic}: {failures[0]!r}")
    if progress is not None:
        progress(total, total)
    logger.info("published %d records to %s (%d without a key)", records, topic, unkeyed)
    return Published(records, unkeyed, partitions, created)
