"""The global model: one model that learns from every key's labelled events, its versions sent to every learner.

Why: a key's own model knows nothing until the key has history, and a quiet
key never gets much; what all keys have taught one model is the best answer
a new key can get, and stays a candidate in every key (``operators.lifecycle``).

Why its own operator, and where: Flink 2's DataStream graphs have no loops,
so the global model cannot learn from what the learner passes on and send
its versions back to it. It reads the same keyed lines as the learner, at
parallelism 1, keeping each key's event ids as the learner does (a label
names the prediction whose features it completes), and sends a version every
``every`` learn steps, or ``interval_ms`` after the last one if it learned
since, as a side output the job broadcasts into the learner
(``riverflink.GlobalAwareBatchedOperator``).

Its state is the shared model's envelope and a log, under ``SHARED_KEY``,
through a ``KeyStore`` that writes them by each barrier; a checkpoint holds
the model as of its place in the stream, and a restore goes on from there.
"""

import bisect
import dataclasses
import time
import typing

from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, OutputTag

from operators.events import Event, decode_event
from operators.garbage_collection import freeze_long_lived
from operators.keying import UNROUTABLE
from operators.learning_step import DONE, EXPIRED, PENDING, expire_pending
from operators.lifecycle import GLOBAL
from operators.model_kinds import Kind, Predictor
from operators.outputs import MODEL_SNAPSHOTS
from operators.records import template_record, to_json
from operators.timers import END_OF_INPUT, next_boundary
from state.descriptors import event_ids_descriptor, key_log_descriptor, key_state_descriptor
from state.envelope import dump_state, load_state
from state.exceptions import StateError
from state.key_cache import KeyCache
from state.key_store import KeyStore

__all__ = [
    "GLOBAL", "GLOBAL_KINDS", "GLOBAL_VERSIONS", "UNKNOWN_TIME", "GlobalConfig", "GlobalState", "GlobalStep",
    "GlobalLearnerFunction", "version_for",
]

GLOBAL_KINDS = (Kind.CLASSIFIER, Kind.REGRESSOR)
SHARED_KEY = UNROUTABLE  # the shared state's key: no event has it (decode_event rejects an empty key)
# Row(version, learned until (ms), envelope of the model after that many learn steps), broadcast into the learner.
GLOBAL_VERSIONS = OutputTag("global-versions", Types.ROW([Types.LONG(), Types.LONG(), Types.PRIMITIVE_ARRAY(Types.BYTE())]))
UNKNOWN_TIME = -(1 << 63)  # a version's "learned until" when some event it learned had no ts: Java's Long.MIN_VALUE
_NO_CACHE_LIMIT = 1 << 62  # the one shared state always stays deserialized


@dataclasses.dataclass(frozen=True)
class GlobalConfig:
    """What ``GlobalLearnerFunction`` is told when the job is built (pickled to the workers: plain values only).

    ``template`` is the envelope of the model it starts from; ``label_ttl_ms``
    the job's label TTL, judged by this operator's clock; ``traced``: every
    learn step is also written to the main output, as a ``trace_record``;
    ``keys_template``: the envelope of the model a new key starts from, when
    the job writes model snapshots: each version also goes out as a template
    record (``operators.records.template_record``), for ``riverflink serve``,
    saying a new key is served by ``keys_serving`` (``GLOBAL``, or ``BLEND``
    with the global model's share ``keys_global_weight``).
    """

    template: bytes
    kind: Kind
    every: int
    interval_ms: int
    label_ttl_ms: int | None = None
    traced: bool = False
    keys_template: bytes | None = None
    keys_serving: str = GLOBAL
    keys_global_weight: float | None = None


@dataclasses.dataclass
class GlobalState:
    """The shared model, how many learn steps it has made (its version), and the latest event time it learned from."""

    model: typing.Any
    model_version: int = 0
    learned_until_ms: int = UNKNOWN_TIME  # UNKNOWN_TIME also once an event without a ts was learned
    untimed: bool = False

    @property
    def changed_since_new(self) -> bool:
        return self.model_version > 0

    def learned(self, ts_ms: int | None) -> None:
        """Count a learn step, from an event of time ``ts_ms`` (None: unknown)."""
        self.model_version += 1
        if ts_ms is None:
            self.untimed, self.learned_until_ms = True, UNKNOWN_TIME
        elif not self.untimed and ts_ms > self.learned_until_ms:
            self.learned_until_ms = ts_ms


