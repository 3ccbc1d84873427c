"""The key store against dict-backed stand-ins for Flink's keyed state: when it writes, what it writes, what it forgets.

The real learning step runs on the real example regressor; only Flink's
value, list and map state are replaced, by in-memory doubles that keep one
entry per key, bound to the current key as Flink's are, and record every
write. The path through real Flink state is covered by the mini-cluster tests
(``tests/test_job_guarantees.py``, ``tests/test_key_ttl.py``).
"""

import pytest

from operators.dead_letters import Reason
from operators.events import decode_event
from operators.learning_step import LearningStep
from state.envelope import dump_state
from state.key_cache import KeyCache
from state.key_log import LoadedKey, fold_due
from state.key_store import KeyStore
from tests.support.models import example
from tests.support.reference import same_model

pytestmark = pytest.mark.unit

PROBES = [{"time": t} for t in range(0, 40, 4)]


class KeyedState:
    """Flink's keyed state backend as dicts: handles act on the current key (``select``), and writes are recorded."""

    def __init__(self):
        self.current = None
        self.writes = []  # (handle, operation, key)

    def select(self, key: str) -> None:
        self.current = key

    def wrote(self, handle: str, operation: str) -> None:
        self.writes.append((handle, operation, self.current))

    def writes_of(self, key: str, *operations: str) -> list:
        return [(handle, op) for handle, op, of in self.writes if of == key and (not operations or op in operations)]


class ValueState:
    def __init__(self, keyed: KeyedState):
        self.keyed, self.values = keyed, {}

    def value(self):
        return self.values.get(self.keyed.current)

    def update(self, value) -> None:
        self.keyed.wrote("envelope", "update")
        self.values[self.keyed.current] = value

    def clear(self) -> None:
        self.keyed.wrote("envelope", "clear")
        self.values.pop(self.keyed.current, None)


class ListState:
    def __init__(self, keyed: KeyedState):
        self.keyed, self.lists = keyed, {}

    def get(self):
        return list(self.lists.get(self.keyed.current, []))

    def add(self, entry) -> None:
        self.keyed.wrote("log", "add")
        self.lists.setdefault(self.keyed.current, []).append(entry)

    def add_all(self, entries) -> None:
        self.keyed.wrote("log", "add_all")
        self.lists.setdefault(self.keyed.current, []).extend(entries)

    def clear(self) -> None:
        self.keyed.wrote("log", "clear")
        self.lists.pop(self.keyed.current, None)


class MapState:
    def __init__(self, keyed: KeyedState):
        self.keyed, self.maps = keyed, {}

    def _map(self) -> dict:
        return self.maps.get(self.keyed.current, {})

    def get(self, key):
        return self._map().get(key)

    def items(self):
        return list(self._map().items())

    def is_empty(self) -> bool:
        return not self._map()

    def put_all(self, changes) -> None:
        self.keyed.wrote("ids", "put_all")
        self.last_put = changes
        self.maps.setdefault(self.keyed.current, {}).update(changes)

    def clear(self) -> None:
        self.keyed.wrote("ids", "clear")
        self.maps.pop(self.keyed.current, None)


class Flink:
    """One operator's keyed state: its three handles, a key store over them, and the learning step."""

    def __init__(self, cache_bytes: int = 1 << 20, write_back: bool = True, ids_as_pairs: bool = False):
        _, template, kind, new_metric = example("regressor")
        self.step = LearningStep(kind, template.clone, new_metric)
        self.fresh_state = dump_state(self.step.new_state())
        self.keyed = KeyedState()
        self.envelope, self.log, self.ids = ValueState(self.keyed), ListState(self.keyed), MapState(self.keyed)
        self.reads = []
        self.store = self.restored(cache_bytes, write_back, ids_as_pairs)

    def restored(self, cache_bytes: int = 1 << 20, write_back: bool = True, ids_as_pairs: bool = False) -> KeyStore:
        """A new store over the same state, as a new function instance after a restore has."""
        return KeyStore(self.envelope, self.log, self.ids, KeyCache(cache_bytes), self.fresh_state, self.step.replay,
                        write_back=write_back, ids_as_pairs=ids_as_pairs, keys_read=lambda: self.reads.append(True))

    def learn(self, key: str, line: str, now_ms: int = 0):
        """One event, as ``LearnerFunction`` handles it: load, step, then store the change or roll back."""
        self.keyed.select(key)
        store = self.store
        loaded = store.load(key)
        if loaded is None:
            loaded = store.new_key()
        outcome = self.step.process(loaded.state, loaded.ids, decode_event(line), now_ms)
        if outcome.replay is not None:
            store.store(key, loaded, outcome.replay)
        elif outcome.model_ran:
            store.roll_back(key)
        return outcome

    def stored(self, key: str):
        """The key's state as a fresh store reads it from Flink's state alone (a restore from this point)."""
        self.keyed.select(key)
        return self.restored().load(key)


