"""Per-op overhead and deep-chain scaling of minigrad's autograd, beside PyTorch's.

    python benchmarks/bench_ops.py --quick          # well under a minute
    python benchmarks/bench_ops.py                  # chains up to 10^6 ops (a few minutes)

Per-op overhead: a chain ``y = op(y)`` of many ops on a 1-element float64 tensor, then
``y.backward()``. With one element the arithmetic costs nothing, so the time per op is what
the framework adds around each numpy call: building the node, saving tensors, walking the
graph, accumulating the gradient. The same lambda runs on minigrad and torch (the names
match), the two alternate round by round, and the table shows the median microseconds per op.
It is measured twice: with Python's cyclic garbage collector running, as it does by default,
and paused. minigrad's graph is made of Python objects, which the collector scans over and
over while a long chain is alive; torch's graph lives in C++, out of the collector's sight.

Deep-chain scaling: the forward and backward time of chains of 10^4, 10^5 and 10^6 ops and of
half as many, in CPU seconds of this process (steadier than wall time on a shared machine); a
linear engine takes 2x the time for 2x the ops. The cyclic garbage collector is paused while a
chain is built and walked (the graph forms no reference cycles, and on 10^6 live nodes the
collector's own passes would be what is measured).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import (
    REPO,
    environment,
    format_seconds,
    limit_threads,
    pin_threads_from_argv,
    write_json,
)

THREADS = pin_threads_from_argv()  # before numpy is imported: BLAS reads the count once

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402

# Each op takes the running value y and a 1-element leaf w (used by the binary ops, whose
# backward also accumulates into w at every link of the chain).
OPS: dict[str, Callable[[Any, Any], Any]] = {
    "neg: -y": lambda y, w: -y,
    "add: y + w": lambda y, w: y + w,
    "mul: y * w": lambda y, w: y * w,
    "mul by a float: y * 0.5": lambda y, w: y * 0.5,
    "tanh: y.tanh()": lambda y, w: y.tanh(),
}
SCALING_OP = "tanh: y.tanh()"
START = 0.5  # x's value; w is 1.0, so every chain stays finite

Chain = Callable[[int, Callable[[Any, Any], Any]], tuple[float, float]]


# ============================================================================= the chains


def minigrad_leaves() -> tuple[Any, Any]:
    x = mg.tensor(np.array([START]), dtype=mg.float64, requires_grad=True)
    w = mg.tensor(np.array([1.0]), dtype=mg.float64, requires_grad=True)
    return x, w


def torch_leaves() -> tuple[Any, Any]:
    import torch

    x = torch.tensor([START], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    return x, w


def run_chain(
    leaves: Callable[[], tuple[Any, Any]], n: int, op: Callable, *, collector: bool = True
) -> tuple[float, float]:
    """Build a chain of ``n`` ops on fresh leaves, then backpropagate; (forward s, backward s).

    With ``collector=False`` the cyclic garbage collector is paused for the chain.
    """
    x, w = leaves()
    if not collector:
        gc.disable()
    try:
        start = time.perf_counter()
        y = x
        for _ in range(n):
            y = op(y, w)
        middle = time.perf_counter()
        y.backward()
        end = time.perf_counter()
    finally:
        gc.enable()
    return middle - start, end - middle


def check_agreement(libraries: dict[str, Callable], n: int = 50) -> dict[str, str]:
    """Each op's chain in float64: the output and both gradients agree with torch's (or, without
    torch, with finite numbers). Returns ``{op: "ok"}`` or ``{op: what differs}``."""
    verdicts = {}
    for name, op in OPS.items():
        results = {}
        for library, leaves in libraries.items():
            x, w = leaves()
            y = x
            for _ in range(n):
                y = op(y, w)
            y.backward()
            grads = [np.zeros(1) if t.grad is None else np.asarray(t.grad) for t in (x, w)]
            results[library] = [y.detach().numpy().ravel(), *grads]
        reference = results.get("torch", results["minigrad"])
        agree = all(
            np.allclose(a, b, rtol=1e-12, atol=0) and np.isfinite(a).all()
            for a, b in zip(results["minigrad"], reference)
        )
        verdicts[name] = "ok" if agree else f"minigrad {results['minigrad']} vs {reference}"
    return verdicts


# ============================================================================= measurements


def per_op_overhead(
    libraries: dict[str, Callable], *, n: int, rounds: int, warmup: int, collector: bool
) -> dict[str, Any]:
    """Median microseconds per op (forward, backward, both) of each library, for each op.

    In every round each library runs the chain once, the first one alternating round by round.
    ``collector`` says whether Python's cyclic garbage collector runs meanwhile (it does by
    default; a long chain of Python objects makes it scan them again and again).
    """
    results: dict[str, Any] = {}
    names = list(libraries)
    for op_name, op in OPS.items():
        for leaves in libraries.values():
            run_chain(leaves, warmup, op)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
        for r in range(rounds):
            for name in names[r % 2 :] + names[: r % 2]:
                times[name].append(run_chain(libraries[name], n, op, collector=collector))
        entry: dict[str, Any] = {}
        for name, pairs in times.items():
            entry[name] = {
                "forward_us": statistics.median(f for f, _ in pairs) / n * 1e6,
                "backward_us": statistics.median(b for _, b in pairs) / n * 1e6,
                "total_us": statistics.median(f + b for f, b in pairs) / n * 1e6,
            }
        if "torch" in times:
            entry["minigrad_over_torch"] = statistics.median(
                sum(m) / sum(t) for m, t in zip(times["minigrad"], times["torch"])
            )
        results[op_name] = entry
    return results


def chain_scaling(
    libraries: dict[str, Callable], *, longest: list[int], repeats: dict[int, int]
) -> dict[str, Any]:
    """Forward + backward time of chains of n/2 and n ops, for each n in ``longest``.

    Each repeat runs the two lengths back to back, and the ratio time(n) / time(n/2) is the
    median over repeats (a linear engine gives 2). Times are this process's CPU seconds, so
    that other programs on a shared machine do not count; wall seconds are kept beside them.
    """
    op = OPS[SCALING_OP]
    out: dict[str, Any] = {"op": SCALING_OP, "clock": "process CPU time", "pairs": []}
    for n in longest:
        pair: dict[str, Any] = {"lengths": [n // 2, n]}
        for name, leaves in libraries.items():
            cpu: dict[int, list[float]] = {n // 2: [], n: []}
            wall: dict[int, list[float]] = {n // 2: [], n: []}
            for _ in range(repeats[n]):
                for length in (n // 2, n):
                    gc.collect()  # start each chain from a clean heap
                    start = time.process_time()
                    wall[length].append(sum(run_chain(leaves, length, op, collector=False)))
                    cpu[length].append(time.process_time() - start)
            pair[name] = {
                "cpu_s": [statistics.median(cpu[length]) for length in (n // 2, n)],
                "wall_s": [statistics.median(wall[length]) for length in (n // 2, n)],
                "us_per_op": [
                    statistics.median(cpu[length]) / length * 1e6 for length in (n // 2, n)
                ],
                "time_ratio_for_2x_ops": statistics.median(
                    long / short for short, long in zip(cpu[n // 2], cpu[n])
                ),
            }
        out["pairs"].append(pair)
    return out


# ============================================================================= output


def per_op_table(results: dict[str, Any], names: list[str]) -> str:
    header = "| op (1 element, float64) | " + " | ".join(f"{n} fwd + bwd" for n in names)
    lines = [header + (" | minigrad / torch |" if "torch" in names else " |")]
    lines.append("|" + " --- |" * (len(names) + 1 + ("torch" in names)))
    for op_name, entry in results.items():
        cells = [
            f"{entry[n]['total_us']:.1f} us "
            f"({entry[n]['forward_us']:.1f} + {entry[n]['backward_us']:.1f})"
            for n in names
        ]
        if "torch" in names:
            cells.append(f"**{entry['minigrad_over_torch']:.2f}x**")
        lines.append(f"| `{op_name.split(': ')[1]}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scaling_table(results: dict[str, Any], names: list[str]) -> str:
    header = " | ".join(f"{name}: CPU time, per op" for name in names)
    ratios = " | ".join(f"{name}: 2x ops" for name in names)
    lines = [f"| ops in the chain | {header} | {ratios} |", "|" + " --- |" * (2 * len(names) + 1)]
    for pair in results["pairs"]:
        for i, n in enumerate(pair["lengths"]):
            cells = [
                f"{format_seconds(pair[name]['cpu_s'][i])}, {pair[name]['us_per_op'][i]:.1f} us"
                for name in names
            ]
            if i == 1:
                cells += [f"**{pair[name]['time_ratio_for_2x_ops']:.2f}x**" for name in names]
            else:
                cells += [""] * len(names)
            lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ============================================================================= main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="chains up to 10^5: under a minute")
    parser.add_argument("--smoke", action="store_true", help="short chains, a few rounds (tests)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for all (1)")
    parser.add_argument("--no-torch", action="store_true", help="time minigrad alone")
    parser.add_argument("--out", default=None, help="JSON results file")
    args = parser.parse_args()

    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    libraries: dict[str, Callable] = {"minigrad": minigrad_leaves}
    skipped = {}
    if args.no_torch:
        skipped["torch"] = "--no-torch"
    else:
        try:
            import torch  # noqa: F401
        except ImportError:
            skipped["torch"] = "not installed (pip install torch)"
        else:
            libraries["torch"] = torch_leaves
    how = limit_threads(THREADS)

    # chain length and rounds of the per-op overhead; the chain lengths of the scaling
    overhead = {"smoke": (200, 3), "quick": (5_000, 7), "full": (10_000, 21)}[mode]
    longest = {"smoke": [1_000], "quick": [10_000, 100_000], "full": [10_000, 100_000, 1_000_000]}
    if mode == "full":
        repeats = {1_000: 3, 10_000: 5, 100_000: 3, 1_000_000: 1}
    else:
        repeats = {1_000: 3, 10_000: 3, 100_000: 2}
    names = list(libraries)

    print(f"# bench_ops ({mode}): {THREADS} BLAS thread(s), pinned by {how}")
    for name, reason in skipped.items():
        print(f"note: {name} skipped: {reason}")
    results: dict[str, Any] = {"mode": mode, "environment": environment(THREADS, how)}
    results["skipped"] = skipped
    results["agreement"] = verdicts = check_agreement(libraries)
    wrong = {op: v for op, v in verdicts.items() if v != "ok"}
    for op, verdict in wrong.items():
        print(f"REFUSING to time {op}: minigrad and torch differ: {verdict}")
    if wrong:
        write_json(args.out, "bench_ops.json", results)
        return 1

    n, rounds = overhead
    results["per_op_chain_length"] = n
    results["per_op"] = {}
    for collector, key in ((True, "collector_on"), (False, "collector_paused")):
        results["per_op"][key] = per_op_overhead(
            libraries, n=n, rounds=rounds, warmup=min(n, 1000), collector=collector
        )
        state = "running (the default)" if collector else "paused"
        print(
            f"\nPer-op overhead, chains of {n:,} ops, median of {rounds} rounds, "
            f"garbage collector {state}; us per op (forward + backward):\n"
        )
        print(per_op_table(results["per_op"][key], names))

    results["chain_scaling"] = chain_scaling(libraries, longest=longest[mode], repeats=repeats)
    print(
        f"\nDeep chains of `{SCALING_OP.split(': ')[1]}`, forward + backward, garbage collector "
        "paused; CPU time, and the time of each chain over the one half as long:\n"
    )
    print(scaling_table(results["chain_scaling"], names))

    path = write_json(args.out, "bench_ops.json", results)
    print(f"\nresults written to {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
