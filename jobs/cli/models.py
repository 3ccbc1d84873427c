"""``riverflink models show``: what a models destination holds, key by key, without writing any code.

Reads the latest snapshot of each key (``state.snapshots``) and describes
the model in it: how many learn steps it has made, which model serves (with
challengers), what it is and how large its serialized state is.
"""

import base64
import dataclasses
import pathlib

from operators.model_kinds import kind_of
from state.envelope import load_state
from state.exceptions import ModelSpecError, SettingsError
from state.snapshots import latest_snapshots

__all__ = ["ModelInfo", "describe_models", "models_table"]


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    key: str
    model_version: int
    serving: str | None  # the serving model's name, with challengers
    kind: str
    model: str  # the estimator, as river names it (a pipeline's steps joined by |)
    size_bytes: int
    ts: float | None


def describe_models(destination: str, key: str | None = None) -> list[ModelInfo]:
    """The latest model of every key (or of ``key`` only) in a models directory, by key."""
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
    """A table for people: one line per key."""
    with_serving = any(info.serving is not None for info in infos)
    header = ("key", "version", *(("serving",) if with_serving else ()), "kind", "model", "bytes")
    rows = [header]
    for info in infos:
        serving = (info.serving or "",) if with_serving else ()
        rows.append((info.key, str(info.model_version), *serving, info.kind, info.model, f"{info.size_bytes:,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) if column in ("version", "bytes") else cell.ljust(width)
                       for column, cell, width in zip(header, row, widths)).rstrip() for row in rows]
    return "\n".join(lines)
