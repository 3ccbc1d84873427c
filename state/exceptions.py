"""Every error riverflink raises on purpose, under one root.

Callers (the CLI, tests, users embedding the job) catch ``RiverflinkError`` to
tell our deliberate refusals from bugs.
"""

__all__ = [
    "RiverflinkError",
    "SettingsError",
    "ModelSpecError",
    "StateError",
    "StateFormatError",
    "StateVersionError",
]


class RiverflinkError(Exception):
    """Root of every error riverflink raises deliberately.

    Examples
    --------
    >>> from state.envelope import load_state
    >>> try:
    ...     load_state(b"not an envelope")
    ... except RiverflinkError as refused:
    ...     print(type(refused).__name__)
    StateFormatError
    """


class SettingsError(RiverflinkError):
    """A command-line option or setting is invalid or conflicts with another."""


class ModelSpecError(RiverflinkError):
    """A ``--model`` spec cannot be loaded or does not name a usable river estimator."""


class StateError(RiverflinkError):
    """Model state cannot be turned into bytes or back."""


class StateFormatError(StateError):
    """Bytes that are not a riverflink state envelope, or of an unknown format version."""


class StateVersionError(StateError):
    """State written by another river version: restoring it could silently change a model."""
