"""Output references (Node.keep_output), dtype fast paths and version checks vs PyTorch.

Hooks, retain_grad and names of outputs of multi-output ops; gradients of other dtypes and
byte orders through the engine's identity check; saved-version errors; cross-entropy targets
of every integer width.
"""

import gc
from typing import ClassVar

import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import functional as F

torch = pytest.importorskip("torch")


class SplitMul(mg.Function):
    """Two outputs: (2 x, 3 x)."""

    @staticmethod
    def forward(ctx, x):
        return x * 2.0, x * 3.0

    @staticmethod
    def backward(ctx, g0, g1):
        return g0 * 2.0 + g1 * 3.0


class TorchSplitMul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2.0, x * 3.0

    @staticmethod
    def backward(ctx, g0, g1):
        return g0 * 2.0 + g1 * 3.0


X = np.array([1.0, -2.0, 0.5])


def _pair():
    return mg.Tensor(X.copy(), requires_grad=True), torch.tensor(X, requires_grad=True)


@pytest.mark.parametrize("order", ["before", "after"])
def test_multi_output_hooks_and_retain_grad_match_torch(order):
    x, tx = _pair()
    a, b = SplitMul.apply(x)
    ta, tb = TorchSplitMul.apply(tx)
    seen, tseen = [], []
    if order == "before":
        b.register_hook(lambda g: seen.append(np.array(g)))
        tb.register_hook(lambda g: tseen.append(g.detach().numpy().copy()))
        a.retain_grad()
        ta.retain_grad()
    loss = (a * a).sum() + (b * np.array([1.0, 2.0, 3.0])).sum()
    tloss = (ta * ta).sum() + (tb * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum()
    if order == "after":  # registered after the outputs were used by later ops
        b.register_hook(lambda g: seen.append(np.array(g)))
        tb.register_hook(lambda g: tseen.append(g.detach().numpy().copy()))
        a.retain_grad()
        ta.retain_grad()
    loss.backward()
    tloss.backward()
    assert len(seen) == len(tseen) == 1
    np.testing.assert_allclose(seen[0], tseen[0])
    np.testing.assert_allclose(a.grad, ta.grad.numpy())
    assert b.grad is None  # a hook without retain_grad keeps no .grad (torch's too)
    np.testing.assert_allclose(x.grad, tx.grad.numpy())


def test_hook_on_second_output_replaces_gradient_like_torch():
    x, tx = _pair()
    a, b = SplitMul.apply(x)
    ta, tb = TorchSplitMul.apply(tx)
    b.register_hook(lambda g: g * 10.0)
    tb.register_hook(lambda g: g * 10.0)
    b.retain_grad()
    tb.retain_grad()
    (a.sum() + b.sum()).backward()
    (ta.sum() + tb.sum()).backward()
    np.testing.assert_allclose(b.grad, tb.grad.numpy())
    np.testing.assert_allclose(x.grad, tx.grad.numpy())
    assert a.grad is None


def test_retain_grad_on_output_with_no_gradient_of_multi_output_function():
    # Only output 0 reaches the loss; output 1 retains grad. PyTorch leaves its .grad None.
    x, tx = _pair()
    a, b = SplitMul.apply(x)
    ta, tb = TorchSplitMul.apply(tx)
    b.retain_grad()
    tb.retain_grad()
    a.sum().backward()
    ta.sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy())
    assert (b.grad is None) == (tb.grad is None), (b.grad, tb.grad)


def test_hook_on_deleted_tensor_does_not_run():
    x = mg.Tensor(X.copy(), requires_grad=True)
    calls = []
    y = x * 2.0
    y.register_hook(lambda g: calls.append(1))
    z = y.exp()
    del y
    gc.collect()
    z.sum().backward()
    assert calls == []
    np.testing.assert_allclose(x.grad, 2.0 * np.exp(2.0 * X))


def test_hook_on_deleted_multi_output_tensor_does_not_run_other_does():
    x = mg.Tensor(X.copy(), requires_grad=True)
    a, b = SplitMul.apply(x)
    calls = []
    a.register_hook(lambda g: calls.append("a"))
    b.register_hook(lambda g: calls.append("b"))
    loss = a.sum() + b.sum()
    del a
    gc.collect()
    loss.backward()
    assert calls == ["b"]
    np.testing.assert_allclose(x.grad, np.full(3, 5.0))


def test_retain_grad_sums_gradients_of_two_consumers_like_torch():
    x, tx = _pair()
    h = x * 3.0
    th = tx * 3.0
    h.retain_grad()
    th.retain_grad()
    loss = (h * h).sum() + h.exp().sum()
    tloss = (th * th).sum() + th.exp().sum()
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(h.grad, th.grad.numpy())
    np.testing.assert_allclose(x.grad, tx.grad.numpy())


