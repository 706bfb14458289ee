"""Time one MLP training step in minigrad against hand-written numpy and other libraries.

    python benchmarks/bench_mlp.py --quick          # under a minute
    python benchmarks/bench_mlp.py                  # the full run (a few minutes)
    python benchmarks/bench_mlp.py --threads 2 --sizes medium,large --out my_run.json

A training step is: zero the gradients, forward, cross-entropy, backward, SGD update, in
float32, for a ReLU MLP. Hand-written numpy is the reference: the same math written out
with no graph, the weight gradients as ``delta^T X``. Every contender starts from the same
weights and sees the same batches, and before anything is timed the script checks that all
of them compute the same float64 losses and weights over a few steps; it refuses to time a
contender that disagrees.

Timing: a warm-up, then rounds in which every contender runs a few steps back to back (the
first contender changes from round to round); the table shows median seconds per step and
the median over rounds of each contender's time over hand numpy's in the same round.
``--clock cpu`` times this process's CPU seconds instead of wall seconds, which leaves out the
time spent waiting for a core when other programs share the machine.
Also measured: the peak memory of a medium step (tracemalloc) and whether memory stays flat
over many steps, and the medium step in fresh short processes against this long-lived one.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from _common import (
    CLOCKS,
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

import minigrad as mg  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import nn, optim  # noqa: E402

SIZES = {  # name: (layer widths, batch size)
    "tiny": ((2, 16, 16, 2), 32),
    "small": ((64, 128, 128, 10), 64),
    "medium": ((784, 256, 256, 10), 128),
    "large": ((1024, 2048, 2048, 10), 256),
}
LR = 0.01
NUM_BATCHES = 4  # steps cycle through these, so no contender sees one batch over and over
TARGETS = {"tiny": 2.0, "small": 1.25, "medium": 1.10, "large": 1.05}  # minigrad / hand numpy
MEMORY_TARGET = 1.3  # peak memory of a medium step, minigrad / hand numpy

Weights = list[tuple[np.ndarray, np.ndarray]]  # [(W (out, in), b (out,)), ...] per layer
Batches = list[tuple[np.ndarray, np.ndarray]]  # [(x (B, in) float, y (B,) int64), ...]


# ============================================================================= contenders
# Each contender takes float64 weights and batches, keeps them in its own format and dtype,
# and has ``step(i)`` (one training step on batch i, returning the loss as a float) and
# ``weights()`` (the current weights as float64 arrays, for the agreement check).


class HandNumpy:
    """The reference: forward, loss, backward and update written out in numpy, no graph."""

    name = "hand numpy"

    def __init__(self, weights: Weights, batches: Batches, dtype: Any) -> None:
        self.layers = [(W.astype(dtype), b.astype(dtype)) for W, b in weights]
        self.batches = [(x.astype(dtype), y) for x, y in batches]

    def step(self, i: int) -> float:
        x, y = self.batches[i % len(self.batches)]
        last = len(self.layers) - 1
        # forward, keeping each layer's input for the weight gradient
        inputs = []
        h = x
        for k, (W, b) in enumerate(self.layers):
            inputs.append(h)
            z = h @ W.T + b  # (B, in) @ (in, out) -> (B, out)
            h = np.maximum(z, 0) if k < last else z
        # cross-entropy, mean over the batch: logsumexp(z) - z[target]
        rows = np.arange(len(y))
        shifted = h - h.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)  # (B, 1)
        loss = np.mean(np.log(sum_exp[:, 0]) - shifted[rows, y])
        # backward: delta = dL/dz, softmax minus one-hot, over B
        delta = exp / sum_exp
        delta[rows, y] -= 1
        delta /= len(y)
        for k in reversed(range(len(self.layers))):
            W, b = self.layers[k]
            grad_W = delta.T @ inputs[k]  # (out, B) @ (B, in): sum_b outer(delta_b, x_b)
            grad_b = delta.sum(axis=0)  # (out,)
            if k > 0:  # through W (before it changes), then relu' of the layer below
                delta = (delta @ W) * (inputs[k] > 0)  # (B, out) @ (out, in) -> (B, in)
            W -= LR * grad_W
            b -= LR * grad_b
        return float(loss)

    def weights(self) -> list[np.ndarray]:
        return [a.astype(np.float64) for layer in self.layers for a in layer]


def _load_linears(model: Any, weights: Weights) -> None:
    linears = [m for m in model if hasattr(m, "weight")]
    for linear, (W, b) in zip(linears, weights):
        linear.weight.data[...] = W
        linear.bias.data[...] = b


class Minigrad:
    """minigrad as a user writes it: nn.Sequential, F.cross_entropy, optim.SGD."""

    name = "minigrad"

    def __init__(self, weights: Weights, batches: Batches, dtype: Any) -> None:
        layers: list[nn.Module] = []
        for k, (W, _) in enumerate(weights):
            layers.append(nn.Linear(W.shape[1], W.shape[0], dtype=dtype))
            if k < len(weights) - 1:
                layers.append(nn.ReLU())
        self.model = nn.Sequential(*layers)
        _load_linears(self.model, weights)
        self.optimizer = optim.SGD(self.model.parameters(), lr=LR)
        self.batches = [(mg.Tensor(x.astype(dtype)), y) for x, y in batches]

    def step(self, i: int) -> float:
        x, y = self.batches[i % len(self.batches)]
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def weights(self) -> list[np.ndarray]:
        return [p.data.astype(np.float64) for p in self.model.parameters()]


class Torch:
    """PyTorch eager on the CPU: torch.nn.Sequential, F.cross_entropy, torch.optim.SGD."""

    name = "torch"

    def __init__(self, weights: Weights, batches: Batches, dtype: Any) -> None:
        import torch

        self.torch = torch
        tdtype = torch.float64 if dtype == np.float64 else torch.float32
        layers: list[Any] = []
        for k, (W, _) in enumerate(weights):
            layers.append(torch.nn.Linear(W.shape[1], W.shape[0], dtype=tdtype))
            if k < len(weights) - 1:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        with torch.no_grad():
            _load_linears_torch(self.model, weights)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.batches = [
            (torch.from_numpy(x.astype(dtype)), torch.from_numpy(y)) for x, y in batches
        ]

    def step(self, i: int) -> float:
        x, y = self.batches[i % len(self.batches)]
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def weights(self) -> list[np.ndarray]:
        return [p.detach().numpy().astype(np.float64) for p in self.model.parameters()]


def _load_linears_torch(model: Any, weights: Weights) -> None:
    import torch

    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    for linear, (W, b) in zip(linears, weights):
        linear.weight.copy_(torch.from_numpy(W))
        linear.bias.copy_(torch.from_numpy(b))


class MyGrad:
    """MyGrad: tensors, matmul, its relu and softmax_crossentropy, and an update of .data."""

    name = "MyGrad"

    def __init__(self, weights: Weights, batches: Batches, dtype: Any) -> None:
        import mygrad
        from mygrad.nnet.activations import relu
        from mygrad.nnet.losses import softmax_crossentropy

        self.mygrad, self.relu, self.loss_fn = mygrad, relu, softmax_crossentropy
        self.layers = [
            (mygrad.tensor(W.astype(dtype)), mygrad.tensor(b.astype(dtype))) for W, b in weights
        ]
        self.batches = [(x.astype(dtype), y) for x, y in batches]

    def step(self, i: int) -> float:
        x, y = self.batches[i % len(self.batches)]
        for W, b in self.layers:
            W.null_grad()
            b.null_grad()
        h = x
        for k, (W, b) in enumerate(self.layers):
            h = self.mygrad.matmul(h, W.T) + b
            if k < len(self.layers) - 1:
                h = self.relu(h)
        loss = self.loss_fn(h, y)
        loss.backward()
        for W, b in self.layers:
            W.data -= LR * W.grad
            b.data -= LR * b.grad
        return loss.item()

    def weights(self) -> list[np.ndarray]:
        return [a.data.astype(np.float64) for layer in self.layers for a in layer]


class HipsAutograd:
    """HIPS autograd: a loss function of the weights, value_and_grad, a functional update."""

    name = "HIPS autograd"

    def __init__(self, weights: Weights, batches: Batches, dtype: Any) -> None:
        import autograd.numpy as anp
        from autograd import value_and_grad

        def loss_fn(layers: Any, x: Any, y: Any) -> Any:
            h = x
            for k, (W, b) in enumerate(layers):
                h = anp.dot(h, W.T) + b
                if k < len(layers) - 1:
                    h = anp.maximum(h, 0)
            shifted = h - anp.max(h, axis=1, keepdims=True)
            log_probs = shifted - anp.log(anp.sum(anp.exp(shifted), axis=1, keepdims=True))
            return -anp.mean(log_probs[anp.arange(len(y)), y])

        self.value_and_grad = value_and_grad(loss_fn)
        self.layers = [(W.astype(dtype), b.astype(dtype)) for W, b in weights]
        self.batches = [(x.astype(dtype), y) for x, y in batches]

    def step(self, i: int) -> float:
        x, y = self.batches[i % len(self.batches)]
        loss, grads = self.value_and_grad(self.layers, x, y)
        self.layers = [(W - LR * gW, b - LR * gb) for (W, b), (gW, gb) in zip(self.layers, grads)]
        return float(loss)

    def weights(self) -> list[np.ndarray]:
        return [a.astype(np.float64) for layer in self.layers for a in layer]


class ScikitLearn:
    """scikit-learn's MLPClassifier, one ``partial_fit`` call per step (plain SGD, no L2).

    Its weights are (in, out): ``coefs_[k]`` is W^T. The first ``partial_fit`` builds the
    arrays; our initial weights are then copied into them in place, where its SGD updates them.
    """

    name = "scikit-learn"

    def __init__(self, weights: Weights, batches: Batches, dtype: Any) -> None:
        from sklearn.neural_network import MLPClassifier

        widths = [weights[0][0].shape[1]] + [W.shape[0] for W, _ in weights]
        self.model = MLPClassifier(
            hidden_layer_sizes=tuple(widths[1:-1]),
            activation="relu",
            solver="sgd",
            alpha=0.0,
            batch_size=len(batches[0][1]),
            learning_rate_init=LR,
            momentum=0.0,
            nesterovs_momentum=False,
            shuffle=False,
        )
        self.batches = [(x.astype(dtype), y) for x, y in batches]
        x, y = self.batches[0]
        self.model.partial_fit(x, y, classes=np.arange(widths[-1]))
        for coef, intercept, (W, b) in zip(self.model.coefs_, self.model.intercepts_, weights):
            coef[...] = W.T  # (in, out)
            intercept[...] = b

    def step(self, i: int) -> float:
        x, y = self.batches[i % len(self.batches)]
        self.model.partial_fit(x, y)
        return float(self.model.loss_)

    def weights(self) -> list[np.ndarray]:
        pairs = zip(self.model.coefs_, self.model.intercepts_)
        return [a.astype(np.float64) for coef, intercept in pairs for a in (coef.T, intercept)]


class Micrograd:
    """micrograd: one Value per scalar (always Python floats, so float64 at every dtype).

    micrograd has no exp or log; the two small ops below add them the way its own ops are
    written (a result Value and a ``_backward`` closure).
    """

    name = "micrograd"
    max_steps_per_round = 1  # about half a second a step at the tiny size

    def __init__(self, weights: Weights, batches: Batches, dtype: Any) -> None:
        from micrograd.engine import Value
        from micrograd.nn import MLP

        self.Value = Value
        widths = [weights[0][0].shape[1]] + [W.shape[0] for W, _ in weights]
        self.model = MLP(widths[0], widths[1:])
        for layer, (W, b) in zip(self.model.layers, weights):
            for o, neuron in enumerate(layer.neurons):
                for j, w in enumerate(neuron.w):
                    w.data = float(W[o, j])
                neuron.b.data = float(b[o])
        self.batches = [(x.tolist(), y.tolist()) for x, y in batches]

    def _exp(self, v: Any) -> Any:
        out = self.Value(math.exp(v.data), (v,), "exp")

        def _backward() -> None:
            v.grad += out.data * out.grad

        out._backward = _backward
        return out

    def _log(self, v: Any) -> Any:
        out = self.Value(math.log(v.data), (v,), "log")

        def _backward() -> None:
            v.grad += out.grad / v.data

        out._backward = _backward
        return out

    def step(self, i: int) -> float:
        xs, ys = self.batches[i % len(self.batches)]
        self.model.zero_grad()
        total = self.Value(0.0)
        for x, y in zip(xs, ys):
            logits = self.model(x)
            top = max(z.data for z in logits)  # a constant shift, for a stable logsumexp
            sum_exp = sum(self._exp(z - top) for z in logits)
            total = total + self._log(sum_exp) + top - logits[y]
        loss = total * (1.0 / len(xs))
        loss.backward()
        for p in self.model.parameters():
            p.data -= LR * p.grad
        return loss.data

    def weights(self) -> list[np.ndarray]:
        arrays = []
        for layer in self.model.layers:
            arrays.append(np.array([[w.data for w in n.w] for n in layer.neurons]))
            arrays.append(np.array([n.b.data for n in layer.neurons]))
        return arrays


CONTENDERS: list[type] = [HandNumpy, Minigrad, Torch, MyGrad, HipsAutograd, ScikitLearn, Micrograd]
MODULES = {
    "torch": "torch",
    "MyGrad": "mygrad",
    "HIPS autograd": "autograd",
    "scikit-learn": "sklearn",
    "micrograd": "micrograd",
}
NOT_AT = {  # contender: (sizes it does not run at, why)
    "micrograd": (("small", "medium", "large"), "one Python object per scalar: ~10 s a step"),
    "scikit-learn": (("tiny",), "with two classes it uses one logistic output, another model"),
}


def available(only: list[str] | None) -> tuple[list[type], dict[str, str]]:
    """The contenders whose library imports; the others with the reason they are skipped."""
    chosen, skipped = [], {}
    for contender in CONTENDERS:
        if only and contender.name not in only and contender.name not in ("hand numpy", "minigrad"):
            continue
        module = MODULES.get(contender.name)
        if module is not None:
            try:
                __import__(module)
            except ImportError:
                skipped[contender.name] = f"not installed (pip install {module})"
                continue
        chosen.append(contender)
    return chosen, skipped


def runs_at(contender: type, size: str) -> bool:
    return size not in NOT_AT.get(contender.name, ((), ""))[0]


# ============================================================================= the setup


def make_problem(size: str, seed: int = 0) -> tuple[Weights, Batches]:
    """PyTorch's default Linear initialisation, Gaussian inputs, uniform class labels."""
    widths, batch = SIZES[size]
    rng = np.random.default_rng(seed)
    weights = []
    for n_in, n_out in itertools.pairwise(widths):
        bound = 1 / math.sqrt(n_in)
        weights.append(
            (rng.uniform(-bound, bound, (n_out, n_in)), rng.uniform(-bound, bound, n_out))
        )
    batches = [
        (rng.standard_normal((batch, widths[0])), rng.integers(0, widths[-1], batch))
        for _ in range(NUM_BATCHES)
    ]
    return weights, batches


