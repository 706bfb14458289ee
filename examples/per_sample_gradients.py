"""Per-sample gradients and DP-SGD: clip each sample's gradient, add noise, train.

    python examples/per_sample_gradients.py            # two moons, well under a minute
    python examples/per_sample_gradients.py --smoke    # a few seconds
    python examples/per_sample_gradients.py --noise-multiplier 2.0 --clip 0.25

A batch's weight gradient is a sum of one outer product per sample,
``dW = delta^T X = sum_i delta_i x_i^T``. Inside ``with mg.per_sample_grads():`` backward keeps
the terms apart: ``weight.grad_sample[i] = delta_i x_i^T``. That is what differentially
private SGD needs: it bounds each sample's influence by clipping that sample's gradient to
norm ``C``, then adds Gaussian noise of std ``sigma * C`` to the sum (Abadi et al., 2016).

The norm of a rank-1 matrix needs no matrix at all: ``||delta_i x_i^T|| = ||delta_i|| ||x_i||``.
``mg.per_sample_grads(norms_only=True)`` uses that shortcut and stores ``grad_sample_norm``
without forming the ``(batch, out, in)`` array; the script checks it against the materialised
gradients and against ``||delta_i|| ||x_i||`` computed by hand, and shows "ghost clipping":
with the norms known, one more ordinary backward of ``sum_i c_i loss_i`` gives the clipped sum.

Prints ``key=value`` lines: the norm differences, ``sgd_test_accuracy`` and
``dpsgd_test_accuracy``. Writes ``per_sample_gradients.png`` (accuracy per epoch, and the
per-sample norms against the clip threshold) under ``--out``. The batches are shuffled rather
than Poisson-sampled, and no privacy budget (epsilon) is computed: this shows the mechanics,
not a privacy guarantee.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import data, nn, optim


def make_model(seed: int) -> nn.Sequential:
    """A 2-32-32-2 MLP in float64 (so the norm checks below agree to round-off)."""
    gen = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Linear(2, 32, dtype=mg.float64, generator=gen),
        nn.ReLU(),
        nn.Linear(32, 32, dtype=mg.float64, generator=gen),
        nn.ReLU(),
        nn.Linear(32, 2, dtype=mg.float64, generator=gen),
    )


def accuracy(model: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    with mg.no_grad():
        return float(np.mean(model(mg.tensor(X)).argmax(dim=1).numpy() == y))


def check_norm_shortcut(model: nn.Sequential, xb: np.ndarray, yb: np.ndarray) -> dict:
    """Each Linear weight's per-sample gradient norm, three ways; returns the differences."""
    # Run the layers one by one, keeping each Linear's input x and output y (for delta = dL/dy).
    inputs, outputs = [], []
    h = mg.tensor(xb)
    for layer in model:
        if isinstance(layer, nn.Linear):
            inputs.append(h.numpy())
            h = layer(h)
            h.retain_grad()
            outputs.append(h)
        else:
            h = layer(h)
    losses = F.cross_entropy(h, mg.tensor(yb), reduction="none")  # (B,): one loss per sample

    # 1. norms_only: each weight gets grad_sample_norm (B,), no (B, out, in) array is made.
    model.zero_grad()
    with mg.per_sample_grads(norms_only=True):
        losses.sum().backward(retain_graph=True)  # sum, not mean: sample i's own gradient
    linears = [layer for layer in model if isinstance(layer, nn.Linear)]
    shortcut = [layer.weight.grad_sample_norm for layer in linears]

    # 2. by hand: ||delta_i x_i^T||_F = ||delta_i|| ||x_i|| for the rank-1 matrix delta_i x_i^T.
    by_hand = [
        np.linalg.norm(y.grad, axis=1) * np.linalg.norm(x, axis=1)  # (B,) * (B,)
        for x, y in zip(inputs, outputs)
    ]

    # 3. materialised: grad_sample (B, out, in), then the Frobenius norm of each sample's matrix.
    model.zero_grad()
    with mg.per_sample_grads():
        losses.sum().backward()
    full = [np.linalg.norm(layer.weight.grad_sample, axis=(1, 2)) for layer in linears]
    rank_one = all(
        np.linalg.matrix_rank(g) == 1 for layer in linears for g in layer.weight.grad_sample
    )
    return {
        "norm_shortcut_max_abs_diff": max(np.abs(s - f).max() for s, f in zip(shortcut, full)),
        "norm_by_hand_max_abs_diff": max(np.abs(b - f).max() for b, f in zip(by_hand, full)),
        "largest_per_sample_norm": max(f.max() for f in full),
        "every_grad_sample_rank_one": rank_one,
    }


