"""A key's state between Flink and the learning step: read once, kept in a cache, written back by each barrier.

A key's state in Flink is an envelope plus a log of the changes made since
(``state.key_log``) and its event ids (``state.key_ids``). It is current
whenever a checkpoint barrier passes, so a checkpoint holds exactly the
models as of that point of the stream: recovery replays from there and
nothing is learned twice. Between events the deserialized state stays in a
``state.key_cache.KeyCache``, so a busy key is read from Flink only once.

When to write (``write_back``): when the learner is told of every barrier
(riverflink's Java operator, ``operators.batching``, hands over an empty
batch before each one and at the end of the input), a key's changes stay in
Python (``dirty``) and are written by ``write_all`` at that empty batch, or
by ``write_dropped`` at the end of the batch in which the cache let the key
go, or by ``roll_back`` before a failed event is undone: a key seen ten
times between two barriers is written once. Without that (process mode, or
no cache), every change is written as it happens.

Flink's state handles are bound to the current key, which the caller sets
for each event and timer; to write keys other than the current one, the
store is handed the function that selects a key (the Java context's
``select``). No Flink import: the handles are anything with the methods of
PyFlink's value, list and map state, so the store runs without a JVM too.
"""

from state.envelope import dump_state, load_state
from state.key_cache import KeyCache
from state.key_ids import KeyIds
from state.key_log import LoadedKey, fold_due

__all__ = ["KeyStore"]


def _no_count() -> None:
    """What ``keys_read`` counts with when nobody counts."""