def check_agreement(size: str, contenders: list[type], steps: int) -> dict[str, str]:
    """Run every contender in float64 for ``steps`` steps; compare losses and final weights.

    Returns ``{name: "ok"}`` or ``{name: what differs}``; hand numpy is the reference.
    """
    weights, batches = make_problem(size)
    runs = {c.name: c(weights, batches, np.float64) for c in contenders}
    losses = {name: [run.step(i) for i in range(steps)] for name, run in runs.items()}
    reference = runs["hand numpy"]
    verdicts = {}
    for name, run in runs.items():
        loss_ok = np.allclose(losses[name], losses["hand numpy"], rtol=1e-9, atol=0)
        weights_ok = all(
            np.allclose(a, b, rtol=1e-7, atol=1e-10)
            for a, b in zip(run.weights(), reference.weights())
        )
        if loss_ok and weights_ok:
            verdicts[name] = "ok"
        else:
            verdicts[name] = f"losses {losses[name]} vs hand numpy {losses['hand numpy']}" + (
                "" if weights_ok else "; weights differ after the steps"
            )
    return verdicts


def time_size(
    size: str, contenders: list[type], rounds: int, per_round: int, warmup: int, clock: str
) -> dict[str, list[float]]:
    weights, batches = make_problem(size)
    runs = {c.name: c(weights, batches, np.float32) for c in contenders}
    counters = {name: iter(range(10**9)) for name in runs}
    steps: dict[str, Callable[[], Any]] = {
        name: (lambda run=run, counter=counters[name]: run.step(next(counter)))
        for name, run in runs.items()
    }
    max_steps = {
        c.name: c.max_steps_per_round for c in contenders if hasattr(c, "max_steps_per_round")
    }
    return interleaved(
        steps,
        rounds=rounds,
        steps_per_round=per_round,
        warmup=warmup,
        clock=CLOCKS[clock],
        max_steps=max_steps,
    )


