"""``POST /events``: event lines sent over HTTP go to the job's input topic, as ``riverflink produce`` sends them.

The server never learns: it checks each line as the job would, then hands the
lines to Kafka keyed by their ``key``, so each key's events keep their order
and reach the one learner subtask that owns the key.
"""

from __future__ import annotations

from jobs.kafka_client import event_key, python_options
from jobs.settings import KafkaSettings
from operators.dead_letters import DeadLetter
from operators.events import decode_event

__all__ = ["EventForwarder"]


class EventForwarder:
    """Checks event lines and produces them to ``topic``, acknowledged by every in-sync replica.

    Parameters
    ----------
    kafka
        The bootstrap servers and client properties.
    topic
        The job's input topic (``--kafka-topic`` of the job).
    """

    def __init__(self, kafka: KafkaSettings, topic: str):
        from kafka import KafkaProducer

        self.topic = topic
        self.producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all", linger_ms=0,
                                      **python_options(kafka.properties, KafkaProducer, strict=True))

    @staticmethod
    def check(lines: list[str], decisions: bool = False) -> DeadLetter | None:
        """The first line the job would dead-letter, with its position in ``detail``; None when all are events.

        ``decisions``: the job's model is a bandit policy (its events are decisions and rewards).
        """
        for number, line in enumerate(lines, start=1):
            decoded = decode_event(line, decisions)
            if isinstance(decoded, DeadLetter):
                return DeadLetter(line, decoded.reason, f"line {number}: {decoded.detail}", decoded.key)
        return None

    def forward(self, lines: list[str], timeout: float = 10.0) -> int:
        """Send ``lines`` (checked with :meth:`check`) and wait until Kafka has them all; returns how many.

        Raises
        ------
        kafka.errors.KafkaError
            If Kafka did not take every line within ``timeout`` seconds.
        """
        futures = [self.producer.send(self.topic, key=event_key(line), value=line.encode()) for line in lines]
        self.producer.flush(timeout)
        for future in futures:
            future.get(timeout=0)  # raises what went wrong with this one
        return len(futures)

    def close(self) -> None:
        """Send what is buffered, then let go of the connections."""
        self.producer.close()
