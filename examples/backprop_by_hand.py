"""Backprop by hand: one sample through a 2-layer network, every backward step printed.

    python examples/backprop_by_hand.py             # prints the steps, checks them, draws dW
    python examples/backprop_by_hand.py --seed 3    # other weights

The network and its forward pass, for one sample x (3,) of class y:

    z1 = W1 x + b1        fc1 = Linear(3, 4), W1 (4, 3)
    h  = relu(z1)
    z2 = W2 h + b2        fc2 = Linear(4, 2), W2 (2, 4): the logits
    L  = -log softmax(z2)[y]

Its backward, written out with numpy alone, from the loss down:

    delta2 = dL/dz2 = softmax(z2) - onehot(y)
    fc2:  dW2 = np.outer(delta2, h),   db2 = delta2,   dL/dh = W2^T delta2
    relu: delta1 = dL/dz1 = dL/dh * (z1 > 0)
    fc1:  dW1 = np.outer(delta1, x),   db1 = delta1,   dL/dx = W1^T delta1

Each Linear's weight gradient is the outer product of what came back into its output
(``delta``) with what came into its input (``x``): ``dW = delta x^T``, a rank-1 matrix.

The same network then runs in minigrad (``loss.backward()``, traced with ``mg.debug.trace``,
which also records the ``delta`` and ``x`` each LinearBackward used) and in PyTorch from the
same weights; every number computed by hand is compared with minigrad's ``.grad`` and torch's
(torch is optional: without it the script says so and compares with minigrad only). Prints
``minigrad_check=agree``, ``torch_check=agree`` (or ``skipped``) and one agreement line;
writes ``backprop_by_hand_fc1.png`` and ``backprop_by_hand_fc2.png``, the picture of each
``dW = delta x^T``, under ``--out``.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn

TOLERANCE = 1e-12  # float64 everywhere: the three computations agree to round-off


def show(name: str, value: np.ndarray, note: str = "") -> None:
    """Print a named vector or matrix, matrices on their own lines."""
    value = np.asarray(value, dtype=np.float64) + 0.0  # + 0.0 turns -0.0 into 0.0
    text = np.array2string(value, precision=4, suppress_small=True, floatmode="fixed")
    head = f"  {name} {value.shape}"
    if value.ndim <= 1:
        print(f"{head:<30} = {text}  {note}".rstrip())
    else:
        print(f"{head} = {note}".rstrip())
        for line in text.splitlines():
            print("      " + line)


class TwoLayer(nn.Module):
    """fc1 -> ReLU -> fc2, in float64."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3, 4, dtype=mg.float64)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(4, 2, dtype=mg.float64)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def make_problem(seed: int):
    """Readable numbers: one sample x, its class y, and weights rounded to one decimal."""
    rng = np.random.default_rng(seed)
    x = np.array([1.0, -2.0, 0.5])
    y = 1
    weights = {
        "fc1.weight": np.round(rng.uniform(-1, 1, (4, 3)), 1),
        "fc1.bias": np.round(rng.uniform(-0.5, 0.5, 4), 1),
        "fc2.weight": np.round(rng.uniform(-1, 1, (2, 4)), 1),
        "fc2.bias": np.round(rng.uniform(-0.5, 0.5, 2), 1),
    }
    return x, y, weights


