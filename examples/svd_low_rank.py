"""Low rank by SVD: a matrix as a sum of k outer products, and a compressed trained layer.

    python examples/svd_low_rank.py            # a few seconds
    python examples/svd_low_rank.py --smoke    # faster still

The SVD writes any matrix M (m, n) as a sum of rank-1 matrices, largest first:

    M = U diag(s) V^T = sum_i s_i u_i v_i^T        s_1 >= s_2 >= ... >= 0

Keeping the first k terms gives M_k, built here literally as a sum of k ``np.outer``
products. Eckart-Young: no matrix of rank k is closer to M, and the errors are known in
advance from the discarded singular values,

    ||M - M_k||_F = sqrt(s_{k+1}^2 + s_{k+2}^2 + ...)        ||M - M_k||_2 = s_{k+1}.

Part 1 checks both formulas for every k on a smooth matrix plus noise, and that a rank-k
approximation from random directions is never better. Part 2 trains an MLP on scikit-learn's
bundled 8x8 digits (no download), replaces its first layer's weight W (128, 64) by W_k, stored
as two thin layers (64 -> k -> 128: ``k (64 + 128)`` numbers instead of ``64 * 128``), and
reports the test accuracy kept at each k. Prints ``key=value`` lines and writes
``svd_low_rank_error.png`` and ``svd_low_rank_layer.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import data, nn, optim

LAYER_KS = (1, 2, 4, 8, 16, 32, 64)


def example_matrix(m: int, n: int, seed: int) -> np.ndarray:
    """A smooth pattern (few large singular values) plus a little noise (many small ones)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 1, m)[:, None]  # (m, 1)
    y = np.linspace(-1, 1, n)[None, :]  # (1, n)
    smooth = np.sin(3 * x) * np.cos(2 * y) + np.exp(-((x - 0.3) ** 2 + (y + 0.2) ** 2) / 0.05)
    ridge = (np.abs(x + y) < 0.1).astype(float)  # a thin band along a diagonal: many terms
    smooth = smooth + 0.5 * np.cos(6 * (x - y)) + ridge
    return smooth + 0.05 * rng.standard_normal((m, n))


def low_rank_errors(M: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """For k = 1 .. rank: the errors of M_k, Eckart-Young's values, and random directions'."""
    U, s, Vt = np.linalg.svd(M, full_matrices=False)  # (m, r), (r,), (r, n)
    rng = np.random.default_rng(seed)
    M_k = np.zeros_like(M)
    rows = []
    for k in range(1, len(s) + 1):
        M_k += s[k - 1] * np.outer(U[:, k - 1], Vt[k - 1])  # add the k-th rank-1 term
        # Any other rank-k matrix, e.g. M projected onto k random directions, errs more.
        Qr, _ = np.linalg.qr(rng.standard_normal((M.shape[1], k)))  # (n, k), orthonormal
        random_k = M @ Qr @ Qr.T  # (m, n), rank k
        rows.append(
            (
                np.linalg.norm(M - M_k),  # Frobenius
                np.sqrt(np.sum(s[k:] ** 2)),  # Eckart-Young, Frobenius
                np.linalg.norm(M - M_k, ord=2),  # spectral (the largest singular value)
                s[k] if k < len(s) else 0.0,  # Eckart-Young, spectral
                np.linalg.norm(M - random_k),
            )
        )
    names = ("frobenius", "ey_frobenius", "spectral", "ey_spectral", "random")
    table = np.array(rows)
    return {name: table[:, i] for i, name in enumerate(names)} | {"s": s}


def load_digits_split(seed: int):
    from sklearn.datasets import load_digits  # the 8x8 digits ship inside scikit-learn

    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)  # pixels 0..16 -> 0..1
    return data.train_test_split(X, digits.target.astype(np.int64), test_size=0.3, seed=seed)


def train_mlp(X, y, *, epochs: int, seed: int) -> nn.Sequential:
    gen = np.random.default_rng(seed)
    model = nn.Sequential(
        nn.Linear(64, 128, generator=gen), nn.ReLU(), nn.Linear(128, 10, generator=gen)
    )
    optimizer = optim.Adam(model.parameters(), lr=3e-3)
    order = np.random.default_rng(seed)
    for _ in range(epochs):
        for xb, yb in data.batches(X, y, 32, seed=order):
            optimizer.zero_grad()
            F.cross_entropy(model(mg.tensor(xb)), mg.tensor(yb)).backward()
            optimizer.step()
    return model


def compress_first_layer(model: nn.Sequential, k: int) -> nn.Sequential:
    """The model with layer 0 (W: (out, in)) replaced by in -> k -> out: W_k = (U_k S_k) V_k^T."""
    first = model[0]
    W = first.weight.data.astype(np.float64)
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    down = nn.Linear(first.in_features, k, bias=False)  # weight V_k^T: (k, in)
    up = nn.Linear(k, first.out_features)  # weight U_k diag(s_k): (out, k), and the old bias
    down.weight.data[...] = Vt[:k]
    up.weight.data[...] = U[:, :k] * s[:k]  # (out, k) * (k,): column i scaled by s_i
    up.bias.data[...] = first.bias.data
    return nn.Sequential(down, up, *list(model)[1:])