def test_retain_grad_twice_and_hook_on_same_tensor():
    x, tx = _pair()
    h, th = x * 3.0, tx * 3.0
    for t in (h, th):
        t.retain_grad()
        t.register_hook(lambda g: g * 2)
        t.retain_grad()
    (h * h).sum().backward()
    (th * th).sum().backward()
    np.testing.assert_allclose(h.grad, th.grad.numpy())
    np.testing.assert_allclose(x.grad, tx.grad.numpy())


def test_name_of_non_leaf_labels_its_edge_in_to_dot():
    x = mg.Tensor(np.ones((2, 3)), requires_grad=True, name="x_leaf")
    h = x * 2.0
    h.name = "hidden_h"
    out = h.sum()
    dot = mg.viz.to_dot(out)
    assert "x_leaf" in dot
    assert "hidden_h (2, 3)" in dot
    assert h.name == "hidden_h" and x.name == "x_leaf"


def test_name_of_second_output_labels_only_that_edge():
    x = mg.Tensor(X.copy(), requires_grad=True)
    a, b = SplitMul.apply(x)
    b.name = "second"
    dot = mg.viz.to_dot(a.sum() + b.sum())
    assert dot.count("second (3,)") == 1
    a.name = "first"
    dot = mg.viz.to_dot(a.sum() + b.sum())
    assert dot.count("first (3,)") == 1 and dot.count("second (3,)") == 1


def test_name_set_to_none_and_leaf_name():
    x = mg.Tensor(np.ones(3), requires_grad=True)
    x.name = "w"
    assert x.name == "w" and "w" in mg.viz.to_dot((x * 2).sum())
    h = x * 2
    h.name = "h"
    h.name = None
    assert "h (3,)" not in mg.viz.to_dot(h.sum())


class BigEndianGrad(mg.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2.0

    @staticmethod
    def backward(ctx, g):
        return (g * 2.0).astype(">f8")


class Float32Grad(mg.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2.0

    @staticmethod
    def backward(ctx, g):
        return (g * 2.0).astype(np.float32)


@pytest.mark.parametrize("fn", [BigEndianGrad, Float32Grad])
def test_gradient_of_other_dtype_is_cast_to_the_input_dtype(fn):
    x = mg.Tensor(X.copy(), requires_grad=True)
    h = x * 1.0  # a non-leaf in between: the cast happens on a graph edge too
    h.retain_grad()
    fn.apply(h).sum().backward()
    assert x.grad.dtype == np.float64 and x.grad.dtype.isnative
    assert h.grad.dtype == np.float64 and h.grad.dtype.isnative
    np.testing.assert_allclose(x.grad, np.full(3, 2.0))
    np.testing.assert_allclose(h.grad, np.full(3, 2.0))


def test_gradient_accumulates_over_two_backwards_with_big_endian_grad():
    x = mg.Tensor(X.copy(), requires_grad=True)
    BigEndianGrad.apply(x).sum().backward()
    BigEndianGrad.apply(x).sum().backward()
    assert x.grad.dtype == x.dtype
    np.testing.assert_allclose(x.grad, np.full(3, 4.0))


def test_big_endian_leaf_gets_gradient_of_its_dtype():
    data = X.astype(">f8")
    x = mg.Tensor(data, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    assert x.grad.dtype == x.dtype
    np.testing.assert_allclose(x.grad, 2.0 * X)


def test_equal_but_not_identical_dtype_input():
    dt = np.dtype(np.float64, metadata={"tag": 1})  # == float64, but another object
    assert dt == np.float64 and dt is not np.dtype(np.float64)
    x = mg.Tensor(np.array(X, dtype=dt), requires_grad=True)
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, np.full(3, 3.0))
    assert x.grad.dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_d_output_implicit_gradient_keeps_dtype(dtype):
    x = mg.Tensor(np.arange(3, dtype=dtype), requires_grad=True)
    h = (x * 2).sum()
    assert h.ndim == 0 and h.dtype == dtype
    h.retain_grad()
    seen = []
    h.register_hook(lambda g: seen.append(g))
    (h * 1).backward()
    assert seen[0].dtype == dtype and seen[0].shape == ()
    assert h.grad.dtype == dtype
    assert x.grad.dtype == dtype
    np.testing.assert_array_equal(x.grad, np.full(3, 2, dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_d_leaf_backward_implicit_gradient(dtype):
    x = mg.Tensor(np.array(1.5, dtype=dtype), requires_grad=True)
    x.backward()
    assert x.grad.dtype == dtype and x.grad.shape == () and x.grad == 1


def test_version_error_after_inplace_change_of_saved_input():
    x, tx = _pair()
    w = mg.Tensor(np.ones(3))  # no grad: changing it in place is allowed
    tw = torch.ones(3, dtype=torch.float64)
    y = x * w  # Mul saves w
    ty = tx * tw
    w.add_(1.0)
    tw.add_(1.0)
    with pytest.raises(RuntimeError):
        ty.sum().backward()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_version_error_after_inplace_change_of_saved_output():
    x, tx = _pair()
    y = x.exp()  # Exp saves its output
    ty = tx.exp()
    z = y.detach()  # shares y's version counter
    z.mul_(2.0)
    ty.detach().mul_(2.0)
    with pytest.raises(RuntimeError):
        ty.sum().backward()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_no_version_error_without_inplace_change_and_second_backward_freed():
    x, _ = _pair()
    y = x.exp()
    y.sum().backward(retain_graph=True)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 2 * np.exp(X))
    with pytest.raises(RuntimeError):
        y.sum().backward()


@pytest.mark.parametrize("target_dtype", [np.int8, np.int16, np.int32, np.int64])
def test_cross_entropy_ignored_target_of_small_int_dtype(target_dtype):
    # ignore_index=-100 viewed as uint8 is 156: with 200 classes it must still be ignored.
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 200))
    target = np.array([3, -100, 7, 120])
    x = mg.Tensor(logits.copy(), requires_grad=True)
    tx = torch.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, target.astype(target_dtype))
    tloss = torch.nn.functional.cross_entropy(tx, torch.tensor(target))
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(float(loss.data), tloss.item(), rtol=1e-12)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_cross_entropy_big_endian_targets_match_torch():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((3, 5))
    target = np.array([0, 4, 2])
    x = mg.Tensor(logits.copy(), requires_grad=True)
    tx = torch.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, target.astype(">i8"))
    tloss = torch.nn.functional.cross_entropy(tx, torch.tensor(target))
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(float(loss.data), tloss.item(), rtol=1e-12)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_leaf_grads_from_one_add_are_not_aliased():
    a = mg.Tensor(np.ones(3), requires_grad=True)
    b = mg.Tensor(np.ones(3), requires_grad=True)
    seed = np.array([1.0, 2.0, 3.0])
    (a + b).backward(seed)
    assert a.grad is not b.grad and not np.shares_memory(a.grad, b.grad)
    assert not np.shares_memory(a.grad, seed)
    a.grad += 100.0
    np.testing.assert_array_equal(b.grad, seed)
    np.testing.assert_array_equal(seed, [1.0, 2.0, 3.0])