def version_for(versions: list, learned_until: list, ts: float | None) -> int:
    """Which held version answers an event of time ``ts``: the newest that learned only from earlier events.

    Parameters
    ----------
    versions, learned_until
        The versions held, oldest first, and the latest event time (ms) each learned from, which
        never decreases, but for a last run of ``UNKNOWN_TIME`` (events without a ts came).
    ts
        The event's time (epoch seconds), or None.

    Returns
    -------
    int
        That version; the newest when ``ts`` or its time is unknown (a live stream's answer),
        the oldest when every version held learned from later events.

    Examples
    --------
    >>> version_for([0, 25, 50], [UNKNOWN_TIME, 1_000, 2_000], 1.5), version_for([0, 25, 50], [UNKNOWN_TIME, 1_000, 2_000], None)
    (25, 50)
    >>> version_for([25, 50], [1_000, 2_000], 0.5), version_for([25, 50], [1_000, UNKNOWN_TIME], 0.5)
    (25, 50)
    """
    if ts is None or learned_until[-1] == UNKNOWN_TIME:
        return versions[-1]
    earlier = bisect.bisect_left(learned_until, int(ts * 1000))  # how many learned only from earlier events
    return versions[max(earlier - 1, 0)]


class GlobalStep:
    """What one event teaches the global model, with the learner's rules for ids and labels (SPEC §1), and no Flink.

    An event with ``y`` is learned at once; one with an ``id`` and no ``y``
    keeps its features under the id until its label comes (within the label
    TTL); an id seen before is a duplicate. Dead letters are the learner's to
    write: here a bad line is skipped.

    Examples
    --------
    >>> from river import linear_model
    >>> step = GlobalStep(Kind.REGRESSOR, linear_model.LinearRegression())
    >>> state, ids = GlobalState(linear_model.LinearRegression()), {}
    >>> step.process(state, ids, decode_event('{"key": "a", "id": "e1", "x": {"f": 1.0}, "ts": 2}'), now_ms=0), ids
    (None, {'e1': ('pending', {'f': 1.0}, 2.0, 0)})
    >>> step.process(state, ids, decode_event('{"key": "a", "id": "e1", "y": 3.0}'), now_ms=5)
    ({'f': 1.0}, 3.0, 2000)
    >>> step.process(state, ids, decode_event('{"key": "a", "id": "e1", "y": 3.0}'), now_ms=6), state.model_version
    (None, 1)
    """

    def __init__(self, kind: Kind, template, label_ttl_ms: int | None = None):
        if kind not in GLOBAL_KINDS:
            raise StateError(f"a global model learns from labels: a {kind.value} cannot be one")
        self.kind = kind
        self.label_ttl_ms = label_ttl_ms
        self.predictor = Predictor.for_model(kind, None, template)

    def process(self, state: GlobalState, ids, event: Event, now_ms: int) -> tuple | None:
        """Apply ``event``; returns ``(x, y, ts_ms)`` when the model learned them, the replay entry of the change, else None.

        ``ts_ms`` is when the label was known: the labelling event's ``ts``,
        else the prediction's, else None.

        ``ids`` changes (a prediction waiting, a label used or come too late)
        are the caller's to keep. The model raising leaves ``ids`` untouched
        and may leave ``state`` half-changed: the caller rolls it back.
        """
        kept = ids.get(event.id) if event.id is not None else None
        if event.is_label_only:
            if kept is None or kept[0] != PENDING:
                return None
            if self.label_ttl_ms is not None and now_ms - kept[3] > self.label_ttl_ms:
                ids[event.id] = (EXPIRED,)
                return None
            x, ts = kept[1], event.ts if event.ts is not None else kept[2]
        elif kept is not None:  # a duplicate
            return None
        else:
            x, ts = event.x, event.ts
        if event.y is None:
            if event.id is not None:
                ids[event.id] = (PENDING, x, ts, now_ms)
            return None
        self.predictor.learn(state.model, x, event.y)
        ts_ms = None if ts is None else int(ts * 1000)
        state.learned(ts_ms)
        if event.id is not None:
            ids[event.id] = (DONE,)
        return x, event.y, ts_ms

    def replay(self, state: GlobalState, entry: tuple) -> dict:
        """Learn again what the step that returned ``entry`` learned; no ids (they were written at once)."""
        x, y, ts_ms = entry
        self.predictor.learn(state.model, x, y)
        state.learned(ts_ms)
        return {}


def trace_record(version: int, key: str, event: Event, x: dict, y) -> str:
    """One line of the global trace: the learn step that made ``version``, with the features it learned.

    >>> print(trace_record(3, "a", decode_event('{"key": "a", "id": "e1", "y": 2}'), {"f": 1.0}, 2))
    {"version": 3, "key": "a", "id": "e1", "x": {"f": 1.0}, "y": 2}
    """
    return to_json({"version": version, "key": key, "id": event.id, "x": x, "y": y})


class _IdsInFlink:
    """The current key's event ids, read and written straight through Flink's map state."""

    __slots__ = ("stored",)

    def __init__(self, stored):
        self.stored = stored

    def get(self, event_id: str):
        return self.stored.get(event_id)

    def __setitem__(self, event_id: str, status: tuple) -> None:
        self.stored.put(event_id, status)

    def items(self):
        return self.stored.items()


