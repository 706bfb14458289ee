"""Audit of mg.debug, mg.viz and per_sample_grads' error paths: the gaps test_debug.py,
test_viz.py and test_per_sample.py leave.

Covers graphs with a user-written two-output ``mg.Function``, custom Functions returning
``None`` gradients, ops with non-tensor positional arguments, hooks and ``retain_grad``;
graphs already freed by backward; nested and re-entered contexts (is global state restored
after an exception?); ``break_on`` with a bad target; anomaly mode on NaN in forward and in
backward of custom Functions (op name, output index, the user's line) and switching it off
again; ``draw_graph`` in this environment; plots that return figures without showing them;
and that no tool changes a gradient.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import autograd, nn, viz

SOURCE = Path(__file__).read_text().splitlines()


def line_of(marker: str) -> int:
    (number,) = [i + 1 for i, line in enumerate(SOURCE) if line.rstrip().endswith(marker)]
    return number


def tools_are_off() -> bool:
    state = mg.debug._State
    return (
        autograd._DebugHooks.active is False
        and state.traces == []
        and state.breaks == []
        and state.anomaly is False
        and state.check_nan is True
    )


@pytest.fixture(autouse=True)
def debug_tools_off():
    mg.debug._reset()
    yield
    mg.debug._reset()


# ============================================================================= custom Functions


class Split(mg.Function):
    """Two outputs, a non-tensor positional argument (``scale``)."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x * scale, x**2

    @staticmethod
    def backward(ctx, grad_a, grad_b):
        (x,) = ctx.saved_tensors
        return grad_a * ctx.scale + 2 * x * grad_b, None


class FirstOnly(mg.Function):
    """Returns ``None`` for its second tensor input, which requires grad."""

    @staticmethod
    def forward(ctx, a, b):
        return a * 1.0 + b

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class NanForSecond(mg.Function):
    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad * np.nan


class NanSecondOutput(mg.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 1.0, np.full_like(x, np.nan)

    @staticmethod
    def backward(ctx, grad_a, grad_b):
        return grad_a


def custom_graph():
    """A loss through Split (two outputs, both used), FirstOnly, a hook and retain_grad."""
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal(3), requires_grad=True, name="x")
    b = mg.tensor(rng.standard_normal(3), requires_grad=True, name="b")
    a, s = Split.apply(x, 3.0)
    a.retain_grad()
    a.register_hook(lambda g: g * 2)
    loss = (FirstOnly.apply(a * s, b) ** 2).sum()
    return loss, x, b, a


def mlp_step(tool) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    model = nn.Sequential(
        nn.Linear(3, 4, dtype=mg.float64, generator=rng),
        nn.Tanh(),
        nn.Linear(4, 2, dtype=mg.float64, generator=rng),
    )
    x = mg.tensor(rng.standard_normal((5, 3)))
    h = model[0](x)
    h.retain_grad()
    h.register_hook(lambda g: g * 0.5)
    loss = F.cross_entropy(model[2](model[1](h)), mg.tensor([0, 1, 1, 0, 1]))
    with mg.per_sample_grads(), tool():
        loss.backward()
    grads = [p.grad.copy() for p in model.parameters()]
    samples = [model[i].weight.grad_sample.copy() for i in (0, 2)]
    return [*grads, *samples, h.grad.copy()]


TOOLS = {
    "trace": mg.debug.trace,
    "detect_anomaly": mg.detect_anomaly,
    "break_on_star": lambda: mg.debug.break_on("*"),
    "all_three": lambda: _all_three(),
}


@contextlib.contextmanager
def _all_three():
    with mg.debug.trace(), mg.detect_anomaly(), mg.debug.break_on("Linear", "Split"):
        yield


# ============================================================================= no number changes


@pytest.mark.parametrize("tool", list(TOOLS.values()), ids=list(TOOLS))
def test_tools_change_no_gradient_of_a_custom_two_output_graph_with_hooks(tool, monkeypatch):
    monkeypatch.setattr(sys, "breakpointhook", lambda *a, **k: None)
    loss, x, b, a = custom_graph()
    loss.backward()
    loss2, x2, b2, a2 = custom_graph()
    with tool():
        loss2.backward()
    assert np.array_equal(x.grad, x2.grad) and x.grad.dtype == x2.grad.dtype
    assert np.array_equal(a.grad, a2.grad)
    assert b.grad is None and b2.grad is None
    assert tools_are_off()


@pytest.mark.parametrize("tool", list(TOOLS.values()), ids=list(TOOLS))
def test_tools_change_no_gradient_or_per_sample_gradient_with_hooks(tool, monkeypatch):
    monkeypatch.setattr(sys, "breakpointhook", lambda *a, **k: None)
    plain = mlp_step(contextlib.nullcontext)
    debugged = mlp_step(tool)
    for p, d in zip(plain, debugged, strict=True):
        assert p.dtype == d.dtype and np.array_equal(p, d)


