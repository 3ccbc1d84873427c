"""Flink adapter of the learning step: one river model per key in managed keyed state.

It receives each event's raw line, keyed in Java (``operators.keying``), and
decodes it here: in thread mode every Python operator shares the
TaskManager's one interpreter, and a decoder in the source's thread would
make the learner wait for it.

It only moves bytes: each event's key state comes from the key store
(``state.key_store``, which also says when state reaches Flink), goes
through ``operators.learning_step.LearningStep``, and goes back to the
store; the step's outcome becomes output records (``operators.records``).

Batches (``batched``): in thread mode, lines come in batches from
riverflink's Java operator (``operators.batching``), which also hands over
an empty batch before every checkpoint barrier and at the end of the input:
there the store writes every key it holds changes of, so a checkpoint holds
exactly the models as of its place in the stream. A batch's predictions go
back as one string of lines, which the Java operator emits one record each.

Timers: every key has an event-time timer at the end of time, which fires when
a bounded input ends (final metric and model snapshot), and processing-time
timers on interval boundaries for periodic metrics, snapshots and label expiry
(``operators.timers``).

Key TTL (``key_ttl_ms``): the key's last event time is kept in its own small
state; every event registers a processing-time check (``KeyExpiry.check_at``),
and a key found idle, by a check or by its next event, loses all its state
(model, metric, event ids, its end-of-input timer) and reports nothing more:
its next event starts from the template.
"""

import collections
import copy
import time

from pyflink.common import Row
from pyflink.datastream import KeyedProcessFunction
from pyflink.datastream.time_domain import TimeDomain

from operators.dead_letters import DeadLetter, Reason
from operators.events import decode_event
from operators.flink_metrics import COUNTERS_EVERY_S, SAMPLE_EVERY, BatchedCounter
from operators.garbage_collection import freeze_long_lived
from operators.global_model import version_for
from operators.learner_config import LearnerConfig
from operators.learning_step import LearningStep
from operators.lifecycle import BLEND, LifecyclePolicy
from operators.model_kinds import Kind, make_metric
from operators.outputs import ALL_KEYS, DEAD_LETTERS, LIFECYCLE_EVENTS, METRIC_UPDATES, METRICS, MODEL_SNAPSHOTS
from operators.records import metric_record, model_snapshot_record, to_json
from operators.timers import END_OF_INPUT, KeyExpiry, next_boundary
from state.descriptors import event_ids_descriptor, key_log_descriptor, key_state_descriptor, last_seen_descriptor
from state.envelope import dump_state, load_state
from state.key_cache import KeyCache
from state.key_store import KeyStore

__all__ = ["LearnerFunction"]

RELEASE_AFTER_BATCHES = 64  # a global model version is let go once this many batches answered only with newer ones


def _register_once(timers, registered_ms: int, due_ms: int) -> int:
    """Register a processing-time timer at ``due_ms`` unless it is the one registered last; returns ``due_ms``.

    Flink keeps one timer per key and time anyway, but each registration is a call into Java.
    """
    if due_ms != registered_ms:
        timers.register_processing_time_timer(due_ms)
    return due_ms


