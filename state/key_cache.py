"""Deserialized key states kept between events, so a key's next event skips reading and unpickling its bytes.

Flink's keyed state is the truth whenever a checkpoint barrier passes: the
key store (``state.key_store``) writes a key's changes back after every
event, or, when the learner's Java operator announces barriers, before each
one; a key the cache lets go with changes not yet written is handed back by
``put`` to be written. Whatever leaves the object apart from its changes (a model that
raised half-way through an update, a prediction that may have touched the
model without being written, a key dropped by its TTL) evicts the key, and
its next event reads the bytes again. A new function instance, after a
restore or a rescale, starts empty.

Bounded by the serialized size of what it holds (a fair proxy for the
objects' memory, which Python cannot measure cheaply; they take about two to
three times as much), least recently used out first.
"""

import collections

__all__ = ["KeyCache"]


class KeyCache:
    """``key -> object`` holding at most ``capacity_bytes`` of serialized size.

    Parameters
    ----------
    capacity_bytes
        The most serialized bytes held at once; 0 holds nothing.

    Raises
    ------
    ValueError
        If ``capacity_bytes`` is negative.

    Examples
    --------
    >>> cache = KeyCache(capacity_bytes=100)
    >>> cache.put("a", "A", size=40); cache.put("b", "B", size=40); cache.get("a")
    []
    []
    'A'
    >>> cache.put("c", "C", size=40)  # over 100 bytes: "b" is the least recently used
    [('b', 'B')]
    >>> cache.get("b") is None, len(cache), cache.held_bytes
    (True, 2, 80)
    >>> cache.put("a", "A", size=50); cache.held_bytes  # the same object, grown
    []
    90
    >>> cache.put("d", "D", size=101)  # larger than the whole cache: never held
    [('d', 'D')]
    """

    def __init__(self, capacity_bytes: int):
        if capacity_bytes < 0:
            raise ValueError(f"a cache holds zero or more bytes, not {capacity_bytes}")
        self.capacity_bytes = capacity_bytes
        self.held_bytes = 0
        self._entries: collections.OrderedDict = collections.OrderedDict()  # key -> (value, size)

    def get(self, key):
        """The object held for ``key`` (now the most recently used), or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key, value, size: int) -> list:
        """Hold ``value`` for ``key``; returns the ``(key, value)`` pairs that left to make room, or ``key``'s own if too large.

        Parameters
        ----------
        key
            The key.
        value
            Its deserialized state.
        size
            Its serialized size in bytes, what it counts for against ``capacity_bytes``.

        Returns
        -------
        list
            ``(key, value)`` pairs no longer held, least recently used first: the
            caller writes those with unwritten changes.
        """
        entry = self._entries.get(key)
        if entry is not None and entry[0] is value:  # the common case: a cached key changed
            self._entries.move_to_end(key)
            if entry[1] == size:
                return []
            self._entries[key] = (value, size)
            self.held_bytes += size - entry[1]
        else:
            self.evict(key)
            if size > self.capacity_bytes:
                return [(key, value)]
            self._entries[key] = (value, size)
            self.held_bytes += size
        dropped = []
        while self.held_bytes > self.capacity_bytes:
            old_key, (old_value, old_size) = self._entries.popitem(last=False)
            self.held_bytes -= old_size
            dropped.append((old_key, old_value))
        return dropped

    def evict(self, key) -> None:
        """Let go of ``key``, if held: its next read goes to Flink state."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.held_bytes -= entry[1]

    def __contains__(self, key) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)