# ============================================================================= trace


def test_trace_of_a_custom_two_output_function_with_none_gradients():
    loss, x, _b, a = custom_graph()
    with mg.debug.trace() as t:
        loss.backward()
    assert t.ops() == ["SumBackward", "PowBackward", "FirstOnlyBackward", "MulBackward"] + [
        "SplitBackward"
    ]
    first_only = t.steps[2]
    assert [g.to for g in first_only.inputs] == ["-> MulBackward", "b"]
    assert first_only.inputs[1].norm is None and "b (3,) no grad" in str(t)
    split = t.steps[4]
    assert split.output_shapes == [(3,), (3,)] and len(split.grad_output_norms) == 2
    assert [g.to for g in split.inputs] == ["x"]  # scale, a float, is not listed
    np.testing.assert_allclose(split.inputs[0].norm, np.linalg.norm(x.grad))
    # the gradient reaching Split's first output is the one after the hook doubled it
    np.testing.assert_allclose(split.grad_output_norms[0], np.linalg.norm(a.grad))


def test_trace_when_only_the_second_output_is_used_shows_zeros_for_the_first():
    x = mg.tensor([1.0, 2.0], dtype=mg.float64, requires_grad=True)
    _, second = Split.apply(x, 2.0)
    with mg.debug.trace() as t:
        second.sum().backward()
    assert t.ops() == ["SumBackward", "SplitBackward"]
    assert t.steps[1].grad_output_norms[0] == 0.0
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


def test_trace_of_a_freed_graph_raises_the_freed_error_and_switches_off():
    loss, *_ = custom_graph()
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        with mg.debug.trace() as t:
            loss.backward()
    assert len(t) == 0
    assert tools_are_off()


def test_nested_traces_both_record_and_both_switch_off():
    x = mg.tensor([1.0, 2.0], dtype=mg.float64, requires_grad=True)
    with mg.debug.trace() as outer:
        with mg.debug.trace() as inner:
            pass  # two empty traces: equal dataclasses
        (x * 2.0).sum().backward()
    assert len(inner) == 0
    assert outer.ops() == ["SumBackward", "MulBackward"]
    assert tools_are_off()


def test_nested_traces_that_saw_the_same_steps_switch_off_in_any_order():
    x = mg.tensor([1.0, 2.0], dtype=mg.float64, requires_grad=True)
    with mg.debug.trace() as outer:
        with mg.debug.trace() as inner:
            (x * 2.0).sum().backward()
        (x * 3.0).sum().backward()
    assert len(inner) == 2 and len(outer) == 4
    assert tools_are_off()


# ============================================================================= nested contexts


def test_trace_inside_anomaly_mode_both_exited_by_an_anomaly_restore_everything():
    x = mg.tensor([0.0, 1.0], dtype=mg.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="SqrtBackward"):
        with mg.detect_anomaly(), mg.debug.trace() as t, mg.debug.break_on("NoSuchOp"):
            (x.sqrt() * 2.0).sum().backward()
    assert t.ops() == ["SumBackward", "MulBackward"]  # Sqrt raised before it was recorded
    assert x.grad is None
    assert tools_are_off()
    (mg.tensor([-1.0]).sqrt() * 2.0).sum()  # anomaly mode is off: a NaN in forward is fine


def test_check_nan_false_nested_inside_detect_anomaly_restores_checking():
    with mg.detect_anomaly():
        with mg.detect_anomaly(check_nan=False):
            mg.tensor([-1.0]).sqrt()  # not checked here
        with pytest.raises(RuntimeError, match="'Sqrt' produced nan"):
            mg.tensor([-1.0]).sqrt()  # checked again
    assert tools_are_off()


def test_set_detect_anomaly_false_inside_detect_anomaly_and_after():
    with mg.detect_anomaly():
        mg.debug.set_detect_anomaly(False)
        assert not mg.debug.is_anomaly_enabled()
        mg.tensor([-1.0]).sqrt()
    assert tools_are_off()
    mg.debug.set_detect_anomaly(True, check_nan=False)
    assert mg.debug.is_anomaly_enabled()
    mg.debug.set_detect_anomaly(False)
    assert tools_are_off()
    with mg.debug.set_detect_anomaly(True), pytest.raises(RuntimeError):
        mg.tensor([-1.0]).sqrt()
    assert tools_are_off()


