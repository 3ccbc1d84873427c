"""Loading the models a job published to ``--models-out``, to serve or inspect them outside Flink."""

import base64
import pathlib

from state.destinations import read_records
from state.envelope import load_state

__all__ = ["load_latest_models", "latest_snapshots"]


def _recency(snapshot: dict) -> tuple:
    return snapshot.get("ts") or 0, snapshot["model_version"]  # early snapshots had no ts


def load_latest_models(destination: str | pathlib.Path) -> dict[str, object]:
    """The latest model of every key in a models destination.

    "Latest" is the snapshot written last (its ``ts``), then the one with the
    highest ``model_version`` (the most learn steps), so the answer does not
    depend on file order and a key restarted by ``--key-ttl`` is its new
    model.

    Parameters
    ----------
    destination
        The directory the job wrote its model snapshots to (``--models-out``).

    Returns
    -------
    dict
        ``key -> model``, each model restored from its latest snapshot.

    Raises
    ------
    StateVersionError
        If a snapshot was written by another river version.
    StateError
        If a snapshot cannot be restored otherwise.

    Examples
    --------
    >>> import tempfile, json, base64
    >>> from river import linear_model
    >>> from state.envelope import dump_state
    >>> folder = tempfile.mkdtemp()
    >>> blob = base64.b64encode(dump_state(linear_model.LinearRegression())).decode()
    >>> with open(f"{folder}/part-0", "w") as f:
    ...     _ = f.write(json.dumps({"key": "a", "model_version": 3, "model": blob}) + "\\n")
    >>> models = load_latest_models(folder)
    >>> list(models), type(models["a"]).__name__
    (['a'], 'LinearRegression')
    """
    return {key: load_state(base64.b64decode(snapshot["model"])) for key, snapshot in latest_snapshots(destination).items()}


def latest_snapshots(destination: str | pathlib.Path) -> dict[str, dict]:
    """key -> its latest snapshot record (``model`` still base64), "latest" as in :func:`load_latest_models`.

    Reads the records only, restoring no model, so it works whatever river version wrote them.

    Parameters
    ----------
    destination
        The directory the job wrote its model snapshots to (``--models-out``).

    Returns
    -------
    dict
        ``key -> snapshot record``, as written (``operators.records.model_snapshot_record``).

    Examples
    --------
    >>> import json, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with open(f"{folder}/part-0", "w") as f:
    ...     for version, ts in ((3, 10.0), (5, 20.0), (9, 15.0)):
    ...         _ = f.write(json.dumps({"key": "a", "ts": ts, "model_version": version, "model": ""}) + "\\n")
    >>> latest_snapshots(folder)["a"]["model_version"]  # written last, though not the most learned
    5
    """
    latest: dict[str, dict] = {}
    for snapshot in read_records(destination):
        if snapshot.get("template"):  # what a key without history starts from: no key's model
            continue
        known = latest.get(snapshot["key"])
        if known is None or _recency(snapshot) >= _recency(known):
            latest[snapshot["key"]] = snapshot
    return latest
