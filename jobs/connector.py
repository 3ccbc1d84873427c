"""The Flink Kafka connector jar, pinned to the Flink version in pyproject.toml.

PyFlink's Kafka wrappers call the shaded classes of the *SQL* connector
(``org.apache.flink.kafka.shaded.org.apache.kafka.*``), so the fat jar is the
one that works, on the mini-cluster and on a cluster alike.
"""

import pathlib

from jobs.maven import fetch_jars

__all__ = ["KAFKA_CONNECTOR", "kafka_connector_jar"]

KAFKA_CONNECTOR = "org.apache.flink:flink-sql-connector-kafka:5.0.0-2.2"


def kafka_connector_jar() -> pathlib.Path:
    """The connector jar's path, fetched with Maven on first use."""
    version = KAFKA_CONNECTOR.rsplit(":", 1)[1]
    lib = fetch_jars(f"flink-kafka-connector-{version}", [KAFKA_CONNECTOR], transitive=False)
    return lib / f"flink-sql-connector-kafka-{version}.jar"
