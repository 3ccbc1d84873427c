"""Where a bounded Kafka read stops, fixed before the job starts, and committed to the group once it succeeded.

Flink's KafkaSource commits offsets to the consumer group only when a
checkpoint completes while its reader still runs. A stop-at-latest read that
reaches its end and finishes before the next checkpoint leaves the group
short of what the job read, and a later ``--kafka-offsets committed`` run
would read part of it again. So riverflink asks the broker for each
partition's end first (``read_committed``: the last stable offset), has the
source stop exactly there, and commits those offsets for the group when the
job has finished successfully.
"""

import logging

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from jobs.kafka_client import consumer
from jobs.settings import KafkaSettings
from state.exceptions import SettingsError

__all__ = ["end_offsets", "commit_offsets"]

logger = logging.getLogger(__name__)


def end_offsets(kafka: KafkaSettings) -> dict[tuple[str, int], int]:
    """``(topic, partition) -> offset`` where each partition of ``kafka.topics`` ends now.

    Parameters
    ----------
    kafka
        The run's Kafka settings: the broker, the topics and the client properties.

    Returns
    -------
    dict
        ``(topic, partition) -> offset`` of every partition of every topic, the
        last stable offset (``read_committed``).

    Raises
    ------
    SettingsError
        If a topic does not exist.
    """
    client = consumer(kafka)
    try:
        partitions = []
        for topic in kafka.topics:
            numbers = client.partitions_for_topic(topic)
            if not numbers:
                raise SettingsError(f"--kafka-topic {topic}: no such topic on {kafka.bootstrap}")
            partitions += [TopicPartition(topic, number) for number in sorted(numbers)]
        return {(tp.topic, tp.partition): offset for tp, offset in client.end_offsets(partitions).items()}
    finally:
        client.close()


def commit_offsets(kafka: KafkaSettings, offsets: dict[tuple[str, int], int]) -> None:
    """Commit ``offsets`` for ``kafka.group``: the next ``committed`` start begins after them.

    Parameters
    ----------
    kafka
        The run's Kafka settings: the broker, the group and the client properties.
    offsets
        ``(topic, partition) -> offset``, as ``end_offsets`` returns them.
    """
    client = consumer(kafka, group_id=kafka.group)
    try:
        client.commit({TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
                       for (topic, partition), offset in offsets.items()})
    finally:
        client.close()
    logger.info("committed the offsets read up to for group %s", kafka.group)
