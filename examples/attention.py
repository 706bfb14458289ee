"""One head of self-attention from minigrad ops, and Q K^T as a sum of outer products.

    python examples/attention.py            # also checks every gradient against PyTorch
    python examples/attention.py --smoke    # the same, smaller

For T tokens with embeddings X (T, d_model) and projections Wq, Wk, Wv (d_model, d_head):

    Q = X Wq,  K = X Wk,  V = X Wv                      each (T, d_head)
    scores = Q K^T / sqrt(d_head)                        (T, T)
    P = softmax(scores, dim=-1)                          each row sums to 1
    out = P V                                            (T, d_head)

written with minigrad's ``@``, ``.T``, ``/`` and ``.softmax``: the same function runs on
minigrad tensors and on torch tensors. ``Q K^T`` is a sum of ``d_head`` outer products,
``sum_j Q[:, j] K[:, j]^T``: each feature dim contributes a rank-1 (T, T) matrix of query-key
agreement. The script builds it that way with ``mg.outer``, prints the largest difference to
``Q @ K.T``, checks the gradients of X, Wq, Wk and Wv against finite differences
(``mg.gradcheck``) and against ``torch.autograd`` with the same random upstream gradient
(torch is optional: without it the script says so and skips that comparison). Writes
``attention.png`` (the outer products, their sum, and the attention weights) under ``--out``.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

import minigrad as mg

INPUT_NAMES = ("X", "Wq", "Wk", "Wv")


def self_attention(X, Wq, Wk, Wv):
    """One head, no mask. Works on minigrad tensors and on torch tensors alike."""
    Q = X @ Wq  # (T, d_model) @ (d_model, d_head) -> (T, d_head)
    K = X @ Wk  # (T, d_head)
    V = X @ Wv  # (T, d_head)
    scores = Q @ K.T / math.sqrt(Q.shape[-1])  # (T, d_head) @ (d_head, T) -> (T, T)
    P = scores.softmax(dim=-1)  # (T, T): row t is how much token t attends to each token
    return P @ V  # (T, T) @ (T, d_head) -> (T, d_head)


def qk_as_outer_products(Q: mg.Tensor, K: mg.Tensor) -> tuple[mg.Tensor, list[mg.Tensor]]:
    """Q K^T built as sum_j outer(Q[:, j], K[:, j]); returns the sum and its d_head terms."""
    terms = [mg.outer(Q[:, j], K[:, j]) for j in range(Q.shape[1])]  # each (T, T), rank 1
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total, terms


def compare_with_torch(arrays: list[np.ndarray], upstream: np.ndarray) -> dict[str, float] | None:
    """Largest |minigrad - torch| of the output and of each input's gradient; None without torch."""
    try:
        import torch
    except ImportError:
        return None
    ours = [mg.tensor(a, requires_grad=True) for a in arrays]
    out = self_attention(*ours)
    out.backward(upstream)  # a random upstream gradient, never .sum()
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_t = self_attention(*theirs)
    out_t.backward(torch.from_numpy(upstream))
    diffs = {"output": float(np.abs(out.numpy() - out_t.detach().numpy()).max())}
    for name, a, b in zip(INPUT_NAMES, ours, theirs):
        diffs[name] = float(np.abs(a.grad - b.grad.numpy()).max())
    return diffs


def plot(path, terms, QK, P) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(t, f"Q[:, {j}] ⊗ K[:, {j}]") for j, t in enumerate(terms)]
    panels += [(QK, "sum = Q K^T"), (P, "softmax(Q K^T / sqrt(d))")]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.3 * len(panels), 2.8))
    limit = max(np.abs(m).max() for m, _ in panels[:-1])
    for k, (ax, (matrix, title)) in enumerate(zip(axes, panels)):
        if k < len(panels) - 1:  # same diverging colour scale for the terms and their sum
            ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit)
        else:
            ax.imshow(matrix, cmap="viridis", vmin=0)  # weights in [0, 1], rows sum to 1
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        sign = "+" if k < len(terms) - 1 else ("=" if k == len(terms) - 1 else "->")
        if k < len(panels) - 1:
            ax.text(1.08, 0.5, sign, transform=ax.transAxes, fontsize=14, va="center")
    fig.suptitle("rows: queries (tokens), columns: keys (tokens)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=8, help="sequence length T")
    parser.add_argument("--d-model", type=int, default=16)
    parser.add_argument("--d-head", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a smaller run")
    parser.add_argument("--out", default="runs", help="directory for the figure")
    args = parser.parse_args(argv)
    if args.smoke:
        args.tokens, args.d_model = 5, 8

    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    T, d_model, d_head = args.tokens, args.d_model, args.d_head
    # float64 throughout, so that every comparison below is at round-off level.
    arrays = [
        rng.standard_normal((T, d_model)),  # X: one embedding per token
        rng.standard_normal((d_model, d_head)) / math.sqrt(d_model),  # Wq
        rng.standard_normal((d_model, d_head)) / math.sqrt(d_model),  # Wk
        rng.standard_normal((d_model, d_head)) / math.sqrt(d_model),  # Wv
    ]
    X, Wq, Wk, Wv = (mg.tensor(a, requires_grad=True) for a in arrays)
    print(f"tokens={T} d_model={d_model} d_head={d_head}")

    # 1. Q K^T, once with matmul and once as d_head outer products of columns.
    Q, K = X @ Wq, X @ Wk
    QK = Q @ K.T  # (T, T)
    outer_sum, terms = qk_as_outer_products(Q, K)
    print(f"qk_outer_sum_max_abs_diff={np.abs(QK.numpy() - outer_sum.numpy()).max():.3e}")
    ranks = [str(np.linalg.matrix_rank(t.numpy())) for t in terms]
    print(f"outer_product_term_ranks={','.join(ranks)}")  # each term has rank 1
    # Gradients flow through either form alike: the same upstream gradient G, the same dL/dX.
    G = rng.standard_normal((T, T))
    QK.backward(G, retain_graph=True)
    grad_matmul = X.grad.copy()
    X.grad = None
    outer_sum.backward(G, retain_graph=True)
    print(f"qk_outer_sum_grad_max_abs_diff={np.abs(X.grad - grad_matmul).max():.3e}")

    # 2. The attention head itself.
    out = self_attention(X, Wq, Wk, Wv)
    with mg.no_grad():
        P = (QK / math.sqrt(d_head)).softmax(dim=-1).numpy()
    print(f"output_shape={out.shape[0]}x{out.shape[1]}")
    print(f"attention_rows_sum_to_one={np.allclose(P.sum(1), 1)}")

    # 3. Every input's gradient against central finite differences (no torch needed) ...
    checked = mg.gradcheck(self_attention, (X, Wq, Wk, Wv), raise_exception=False)
    print(f"gradcheck={'passed' if checked else 'FAILED'}")

    # ... and against torch.autograd on the same expression and upstream gradient.
    upstream = rng.standard_normal((T, d_head))
    diffs = compare_with_torch(arrays, upstream)
    agree = True
    if diffs is None:
        print("torch is not installed: skipping the comparison with torch.autograd")
        print("torch_check=skipped")
    else:
        for name, value in diffs.items():
            label = "output" if name == "output" else f"grad_{name}"
            print(f"torch_max_abs_diff_{label}={value:.3e}")
        agree = max(diffs.values()) < 1e-10
        print(f"torch_check={'agree' if agree else 'DISAGREE'}")

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "attention.png")
    plot(path, [t.numpy() for t in terms], QK.numpy(), P)
    print(f"wrote={path}")
    print(f"seconds={time.perf_counter() - start:.1f}")
    return 0 if checked and agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
