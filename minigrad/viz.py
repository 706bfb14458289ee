"""Pictures of backprop: the graph as Graphviz DOT, and the outer product behind ``dW``.

- :func:`to_dot` turns a tensor's graph into Graphviz DOT text (no dependency);
  :func:`draw_graph` renders it with the ``graphviz`` package and Graphviz's ``dot``.
- :func:`plot_outer` draws ``a ⊗ b``: ``a`` as a column on the left, ``b`` as a row on top,
  the matrix ``a_i * b_j`` between them, and beside it each row as a scaled copy of ``b``.
- :func:`plot_weight_gradient` draws a Linear layer's weight gradient the same way:
  ``delta^T`` on the left, ``X`` on top, ``dW = delta^T X`` between, and the rank-1
  per-sample matrices ``delta_b x_b^T`` that add up to it.

matplotlib is optional (``pip install matplotlib``): it is imported inside the plotting
functions only, so ``import minigrad`` never needs it. Without a display (or with
``MPLBACKEND=Agg``) the plots are written as PNG files.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from minigrad import debug
from minigrad.autograd import AccumulateGrad, Node
from minigrad.nn.parameter import Parameter
from minigrad.tensor import Tensor

# ============================================================================= the graph as DOT


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def to_dot(tensor: Tensor, *, title: str | None = None) -> str:
    """Graphviz DOT text for the graph that made ``tensor``, drawn in the forward direction.

    Boxes are ops (their ``grad_fn`` names, ``LinearBackward``), ellipses are tensors:
    ``tensor`` itself, each leaf that requires grad (parameters filled blue and labelled
    ``parameter``, with their names, ``fc1.weight``), and in grey the inputs that need no
    gradient. Every edge is labelled with the shape of the tensor it carries (and its name,
    when that tensor is still alive and has one). Inside ``mg.detect_anomaly()`` each op
    box also shows the line of code that created it. Call it before ``backward`` (or use
    ``retain_graph=True``): backward frees the graph's links. No dependency: the result is
    plain text, for :func:`draw_graph` or any Graphviz viewer.
    """
    lines = [
        "digraph minigrad {",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    if title:
        lines.append(f"  label={_quote(title)}; labelloc=t;")
    ids: dict[int, str] = {}

    def tensor_node(t: Tensor, fallback: str) -> str:
        if id(t) in ids:
            return ids[id(t)]
        node_id = ids[id(t)] = f"t{len(ids)}"
        label = f"{t.name or fallback}\n{_shape(t.shape)} {t.dtype}"
        if isinstance(t, Parameter):
            style = 'style=filled, fillcolor="#cfe2ff"'
            label = "parameter " + label
        elif t.requires_grad:
            style = 'style=filled, fillcolor="#fff3cd"'
        else:
            style = 'style=filled, fillcolor="#eeeeee"'
        lines.append(f"  {node_id} [label={_quote(label)}, shape=ellipse, {style}];")
        return node_id

    root = tensor.grad_fn
    out_id = tensor_node(tensor, "output")
    if root is None:
        lines.append("}")
        return "\n".join(lines) + "\n"

    def op_node(node: Node) -> str:
        if id(node) in ids:
            return ids[id(node)]
        node_id = ids[id(node)] = f"n{len(ids)}"
        label = node.name() + (" (freed by backward)" if node.freed else "")
        site = debug.created_at(node)
        if site is not None:
            label += f"\nline {site.lineno}: {site.code[:40]}"
        lines.append(f'  {node_id} [label={_quote(label)}, shape=box, style="rounded"];')
        return node_id

    lines.append(f"  {op_node(root)} -> {out_id} [label={_quote(_shape(tensor.shape))}];")
    stack: list[Node] = [root]
    done: set[int] = set()
    constants = 0
    while stack:
        node = stack.pop()
        if id(node) in done:
            continue
        done.add(id(node))
        target = op_node(node)
        for i, ((child, index), meta) in enumerate(zip(node.next_functions, node._input_meta)):
            if meta is None:
                continue  # a non-tensor argument
            label = _quote(_shape(meta[0]))
            if child is None:
                source = f"c{constants}"
                constants += 1
                text = f"input {i}\n{_shape(meta[0])} (no grad)"
                lines.append(
                    f"  {source} [label={_quote(text)}, shape=ellipse, style=filled, "
                    'fillcolor="#eeeeee"];'
                )
            elif isinstance(child, AccumulateGrad):
                source = tensor_node(child.variable, f"leaf {i}")
            else:
                source = op_node(child)
                label = _quote(_edge_label(child, index))
                stack.append(child)
            lines.append(f"  {source} -> {target} [label={label}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _edge_label(node: Node, index: int) -> str:
    """The shape of ``node``'s output ``index``, with its name when it has one (``h (4, 8)``)."""
    shape = _shape(node._output_meta[index][0])
    outputs = node.output_tensors()
    tensor = outputs[index] if index < len(outputs) else None
    return f"{tensor.name} {shape}" if tensor is not None and tensor.name else shape


