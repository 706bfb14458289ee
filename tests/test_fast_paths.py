"""Fast paths pinned to the plain paths they stand in for.

Each fast path in the engine and the ops has a comment saying why it exists; the tests here
check that it computes exactly what the plain path computes, and that it never lets two
owners share one array.

* Leaves keep a new gradient array instead of a copy (``autograd._is_new``): a leaf's
  ``.grad`` must never be an array someone else holds.
* Topological order by ``sequence_nr`` (creation order) instead of a depth-first search.
* ``LinearFunction.backward`` skips the reshape for a 2-D input.
* ``Function.apply`` makes one pass over its arguments.
* ``Relu`` saves its output rather than its input; ``check_broadcast`` skips Python numbers.
* The engine calls ``_fit_to_input`` only for a gradient whose shape or dtype differs.
* Optimizers update parameters with ``optimizer.add_to_param_`` instead of ``param.add_``.
* Nodes share one ``(shape, dtype)`` tuple per distinct pair (``autograd._shared_meta``), and
  ``Context`` keeps saved versions in two flat tuples: fewer objects for the collector.
"""

from __future__ import annotations

import weakref

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import autograd, debug, nn, optim
from minigrad._shapes import check_broadcast
from minigrad.autograd import AccumulateGrad, topological_order


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _mlp_step_grads(seed: int) -> list[np.ndarray]:
    """The gradients of a small MLP's cross-entropy, after two backward passes."""
    r = rng(seed)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    model.load_state_dict({k: r.standard_normal(v.shape) for k, v in model.state_dict().items()})
    x = mg.tensor(r.standard_normal((6, 5)).astype(np.float32))
    target = r.integers(0, 3, 6)
    for _ in range(2):  # the second backward adds into the first's arrays
        F.cross_entropy(model(x), target).backward()
    return [p.grad.copy() for p in model.parameters()]


# ----------------------------------------------------------------------------- leaves keep arrays


def test_leaf_gradients_equal_the_always_copy_path(monkeypatch):
    fast = _mlp_step_grads(1)
    monkeypatch.setattr(autograd, "_is_new", lambda *args: False)  # the plain path: always copy
    plain = _mlp_step_grads(1)
    for f, p in zip(fast, plain):
        np.testing.assert_array_equal(f, p)


def test_linear_weight_gradient_is_kept_without_a_copy_and_is_c_contiguous(monkeypatch):
    kept = []
    is_new = autograd._is_new

    def spy(grad, node, grad_outputs, grad_inputs):
        result = is_new(grad, node, grad_outputs, grad_inputs)
        kept.append((node.name(), result))
        return result

    monkeypatch.setattr(autograd, "_is_new", spy)
    layer = nn.Linear(4, 3)
    x = mg.tensor(rng(2).standard_normal((8, 4)).astype(np.float32))
    layer(x).backward(np.ones((8, 3), dtype=np.float32))
    assert kept == [("LinearBackward", True), ("LinearBackward", True)]  # weight and bias
    assert layer.weight.grad.flags.c_contiguous
    np.testing.assert_allclose(layer.weight.grad, np.ones((3, 8)) @ x.data, rtol=1e-6)


def test_add_of_two_leaves_gives_each_its_own_array():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = mg.tensor([3.0, 4.0], requires_grad=True)
    (x + y).backward(np.array([1.0, 1.0], dtype=np.float32))
    assert x.grad is not y.grad
    x.grad *= 10  # clip_grad_norm_ scales gradients in place like this
    np.testing.assert_array_equal(y.grad, [1.0, 1.0])


def test_a_leaf_never_keeps_the_callers_upstream_gradient():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    upstream = np.array([5.0, 6.0], dtype=np.float32)
    (x + 0.0).backward(upstream)  # AddBackward hands `upstream` itself on to x
    assert x.grad is not upstream
    x.backward(upstream)  # backward on the leaf itself
    np.testing.assert_array_equal(upstream, [5.0, 6.0])
    np.testing.assert_array_equal(x.grad, [10.0, 12.0])


