"""Text for people: one table printer for every table the command line prints, and the summary's labelled lines."""

from collections.abc import Iterable, Sequence

__all__ = ["format_table", "labelled"]

LABEL_WIDTH = 14  # the summary's labels: "dead letters", "predictions", "per key"


def format_table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[str] = ()) -> str:
    """Columns as wide as their widest cell, two spaces apart, without trailing blanks.

    Parameters
    ----------
    header
        The column names, printed as the first line.
    rows
        One sequence of cells (text) per line, as many as ``header`` has.
    right
        The names of the columns aligned right (figures); the others are aligned left.

    Examples
    --------
    >>> print(format_table(("key", "bytes"), [("a", "1,024"), ("bb", "12")], right=("bytes",)))
    key  bytes
    a    1,024
    bb      12
    """
    right = set(right)
    lines = [tuple(header), *map(tuple, rows)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.rjust(width) if name in right else cell.ljust(width)
                  for name, cell, width in zip(header, line, widths)).rstrip()
        for line in lines
    )


def labelled(label: str, text: str) -> str:
    """One line of a summary: an indented label, then its text, the texts of all labels in one column.

    Parameters
    ----------
    label
        What the line is about (``predictions``, ``metric``).
    text
        What there is to say about it.

    Examples
    --------
    >>> labelled("metric", "MAE = 1.0000")
    '  metric         MAE = 1.0000'
    """
    return f"  {label:<{LABEL_WIDTH}} {text}"
