"""``riverflink models show``: what a models destination holds, key by key, without writing any code.

Reads the latest snapshot of each key (``state.snapshots``) and describes
the model in it: how many learn steps it has made, which model serves (with
challengers), what it is and how large its serialized state is.
"""

import base64
import dataclasses
import pathlib

from jobs.cli.tables import format_table
from operators.model_kinds import kind_of
from state.envelope import load_state
from state.exceptions import ModelSpecError, SettingsError
from state.snapshots import latest_snapshots

__all__ = ["ModelInfo", "command", "describe_models", "models_table"]


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What one key's latest snapshot holds."""

    key: str
    model_version: int
    serving: str | None  # the serving model's name, with challengers
    kind: str
    model: str  # the estimator, as river names it (a pipeline's steps joined by |)
    size_bytes: int
    ts: float | None


def command(args) -> int:
    """Carry out ``riverflink models show``; returns the exit status.

    Parameters
    ----------
    args
        The parsed ``models`` arguments.
    """
    infos = describe_models(args.destination, args.key)
    print(models_table(infos))
    if args.key is None:
        print(f"{len(infos)} keys")
    return 0


def describe_models(destination: str, key: str | None = None) -> list[ModelInfo]:
    """The latest model of every key (or of ``key`` only) in a models directory, by key.

    Parameters
    ----------
    destination
        A ``--models-out`` directory.
    key
        Only this key's model; None: every key's.

    Raises
    ------
    SettingsError
        If there is no such directory, or no model for ``key`` in it.
    """
    if not pathlib.Path(destination).is_dir():
        raise SettingsError(f"{destination}: no such models directory (the --models-out of a run)")
    snapshots = latest_snapshots(destination)
    if key is not None:
        if key not in snapshots:
            raise SettingsError(f"no model for key {key!r} in {destination}")
        snapshots = {key: snapshots[key]}
    infos = []
    for name, snapshot in sorted(snapshots.items()):
        blob = base64.b64decode(snapshot["model"])
        model = load_state(blob)
        try:
            kind = kind_of(model).value
        except ModelSpecError:
            kind = "?"
        infos.append(ModelInfo(name, snapshot["model_version"], snapshot.get("serving"), kind, _describe(model),
                               len(blob), snapshot.get("ts")))
    return infos


def _describe(model) -> str:
    steps = getattr(model, "steps", None)
    if isinstance(steps, dict):
        return " | ".join(type(step).__name__ for step in steps.values())
    return type(model).__name__


def models_table(infos: list[ModelInfo]) -> str:
    """A table for people: one line per key, a ``serving`` column only when some key has challengers.

    Parameters
    ----------
    infos
        What ``describe_models`` returned.

    Examples
    --------
    >>> info = ModelInfo("chick-1", 12, None, "regressor", "StandardScaler | LinearRegression", 2048, None)
    >>> print(models_table([info]))
    key      version  kind       model                              bytes
    chick-1       12  regressor  StandardScaler | LinearRegression  2,048
    """
    with_serving = any(info.serving is not None for info in infos)
    header = ("key", "version", *(("serving",) if with_serving else ()), "kind", "model", "bytes")
    rows = []
    for info in infos:
        serving = (info.serving or "",) if with_serving else ()
        rows.append((info.key, str(info.model_version), *serving, info.kind, info.model, f"{info.size_bytes:,}"))
    return format_table(header, rows, right=("version", "bytes"))
