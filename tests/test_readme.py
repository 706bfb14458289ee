"""The README's tour is run as a doctest, so what it shows is what minigrad prints."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_tour_runs_as_shown():
    pytest.importorskip("torch")  # the tour ends with a torch comparison
    result = doctest.testfile(
        str(README), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 10
    assert result.failed == 0


def test_readme_names_the_test_command_that_ci_runs():
    ci = (README.parent / ".ci" / "run").read_text()
    assert "python -m pytest -q" in README.read_text()
    assert "python -m pytest -q" in ci
    assert "torch==2.13.0" in ci and "MINIGRAD_REQUIRE_TORCH=1" in ci