def accuracy(model: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    with mg.no_grad():
        return float(np.mean(model(mg.tensor(X)).argmax(dim=1).numpy() == y))


def plot_error(path, M, errors, shown_ks) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    fig = plt.figure(figsize=(11, 4.5))
    grid = fig.add_gridspec(2, 4)
    ax = fig.add_subplot(grid[:, :2])
    last = len(s) - 1  # at k = rank the error is 0 (round-off): left out of the log plot
    ks = np.arange(1, last + 1)
    ax.semilogy(ks, errors["frobenius"][:last], "o", ms=4, label="||M - M_k||_F (k outer products)")
    ax.semilogy(ks, errors["ey_frobenius"][:last], "-", label="Eckart-Young: sqrt(sum_{i>k} s_i^2)")
    ax.semilogy(ks, errors["random"][:last], "--", label="k random directions")
    ax.set_xlabel("k (number of outer products)")
    ax.set_ylabel("Frobenius error")
    ax.set_title("error against k")
    ax.legend(fontsize=8)
    # The matrix and a few reconstructions, on one colour scale.
    limit = np.abs(M).max()
    pictures = [(M, "M")] + [
        (sum(s[j] * np.outer(U[:, j], Vt[j]) for j in range(k)), f"M_{k}") for k in shown_ks
    ]
    for cell, (matrix, title) in zip([grid[0, 2], grid[0, 3], grid[1, 2], grid[1, 3]], pictures):
        sub = fig.add_subplot(cell)
        sub.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit)
        sub.set_title(title, fontsize=9)
        sub.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_layer(path, ks, accs, params, full_params, full_acc, s) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_s) = plt.subplots(1, 2, figsize=(10, 4))
    ax_acc.semilogx(ks, accs, "o-", base=2, label="first layer as k outer products")
    ax_acc.axhline(full_acc, color="gray", ls="--", label=f"uncompressed ({full_acc:.1%})")
    for k, acc, n in zip(ks, accs, params):
        ax_acc.annotate(
            f"{n / full_params:.0%}",
            (k, acc),
            textcoords="offset points",
            xytext=(6, -12),
            ha="left",
            fontsize=8,
        )
    ax_acc.set_xlabel("k")
    ax_acc.set_ylabel("test accuracy (digits)")
    ax_acc.set_title("accuracy kept (labels: parameters of layer 1 kept)")
    ax_acc.legend(loc="lower right")
    ax_s.semilogy(np.arange(1, len(s) + 1), s, ".")
    ax_s.set_xlabel("i")
    ax_s.set_ylabel("s_i")
    ax_s.set_title("singular values of the trained W (128, 64)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="training epochs of the MLP")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a run of a few seconds")
    parser.add_argument("--out", default="runs", help="directory for the figures")
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs = 6
    start = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)

    # Part 1: a matrix rebuilt from k outer products, against Eckart-Young's error.
    M = example_matrix(60, 40, args.seed)
    errors = low_rank_errors(M, args.seed)
    fro_gap = np.abs(errors["frobenius"] - errors["ey_frobenius"]).max()
    spec_gap = np.abs(errors["spectral"] - errors["ey_spectral"]).max()
    s_first, s_last = errors["s"][0], errors["s"][-1]
    print(f"matrix_shape={M.shape[0]}x{M.shape[1]} s_1={s_first:.3f} s_min={s_last:.3e}")
    for k in (1, 2, 4, 8):
        print(
            f"k={k} frobenius_error={errors['frobenius'][k - 1]:.4e} "
            f"eckart_young={errors['ey_frobenius'][k - 1]:.4e} "
            f"random_directions={errors['random'][k - 1]:.4e}"
        )
    print(f"eckart_young_frobenius_max_abs_diff={fro_gap:.3e}")
    print(f"eckart_young_spectral_max_abs_diff={spec_gap:.3e}")
    never_better = bool(np.all(errors["random"] >= errors["frobenius"] - 1e-12))
    print(f"random_directions_never_better={never_better}")
    path = os.path.join(args.out, "svd_low_rank_error.png")
    plot_error(path, M, errors, shown_ks=(1, 4, 12))
    print(f"wrote={path}")

    # Part 2: compress a trained layer's weight the same way.
    X, X_test, y, y_test = load_digits_split(args.seed)
    model = train_mlp(X, y, epochs=args.epochs, seed=args.seed)
    full_acc = accuracy(model, X_test, y_test)
    W = model[0].weight.data.astype(np.float64)
    s = np.linalg.svd(W, compute_uv=False)
    full_params = W.size
    print(f"layer_weight_shape={W.shape[0]}x{W.shape[1]} uncompressed_test_accuracy={full_acc:.4f}")
    # Two thin layers hold k (in + out) numbers: fewer than in * out only for k < in out/(in + out).
    print(f"break_even_k={W.size / sum(W.shape):.1f}")
    accs, params = [], []
    for k in LAYER_KS:
        small = compress_first_layer(model, k)
        accs.append(accuracy(small, X_test, y_test))
        if k == min(W.shape):  # all the terms: the same function as the original layer
            with mg.no_grad():
                gap = np.abs(small(mg.tensor(X_test)).numpy() - model(mg.tensor(X_test)).numpy())
            print(f"full_rank_output_max_abs_diff={gap.max():.3e}")
        params.append(small[0].weight.numel() + small[1].weight.numel())  # k (in + out)
        W_k = small[1].weight.data.astype(np.float64) @ small[0].weight.data  # (out, k) @ (k, in)
        rel_error = np.linalg.norm(W - W_k) / np.linalg.norm(W)
        rel_eckart_young = np.sqrt(np.sum(s[k:] ** 2) / np.sum(s**2))
        print(
            f"layer_k={k} weight_params={params[-1]} fraction={params[-1] / full_params:.3f} "
            f"relative_weight_error={rel_error:.4f} eckart_young={rel_eckart_young:.4f} "
            f"test_accuracy={accs[-1]:.4f}"
        )
    path = os.path.join(args.out, "svd_low_rank_layer.png")
    plot_layer(path, LAYER_KS, accs, params, full_params, full_acc, s)
    print(f"wrote={path}")
    print(f"seconds={time.perf_counter() - start:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
