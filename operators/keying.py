"""Routing every event line to its key's learner with no Python on the way.

PyFlink's ``key_by`` runs its key selector as a Python operator in the
source's task thread. In thread mode that thread then competes with the
learner for the TaskManager's one Python interpreter (the GIL), and the
learner waits: measured on the trivial graph files -> key -> emit at
parallelism 1, about 15k events/s with a Python key selector (plus 9k with
a Python decoder before it) and 40k with the key read in Java.

So riverflink's own Java map (``operators/java/riverflink/KeyOfLine.java``)
reads the key, chained to the source, and the learner decodes each line
itself, in its own thread. (Flink SQL's ``JSON_VALUE`` could read the key
too, but its planner costs two seconds of every job's start-up.) A line with
no readable key (not JSON, no key, a tombstone) goes to the key ``""``
(never a valid event key), where the learner turns it into a dead letter
with the exact reason.

Keys are wrapped exactly as PyFlink's ``key_by(..., key_type=STRING)`` wraps
them (a one-field Row, ``KeyByKeySelector``), so keys fall into the same key
groups and savepoints written by either restore into the other.
"""

from pyflink.common import Types
from pyflink.common.typeinfo import TypeInformation
from pyflink.datastream import DataStream
from pyflink.datastream.data_stream import KeyedStream
from pyflink.java_gateway import get_gateway

__all__ = ["UNROUTABLE", "keyed_by_first_field", "with_keys"]

UNROUTABLE = ""  # the routing key of a line without a readable key: decode_event rejects an empty key


def with_keys(lines: DataStream, missing: str | None) -> DataStream:
    """``Row(key, value)`` for each JSON line: its ``key`` field as Python reads it, or ``missing``.

    In Java, at the parallelism of ``lines`` and chained to it, so the lines go
    on down the same channels, in order. Needs the operators jar
    (``jobs.runtime.jars``) in the job.

    Parameters
    ----------
    lines
        A stream of JSON lines (STRING).
    missing
        The key of a line without a readable one: ``UNROUTABLE`` for events, None
        for output records with no key (the all-keys metrics).

    Returns
    -------
    DataStream
        ``Row(key STRING, value STRING)``, the value the line itself.
    """
    j_lines = lines._j_data_stream
    j_rows = j_lines.map(get_gateway().jvm.riverflink.KeyOfLine(missing)).setParallelism(j_lines.getParallelism())
    return DataStream(j_rows)


def keyed_by_first_field(rows: DataStream, value_type: TypeInformation) -> KeyedStream:
    """``rows`` of ``Row(key STRING, value)`` keyed by the key, in Java; functions downstream receive the value.

    Parameters
    ----------
    rows
        A stream of ``Row(key STRING, value)``.
    value_type
        The type of the value, what the downstream function is declared to receive.

    Returns
    -------
    KeyedStream
        Keyed as PyFlink's ``key_by(..., key_type=STRING)`` keys, so state lands in the same key groups.
    """
    j_keyed = rows._j_data_stream.keyBy(get_gateway().jvm.KeyByKeySelector(),
                                        Types.ROW([Types.STRING()]).get_java_type_info())
    return KeyedStream(j_keyed, value_type, rows)
