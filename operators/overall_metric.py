"""The all-keys progressive metrics (``"key": null`` in the metrics output).

Every per-key metric update is also sent here, on a single key, so the overall
figure is computed over all events exactly as river would over the whole
stream, rather than approximated by combining per-key figures. With
challengers each model has its own all-keys metric, on its name as the key.
With ``every_n`` each also reports every n updates, which draws the metric
over the stream (``riverflink evaluate --plot``).
"""

from pyflink.datastream import KeyedProcessFunction

from operators.outputs import ALL_KEYS
from operators.records import metric_record
from operators.timers import END_OF_INPUT, next_boundary
from state.descriptors import overall_metric_descriptor
from state.envelope import dump_state, load_state

__all__ = ["OverallMetricFunction"]


class OverallMetricFunction(KeyedProcessFunction):
    """Keyed by ``ALL_KEYS`` (served predictions) or a model's name.

    Receives ``(y, for_metric)`` pairs from the learner's ``METRIC_UPDATES``
    side output and emits metric records (``operators.records.metric_record``)
    every ``interval_ms`` and at the end of the input.

    Parameters
    ----------
    metric_template
        A fresh metric's envelope (``state.envelope.dump_state``), cloned for each group.
    interval_ms
        How often each group reports its metric (processing time).
    every_n
        Also report every ``every_n`` updates, to draw the metric over the stream; None: only on time.
    """

    def __init__(self, metric_template: bytes, interval_ms: int, every_n: int | None = None):
        self.metric_template = metric_template
        self.interval_ms = interval_ms
        self.every_n = every_n

    def open(self, runtime_context):
        self.fresh_metric = load_state(self.metric_template)
        self.metric_state = runtime_context.get_state(overall_metric_descriptor())

    def process_element(self, update, ctx):
        blob = self.metric_state.value()
        if blob is None:
            metric, n = self.fresh_metric.clone(), 0
            ctx.timer_service().register_event_time_timer(END_OF_INPUT)
        else:
            metric, n = load_state(blob)
        y, for_metric = update
        metric.update(y, for_metric)
        n += 1
        self.metric_state.update(dump_state((metric, n)))
        now_ms = ctx.timer_service().current_processing_time()
        ctx.timer_service().register_processing_time_timer(next_boundary(now_ms, self.interval_ms))
        if self.every_n is not None and n % self.every_n == 0:
            yield self._record(metric, n, now_ms, ctx.get_current_key())

    def on_timer(self, timestamp, ctx):
        blob = self.metric_state.value()
        if blob is None:
            return
        metric, n = load_state(blob)
        yield self._record(metric, n, ctx.timer_service().current_processing_time(), ctx.get_current_key())

    @staticmethod
    def _record(metric, n: int, now_ms: int, group: str) -> str:
        return metric_record(None, metric, n, now_ms, model=None if group == ALL_KEYS else group)
