"""The backward engine: gradient flow through graphs of every shape, retain_graph, version
counters, deep graphs, memory release and determinism.

Comparisons with PyTorch run the same expression on float64 inputs with a random upstream
gradient (never ``.sum()``).
"""

from __future__ import annotations

import contextlib
import gc
import sys
import tracemalloc
import weakref
from collections.abc import Callable, Iterator

import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd import AccumulateGrad, topological_order


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def grads_vs_torch(
    torch, fn: Callable, *arrays: np.ndarray, seed: int = 1
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Run ``fn`` on minigrad and torch leaves (float64) with one random upstream gradient."""
    mg_in = [mg.tensor(a, requires_grad=True) for a in arrays]
    torch_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    mg_out = fn(*mg_in)
    torch_out = fn(*torch_in)
    np.testing.assert_allclose(mg_out.data, torch_out.detach().numpy(), rtol=1e-12, atol=1e-12)
    upstream = rng(seed).standard_normal(mg_out.shape)
    mg_out.backward(upstream)
    torch_out.backward(torch.tensor(upstream))
    return [t.grad for t in mg_in], [t.grad.numpy() for t in torch_in]


def assert_same_grads(ours: list[np.ndarray], theirs: list[np.ndarray]) -> None:
    assert len(ours) == len(theirs)
    for g, h in zip(ours, theirs):
        assert g is not None
        assert g.dtype == h.dtype
        np.testing.assert_allclose(g, h, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- gradient flow


def test_tensor_used_twice_twice_gets_four():
    a = mg.tensor(3.0, requires_grad=True)
    b = a + a
    c = b + b
    c.backward()
    assert a.grad is not None
    assert a.grad.dtype == np.float32
    assert a.grad == 4.0


def test_diamond_matches_torch(torch_module):
    # x feeds y and z, which meet again in w = y * z.
    def diamond(x):
        y = x.exp()
        z = x.tanh() * 3.0
        return y * z

    ours, theirs = grads_vs_torch(torch_module, diamond, rng(0).standard_normal((3, 4)))
    assert_same_grads(ours, theirs)


def test_diamond_with_two_leaves_and_broadcasting_matches_torch(torch_module):
    def fn(x, b):
        h = x @ x.T + b  # (3, 3) + (3,)
        left = h.sigmoid()
        right = (h * b).relu()
        return left * right - h / (1.0 + b * b)

    ours, theirs = grads_vs_torch(
        torch_module, fn, rng(2).standard_normal((3, 5)), rng(3).standard_normal(3)
    )
    assert_same_grads(ours, theirs)


def test_shared_subexpression_matches_torch(torch_module):
    def fn(x, y):
        s = x * y  # used four times below
        return s * s + s.exp() - s / 2.0 + (s @ s.T).sum(1, keepdim=True)

    ours, theirs = grads_vs_torch(
        torch_module, fn, rng(4).standard_normal((4, 4)), rng(5).standard_normal((4, 4))
    )
    assert_same_grads(ours, theirs)


class CountingSquare(mg.Function):
    """x^2, counting how often its backward runs."""

    calls = 0

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_output):
        CountingSquare.calls += 1
        (x,) = ctx.saved_tensors
        return 2 * x * grad_output


def test_shared_node_backward_runs_once_with_summed_gradient():
    x = mg.tensor([1.0, -2.0, 3.0], dtype=mg.float64, requires_grad=True)
    CountingSquare.calls = 0
    s = CountingSquare.apply(x)
    out = s * 2.0 + s * 3.0 + s  # three uses: the gradients meet before s's backward runs
    out.backward(np.array([1.0, 10.0, 100.0]))
    assert CountingSquare.calls == 1
    np.testing.assert_allclose(x.grad, 6.0 * 2 * x.data * np.array([1.0, 10.0, 100.0]))


def test_gradients_accumulate_over_two_backward_calls(torch_module):
    torch = torch_module
    data = rng(6).standard_normal(5)
    g1, g2 = rng(7).standard_normal(5), rng(8).standard_normal(5)
    x = mg.tensor(data, requires_grad=True)
    (x * x).backward(g1)
    first = x.grad.copy()
    x.exp().backward(g2)
    tx = torch.tensor(data, requires_grad=True)
    (tx * tx).backward(torch.tensor(g1))
    tx.exp().backward(torch.tensor(g2))
    np.testing.assert_allclose(first, 2 * data * g1)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)


def test_retain_graph_allows_a_second_backward(torch_module):
    torch = torch_module
    data, upstream = rng(9).standard_normal(4), rng(10).standard_normal(4)
    x = mg.tensor(data, requires_grad=True)
    y = (x * x).tanh()
    y.backward(upstream, retain_graph=True)
    once = x.grad.copy()
    y.backward(upstream)
    tx = torch.tensor(data, requires_grad=True)
    ty = (tx * tx).tanh()
    ty.backward(torch.tensor(upstream), retain_graph=True)
    ty.backward(torch.tensor(upstream))
    np.testing.assert_allclose(x.grad, 2 * once)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)


def test_second_backward_without_retain_graph_raises_and_keeps_grad():
    x = mg.tensor([1.0, 2.0], dtype=mg.float64, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    before = x.grad.copy()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()
    np.testing.assert_array_equal(x.grad, before)


def test_backward_through_a_freed_subgraph_raises():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    (h * 2.0).sum().backward()
    with pytest.raises(RuntimeError, match="Specify retain_graph=True"):
        (h * 3.0).sum().backward()  # the new graph reaches h's freed ExpBackward


def test_backward_of_several_roots_matches_torch(torch_module):
    torch = torch_module
    a, b = rng(11).standard_normal((2, 3)), rng(12).standard_normal(3)
    g1, g2 = rng(13).standard_normal((2, 3)), rng(14).standard_normal(3)
    x, w = mg.tensor(a, requires_grad=True), mg.tensor(b, requires_grad=True)
    mg.autograd.backward([x * w, (x.sum(0) * w).tanh()], [g1, g2])
    tx, tw = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    torch.autograd.backward(
        [tx * tw, (tx.sum(0) * tw).tanh()], [torch.tensor(g1), torch.tensor(g2)]
    )
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad, tw.grad.numpy(), rtol=1e-12)


class SplitHalves(mg.Function):
    """Two outputs: the first and second half of a vector."""

    @staticmethod
    def forward(ctx, x):
        n = x.shape[0] // 2
        return x[:n].copy(), x[n:].copy()

    @staticmethod
    def backward(ctx, grad_first, grad_second):
        return np.concatenate([grad_first, grad_second])


def test_unused_output_of_multi_output_function_gets_zero_gradient():
    x = mg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    first, second = SplitHalves.apply(x)
    assert first.grad_fn is second.grad_fn
    (first * 5.0).backward(np.ones(2, dtype=np.float32))
    np.testing.assert_array_equal(x.grad, [5.0, 5.0, 0.0, 0.0])


def test_only_leaves_that_require_grad_get_grad():
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    b = mg.tensor([3.0, 4.0])
    h = a * b
    (h * h).backward(np.ones(2, dtype=np.float32))
    np.testing.assert_allclose(a.grad, 2 * a.data * b.data**2)
    assert b.grad is None
    assert h.grad is None  # not a leaf and no retain_grad


def test_gradient_is_unbroadcast_and_cast_to_each_input():
    a = mg.tensor(np.ones((3, 1), dtype=np.float32), requires_grad=True)
    b = mg.tensor(rng(15).standard_normal(4), requires_grad=True)  # float64
    y = a * b  # (3, 4) float64
    upstream = rng(16).standard_normal((3, 4))
    y.backward(upstream)
    assert (a.grad.shape, a.grad.dtype) == ((3, 1), np.float32)
    assert (b.grad.shape, b.grad.dtype) == ((4,), np.float64)
    np.testing.assert_allclose(a.grad[:, 0], (upstream * b.data).sum(1), rtol=1e-6)
    np.testing.assert_allclose(b.grad, upstream.sum(0))


class BroadcastGradient(mg.Function):
    """Identity whose backward hands back the gradient tiled to (2, n): the engine sums it."""

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad_output):
        return np.stack([grad_output, grad_output])


def test_engine_sums_a_gradient_returned_in_broadcast_shape():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    BroadcastGradient.apply(x).backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])


# ----------------------------------------------------------------------------- version counter


def _modify_plain_tensor(w, x):
    x.add_(1)


def _modify_leaf_under_no_grad(w, x):
    with mg.no_grad():
        w.mul_(2)


def _modify_through_detach(w, x):
    w.detach().sub_(1)


def _modify_through_a_view(w, x):
    x.reshape(2, 2)[0].fill_(7.0)


def _modify_base_of_saved_view(w, x):
    x.zero_()


@pytest.mark.parametrize(
    "modify",
    [
        _modify_plain_tensor,
        _modify_leaf_under_no_grad,
        _modify_through_detach,
        _modify_through_a_view,
    ],
)
def test_changing_a_saved_input_in_place_makes_backward_raise(modify):
    w = mg.tensor(np.arange(4.0), requires_grad=True)
    x = mg.tensor(np.ones(4))
    y = w * x  # Mul saves both w and x
    modify(w, x)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward(np.ones(4))
    assert w.grad is None  # nothing half-updated


def test_changing_the_base_of_a_saved_view_makes_backward_raise():
    w = mg.tensor(np.arange(2.0), requires_grad=True)
    x = mg.tensor([1.0, 2.0, 3.0])
    y = w * x[:2]  # Mul saves a view of x's memory
    x.add_(10)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward(np.ones(2))
    assert w.grad is None


def test_changing_a_saved_output_in_place_makes_backward_raise():
    x = mg.tensor([0.5, 1.0], requires_grad=True)
    y = x.exp()  # ExpBackward saves its output
    z = y + 1.0  # AddBackward saves nothing
    with mg.no_grad():
        y.mul_(0.0)
    with pytest.raises(RuntimeError, match="ExpBackward"):
        z.backward(np.ones(2, dtype=np.float32))


def test_in_place_change_of_an_unsaved_input_is_allowed():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    x = mg.tensor([3.0, 4.0])
    y = w + x  # Add saves nothing
    x.add_(1)
    y.backward(np.array([2.0, 3.0]))
    np.testing.assert_array_equal(w.grad, [2.0, 3.0])


def test_in_place_change_before_the_op_is_fine():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    x = mg.tensor([3.0, 4.0])
    x.mul_(2)
    y = w * x
    y.backward(np.ones(2))
    np.testing.assert_array_equal(w.grad, [6.0, 8.0])


# ----------------------------------------------------------------------------- failed backward


class WrongCount(mg.Function):
    """Returns two gradients for one input."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad_output):
        return 2 * grad_output, grad_output


class WrongShape(mg.Function):
    """Returns a gradient of a shape that cannot belong to its input."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad_output):
        return np.ones(grad_output.shape[0] + 1)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (WrongCount, r"WrongCountBackward returned an incorrect number of gradients"),
        (WrongShape, r"WrongShapeBackward returned an invalid gradient at index 0"),
    ],
)
@pytest.mark.parametrize("bad_first", [True, False])
def test_failed_backward_leaves_every_leaf_grad_unchanged(bad, message, bad_first):
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    b = mg.tensor([3.0, 4.0], requires_grad=True)
    a.grad = np.array([10.0, 20.0], dtype=np.float32)
    good = a * 2.0
    y = bad.apply(b) + good if bad_first else good + bad.apply(b)
    with pytest.raises(RuntimeError, match=message):
        y.backward(np.ones(2, dtype=np.float32))
    np.testing.assert_array_equal(a.grad, [10.0, 20.0])
    assert b.grad is None


def test_failed_backward_keeps_the_graph_so_it_can_run_again():
    x = mg.tensor([1.0, 2.0], dtype=mg.float64, requires_grad=True)
    h = x * x
    y = (h.exp() * 3.0).sum()

    def broken_hook(grad):
        raise ValueError("hook failed")

    handle = h.register_hook(broken_hook)
    with pytest.raises(ValueError, match="hook failed"):
        y.backward()
    assert x.grad is None
    handle.remove()
    y.backward()  # the graph was not freed by the failed call
    np.testing.assert_allclose(x.grad, 3.0 * np.exp(x.data**2) * 2 * x.data)


# ----------------------------------------------------------------------------- deep graphs


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: while a chain of 10^5..10^6 nodes is built, its
    repeated passes over all live objects take longer than minigrad itself. The graph needs no
    collector (it forms no reference cycles, as tested below)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _neg_chain(n: int) -> tuple[mg.Tensor, mg.Tensor]:
    x = mg.tensor(2.0, dtype=mg.float64, requires_grad=True)
    y = x
    for _ in range(n):
        y = -y
    return x, y


def test_chain_of_200_000_ops_backpropagates():
    n = 200_001  # far beyond the recursion limit; odd, so the gradient is -1
    assert n > 100 * sys.getrecursionlimit()
    with collector_paused():
        x, y = _neg_chain(n)
        assert y.item() == -2.0
        y.backward()
    assert x.grad == -1.0


@pytest.mark.slow
def test_chain_of_a_million_ops_backpropagates_and_can_be_dropped():
    with collector_paused():
        x, y = _neg_chain(1_000_000)
        y.backward()
        assert x.grad == 1.0
        # A chain of 10^6 nodes that never ran backward is freed without a crash.
        x, y = _neg_chain(1_000_000)
        del y
        assert x._grad_accumulator() is None


def test_deep_chain_dropped_without_backward_is_freed():
    with collector_paused():
        x, y = _neg_chain(200_000)
        assert x._grad_accumulator() is not None  # held by the first node of the chain
        del y
        assert x._grad_accumulator() is None  # so every node of the chain is gone


# ----------------------------------------------------------------------------- memory


def test_backward_frees_saved_arrays_and_links():
    x = mg.tensor(rng(17).standard_normal(1000), requires_grad=True)
    h = x.exp()
    saved = weakref.ref(h.data)  # saved by ExpBackward and (twice) by MulBackward
    y = h * h
    node = y.grad_fn
    del h
    assert saved() is not None  # the graph keeps it alive
    y.backward(np.ones(1000))
    assert saved() is None
    assert node.next_functions == ()
    assert node.ctx is None


def test_retain_graph_keeps_saved_arrays_until_the_last_backward():
    x = mg.tensor(rng(18).standard_normal(10), requires_grad=True)
    h = x.tanh()
    saved = weakref.ref(h.data)
    y = h * 2.0
    del h
    y.backward(np.ones(10), retain_graph=True)
    assert saved() is not None
    assert len(y.grad_fn.next_functions) == 2
    y.backward(np.ones(10))
    assert saved() is None
    assert y.grad_fn.next_functions == ()


def test_backward_returns_the_memory_of_saved_arrays():
    n = 100_000  # 0.8 MB per float64 array
    x = mg.tensor(rng(19).standard_normal(n), requires_grad=True)
    tracemalloc.start()
    try:
        y = x
        for _ in range(10):
            y = (y * 1.01).tanh()  # MulBackward saves y, TanhBackward its output
        before = tracemalloc.get_traced_memory()[0]
        y.backward(np.ones(n))
        del y
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert before > 10 * 8 * n  # the ten tanh outputs
    assert after < 2 * 8 * n  # x.grad is about all that is left


def _build_and_drop_graph(backward: bool, retain_graph: bool = False) -> list[weakref.ref]:
    """Build a graph with leaves, a hook, retain_grad and a custom Function; return weakrefs."""
    w = mg.tensor(rng(20).standard_normal((3, 4)), requires_grad=True)
    b = mg.tensor(rng(21).standard_normal(3), requires_grad=True)
    x = mg.tensor(rng(22).standard_normal((5, 4)))
    h = x @ w.T + b
    h.retain_grad()
    h.register_hook(lambda grad: grad * 2.0)
    out = CountingSquare.apply(h.tanh()).mean()
    refs = [weakref.ref(t) for t in (w, b, x, h, out)]
    refs += [weakref.ref(h.data), weakref.ref(out.grad_fn.ctx)]
    refs += [weakref.ref(w._grad_accumulator())]
    if backward:
        out.backward(retain_graph=retain_graph)
        assert w.grad is not None
    return refs


@pytest.mark.parametrize(
    ("backward", "retain_graph"), [(False, False), (True, False), (True, True)]
)
def test_graph_forms_no_reference_cycles(backward, retain_graph):
    gc.collect()
    gc.disable()
    try:
        refs = _build_and_drop_graph(backward, retain_graph)
        # Reference counting alone freed everything: no cycle needed the collector.
        assert [r() for r in refs] == [None] * len(refs)
        assert gc.collect() == 0
    finally:
        gc.enable()


# ----------------------------------------------------------------------------- determinism


def _mlp_grads(seed: int) -> tuple[list[np.ndarray], list[str]]:
    r = rng(seed)
    w1 = mg.tensor(r.standard_normal((8, 4)), requires_grad=True)
    w2 = mg.tensor(r.standard_normal((3, 8)), requires_grad=True)
    x = mg.tensor(r.standard_normal((16, 4)))
    h = (x @ w1.T).relu()
    s = h @ w2.T
    out = (s.log_softmax(1) * s.exp() + h.sum(1, keepdim=True) * 1e-3).mean(0)
    order = [node.name() for node in topological_order((out.grad_fn,))]
    out.backward(r.standard_normal(3))
    return [w1.grad, w2.grad], order


def test_same_graph_gives_bitwise_identical_gradients_and_order():
    grads1, order1 = _mlp_grads(23)
    grads2, order2 = _mlp_grads(23)
    assert order1 == order2
    assert order1[-2:] == ["AccumulateGrad", "AccumulateGrad"]
    for g1, g2 in zip(grads1, grads2):
        assert np.array_equal(g1, g2)


def test_next_functions_follow_input_order():
    a = mg.tensor(1.0, requires_grad=True)
    b = mg.tensor(2.0, requires_grad=True)
    c = mg.tensor(3.0)
    ab = (a * b).grad_fn.next_functions
    ba = (b * a).grad_fn.next_functions
    assert [(n.variable, i) for n, i in ab] == [(a, 0), (b, 0)]
    assert [(n.variable, i) for n, i in ba] == [(b, 0), (a, 0)]
    assert (a + c).grad_fn.next_functions[1] == (None, 0)


def test_leaf_has_one_accumulate_grad_node_shared_by_every_use():
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    y = a * 2.0
    z = a.exp()
    node_y, node_z = y.grad_fn.next_functions[0][0], z.grad_fn.next_functions[0][0]
    assert isinstance(node_y, AccumulateGrad)
    assert node_y is node_z
    assert node_y.variable is a


def test_topological_order_puts_every_node_after_the_nodes_feeding_it():
    x = mg.tensor(rng(24).standard_normal(3), requires_grad=True)
    y = x.exp()
    z = y * x + y.tanh() * (x * 2.0)
    order = topological_order((z.grad_fn,))
    position = {node: i for i, node in enumerate(order)}
    assert len(position) == len(order)  # each node once
    for node in order:
        for child, _ in node.next_functions:
            if child is not None:
                assert position[child] > position[node]
