"""mg.viz: the graph as DOT text, draw_graph's install message, and the outer-product plots."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import autograd, nn, viz

ROOT = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def debug_tools_off():
    yield
    mg.debug._reset()


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        self.fc1 = nn.Linear(3, 4, dtype=mg.float64, generator=rng)
        self.fc2 = nn.Linear(4, 2, dtype=mg.float64, generator=rng)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def mlp_loss(model: MLP, batch: int = 5):
    rng = np.random.default_rng(1)
    x = mg.tensor(rng.standard_normal((batch, 3)))
    target = mg.tensor(rng.standard_normal((batch, 2)))
    return ((model(x) - target) ** 2).mean(), x


def graph_nodes(root):
    """Every op node reachable from ``root`` (leaves' AccumulateGrad excluded), once each."""
    seen, stack = [], [root]
    while stack:
        node = stack.pop()
        if node is None or node in seen or isinstance(node, autograd.AccumulateGrad):
            continue
        seen.append(node)
        stack.extend(edge[0] for edge in node.next_functions)
    return seen


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == PNG_MAGIC


def drawn(fig) -> dict[str, np.ndarray]:
    """The matrix in each labelled panel's image artist."""
    return {ax.get_label(): np.asarray(ax.images[0].get_array()) for ax in fig.axes if ax.images}


# ============================================================================= to_dot


NODE = re.compile(r'^  (\w+) \[label="((?:[^"\\]|\\.)*)"(.*)\];$')
EDGE = re.compile(r'^  (\w+) -> (\w+) \[label="((?:[^"\\]|\\.)*)"\];$')


def parse_dot(text: str):
    """Check the structure of ``to_dot``'s text; return its nodes {id: (label, attrs)} and edges."""
    lines = text.rstrip("\n").splitlines()
    assert lines[0] == "digraph minigrad {" and lines[-1] == "}"
    outside_quotes = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    assert outside_quotes.count("{") == outside_quotes.count("}") == 1
    nodes: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str, str]] = []
    for line in lines[1:-1]:
        if line.lstrip().startswith(("rankdir", "node [", "edge [", "label=")):
            continue
        edge = EDGE.match(line)
        if edge:
            edges.append(edge.groups())
            continue
        node = NODE.match(line)
        assert node, f"not a DOT node or edge: {line!r}"
        assert node.group(1) not in nodes, f"node {node.group(1)} defined twice"
        nodes[node.group(1)] = (node.group(2), node.group(3))
    for source, target, _ in edges:  # every edge joins defined nodes
        assert source in nodes and target in nodes, (source, target)
    return nodes, edges


def test_to_dot_of_an_mlp_holds_every_op_and_leaf_with_consistent_edges():
    model = MLP()
    loss, _ = mlp_loss(model)
    text = viz.to_dot(loss)
    nodes, edges = parse_dot(text)

    ops = graph_nodes(loss.grad_fn)
    boxes = [label for label, attrs in nodes.values() if "shape=box" in attrs]
    assert sorted(boxes) == sorted(node.name() for node in ops)  # every op once, only ops
    assert len(boxes) == 6

    labels = {label: (node_id, attrs) for node_id, (label, attrs) in nodes.items()}
    for name, param in model.named_parameters():  # parameters: marked, named, with shapes
        label = f"parameter {name}\\n{viz._shape(param.shape)} float64"
        assert label in labels, label
        assert "#cfe2ff" in labels[label][1]
    parameters = [label for label in labels if label.startswith("parameter ")]
    assert len(parameters) == 4
    # the data and the target need no gradient: grey input nodes with their shapes
    inputs = sorted(label for label in labels if label.startswith("input "))
    assert inputs == ["input 0\\n(5, 3) (no grad)", "input 1\\n(5, 2) (no grad)"]
    assert "output\\n() float64" in labels

    # every op gets one edge per tensor input; every node but the output feeds one op
    in_degree = {i: sum(target == i for _, target, _ in edges) for i in nodes}
    out_degree = {i: sum(source == i for source, _, _ in edges) for i in nodes}
    assert sorted((nodes[i][0], in_degree[i]) for i in nodes if "shape=box" in nodes[i][1]) == (
        sorted((node.name(), sum(m is not None for m in node._input_meta)) for node in ops)
    )
    ids = {node_id: label for node_id, (label, _) in nodes.items()}
    (output_id,) = [i for i, label in ids.items() if label.startswith("output")]
    assert in_degree[output_id] == 1 and out_degree[output_id] == 0
    assert all(out_degree[i] == 1 for i in nodes if i != output_id)
    # edge labels are the shapes carried: fc1's output (5, 4) into relu
    relu_id = next(i for i, label in ids.items() if label == "ReluBackward")
    assert [lab for s, t, lab in edges if t == relu_id] == ["(5, 4)"]


