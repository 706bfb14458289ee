"""See the outer product that every dense layer's weight gradient is made of.

    python examples/outer_product_visualizer.py                      # a = [1, 2, 3], b = [4, 5]
    python examples/outer_product_visualizer.py --a 1,-2,3 --b 4,5,6
    python examples/outer_product_visualizer.py --a=-1,2 --b 3   # "=" before a leading minus
    python examples/outer_product_visualizer.py --interactive        # sliders for each entry

For one sample, ``nn.Linear``'s backward computes ``dW = delta x^T = np.outer(delta, x)``.
The outer product ``a ⊗ b = a b^T`` of an (m,) and an (n,) vector is an (m, n) matrix with
``M[i, j] = a_i * b_j``: every row is a multiple of ``b``, so the matrix has rank 1. The dot
product of two equal-length vectors, by contrast, is one number: the sum of ``a_i * b_i``.

Prints the dot product and the outer product side by side (each computed with minigrad and
with numpy) and writes ``outer_product.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import minigrad as mg


def parse_vector(text: str) -> list[float]:
    """The text "1,2,3" -> [1.0, 2.0, 3.0]."""
    try:
        values = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("a vector needs at least one number")
    return values


def side_by_side(left: list[str], right: list[str], gap: int = 6) -> str:
    """Two blocks of text lines as two columns."""
    width = max(len(line) for line in left) + gap
    rows = max(len(left), len(right))
    left = left + [""] * (rows - len(left))
    right = right + [""] * (rows - len(right))
    return "\n".join((a.ljust(width) + b).rstrip() for a, b in zip(left, right))


def dot_versus_outer(a: list[float], b: list[float]) -> str:
    """The two products of a pair of vectors, each from minigrad and from numpy."""
    ta = mg.tensor(a, dtype=mg.float64)
    tb = mg.tensor(b, dtype=mg.float64)

    # The outer product exists for any two vectors: shape (m, n).
    outer_mg = mg.outer(ta, tb).numpy()
    outer_np = np.outer(a, b)
    assert np.allclose(outer_mg, outer_np)
    right = [f"outer product a ⊗ b: a matrix {outer_np.shape}", "minigrad mg.outer(a, b):"]
    right += ["  " + line for line in str(outer_mg).splitlines()]
    right += ["numpy np.outer(a, b):"]
    right += ["  " + line for line in str(outer_np).splitlines()]

    # The dot product needs equal lengths: sum_i a_i b_i, one number.
    if len(a) == len(b):
        dot_mg = mg.dot(ta, tb).item()
        dot_np = float(np.dot(a, b))
        assert np.isclose(dot_mg, dot_np)
        # the dot product is the trace of the outer product: the sum of its diagonal
        left = [
            "dot product a · b: a scalar",
            f"minigrad mg.dot(a, b): {dot_mg:g}",
            f"numpy    np.dot(a, b): {dot_np:g}",
            f"= trace(a ⊗ b) = {np.trace(outer_np):g}",
        ]
    else:
        # mg.dot(a, b) raises RuntimeError here, as np.dot raises ValueError.
        # A vector always has a dot product with itself: its squared length.
        left = [
            "dot product a · b: a scalar",
            f"undefined here: {len(a)} vs {len(b)} entries",
            "(mg.dot raises RuntimeError)",
            "with equal lengths, e.g. a · a:",
            f"minigrad mg.dot(a, a): {mg.dot(ta, ta).item():g}",
            f"numpy    np.dot(a, a): {float(np.dot(a, a)):g}",
        ]
    return side_by_side(left, right)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=parse_vector, default=[1.0, 2.0, 3.0], help="e.g. 1,2,3")
    parser.add_argument("--b", type=parse_vector, default=[4.0, 5.0], help="e.g. 4,5")
    parser.add_argument("--out", default="runs", help="directory for outer_product.png")
    parser.add_argument("--interactive", action="store_true", help="sliders, in a window")
    parser.add_argument("--smoke", action="store_true", help="quick check: no window, exit 0")
    args = parser.parse_args(argv)
    interactive = args.interactive and not args.smoke

    import matplotlib

    if not interactive:
        matplotlib.use("Agg")  # files only: no window, works without a display

    print(f"a = {args.a}\nb = {args.b}\n")
    print(dot_versus_outer(args.a, args.b))

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "outer_product.png")
    # a as a column, b as a row, a ⊗ b between them, and each row drawn as a multiple of b
    fig = mg.viz.plot_outer(args.a, args.b, path, interactive=interactive)
    drawn = next(ax.images[0].get_array() for ax in fig.axes if ax.get_label() == "outer")
    assert np.allclose(drawn, np.outer(args.a, args.b))  # the picture shows a ⊗ b
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
