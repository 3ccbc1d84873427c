"""One place for Kafka client properties: those riverflink sets itself, those a user adds, and how both reach a client.

Flink's Kafka source and sink (Java) take Java-style properties as they are.
kafka-python's clients (reading where topics end, committing offsets,
``riverflink produce``) take the same properties as keyword options
(``security.protocol`` -> ``security_protocol``). A user's properties
(``--kafka-property``) may hold credentials: only a property's name ever
appears in an error.
"""

from __future__ import annotations

import json
import typing

from state.exceptions import SettingsError

if typing.TYPE_CHECKING:
    from kafka import KafkaConsumer

    from jobs.settings import KafkaSettings

__all__ = [
    "RIVERFLINK_PROPERTIES", "TRANSACTION_TIMEOUT_MS", "source_properties", "sink_properties", "python_options",
    "consumer", "event_key",
]

# Chosen through riverflink's own options, so that a stray --kafka-property cannot contradict them (or break
# exactly-once).
RIVERFLINK_PROPERTIES = frozenset({
    "bootstrap.servers", "group.id", "transactional.id", "isolation.level", "enable.auto.commit",
    "key.deserializer", "value.deserializer", "key.serializer", "value.serializer",
})

# A Kafka broker's default cap on transactions (transaction.max.timeout.ms); KafkaSink's own default
# (1 h) is refused by such brokers. A job down longer than this loses its open transaction's outputs.
TRANSACTION_TIMEOUT_MS = 15 * 60 * 1000


def source_properties(kafka: KafkaSettings) -> dict[str, str]:
    """The properties of Flink's KafkaSource besides those its builder sets (servers, topics, group, client id).

    Parameters
    ----------
    kafka
        The run's Kafka settings; their ``properties`` come last.

    Examples
    --------
    >>> from jobs.settings import KafkaSettings
    >>> source_properties(KafkaSettings(properties=(("security.protocol", "SSL"),)))
    {'isolation.level': 'read_committed', 'security.protocol': 'SSL'}
    """
    # Upstream producers may be transactional: never learn from an aborted write.
    return {"isolation.level": "read_committed", **dict(kafka.properties)}


def sink_properties(kafka: KafkaSettings, linger_ms: int | None = None) -> dict[str, str]:
    """The properties of the producers behind ``kafka://`` outputs.

    Parameters
    ----------
    kafka
        The run's Kafka settings; their ``properties`` come last.
    linger_ms
        How long a producer waits to fill a batch (``jobs.profiles``); None: the Kafka client's default.

    Examples
    --------
    >>> from jobs.settings import KafkaSettings
    >>> sink_properties(KafkaSettings(bootstrap="kafka:9092"), linger_ms=0)
    {'bootstrap.servers': 'kafka:9092', 'transaction.timeout.ms': '900000', 'linger.ms': '0'}
    """
    lingering = {} if linger_ms is None else {"linger.ms": str(linger_ms)}
    return {"bootstrap.servers": kafka.bootstrap, "transaction.timeout.ms": str(TRANSACTION_TIMEOUT_MS),
            **lingering, **dict(kafka.properties)}


def python_options(properties: tuple[tuple[str, str], ...], *clients: type, strict: bool = False) -> dict:
    """kafka-python options for Java-style client properties: ``sasl.mechanism=X`` -> ``{"sasl_mechanism": "X"}``.

    Parameters
    ----------
    properties
        ``(name, value)`` pairs, as ``--kafka-property`` gives them.
    *clients
        kafka-python client classes; a property becomes an option only if every one of them takes it.
    strict
        Refuse a property some client does not take instead of leaving it out (Java-only properties such as
        ``sasl.jaas.config`` have no kafka-python equivalent).

    Raises
    ------
    SettingsError
        With ``strict``, naming the first property left out (never its value).

    Examples
    --------
    >>> from kafka import KafkaConsumer
    >>> python_options((("security.protocol", "SSL"), ("sasl.jaas.config", "secret")), KafkaConsumer)
    {'security_protocol': 'SSL'}
    """
    options = {}
    for name, value in properties:
        option = name.replace(".", "_")
        if all(option in client.DEFAULT_CONFIG for client in clients):
            options[option] = int(value) if value.isdigit() else value
        elif strict:
            raise SettingsError(f"--kafka-property {name}: not a client property riverflink produce can pass on")
    return options


def consumer(kafka: KafkaSettings, **options) -> KafkaConsumer:
    """A kafka-python consumer of ``kafka.bootstrap`` that reads committed records only and never commits by itself.

    Parameters
    ----------
    kafka
        The run's Kafka settings; the properties kafka-python has too (``security.protocol``,
        ``sasl.mechanism``, ``ssl.*``) are passed on. A broker that needs a Java-only one refuses this client loudly.
    **options
        Further kafka-python consumer options (``group_id``).
    """
    from kafka import KafkaConsumer  # here: the settings and the CLI's argument checks do without kafka-python

    return KafkaConsumer(bootstrap_servers=kafka.bootstrap, isolation_level="read_committed", enable_auto_commit=False,
                         **python_options(kafka.properties, KafkaConsumer), **options)


def event_key(line: str) -> bytes | None:
    """The Kafka key of an event line: its ``key`` as text, or None when the line has no readable key.

    Parameters
    ----------
    line
        One line of an event file, as it is sent.

    Examples
    --------
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
