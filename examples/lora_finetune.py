"""LoRA: adapt a trained MLP to a shifted task by learning a sum of a few outer products.

    python examples/lora_finetune.py            # digits, then the same digits rotated 90 degrees
    python examples/lora_finetune.py --smoke    # a few seconds

A model is pretrained on scikit-learn's bundled 8x8 digits (no download). The new task is the
same digits rotated by 90 degrees, which the pretrained model mostly gets wrong. Instead of
retraining every weight, ``nn.LoRALinear`` freezes each Linear's ``W`` and learns
``B (out, rank)`` and ``A (rank, in)``, so the layer's weight becomes

    W + (alpha/rank) B A = W + (alpha/rank) sum_{r < rank} B[:, r] A[r, :]^T,

a sum of ``rank`` outer products added to the frozen one: a matrix of rank ``rank``, with
``rank * (in + out)`` trainable numbers instead of ``in * out``.

The script reports, for rank 1, 2 and 4 and for full fine-tuning, the trainable parameters
and the accuracy on the rotated test split (and the pretrained model's, before adaptation);
then the singular values of each learned update ``(alpha/rank) B A``: exactly ``rank`` of
them are nonzero, the others are round-off. Prints ``key=value`` lines and writes
``lora_finetune.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import data, nn, optim

RANKS = (1, 2, 4)


def load_tasks(seed: int):
    """(train, test) splits of the original digits and of the same digits rotated 90 degrees."""
    from sklearn.datasets import load_digits  # the 8x8 digits ship inside scikit-learn

    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)  # pixels 0..16 -> 0..1
    y = digits.target.astype(np.int64)
    X_rot = np.rot90(X.reshape(-1, 8, 8), k=1, axes=(1, 2)).reshape(-1, 64).copy()
    # One split of the sample indices, used for both tasks.
    idx_train, idx_test, _, _ = data.train_test_split(
        np.arange(len(y)), y, test_size=0.3, seed=seed
    )
    original = (X[idx_train], y[idx_train], X[idx_test], y[idx_test])
    rotated = (X_rot[idx_train], y[idx_train], X_rot[idx_test], y[idx_test])
    return original, rotated


def make_mlp(seed: int) -> nn.Sequential:
    gen = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Linear(64, 128, generator=gen), nn.ReLU(), nn.Linear(128, 10, generator=gen)
    )


def accuracy(model: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    with mg.no_grad():
        return float(np.mean(model(mg.tensor(X)).argmax(dim=1).numpy() == y))


def fit(model: nn.Module, X, y, *, epochs: int, lr: float, seed: int) -> None:
    """Adam on the parameters that require grad (LoRA's A and B only, when wrapped)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = optim.Adam(trainable, lr=lr)
    order = np.random.default_rng(seed)
    for _ in range(epochs):
        for xb, yb in data.batches(X, y, 32, seed=order):
            optimizer.zero_grad()
            F.cross_entropy(model(mg.tensor(xb)), mg.tensor(yb)).backward()
            optimizer.step()


def with_lora(pretrained: nn.Sequential, rank: int, seed: int) -> nn.Sequential:
    """A copy of ``pretrained`` with every Linear wrapped in a LoRALinear (base frozen)."""
    model = make_mlp(seed)
    model.load_state_dict(pretrained.state_dict())  # a copy: the pretrained model stays intact
    gen = np.random.default_rng(seed)
    # alpha = rank makes the scaling alpha/rank 1, so the ranks differ in nothing else.
    layers = [
        nn.LoRALinear(layer, rank, alpha=float(rank), generator=gen)
        if isinstance(layer, nn.Linear)
        else layer
        for layer in model
    ]
    return nn.Sequential(*layers)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def plot(path, names, params, accs, before, spectra) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_sv) = plt.subplots(1, 2, figsize=(11, 4))
    bars = ax_acc.bar(names, accs, color=["C0"] * len(RANKS) + ["C1"])
    for bar, n in zip(bars, params):
        ax_acc.text(
            bar.get_x() + bar.get_width() / 2,
            bar.get_height() + 0.01,
            f"{n} params",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax_acc.axhline(before, color="red", ls="--", label=f"before adaptation ({before:.0%})")
    ax_acc.set_ylim(0, 1.08)
    ax_acc.set_ylabel("test accuracy, rotated digits")
    ax_acc.set_title("accuracy and trainable parameters")
    ax_acc.legend(loc="upper left")
    for rank, values in spectra.items():  # the first layer's update, largest singular values
        ax_sv.semilogy(
            np.arange(1, len(values) + 1),
            np.maximum(values, 1e-18),
            marker="o",
            label=f"rank {rank}",
        )
    ax_sv.set_ylabel("singular value of (alpha/rank) B A")
    ax_sv.set_title("layer 0 update: rank nonzero singular values", fontsize=10)
    ax_sv.set_xlabel("index (exact zeros drawn at 1e-18)")
    ax_sv.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-epochs", type=int, default=20)
    parser.add_argument("--adapt-epochs", type=int, default=40)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a run of a few seconds")
    parser.add_argument("--out", default="runs", help="directory for the figure")
    args = parser.parse_args(argv)
    if args.smoke:
        args.pretrain_epochs, args.adapt_epochs = 8, 10

    start = time.perf_counter()
    (X, y, X_test, y_test), (Xr, yr, Xr_test, yr_test) = load_tasks(args.seed)

    # 1. Pretrain on the original digits.
    pretrained = make_mlp(args.seed)
    fit(pretrained, X, y, epochs=args.pretrain_epochs, lr=args.lr, seed=args.seed)
    before = accuracy(pretrained, Xr_test, yr_test)
    print(f"pretrained_test_accuracy={accuracy(pretrained, X_test, y_test):.4f}")
    print(f"before_adaptation_rotated_test_accuracy={before:.4f}")

    # 2. Adapt to the rotated digits: LoRA at each rank, and full fine-tuning for reference.
    n_full = count(pretrained)  # every weight and bias: what full fine-tuning trains
    names, params, accs, adapted = [], [], [], {}
    for rank in RANKS:
        model = with_lora(pretrained, rank, args.seed)
        fit(model, Xr, yr, epochs=args.adapt_epochs, lr=args.lr, seed=args.seed)
        adapted[rank] = model
        names.append(f"LoRA r={rank}")
        params.append(count(model))
        accs.append(accuracy(model, Xr_test, yr_test))
        print(
            f"lora_rank={rank} trainable_params={params[-1]} "
            f"fraction_of_full={params[-1] / n_full:.3f} test_accuracy={accs[-1]:.4f}"
        )
    full = make_mlp(args.seed)
    full.load_state_dict(pretrained.state_dict())
    fit(full, Xr, yr, epochs=args.adapt_epochs, lr=args.lr, seed=args.seed)
    names.append("full fine-tune")
    params.append(count(full))
    accs.append(accuracy(full, Xr_test, yr_test))
    print(f"full_finetune_trainable_params={params[-1]} full_finetune_test_accuracy={accs[-1]:.4f}")

    # 3. Each learned update (alpha/rank) B A is a sum of `rank` outer products B[:, r] A[r]^T:
    #    its singular values have exactly `rank` nonzero entries (float64, so the rest are ~1e-16).
    spectra, outer_gap, merged_gap = {}, 0.0, 0.0
    for rank, model in adapted.items():
        for index, layer in enumerate(m for m in model if isinstance(m, nn.LoRALinear)):
            B, A = layer.B.data.astype(np.float64), layer.A.data.astype(np.float64)
            update = layer.scaling * B @ A  # (out, rank) @ (rank, in) -> (out, in)
            outer_sum = sum(layer.scaling * np.outer(B[:, r], A[r]) for r in range(rank))
            outer_gap = max(outer_gap, np.abs(update - outer_sum).max())  # the same matrix
            merged = layer.merged_weight() - layer.base.weight.data  # float32: W + update - W
            merged_gap = max(merged_gap, np.abs(merged - update).max())
            s = np.linalg.svd(update, compute_uv=False)
            nonzero = int(np.sum(s > s[0] * 1e-10))
            if index == 0:
                spectra[rank] = s[:8]
            shown = " ".join(f"{v:.2e}" for v in s[: rank + 2])
            print(
                f"lora_rank={rank} layer={index} nonzero_singular_values={nonzero} "
                f"singular_values=[{shown} ...]"
            )

    print(f"outer_sum_max_abs_diff={outer_gap:.3e}")  # B A against sum_r outer(B[:, r], A[r])
    print(f"merged_weight_max_abs_diff={merged_gap:.3e}")  # merged_weight() - W against B A
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "lora_finetune.png")
    plot(path, names, params, accs, before, spectra)
    print(f"wrote={path}")
    print(f"seconds={time.perf_counter() - start:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
