"""Where events come from: files, a Kafka topic, or files first and then Kafka, as one source.

Whatever the origin, the rest of the graph sees one stream of raw lines, so
a backfill from files and live learning from Kafka run the same operators
over the same keyed state.
"""

from pyflink.common import Duration, Types, WatermarkStrategy
from pyflink.datastream import DataStream, StreamExecutionEnvironment
from pyflink.datastream.connectors.file_system import FileSource, StreamFormat
from pyflink.datastream.connectors.hybrid_source import HybridSource
from pyflink.datastream.connectors.kafka import (
    KafkaOffsetResetStrategy,
    KafkaOffsetsInitializer,
    KafkaSource,
    KafkaTopicPartition,
)
from pyflink.java_gateway import get_gateway
from pyflink.util.java_utils import get_java_class

from jobs.kafka_client import source_properties
from jobs.settings import KafkaSettings, Settings, parse_start_offset, worker_location

__all__ = ["event_lines"]


def _file_source(settings: Settings) -> FileSource:
    builder = FileSource.for_record_stream_format(
        StreamFormat.text_line_format(), *map(worker_location, settings.inputs))
    if settings.watch_inputs is not None:  # unbounded: files that appear later are read too, each once
        builder.monitor_continuously(Duration.of_millis(Settings.ms(settings.watch_inputs)))
    return builder.build()


def _starting_offsets(kafka: KafkaSettings) -> KafkaOffsetsInitializer:
    start = parse_start_offset(kafka.offsets) if isinstance(kafka.offsets, str) else kafka.offsets
    if start == "earliest":
        return KafkaOffsetsInitializer.earliest()
    if start == "latest":
        return KafkaOffsetsInitializer.latest()
    if start == "committed":  # the group's committed offsets; a partition without one starts from its beginning
        return KafkaOffsetsInitializer.committed_offsets(KafkaOffsetResetStrategy.EARLIEST)
    return KafkaOffsetsInitializer.timestamp(start)


def _kafka_source(settings: Settings, stop_offsets: dict | None) -> KafkaSource:
    """Offsets are kept in Flink's checkpoints (and committed to the group on each checkpoint, for monitoring)."""
    kafka = settings.kafka
    builder = (
        KafkaSource.builder()
        .set_bootstrap_servers(kafka.bootstrap)
        .set_topics(*kafka.topics)
        .set_group_id(kafka.group)
        .set_client_id_prefix(f"{settings.job_name}-source")
        .set_starting_offsets(_starting_offsets(kafka))
    )
    for name, value in source_properties(kafka).items():
        builder.set_property(name, value)
    if stop_offsets is not None:
        stops = {KafkaTopicPartition(topic, partition): offset for (topic, partition), offset in stop_offsets.items()}
        builder.set_bounded(KafkaOffsetsInitializer.offsets(stops))
    _read_values_as_text(builder)
    return builder.build()


def _read_values_as_text(builder) -> None:
    """Record values as text, where a tombstone (a null value) becomes None instead of failing the job.

    PyFlink's ``set_value_only_deserializer(SimpleStringSchema())`` throws on a
    null value, and one tombstone in a topic would stop the job for good.
    Kafka's own StringDeserializer returns null for it, which the decoder
    turns into a dead letter. Invalid UTF-8 becomes U+FFFD, as with any
    Java string, and then fails JSON decoding like any other bad record.
    """
    jvm = get_gateway().jvm
    deserializer = get_java_class(jvm.org.apache.flink.kafka.shaded.org.apache.kafka.common.serialization.StringDeserializer)
    builder._j_builder.setDeserializer(
        jvm.org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema.valueOnly(deserializer)
    )


def event_lines(env: StreamExecutionEnvironment, settings: Settings, stop_offsets: dict | None = None) -> DataStream:
    """One raw JSON line per event, from the inputs ``settings`` names.

    Parameters
    ----------
    env
        The job's environment.
    settings
        The run: its ``inputs``, ``watch_inputs`` and ``kafka``.
    stop_offsets
        ``(topic, partition) -> offset`` where a bounded Kafka read ends (``jobs.kafka_offsets``); None: it does not.

    Returns
    -------
    DataStream
        The lines (STRING; None for a Kafka tombstone), from files, Kafka, or
        files and then Kafka through one reader.
    """
    if settings.inputs and settings.kafka.topics:
        # History first, then live: the Kafka reader starts once every file is read.
        source = HybridSource.builder(_file_source(settings)).add_source(_kafka_source(settings, stop_offsets)).build()
        name = "files-then-kafka"
    elif settings.kafka.topics:
        source, name = _kafka_source(settings, stop_offsets), "kafka"
    else:
        source, name = _file_source(settings), "files"
    # A hybrid source cannot tell its type (Java erases it); every source here yields text (or None).
    lines = env.from_source(source, WatermarkStrategy.no_watermarks(), name, Types.STRING()).uid(f"source-{name}")
    if name == "files-then-kafka":
        # One reader, so each learner gets history and live events down one channel, in order: with
        # several, a file record still in flight could be overtaken by another reader's Kafka record.
        lines.set_parallelism(1)
    return lines
