"""mg.debug: the backward trace, break_on (with a real pdb session), anomaly mode, reprs."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import autograd, nn

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path(__file__).read_text().splitlines()


def line_of(marker: str) -> int:
    """The line number in this file of the one line carrying ``marker``."""
    (number,) = [i + 1 for i, line in enumerate(SOURCE) if line.rstrip().endswith(marker)]
    return number


@pytest.fixture(autouse=True)
def debug_tools_off():
    yield
    assert autograd._DebugHooks.active is False, "a debug tool was left switched on"
    mg.debug._reset()


class MLP(nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.fc1 = nn.Linear(3, 8, dtype=mg.float64, generator=rng)
        self.fc2 = nn.Linear(8, 2, dtype=mg.float64, generator=rng)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def mlp_loss(model: MLP, batch: int = 4):
    rng = np.random.default_rng(1)
    x = mg.tensor(rng.standard_normal((batch, 3)))
    target = mg.tensor(rng.standard_normal((batch, 2)))
    return ((model(x) - target) ** 2).mean()


def graph_nodes(root):
    """Every op node reachable from ``root`` (leaves' AccumulateGrad excluded)."""
    seen, stack = [], [root]
    while stack:
        node = stack.pop()
        if node is None or node in seen or isinstance(node, autograd.AccumulateGrad):
            continue
        seen.append(node)
        stack.extend(edge[0] for edge in node.next_functions)
    return seen


# ============================================================================= trace


def test_trace_of_a_two_layer_mlp_lists_every_op_once_in_backward_order():
    model = MLP()
    loss = mlp_loss(model)
    nodes = graph_nodes(loss.grad_fn)
    with mg.debug.trace() as t:
        loss.backward()
    expected = [
        "MeanBackward",
        "PowBackward",
        "SubBackward",
        "LinearBackward",
        "ReluBackward",
        "LinearBackward",
    ]
    assert t.ops() == expected
    assert len(t) == len(nodes)  # every op of the graph, each once
    assert [step.index for step in t.steps] == list(range(1, 7))

    fc2, relu, fc1 = t.steps[3], t.steps[4], t.steps[5]
    assert fc2.output_shapes == [(4, 2)] and fc2.grad_output_shapes == [(4, 2)]
    assert relu.output_shapes == [(4, 8)] and fc1.output_shapes == [(4, 8)]
    sent = {g.to: g for g in fc2.inputs}
    assert sent["fc2.weight"].shape == (2, 8)
    assert sent["fc2.weight"].norm == pytest.approx(np.linalg.norm(model.fc2.weight.grad))
    assert sent["fc2.bias"].norm == pytest.approx(np.linalg.norm(model.fc2.bias.grad))
    assert sent["-> ReluBackward"].shape == (4, 8)
    fc1_sent = {g.to: g for g in fc1.inputs}
    assert fc1_sent["input0"].norm is None  # the data needs no gradient
    assert fc1_sent["fc1.weight"].shape == (8, 3)
    # the incoming gradient of fc2 is what the subtraction sent on
    assert fc2.grad_output_norms[0] == pytest.approx(t.steps[2].inputs[0].norm)
    assert fc2.note == "dW = delta^T X = sum of 4 outer products delta_b x_b^T: (2, 4) @ (4, 8)"
    assert "sum of 4 outer products delta_b x_b^T: (8, 4) @ (4, 3)" in fc1.note

    table = str(t)
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["#", "op", "output", "grad_output"]
    assert [line.split()[1] for line in lines[1:] if line[0].isdigit()] == expected
    assert "fc1.weight (8, 3) |g|=" in table
    assert table.count("sum of 4 outer products delta_b x_b^T") == 2


def test_trace_of_one_sample_says_one_outer_product():
    layer = nn.Linear(3, 2)
    with mg.debug.trace() as t:
        layer(mg.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert t.steps[-1].note.startswith("dW = outer(delta, x): one outer product")


def grads_of_a_training_step(tool):
    model = MLP()
    loss = mlp_loss(model, batch=5)
    with tool:
        loss.backward()
    return [p.grad.copy() for p in model.parameters()], loss.item()


@pytest.mark.parametrize(
    "tool",
    [
        lambda: mg.debug.trace(),
        lambda: mg.detect_anomaly(),
        lambda: mg.debug.break_on("NoSuchOp"),
    ],
    ids=["trace", "detect_anomaly", "break_on"],
)
def test_debug_tools_change_no_number(tool):
    plain, plain_loss = grads_of_a_training_step(_nothing())
    assert autograd._DebugHooks.active is False  # off: the engine makes one cheap check
    traced, traced_loss = grads_of_a_training_step(tool())
    assert plain_loss == traced_loss
    for a, b in zip(plain, traced):
        assert a.dtype == b.dtype and np.array_equal(a, b)


class _nothing:  # noqa: N801 - a stand-in context manager
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def test_tools_switch_off_after_an_exception():
    with pytest.raises(ValueError), mg.debug.trace(), mg.detect_anomaly():
        assert autograd._DebugHooks.active is True
        raise ValueError
    assert autograd._DebugHooks.active is False
    assert mg.debug.is_anomaly_enabled() is False


# ============================================================================= break_on


def test_break_on_stops_in_a_frame_with_delta_x_and_weight(monkeypatch):
    stops = []

    def fake_breakpoint(*args, **kwargs):
        frame = sys._getframe(1)
        stops.append(dict(frame.f_locals))

    monkeypatch.setattr(sys, "breakpointhook", fake_breakpoint)
    model = MLP()
    loss = mlp_loss(model)
    with mg.debug.break_on("Linear"):
        loss.backward()
    assert [s["op"] for s in stops] == ["LinearBackward", "LinearBackward"]
    fc2 = stops[0]
    assert fc2["delta"].shape == (4, 2) and fc2["x"].shape == (4, 8)
    assert fc2["weight"] is not None and np.array_equal(fc2["weight"], model.fc2.weight.data)
    assert fc2["grad_output"] is fc2["delta"]
    outer_sum = sum(np.outer(fc2["delta"][b], fc2["x"][b]) for b in range(4))
    np.testing.assert_allclose(outer_sum, model.fc2.weight.grad, rtol=1e-12)


@pytest.mark.parametrize(
    ("target", "ops", "weight_shapes"),
    [
        ("fc1", ["LinearBackward"], [(8, 3)]),
        ("fc2", ["LinearBackward"], [(2, 8)]),
        ("Relu", ["ReluBackward"], [None]),
        ("ReluBackward", ["ReluBackward"], [None]),
        ("*", ["MeanBackward", "PowBackward", "SubBackward"], None),
    ],
)
def test_break_on_an_op_or_a_named_layer(monkeypatch, target, ops, weight_shapes):
    stops = []
    monkeypatch.setattr(sys, "breakpointhook", lambda: stops.append(sys._getframe(1).f_locals))
    with mg.debug.break_on(target):
        mlp_loss(MLP()).backward()
    assert [s["op"] for s in stops][: len(ops)] == ops
    if weight_shapes is not None:
        assert len(stops) == len(ops)
        assert [None if s["weight"] is None else s["weight"].shape for s in stops] == (
            weight_shapes
        )


def test_break_on_a_layer_of_a_sequential_by_index(monkeypatch):
    stops = []
    monkeypatch.setattr(sys, "breakpointhook", lambda: stops.append(sys._getframe(1).f_locals))
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    with mg.debug.break_on("2"):
        model(mg.randn(5, 3)).sum().backward()
    assert [s["weight"].shape for s in stops] == [(1, 4)]


PDB_SCRIPT = """
import json
import numpy as np
import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(3)
        self.fc1 = nn.Linear(3, 4, dtype=mg.float64, generator=rng)
        self.fc2 = nn.Linear(4, 2, dtype=mg.float64, generator=rng)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))

model = MLP()
x = mg.tensor([0.5, -1.0, 2.0], dtype=mg.float64)  # one sample: dW is one outer product
loss = (model(x) ** 2).sum()
with mg.debug.break_on("Linear"):
    loss.backward()
print("GRAD_FC2", json.dumps(model.fc2.weight.grad.tolist()))
print("GRAD_FC1", json.dumps(model.fc1.weight.grad.tolist()))
"""

PDB_COMMANDS = """\
p op
p "DELTA", delta.tolist()
p "X", x.tolist()
next
p "GRAD_WEIGHT", grad_inputs[1].tolist()
p "OUTER_OK", bool(np.allclose(np.outer(delta, x), grad_inputs[1]))
continue
up
up
p "UP", type(self).__name__
down
down
step
p "STEPPED", ctx.needs_input_grad
continue
"""


def test_a_scripted_pdb_session_stops_in_the_linear_backward(tmp_path):
    script = tmp_path / "mlp_pdb.py"
    script.write_text(PDB_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONBREAKPOINT"}
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run(
        [sys.executable, str(script)],
        input=PDB_COMMANDS,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    # it stopped in debug.py's small frame, on the line that calls the op's backward
    assert "_stop_in_backward()" in out
    assert "grad_inputs = node.function.backward(node.ctx, *grad_outputs)" in out
    assert "'LinearBackward'" in out

    def printed(label):
        (line,) = [ln for ln in out.splitlines() if f"('{label}'," in ln]
        return ast.literal_eval(line[line.index(f"('{label}',") :])[1]

    delta, x = np.array(printed("DELTA")), np.array(printed("X"))
    grad_weight = np.array(printed("GRAD_WEIGHT"))
    assert delta.shape == (2,) and x.shape == (4,)  # fc2: delta (out,), x its input (in,)
    assert (x != 0).all() and (delta != 0).all()
    assert printed("OUTER_OK") is True
    (recorded,) = [ln for ln in out.splitlines() if "GRAD_FC2 " in ln]  # after a "(Pdb) "
    recorded_grad = np.array(ast.literal_eval(recorded.split("GRAD_FC2 ", 1)[1]))
    np.testing.assert_allclose(np.outer(delta, x), recorded_grad, rtol=1e-12)
    np.testing.assert_allclose(grad_weight, recorded_grad, rtol=1e-12)
    # `up` twice reaches Node.backward; `step` from the stop enters LinearFunction.backward
    assert "('UP', 'Node')" in out
    assert "--Call--" in out and "functional.py" in out
    assert "('STEPPED', (False, True, True))" in out


# ============================================================================= anomaly mode


def test_anomaly_mode_names_log_and_the_line_for_log_of_zero():
    x = mg.tensor([0.0, 1.0], dtype=mg.float64, requires_grad=True)
    with mg.detect_anomaly():
        y = x.log()  # anomaly: log
        loss = y.sum()
        with pytest.raises(RuntimeError) as err:
            loss.backward()
    message = str(err.value)
    assert "Function 'LogBackward' returned inf values in its 0th output" in message
    assert f'"{__file__}", line {line_of("# anomaly: log")}' in message
    assert "y = x.log()" in message
    assert x.grad is None  # the failed backward wrote no gradient
    assert mg.debug.created_at(y.grad_fn).lineno == line_of("# anomaly: log")


def test_anomaly_mode_names_sqrt_at_zero_reached_through_a_model():
    w = mg.tensor([[0.0, 4.0]], dtype=mg.float64, requires_grad=True)
    with mg.detect_anomaly():
        loss = (w.sqrt() * 3.0).sum()  # anomaly: sqrt
        with pytest.raises(RuntimeError) as err:
            loss.backward()
    message = str(err.value)
    assert "Function 'SqrtBackward' returned inf values" in message
    assert f"line {line_of('# anomaly: sqrt')}" in message and Path(__file__).name in message


def test_anomaly_mode_catches_a_nan_gradient_made_in_a_module_forward():
    class Model(nn.Module):
        def forward(self, x):
            return x.sqrt() * 0.0  # anomaly: in forward

    x = mg.tensor([0.0, 1.0], dtype=mg.float64, requires_grad=True)
    with mg.detect_anomaly():
        out = Model()(x)  # anomaly: the call
        with pytest.raises(RuntimeError) as err:
            out.sum().backward()
    message = str(err.value)
    # the gradient 0 reaching sqrt at 0 becomes 0 / 0 = nan
    assert "Function 'SqrtBackward' returned nan values in its 0th output" in message
    assert f"line {line_of('# anomaly: in forward')}, in forward" in message
    assert f"line {line_of('# anomaly: the call')}" in message  # the caller, below it


def test_anomaly_mode_catches_nan_in_forward_with_the_line():
    with mg.detect_anomaly(), pytest.raises(RuntimeError) as err:
        mg.tensor([4.0, -1.0]).sqrt()  # anomaly: nan forward
    message = str(err.value)
    assert "Function 'Sqrt' produced nan values in its 0th output" in message
    assert "1 of 2 values" in message
    assert f"line {line_of('# anomaly: nan forward')}" in message


def test_anomaly_mode_points_into_a_module_forward_not_into_minigrad():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2, dtype=mg.float64)

        def forward(self, x):
            return self.fc(x).exp()  # anomaly: module forward

    model = Model()
    with mg.detect_anomaly():
        loss = model(mg.tensor([[1.0, 2.0]], dtype=mg.float64)).abs().sum()
    linear_node = loss.grad_fn.next_functions[0][0].next_functions[0][0].next_functions[0][0]
    assert linear_node.name() == "LinearBackward"
    site = mg.debug.created_at(linear_node)
    assert site.filename == __file__ and "self.fc(x)" in site.code
    assert site.lineno == line_of("# anomaly: module forward")


def test_anomaly_without_forward_inside_says_to_run_the_forward_inside():
    x = mg.tensor([0.0], dtype=mg.float64, requires_grad=True)
    loss = x.sqrt().sum()
    with mg.detect_anomaly(), pytest.raises(RuntimeError, match="outside detect_anomaly"):
        loss.backward()


def test_detect_anomaly_check_nan_false_records_but_does_not_raise():
    x = mg.tensor([0.0], dtype=mg.float64, requires_grad=True)
    with mg.detect_anomaly(check_nan=False):
        y = x.sqrt()
        y.sum().backward()
    assert np.isinf(x.grad).all()
    assert mg.debug.created_at(y.grad_fn) is not None


def test_detect_anomaly_as_a_decorator_and_set_detect_anomaly():
    @mg.detect_anomaly()
    def run():
        assert mg.debug.is_anomaly_enabled()
        return mg.tensor([1.0], requires_grad=True).log()

    assert mg.debug.created_at(run().grad_fn).function == "run"
    assert not mg.debug.is_anomaly_enabled()
    with mg.debug.set_detect_anomaly(True):
        assert mg.debug.is_anomaly_enabled()
    assert not mg.debug.is_anomaly_enabled()
    mg.debug.set_detect_anomaly(True)
    assert autograd._DebugHooks.active
    mg.debug.set_detect_anomaly(False)
    assert not mg.debug.is_anomaly_enabled()


# ============================================================================= readable objects


def test_parameters_are_named_after_their_place_in_the_model():
    model = MLP()
    assert [p.name for p in model.parameters()] == [n for n, _ in model.named_parameters()]
    assert model.fc1.weight.name == "fc1.weight"
    assert "name='fc1.weight'" in repr(model.fc1.weight)
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 1)))
    assert [p.name for p in seq.parameters()] == ["0.weight", "0.bias", "2.0.weight", "2.0.bias"]
    by_hand = nn.Linear(2, 2)
    by_hand.weight.name = "mine"
    holder = nn.Sequential(by_hand)
    assert holder[0].weight.name == "mine" and holder[0].bias.name == "0.bias"