def by_hand(x: np.ndarray, y: int, w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Forward and backward with numpy alone, printing each step."""
    W1, b1, W2, b2 = w["fc1.weight"], w["fc1.bias"], w["fc2.weight"], w["fc2.bias"]
    print("forward")
    z1 = W1 @ x + b1  # (4, 3) @ (3,) -> (4,)
    show("z1 = W1 x + b1", z1)
    h = np.maximum(z1, 0.0)  # (4,)
    show("h = relu(z1)", h)
    z2 = W2 @ h + b2  # (2, 4) @ (4,) -> (2,)
    show("z2 = W2 h + b2", z2, "(the logits)")
    p = np.exp(z2 - z2.max()) / np.exp(z2 - z2.max()).sum()  # (2,), shifted for stability
    show("p = softmax(z2)", p)
    loss = -np.log(p[y])
    print(f"  {'L = -log p[y]':<28} = {loss:.4f}  (y = {y})")

    print("\nbackward, from the loss down")
    print("  step 1  cross-entropy of softmax: dL/dz2 = p - onehot(y)")
    delta2 = p - np.eye(len(p))[y]  # (2,)
    show("delta2 = dL/dz2", delta2)
    print("  step 2  fc2 (a Linear): its x is h, its delta is delta2")
    show("x of fc2 = h", h)
    dW2 = np.outer(delta2, h)  # (2,) x (4,) -> (2, 4): delta x^T
    show("dW2 = np.outer(delta2, h)", dW2, "rank 1: every row is a multiple of h")
    db2 = delta2  # (2,)
    show("db2 = delta2", db2)
    dh = W2.T @ delta2  # (4, 2) @ (2,) -> (4,): delta sent back through W2
    show("dL/dh = W2^T delta2", dh)
    print("  step 3  relu: the gradient passes where z1 > 0 and stops where it is not")
    show("z1 > 0", (z1 > 0).astype(float))
    delta1 = dh * (z1 > 0)  # (4,)
    show("delta1 = dL/dz1", delta1)
    print("  step 4  fc1 (a Linear): its x is the input x, its delta is delta1")
    show("x of fc1 = x", x)
    dW1 = np.outer(delta1, x)  # (4,) x (3,) -> (4, 3): delta x^T
    show("dW1 = np.outer(delta1, x)", dW1, "rank 1: every row is a multiple of x")
    db1 = delta1  # (4,)
    show("db1 = delta1", db1)
    dx = W1.T @ delta1  # (3, 4) @ (4,) -> (3,)
    show("dL/dx = W1^T delta1", dx)
    return {
        "loss": np.asarray(loss),
        "delta2": delta2,
        "x of fc2": h,
        "fc2.weight.grad": dW2,
        "fc2.bias.grad": db2,
        "delta1": delta1,
        "x of fc1": x,
        "fc1.weight.grad": dW1,
        "fc1.bias.grad": db1,
        "x.grad": dx,
    }


def with_minigrad(model: TwoLayer, x: np.ndarray, y: int) -> dict[str, np.ndarray]:
    """The same numbers from minigrad's engine: .grad, retained grads, and the Linear records."""
    xt = mg.tensor(x, requires_grad=True, name="x")
    z1 = model.fc1(xt)
    z1.retain_grad()
    z2 = model.fc2(model.act(z1))
    z2.retain_grad()
    loss = F.cross_entropy(z2, mg.tensor(y))
    with mg.debug.trace() as steps:  # records every backward step and each Linear's delta, x
        loss.backward()
    print("\nminigrad's engine ran these backward steps (loss.backward() under mg.debug.trace):")
    print("  " + str(steps).replace("\n", "\n  "))
    fc1 = mg.debug.last_linear_backward(model.fc1)
    fc2 = mg.debug.last_linear_backward(model.fc2)
    assert fc1 is not None and fc2 is not None  # both ran inside the trace
    return {
        "loss": loss.numpy(),
        "delta2": z2.grad,
        "x of fc2": fc2.x[0],  # the record is batched: (1, in) for one sample
        "fc2.weight.grad": model.fc2.weight.grad,
        "fc2.bias.grad": model.fc2.bias.grad,
        "delta1": z1.grad,
        "x of fc1": fc1.x[0],
        "fc1.weight.grad": model.fc1.weight.grad,
        "fc1.bias.grad": model.fc1.bias.grad,
        "x.grad": xt.grad,
        # what LinearBackward itself saw as delta, and the outer product it formed
        "delta2 (seen by LinearBackward)": fc2.delta[0],
        "delta1 (seen by LinearBackward)": fc1.delta[0],
    }


def with_torch(x: np.ndarray, y: int, weights: dict[str, np.ndarray]):
    """The same numbers from torch.autograd, or None when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    twin = torch.nn.ModuleDict(
        {"fc1": torch.nn.Linear(3, 4), "fc2": torch.nn.Linear(4, 2)}
    ).double()
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    xt = torch.tensor(x, requires_grad=True)
    z1 = twin["fc1"](xt)
    z1.retain_grad()
    h = torch.relu(z1)
    z2 = twin["fc2"](h)
    z2.retain_grad()
    loss = torch.nn.functional.cross_entropy(z2, torch.tensor(y))
    loss.backward()
    return {
        "loss": loss.detach().numpy(),
        "delta2": z2.grad.numpy(),
        "x of fc2": h.detach().numpy(),
        "fc2.weight.grad": twin["fc2"].weight.grad.numpy(),
        "fc2.bias.grad": twin["fc2"].bias.grad.numpy(),
        "delta1": z1.grad.numpy(),
        "x of fc1": xt.detach().numpy(),
        "fc1.weight.grad": twin["fc1"].weight.grad.numpy(),
        "fc1.bias.grad": twin["fc1"].bias.grad.numpy(),
        "x.grad": xt.grad.numpy(),
    }


def draw(model: TwoLayer, out: str) -> list[str]:
    """Each layer's dW = delta x^T as a picture (``mg.viz.plot_outer``), from the delta and x
    its LinearBackward used in the traced backward."""
    os.makedirs(out, exist_ok=True)
    paths = []
    for name in ("fc1", "fc2"):
        record = mg.debug.last_linear_backward(getattr(model, name))
        assert record is not None
        path = os.path.join(out, f"backprop_by_hand_{name}.png")
        fig = mg.viz.plot_outer(record.delta[0], record.x[0])
        for ax in fig.axes:  # plot_outer draws a ⊗ b; here a is delta and b is x
            ax.set_title({"a": "a = delta", "b": "b = x"}.get(ax.get_title(), ax.get_title()))
        fig.suptitle(f"{name}: dW = np.outer(delta, x), delta on the left, x on top")
        fig.savefig(path, dpi=80)
        paths.append(path)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="seed for the (rounded) weights")
    parser.add_argument("--out", default="runs", help="directory for the pictures")
    parser.add_argument("--smoke", action="store_true", help="accepted; the script is fast")
    args = parser.parse_args(argv)

    x, y, weights = make_problem(args.seed)
    print("one sample through fc1 = Linear(3, 4) -> ReLU -> fc2 = Linear(4, 2), float64")
    show("x", x)
    print(f"  y = {y}")
    for name, value in weights.items():
        show(name, value)
    print()

    hand = by_hand(x, y, weights)

    model = TwoLayer()
    model.load_state_dict(weights)  # the same weights in minigrad
    ours = with_minigrad(model, x, y)
    ours_seen = {
        "delta2": ours.pop("delta2 (seen by LinearBackward)"),
        "delta1": ours.pop("delta1 (seen by LinearBackward)"),
    }
    theirs = with_torch(x, y, weights)

    print("\nthe hand computation against minigrad and torch (largest |difference|)")
    print(f"  {'quantity':<18} {'minigrad':>10} {'torch':>10}")
    worst_minigrad = worst_torch = 0.0
    for name, value in hand.items():
        diff = float(np.max(np.abs(ours[name] - value)))
        if name in ours_seen:  # the delta LinearBackward received is the one computed by hand
            diff = max(diff, float(np.max(np.abs(ours_seen[name] - value))))
        worst_minigrad = max(worst_minigrad, diff)
        torch_text = "-"
        if theirs is not None:
            torch_diff = float(np.max(np.abs(theirs[name] - value)))
            worst_torch = max(worst_torch, torch_diff)
            torch_text = f"{torch_diff:.1e}"
        print(f"  {name:<18} {diff:>10.1e} {torch_text:>10}")

    minigrad_agrees = worst_minigrad < TOLERANCE
    print(f"max_abs_diff_minigrad={worst_minigrad:.3e}")
    print(f"minigrad_check={'agree' if minigrad_agrees else 'DISAGREE'}")
    torch_agrees = True
    if theirs is None:
        print("torch is not installed: skipping the comparison with torch.autograd")
        print("torch_check=skipped")
    else:
        torch_agrees = worst_torch < TOLERANCE
        print(f"max_abs_diff_torch={worst_torch:.3e}")
        print(f"torch_check={'agree' if torch_agrees else 'DISAGREE'}")

    against = "minigrad's .grad" + (" and torch's" if theirs is not None else "")
    if minigrad_agrees and torch_agrees:
        print(
            f"AGREEMENT: every delta, x and dW = np.outer(delta, x) computed by hand matches "
            f"{against} (to {TOLERANCE:g})"
        )
    else:
        print(f"DISAGREEMENT: the hand computation does not match {against}")

    for path in draw(model, args.out):
        print(f"wrote={path}")
    return 0 if minigrad_agrees and torch_agrees else 1


if __name__ == "__main__":
    raise SystemExit(main())
