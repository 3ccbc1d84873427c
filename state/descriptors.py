"""Names and types of riverflink's keyed state.

Savepoints find state by operator uid and descriptor name, so these names are
part of the upgrade contract: change them and old savepoints no longer restore.
"""

from pyflink.common import Types
from pyflink.datastream.state import ListStateDescriptor, MapStateDescriptor, ValueStateDescriptor

__all__ = [
    "key_state_descriptor", "key_log_descriptor", "event_ids_descriptor", "last_seen_descriptor",
    "overall_metric_descriptor", "LIVE_KEY_STATES",
]

# A key with state holds an envelope, or log entries (a new key's first changes may all be logged),
# or both: the keys of these two states are the keys that are live (``keys_live``).
LIVE_KEY_STATES = ("key_state", "key_log")


def key_state_descriptor() -> ValueStateDescriptor:
    """The key's model, metric and counters: one versioned envelope (``state.envelope``).

    Returns
    -------
    ValueStateDescriptor
        ``key_state``, of pickled bytes.

    Examples
    --------
    The names savepoints know the state by:

    >>> [describe().get_name() for describe in (key_state_descriptor, key_log_descriptor, event_ids_descriptor,
    ...                                         last_seen_descriptor, overall_metric_descriptor)]
    ['key_state', 'key_log', 'event_ids', 'last_seen_ms', 'overall_metric']
    >>> LIVE_KEY_STATES == (key_state_descriptor().get_name(), key_log_descriptor().get_name())
    True
    """
    return ValueStateDescriptor("key_state", Types.PICKLED_BYTE_ARRAY())


def key_log_descriptor() -> ListStateDescriptor:
    """Changes made to the key since its envelope was last written (``LearningStep.replay`` entries).

    The key's state is its envelope with these replayed on top, in order.
    A savepoint without this state restores with an empty log, which is
    exactly what such a savepoint means.

    Returns
    -------
    ListStateDescriptor
        ``key_log``, of pickled bytes.
    """
    return ListStateDescriptor("key_log", Types.PICKLED_BYTE_ARRAY())


def event_ids_descriptor() -> MapStateDescriptor:
    """Event id -> its status: pending (features and prediction kept for the label), done, expired.

    The map key is a STRING on purpose: a pickled map key never matches on the
    heap backend in thread mode.

    Returns
    -------
    MapStateDescriptor
        ``event_ids``: STRING -> pickled bytes.
    """
    return MapStateDescriptor("event_ids", Types.STRING(), Types.PICKLED_BYTE_ARRAY())


def last_seen_descriptor() -> ValueStateDescriptor:
    """When the key last saw an event (processing time, epoch ms); kept only with ``--key-ttl``.

    Apart from the envelope so that remembering it costs one small write per
    event, not a re-serialized model.

    Returns
    -------
    ValueStateDescriptor
        ``last_seen_ms``, a LONG.
    """
    return ValueStateDescriptor("last_seen_ms", Types.LONG())


def overall_metric_descriptor() -> ValueStateDescriptor:
    """The all-keys metric and its update count, as one envelope.

    Returns
    -------
    ValueStateDescriptor
        ``overall_metric``, of pickled bytes.
    """
    return ValueStateDescriptor("overall_metric", Types.PICKLED_BYTE_ARRAY())