def test_same_leaf_twice_in_add_gets_summed_gradient():
    x, tx = _pair()
    (x + x).sum().backward()
    (tx + tx).sum().backward()
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())


def test_user_function_returning_one_array_for_two_inputs_is_copied():
    class Same(mg.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g, g

    a = mg.Tensor(np.ones(3), requires_grad=True)
    b = mg.Tensor(np.ones(3), requires_grad=True)
    Same.apply(a, b).sum().backward()
    a.grad += 1.0
    np.testing.assert_array_equal(b.grad, np.ones(3))


def test_name_set_after_backward_does_not_crash_and_labels():
    x = mg.Tensor(X.copy(), requires_grad=True)
    h = x * 2.0
    out = h.sum()
    out.backward(retain_graph=True)
    h.name = "late"
    h.retain_grad()
    assert "late (3,)" in mg.viz.to_dot(out)
    out.backward()
    np.testing.assert_allclose(h.grad, np.ones(3))
    np.testing.assert_allclose(x.grad, np.full(3, 4.0))


class RecordGradDtype(mg.Function):
    """Identity whose backward records the dtype and byte order of the gradient it gets."""

    seen: ClassVar[list] = []

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        RecordGradDtype.seen.append(g.dtype)
        return g


@pytest.mark.parametrize("fn", [BigEndianGrad, Float32Grad])
def test_op_backward_receives_gradient_cast_to_its_output_dtype(fn):
    # PyTorch casts each gradient to its input's dtype before the next backward sees it.
    RecordGradDtype.seen = []
    x = mg.Tensor(X.copy(), requires_grad=True)
    fn.apply(RecordGradDtype.apply(x)).sum().backward()
    (dt,) = RecordGradDtype.seen
    assert dt == np.float64 and dt.isnative


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hook_on_zero_d_root_sees_implicit_gradient_of_its_dtype(dtype):
    x = mg.Tensor(np.arange(3, dtype=dtype), requires_grad=True)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    tx = torch.arange(3, dtype=tdtype, requires_grad=True)
    loss, tloss = (x * 2).sum(), (tx * 2).sum()
    seen, tseen = [], []
    loss.register_hook(lambda g: seen.append(g))
    tloss.register_hook(lambda g: tseen.append(g))
    loss.backward()
    tloss.backward()
    assert seen[0].dtype == dtype and seen[0].shape == () and seen[0] == 1
    assert tseen[0].dtype == tdtype and tseen[0].shape == ()


def test_hook_on_output_with_no_gradient_sees_none_like_torch():
    # PyTorch calls the hook of an output that got no gradient with None, then hands the
    # op's backward zeros for it.
    x, tx = _pair()
    a, b = SplitMul.apply(x)
    ta, tb = TorchSplitMul.apply(tx)
    seen, tseen = [], []
    b.register_hook(seen.append)
    tb.register_hook(tseen.append)
    a.sum().backward()
    ta.sum().backward()
    assert seen == tseen == [None]
    np.testing.assert_allclose(x.grad, tx.grad.numpy())