_GRAPHVIZ_HELP = (
    "draw_graph needs the `graphviz` Python package and Graphviz's `dot` program. Install "
    "both: `pip install graphviz`, and Graphviz itself (`apt install graphviz` on "
    "Debian/Ubuntu, `brew install graphviz` on macOS, `conda install graphviz`, or "
    "https://graphviz.org/download/). Without them, mg.viz.to_dot(tensor) returns the DOT "
    "text, which any Graphviz viewer can render."
)


def draw_graph(tensor: Tensor, path: str | Path, *, title: str | None = None) -> Path:
    """Render :func:`to_dot`'s picture of ``tensor``'s graph to ``path`` (``.svg``, ``.png``
    or ``.pdf``, from the suffix) with Graphviz; returns the path.

    Raises ``ImportError`` (the ``graphviz`` package is missing) or ``RuntimeError`` (the
    ``dot`` program is missing), saying what to install.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png", "pdf"):
        raise ValueError(f"draw_graph: path must end in .svg, .png or .pdf, got {str(path)!r}")
    try:
        import graphviz
    except ImportError:
        message = f"the `graphviz` Python package is not installed. {_GRAPHVIZ_HELP}"
        raise ImportError(message) from None
    if shutil.which("dot") is None:
        raise RuntimeError(f"Graphviz's `dot` program is not on PATH. {_GRAPHVIZ_HELP}")
    image = graphviz.Source(to_dot(tensor, title=title)).pipe(format=fmt)
    path.write_bytes(image)
    return path


# ============================================================================= matplotlib helpers


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "the minigrad.viz plots need matplotlib: pip install matplotlib "
            "(or pip install 'minigrad[examples]')"
        ) from None
    return plt


def _has_display() -> bool:
    """Whether matplotlib's backend can open windows (not Agg, PDF, inline ...)."""
    import matplotlib

    backend = matplotlib.get_backend().lower()
    headless = {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}
    return backend not in headless and "inline" not in backend


def _vector(values: Any, what: str) -> np.ndarray:
    array = np.asarray(getattr(values, "data", values), dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"plot_outer: {what} must be a non-empty vector, got shape {array.shape}")
    return array


def _number(value: float, digits: int = 3) -> str:
    return f"{value + 0.0:.{digits}g}"  # + 0.0 turns -0.0 (from relu's zeros) into 0


def _factor(value: float) -> str:
    text = _number(value)
    return f"({text})" if text.startswith("-") else text  # 2·(-1), not 2·-1


def _heatmap(
    ax: Any,
    matrix: np.ndarray,
    *,
    title: str,
    label: str,
    texts: Any = None,
    scale: float | None = None,
    digits: int = 3,
) -> None:
    """``matrix`` as a red (positive) / blue (negative) image, each entry written on it when
    there are at most 144 (and 12 a side); ``ax.get_label()`` is ``label`` and
    ``ax.images[0]`` holds ``matrix``, so a test or a notebook can read back what was drawn."""
    limit = scale if scale is not None else float(np.abs(matrix).max())
    limit = limit if limit > 0 else 1.0
    ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="equal")
    ax.set_label(label)
    ax.set_title(title, fontsize=10)
    rows, cols = matrix.shape
    ax.set_xticks(range(cols) if cols <= 12 else [])
    ax.set_yticks(range(rows) if rows <= 12 else [])
    if rows * cols > 144 or max(rows, cols) > 12:
        return
    size = (9 if rows * cols <= 36 else 7) if digits >= 3 else 6
    for i in range(rows):
        for j in range(cols):
            text = texts[i][j] if texts is not None else _number(matrix[i, j], digits)
            dark = abs(matrix[i, j]) > 0.6 * limit
            ax.text(j, i, text, ha="center", va="center", fontsize=size,
                    color="white" if dark else "black")  # fmt: skip