def labelled(key: str, i: int) -> str:
    return f'{{"key": "{key}", "id": "{key}-{i}", "x": {{"time": {i}}}, "y": {40 + 2 * i}}}'


def unlabelled(key: str, i: int) -> str:
    return f'{{"key": "{key}", "id": "{key}-{i}", "x": {{"time": {i}}}}}'


def test_write_back_writes_each_changed_key_once_per_barrier():
    flink = Flink()
    for start in (0, 10):
        for i in range(start, start + 10):
            for key in ("a", "b"):
                flink.learn(key, labelled(key, i))
        assert flink.keyed.writes == []  # nothing reaches Flink between barriers
        assert set(flink.store.dirty) == {"a", "b"}
        flink.store.write_all(flink.keyed.select)
        for key in ("a", "b"):
            writes = flink.keyed.writes_of(key, "add_all", "update")
            assert len(writes) == 1, writes
            cached = flink.store.cache.get(key)
            assert flink.stored(key).state.model_version == cached.state.model_version == start + 10
            assert same_model(flink.stored(key).state.model, cached.state.model, PROBES)
        assert flink.store.dirty == {}
        flink.keyed.writes.clear()
    flink.store.write_all(flink.keyed.select)  # nothing changed since the last barrier: nothing to write
    assert flink.keyed.writes == []


def test_a_key_is_folded_into_its_envelope_exactly_when_due():
    flink = Flink(write_back=False)
    folds = 0
    for i in range(60):
        before = flink.store.cache.get("a")
        due = before is not None and fold_due(LoadedKey(None, before.envelope_bytes, before.logged))
        flink.keyed.writes.clear()
        flink.learn("a", labelled("a", i))
        written = flink.keyed.writes_of("a")
        if before is None:  # a new key's first change is logged on top of the fresh state
            assert written == [("log", "add")]
        elif due:
            folds += 1
            assert written == [("envelope", "update"), ("ids", "put_all"), ("log", "clear")]
            assert flink.log.lists.get("a") is None and flink.store.cache.get("a").logged == 0
        else:
            assert written == [("log", "add")]
        assert len(flink.log.lists.get("a", [])) == flink.store.cache.get("a").logged
    assert folds >= 2
    assert same_model(flink.stored("a").state.model, flink.store.cache.get("a").state.model, PROBES)


def test_without_a_cache_every_change_is_folded_at_once():
    flink = Flink(cache_bytes=0, write_back=False)
    for i in range(5):
        flink.learn("a", labelled("a", i))
        assert flink.keyed.writes_of("a", "add", "add_all") == [] and "a" not in flink.log.lists
    assert len(flink.keyed.writes_of("a", "update")) == 5 and len(flink.reads) == 4  # read back every time
    assert flink.stored("a").state.model_version == 5


def test_ids_go_to_the_map_state_as_pairs_in_process_mode():
    flink = Flink(cache_bytes=0, write_back=False, ids_as_pairs=True)
    flink.learn("a", unlabelled("a", 0))
    assert not isinstance(flink.ids.last_put, dict) and flink.ids.maps["a"]["a-0"][0] == "pending"


def test_drop_forgets_everything_the_key_owns():
    flink = Flink()
    for i in range(20):
        flink.learn("a", labelled("a", i) if i % 2 else unlabelled("a", i))
        flink.learn("b", labelled("b", i))
    flink.store.write_all(flink.keyed.select)
    for i in range(20, 23):  # and changes not written yet
        flink.learn("a", labelled("a", i))
    assert "a" in flink.store.dirty and flink.envelope.values.get("a") and flink.ids.maps.get("a")
    flink.keyed.select("a")
    flink.store.drop("a")
    assert "a" not in flink.envelope.values and "a" not in flink.log.lists and "a" not in flink.ids.maps
    assert "a" not in flink.store.cache and "a" not in flink.store.dirty
    flink.keyed.writes.clear()
    flink.store.write_all(flink.keyed.select)
    assert flink.keyed.writes == []  # the dropped key's unwritten changes are gone too
    assert flink.stored("a") is None and flink.store.load("a") is None
    assert flink.stored("b").state.model_version == 20  # the other key keeps its state
    outcome = flink.learn("a", labelled("a", 0))  # its next event starts from the template, ids forgotten
    assert outcome.prediction.model_version == 0 and not outcome.duplicate


