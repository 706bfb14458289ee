"""User-written mg.Function ops, mg.gradcheck and mg.testing.assert_grads_match_torch.

Each tool is also shown to fail on a deliberately wrong gradient: a checker that never
fails checks nothing.
"""

from __future__ import annotations

import re
import sys
import warnings
import weakref

import numpy as np
import pytest

import minigrad as mg
from minigrad.testing import assert_grads_match_torch


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- custom Functions


class Cube(mg.Function):
    """out = x^3; d/dx = 3 x^2."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 3 * x**2


class WrongCube(mg.Function):
    """out = x^3 with a deliberately wrong derivative (2 x^2 instead of 3 x^2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 2 * x**2


class ScaledProduct(mg.Function):
    """out = scale * a * b, with a plain-number setting; records which inputs want grads."""

    needs: tuple[bool, ...] = ()

    @staticmethod
    def forward(ctx, a, b, *, scale):
        ctx.save_for_backward(a, b)
        ctx.scale = scale
        return scale * a * b

    @staticmethod
    def backward(ctx, grad_output):
        a, b = ctx.saved_tensors
        ScaledProduct.needs = ctx.needs_input_grad
        grad_a = grad_output * ctx.scale * b if ctx.needs_input_grad[0] else None
        grad_b = grad_output * ctx.scale * a if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class SecondElementOnly(mg.Function):
    """Multiplies by 2, but the gradient of element (1, 2) alone is wrong (0 instead of 2)."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad_output):
        grad = 2 * grad_output
        grad[1, 2] = 0.0
        return grad


def test_custom_function_forward_and_backward(torch_module):
    torch = torch_module
    data, upstream = rng(1).standard_normal((3, 2)), rng(2).standard_normal((3, 2))
    x = mg.tensor(data, requires_grad=True)
    y = Cube.apply(x)
    assert y.grad_fn.name() == "CubeBackward"
    np.testing.assert_allclose(y.data, data**3)
    (y * 2.0).backward(upstream)
    tx = torch.tensor(data, requires_grad=True)
    (tx**3 * 2.0).backward(torch.tensor(upstream))
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)


def test_custom_function_sees_and_returns_numpy_arrays():
    seen = {}

    class Spy(mg.Function):
        @staticmethod
        def forward(ctx, x):
            seen["forward"] = type(x)
            return x + 1.0

        @staticmethod
        def backward(ctx, grad_output):
            seen["backward"] = type(grad_output)
            return grad_output

    out = Spy.apply(mg.tensor([1.0], requires_grad=True))
    assert isinstance(out, mg.Tensor)
    out.backward()
    assert seen == {"forward": np.ndarray, "backward": np.ndarray}


def test_custom_function_needs_input_grad_and_settings():
    a = mg.tensor([1.0, 2.0], dtype=mg.float64, requires_grad=True)
    b = mg.tensor([3.0, 4.0], dtype=mg.float64)
    y = ScaledProduct.apply(a, b, scale=0.5)
    y.backward(np.array([1.0, 2.0]))
    assert ScaledProduct.needs == (True, False)
    np.testing.assert_allclose(a.grad, [1.5, 4.0])
    assert b.grad is None


def test_custom_function_without_grad_records_nothing():
    a = mg.tensor([1.0, 2.0])
    y = Cube.apply(a)
    assert y.grad_fn is None and not y.requires_grad
    with mg.no_grad():
        z = Cube.apply(mg.tensor([1.0], requires_grad=True))
    assert z.grad_fn is None


def test_custom_function_passes_gradcheck():
    x = mg.tensor(rng(3).standard_normal((3, 4)), requires_grad=True)
    assert mg.gradcheck(Cube.apply, (x,))
    a = mg.tensor(rng(4).standard_normal(5), requires_grad=True)
    b = mg.tensor(rng(5).standard_normal(5), requires_grad=True)
    assert mg.gradcheck(lambda a, b: ScaledProduct.apply(a, b, scale=-1.5), (a, b))


def test_custom_function_returning_wrong_number_of_gradients_raises():
    class TwoForOne(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output * 2, grad_output

    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"TwoForOneBackward.*expected 1, got 2"):
        TwoForOne.apply(x).backward(np.ones(2))
    assert x.grad is None


def test_function_without_forward_or_backward_says_so():
    class Empty(mg.Function):
        pass

    with pytest.raises(NotImplementedError, match="forward"):
        Empty.apply(mg.tensor([1.0], requires_grad=True))


def test_saved_tensors_are_freed_after_backward_even_if_ctx_is_kept():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2.0
    saved = weakref.ref(h.data)
    y = Cube.apply(h)
    ctx = y.grad_fn.ctx  # as a debugger might hold it
    del h
    y.backward(np.ones(2, dtype=np.float32))
    assert saved() is None
    with pytest.raises(RuntimeError, match="already been freed"):
        ctx.saved_tensors  # noqa: B018 - the property access is the test


# ----------------------------------------------------------------------------- gradcheck


def test_gradcheck_accepts_correct_builtin_ops():
    x = mg.tensor(rng(6).standard_normal((2, 3)), requires_grad=True)
    w = mg.tensor(rng(7).standard_normal((3, 3)), requires_grad=True)
    assert mg.gradcheck(lambda x, w: (x @ w).tanh() * x.sum(), (x, w))
    # softmax's outputs sum to 1: only a random upstream (not a sum) sees its gradient.
    assert mg.gradcheck(lambda x: x.softmax(1), (x,))


def test_gradcheck_rejects_a_wrong_function_and_names_input_and_element():
    x = mg.tensor(rng(8).standard_normal((2, 3)) + 2.0, requires_grad=True)
    with pytest.raises(mg.GradcheckError) as info:
        mg.gradcheck(WrongCube.apply, (x,))
    message = str(info.value)
    assert "input 0" in message
    assert "element (0, 0)" in message
    # Both values for that element: d(x^3) = 3 x^2 against the wrong 2 x^2, each times the
    # same random upstream gradient, so their ratio is 3/2.
    found = re.search(r"numerical (\S+), analytical (\S+) ", message)
    assert found is not None
    numerical, analytical = float(found[1]), float(found[2])
    assert analytical != 0.0
    assert numerical / analytical == pytest.approx(1.5, rel=1e-6)


def test_gradcheck_error_is_a_runtime_error():
    assert issubclass(mg.GradcheckError, RuntimeError)


def test_gradcheck_finds_a_single_wrong_element_of_a_second_input():
    a = mg.tensor(rng(9).standard_normal(3), requires_grad=True)
    b = mg.tensor(rng(10).standard_normal((2, 3)), requires_grad=True)
    with pytest.raises(mg.GradcheckError, match=r"input 1 \(shape \(2, 3\)\).*element \(1, 2\)"):
        mg.gradcheck(lambda a, b: a * SecondElementOnly.apply(b), (a, b))


def test_gradcheck_returns_false_without_raising():
    x = mg.tensor(rng(11).standard_normal(4) + 2.0, requires_grad=True)
    assert mg.gradcheck(WrongCube.apply, (x,), raise_exception=False) is False
    assert mg.gradcheck(Cube.apply, (x,), raise_exception=False) is True


def test_gradcheck_warns_on_float32_inputs():
    x = mg.tensor(rng(12).standard_normal(3), dtype=mg.float32, requires_grad=True)
    with pytest.warns(UserWarning, match="float32.*float64"):
        mg.gradcheck(Cube.apply, (x,), eps=1e-2, atol=1e-2, rtol=1e-2)


def test_gradcheck_does_not_warn_on_float64_inputs():
    x = mg.tensor(rng(13).standard_normal(3), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mg.gradcheck(Cube.apply, (x,))


def test_gradcheck_leaves_inputs_grad_and_data_untouched():
    x = mg.tensor(rng(14).standard_normal((2, 2)), requires_grad=True)
    y = mg.tensor(rng(15).standard_normal((2, 2)), requires_grad=True)
    x.grad = np.full((2, 2), 7.0)
    before = x.data.copy(), y.data.copy()
    assert mg.gradcheck(lambda x, y: x * y.exp(), (x, y))
    np.testing.assert_array_equal(x.grad, np.full((2, 2), 7.0))
    assert y.grad is None
    np.testing.assert_array_equal(x.data, before[0])
    np.testing.assert_array_equal(y.data, before[1])


def test_gradcheck_handles_several_outputs_and_inputs_without_grad():
    x = mg.tensor(rng(16).standard_normal(3), requires_grad=True)
    c = mg.tensor(rng(17).standard_normal(3))  # a constant: not checked
    assert mg.gradcheck(lambda x, c: (x * c, (x * x).sum()), (x, c))
    with pytest.raises(mg.GradcheckError, match="input 0"):
        mg.gradcheck(lambda x, c: (x * c, WrongCube.apply(x)), (x, c))


def test_gradcheck_takes_a_single_tensor():
    x = mg.tensor(rng(18).standard_normal(3), requires_grad=True)
    assert mg.gradcheck(Cube.apply, x)


def test_gradcheck_without_inputs_requiring_grad_raises():
    with pytest.raises(ValueError, match="no input requires grad"):
        mg.gradcheck(Cube.apply, (mg.tensor([1.0]),))


# ----------------------------------------------------------------------------- torch comparison


def test_assert_grads_match_torch_passes_on_equal_functions(torch_module):
    torch = torch_module
    a, b = rng(19).standard_normal((3, 4)), rng(20).standard_normal(4)
    assert_grads_match_torch(
        lambda x, w: (x * w).tanh() @ w,
        lambda x, w: (x * w).tanh() @ w,
        a,
        b,
    )
    assert_grads_match_torch(Cube.apply, lambda x: x**3, a)
    assert_grads_match_torch(lambda x: x.softmax(1), lambda x: torch.softmax(x, 1), a)


def test_assert_grads_match_torch_reports_different_functions(torch_module):
    torch = torch_module
    a = rng(21).standard_normal((2, 3))
    with pytest.raises(AssertionError) as info:
        assert_grads_match_torch(lambda x: x.exp(), lambda x: torch.sin(x), a)
    report = str(info.value)
    assert "minigrad and torch disagree" in report
    assert "output 0" in report
    assert "gradient of input 0" in report
    assert "6 of 6 elements differ" in report


def test_assert_grads_match_torch_reports_only_a_wrong_gradient(torch_module):
    a = rng(22).standard_normal(5) + 2.0
    with pytest.raises(AssertionError) as info:
        assert_grads_match_torch(WrongCube.apply, lambda x: x**3, a)
    report = str(info.value)
    assert "gradient of input 0" in report
    assert "output 0" not in report  # the forward values agree


def test_assert_grads_match_torch_uses_a_random_upstream(torch_module):
    torch = torch_module

    # softmax(x) sums to 1, so a .sum() upstream would give zero gradients on both sides
    # and hide that this "softmax" has the wrong backward (exp's).
    class FakeSoftmax(mg.Function):
        @staticmethod
        def forward(ctx, x):
            e = np.exp(x - x.max(1, keepdims=True))
            out = e / e.sum(1, keepdims=True)
            ctx.save_for_backward(out)
            return out

        @staticmethod
        def backward(ctx, grad_output):
            (out,) = ctx.saved_tensors
            return grad_output * out

    with pytest.raises(AssertionError, match="gradient of input 0"):
        assert_grads_match_torch(
            FakeSoftmax.apply, lambda x: torch.softmax(x, 1), rng(23).standard_normal((2, 4))
        )


def test_assert_grads_match_torch_reports_shape_and_output_count(torch_module):
    a = rng(24).standard_normal((2, 3))
    with pytest.raises(AssertionError, match=r"shape \(3, 2\) in minigrad, \(2, 3\) in torch"):
        assert_grads_match_torch(lambda x: x.T * 1.0, lambda x: x * 1.0, a)
    with pytest.raises(AssertionError, match="minigrad gave 2 outputs, torch 1"):
        assert_grads_match_torch(lambda x: (x, x * 2.0), lambda x: x * 2.0, a)


def test_assert_grads_match_torch_passes_integer_inputs_without_grad(torch_module):
    a = rng(25).standard_normal((4, 3))
    index = np.array([2, 0, 0])
    assert_grads_match_torch(lambda x, i: x[i] * 2.0, lambda x, i: x[i] * 2.0, a, index)


def test_assert_grads_match_torch_says_how_to_get_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(ImportError, match=r"needs PyTorch.*pip install"):
        assert_grads_match_torch(lambda x: x, lambda x: x, np.ones(2))
