"""Outputs of an earlier run: refused, cleared, or set apart, so that two runs' records never mix silently.

FileSink adds its part files to a directory and never looks at what is
already there: a second run into the same ``--out`` would put its
predictions beside the first run's, and every reader (the summary,
``evaluate``, ``serve``) would count both. So a directory output that holds
committed files is refused before the job starts, unless the user says what
they want: ``--overwrite`` clears riverflink's part files first, and a
resumed job (``--from-savepoint``) appends by design, its summary reading
only the files this run added.

Kafka outputs are unaffected: a topic is a log its readers follow by offset.
A remote file system (``s3://``, ``hdfs://``) is reachable only from
Flink's JVM, so it is not checked here.
"""

import logging
import pathlib

from jobs.settings import OutputSettings, kafka_topic_of, local_path
from state.destinations import committed_files, is_part_file
from state.exceptions import SettingsError

__all__ = ["prepare_file_outputs"]

logger = logging.getLogger(__name__)


def _local_outputs(outputs: OutputSettings) -> dict[str, pathlib.Path]:
    """``output name -> local directory`` of the outputs written to a local file system."""
    local = {}
    for name, destination in outputs.destinations.items():
        if destination is None or kafka_topic_of(destination) is not None:
            continue
        path = local_path(destination)
        if path is None:
            logger.warning("%s is not on a local file system: not checked for an earlier run's files", destination)
        else:
            local[name] = path
    return local


def _clear(name: str, directory: pathlib.Path) -> list[pathlib.Path]:
    """The part files of ``name`` under ``directory`` to remove; refuses a directory that holds files of others."""
    if not directory.exists():
        return []
    ours, foreign = [], []
    for path in directory.rglob("*"):
        if path.is_file():
            if is_part_file(path, name):
                ours.append(path)
            elif not any(part.startswith(".") for part in path.relative_to(directory).parts):
                foreign.append(path)
    if foreign:
        raise SettingsError(f"--overwrite clears only riverflink's part files, but {directory} also holds "
                            f"{sorted(foreign)[0]}: clear it yourself or choose another destination")
    return ours


def prepare_file_outputs(outputs: OutputSettings, overwrite: bool = False,
                         resumed: bool = False) -> dict[str, frozenset[pathlib.Path]]:
    """Make the directory outputs of a run ready for it, or refuse the run.

    Parameters
    ----------
    outputs
        The run's outputs.
    overwrite
        Clear riverflink's part files (committed and in progress) from every directory output first.
    resumed
        The run resumes from a savepoint or checkpoint: earlier files stay, and are set apart.

    Returns
    -------
    dict
        ``output name -> committed files before this run`` for every local directory output:
        empty sets unless ``resumed`` and not ``overwrite``.

    Raises
    ------
    SettingsError
        One line naming every directory that holds committed files, unless ``overwrite`` or
        ``resumed``; or, with ``overwrite``, a directory that also holds files riverflink did not write.

    Examples
    --------
    >>> import tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (out / "metrics-2f77ab28-1f6c-4064-8793-41484901ae68-0.jsonl").write_text("{}\\n")
    >>> prepare_file_outputs(OutputSettings(metrics=str(out)))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    state.exceptions.SettingsError: ... already holds committed files of an earlier run: give --overwrite to clear them first, or another destination
    >>> prepare_file_outputs(OutputSettings(metrics=str(out)), overwrite=True), list(out.iterdir())
    ({'metrics': frozenset()}, [])
    """
    local = _local_outputs(outputs)
    if overwrite:
        doomed = [path for name, directory in local.items() for path in _clear(name, directory)]
        for path in doomed:
            path.unlink()
        if doomed:
            logger.info("--overwrite: removed %d part files of an earlier run", len(doomed))
        return {name: frozenset() for name in local}
    earlier = {name: frozenset(committed_files(directory)) for name, directory in local.items()}
    if resumed:
        return earlier
    held = [str(local[name]) for name, files in earlier.items() if files]
    if held:
        verb = "holds" if len(held) == 1 else "hold"
        raise SettingsError(f"{', '.join(held)} already {verb} committed files of an earlier run: "
                            f"give --overwrite to clear them first, or another destination")
    return earlier