def test_a_failed_event_rolls_the_key_back_to_what_was_stored():
    flink = Flink()
    for i in range(20):  # more than a fold would wait for: a sound state would be folded at the barrier
        flink.learn("a", labelled("a", i))
    assert fold_due(flink.store.dirty["a"], adding=len(flink.store.dirty["a"].unwritten))
    # A string target gets through StandardScaler.learn_one, then makes LinearRegression raise half-way.
    failed = flink.learn("a", '{"key": "a", "id": "bad", "x": {"time": 99}, "y": "heavy"}')
    assert failed.dead_letter.reason == Reason.MODEL_ERROR
    # The changes before it are logged, not folded: the half-updated state object is never written.
    assert flink.keyed.writes_of("a") == [("log", "add_all")] and len(flink.log.lists["a"]) == 20
    assert "a" not in flink.store.cache and "a" not in flink.store.dirty
    reads = len(flink.reads)
    outcome = flink.learn("a", labelled("a", 20))  # read back from Flink state, the log replayed
    assert len(flink.reads) == reads + 1
    assert outcome.prediction.model_version == 20
    reference = Flink()
    for i in range(21):
        reference.learn("a", labelled("a", i))
    assert same_model(flink.store.cache.get("a").state.model, reference.store.cache.get("a").state.model, PROBES)
    assert flink.store.cache.get("a").ids.get("bad") is None


def test_dirty_keys_the_cache_lets_go_are_written_at_the_end_of_the_batch():
    flink = Flink()
    flink.store = flink.restored(cache_bytes=int(1.5 * len(flink.fresh_state)))  # room for one key
    flink.learn("a", labelled("a", 0))
    flink.learn("b", labelled("b", 0))  # "a" leaves the cache with a change Flink does not have
    assert flink.store.dropped == {"a"} and flink.keyed.writes == []
    flink.store.write_dropped(flink.keyed.select)
    assert flink.keyed.writes == [("log", "add_all", "a")]
    assert set(flink.store.dirty) == {"b"} and flink.store.dropped == set()
    flink.keyed.writes.clear()
    # A key let go and taken back within the batch is still the cache's: only the other is written.
    flink.learn("c", labelled("c", 0))  # "b" leaves
    flink.learn("b", labelled("b", 1))  # "b" is back (from the dirty keys, not from Flink), "c" leaves
    assert flink.store.dropped == {"b", "c"} and flink.reads == []  # "b" came back from Python, not from Flink
    flink.store.write_dropped(flink.keyed.select)
    assert flink.keyed.writes == [("log", "add_all", "c")]
    assert set(flink.store.dirty) == {"b"}
    flink.store.write_all(flink.keyed.select)
    assert flink.stored("b").state.model_version == 2 and flink.stored("c").state.model_version == 1


def test_keys_changed_counts_keys_that_begin_and_stop_holding_state():
    """What the ``keys_live`` gauge adds up: a key counts once it stores anything, until it is dropped."""
    flink = Flink()
    for i in range(3):
        flink.learn("a", labelled("a", i))
    flink.learn("b", unlabelled("b", 0))  # a pending prediction is state too
    failed = flink.learn("c", '{"key": "c", "id": "bad", "x": {"time": 1}, "y": "heavy"}')
    assert failed.dead_letter is not None  # its first event failed: "c" holds nothing
    assert flink.store.take_keys_changed() == 2 and flink.store.take_keys_changed() == 0
    flink.store.write_all(flink.keyed.select)
    flink.store = flink.restored()  # a restore: keys held in Flink state alone are not new
    flink.learn("a", labelled("a", 3))
    assert flink.store.take_keys_changed() == 0
    for key in ("a", "b", "c"):  # "b" is in Flink state only, "c" nowhere
        flink.keyed.select(key)
        flink.store.drop(key)
    assert flink.store.take_keys_changed() == -2
    flink.learn("a", labelled("a", 0))  # a dropped key starts again
    assert flink.store.take_keys_changed() == 1
