"""A keyed Python function behind ``riverflink.BatchedPythonKeyedProcessOperator`` (thread mode).

PyFlink builds the Java operator of ``KeyedStream.process`` itself; this
builds the same function info and hands it to riverflink's batching subclass
instead (``operators/java``), which passes the function one batch of
``(key, line)`` pairs per call and splits each string it returns into lines.
The function must expect batches and may join its output lines
(``operators.learner_function.LearnerFunction`` with ``batched=True``). Operator uid,
state and timers are those of PyFlink's operator, so savepoints move freely
between the two.
"""

from pyflink.common import Types
from pyflink.datastream import DataStream, KeyedProcessFunction
from pyflink.datastream.data_stream import KeyedStream, _create_j_data_stream_python_function_info
from pyflink.fn_execution import flink_fn_execution_pb2
from pyflink.java_gateway import get_gateway
from pyflink.util.java_utils import get_j_env_configuration

__all__ = ["BATCH_TYPE", "batched_process"]

# What the function receives per call: Row(first key, Row(keys, lines)).
BATCH_TYPE = Types.ROW([Types.STRING(), Types.ROW([Types.BASIC_ARRAY(Types.STRING()), Types.BASIC_ARRAY(Types.STRING())])])


def batched_process(keyed: KeyedStream, function: KeyedProcessFunction, max_lines: int,
                    max_delay_ms: int, live_key_states: tuple[str, ...] = (),
                    global_versions: DataStream | None = None) -> DataStream:
    """``keyed.process(function, Types.STRING())``, up to ``max_lines`` lines per call, none older than ``max_delay_ms``.

    Parameters
    ----------
    keyed
        A stream of ``Row(key STRING, line STRING)`` keyed by the key (``operators.keying``).
    function
        A function that expects ``BATCH_TYPE`` values, one batch per call, and
        returns a string of joined output lines.
    max_lines
        The most lines handed over in one call.
    max_delay_ms
        The longest a line waits for its batch to fill before the batch is handed over anyway.
    live_key_states
        Names of the keyed states of which every key with state holds one: a restored subtask
        counts their keys for the ``keys_live`` gauge, which the function then keeps current
        (the Java context's ``keysChanged``).
    global_versions
        The global model's versions, ``Row(version LONG, envelope BYTES)``
        (``operators.global_model.GLOBAL_VERSIONS``), broadcast to every subtask, whose
        function asks for the latest with each batch (``riverflink.GlobalAwareBatchedOperator``);
        None for no global model.

    Returns
    -------
    DataStream
        The function's output lines (STRING), one record per line.
    """
    j_stream = keyed._j_data_stream
    info = _create_j_data_stream_python_function_info(
        function, flink_fn_execution_pb2.UserDefinedDataStreamFunction.KEYED_PROCESS)
    j_output_type = Types.STRING().get_java_type_info()
    gateway = get_gateway()
    j_states = gateway.new_array(gateway.jvm.String, len(live_key_states))
    for i, name in enumerate(live_key_states):
        j_states[i] = name
    operator_class = gateway.jvm.riverflink.BatchedPythonKeyedProcessOperator
    if global_versions is not None:
        operator_class = gateway.jvm.riverflink.GlobalAwareBatchedOperator
        j_stream = j_stream.connect(global_versions._j_data_stream.broadcast())
    operator = operator_class(get_j_env_configuration(keyed._j_data_stream.getExecutionEnvironment()), info,
                              BATCH_TYPE.get_java_type_info(), j_output_type, max_lines, max_delay_ms, j_states)
    return DataStream(j_stream.transform("KEYED PROCESS", j_output_type, operator))
