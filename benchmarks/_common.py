"""What the benchmark scripts share: BLAS thread pinning, interleaved timing, results files.

Imported before numpy on purpose: OpenBLAS and MKL read their thread count from the
environment once, when numpy is first imported, so ``pin_threads_from_argv`` sets it first.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

# Benchmark this checkout's minigrad, even if another copy is installed.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def pin_threads_from_argv(default: int = 1) -> int:
    """Read ``--threads N`` from the command line and set every BLAS thread variable to N.

    Must run before numpy is imported; :func:`limit_threads` repeats the limit at run time
    (threadpoolctl and torch) for libraries that ignore the environment.
    """
    threads = default
    argv = sys.argv[1:]
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            threads = int(argv[i + 1])
        elif arg.startswith("--threads="):
            threads = int(arg.split("=", 1)[1])
    if "numpy" in sys.modules:
        print("warning: numpy was imported before the BLAS thread count was set", file=sys.stderr)
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(threads)
    return threads


def limit_threads(threads: int) -> str:
    """Limit BLAS (threadpoolctl, if installed) and torch to ``threads``; say how."""
    how = "environment variables"
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pass
    else:
        # Kept alive for the whole process: the limit holds until the object is collected.
        limit_threads.keep = threadpool_limits(limits=threads)  # type: ignore[attr-defined]
        how = "threadpoolctl and environment variables"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    return how


CLOCKS: dict[str, Callable[[], float]] = {
    "wall": time.perf_counter,
    # CPU seconds of this process (user + system): on a busy machine, time spent waiting for a
    # core is left out. With one BLAS thread everything runs on the calling thread.
    "cpu": time.process_time,
}


def interleaved(
    steps: dict[str, Callable[[], Any]],
    *,
    rounds: int,
    steps_per_round: int,
    warmup: int,
    clock: Callable[[], float] = time.perf_counter,
    max_steps: Mapping[str, int] | None = None,
) -> dict[str, list[float]]:
    """Seconds per step of each callable, one entry per round.

    Every round times each contender once, back to back, starting with a different one each
    round, so that the machine's slow and fast moments fall on all of them alike.
    ``max_steps[name]`` caps that contender's steps per round and warm-up steps (for one
    whose single step takes most of a second).
    """
    caps = max_steps or {}
    for name, step in steps.items():
        for _ in range(min(warmup, caps.get(name, warmup))):
            step()
    names = list(steps)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            step = steps[name]
            count = min(steps_per_round, caps.get(name, steps_per_round))
            start = clock()
            for _ in range(count):
                step()
            times[name].append((clock() - start) / count)
    return times


def median_ratio(times: Sequence[float], reference: Sequence[float]) -> float:
    """The median over rounds of time / reference time, each pair measured side by side."""
    return statistics.median(t / r for t, r in zip(times, reference))


def format_seconds(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} us"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def environment(threads: int, how: str) -> dict[str, Any]:
    """Versions and settings worth keeping beside the numbers (no host names or paths)."""
    import numpy as np

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "blas_threads": threads,
        "threads_pinned_by": how,
        "machine": platform.machine(),
    }
    # The other libraries timed, when this run loaded them (their distribution names).
    for module, distribution in OTHER_LIBRARIES.items():
        if module in sys.modules:
            try:
                info[distribution] = importlib.metadata.version(distribution)
            except importlib.metadata.PackageNotFoundError:
                info[distribution] = "unknown"
    return info


OTHER_LIBRARIES = {  # module -> distribution
    "torch": "torch",
    "mygrad": "mygrad",
    "autograd": "autograd",
    "sklearn": "scikit-learn",
    "micrograd": "micrograd",
}


def write_json(path: str | None, default_name: str, payload: dict[str, Any]) -> Path:
    out = Path(path) if path else RESULTS / default_name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    return out
