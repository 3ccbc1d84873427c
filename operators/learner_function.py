"""Flink adapter of the learning step: one river model per key in managed keyed state.

It receives each event's raw line, keyed in Java (``operators.keying``), and
decodes it here: in thread mode every Python operator shares the
TaskManager's one interpreter, and a decoder in the source's thread would
make the learner wait for it.

Only state transport lives here: read the key's state, hand it to
``operators.learning_step.LearningStep``, store the change, emit. A key's state in
Flink is an envelope plus a log of the changes since (``state.key_log``), and
it is current whenever a checkpoint barrier passes, so a checkpoint holds
exactly the models as of that point of the stream: recovery replays from
there and nothing is learned twice. Between events the deserialized state
stays in a ``state.key_cache.KeyCache``, so a busy key is read from Flink
only once.

When to write (``batched``): in thread mode, lines come in batches from
riverflink's Java operator (``operators.batching``), which also hands over
an empty batch before every checkpoint barrier and at the end of the input.
Then a key's changes stay in Python (``dirty``) and are written at that empty
batch, or at the end of the batch in which the cache let the key go, or before
a failed event is rolled back: a key seen ten times between two barriers is
written once. Without batches (process mode) nothing announces a barrier, so
every change is written as it happens. A batch's predictions go back as one
string of lines, which the Java operator emits one record each.

Timers: every key has an event-time timer at the end of time, which fires when
a bounded input ends (final metric and model snapshot), and processing-time
timers on interval boundaries for periodic metrics, snapshots and label expiry.

Key TTL (``key_ttl_ms``): the key's last event time is kept in its own small
state; every event registers a processing-time check (``KeyExpiry.check_at``),
and a key found idle, by a check or by its next event, loses all its state
(model, metric, event ids, its end-of-input timer) and reports nothing more:
its next event starts from the template.
"""

import base64
import copy
import gc
import logging
import time

from pyflink.common import Row
from pyflink.datastream import KeyedProcessFunction
from pyflink.datastream.time_domain import TimeDomain

from operators.dead_letters import DeadLetter, Reason
from operators.events import decode_event
from operators.flink_metrics import SAMPLE_EVERY, BatchedCounter
from operators.learning_step import KeyExpiry, LearningStep, metric_record, next_boundary, to_json
from operators.lifecycle import LifecyclePolicy
from operators.model_kinds import Kind, make_metric
from operators.outputs import ALL_KEYS, DEAD_LETTERS, LIFECYCLE_EVENTS, METRIC_UPDATES, METRICS, MODEL_SNAPSHOTS
from state.descriptors import event_ids_descriptor, key_log_descriptor, key_state_descriptor, last_seen_descriptor
from state.envelope import dump_state, load_state
from state.key_cache import KeyCache
from state.key_ids import KeyIds
from state.key_log import LoadedKey, fold_due

__all__ = ["LearnerFunction", "END_OF_INPUT", "next_boundary"]

logger = logging.getLogger(__name__)

END_OF_INPUT = 2**63 - 1  # Flink's maximum watermark: reached only when a bounded input ends


GC_THRESHOLDS = (50_000, 20, 100)  # CPython's default is (700, 10, 10)