# ============================================================================= memory


def step_peak_bytes(contender: type, size: str, warmup: int = 5) -> int:
    """Peak traced memory of one float32 step above what was allocated before it."""
    weights, batches = make_problem(size)
    run = contender(weights, batches, np.float32)
    for i in range(warmup):
        run.step(i)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        run.step(warmup)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def memory_over_steps(contender: type, size: str, steps: int) -> dict[str, Any]:
    """Traced memory between steps, sampled over ``steps`` steps: does it stay flat?"""
    weights, batches = make_problem(size)
    run = contender(weights, batches, np.float32)
    run.step(0)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        samples = []
        every = max(steps // 10, 1)
        for i in range(1, steps + 1):
            run.step(i)
            if i % every == 0:
                samples.append(tracemalloc.get_traced_memory()[0] - base)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return {"steps": steps, "held_bytes_samples": samples, "peak_bytes": peak}


# ============================================================================= fresh processes


def fresh_child(size: str, steps: int) -> None:
    """Run in a new process: time the first ``steps`` steps of hand numpy and minigrad.

    The two alternate step by step, so both see the process equally fresh. Prints JSON.
    """
    import json

    limit_threads(THREADS)
    weights, batches = make_problem(size)
    runs = [HandNumpy(weights, batches, np.float32), Minigrad(weights, batches, np.float32)]
    times: dict[str, list[float]] = {run.name: [] for run in runs}
    for i in range(steps):
        for run in runs if i % 2 == 0 else runs[::-1]:
            start = time.perf_counter()
            run.step(i)
            times[run.name].append(time.perf_counter() - start)
    print(json.dumps(times))


def fresh_vs_long(size: str, processes: int, steps: int, long_lived: dict[str, float]):
    """Median step times over the first ``steps`` steps of ``processes`` new processes."""
    import json

    per_name: dict[str, list[float]] = {"hand numpy": [], "minigrad": []}
    ratios = []
    for _ in range(processes):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--fresh-child",
                size,
                str(steps),
                "--threads",
                str(THREADS),
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        times = json.loads(out.stdout.strip().splitlines()[-1])
        for name in per_name:
            per_name[name].append(statistics.median(times[name]))
        ratios.append(
            statistics.median(m / h for m, h in zip(times["minigrad"], times["hand numpy"]))
        )
    fresh = {name: statistics.median(values) for name, values in per_name.items()}
    return {
        "size": size,
        "fresh_processes": processes,
        "fresh_steps_each": steps,
        "fresh_median_s": fresh,
        "fresh_ratio": statistics.median(ratios),
        "long_lived_median_s": long_lived,
        "minigrad_fresh_over_long_lived": fresh["minigrad"] / long_lived["minigrad"],
        "numpy_fresh_over_long_lived": fresh["hand numpy"] / long_lived["hand numpy"],
    }


# ============================================================================= profile


def profile_step(size: str, top: int = 20) -> None:
    """cProfile minigrad's training step: where its time over hand numpy's goes."""
    import cProfile
    import pstats

    weights, batches = make_problem(size)
    run = Minigrad(weights, batches, np.float32)
    steps = {"tiny": 2000, "small": 1000, "medium": 100, "large": 5}[size]
    for i in range(min(steps, 20)):
        run.step(i)  # warm-up, outside the profile
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(steps):
        run.step(i)
    profiler.disable()
    print(f"# minigrad, {size} MLP: {steps} steps under cProfile (which slows Python code)")
    pstats.Stats(profiler).strip_dirs().sort_stats("tottime").print_stats(top)


# ============================================================================= main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats: under a minute")
    parser.add_argument("--smoke", action="store_true", help="tiny size, a few steps (tests)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for all (1)")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall time (default) or this process's CPU time, steadier on a busy machine",
    )
    parser.add_argument("--sizes", default=None, help="comma-separated: tiny,small,medium,large")
    parser.add_argument("--only", default=None, help="comma-separated contenders besides the two")
    parser.add_argument("--out", default=None, help="JSON results file")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurements")
    parser.add_argument(
        "--profile", default=None, metavar="SIZE", help="profile minigrad's step at SIZE, and stop"
    )
    parser.add_argument("--fresh-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.fresh_child:
        fresh_child(args.fresh_child[0], int(args.fresh_child[1]))
        return 0
    if args.profile:
        if args.profile not in SIZES:
            parser.error(f"unknown size {args.profile!r}: choose from {','.join(SIZES)}")
        limit_threads(THREADS)
        profile_step(args.profile)
        return 0

    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    sizes = args.sizes.split(",") if args.sizes else (["tiny"] if args.smoke else list(SIZES))
    unknown = [size for size in sizes if size not in SIZES]
    if unknown:
        parser.error(f"unknown size(s) {unknown}: choose from {','.join(SIZES)}")
    only = args.only.split(",") if args.only else None
    contenders, skipped = available(only)
    how = limit_threads(THREADS)
    # (rounds, steps per round, warm-up steps) for each size, by mode
    plan = {
        "smoke": dict.fromkeys(SIZES, (3, 2, 2)),
        "quick": {
            "tiny": (15, 40, 50),
            "small": (15, 20, 20),
            "medium": (11, 5, 5),
            "large": (9, 2, 2),
        },
        "full": {
            "tiny": (41, 100, 200),
            "small": (41, 50, 50),
            "medium": (31, 20, 20),
            "large": (15, 2, 3),
        },
    }[mode]

    print(f"# bench_mlp ({mode}, {args.clock} clock): {THREADS} BLAS thread(s), pinned by {how}")
    for name, reason in skipped.items():
        print(f"note: {name} skipped: {reason}")
    not_run = {}
    for contender in contenders:
        excluded, why = NOT_AT.get(contender.name, ((), ""))
        if any(size in excluded for size in sizes):
            here = [size for size in sizes if size in excluded]
            not_run[contender.name] = {"sizes": here, "why": why}
            print(f"note: {contender.name} not run at {', '.join(here)}: {why}")

    results: dict[str, Any] = {"mode": mode, "environment": environment(THREADS, how)}
    results["clock"] = args.clock
    results["skipped"] = skipped
    results["not_run"] = not_run
    results["sizes"] = {}
    for size in sizes:
        here = [c for c in contenders if runs_at(c, size)]
        verdicts = check_agreement(size, here, steps=2 if size == "large" else 3)
        wrong = {name: v for name, v in verdicts.items() if v != "ok"}
        for name, verdict in wrong.items():
            print(f"REFUSING to time {name} at {size}: float64 results differ: {verdict}")
        if "minigrad" in wrong:
            results["sizes"][size] = {"agreement": verdicts}
            continue
        here = [c for c in here if c.name not in wrong]
        rounds, per_round, warmup = plan[size]
        times = time_size(size, here, rounds, per_round, warmup, args.clock)
        ref = times["hand numpy"]
        results["sizes"][size] = {
            "widths": SIZES[size][0],
            "batch": SIZES[size][1],
            "agreement": verdicts,
            "median_s": {name: statistics.median(t) for name, t in times.items()},
            "ratio_to_numpy": {name: median_ratio(t, ref) for name, t in times.items()},
            "times_s": times,
        }
        ratio = results["sizes"][size]["ratio_to_numpy"]["minigrad"]
        print(f"{size}: minigrad / hand numpy = {ratio:.3f}x (target {TARGETS[size]:.2f}x)")

    if not args.no_memory and not args.smoke:
        results["memory"] = measure_memory(args.quick)
        medium = results["sizes"].get("medium")
        if medium is not None:
            results["fresh_process"] = fresh_vs_long(
                "medium",
                processes=3 if args.quick else 7,
                steps=20 if args.quick else 40,
                long_lived={n: medium["median_s"][n] for n in ("hand numpy", "minigrad")},
            )

    print()
    print(markdown_table(results))
    print(memory_lines(results))
    path = write_json(args.out, "bench_mlp.json", results)
    print(f"\nresults written to {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    # A disagreement is a failure (exit 1): the numbers beside it would mean nothing.
    return 0 if all("median_s" in entry for entry in results["sizes"].values()) else 1


def measure_memory(quick: bool) -> dict[str, Any]:
    peaks = {c.name: step_peak_bytes(c, "medium") for c in (HandNumpy, Minigrad)}
    steps = 300 if quick else 5000
    flat = {c.name: memory_over_steps(c, "medium", steps) for c in (HandNumpy, Minigrad)}
    return {
        "size": "medium",
        "step_peak_bytes": peaks,
        "peak_ratio": peaks["minigrad"] / peaks["hand numpy"],
        "over_steps": flat,
    }


def markdown_table(results: dict[str, Any]) -> str:
    names = [
        c.name
        for c in CONTENDERS
        if any(c.name in s.get("median_s", {}) for s in results["sizes"].values())
    ]
    header = "| MLP, batch | " + " | ".join(names) + " | minigrad / numpy (target) |"
    lines = [header, "|" + " --- |" * (len(names) + 2)]
    for size, entry in results["sizes"].items():
        if "median_s" not in entry:
            lines.append(f"| {size} | minigrad disagrees with hand numpy: not timed |")
            continue
        widths = "-".join(str(w) for w in entry["widths"])
        cells = []
        for name in names:
            if name not in entry["median_s"]:
                cells.append("-")
            elif name == "hand numpy":
                cells.append(format_seconds(entry["median_s"][name]))
            else:
                seconds, ratio = entry["median_s"][name], entry["ratio_to_numpy"][name]
                cells.append(f"{format_seconds(seconds)} ({ratio:.2f}x)")
        ratio = entry["ratio_to_numpy"]["minigrad"]
        lines.append(
            f"| {widths}, {entry['batch']} | "
            + " | ".join(cells)
            + f" | **{ratio:.2f}x** ({TARGETS[size]:.2f}x) |"
        )
    for name, entry in results.get("not_run", {}).items():
        lines.append(f"\n-: {name} not run at {', '.join(entry['sizes'])} ({entry['why']})")
    return "\n".join(lines)


def memory_lines(results: dict[str, Any]) -> str:
    lines = []
    memory = results.get("memory")
    if memory:
        mib = {name: peak / 2**20 for name, peak in memory["step_peak_bytes"].items()}
        lines.append(
            f"\npeak memory of one medium step: minigrad {mib['minigrad']:.2f} MiB, "
            f"hand numpy {mib['hand numpy']:.2f} MiB "
            f"({memory['peak_ratio']:.2f}x, target {MEMORY_TARGET:.2f}x)"
        )
        for name, run in memory["over_steps"].items():
            held = ", ".join(f"{b / 2**10:.0f}" for b in run["held_bytes_samples"])
            lines.append(
                f"memory held between steps over {run['steps']} steps, {name} (KiB): {held}"
            )
    fresh = results.get("fresh_process")
    if fresh:
        lines.append(
            f"medium step in fresh processes (first {fresh['fresh_steps_each']} steps): "
            f"minigrad / numpy {fresh['fresh_ratio']:.2f}x; fresh over long-lived: "
            f"minigrad {fresh['minigrad_fresh_over_long_lived']:.2f}x, "
            f"numpy {fresh['numpy_fresh_over_long_lived']:.2f}x"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