# ============================================================================= a ⊗ b


def _draw_outer(axes: dict[str, Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Draw (or redraw) the four panels of :func:`plot_outer`; returns ``a ⊗ b``."""
    M = np.outer(a, b)  # (m,) x (n,) -> (m, n): M[i, j] = a[i] * b[j]
    for ax in axes.values():
        ax.cla()
    texts = None
    if M.size <= 36:  # small enough to write each product out: "2·5 = 10"
        texts = [
            [f"{_factor(a[i])}·{_factor(b[j])}\n= {_number(M[i, j])}" for j in range(len(b))]
            for i in range(len(a))
        ]
    _heatmap(axes["a"], a[:, None], title="a", label="a")
    axes["a"].set_xticks([])
    axes["a"].set_ylabel("i")
    _heatmap(axes["b"], b[None, :], title="b", label="b")
    axes["b"].set_yticks([])
    axes["b"].set_xticks([])
    _heatmap(axes["outer"], M, title="", label="outer", texts=texts)
    axes["outer"].set_xlabel("a ⊗ b = a bᵀ:  entry (i, j) = a_i · b_j\nj", fontsize=10)
    axes["outer"].set_yticks([])
    rows = axes["rows"]
    rows.set_label("rows")
    columns = np.arange(len(b))
    rows.plot(columns, b, "k--", linewidth=3, alpha=0.5, label="b", zorder=3)
    for i in range(min(len(a), 8)):  # more lines than that only clutter the point
        rows.plot(columns, M[i], "o-", label=f"row {i} = {_number(a[i])} · b")
    rows.axhline(0, color="grey", linewidth=0.5)
    rows.set_xticks(columns if len(b) <= 12 else [])
    rows.set_xlabel("j")
    rows.set_title("each row of a ⊗ b is a_i times b: rank 1", fontsize=10)
    rows.legend(fontsize=8, loc="best")
    return M


def plot_outer(a: Any, b: Any, path: str | Path | None = None, *, interactive: bool = False) -> Any:
    """Draw the outer product ``a ⊗ b = a b^T`` and return the matplotlib Figure.

    ``a`` (m,) is a column along the left, ``b`` (n,) a row along the top, the (m, n)
    matrix ``M[i, j] = a_i * b_j`` an annotated heatmap between them (the Axes labelled
    ``"outer"``; its image holds ``M``), and a panel beside it plots each row ``M[i] = a_i b``
    over ``b`` itself: every row is a multiple of ``b``, which is what rank 1 means. This is
    the picture of a dense layer's weight gradient for one sample, ``dW = delta x^T``.

    ``path`` writes a PNG (or any format matplotlib knows, from the suffix). With
    ``interactive=True`` a slider below the picture sets each entry of ``a`` and ``b`` (at
    most 8 each) and the panels redraw live; the window opens when a display exists,
    otherwise a warning says so and only ``path`` is written.
    """
    a, b = _vector(a, "a"), _vector(b, "b")
    m, n = len(a), len(b)
    if interactive and (m > 8 or n > 8):
        raise ValueError(
            f"plot_outer(interactive=True): at most 8 entries in a and in b, got {m} and {n}"
        )
    plt = _pyplot()
    from matplotlib.figure import Figure

    unit = 0.8 if max(m, n) <= 8 else max(0.12, 6.4 / max(m, n))  # inches per cell
    sliders_height = 0.3 * (m + n) if interactive else 0.0
    width = 3.0 + unit * (n + 1) + 4.5
    height = 2.6 + unit * (m + 1) + sliders_height
    show = interactive and _has_display()
    # pyplot's figure only when a window will open; otherwise a Figure that pyplot never sees
    fig: Any = plt.figure(figsize=(width, height)) if show else Figure(figsize=(width, height))
    grid = fig.add_gridspec(
        2, 3, width_ratios=[1, n, 4.5 / unit], height_ratios=[1, m],
        left=0.6 / width, right=1 - 0.3 / width, top=1 - 0.8 / height,
        bottom=(1.0 + sliders_height) / height, wspace=0.12, hspace=0.12,
    )  # fmt: skip
    axes = {
        "b": fig.add_subplot(grid[0, 1]),
        "a": fig.add_subplot(grid[1, 0]),
        "outer": fig.add_subplot(grid[1, 1]),
        "rows": fig.add_subplot(grid[1, 2]),
    }
    fig.suptitle(f"outer product: a {_shape(a.shape)} ⊗ b {_shape(b.shape)} -> {_shape((m, n))}")
    _draw_outer(axes, a, b)
    if interactive:
        # the figure keeps its sliders alive: matplotlib holds widgets only weakly
        fig._minigrad_sliders = _add_sliders(fig, axes, a, b, sliders_height / height)
    if path is not None:
        fig.savefig(path, dpi=100)
    if interactive and show:
        plt.show()
    elif interactive:
        import matplotlib

        warnings.warn(
            "plot_outer(interactive=True): matplotlib has no display here (backend "
            f"{matplotlib.get_backend()!r}), so no window opens"
            + (f"; wrote {path}" if path is not None else "; pass a path to save the picture"),
            stacklevel=2,
        )
    return fig


def _add_sliders(
    fig: Any, axes: dict[str, Any], a: np.ndarray, b: np.ndarray, height: float
) -> list[Any]:
    """One slider per entry of ``a`` and ``b``; moving one redraws every panel."""
    from matplotlib.widgets import Slider

    values = {"a": a.copy(), "b": b.copy()}
    limit = max(1.0, float(np.abs(np.concatenate([a, b])).max()) * 2)
    sliders = []
    entries = [("a", i) for i in range(len(a))] + [("b", j) for j in range(len(b))]
    step = height / (len(entries) + 1)
    for k, (vector, i) in enumerate(entries):
        ax = fig.add_axes((0.15, height - (k + 1) * step, 0.6, step * 0.6))
        slider = Slider(ax, f"{vector}[{i}]", -limit, limit, valinit=values[vector][i])

        def changed(value: float, vector: str = vector, i: int = i) -> None:
            values[vector][i] = value
            _draw_outer(axes, values["a"], values["b"])
            fig.canvas.draw_idle()

        slider.on_changed(changed)
        sliders.append(slider)
    return sliders


# ============================================================================= a Linear layer's dW


def plot_weight_gradient(
    layer: Any,
    path: str | Path | None = None,
    *,
    delta: Any = None,
    x: Any = None,
    max_samples: int = 3,
) -> Any:
    """Draw a Linear layer's weight gradient as the sum of outer products it is; returns the
    matplotlib Figure.

    On the left, laid out like the matrix product it is: ``delta^T`` (out, B) on the left
    (the Axes labelled ``"delta.T"``), ``X`` (B, in) on top (``"x"``), and between them
    ``dW = delta^T X`` (out, in) (``"grad_weight"``). On the right, the first ``max_samples``
    rank-1 matrices ``delta_b x_b^T`` (``"sample0"``, ...), which add up to ``dW``: taken
    from ``weight.grad_sample`` when ``mg.per_sample_grads()`` made it for this backward,
    otherwise computed from ``delta`` and ``x``. Each panel's ``images[0]`` holds its matrix.

    ``delta`` and ``x`` default to the layer's last backward that ran while a
    ``mg.debug`` tool was on (``with mg.debug.trace(): loss.backward()``, see
    :func:`minigrad.debug.last_linear_backward`); pass them to draw any other pair.
    """
    weight = getattr(layer, "weight", None)
    if delta is None or x is None:
        record = debug.last_linear_backward(layer)
        if record is None:
            raise RuntimeError(
                "plot_weight_gradient: no backward of this layer was recorded. Run it inside a "
                "debug tool, `with mg.debug.trace(): loss.backward()`, or pass delta= and x="
            )
        delta_2d, x_2d, grad_weight = record.delta, record.x, record.grad_weight
    else:
        x_arr = np.asarray(getattr(x, "data", x), dtype=np.float64)
        delta_arr = np.asarray(getattr(delta, "data", delta), dtype=np.float64)
        x_2d = x_arr.reshape(-1, x_arr.shape[-1])  # (B, in)
        delta_2d = delta_arr.reshape(-1, delta_arr.shape[-1])  # (B, out)
        grad_weight = delta_2d.T @ x_2d  # (out, B) @ (B, in): the sum of B outer products
    delta_2d = np.asarray(delta_2d, dtype=np.float64)
    x_2d = np.asarray(x_2d, dtype=np.float64)
    grad_weight = np.asarray(grad_weight, dtype=np.float64)
    batch = x_2d.shape[0]
    samples = getattr(weight, "grad_sample", None)  # (B, out, in) from mg.per_sample_grads()
    if samples is not None and (
        samples.shape != (batch, *grad_weight.shape)
        or not np.allclose(samples.sum(axis=0), grad_weight, rtol=1e-4, atol=1e-6)
    ):
        samples = None  # from another backward (or a 3-D input): compute the terms instead
    shown = min(batch, max_samples)

    _pyplot()
    from matplotlib.figure import Figure

    out_features, in_features = grad_weight.shape
    unit = 0.45 if max(out_features, in_features, batch) <= 12 else 0.15
    fig = Figure(figsize=(max(8.0, 3 + unit * (batch + in_features) * 1.6 + 1.2 * shown),
                          2.5 + unit * (batch + 2 * out_features)))  # fmt: skip
    grid = fig.add_gridspec(
        2, 2, width_ratios=[batch, in_features], height_ratios=[batch, out_features],
        left=0.06, right=0.5, top=0.88, bottom=0.1, wspace=0.25, hspace=0.35,
    )  # fmt: skip
    name = getattr(weight, "name", None) or "weight"
    fig.suptitle(
        f"{name}: dW = δᵀX, the sum of {batch} outer product{'s' if batch > 1 else ''} δ_b x_bᵀ"
    )
    corner = fig.add_subplot(grid[0, 0])
    corner.axis("off")
    corner.text(0.5, 0.5, "dW[i, j] =\nΣ_b δ[b, i] · x[b, j]", ha="center", va="center",
                fontsize=10, transform=corner.transAxes)  # fmt: skip
    _heatmap(fig.add_subplot(grid[0, 1]), x_2d, title=f"X {_shape(x_2d.shape)}", label="x")
    _heatmap(
        fig.add_subplot(grid[1, 0]), delta_2d.T, title=f"δᵀ {_shape(delta_2d.T.shape)}",
        label="delta.T",
    )  # fmt: skip
    _heatmap(
        fig.add_subplot(grid[1, 1]), grad_weight, title=f"dW {_shape(grad_weight.shape)}",
        label="grad_weight",
    )  # fmt: skip
    if shown:
        terms = fig.add_gridspec(1, shown, left=0.56, right=0.98, top=0.8, bottom=0.2, wspace=0.3)
        scale = max(float(np.abs(grad_weight).max()), 1e-12)
        for k in range(shown):
            if samples is not None:
                term = np.asarray(samples[k], dtype=np.float64)
            else:
                term = np.outer(delta_2d[k], x_2d[k])  # (out,) x (in,): rank 1
            ax = fig.add_subplot(terms[0, k])
            _heatmap(ax, term, title=f"δ_{k} x_{k}ᵀ" + (" +" if k < batch - 1 else ""),
                     label=f"sample{k}", scale=scale, digits=2)  # fmt: skip
        source = "weight.grad_sample" if samples is not None else "np.outer(delta[b], x[b])"
        more = f" + {batch - shown} more" if batch > shown else ""
        fig.text(0.77, 0.1, f"per-sample terms ({source}){more}: each of rank 1, summing to dW",
                 ha="center", fontsize=9)  # fmt: skip
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def _matrices(fig: Any) -> dict[str, np.ndarray]:
    """The arrays drawn in each labelled panel of a figure made here (for tests and notebooks)."""
    return {ax.get_label(): np.asarray(ax.images[0].get_array()) for ax in fig.axes if ax.images}


__all__: Sequence[str] = ["draw_graph", "plot_outer", "plot_weight_gradient", "to_dot"]