def clipped_sum(model: nn.Module, xb, yb, clip: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Per-sample gradients clipped to norm ``clip`` and summed: DP-SGD's signal part.

    Returns one summed array per parameter and the per-sample norms before clipping.
    """
    params = list(model.parameters())
    model.zero_grad()
    losses = F.cross_entropy(model(mg.tensor(xb)), mg.tensor(yb), reduction="none")  # (B,)
    with mg.per_sample_grads():
        losses.sum().backward()  # every parameter gets grad_sample (B, *shape)
    # A sample's norm is taken over all parameters together: sqrt(sum_p ||g_ip||^2).
    norms = nn.utils.per_sample_grad_norms(params)  # (B,)
    factor = np.minimum(1.0, clip / (norms + 1e-12))  # (B,): shrink only the long ones
    sums = []
    for p in params:
        scale = factor.reshape(-1, *[1] * p.ndim)  # (B, 1, ...) to broadcast over (B, *shape)
        sums.append((p.grad_sample * scale).sum(axis=0))  # (*shape)
    return sums, norms


def ghost_clipping_diff(model: nn.Module, xb, yb, clip: float) -> float:
    """The clipped sum without any per-sample array: norms first, then one reweighted backward.

    sum_i c_i g_i is the gradient of sum_i c_i loss_i (with c_i held fixed), so once the norms
    are known from the shortcut, an ordinary backward gives the clipped sum.
    """
    params = list(model.parameters())
    expected, _ = clipped_sum(model, xb, yb, clip)
    model.zero_grad()
    losses = F.cross_entropy(model(mg.tensor(xb)), mg.tensor(yb), reduction="none")  # (B,)
    with mg.per_sample_grads(norms_only=True):
        losses.sum().backward(retain_graph=True)
    norms = nn.utils.per_sample_grad_norms(params)  # from grad_sample_norm: no matrices
    factor = np.minimum(1.0, clip / (norms + 1e-12))
    model.zero_grad()
    (losses * mg.tensor(factor)).sum().backward()  # an ordinary backward: .grad only
    return max(float(np.abs(p.grad - e).max()) for p, e in zip(params, expected))


def train(model, X, y, X_test, y_test, args, private: bool) -> tuple[list[float], np.ndarray]:
    """SGD, or DP-SGD when ``private``.

    Returns the test accuracy after each epoch and (DP-SGD) the per-sample gradient norms,
    before clipping, seen in the last epoch.
    """
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    noise_rng = np.random.default_rng(args.seed + 1)  # the privacy noise
    order_rng = np.random.default_rng(args.seed)  # the same batches for both runs
    history: list[float] = []
    for _ in range(args.epochs):
        epoch_norms = []
        for xb, yb in data.batches(X, y, args.batch_size, seed=order_rng):
            if private:
                sums, norms = clipped_sum(model, xb, yb, args.clip)
                epoch_norms.append(norms)
                for p, s in zip(model.parameters(), sums):
                    # Gaussian noise with std sigma * C (C bounds any one sample's
                    # contribution), then the mean over the batch, as plain SGD uses.
                    noise = noise_rng.normal(0.0, args.noise_multiplier * args.clip, p.shape)
                    p.grad = (s + noise) / len(yb)
            else:
                optimizer.zero_grad()
                F.cross_entropy(model(mg.tensor(xb)), mg.tensor(yb)).backward()
            optimizer.step()
        history.append(accuracy(model, X_test, y_test))
    return history, np.concatenate(epoch_norms) if private else np.zeros(0)


def plot(path, sgd_history, dp_history, norms, clip) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_norm) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(sgd_history) + 1)
    ax_acc.plot(epochs, sgd_history, marker="o", label="SGD")
    ax_acc.plot(epochs, dp_history, marker="o", label="DP-SGD (clip + noise)")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("test accuracy")
    ax_acc.set_title("test accuracy")
    ax_acc.legend()
    ax_norm.hist(norms, bins=np.geomspace(norms.min(), norms.max(), 30), color="gray")
    ax_norm.set_xscale("log")
    ax_norm.axvline(clip, color="red", label=f"clip C = {clip:g}")
    ax_norm.set_xlabel("per-sample gradient norm (last DP-SGD epoch)")
    ax_norm.set_ylabel("samples")
    ax_norm.set_title("samples beyond C are scaled back to C")
    ax_norm.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--clip", type=float, default=0.5, help="per-sample norm bound C")
    parser.add_argument("--noise-multiplier", type=float, default=1.0, help="sigma")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a run of a few seconds")
    parser.add_argument("--out", default="runs", help="directory for the figure")
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs, args.n_samples = 8, 600

    start = time.perf_counter()
    X, y = data.make_moons(args.n_samples, noise=0.15, seed=args.seed)
    X = X.astype(np.float64)
    X_train, X_test, y_train, y_test = data.train_test_split(X, y, test_size=0.25, seed=args.seed)
    print(f"dataset=moons train={len(y_train)} test={len(y_test)}")

    # The shortcut on one batch of a fresh model: three ways to the same per-sample norms.
    checks = check_norm_shortcut(make_model(args.seed), X_train[:64], y_train[:64])
    checks["ghost_clipping_max_abs_diff"] = ghost_clipping_diff(
        make_model(args.seed), X_train[:64], y_train[:64], args.clip
    )
    for key, value in checks.items():
        print(f"{key}={value:.3e}" if isinstance(value, float) else f"{key}={value}")

    # The same model, batches and learning rate, trained both ways.
    sgd_history, _ = train(make_model(args.seed), X_train, y_train, X_test, y_test, args, False)
    dp_history, norms = train(make_model(args.seed), X_train, y_train, X_test, y_test, args, True)
    print(
        f"clip={args.clip:g} noise_multiplier={args.noise_multiplier:g} "
        f"batch_size={args.batch_size} epochs={args.epochs}"
    )
    print(f"clipped_fraction_last_epoch={np.mean(norms > args.clip):.2f}")
    print(f"sgd_test_accuracy={sgd_history[-1]:.4f}")
    print(f"dpsgd_test_accuracy={dp_history[-1]:.4f}")

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "per_sample_gradients.png")
    plot(path, sgd_history, dp_history, norms, args.clip)
    print(f"wrote={path}")
    print(f"seconds={time.perf_counter() - start:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
