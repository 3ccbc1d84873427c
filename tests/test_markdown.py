"""Every Markdown file of the project renders as written: each code fence opens and closes.

A closing fence with text after it (```` ``` and then prose````, or ```` ```bash````)
does not close its block: everything after it renders as code, and the next
fence's code as prose.
"""

import pathlib
import re
import subprocess

import pytest

pytestmark = pytest.mark.unit

ROOT = pathlib.Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^\s*(?P<run>`{3,}|~{3,})(?P<rest>.*)$")


def markdown_files() -> list[str]:
    """The Markdown files git would commit now (tracked and new), relative to the project root."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "*.md"],
                            cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
    return sorted(name for name in set(listed.decode().split("\0")) if name and (ROOT / name).is_file())


def fence_mistakes(text: str) -> list[str]:
    """What is wrong with the code fences of one Markdown text, one line per mistake.

    Examples
    --------
    >>> fence_mistakes("```python\\nx = 1\\n```\\n")
    []
    >>> fence_mistakes("```bash\\nls\\n``` Then prose.\\n")
    ["line 3: '``` Then prose.' has text after its fence, so it does not close the block of line 1", 'line 1: this fence never closes']
    """
    mistakes = []
    opened = None  # (line number, fence characters) of the open block
    for number, line in enumerate(text.splitlines(), start=1):
        fence = FENCE.match(line)
        if fence is None:
            continue
        run, rest = fence["run"], fence["rest"]
        if opened is None:
            if run[0] == "`" and "`" in rest:
                continue  # inline code such as ```x```, not a fence
            opened = (number, run)
        elif run[0] == opened[1][0] and len(run) >= len(opened[1]):
            if rest.strip():
                mistakes.append(f"line {number}: {line.strip()!r} has text after its fence, "
                                f"so it does not close the block of line {opened[0]}")
            else:
                opened = None
    if opened is not None:
        mistakes.append(f"line {opened[0]}: this fence never closes")
    return mistakes


@pytest.mark.parametrize("name", markdown_files())
def test_every_code_fence_closes_on_a_line_of_its_own(name):
    assert fence_mistakes((ROOT / name).read_text()) == [], name


def test_the_project_has_markdown_to_check():
    assert "README.md" in markdown_files()
