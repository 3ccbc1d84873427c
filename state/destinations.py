"""Reading what a FileSink destination has committed.

FileSink writes part files and marks in-progress ones with a leading dot; only
the others are committed (on a checkpoint, or at the end of a bounded input),
so readers must skip them to see exactly-once output.
"""

import pathlib
import re
from collections.abc import Collection, Iterator

from state.json_lines import parse_json

__all__ = ["committed_files", "read_records", "read_file_records", "part_prefix", "is_part_file", "PART_SUFFIX"]

PART_SUFFIX = ".jsonl"


def part_prefix(output: str) -> str:
    """How the part files of an output (``dead_letters``) start (``dead-letters``).

    Parameters
    ----------
    output
        An output name of ``jobs.settings.OUTPUT_NAMES``.
    """
    return output.replace("_", "-")


def is_part_file(path: pathlib.Path, output: str) -> bool:
    """Whether ``path`` is a part file FileSink wrote for ``output``, committed or in progress.

    Committed: ``PREFIX-UUID-N.jsonl``; in progress: the same after a dot, then ``.inprogress.UUID``.

    Examples
    --------
    >>> is_part_file(pathlib.Path("metrics-2f77ab28-1f6c-4064-8793-41484901ae68-0.jsonl"), "metrics")
    True
    >>> is_part_file(pathlib.Path(".dead-letters-2f77ab28-1f6c-4064-8793-41484901ae68-3.jsonl.inprogress.9a1"), "dead_letters")
    True
    >>> is_part_file(pathlib.Path("notes.txt"), "metrics")
    False
    """
    name = re.escape(part_prefix(output))
    pattern = rf"\.?{name}-[0-9a-f-]+-[0-9]+{re.escape(PART_SUFFIX)}(\.inprogress\.[0-9a-f-]+)?"
    return re.fullmatch(pattern, path.name) is not None


def committed_files(destination: str | pathlib.Path) -> list[pathlib.Path]:
    """Committed part files under ``destination``, in a stable order.

    A destination that does not exist yet has committed nothing: FileSink
    creates it with the first part file.

    Parameters
    ----------
    destination
        The directory an output was written to (``--predictions-out`` and the like).

    Returns
    -------
    list of pathlib.Path
        Every file under it, bucket folders included, whose path has no part starting with a dot.

    Raises
    ------
    NotADirectoryError
        If ``destination`` is a file.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "part-0.jsonl").write_text('{"key": "a"}\\n')
    >>> _ = (folder / ".part-1.jsonl.inprogress").write_text('{"key": "b"}\\n')
    >>> [path.name for path in committed_files(folder)], committed_files(folder / "not-yet")
    (['part-0.jsonl'], [])
    """
    root = pathlib.Path(destination)
    if root.is_file():
        raise NotADirectoryError(f"output destination {root} is a file, not a directory")
    if not root.exists():
        return []
    return sorted(
        path for path in root.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def read_records(destination: str | pathlib.Path, skip: Collection[pathlib.Path] = ()) -> Iterator[dict]:
    """Every committed JSON record under ``destination``.

    Parameters
    ----------
    destination
        The directory an output was written to.
    skip
        Committed files not to read: those of an earlier run that a resumed job appended to.

    Yields
    ------
    dict
        Each non-blank line of each committed part file, parsed, file by file in ``committed_files`` order.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "part-0.jsonl").write_text('{"key": "a"}\\n\\n{"key": "b"}\\n')
    >>> _ = (folder / ".part-1.jsonl.inprogress").write_text('{"key": "c"}\\n')
    >>> list(read_records(folder))
    [{'key': 'a'}, {'key': 'b'}]
    """
    for path in committed_files(destination):
        if path not in skip:
            yield from read_file_records(path)


def read_file_records(path: pathlib.Path) -> Iterator[dict]:
    """The JSON records of one committed part file, a line each; blank lines are skipped.

    Parameters
    ----------
    path
        A committed part file (``committed_files``): FileSink never changes one again.
    """
    with path.open("rb") as lines:
        for line in lines:
            if line.strip():
                yield parse_json(line)
