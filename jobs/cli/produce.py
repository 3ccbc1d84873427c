"""``riverflink produce``: publish JSON-lines event files to a Kafka topic, keyed by each event's ``key``.

Keying by the entity keeps each entity's events in one partition, in file
order, which is the order a per-key model must learn them in. Lines are sent
as they are, bad ones included (without a Kafka key): deciding what is a bad
event is the job's business, and its dead letters say why.
"""

import dataclasses
import gzip
import json
import logging
import pathlib
from collections.abc import Callable, Iterator

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from state.exceptions import RiverflinkError, SettingsError

__all__ = ["Published", "publish", "event_key", "client_config", "python_option"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Published:
    records: int
    unkeyed: int
    partitions: int
    created: bool


def event_key(line: str) -> bytes | None:
    """The Kafka key of an event line: its ``key`` as text, or None when the line has no readable key.

    >>> event_key('{"key": 42, "x": {}}'), event_key('{"key": "card-1"}'), event_key('not json')
    (b'42', b'card-1', None)
    """
    try:
        record = json.loads(line)
    except ValueError:
        return None
    key = record.get("key") if isinstance(record, dict) else None
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        return None
    return str(key).encode()


def client_config(properties: tuple[tuple[str, str], ...]) -> dict:
    """kafka-python settings from Java-style client properties (``security.protocol`` -> ``security_protocol``).

    Only a property's name ever appears in an error: values may be credentials.
    """
    config = {}
    for name, value in properties:
        option, converted = python_option(name, value)
        if option not in KafkaProducer.DEFAULT_CONFIG or option not in KafkaAdminClient.DEFAULT_CONFIG:
            raise SettingsError(f"--kafka-property {name}: not a client property riverflink produce can pass on")
        config[option] = converted
    return config


def python_option(name: str, value: str) -> tuple[str, str | int]:
    """kafka-python's option for a Java-style client property: ``sasl.mechanism=X`` -> ``("sasl_mechanism", "X")``."""
    return name.replace(".", "_"), int(value) if value.isdigit() else value


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
    """Send every line of ``files`` to ``topic`` (created with ``partitions`` if missing); returns what was sent.

    ``progress(bytes_read, bytes_total)`` is called now and then for a progress display.
    """
    files = [pathlib.Path(path) for path in files]
    for path in files:
        if not path.is_file():
            raise SettingsError(f"{path}: no such file")
    config = client_config(properties)
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