def test_to_dot_names_named_tensors_and_survives_odd_names():
    w = mg.tensor([[1.0, 2.0]], requires_grad=True, name='my "w"\\')
    x = mg.tensor([3.0, 4.0])
    h = (w * x).sum(1)
    h.name = "h"
    out = h * 2.0
    nodes, edges = parse_dot(viz.to_dot(out, title="a title"))
    labels = [label for label, _ in nodes.values()]
    assert 'my \\"w\\"\\\\\\n(1, 2) float32' in labels  # quotes and backslashes escaped
    assert "h (1,)" in [label for _, _, label in edges]  # a named intermediate tensor
    assert any(label == "input 1\\n(2,) (no grad)" for label in labels)


def test_to_dot_of_a_leaf_and_after_backward():
    leaf = mg.tensor([1.0], requires_grad=True, name="w")
    nodes, edges = parse_dot(viz.to_dot(leaf))
    assert [label for label, _ in nodes.values()] == ["w\\n(1,) float32"] and edges == []

    y = (leaf * 3.0).sum()
    y.backward()  # frees the graph's links: the picture says so
    nodes, _ = parse_dot(viz.to_dot(y))
    assert "SumBackward (freed by backward)" in [label for label, _ in nodes.values()]


def test_to_dot_in_anomaly_mode_shows_the_line_that_made_each_op():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.detect_anomaly():
        y = (x.exp() * 2.0).sum()  # to_dot: this line
    text = viz.to_dot(y)
    line = next(
        i + 1
        for i, src in enumerate(Path(__file__).read_text().splitlines())
        if src.endswith("# to_dot: this line")
    )
    assert text.count(f"line {line}: y = (x.exp() * 2.0).sum()") == 3  # Exp, Mul and Sum


# ============================================================================= draw_graph


def test_draw_graph_without_the_graphviz_package_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # import graphviz -> ImportError
    y = (mg.tensor([1.0], requires_grad=True) * 2.0).sum()
    with pytest.raises(ImportError) as info:
        viz.draw_graph(y, tmp_path / "graph.svg")
    message = str(info.value)
    assert "`graphviz` Python package is not installed" in message
    assert "pip install graphviz" in message and "apt install graphviz" in message
    assert "mg.viz.to_dot" in message
    assert list(tmp_path.iterdir()) == []


class FakeSource:
    """Stands in for ``graphviz.Source``: records what it was asked to render."""

    calls: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, source: str) -> None:
        self.source = source

    def pipe(self, format: str) -> bytes:
        FakeSource.calls.append((self.source, format))
        return b"<svg>drawn</svg>"


def test_draw_graph_without_dot_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "graphviz", types.SimpleNamespace(Source=FakeSource))
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    y = (mg.tensor([1.0], requires_grad=True) * 2.0).sum()
    with pytest.raises(RuntimeError, match="`dot` program is not on PATH") as info:
        viz.draw_graph(y, tmp_path / "graph.png")
    assert "brew install graphviz" in str(info.value)


