"""Where outputs go: a directory (FileSink) or ``kafka://TOPIC`` (Kafka, exactly-once by default).

Kafka records are keyed by the entity key, so each key's outputs keep their
order in one partition. PyFlink's DataStream KafkaSink can only serialize the
whole record as the key, so Kafka outputs go through the Table API's Kafka
connector, which takes the key from a column, attached to the same job.
"""

from pyflink.common import Encoder
from pyflink.datastream import DataStream, StreamExecutionEnvironment
from pyflink.datastream.connectors.file_system import BucketAssigner, FileSink, OutputFileConfig, RollingPolicy
from pyflink.table import DataTypes, Schema, StreamTableEnvironment, TableDescriptor

from jobs.kafka_client import sink_properties
from jobs.settings import Settings, kafka_topic_of, worker_location
from operators.keying import with_keys
from state.destinations import PART_SUFFIX, part_prefix

__all__ = ["add_sinks"]


def _file_sink(path: str, name: str) -> FileSink:
    return (
        FileSink.for_row_format(path, Encoder.simple_string_encoder())
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner())
        .with_output_file_config(OutputFileConfig.builder().with_part_prefix(name).with_part_suffix(PART_SUFFIX).build())
        # Roll, and so commit, on every checkpoint: the default rolls a row file only after 60 s
        # of inactivity, so a streaming job's outputs would lag its checkpoints by minutes.
        .with_rolling_policy(RollingPolicy.on_checkpoint_rolling_policy())
        .build()
    )


def _kafka_table(settings: Settings, topic: str, name: str) -> TableDescriptor:
    descriptor = (
        TableDescriptor.for_connector("kafka")
        .schema(Schema.new_builder().column("key", DataTypes.STRING()).column("value", DataTypes.STRING()).build())
        .option("topic", topic)
        .option("key.format", "raw")
        .option("key.fields", "key")
        .option("value.format", "raw")
        .option("value.fields-include", "EXCEPT_KEY")
        .option("sink.delivery-guarantee", settings.kafka.delivery)
        # Stable per job and output: after a restart the sink finds and aborts its own lingering transactions.
        .option("sink.transactional-id-prefix", f"{settings.job_name}-{name}")
    )
    for key, value in sink_properties(settings.kafka, settings.profile.sink_linger_ms).items():
        descriptor = descriptor.option(f"properties.{key}", value)
    return descriptor.build()


def add_sinks(env: StreamExecutionEnvironment, settings: Settings, streams: dict[str, DataStream]) -> None:
    """Send each output stream to its destination in ``settings.outputs``.

    Parameters
    ----------
    env
        The job's environment.
    settings
        The run: its ``outputs``, and for ``kafka://`` outputs its ``kafka`` settings and ``job_name``.
    streams
        ``output name -> stream`` for the outputs that have a destination.
    """
    kafka_outputs = {}
    for name, stream in streams.items():
        destination = settings.outputs.destinations[name]
        topic = kafka_topic_of(destination)
        if topic is None:
            sink = _file_sink(worker_location(destination), part_prefix(name))
            sunk = stream.sink_to(sink).name(f"sink-{name}").uid(f"sink-{name}")
            if name == "global_trace":  # the one order the global model learned in: one writer, one file
                sunk.set_parallelism(1)
        else:
            # Rows (key, value), the key None for all-keys metrics: the record key, in Java.
            kafka_outputs[name] = (topic, with_keys(stream, None).name(f"key-{name}").uid(f"key-{name}"))
    if not kafka_outputs:
        return
    table_env = StreamTableEnvironment.create(env)
    statements = table_env.create_statement_set()
    for name, (topic, rows) in kafka_outputs.items():
        statements.add_insert(_kafka_table(settings, topic, name), table_env.from_data_stream(rows))
    statements.attach_as_datastream()
