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

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from jobs.cli.produce import python_option
from jobs.settings import Settings
from state.exceptions import SettingsError

__all__ = ["end_offsets", "commit_offsets"]

logger = logging.getLogger(__name__)


def _consumer(settings: Settings, **options) -> KafkaConsumer:
    # The properties kafka-python has too (security.protocol, sasl.mechanism, ssl.*); Java-only ones such as
    # sasl.jaas.config have no equivalent here, and a broker that needs them refuses this client loudly.
    converted = (python_option(name, value) for name, value in settings.kafka_properties)
    config = {option: value for option, value in converted if option in KafkaConsumer.DEFAULT_CONFIG}
    return KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, isolation_level="read_committed",
                         enable_auto_commit=False, **config, **options)


def end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    """``(topic, partition) -> offset`` where each partition of ``settings.kafka_topics`` ends now."""
    consumer = _consumer(settings)
    try:
        partitions = []
        for topic in settings.kafka_topics:
            numbers = consumer.partitions_for_topic(topic)
            if not numbers:
                raise SettingsError(f"--kafka-topic {topic}: no such topic on {settings.kafka_bootstrap}")
            partitions += [TopicPartition(topic, number) for number in sorted(numbers)]
        return {(tp.topic, tp.partition): offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def commit_offsets(settings: Settings, offsets: dict[tuple[str, int], int]) -> None:
    """Commit ``offsets`` for ``settings.kafka_group``: the next ``committed`` start begins after them."""
    consumer = _consumer(settings, group_id=settings.kafka_group)
    try:
        consumer.commit({TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
                         for (topic, partition), offset in offsets.items()})
    finally:
        consumer.close()
    logger.info("committed the offsets read up to for group %s", settings.kafka_group)