def test_draw_graph_renders_to_dot_text_in_the_format_of_the_suffix(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "graphviz", types.SimpleNamespace(Source=FakeSource))
    monkeypatch.setattr(viz.shutil, "which", lambda name: "/bin/" + name)
    FakeSource.calls = []
    y = (mg.tensor([1.0], requires_grad=True) * 2.0).sum()
    path = viz.draw_graph(y, tmp_path / "graph.SVG")
    assert path.read_bytes() == b"<svg>drawn</svg>"
    assert FakeSource.calls == [(viz.to_dot(y), "svg")]
    with pytest.raises(ValueError, match=r"\.svg, \.png or \.pdf"):
        viz.draw_graph(y, tmp_path / "graph.jpg")


def test_import_minigrad_does_not_import_matplotlib():
    code = "import sys, minigrad; assert 'matplotlib' not in sys.modules; minigrad.viz.to_dot"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ============================================================================= plot_outer


def test_plot_outer_writes_a_png_of_the_outer_product(tmp_path):
    a, b = np.array([1.0, 2.0, 3.0]), np.array([4.0, -5.0])
    path = tmp_path / "outer.png"
    fig = viz.plot_outer(a, b, path)
    assert_png(path)
    matrices = drawn(fig)
    np.testing.assert_array_equal(matrices["outer"], np.outer(a, b))
    np.testing.assert_array_equal(matrices["a"], a[:, None])  # a column on the left
    np.testing.assert_array_equal(matrices["b"], b[None, :])  # b a row on top
    # the rank-1 panel: b itself, then each row of a ⊗ b, which is a_i times b
    rows = next(ax for ax in fig.axes if ax.get_label() == "rows")
    lines = {line.get_label(): line.get_ydata() for line in rows.get_lines()}
    np.testing.assert_array_equal(lines["b"], b)
    for i, scale in enumerate(["1", "2", "3"]):
        np.testing.assert_array_equal(lines[f"row {i} = {scale} · b"], a[i] * b)
    texts = [t.get_text() for t in fig.axes[2].texts]
    assert "2·(-5)\n= -10" in texts  # each product written out


def test_plot_outer_takes_tensors_and_rejects_matrices():
    a = mg.tensor([1.0, -1.0], requires_grad=True)
    fig = viz.plot_outer(a, mg.tensor([0.5, 2.0, 3.0]))
    np.testing.assert_array_equal(drawn(fig)["outer"], [[0.5, 2, 3], [-0.5, -2, -3]])
    with pytest.raises(ValueError, match=r"b must be a non-empty vector, got shape \(2, 2\)"):
        viz.plot_outer([1.0], np.ones((2, 2)))


def test_plot_outer_interactive_without_a_display_warns_and_its_sliders_redraw(tmp_path):
    path = tmp_path / "sliders.png"
    with pytest.warns(UserWarning, match="no display"):
        fig = viz.plot_outer([1.0, 2.0], [3.0, 4.0, 5.0], path, interactive=True)
    assert_png(path)
    sliders = fig._minigrad_sliders
    assert [s.label.get_text() for s in sliders] == ["a[0]", "a[1]", "b[0]", "b[1]", "b[2]"]
    sliders[1].set_val(-1.0)  # a = [1, -1]
    sliders[4].set_val(0.5)  # b = [3, 4, 0.5]
    np.testing.assert_array_equal(drawn(fig)["outer"], np.outer([1.0, -1.0], [3.0, 4.0, 0.5]))
    with pytest.raises(ValueError, match="at most 8 entries"):
        viz.plot_outer(np.ones(9), [1.0], interactive=True)


def test_plot_outer_interactive_with_a_display_opens_a_window(monkeypatch):
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(viz, "_has_display", lambda: True)
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    fig = viz.plot_outer([1.0, 2.0], [3.0], interactive=True)  # no warning: a window opens
    try:
        assert shown == [fig] and len(fig._minigrad_sliders) == 3
    finally:
        plt.close(fig)