def _tune_garbage_collection() -> None:
    """Collect cyclic garbage less often than CPython's default.

    A learner holds tens of thousands of long-lived key states, and every new
    key or replayed state allocates hundreds of objects that survive: with
    the default thresholds the collector walks them again and again, and
    unpickling a fresh key state took about three times as long as alone.
    What PyFlink and river loaded before the first event is frozen, never
    walked again. Garbage is still collected, in larger rounds.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class LearnerFunction(KeyedProcessFunction):
    """Keyed learner.

    ``templates``: name -> envelope of a model every new key starts from, the
    serving model's first, then the challengers. ``lifecycle``: the keyword
    arguments of ``LifecyclePolicy`` besides the models (promotion window and
    margin, the envelope of a drift ``detector``, ``on_drift``), or None.
    """

    def __init__(
        self,
        templates: dict[str, bytes],
        kind: Kind,
        metric_name: str | None,
        label_ttl_ms: int | None,
        metrics_interval_ms: int,
        snapshot_interval_ms: int,
        wired: frozenset = frozenset(),
        key_ttl_ms: int | None = None,
        cache_bytes: int = 0,
        warm_start: bool = False,
        lifecycle: dict | None = None,
        process_mode: bool = False,
        batched: bool = False,
    ):
        self.templates = templates
        self.warm_start = warm_start
        self.lifecycle = lifecycle
        self.kind = kind
        self.metric_name = metric_name
        self.label_ttl_ms = label_ttl_ms
        self.metrics_interval_ms = metrics_interval_ms
        self.snapshot_interval_ms = snapshot_interval_ms
        self.key_ttl_ms = key_ttl_ms
        self.cache_bytes = cache_bytes
        self.process_mode = process_mode
        self.batched = batched
        # Which side outputs the job consumes: PyFlink fails on a record sent to any other.
        self.emits_metrics = METRICS.tag_id in wired
        self.emits_metric_updates = METRIC_UPDATES.tag_id in wired
        self.emits_snapshots = MODEL_SNAPSHOTS.tag_id in wired
        self.emits_dead_letters = DEAD_LETTERS.tag_id in wired
        self.emits_events = LIFECYCLE_EVENTS.tag_id in wired

    def open(self, runtime_context):
        if self.batched:  # the interpreter Flink embeds is the learner's alone
            _tune_garbage_collection()
        templates = {name: load_state(blob) for name, blob in self.templates.items()}
        # A warm start copies what the template has learned; clone() would forget it.
        new_models = {
            name: (lambda t=template: copy.deepcopy(t)) if self.warm_start else template.clone
            for name, template in templates.items()
        }
        first = next(iter(new_models))
        self.metric_template = make_metric(self.kind, self.metric_name, templates[first])
        new_metric = lambda: None if self.metric_template is None else self.metric_template.clone()  # noqa: E731
        policy = None
        if self.lifecycle is not None:
            options = dict(self.lifecycle)
            detector = options.pop("detector", None)
            policy = LifecyclePolicy(self.kind, new_models, new_metric, **options,
                                     detector=None if detector is None else load_state(detector))
        self.step = LearningStep(self.kind, new_model=new_models[first], new_metric=new_metric,
                                 label_ttl_ms=self.label_ttl_ms, policy=policy)
        self.fresh_state = dump_state(self.step.new_state())  # unpickling a copy is much faster than clone()
        self.key_state = runtime_context.get_state(key_state_descriptor())
        self.key_log = runtime_context.get_list_state(key_log_descriptor())
        self.cache = KeyCache(self.cache_bytes)
        # Write-back (batched, with a cache): a key's changes reach Flink state by the next barrier.
        self.write_back = self.batched and self.cache_bytes > 0
        self.dirty = {}  # key -> LoadedKey whose state is ahead of Flink's, cached or not
        self.dropped = set()  # dirty keys the cache let go of, written at the end of the batch
        self.select = None  # the Java context's key selection, known from the first batch
        self.ids = runtime_context.get_map_state(event_ids_descriptor())
        self.expiry = None if self.key_ttl_ms is None else KeyExpiry(self.key_ttl_ms)
        self.last_seen = None if self.expiry is None else runtime_context.get_state(last_seen_descriptor())
        group = runtime_context.get_metrics_group()
        self.predicted = BatchedCounter(group.counter("events_predicted"))
        self.learned = BatchedCounter(group.counter("events_learned"))
        self.sampled = 0
        self.dead_lettered = group.counter("events_dead_lettered")
        self.duplicates = group.counter("duplicates_dropped")
        self.keys_created = group.counter("keys_created")
        self.keys_expired = group.counter("keys_expired")
        self.keys_read = BatchedCounter(group.counter("keys_read_from_state"))  # not in the cache: read, replayed
        self.decode_dead_lettered = group.counter("decode_dead_lettered")
        self.process_time = group.distribution("event_process_time_us")

    def process_element(self, value, ctx):
        predictions, side_outputs = [], []
        if not self.batched:
            self._process_line(ctx.get_current_key(), value, ctx, predictions, side_outputs)
            yield from predictions
            yield from side_outputs
            return
        # A batch from operators.batching: Row(keys, lines). PyFlink's context wraps the Java
        # one, whose select() makes the next line's key current for state and timers.
        keys, lines = value[0], value[1]
        select = self.select = ctx._j_context.select
        if not keys:  # a checkpoint barrier or the end of the input is next: Flink state must be current
            self._write_all()
            return
        for key, line in zip(keys, lines):
            select(key)
            self._process_line(key, line, ctx, predictions, side_outputs)
        if self.dropped:
            self._write_dropped()
        yield from side_outputs
        if predictions:  # one string for the batch: the Java operator emits each line as its own record
            yield "\n".join(predictions)

    def _process_line(self, key: str, line: str, ctx, predictions: list, side_outputs: list) -> None:
        """Learn from one raw event line routed to ``key`` (the current key); outputs go to the two lists."""
        started = time.perf_counter()
        event = decode_event(line)
        if isinstance(event, DeadLetter) or event.key != key:
            self._reject_line(line, event, side_outputs)
            return
        timers = ctx.timer_service()
        now_ms = time.time_ns() // 1_000_000  # Flink's processing time is this clock; reading it here skips a JVM call
        if self.expiry is not None:
            if self.expiry.idle(self.last_seen.value(), now_ms):  # its check has not fired yet
                self._drop_key(event.key, timers)
            self.last_seen.update(now_ms)
            timers.register_processing_time_timer(self.expiry.check_at(now_ms))
        loaded = self._load(event.key)
        if loaded is None:
            state = load_state(self.fresh_state)
            ids = KeyIds(self.ids, known=set() if self.ids.is_empty() else None)  # no ids stored: none to look up
        else:
            state, ids = loaded.state, loaded.ids
        outcome = self.step.process(state, ids, event, now_ms)
        if outcome.replay is not None:
            if loaded is None:
                loaded = LoadedKey(state, envelope_bytes=len(self.fresh_state), logged=0, ids=ids)
            self._store(event.key, loaded, outcome.replay)
            if outcome.state_changed:  # not only ids: the key has something to report
                if not loaded.reporting:
                    loaded.reporting = True
                    self.keys_created.inc()
                    timers.register_event_time_timer(END_OF_INPUT)
                if self.emits_metrics:
                    timers.register_processing_time_timer(next_boundary(now_ms, self.metrics_interval_ms))
                if self.emits_snapshots:
                    timers.register_processing_time_timer(next_boundary(now_ms, self.snapshot_interval_ms))
        elif outcome.model_ran:  # the model may have moved without being written: the stored state is the truth
            unwritten = self.dirty.get(event.key)
            if unwritten is not None:  # the changes before this event are sound: they join the stored log
                self._write(event.key, unwritten, may_fold=False)
            self.cache.evict(event.key)
        if outcome.prediction is not None:
            self.predicted.inc()
            if self.label_ttl_ms is not None and event.y is None and event.id is not None:
                timers.register_processing_time_timer(next_boundary(now_ms + self.label_ttl_ms, 1000))
            predictions.append(outcome.prediction.to_json())
        if outcome.learned:
            self.learned.inc()
        if self.emits_metric_updates:
            if outcome.metric_update is not None:
                side_outputs.append((METRIC_UPDATES, Row(ALL_KEYS, outcome.metric_update)))
            for name, update in outcome.model_updates:
                side_outputs.append((METRIC_UPDATES, Row(name, update)))
        if self.emits_events:
            for record in outcome.events:
                side_outputs.append((LIFECYCLE_EVENTS, to_json(record)))
        if outcome.dead_letter is not None:
            self.dead_lettered.inc()
            if self.emits_dead_letters:
                side_outputs.append((DEAD_LETTERS, outcome.dead_letter.to_json()))
        if outcome.duplicate:
            self.duplicates.inc()
        self.sampled += 1
        if self.sampled >= SAMPLE_EVERY:
            self.sampled = 0
            self.process_time.update(int((time.perf_counter() - started) * 1e6))

    def close(self):
        self.predicted.flush()
        self.learned.flush()
        self.keys_read.flush()

    def _reject_line(self, line, decoded, side_outputs: list) -> None:
        """A line that is no event of this key: not one at all, or one whose key Java read differently."""
        if not isinstance(decoded, DeadLetter):  # a key Java and Python read differently, such as odd escapes
            detail = f"the key {decoded.key!r} cannot be routed exactly as written; use a plain string"
            decoded = DeadLetter(line, Reason.INVALID_KEY, detail, decoded.key)
        self.decode_dead_lettered.inc()
        if self.emits_dead_letters:
            side_outputs.append((DEAD_LETTERS, decoded.to_json()))

    def on_timer(self, timestamp, ctx):
        now_ms = ctx.timer_service().current_processing_time()
        end_of_input = ctx.time_domain() == TimeDomain.EVENT_TIME
        if self.expiry is not None:
            # A processing-time timer is due at `timestamp`: never judge by an earlier clock reading,
            # or the key's last check could find it not quite idle, and nothing would check it again.
            checked_at = now_ms if end_of_input else max(now_ms, timestamp)
            if self.expiry.idle(self.last_seen.value(), checked_at):
                self._drop_key(ctx.get_current_key(), ctx.timer_service())
                return
        key = ctx.get_current_key()
        loaded = self._load(key)
        if self.label_ttl_ms is not None and not end_of_input:
            ids = KeyIds(self.ids) if loaded is None else loaded.ids
            if self.step.expire(ids, now_ms):  # the log does not hold these changes: write them now
                if loaded is None:
                    ids.flush(self._put_ids)
                else:
                    self._fold(key, loaded)
                    self._cache(key, loaded)
        if loaded is None or not loaded.reporting:
            return
        state = loaded.state
        if self.emits_metrics and (end_of_input or timestamp % self.metrics_interval_ms == 0):
            if state.metric is not None:
                yield METRICS, metric_record(key, state.metric, state.metric_n, now_ms)
            candidates = {} if state.lifecycle is None else state.lifecycle.candidates
            for name, candidate in candidates.items():
                yield METRICS, metric_record(key, candidate.metric, candidate.metric_n, now_ms, model=name)
        if self.emits_snapshots and (end_of_input or timestamp % self.snapshot_interval_ms == 0):
            snapshot = {
                "key": key, "model_version": state.model_version, "ts": now_ms / 1000,
                "model": base64.b64encode(dump_state(state.model)).decode(),
            }
            if state.lifecycle is not None:
                snapshot["serving"] = state.lifecycle.serving
            yield MODEL_SNAPSHOTS, to_json(snapshot)

    def _load(self, key: str) -> LoadedKey | None:
        """The key's state: from the cache, or its envelope with its log replayed; None for a key with none."""
        loaded = self.cache.get(key)
        if loaded is not None:
            return loaded
        loaded = self.dirty.get(key)  # let go by the cache, not written yet: Flink's copy is behind
        if loaded is not None:
            self._cache(key, loaded)
            return loaded
        blob = self.key_state.value()
        entries = list(self.key_log.get() or ())
        if blob is None and not entries:
            return None
        self.keys_read.inc()
        envelope = self.fresh_state if blob is None else blob  # a new key's first changes may all be logged
        state = load_state(envelope)
        ids = KeyIds(self.ids)
        for entry in entries:
            ids.pending.update(self.step.replay(state, entry))
        loaded = LoadedKey(state, envelope_bytes=len(envelope), logged=len(entries), ids=ids,
                           reporting=state.changed_since_new)
        self._cache(key, loaded)
        return loaded

    def _cache(self, key: str, loaded: LoadedKey) -> None:
        for dropped_key, _ in self.cache.put(key, loaded, loaded.envelope_bytes + loaded.ids.cache_bytes):
            if dropped_key in self.dirty:
                self.dropped.add(dropped_key)

    def _store(self, key: str, loaded: LoadedKey, replay: tuple) -> None:
        """Make Flink state hold the key's change: now (log it, or fold the log into a new envelope), or by the next barrier."""
        if self.write_back:
            loaded.unwritten.append(replay)
            self.dirty[key] = loaded
        elif self.cache.capacity_bytes == 0 or fold_due(loaded):  # without a cache, every event would replay the log
            self._fold(key, loaded)
        else:
            self.key_log.add(replay)
            loaded.logged += 1
        self._cache(key, loaded)

    def _write(self, key: str, loaded: LoadedKey, may_fold: bool = True) -> None:
        """Write a dirty key's changes to Flink state (``key`` must be current): log them, or fold.

        ``may_fold`` False: the state object is not to be trusted (a model failed
        half-way through an event), only the changes before it, so they are logged.
        """
        entries = loaded.unwritten
        if may_fold and fold_due(loaded, adding=len(entries)):
            self._fold(key, loaded)
            return
        self.key_log.add_all(entries)
        loaded.logged += len(entries)
        loaded.unwritten = []
        del self.dirty[key]

    def _write_all(self) -> None:
        """Write every dirty key: a checkpoint barrier, or the end of the input, comes next."""
        for key, loaded in list(self.dirty.items()):
            self.select(key)
            self._write(key, loaded)
        self.dropped.clear()

    def _write_dropped(self) -> None:
        """Write the dirty keys the cache let go of, so the memory they hold stays bounded by one batch."""
        for key in self.dropped:
            loaded = self.dirty.get(key)
            if loaded is not None and key not in self.cache:  # else it came back, dirty, to the cache
                self.select(key)
                self._write(key, loaded)
        self.dropped.clear()

    def _fold(self, key: str, loaded: LoadedKey) -> None:
        """Write the key's whole state and its pending ids, and clear its log, which they now make redundant."""
        blob = dump_state(loaded.state)
        self.key_state.update(blob)
        loaded.ids.flush(self._put_ids)
        if loaded.logged:
            self.key_log.clear()
        loaded.envelope_bytes, loaded.logged = len(blob), 0
        loaded.unwritten = []  # the envelope holds whatever was not written yet
        self.dirty.pop(key, None)

    def _put_ids(self, changes: dict) -> None:
        # PyFlink 2.2's process-mode map state iterates put_all's argument as pairs; thread mode's converts a dict.
        self.ids.put_all(changes.items() if self.process_mode else changes)

    def _drop_key(self, key: str, timers) -> None:
        """Forget everything the current key owns; its next event starts from the template."""
        self.key_state.clear()
        self.key_log.clear()
        self.cache.evict(key)
        self.dirty.pop(key, None)
        self.ids.clear()
        self.last_seen.clear()
        timers.delete_event_time_timer(END_OF_INPUT)  # else a stream of new keys leaves one timer each behind
        self.keys_expired.inc()