def test_detect_anomaly_as_a_decorator_of_a_recursive_function_switches_off():
    @mg.detect_anomaly()
    def depth(n):
        assert mg.debug.is_anomaly_enabled()
        return 0 if n == 0 else 1 + depth(n - 1)

    assert depth(2) == 2
    assert not mg.debug.is_anomaly_enabled()
    assert tools_are_off()


# ============================================================================= anomaly mode


def test_anomaly_names_a_custom_function_its_second_gradient_and_the_line():
    a = mg.tensor([1.0, 2.0], dtype=mg.float64, requires_grad=True)
    b = mg.tensor([1.0, 2.0], dtype=mg.float64, requires_grad=True)
    with mg.detect_anomaly():
        y = NanForSecond.apply(a, b)  # audit: custom nan backward
        with pytest.raises(RuntimeError) as err:
            y.sum().backward()
    message = str(err.value)
    assert "Function 'NanForSecondBackward' returned nan values in its 1th output" in message
    assert f'"{__file__}", line {line_of("# audit: custom nan backward")}' in message
    assert "y = NanForSecond.apply(a, b)" in message
    assert a.grad is None and b.grad is None
    y.sum().backward()  # the failed pass freed nothing; outside anomaly mode it runs
    assert np.isnan(b.grad).all() and np.array_equal(a.grad, [1.0, 1.0])


def test_anomaly_names_the_second_output_of_a_custom_function_made_nan_in_forward():
    x = mg.tensor([1.0], dtype=mg.float64, requires_grad=True)
    with mg.detect_anomaly(), pytest.raises(RuntimeError) as err:
        NanSecondOutput.apply(x)  # audit: nan second output
    message = str(err.value)
    assert "Function 'NanSecondOutput' produced nan values in its 1th output" in message
    assert f"line {line_of('# audit: nan second output')}" in message
    assert tools_are_off()


def test_anomaly_records_the_line_of_a_multi_output_op_and_to_dot_shows_it():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.detect_anomaly():
        first, second = Split.apply(x, 2.0)  # audit: split line
    site = mg.debug.created_at(first.grad_fn)
    assert second.grad_fn is first.grad_fn
    assert site.lineno == line_of("# audit: split line") and site.filename == __file__
    assert f"line {site.lineno}: first, second = Split.apply(x, 2.0)" in viz.to_dot(first)


def test_anomaly_in_backward_changes_no_leaf_grad_a_retained_one_may_have_it():
    x = mg.tensor([0.0, 1.0], dtype=mg.float64, requires_grad=True)
    with mg.detect_anomaly():
        z = x.sqrt() * 2.0
        z.retain_grad()
        with pytest.raises(RuntimeError, match="SqrtBackward"):
            z.sum().backward()
    # docs/debugging.md: "before any leaf's `.grad` changes; a `retain_grad()` tensor may
    # already have its gradient" (as in PyTorch, whose retained gradients arrive on the way)
    assert x.grad is None
    np.testing.assert_array_equal(z.grad, [1.0, 1.0])


# ============================================================================= break_on


def test_break_on_a_custom_two_output_function_stops_with_its_first_delta(monkeypatch):
    stops = []
    monkeypatch.setattr(
        sys, "breakpointhook", lambda: stops.append(dict(sys._getframe(1).f_locals))
    )
    loss, x, _, a = custom_graph()
    with mg.debug.break_on("Split"):
        loss.backward()
    assert [s["op"] for s in stops] == ["SplitBackward"]
    np.testing.assert_array_equal(stops[0]["delta"], a.grad)  # after the hook
    np.testing.assert_array_equal(stops[0]["x"], x.data)
    assert stops[0]["weight"] is None  # Split saved one array
    assert tools_are_off()


def test_break_on_a_module_instead_of_a_name_is_refused_before_backward():
    model = nn.Sequential(nn.Linear(2, 2, dtype=mg.float64))
    loss = model(mg.tensor(np.ones((1, 2)))).sum()
    with pytest.raises(TypeError, match="break_on"):
        mg.debug.break_on(model[0])  # a layer object, not its name "0"
    loss.backward()
    assert model[0].weight.grad is not None


def test_break_on_with_no_target_is_a_clear_error():
    with pytest.raises(TypeError, match=r'break_on\("Linear"\)'):
        mg.debug.break_on()
    assert tools_are_off()


def test_break_on_an_unknown_name_never_stops_and_switches_off(monkeypatch):
    stops = []
    monkeypatch.setattr(sys, "breakpointhook", lambda: stops.append(1))
    loss, *_ = custom_graph()
    with mg.debug.break_on("fc9", "Lineer"):
        loss.backward()
    assert stops == []
    assert tools_are_off()


# ============================================================================= to_dot