def test_a_hook_that_keeps_its_gradient_does_not_share_it_with_grad():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(seen.append)
    (x * 3.0).backward(np.ones(2, dtype=np.float32))
    assert seen[0] is not x.grad
    x.grad += 1
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])


class _ReturnsWhatItKeeps(mg.Function):
    """A user's op whose backward returns arrays it also keeps (saved, an attribute, twice)."""

    @staticmethod
    def forward(ctx, a, b):
        ones = np.ones_like(a)
        ctx.save_for_backward(ones)
        ctx.kept = np.full_like(a, 2.0)
        return a + b

    @staticmethod
    def backward(ctx, grad_output):
        (ones,) = ctx.saved_tensors
        return ones, ctx.kept


class _SameArrayTwice(mg.Function):
    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, grad_output):
        g = grad_output * 1.0  # a new array, handed to both inputs
        return g, g


def test_a_users_function_gradients_are_copied():
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    b = mg.tensor([1.0, 2.0], requires_grad=True)
    out = _ReturnsWhatItKeeps.apply(a, b)
    kept = out.grad_fn.ctx.kept
    out.backward(np.ones(2, dtype=np.float32), retain_graph=True)
    assert a.grad is not out.grad_fn.ctx.saved_tensors[0]
    assert b.grad is not kept
    out.backward(np.ones(2, dtype=np.float32))  # accumulates into .grad, in place
    np.testing.assert_array_equal(kept, [2.0, 2.0])
    np.testing.assert_array_equal(b.grad, [4.0, 4.0])

    c = mg.tensor([1.0], requires_grad=True)
    d = mg.tensor([1.0], requires_grad=True)
    _SameArrayTwice.apply(c, d).backward(np.ones(1, dtype=np.float32))
    assert c.grad is not d.grad


