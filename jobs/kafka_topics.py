"""The models topic: compacted, so it keeps every key's latest snapshot for as long as the key exists.

``riverflink serve --models kafka://TOPIC`` rebuilds its models by reading the
topic from the start, with no job running. With the broker's default
retention (delete after seven days) a key that learned nothing for a week
would vanish from every server that restarts; compacted, the topic keeps each
key's last record (the job keys snapshots by entity key) and drops the older
ones. So ``riverflink run`` creates a missing models topic compacted, and
warns about an existing one that is not.
"""

from __future__ import annotations

import logging

from jobs.kafka_client import python_options
from jobs.settings import KafkaSettings

__all__ = ["ensure_compacted"]

logger = logging.getLogger(__name__)


def ensure_compacted(kafka: KafkaSettings, topic: str, partitions: int) -> bool:
    """Create ``topic`` compacted if it does not exist; warn if it exists with another cleanup policy.

    Parameters
    ----------
    kafka
        The bootstrap servers and client properties.
    topic
        The ``--models-out kafka://TOPIC`` topic.
    partitions
        For a topic created here: the job's parallelism, so that every learner subtask can write its own.

    Returns
    -------
    bool
        Whether the topic was created.
    """
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap, **python_options(kafka.properties, KafkaAdminClient))
    try:
        try:
            admin.create_topics([NewTopic(topic, partitions, -1, topic_configs={"cleanup.policy": "compact"})])
            logger.info("created the compacted models topic %s with %d partitions", topic, partitions)
            return True
        except TopicAlreadyExistsError:
            pass
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, ["cleanup.policy"])])
        policy = _cleanup_policy(described) or "delete (the broker's default)"
        if "compact" not in policy:
            logger.warning("the models topic %s has cleanup.policy=%s: keys that stop learning will vanish from it; "
                           "make it compacted (kafka-configs --alter --add-config cleanup.policy=compact)", topic, policy)
        return False
    finally:
        admin.close()


def _cleanup_policy(described: dict) -> str | None:
    """The topic's own policy in kafka-python's answer (``{"topic": {NAME: {"cleanup.policy": {"value": ...}}}}``).

    None when the topic has none of its own: kafka-python leaves out what is the broker's default.
    """
    for configs in described.get("topic", {}).values():
        entry = configs.get("cleanup.policy")
        if entry is not None:
            return entry["value"]
    return None
