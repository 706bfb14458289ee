"""The weight gradient of a linear layer written three ways, and what its memory layout costs later.

    python benchmarks/bench_linear_backward.py --quick
    python benchmarks/bench_linear_backward.py

For y = x W^T + b with W of shape (out, in), one sample's weight gradient is the outer product
``delta x^T`` (delta = dL/dy, shape (out,)); a batch X (B, in) with deltas D (B, out) sums B of
them. The sum can be written:

1. as it reads: a Python loop adding ``np.outer(D[b], X[b])`` over the batch;
2. as an index formula: ``np.einsum("bo,bi->oi", D, X)`` (and with ``optimize=True``, which
   lets einsum hand the contraction to BLAS);
3. as one matrix product: ``D.T @ X`` (out, B) @ (B, in), which runs in BLAS.

All give the same matrix (checked in float64 first). ``D.T @ X`` is also C-contiguous, the
layout of W. The same product computed the other way round, ``(X.T @ D).T``, costs the same
but is a transposed view (Fortran order); every later elementwise update that mixes it with
the C-ordered W (``W -= lr * dW``, ``grad += dW``) then walks one of them across the grain.
The second table times those updates. This is why minigrad's ``LinearFunction.backward``
computes ``grad_weight = grad_output.T @ x``.

Timings are float32 (what training uses), interleaved round by round, medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from typing import Any

from _common import (
    REPO,
    environment,
    format_seconds,
    interleaved,
    limit_threads,
    median_ratio,
    pin_threads_from_argv,
    write_json,
)

THREADS = pin_threads_from_argv()  # before numpy is imported: BLAS reads the count once

import numpy as np  # noqa: E402

SIZES = {  # name: (batch B, in_features, out_features): hidden layers of bench_mlp's MLPs
    "tiny": (32, 16, 16),
    "small": (64, 128, 128),
    "medium": (128, 784, 256),
    "large": (256, 2048, 2048),
}
LR = 0.01


# ============================================================================= the three ways


def loop_of_outer(D: np.ndarray, X: np.ndarray) -> np.ndarray:
    """sum over b of outer(delta_b, x_b), one rank-1 matrix at a time."""
    grad_weight = np.zeros((D.shape[1], X.shape[1]), dtype=D.dtype)  # (out, in)
    for b in range(D.shape[0]):
        grad_weight += np.outer(D[b], X[b])  # (out,) x (in,) -> (out, in)
    return grad_weight


def einsum(D: np.ndarray, X: np.ndarray) -> np.ndarray:
    return np.einsum("bo,bi->oi", D, X)  # (B, out), (B, in) -> (out, in)


def einsum_optimized(D: np.ndarray, X: np.ndarray) -> np.ndarray:
    return np.einsum("bo,bi->oi", D, X, optimize=True)  # (B, out), (B, in) -> (out, in)


def matmul(D: np.ndarray, X: np.ndarray) -> np.ndarray:
    return D.T @ X  # (out, B) @ (B, in) -> (out, in), C-contiguous


def matmul_transposed(D: np.ndarray, X: np.ndarray) -> np.ndarray:
    return (X.T @ D).T  # ((in, B) @ (B, out)).T -> (out, in), a transposed view


WAYS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "loop of np.outer": loop_of_outer,
    "np.einsum": einsum,
    "np.einsum(optimize=True)": einsum_optimized,
    "delta.T @ X": matmul,
    "(X.T @ delta).T": matmul_transposed,
}
REFERENCE = "delta.T @ X"


def make_batch(size: str, dtype: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    B, n_in, n_out = SIZES[size]
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((B, n_out)).astype(dtype)  # (B, out): dL/dy
    X = rng.standard_normal((B, n_in)).astype(dtype)  # (B, in)
    return D, X


def check_agreement(size: str) -> dict[str, str]:
    """Every way against ``delta.T @ X``, in float64 (and against the loop's plain sum)."""
    D, X = make_batch(size, np.float64)
    reference = matmul(D, X)
    verdicts = {}
    for name, way in WAYS.items():
        grad_weight = way(D, X)
        if grad_weight.shape == reference.shape and np.allclose(grad_weight, reference, rtol=1e-10):
            verdicts[name] = "ok"
        else:
            verdicts[name] = (
                f"differs from {REFERENCE} (largest gap {abs(grad_weight - reference).max()})"
            )
    return verdicts


# ============================================================================= timings


def time_ways(size: str, ways: list[str], rounds: int, per_round: int) -> dict[str, Any]:
    D, X = make_batch(size, np.float32)
    steps = {name: (lambda way=WAYS[name]: way(D, X)) for name in ways}
    times = interleaved(steps, rounds=rounds, steps_per_round=per_round, warmup=1)
    reference = times[REFERENCE]
    return {
        "layout": {
            name: "C-contiguous" if WAYS[name](D, X).flags.c_contiguous else "not C-contiguous"
            for name in ways
        },
        "median_s": {name: statistics.median(t) for name, t in times.items()},
        "ratio_to_matmul": {name: median_ratio(t, reference) for name, t in times.items()},
    }


def time_updates(size: str, rounds: int, per_round: int) -> dict[str, Any]:
    """A later SGD update and a gradient accumulation, with dW C-contiguous or a transposed view.

    W and the gradient buffer are C-contiguous (out, in), as a Linear layer's are.
    """
    D, X = make_batch(size, np.float32)
    layouts = {"C-contiguous": matmul(D, X), "transposed view": matmul_transposed(D, X)}
    rng = np.random.default_rng(1)
    weight = rng.standard_normal(layouts["C-contiguous"].shape).astype(np.float32)
    weights = {name: weight.copy() for name in layouts}  # each updates its own copy
    grads = {name: np.zeros_like(weight) for name in layouts}

    def sgd_update(name: str) -> None:
        weights[name] -= LR * layouts[name]

    def accumulate(name: str) -> None:
        grads[name] += layouts[name]

    out: dict[str, Any] = {}
    for update_name, update in (("W -= lr * dW", sgd_update), ("grad += dW", accumulate)):
        steps = {name: (lambda name=name, update=update: update(name)) for name in layouts}
        times = interleaved(steps, rounds=rounds, steps_per_round=per_round, warmup=2)
        out[update_name] = {
            "median_s": {name: statistics.median(t) for name, t in times.items()},
            "view_over_contiguous": median_ratio(times["transposed view"], times["C-contiguous"]),
        }
    return out


# ============================================================================= output


def ways_table(results: dict[str, Any]) -> str:
    names = list(WAYS)
    lines = [
        "| B, in -> out | " + " | ".join(f"`{n}`" for n in names) + " |",
        "|" + " --- |" * (len(names) + 1),
    ]
    for size, entry in results.items():
        B, n_in, n_out = SIZES[size]
        cells = []
        for name in names:
            if name not in entry["median_s"]:
                cells.append("skipped")
                continue
            cell = format_seconds(entry["median_s"][name])
            if name != REFERENCE:
                cell += f" ({entry['ratio_to_matmul'][name]:.2f}x)"
            cells.append(cell)
        lines.append(f"| {B}, {n_in} -> {n_out} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def updates_table(results: dict[str, Any]) -> str:
    updates = ["W -= lr * dW", "grad += dW"]
    header = " | ".join(f"`{u}`: C-contiguous dW, transposed view" for u in updates)
    lines = [f"| dW (out, in) | {header} |", "|" + " --- |" * 3]
    for size, entry in results.items():
        _, n_in, n_out = SIZES[size]
        cells = []
        for update in updates:
            times = entry[update]["median_s"]
            cells.append(
                f"{format_seconds(times['C-contiguous'])}, "
                f"{format_seconds(times['transposed view'])} "
                f"(**{entry[update]['view_over_contiguous']:.1f}x**)"
            )
        lines.append(f"| ({n_out}, {n_in}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ============================================================================= main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a few seconds")
    parser.add_argument("--smoke", action="store_true", help="two small sizes, few rounds (tests)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (1)")
    parser.add_argument("--out", default=None, help="JSON results file")
    args = parser.parse_args()

    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    sizes = ["tiny", "small"] if args.smoke else list(SIZES)
    rounds = {"smoke": 3, "quick": 5, "full": 15}[mode]
    # steps per round: enough to lift the fast ways well above the timer's resolution
    per_round = {"tiny": 100, "small": 20, "medium": 3, "large": 1}
    how = limit_threads(THREADS)
    print(f"# bench_linear_backward ({mode}): {THREADS} BLAS thread(s), pinned by {how}")

    results: dict[str, Any] = {"mode": mode, "environment": environment(THREADS, how)}
    results["agreement"] = {size: check_agreement(size) for size in sizes}
    wrong = [
        (size, name, verdict)
        for size, verdicts in results["agreement"].items()
        for name, verdict in verdicts.items()
        if verdict != "ok"
    ]
    for size, name, verdict in wrong:
        print(f"REFUSING to time: at {size}, {name} {verdict}")
    if wrong:
        write_json(args.out, "bench_linear_backward.json", results)
        return 1

    results["ways"] = {}
    results["updates"] = {}
    for size in sizes:
        ways = list(WAYS)
        if mode == "quick" and size == "large":
            ways.remove("loop of np.outer")  # about a second a call: the medium size shows it
        results["ways"][size] = time_ways(size, ways, rounds, per_round[size])
        results["updates"][size] = time_updates(size, max(rounds, 7), per_round[size] * 10)

    print("\nThe weight gradient dW (float32), and each way's time over `delta.T @ X`:\n")
    print(ways_table(results["ways"]))
    print("\nA later update with dW C-contiguous or a transposed view (W is C-contiguous):\n")
    print(updates_table(results["updates"]))
    path = write_json(args.out, "bench_linear_backward.json", results)
    print(f"\nresults written to {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
