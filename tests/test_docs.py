"""docs/debugging.md shows real pdb sessions and tracebacks: they must still match the code.

Every place the page names a line of minigrad (a pdb stop ``> minigrad/x.py(N)f()`` with the
``-> code`` pdb prints under it, a traceback's ``File "minigrad/x.py", line N`` with its code,
a breakpoint ``minigrad/x.py:N``) is checked against the source as it is now, so an edit that
moves the lines fails here until the page is regenerated from a real session.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "debugging.md").read_text()

PDB_STOP = re.compile(r"^> (minigrad/[\w/]+\.py)\((\d+)\)\w+\(\)\n-> (.*)$", re.MULTILINE)
TRACEBACK = re.compile(r'^\s*File "(minigrad/[\w/]+\.py)", line (\d+), in \w+\n\s+(.*)$', re.M)
BREAKPOINT = re.compile(r"(minigrad/autograd\.py):(\d+)")
MARKER = "# <- every op's backward runs here"


def _line(path: str, number: str) -> str:
    return (ROOT / path).read_text().splitlines()[int(number) - 1].strip()


def _cases(pattern: re.Pattern[str]) -> list[tuple[str, str, str]]:
    return [m.groups() for m in pattern.finditer(PAGE)]


@pytest.mark.parametrize(("path", "number", "code"), _cases(PDB_STOP) + _cases(TRACEBACK))
def test_each_source_line_the_page_shows_is_still_there(path, number, code):
    assert _line(path, number) == code.strip(), (
        f"docs/debugging.md shows {path}:{number} as {code.strip()!r}; the code has moved: "
        "rerun the sessions and paste their output"
    )


def test_the_page_shows_pdb_stops_tracebacks_and_the_engine_breakpoint():
    assert len(_cases(PDB_STOP)) >= 5 and len(_cases(TRACEBACK)) >= 3
    breakpoints = BREAKPOINT.findall(PAGE)
    assert breakpoints
    for path, number in breakpoints:
        assert _line(path, number).endswith(MARKER)
