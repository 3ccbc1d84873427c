"""Reading what a FileSink destination has committed.

FileSink writes part files and marks in-progress ones with a leading dot; only
the others are committed (on a checkpoint, or at the end of a bounded input),
so readers must skip them to see exactly-once output.
"""

import json
import pathlib
from collections.abc import Iterator

__all__ = ["committed_files", "read_records"]


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


def read_records(destination: str | pathlib.Path) -> Iterator[dict]:
    """Every committed JSON record under ``destination``.

    Parameters
    ----------
    destination
        The directory an output was written to.

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
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)
