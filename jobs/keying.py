"""Routing every event line to its key's learner with no Python on the way.

PyFlink's ``key_by`` runs its key selector as a Python operator in the
source's task thread. In thread mode that thread then competes with the
learner for the TaskManager's one Python interpreter (the GIL), and the
learner waits: measured on the trivial graph files -> key -> emit at
parallelism 1, about 15k events/s with a Python key selector (plus 9k with
a Python decoder before it) and 40k with the key read in Java.

So Flink SQL's ``JSON_VALUE`` reads the key, in Java, and the learner decodes
each line itself, in its own thread. A line with no readable scalar key (not
JSON, no key, a tombstone) goes to the key ``""`` (never a valid event key),
where the learner turns it into a dead letter with the exact reason.

Keys are wrapped exactly as PyFlink's ``key_by(..., key_type=STRING)`` wraps
them (a one-field Row, ``KeyByKeySelector``), so keys fall into the same key
groups and savepoints written by either restore into the other.
"""

from pyflink.common import Types
from pyflink.common.typeinfo import TypeInformation
from pyflink.datastream import DataStream, StreamExecutionEnvironment
from pyflink.datastream.data_stream import KeyedStream
from pyflink.java_gateway import get_gateway
from pyflink.table import StreamTableEnvironment

__all__ = ["key_lines", "keyed_by_first_field", "UNROUTABLE"]

UNROUTABLE = ""  # where lines without a readable key go: decode_event rejects an empty key


def key_lines(env: StreamExecutionEnvironment, lines: DataStream) -> KeyedStream:
    """Raw event lines keyed by their ``key`` field; the learner receives each line as it came."""
    table_env = StreamTableEnvironment.create(env)
    # Read keys at the source's parallelism: the lines then go on down the source's channels, in order.
    parallelism = lines._j_data_stream.getParallelism()
    table_env.get_config().set("table.exec.resource.default-parallelism", str(parallelism))
    source = table_env.from_data_stream(lines)  # one STRING column, f0
    routed = table_env.sql_query(
        f"SELECT COALESCE(JSON_VALUE(f0, '$.key'), '{UNROUTABLE}') AS routing_key, f0 AS line FROM {source}"
    )
    rows = table_env.to_append_stream(routed, Types.ROW([Types.STRING(), Types.STRING()]))
    return keyed_by_first_field(rows, Types.STRING())


def keyed_by_first_field(rows: DataStream, value_type: TypeInformation) -> KeyedStream:
    """``rows`` of ``Row(key STRING, value)`` keyed by the key, in Java; functions downstream receive the value."""
    j_keyed = rows._j_data_stream.keyBy(get_gateway().jvm.KeyByKeySelector(),
                                        Types.ROW([Types.STRING()]).get_java_type_info())
    return KeyedStream(j_keyed, value_type, rows)
