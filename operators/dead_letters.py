"""Dead letters: what a rejected record becomes, with a short stable reason code.

The codes are part of the output contract (users alert and filter on them), so
they live in one place and never change meaning.
"""

import dataclasses

from operators.records import RAW_LIMIT, dead_letter_record

__all__ = ["Reason", "DeadLetter", "RAW_LIMIT"]


class Reason:
    """Stable reason codes of dead letters.

    Each code is a plain string, as written in the ``reason`` field; ``ALL``
    holds every one, for checking a code read back from the output.

    Examples
    --------
    >>> Reason.NON_FINITE, Reason.NON_FINITE in Reason.ALL, "other" in Reason.ALL
    ('non_finite_value', True, False)
    """

    NO_VALUE = "no_value"  # a Kafka record without a value (a tombstone)
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    MISSING_KEY = "missing_key"
    INVALID_KEY = "invalid_key"
    INVALID_FEATURES = "invalid_features"
    NON_FINITE = "non_finite_value"
    INVALID_TARGET = "invalid_target"
    INVALID_ID = "invalid_id"
    INVALID_TS = "invalid_ts"
    NOTHING_TO_DO = "nothing_to_do"
    UNKNOWN_ID = "unknown_id"
    EXPIRED_ID = "expired_id"
    MODEL_ERROR = "model_error"
    # Bandits (SPEC §7): a decision without arms, arms that are not a list of strings or integers,
    # a logged arm that is not one of them.
    MISSING_ARMS = "missing_arms"
    INVALID_ARMS = "invalid_arms"
    INVALID_ARM = "invalid_arm"

    ALL = frozenset(
        {
            NO_VALUE, NOT_JSON, NOT_OBJECT, MISSING_KEY, INVALID_KEY, INVALID_FEATURES, NON_FINITE,
            INVALID_TARGET, INVALID_ID, INVALID_TS, NOTHING_TO_DO, UNKNOWN_ID, EXPIRED_ID,
            MODEL_ERROR, MISSING_ARMS, INVALID_ARMS, INVALID_ARM,
        }
    )


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that was rejected, and why; its output line keeps ``RAW_LIMIT`` characters of ``raw``.

    Parameters
    ----------
    raw
        The rejected record as it came ("" for a record with no value).
    reason
        One of the codes of :class:`Reason`.
    detail
        What exactly was wrong, for a person to read.
    key
        The event's key when it could be read, else None.
    """

    raw: str
    reason: str
    detail: str
    key: str | None = None

    def to_json(self) -> str:
        """The dead-letter output line (``operators.records.dead_letter_record``).

        Returns
        -------
        str
            One JSON line, without a line break.

        Examples
        --------
        >>> DeadLetter("{", Reason.NOT_JSON, "Expecting value").to_json()
        '{"raw": "{", "reason": "not_json", "detail": "Expecting value", "key": null}'
        """
        return dead_letter_record(self.raw, self.reason, self.detail, self.key)
