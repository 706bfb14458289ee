"""The benchmark scripts run, check agreement before timing, and write their results.

Each script runs in its smallest mode (``--smoke``) in a fresh process, from a directory
outside the repository. Nothing here asserts a timing: the machine's load decides those.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
HAS_TORCH = importlib.util.find_spec("torch") is not None


def run_script(script: str, tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / f"{script}.json"
    process = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{script}.py"), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    return json.loads(out.read_text()), process.stdout


def test_bench_mlp_smoke(tmp_path):
    results, stdout = run_script("bench_mlp", tmp_path, "--smoke")
    assert results["mode"] == "smoke"
    assert results["environment"]["blas_threads"] == 1
    tiny = results["sizes"]["tiny"]
    assert set(tiny) >= {"widths", "batch", "agreement", "median_s", "ratio_to_numpy", "times_s"}
    expected = {"hand numpy", "minigrad"} | ({"torch"} if HAS_TORCH else set())
    assert set(tiny["agreement"]) >= expected
    assert all(verdict == "ok" for verdict in tiny["agreement"].values())
    assert set(tiny["median_s"]) >= expected
    assert tiny["ratio_to_numpy"]["hand numpy"] == 1.0
    assert all(t > 0 for t in tiny["median_s"].values())
    # contenders that are not installed or not run are named with the reason, never just absent
    for name in ("MyGrad", "HIPS autograd", "scikit-learn", "micrograd"):
        assert name in tiny["median_s"] or name in results["skipped"] or name in results["not_run"]
    assert "| MLP, batch | hand numpy | minigrad" in stdout


def test_bench_mlp_fresh_child_reports_both_step_times(tmp_path):
    process = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_mlp.py"), "--fresh-child", "tiny", "3"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert process.returncode == 0, process.stderr
    times = json.loads(process.stdout.strip().splitlines()[-1])
    assert {name: len(t) for name, t in times.items()} == {"hand numpy": 3, "minigrad": 3}


def test_bench_mlp_rejects_an_unknown_size(tmp_path):
    process = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_mlp.py"), "--smoke", "--sizes", "huge"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert process.returncode == 2
    assert "unknown size" in process.stderr


def test_bench_ops_smoke(tmp_path):
    results, stdout = run_script("bench_ops", tmp_path, "--smoke")
    assert results["agreement"] and all(v == "ok" for v in results["agreement"].values())
    libraries = {"minigrad", "torch"} if HAS_TORCH else {"minigrad"}
    for collector in ("collector_on", "collector_paused"):
        per_op = results["per_op"][collector]
        assert set(per_op) == set(results["agreement"])
        for entry in per_op.values():
            assert set(entry) >= libraries
            assert set(entry["minigrad"]) == {"forward_us", "backward_us", "total_us"}
            if HAS_TORCH:
                assert entry["minigrad_over_torch"] > 0
    (pair,) = results["chain_scaling"]["pairs"]
    assert pair["lengths"] == [500, 1000]
    for library in libraries:
        assert len(pair[library]["cpu_s"]) == len(pair[library]["wall_s"]) == 2
        assert pair[library]["time_ratio_for_2x_ops"] > 0
    assert "| ops in the chain |" in stdout


def test_bench_linear_backward_smoke(tmp_path):
    results, stdout = run_script("bench_linear_backward", tmp_path, "--smoke")
    assert list(results["ways"]) == ["tiny", "small"]
    for size, ways in results["ways"].items():
        assert set(results["agreement"][size].values()) == {"ok"}
        assert set(ways["median_s"]) == set(results["agreement"][size])
        assert ways["ratio_to_matmul"]["delta.T @ X"] == 1.0
        # the point of the script: delta.T @ X is C-contiguous, its transposed twin is not
        assert ways["layout"]["delta.T @ X"] == "C-contiguous"
        assert ways["layout"]["(X.T @ delta).T"] == "not C-contiguous"
        for update in ("W -= lr * dW", "grad += dW"):
            entry = results["updates"][size][update]
            assert set(entry["median_s"]) == {"C-contiguous", "transposed view"}
    assert "| B, in -> out |" in stdout


def test_interleaved_caps_the_steps_of_a_slow_contender():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from _common import interleaved
    finally:
        sys.path.remove(str(BENCHMARKS))
    calls = {"fast": 0, "slow": 0}

    def counter(name: str) -> Any:
        return lambda: calls.__setitem__(name, calls[name] + 1)

    steps = {name: counter(name) for name in calls}
    times = interleaved(steps, rounds=3, steps_per_round=5, warmup=2, max_steps={"slow": 1})
    assert calls == {"fast": 2 + 3 * 5, "slow": 1 + 3 * 1}
    assert {name: len(t) for name, t in times.items()} == {"fast": 3, "slow": 3}
