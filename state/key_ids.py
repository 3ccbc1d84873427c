"""A key's event ids as the learning step sees them: Flink's map state, with the latest changes held back.

Every event with an id reads and writes the key's id map, to drop
re-deliveries and to find the prediction a label belongs to. In thread mode
each of those is a call into the JVM. But the key's log (``state.key_log``)
already holds every event since the envelope was last written, and replaying
it writes the same ids again. So the changes wait in ``pending`` and go to
Flink when the envelope does (``flush``); until then the log makes them as
durable as the model. A read looks at ``pending`` first, and goes to Flink
only for an id the key may have stored: ``known`` is every id of the key
when it is known (a key created by this instance), else None.
"""

__all__ = ["KeyIds", "BYTES_PER_KNOWN_ID"]

BYTES_PER_KNOWN_ID = 16  # what a remembered id counts for in a ``state.key_cache.KeyCache``: about its serialized size


class KeyIds:
    """``event id -> status`` for one key, over its Flink map state ``stored`` (bound to the current key).

    Parameters
    ----------
    stored
        The key's Flink map state (anything with ``get`` and ``items``).
    pending
        Changes not handed to ``stored`` yet: those since the envelope was last written.
    known
        Every id the key has, when known (a key created by this instance), so
        that an unknown id is not looked up in Flink; None when not known.

    Examples
    --------
    >>> stored = {"a": ("done",)}
    >>> ids = KeyIds(stored)
    >>> ids["b"] = ("done",)
    >>> ids.get("a"), ids.get("b"), stored
    (('done',), ('done',), {'a': ('done',)})
    >>> ids.flush(stored.update); stored
    {'a': ('done',), 'b': ('done',)}
    >>> fresh = KeyIds(stored={}, known=set())
    >>> fresh.get("anything") is None  # known to be new: Flink is not asked
    True
    """

    __slots__ = ("stored", "pending", "known")

    def __init__(self, stored, pending: dict | None = None, known: set | None = None):
        self.stored = stored
        self.pending = {} if pending is None else pending
        self.known = known

    def get(self, event_id: str):
        """The status of ``event_id``: pending first, then Flink's, unless ``known`` says there is none."""
        status = self.pending.get(event_id)
        if status is not None or (self.known is not None and event_id not in self.known):
            return status
        return self.stored.get(event_id)

    def __setitem__(self, event_id: str, status: tuple) -> None:
        """Set the status of ``event_id``, held back until ``flush``."""
        self.pending[event_id] = status
        if self.known is not None:
            self.known.add(event_id)

    def items(self):
        """Every id and its status, stored ones overlaid with pending changes (for label expiry)."""
        merged = dict(self.stored.items())
        merged.update(self.pending)
        return merged.items()

    def flush(self, put_all) -> None:
        """Hand the pending changes to ``put_all`` (the map state's), once the log no longer holds them."""
        if self.pending:
            put_all(self.pending)
            self.pending = {}

    @property
    def cache_bytes(self) -> int:
        """What the ids count for in a ``state.key_cache.KeyCache``: ``BYTES_PER_KNOWN_ID`` each one held."""
        return BYTES_PER_KNOWN_ID * (len(self.pending) if self.known is None else len(self.known))