class KeyStore:
    """Load, store, write back and drop keys' states against Flink's keyed state (bound to the current key).

    Parameters
    ----------
    key_state
        The value state holding a key's envelope (``value``, ``update``, ``clear``).
    key_log
        The list state holding the replay entries since the envelope (``get``, ``add``, ``add_all``, ``clear``).
    ids
        The map state of a key's event ids (``is_empty``, ``get``, ``items``, ``put_all``, ``clear``).
    cache
        Deserialized keys kept between events; a capacity of 0 keeps none.
    fresh_state
        The envelope of a new key's state: a key with nothing stored starts from it.
    replay
        ``replay(state, entry) -> ids``: applies a logged change again (``LearningStep.replay``).
    write_back
        Hold changes until ``write_all``: only when the caller calls it before every
        checkpoint barrier, and with a cache (the cache bounds what is held).
    ids_as_pairs
        Hand the id map's ``put_all`` ``(id, status)`` pairs rather than a dict
        (PyFlink 2.2's process-mode map state iterates its argument as pairs).
    keys_read
        Called, without arguments, whenever a key is read from Flink state (not found in the cache).

    Examples
    --------
    One key changed twice between barriers, with plain containers as its Flink state:

    >>> class Value:
    ...     blob = None
    ...     def value(self): return self.blob
    ...     def update(self, blob): self.blob = blob
    >>> class Log(list):
    ...     def get(self): return list(self)
    ...     def add(self, entry): self.append(entry)
    ...     add_all = list.extend
    >>> class Ids(dict):
    ...     def is_empty(self): return not self
    ...     def put_all(self, changes): self.update(changes)
    >>> log = Log()
    >>> store = KeyStore(Value(), log, Ids(), KeyCache(1 << 20), fresh_state=dump_state([]),
    ...                  replay=lambda state, entry: state.append(entry) or {}, write_back=True)
    >>> loaded = store.load("a") or store.new_key()
    >>> for entry in ("e1", "e2"):
    ...     loaded.state.append(entry)
    ...     store.store("a", loaded, entry)
    >>> log, list(store.dirty)
    ([], ['a'])
    >>> store.write_all(select=lambda key: None)  # a barrier comes next
    >>> log, list(store.dirty)
    (['e1', 'e2'], [])
    >>> store.take_keys_changed(), store.take_keys_changed()  # one key began holding state
    (1, 0)
    """

    def __init__(self, key_state, key_log, ids, cache: KeyCache, fresh_state: bytes, replay,
                 write_back: bool = False, ids_as_pairs: bool = False, keys_read=_no_count):
        self.key_state = key_state
        self.key_log = key_log
        self.ids = ids
        self.cache = cache
        self.fresh_state = fresh_state
        self.replay = replay
        self.write_back = write_back
        self.ids_as_pairs = ids_as_pairs
        self.keys_read = keys_read
        self.dirty = {}  # key -> LoadedKey whose state is ahead of Flink's, cached or not
        self.dropped = set()  # dirty keys the cache let go of, written at the end of the batch
        self.keys_changed = 0  # keys that began holding state, less those that stopped, since last taken

    def take_keys_changed(self) -> int:
        """How many more keys hold state than when this was last called (fewer, if negative)."""
        changed, self.keys_changed = self.keys_changed, 0
        return changed

    def load(self, key: str) -> LoadedKey | None:
        """The current key's state: from the cache, or its envelope with its log replayed; None for a key with none."""
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
        self.keys_read()
        envelope = self.fresh_state if blob is None else blob  # a new key's first changes may all be logged
        state = load_state(envelope)
        ids = KeyIds(self.ids)
        for entry in entries:
            ids.pending.update(self.replay(state, entry))
        loaded = LoadedKey(state, envelope_bytes=len(envelope), logged=len(entries), ids=ids,
                           reporting=state.changed_since_new)
        self._cache(key, loaded)
        return loaded

    def new_key(self) -> LoadedKey:
        """A fresh state for the current key, which ``load`` found nothing of; stored only by ``store``."""
        ids = KeyIds(self.ids, known=set() if self.ids.is_empty() else None)  # no ids stored: none to look up
        return LoadedKey(load_state(self.fresh_state), envelope_bytes=len(self.fresh_state), logged=0, ids=ids,
                         new=True)

    def store(self, key: str, loaded: LoadedKey, replay: tuple) -> None:
        """Make Flink state hold the key's change ``replay``: now (log it, or fold the log into a new envelope), or by the next barrier."""
        if loaded.new:
            loaded.new = False
            self.keys_changed += 1
        if self.write_back:
            loaded.unwritten.append(replay)
            self.dirty[key] = loaded
        elif self.cache.capacity_bytes == 0 or fold_due(loaded):  # without a cache, every event would replay the log
            self._fold(key, loaded)
        else:
            self.key_log.add(replay)
            loaded.logged += 1
        self._cache(key, loaded)

    def roll_back(self, key: str) -> None:
        """Forget the current key's state in Python: model code ran on it, and may have left it half-changed.

        The changes before the failed event are sound: those not written yet join the stored log.
        """
        unwritten = self.dirty.get(key)
        if unwritten is not None:
            self._write(key, unwritten, may_fold=False)
        self.cache.evict(key)

    def ids_of(self, loaded: LoadedKey | None) -> KeyIds:
        """The current key's event ids: those of its loaded state, or those stored when it has none."""
        return KeyIds(self.ids) if loaded is None else loaded.ids

    def write_ids(self, key: str, loaded: LoadedKey | None, ids: KeyIds) -> None:
        """Write the current key's id changes now: its log does not hold them (label expiry)."""
        if loaded is None:
            ids.flush(self._put_ids)
        else:
            self._fold(key, loaded)
            self._cache(key, loaded)

    def write_all(self, select) -> None:
        """Write every dirty key: a checkpoint barrier, or the end of the input, comes next.

        ``select(key)`` makes ``key`` the current key of the state handles.
        """
        for key, loaded in list(self.dirty.items()):
            select(key)
            self._write(key, loaded)
        self.dropped.clear()

    def write_dropped(self, select) -> None:
        """Write the dirty keys the cache let go of, so the memory they hold stays bounded by one batch.

        ``select(key)`` makes ``key`` the current key of the state handles.
        """
        for key in self.dropped:
            loaded = self.dirty.get(key)
            if loaded is not None and key not in self.cache:  # else it came back, dirty, to the cache
                select(key)
                self._write(key, loaded)
        self.dropped.clear()

    def drop(self, key: str) -> None:
        """Forget everything the current key owns; its next event starts from a fresh state."""
        if key in self.cache or key in self.dirty or self.key_state.value() is not None or self.key_log.get():
            self.keys_changed -= 1
        self.key_state.clear()
        self.key_log.clear()
        self.cache.evict(key)
        self.dirty.pop(key, None)
        self.ids.clear()

    def _cache(self, key: str, loaded: LoadedKey) -> None:
        for dropped_key, _ in self.cache.put(key, loaded, loaded.envelope_bytes + loaded.ids.cache_bytes):
            if dropped_key in self.dirty:
                self.dropped.add(dropped_key)

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
        self.ids.put_all(changes.items() if self.ids_as_pairs else changes)