# ============================================================================= plot_weight_gradient


def test_plot_weight_gradient_draws_the_grad_and_the_per_sample_terms_that_sum_to_it(tmp_path):
    model = MLP()
    loss, x = mlp_loss(model, batch=5)
    with mg.per_sample_grads(), mg.debug.trace():
        loss.backward()
    path = tmp_path / "dW.png"
    fig = viz.plot_weight_gradient(model.fc1, path, max_samples=5)
    assert_png(path)
    matrices = drawn(fig)
    np.testing.assert_allclose(matrices["grad_weight"], model.fc1.weight.grad, rtol=1e-12)
    np.testing.assert_array_equal(matrices["x"], x.numpy())
    record = mg.debug.last_linear_backward(model.fc1)
    np.testing.assert_array_equal(matrices["delta.T"], record.delta.T)
    samples = [matrices[f"sample{b}"] for b in range(5)]
    for b, term in enumerate(samples):
        np.testing.assert_array_equal(term, model.fc1.weight.grad_sample[b])
        assert np.linalg.matrix_rank(term) <= 1
    np.testing.assert_allclose(sum(samples), model.fc1.weight.grad, rtol=1e-12, atol=1e-15)
    assert "fc1.weight" in fig._suptitle.get_text()
    assert "weight.grad_sample" in " ".join(t.get_text() for t in fig.texts)


def test_plot_weight_gradient_without_per_sample_grads_computes_the_outer_products():
    model = MLP()
    loss, _ = mlp_loss(model, batch=4)
    with mg.debug.trace():
        loss.backward()
    fig = viz.plot_weight_gradient(model.fc2)  # the default: 3 of the 4 terms
    matrices = drawn(fig)
    np.testing.assert_allclose(matrices["grad_weight"], model.fc2.weight.grad, rtol=1e-12)
    record = mg.debug.last_linear_backward(model.fc2)
    terms = sorted(label for label in matrices if label.startswith("sample"))
    assert terms == ["sample0", "sample1", "sample2"]
    for b in range(3):
        np.testing.assert_array_equal(
            matrices[f"sample{b}"], np.outer(record.delta[b], record.x[b])
        )
    assert "+ 1 more" in " ".join(t.get_text() for t in fig.texts)


def test_plot_weight_gradient_of_given_delta_and_x_and_without_a_record():
    layer = nn.Linear(3, 2)
    delta, x = np.array([[1.0, -2.0]]), np.array([[3.0, 4.0, 5.0]])
    fig = viz.plot_weight_gradient(layer, delta=delta, x=x)
    np.testing.assert_array_equal(drawn(fig)["grad_weight"], np.outer(delta[0], x[0]))
    with pytest.raises(RuntimeError, match=r"with mg\.debug\.trace\(\): loss\.backward\(\)"):
        viz.plot_weight_gradient(nn.Linear(3, 2))


# ============================================================================= the example


def test_outer_product_visualizer_example_smoke(tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, "examples/outer_product_visualizer.py", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert_png(tmp_path / "outer_product.png")
    assert [p.name for p in tmp_path.iterdir()] == ["outer_product.png"]
    assert "outer product a ⊗ b: a matrix (3, 2)" in result.stdout
    assert "minigrad mg.dot(a, a): 14" in result.stdout  # a · b needs equal lengths


def test_outer_product_visualizer_main_with_equal_lengths(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import outer_product_visualizer as example
    finally:
        sys.path.remove(str(ROOT / "examples"))
    argv = ["--a", "1,2", "--b", "3,-4", "--out", str(tmp_path / "run"), "--smoke"]
    assert example.main(argv) == 0
    out = capsys.readouterr().out
    assert "minigrad mg.dot(a, b): -5" in out and "numpy    np.dot(a, b): -5" in out
    assert "trace(a ⊗ b) = -5" in out
    assert_png(tmp_path / "run" / "outer_product.png")