def test_node_repr_shows_op_input_shapes_and_saved_arrays():
    layer = nn.Linear(3, 2)
    y = layer(mg.randn(4, 3))
    text = repr(y.grad_fn)
    assert text.startswith("<LinearBackward inputs=[(4, 3), (2, 3), (2,)]")
    assert "saved=[(4, 3) float32, (2, 3) float32]" in text
    edges = y.grad_fn.next_functions
    assert edges[0] == (None, 0)
    assert repr(edges[1][0]) == "<AccumulateGrad weight (2, 3)>"
    y.sum().backward()
    assert "freed" in repr(y.grad_fn)


def test_tensor_repr_summarises_large_tensors_with_shape_and_dtype():
    big = mg.zeros(50, 40, requires_grad=True)
    big.name = "big"
    text = repr(big)
    assert "..." in text and "shape=(50, 40)" in text and "dtype=float32" in text
    assert "requires_grad=True" in text and "name='big'" in text
    small = mg.tensor([1.0, 2.0], requires_grad=True) * 2
    assert repr(small) == "tensor([2., 4.], grad_fn=<MulBackward>)"
    assert repr(mg.zeros(0, 3)) == "tensor([], shape=(0, 3))"


def test_last_linear_backward_is_remembered_while_a_tool_is_on():
    model = MLP()
    loss = mlp_loss(model)
    assert mg.debug.last_linear_backward(model.fc1) is None
    with mg.debug.trace():
        loss.backward()
    record = mg.debug.last_linear_backward(model.fc2)
    assert record.delta.shape == (4, 2) and record.x.shape == (4, 8)
    np.testing.assert_allclose(record.delta.T @ record.x, model.fc2.weight.grad)
    np.testing.assert_array_equal(record.grad_weight, model.fc2.weight.grad)


def test_the_engine_hook_is_one_flag_check():
    source = textwrap.dedent(Path(autograd.__file__).read_text())
    assert source.count("if _DebugHooks.active:") == 2  # Function.apply and Node.backward
    assert source.count("# <- every op's backward runs here") == 1