def test_debug_tools_see_arrays_that_no_leaf_keeps():
    layer = nn.Linear(3, 2)
    x = mg.tensor(rng(3).standard_normal((4, 3)).astype(np.float32))
    with debug.trace():
        layer(x).backward(np.ones((4, 2), dtype=np.float32))
    record = debug.last_linear_backward(layer)
    assert record is not None
    assert record.grad_weight is not layer.weight.grad
    np.testing.assert_array_equal(record.grad_weight, layer.weight.grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_accumulate_grad_keeps_an_owned_array_of_its_dtype_only(dtype):
    t = mg.tensor(np.zeros(3, dtype=dtype), requires_grad=True)
    grad = np.ones(3, dtype=np.float32)
    t._accumulate_grad(grad, owned=True)
    assert (t.grad is grad) == (dtype == np.float32)
    assert t.grad.dtype == dtype
    shared = np.ones(3, dtype=dtype)
    u = mg.tensor(np.zeros(3, dtype=dtype), requires_grad=True)
    u._accumulate_grad(shared)  # not owned: a copy
    assert u.grad is not shared


# ----------------------------------------------------------------------------- topological order


def _reference_order(roots: tuple) -> list:
    """The plain path: reverse post-order of a depth-first search, leaves last."""
    post_order, seen = [], set()
    for root in roots:
        stack = [(root, iter(root.next_functions))]
        seen.add(root)
        while stack:
            node, edges = stack[-1]
            for child, _ in edges:
                if child is not None and child not in seen:
                    seen.add(child)
                    stack.append((child, iter(child.next_functions)))
                    break
            else:
                stack.pop()
                post_order.append(node)
    post_order.reverse()
    ops = [n for n in post_order if not isinstance(n, AccumulateGrad)]
    return ops + [n for n in post_order if isinstance(n, AccumulateGrad)]


@pytest.mark.parametrize("seed", range(5))
def test_creation_order_is_a_topological_order_of_random_graphs(seed):
    r = rng(seed)
    leaves = [mg.tensor(r.standard_normal(3), requires_grad=True) for _ in range(3)]
    values = list(leaves)
    for _ in range(12):
        i, j = r.integers(0, len(values), 2)
        op = r.integers(0, 3)
        a, b = values[i], values[j]
        values.append(a * b if op == 0 else (a + b).tanh() if op == 1 else a.exp() - b)
    out = values[-1] + values[-2] * values[-3]
    order = topological_order((out.grad_fn,))
    assert set(order) == set(_reference_order((out.grad_fn,)))
    position = {node: k for k, node in enumerate(order)}
    for node in order:
        for child, _ in node.next_functions:
            if child is not None:
                assert position[child] > position[node]
    assert all(isinstance(n, AccumulateGrad) for n in order[len(order) - len(leaves) :])


def test_freed_graph_raises_before_any_hook_runs():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2.0
    (h * 3.0).backward(np.ones(2, dtype=np.float32))  # frees h's node
    y = h * 4.0
    calls = []
    y.register_hook(calls.append)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward(np.ones(2, dtype=np.float32))
    assert calls == []


# ----------------------------------------------------------------------------- ops


def test_linear_backward_for_2d_input_equals_the_flattened_3d_path():
    r = rng(4)
    weight = r.standard_normal((3, 5))
    bias = r.standard_normal(3)
    x2 = r.standard_normal((6, 5))
    upstream = r.standard_normal((6, 3))
    grads = []
    for x, g in ((x2, upstream), (x2.reshape(2, 3, 5), upstream.reshape(2, 3, 3))):
        w = mg.tensor(weight, requires_grad=True)
        b = mg.tensor(bias, requires_grad=True)
        xt = mg.tensor(x, requires_grad=True)
        F.linear(xt, w, b).backward(g)
        grads.append((w.grad, b.grad, xt.grad.reshape(6, 5)))
    for two_d, three_d in zip(*grads):
        np.testing.assert_allclose(two_d, three_d, rtol=1e-12)


def test_apply_passes_non_tensor_arguments_and_needs_input_grad():
    seen = {}

    class Scale(mg.Function):
        @staticmethod
        def forward(ctx, x, factor, y):
            seen["needs"] = ctx.needs_input_grad
            return x * factor + y

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output * 2.0, None, grad_output

    x = mg.tensor([1.0], requires_grad=True)
    y = mg.tensor([1.0])
    out = Scale.apply(x, 2.0, y)
    assert seen["needs"] == (True, False, False)
    assert out.grad_fn.next_functions[1:] == ((None, 0), (None, 0))
    with mg.no_grad():
        assert Scale.apply(x, 2.0, y).grad_fn is None
    assert seen["needs"] == (False, False, False)


def test_relu_saves_its_output_so_its_input_can_be_freed():
    x = mg.tensor([-1.0, 0.0, 2.0, float("nan")], requires_grad=True)
    z = x * 1.0  # a pre-activation, like a Linear layer's output
    z_data = weakref.ref(z.data)
    out = z.relu()
    del z
    assert z_data() is None  # the graph does not keep the pre-activation
    out.backward(np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32))
    # relu'(0) = 0, and a NaN passes its gradient, as in PyTorch
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 3.0, 4.0])


@pytest.mark.parametrize(
    ("a", "b", "ok"),
    [
        (np.ones((2, 3)), 2.0, True),  # a Python number: no shape check at all
        (3, np.ones((2, 3)), True),
        (np.ones((2, 3)), np.float64(2.0), True),  # a 0-d value
        (np.ones((2, 3)), np.ones(3), True),
        (np.ones((2, 3)), np.ones(2), False),
    ],
)
def test_check_broadcast_fast_exit_agrees_with_numpy(a, b, ok):
    if ok:
        check_broadcast("add", a, b)
        assert np.broadcast(a, b).shape == (2, 3)
    else:
        with pytest.raises(RuntimeError, match=r"add: shapes \(2, 3\) and \(2,\) cannot be"):
            check_broadcast("add", a, b)


