"""Flink adapter of ``operators.events``: raw lines in, Events out, dead letters aside."""

from pyflink.datastream import ProcessFunction

from operators.dead_letters import DeadLetter
from operators.events import decode_event
from operators.outputs import DEAD_LETTERS

__all__ = ["DecodeFunction"]


class DecodeFunction(ProcessFunction):
    """``emit_dead_letters``: whether the job consumes them (otherwise they are only counted)."""

    def __init__(self, emit_dead_letters: bool):
        self.emit_dead_letters = emit_dead_letters

    def open(self, runtime_context):
        self.dead_lettered = runtime_context.get_metrics_group().counter("decode_dead_lettered")

    def process_element(self, line, ctx):
        decoded = decode_event(line)
        if isinstance(decoded, DeadLetter):
            self.dead_lettered.inc()
            if self.emit_dead_letters:
                yield DEAD_LETTERS, decoded.to_json()
        else:
            yield decoded
