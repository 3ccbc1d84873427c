"""A real Kafka broker for tests: started by the tests on free loopback ports, stopped by pid."""

import contextlib
import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from jobs.kafka_client import event_key
from jobs.local.kafka import start_broker, stop_broker
from jobs.local.processes import free_ports

__all__ = ["local_broker", "new_topic", "send", "send_steadily", "read_topic"]


@contextlib.contextmanager
def local_broker(data_dir):
    """A broker from ``riverflink kafka start`` for the duration of the block; yields its bootstrap address."""
    port, controller_port = free_ports(2)
    start_broker(port, controller_port, data_dir)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_broker(port, data_dir)


def new_topic(bootstrap: str, partitions: int = 1) -> str:
    """A fresh topic, so tests sharing the broker never see each other's records."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
    return name


def send(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    """Publish raw (key, value) records in order, as a misbehaving producer might."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value).get(timeout=30)
    finally:
        producer.close()


def send_steadily(bootstrap: str, topic: str, lines: list[str], rate: float) -> None:
    """Publish event lines keyed by entity at ``rate`` per second, as a live source would."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    start = time.monotonic()
    try:
        for i, line in enumerate(lines):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            producer.send(topic, key=event_key(line), value=line.encode())
        producer.flush()
    finally:
        producer.close()


def read_topic(bootstrap: str, topic: str, idle_ms: int = 5000) -> list:
    """Every committed record of ``topic`` (``read_committed``), as a downstream consumer sees them."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             isolation_level="read_committed", enable_auto_commit=False, consumer_timeout_ms=idle_ms)
    try:
        return list(consumer)
    finally:
        consumer.close()