@pytest.mark.parametrize("register", ["hook", "retain_grad"])
def test_backward_looks_for_hooks_once_any_is_registered(monkeypatch, register):
    monkeypatch.setattr(autograd._TensorHooks, "used", False)  # as in a fresh program
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2.0
    seen = []
    if register == "hook":
        h.register_hook(seen.append)
    else:
        h.retain_grad()
    assert autograd._TensorHooks.used
    (h * 3.0).backward(np.ones(2, dtype=np.float32))
    got = seen[0] if register == "hook" else h.grad
    np.testing.assert_array_equal(got, [3.0, 3.0])


# ----------------------------------------------------------------------------- fitting gradients


class _Float64Grad(mg.Function):
    """A user's op whose backward returns float64 for a float32 input, in the output's shape."""

    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.astype(np.float64), grad_output.astype(np.float64)


def test_fit_to_input_runs_only_for_gradients_that_need_it(monkeypatch):
    calls = []
    fit = autograd._fit_to_input

    def spy(node, i, grad):
        calls.append((node.name(), i))
        return fit(node, i, grad)

    monkeypatch.setattr(autograd, "_fit_to_input", spy)
    a = mg.tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    b = mg.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    (a * b).backward(np.full((2, 3), 2.0, dtype=np.float32))
    assert calls == [("MulBackward", 1)]  # only b's gradient is un-broadcast, (2, 3) -> (3,)
    np.testing.assert_array_equal(b.grad, [4.0, 4.0, 4.0])
    assert a.grad.dtype == np.float32

    calls.clear()
    c = mg.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    _Float64Grad.apply(c, b).backward(np.ones(3, dtype=np.float32))
    assert calls == [("_Float64GradBackward", 0), ("_Float64GradBackward", 1)]  # cast to float32
    assert c.grad.dtype == np.float32 and b.grad.dtype == np.float32
    np.testing.assert_array_equal(b.grad, [5.0, 5.0, 5.0])


# ----------------------------------------------------------------------------- optimizer updates


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alpha", [1, -0.01, -1e-3])
def test_add_to_param_equals_add_and_bumps_the_version(dtype, alpha):
    r = rng(7)
    data = r.standard_normal((5, 3)).astype(dtype)
    update = r.standard_normal((5, 3)).astype(dtype)
    lean = nn.Parameter(data)
    plain = nn.Parameter(data)
    with mg.no_grad():
        plain.add_(update, alpha=alpha)
    before = lean._version.value
    optim.optimizer.add_to_param_(lean, update, alpha)
    np.testing.assert_array_equal(lean.data, plain.data)  # bit for bit
    assert lean.data.dtype == dtype
    assert lean._version.value == before + 1


def _train(make_optimizer, monkeypatch, plain: bool) -> list[np.ndarray]:
    if plain:  # the plain path: the public in-place method, with all its checks

        def add_to_param_(param, update, alpha):
            param.add_(update, alpha=alpha)

        for module in (optim.sgd, optim.adam, optim.rmsprop):
            monkeypatch.setattr(module, "add_to_param_", add_to_param_)
    r = rng(8)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    model.load_state_dict({k: r.standard_normal(v.shape) for k, v in model.state_dict().items()})
    optimizer = make_optimizer(model.parameters())
    x = mg.tensor(r.standard_normal((6, 4)).astype(np.float32))
    target = r.integers(0, 2, 6)
    for _ in range(3):
        optimizer.zero_grad()
        F.cross_entropy(model(x), target).backward()
        optimizer.step()
    return [p.data.copy() for p in model.parameters()]


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda p: optim.SGD(p, lr=0.1),
        lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2, nesterov=True),
        lambda p: optim.Adam(p, lr=0.01),
        lambda p: optim.AdamW(p, lr=0.01, amsgrad=True),
        lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
        lambda p: optim.RMSprop(p, lr=0.01),
    ],
)
def test_optimizer_steps_equal_the_add_path(make_optimizer, monkeypatch):
    lean = _train(make_optimizer, monkeypatch, plain=False)
    plain = _train(make_optimizer, monkeypatch, plain=True)
    for a, b in zip(lean, plain):
        np.testing.assert_array_equal(a, b)