def test_to_dot_of_a_custom_two_output_graph_has_both_edges_and_no_scale_node():
    loss, *_ = custom_graph()
    text = viz.to_dot(loss)
    split = next(ln.split()[0] for ln in text.splitlines() if 'label="SplitBackward"' in ln)
    mul = next(ln.split()[0] for ln in text.splitlines() if 'label="MulBackward"' in ln)
    assert text.count(f"{split} -> {mul} ") == 2  # both outputs feed the product
    assert 'label="b\\n(3,) float64"' in text and 'label="x\\n(3,) float64"' in text
    assert "input 1" not in text  # the float 3.0 is not a graph input
    assert "FirstOnlyBackward" in text


def test_to_dot_labels_an_edge_with_the_name_of_the_second_output():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    first, second = Split.apply(x, 2.0)
    second.name = "squares"
    text = viz.to_dot((first + second).sum())
    assert 'label="squares (2,)"' in text
    assert text.count('label="(2,)"') >= 1  # the first output, unnamed


def test_to_dot_of_a_partly_freed_graph_marks_the_freed_op_and_keeps_the_rest():
    x = mg.tensor([1.0, 2.0], requires_grad=True, name="x")
    y = x * 3.0
    y.sum().backward()  # frees MulBackward
    z = (y.exp()).sum()
    text = viz.to_dot(z)
    assert "ExpBackward" in text and "MulBackward (freed by backward)" in text
    assert "x\\n" not in text  # the freed node's links are gone
    with pytest.raises(RuntimeError, match="second time"), mg.debug.trace():
        z.backward()
    assert tools_are_off()


# ============================================================================= draw_graph and plots


def test_draw_graph_in_this_environment_renders_or_says_what_to_install(tmp_path):
    y = (mg.tensor([1.0], requires_grad=True) * 2.0).sum()
    path = tmp_path / "graph.svg"
    try:
        result = viz.draw_graph(y, path)
    except (ImportError, RuntimeError) as err:
        message = str(err)
        assert "pip install graphviz" in message and "apt install graphviz" in message
        assert "to_dot" in message
        assert not path.exists()
    else:
        assert result == path and path.read_bytes().lstrip().startswith((b"<?xml", b"<svg"))


def test_plots_return_figures_without_showing_or_registering_them(monkeypatch, tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    assert matplotlib.get_backend().lower() == "agg"
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plt.show was called"))
    before = plt.get_fignums()
    fig = viz.plot_outer([1.0, -2.0], [3.0, 4.0, 5.0])
    assert isinstance(fig, Figure)
    layer = nn.Linear(3, 2, dtype=mg.float64)
    with mg.debug.break_on("NoSuchOp"):
        layer(mg.tensor(np.ones((2, 3)))).sum().backward()
    fig2 = viz.plot_weight_gradient(layer, tmp_path / "w.png")
    assert isinstance(fig2, Figure) and (tmp_path / "w.png").stat().st_size > 1000
    assert plt.get_fignums() == before


def test_plot_weight_gradient_from_a_three_d_input_flattens_the_batch():
    layer = nn.Linear(3, 2, dtype=mg.float64)
    x = mg.tensor(np.random.default_rng(0).standard_normal((2, 4, 3)))
    with mg.detect_anomaly():
        (layer(x) ** 2).sum().backward()
    record = mg.debug.last_linear_backward(layer)
    assert record.x.shape == (8, 3) and record.delta.shape == (8, 2)
    fig = viz.plot_weight_gradient(layer)
    drawn = {ax.get_label(): np.asarray(ax.images[0].get_array()) for ax in fig.axes if ax.images}
    np.testing.assert_allclose(drawn["grad_weight"], layer.weight.grad, rtol=1e-12)


# ============================================================================= per_sample errors


def test_per_sample_with_two_batch_sizes_raises_and_changes_nothing():
    rng = np.random.default_rng(0)
    layer = nn.Linear(3, 2, dtype=mg.float64)
    big = layer(mg.tensor(rng.standard_normal((4, 3)))).sum()
    small = layer(mg.tensor(rng.standard_normal((2, 3)))).sum()
    loss = big + small
    with pytest.raises(RuntimeError, match="used with batch sizes 2 and 4"):
        with mg.per_sample_grads():
            loss.backward()
    assert layer.weight.grad is None and layer.weight.grad_sample is None
    loss.backward()  # the graph survived the failed pass
    assert layer.weight.grad is not None and layer.weight.grad_sample is None


def test_per_sample_with_a_custom_function_on_a_parameter_names_it():
    param = nn.Parameter(np.ones(3))
    with pytest.raises(RuntimeError, match="from SplitBackward, which cannot split it"):
        with mg.per_sample_grads():
            Split.apply(param, 2.0)[0].sum().backward()
    assert param.grad is None
    assert not autograd._PerSampleMode.active