class LearnerFunction(KeyedProcessFunction):
    """Keyed learner: lines in, predictions out, side outputs for the rest.

    Parameters
    ----------
    config
        The models, rules, intervals and wired outputs (``operators.learner_config``).
    """

    def __init__(self, config: LearnerConfig):
        self.config = config

    def open(self, runtime_context):
        config = self.config
        if config.batched:  # the interpreter Flink embeds is the learner's alone
            freeze_long_lived()  # what PyFlink and river loaded before the first event
        templates = {name: load_state(blob) for name, blob in config.templates.items()}
        # A warm start copies what the template has learned; clone() would forget it.
        new_models = {
            name: (lambda t=template: copy.deepcopy(t)) if config.warm_start else template.clone
            for name, template in templates.items()
        }
        first = next(iter(new_models))
        metric_template = make_metric(config.kind, config.metric_name, templates[first])
        new_metric = lambda: None if metric_template is None else metric_template.clone()  # noqa: E731
        policy = None
        if config.lifecycle is not None:
            global_template = None if config.global_template is None else load_state(config.global_template)
            policy = LifecyclePolicy.from_options(config.kind, new_models, new_metric, config.lifecycle, global_template)
        self.step = LearningStep(config.kind, new_model=new_models[first], new_metric=new_metric,
                                 label_ttl_ms=config.label_ttl_ms, policy=policy, arms=config.arms)
        self.decisions = config.kind is Kind.BANDIT
        self.global_models = {}  # version -> the global model's version, loaded, while the Java operator holds it
        # The oldest version each of the last batches answered with: input channels (Kafka partitions, files)
        # come at their own pace, so a batch of one fast channel must not let go of what a slower one needs.
        self.oldest_answered_lately = collections.deque(maxlen=RELEASE_AFTER_BATCHES)
        group = runtime_context.get_metrics_group()
        self.keys_read = BatchedCounter(group.counter("keys_read_from_state"))  # not in the cache: read, replayed
        self.store = KeyStore(
            runtime_context.get_state(key_state_descriptor()),
            runtime_context.get_list_state(key_log_descriptor()),
            runtime_context.get_map_state(event_ids_descriptor()),
            KeyCache(config.cache_bytes),
            fresh_state=dump_state(self.step.new_state()),  # unpickling a copy is much faster than clone()
            replay=self.step.replay,
            write_back=config.write_back,
            ids_as_pairs=config.process_mode,
            keys_read=self.keys_read.inc,
        )
        self.expiry = None if config.key_ttl_ms is None else KeyExpiry(config.key_ttl_ms)
        self.last_seen = None if self.expiry is None else runtime_context.get_state(last_seen_descriptor())
        self.event_clock_ms = None  # by event time: the latest ts this subtask has seen (since it started)
        self.predicted = BatchedCounter(group.counter("events_predicted"))
        self.learned = BatchedCounter(group.counter("events_learned"))
        self.counters_due = time.monotonic() + COUNTERS_EVERY_S
        self.sampled = 0
        self.dead_lettered = group.counter("events_dead_lettered")
        self.duplicates = group.counter("duplicates_dropped")
        self.keys_created = group.counter("keys_created")
        self.keys_expired = group.counter("keys_expired")
        self.decode_dead_lettered = group.counter("decode_dead_lettered")
        self.process_time = group.distribution("event_process_time_us")

    def process_element(self, value, ctx):
        predictions, side_outputs = [], []
        if not self.config.batched:
            self._process_line(ctx.get_current_key(), value, ctx, predictions, side_outputs)
            yield from predictions
            yield from side_outputs
            return
        # A batch from operators.batching: Row(keys, lines). PyFlink's context wraps the Java
        # one, whose select() makes the next line's key current for state and timers.
        keys, lines = value[0], value[1]
        select = ctx._j_context.select
        if not keys:  # a checkpoint barrier or the end of the input is next: Flink state must be current
            self.store.write_all(select)
            self._flush_counters()
            self._report_keys(ctx)
            return
        if self.step.has_global:
            self._hold_global_versions(ctx._j_context)
        for key, line in zip(keys, lines):
            select(key)
            self._process_line(key, line, ctx, predictions, side_outputs)
        if self.step.has_global:
            self._release_global_versions(ctx._j_context)
        if self.store.dropped:
            self.store.write_dropped(select)
        self._report_keys(ctx)
        if len(keys) < self.config.batch_lines or time.monotonic() >= self.counters_due:
            self._flush_counters()  # the input is slow, or a second has passed: counts are cheap to hand over
        yield from side_outputs
        if predictions:  # one string for the batch: the Java operator emits each line as its own record
            yield "\n".join(predictions)

    def _hold_global_versions(self, context) -> None:
        """Learn which versions of the global model the Java operator holds: one call a batch."""
        pairs = context.globalVersions()
        self.global_versions, self.global_until = list(pairs[0::2]), list(pairs[1::2])
        self.global_context = context
        self.oldest_answered = None
        for version in [v for v in self.global_models if v < self.global_versions[0]]:
            del self.global_models[version]

    def _answer_global_for(self, event) -> None:
        """Make the step answer ``event`` with the newest version that learned only from earlier events."""
        version = version_for(self.global_versions, self.global_until, event.ts)
        if self.oldest_answered is None or version < self.oldest_answered:
            self.oldest_answered = version
        if version == self.step.global_version:
            return
        model = self.global_models.get(version)
        if model is None:
            blob = bytes(self.global_context.globalModel(version))
            model = self.global_models[version] = self.step.policy.global_template if not blob else load_state(blob)
        self.step.use_global(version, model)

    def _release_global_versions(self, context) -> None:
        """Let the versions older than any of the last batches answered with go: events come roughly in time order."""
        if self.oldest_answered is None:
            return
        self.oldest_answered_lately.append(self.oldest_answered)
        oldest = min(self.oldest_answered_lately)
        if oldest > self.global_versions[0]:
            context.releaseGlobalBefore(oldest)

    def _process_line(self, key: str, line: str, ctx, predictions: list, side_outputs: list) -> None:
        """Learn from one raw event line routed to ``key`` (the current key); outputs go to the two lists."""
        started = time.perf_counter()
        event = decode_event(line, self.decisions)
        if isinstance(event, DeadLetter) or event.key != key:
            self._reject_line(line, event, side_outputs)
            return
        if self.step.has_global and not event.is_label_only:
            self._answer_global_for(event)
        config = self.config
        timers = ctx.timer_service()
        now_ms = time.time_ns() // 1_000_000  # Flink's processing time is this clock; reading it here skips a JVM call
        if self.expiry is not None:
            self._expire_or_touch(key, event, now_ms, timers)
        store = self.store
        loaded = store.load(key)
        if loaded is None:
            loaded = store.new_key()
        outcome = self.step.process(loaded.state, loaded.ids, event, now_ms)
        if outcome.replay is not None:
            store.store(key, loaded, outcome.replay)
            if outcome.state_changed:  # not only ids: the key has something to report
                if not loaded.reporting:
                    loaded.reporting = True
                    self.keys_created.inc()
                    timers.register_event_time_timer(END_OF_INPUT)
                if config.emits_metrics:
                    loaded.metrics_timer_ms = _register_once(timers, loaded.metrics_timer_ms,
                                                             next_boundary(now_ms, config.metrics_interval_ms))
                if config.emits_snapshots:
                    loaded.unsnapshotted = True
                    loaded.snapshot_timer_ms = _register_once(timers, loaded.snapshot_timer_ms,
                                                              next_boundary(now_ms, config.snapshot_interval_ms))
        elif outcome.model_ran:  # the model may have moved without being written: the stored state is the truth
            store.roll_back(key)
        if outcome.prediction is not None:
            self.predicted.inc()
            if config.label_ttl_ms is not None and event.y is None and event.id is not None:
                timers.register_processing_time_timer(next_boundary(now_ms + config.label_ttl_ms, 1000))
            predictions.append(outcome.prediction.to_json())
        if outcome.learned:
            self.learned.inc()
        if config.emits_metric_updates:
            if outcome.metric_update is not None:
                side_outputs.append((METRIC_UPDATES, Row(ALL_KEYS, outcome.metric_update)))
            for name, update in outcome.model_updates:
                side_outputs.append((METRIC_UPDATES, Row(name, update)))
        if config.emits_events:
            for record in outcome.events:
                side_outputs.append((LIFECYCLE_EVENTS, to_json(record)))
        if outcome.dead_letter is not None:
            self.dead_lettered.inc()
            if config.emits_dead_letters:
                side_outputs.append((DEAD_LETTERS, outcome.dead_letter.to_json()))
        if outcome.duplicate:
            self.duplicates.inc()
        self.sampled += 1
        if self.sampled >= SAMPLE_EVERY:
            self.sampled = 0
            self.process_time.update(int((time.perf_counter() - started) * 1e6))

    def _expire_or_touch(self, key: str, event, now_ms: int, timers) -> None:
        """Drop the key if it has been idle for the TTL, and remember it as seen now (``--key-ttl``).

        By processing time, now is the clock; by event time (``key_ttl_by_ts``),
        it is the event's ``ts``, or for an event without one the latest ``ts``
        this subtask has seen (none yet: the event is not timed).
        """
        seen_ms = now_ms
        if self.config.key_ttl_by_ts:
            seen_ms = self.event_clock_ms if event.ts is None else int(event.ts * 1000)
            if seen_ms is None:
                return
            self.event_clock_ms = seen_ms if self.event_clock_ms is None else max(self.event_clock_ms, seen_ms)
        last_seen = self.last_seen.value()
        if self.expiry.idle(last_seen, seen_ms):  # its check has not fired yet
            self._drop_key(key, timers)
        elif last_seen is not None and last_seen > seen_ms:  # an event earlier than the key's last one
            return
        self.last_seen.update(seen_ms)
        timers.register_processing_time_timer(self.expiry.check_at(now_ms))

    def _idle_at_timer(self, timestamp: int, now_ms: int, end_of_input: bool, timers) -> bool:
        """Whether the timer's key has been idle for the TTL; by event time, a key not idle yet is checked again
        when it would be, were event time to pass as processing time does."""
        if not self.config.key_ttl_by_ts:
            # A processing-time timer is due at `timestamp`: never judge by an earlier clock reading,
            # or the key's last check could find it not quite idle, and nothing would check it again.
            return self.expiry.idle(self.last_seen.value(), now_ms if end_of_input else max(now_ms, timestamp))
        last_seen, clock = self.last_seen.value(), self.event_clock_ms
        if last_seen is None:
            return False
        if clock is not None and self.expiry.idle(last_seen, clock):
            return True
        if not end_of_input:
            remaining = self.expiry.ttl_ms - (0 if clock is None else clock - last_seen)
            timers.register_processing_time_timer(self.expiry.check_at(now_ms + remaining - self.expiry.ttl_ms))
        return False

    def close(self):
        self._flush_counters()

    def _report_keys(self, ctx) -> None:
        """Tell the Java operator's ``keys_live`` gauge of the keys added and removed since (by timers too)."""
        keys_changed = self.store.take_keys_changed()
        if keys_changed:
            ctx._j_context.keysChanged(keys_changed)

    def _flush_counters(self) -> None:
        """Hand every count over to Flink: a job that slows down or idles shows them all."""
        self.counters_due = time.monotonic() + COUNTERS_EVERY_S
        self.predicted.flush()
        self.learned.flush()
        self.keys_read.flush()

    def _reject_line(self, line, decoded, side_outputs: list) -> None:
        """A line that is no event of this key: not one at all, or one whose key Java read differently."""
        if not isinstance(decoded, DeadLetter):  # a key Java and Python read differently, such as odd escapes
            detail = f"the key {decoded.key!r} cannot be routed exactly as written; use a plain string"
            decoded = DeadLetter(line, Reason.INVALID_KEY, detail, decoded.key)
        self.decode_dead_lettered.inc()
        if self.config.emits_dead_letters:
            side_outputs.append((DEAD_LETTERS, decoded.to_json()))

    def on_timer(self, timestamp, ctx):
        config = self.config
        now_ms = ctx.timer_service().current_processing_time()
        end_of_input = ctx.time_domain() == TimeDomain.EVENT_TIME
        key = ctx.get_current_key()
        if self.expiry is not None and self._idle_at_timer(timestamp, now_ms, end_of_input, ctx.timer_service()):
            self._drop_key(key, ctx.timer_service())
            return
        store = self.store
        loaded = store.load(key)
        if config.label_ttl_ms is not None and not end_of_input:
            ids = store.ids_of(loaded)
            if self.step.expire(ids, now_ms):  # the log does not hold these changes: write them now
                store.write_ids(key, loaded, ids)
        if loaded is None or not loaded.reporting:
            return
        state = loaded.state
        if config.emits_metrics and (end_of_input or timestamp % config.metrics_interval_ms == 0):
            if state.metric is not None:
                yield METRICS, metric_record(key, state.metric, state.metric_n, now_ms)
            candidates = {} if state.lifecycle is None else state.lifecycle.candidates
            for name, candidate in candidates.items():
                yield METRICS, metric_record(key, candidate.metric, candidate.metric_n, now_ms, model=name)
        # Served by the global model (whose versions go out on their own), the key's own model is written,
        # once it has one (--admit-after).
        model = state.model if state.model is not None else state.lifecycle.candidates[self.step.policy.names[0]].model
        if (config.emits_snapshots and (end_of_input or timestamp % config.snapshot_interval_ms == 0)
                and loaded.unsnapshotted and model is not None):  # else its last snapshot holds this model
            loaded.unsnapshotted = False
            serving = None if state.lifecycle is None else state.lifecycle.serving
            weight = self.step.policy.global_weight(state.lifecycle) if serving == BLEND else None
            # Plain pickle: written once a second or more, restored once per server (``state.envelope``).
            blob = dump_state(model, fast_restore=False)
            yield MODEL_SNAPSHOTS, model_snapshot_record(key, state.model_version, blob, now_ms, serving=serving,
                                                         global_weight=weight)

    def _drop_key(self, key: str, timers) -> None:
        """Forget everything the current key owns; its next event starts from the template."""
        self.store.drop(key)
        self.last_seen.clear()
        timers.delete_event_time_timer(END_OF_INPUT)  # else a stream of new keys leaves one timer each behind
        self.keys_expired.inc()