def test_an_optimizer_step_makes_saved_parameters_stale():
    layer = nn.Linear(3, 2)
    optimizer = optim.SGD(layer.parameters(), lr=0.1)
    x = mg.tensor(rng(9).standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    out = layer(x)
    out.backward(np.ones((4, 2), dtype=np.float32), retain_graph=True)
    optimizer.step()  # changes the weight that LinearBackward saved
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward(np.ones((4, 2), dtype=np.float32))


# ----------------------------------------------------------------------------- fewer objects per op


def test_meta_tuples_are_shared_and_still_each_arrays_shape_and_dtype(monkeypatch):
    x = mg.tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2.0
    z = y.tanh()
    assert z.grad_fn._input_meta[0] is y.grad_fn._output_meta[0]  # shared, not a copy
    assert z.grad_fn._input_meta[0] == ((2, 3), np.dtype(np.float64))
    y.data = np.ones((4,), dtype=np.float32)  # replaced since: a new shape and dtype
    w = y.exp()
    assert w.grad_fn._input_meta[0] == ((4,), np.dtype(np.float32))
    assert w.grad_fn._output_meta[0] == ((4,), np.dtype(np.float32))
    metas: dict = {}
    monkeypatch.setattr(autograd, "_metas", metas)
    for n in range(1, 1100):  # many shapes: the table starts over rather than growing
        assert autograd._shared_meta(np.ones(n)) == ((n,), np.dtype(np.float64))
        assert len(metas) <= 1024


class _SavesAnInputAndANewArray(mg.Function):
    @staticmethod
    def forward(ctx, a, b):
        twice = a * 2.0
        ctx.save_for_backward(twice, b)  # a new array, then an input's data
        return twice * b

    @staticmethod
    def backward(ctx, grad_output):
        twice, b = ctx.saved_tensors
        return grad_output * b * 2.0, grad_output * twice


def test_saved_versions_check_only_the_arrays_that_are_tensor_data():
    a = mg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = mg.tensor(np.array([3.0, 4.0]), requires_grad=True)
    out = _SavesAnInputAndANewArray.apply(a, b)
    assert out.grad_fn.ctx._counters == (None, b._version)
    a.data += 1.0  # not saved as it is: backward stays valid
    out.sum().backward(retain_graph=True)
    np.testing.assert_array_equal(b.grad, [2.0, 4.0])
    with mg.no_grad():
        b.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_a_node_refers_to_its_outputs_only_once_they_get_a_hook_or_a_name():
    # Node.keep_output: no weak references for outputs nobody asks about; hooks, retain_grad
    # and names registered after the op ran still find their tensor.
    x = mg.tensor([1.0, -2.0], requires_grad=True)
    y, z, w = x * 2.0, x * 3.0, x * 4.0
    assert y.grad_fn._outputs is None and y.grad_fn.output_tensors() == (None,)
    seen = []
    y.register_hook(lambda grad: seen.append(grad.copy()))
    z.retain_grad()
    w.name = "w"
    assert [t.grad_fn.output_tensors() for t in (y, z, w)] == [(y,), (z,), (w,)]
    (y + z + w).sum().backward()
    np.testing.assert_array_equal(seen[0], [1.0, 1.0])
    np.testing.assert_array_equal(z.grad, [1.0, 1.0])
    np.testing.assert_array_equal(x.grad, [9.0, 9.0])
    _first, second = _Halves.apply(mg.tensor([3.0, 4.0], requires_grad=True))
    second.name = "second"
    assert second.grad_fn.output_tensors() == (None, second)


class _Halves(mg.Function):
    """A user's op with two outputs: the two halves of a vector."""

    @staticmethod
    def forward(ctx, x):
        n = len(x) // 2
        return x[:n].copy(), x[n:].copy()

    @staticmethod
    def backward(ctx, grad_first, grad_second):
        return np.concatenate([grad_first, grad_second])
