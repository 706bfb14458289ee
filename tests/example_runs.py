"""Running an example script as a user would, for the tests of examples/.

A script runs in a subprocess (``sys.executable``, ``MPLBACKEND=Agg``) in its ``--smoke`` mode,
from an empty working directory ``base/cwd`` with ``--out base/out``, so a test can check that
it writes nothing anywhere else. Start every run first and finish them after: they overlap.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Run:
    """A finished run: exit code, output, where it ran and wrote, and what it printed.

    ``lines`` holds, for every printed line with ``key=value`` tokens, a dict of them (keys can
    repeat across lines, e.g. one line per LoRA rank).
    """

    def __init__(self, proc: subprocess.CompletedProcess, cwd: Path, out: Path) -> None:
        self.returncode, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr
        self.cwd, self.out = cwd, out
        self.lines: list[dict[str, str]] = []
        for line in self.stdout.splitlines():
            tokens = [t for t in line.split() if "=" in t and not t.startswith("=")]
            if tokens:
                self.lines.append(dict(t.split("=", 1) for t in tokens))

    def value(self, key: str) -> str:
        """The value of a key printed exactly once."""
        found = [line[key] for line in self.lines if key in line]
        assert len(found) == 1, f"{key!r} printed {len(found)} times:\n{self.stdout}"
        return found[0]

    def number(self, key: str) -> float:
        return float(self.value(key))

    def rows(self, key: str) -> list[dict[str, str]]:
        """Every printed line that has ``key``."""
        return [line for line in self.lines if key in line]


Started = tuple[subprocess.Popen, Path, Path]


def start_script(
    base: Path, name: str, args: list[str] | None = None, *, hide_torch: bool = False
) -> Started:
    """Start ``examples/<name>.py --smoke <args> --out base/out`` in the empty ``base/cwd``."""
    cwd, out = base / "cwd", base / "out"
    cwd.mkdir(parents=True)
    script = str(EXAMPLES / f"{name}.py")
    argv = ["--smoke", *(args or []), "--out", str(out)]
    if hide_torch:  # an interpreter where `import torch` fails, as on a machine without it
        code = (
            "import runpy, sys; sys.modules['torch'] = None; "
            f"sys.argv = {[script, *argv]!r}; runpy.run_path({script!r}, run_name='__main__')"
        )
        command = [sys.executable, "-c", code]
    else:
        command = [sys.executable, script, *argv]
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return proc, cwd, out


def finish(started: Started, timeout: float = 150) -> Run:
    """Wait for a started run; a run that hangs fails the test with what it printed."""
    proc, cwd, out = started
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        pytest.fail(f"{proc.args} took more than {timeout} s:\n{stdout}\n{stderr}")
    return Run(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), cwd, out)
