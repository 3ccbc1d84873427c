"""A key's state as Flink stores it: an envelope, and a log of the changes made since it was written.

Re-serializing a whole model after every event costs more than learning from
the event, and grows with the model. So after most events the learner only
appends the event's replay entry (``LearningStep.replay``: the raw event and
what it was matched with, a few hundred bytes) to the key's log, and only
every so often writes the envelope again and clears the log. Both are Flink
state, current whenever a checkpoint barrier passes (so are the key's event ids: the changes
since the envelope are in the log too, ``state.key_ids``), so a checkpoint still captures each
key exactly as of its place in the stream; restoring replays the log on top of
the envelope. Changes written together (``state.key_store``'s write-back)
are appended, or folded, at once.

How often to fold the log into a new envelope trades a write now against a
replay later, when the key is read from state again (after a restore, a
rescale, or an eviction from the ``KeyCache``): at most ``MAX_LOGGED``
events are ever replayed for a key, and a small model is folded sooner,
since writing it is cheap.
"""

import dataclasses
import typing

__all__ = ["LoadedKey", "fold_due", "MIN_LOGGED", "MAX_LOGGED"]

MIN_LOGGED = 8
MAX_LOGGED = 64
_BYTES_PER_LOGGED_EVENT = 100  # envelope bytes that justify one more logged event before folding


@dataclasses.dataclass(slots=True)
class LoadedKey:
    """A key's state in Python, and what backs it in Flink state.

    Parameters
    ----------
    state
        The key's deserialized state (``operators.learning_step.KeyState``).
    envelope_bytes
        The size of the stored envelope (a fresh state's while none is stored).
    logged
        How many replay entries are stored after that envelope.
    ids
        The key's event ids (``state.key_ids.KeyIds``), changes since the envelope pending.
    reporting
        The state has changed since the key was new: it reports metrics and snapshots.
    unwritten
        Replay entries not in Flink state yet (``state.key_store``'s write-back).
    metrics_timer_ms, snapshot_timer_ms
        When the timer of the key's next metrics or snapshot report is due, as
        last registered while this object held the key (0: none yet).
    unsnapshotted
        The state may have changed since the key's last model snapshot (True
        until this object writes one).
    """

    state: typing.Any
    envelope_bytes: int  # size of the stored envelope (a fresh state's while none is stored)
    logged: int  # replay entries stored after that envelope
    ids: typing.Any = None  # the key's event ids (``state.key_ids.KeyIds``), changes since the envelope pending
    reporting: bool = False  # the state has changed since the key was new: it reports metrics and snapshots
    unwritten: list = dataclasses.field(default_factory=list)  # replay entries not in Flink state yet (write-back)
    metrics_timer_ms: int = 0  # the key's next metrics report's timer, as registered through this object
    snapshot_timer_ms: int = 0  # the key's next snapshot's timer, as registered through this object
    unsnapshotted: bool = True  # the state may have changed since the key's last model snapshot
    new: bool = False  # a fresh state for a key that holds none in Flink, until it is first stored


def fold_due(key: LoadedKey, adding: int = 1) -> bool:
    """Whether ``adding`` more changes should rewrite the envelope (and clear the log) instead of being logged.

    The log may grow to one entry per 100 bytes of envelope, within
    ``MIN_LOGGED`` and ``MAX_LOGGED``.

    Parameters
    ----------
    key
        The key's state and what backs it.
    adding
        How many changes are about to be written.

    Returns
    -------
    bool
        True when the envelope should be written again.

    Examples
    --------
    >>> fold_due(LoadedKey(None, envelope_bytes=1_600, logged=14)), fold_due(LoadedKey(None, 1_600, 15))
    (False, True)
    >>> fold_due(LoadedKey(None, envelope_bytes=300_000, logged=63))  # a large tree: at most 64
    True
    >>> fold_due(LoadedKey(None, envelope_bytes=1_600, logged=0), adding=16)
    True
    """
    limit = max(MIN_LOGGED, min(MAX_LOGGED, key.envelope_bytes // _BYTES_PER_LOGGED_EVENT))
    return key.logged + adding >= limit