class GlobalLearnerFunction(KeyedProcessFunction):
    """The global model's operator: batches of keyed lines in (``operators.batching``), versions out.

    Parameters
    ----------
    config
        The model, rules and cadence (``GlobalConfig``).
    """

    def __init__(self, config: GlobalConfig):
        self.config = config

    def open(self, runtime_context):
        freeze_long_lived()
        config = self.config
        template = load_state(config.template)
        self.step = GlobalStep(config.kind, template, config.label_ttl_ms)
        self.ids = _IdsInFlink(runtime_context.get_map_state(event_ids_descriptor()))
        self.store = KeyStore(
            runtime_context.get_state(key_state_descriptor()),
            runtime_context.get_list_state(key_log_descriptor()),
            self.ids.stored,
            KeyCache(_NO_CACHE_LIMIT),
            fresh_state=dump_state(GlobalState(template)),
            replay=self.step.replay,
            write_back=True,
        )
        self.sent = None  # the version last sent to the learners; None until the state is loaded
        self.send_timer_ms = 0  # when the pending interval timer fires; 0 for none
        group = runtime_context.get_metrics_group()
        self.learned = group.counter("global_events_learned")
        self.failed = group.counter("global_model_errors")
        self.version_gauge = 0
        group.gauge("global_model_version", lambda: self.version_gauge)

    def _shared(self, select):
        """The shared state, loaded under ``SHARED_KEY`` (which stays current): from the cache, or from Flink state."""
        loaded = self.store.cache.get(SHARED_KEY)
        if loaded is None:
            select(SHARED_KEY)
            loaded = self.store.load(SHARED_KEY) or self.store.new_key()
            if self.sent is None:  # the learners hold this version or an older one (a restore)
                self.sent = loaded.state.model_version
        return loaded

    def process_element(self, value, ctx):
        keys, lines = value[0], value[1]
        select = ctx._j_context.select
        if not keys:  # a barrier or the end of the input comes next
            self.store.write_all(select)
            return
        loaded = self._shared(select)
        config, step, out, trace = self.config, self.step, [], []
        timers = ctx.timer_service()
        now_ms = time.time_ns() // 1_000_000
        for key, line in zip(keys, lines):
            now_ms = time.time_ns() // 1_000_000  # per event, as the learner's: a model may take its time
            event = decode_event(line)
            if not isinstance(event, Event) or event.key != key or (event.id is None and event.y is None):
                continue  # a dead letter of the learner's, or nothing to learn from
            select(key)
            try:
                entry = step.process(loaded.state, self.ids, event, now_ms)
            except Exception:  # the learner dead-letters what its models fail on; the global learns without it
                self.failed.inc()
                select(SHARED_KEY)
                self.store.roll_back(SHARED_KEY)
                loaded = self._shared(select)
                continue
            if entry is None:
                if config.label_ttl_ms is not None and event.y is None and event.id is not None:
                    timers.register_processing_time_timer(next_boundary(now_ms + config.label_ttl_ms, 1000))
                continue
            self.store.store(SHARED_KEY, loaded, entry)
            self.learned.inc()
            version = loaded.state.model_version
            if config.traced:
                trace.append(trace_record(version, key, event, *entry[:2]))
            if version - self.sent >= config.every:
                out.extend(self._versions(loaded.state))
        select(SHARED_KEY)
        if loaded.state.model_version > self.sent and not self.send_timer_ms:
            self.send_timer_ms = now_ms + config.interval_ms
            timers.register_processing_time_timer(self.send_timer_ms)
            timers.register_event_time_timer(END_OF_INPUT)  # the last version, when the input ends
        yield from out
        if trace:
            yield "\n".join(trace)

    def _versions(self, state: GlobalState) -> list:
        """The side outputs of a new version: to the learners, and with the template to the models output."""
        self.sent = self.version_gauge = state.model_version
        blob = dump_state(state.model)
        out = [(GLOBAL_VERSIONS, Row(state.model_version, state.learned_until_ms, blob))]
        if self.config.keys_template is not None:
            config = self.config
            out.append((MODEL_SNAPSHOTS, template_record(
                config.keys_template, time.time_ns() // 1_000_000, serving=config.keys_serving,
                global_version=state.model_version, global_model=blob, global_weight=config.keys_global_weight)))
        return out

    def on_timer(self, timestamp, ctx):
        key = ctx.get_current_key()
        if key != SHARED_KEY:  # a key's predictions waited --label-ttl for their labels: their features go
            expire_pending(self.ids, ctx.timer_service().current_processing_time(), self.config.label_ttl_ms)
            return
        if timestamp == self.send_timer_ms:
            self.send_timer_ms = 0
        loaded = self._shared(select=lambda key: None)  # a timer of the shared key's: it is current
        if loaded.state.model_version > self.sent:
            yield from self._versions(loaded.state)
