"""Edge-case parity with PyTorch for Tensor ops (float64 values and gradients with a random
upstream gradient): empty tensors, 0-d tensors, reduction dims, integer tensors, dtype
promotion, NaN/inf corners, indexing and shape ops with negative dims. Complements
test_ops.py / test_ops_properties.py (which use only non-empty float inputs)."""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pytest

import minigrad as mg
from minigrad.testing import assert_grads_match_torch

torch = pytest.importorskip("torch")

E03 = np.zeros((0, 3))
B = np.array


def _parity(fn, *arrays, no_warnings=True):
    """fn(lib, *tensors) on both libraries; numpy warnings must not leak (torch gives none)."""
    with warnings.catch_warnings():
        if no_warnings:
            warnings.simplefilter("error", RuntimeWarning)
        assert_grads_match_torch(partial(fn, mg), partial(fn, torch), *arrays)


# --- values and gradients -----------------------------------------------------------------
PARITY = [
    # empty tensors through elementwise, broadcasting, shape ops, matmul
    ("empty-exp", lambda lib, x: x.exp() * 2, [E03]),
    ("empty-mul-bcast-0x1-1x3", lambda lib, a, b: a * b, [np.zeros((0, 1)), np.ones((1, 3))]),
    ("empty-add-bcast-new-dims", lambda lib, a, b: a + b, [np.ones((2, 1, 3)), np.zeros((0, 1))]),
    ("empty-maximum", lambda lib, a, b: lib.maximum(a, b), [E03, np.ones(3)]),
    (
        "empty-where",
        lambda lib, c, a, b: lib.where(c, a, b),
        [np.zeros((0, 3), bool), E03, np.ones(3)],
    ),
    ("empty-matmul-inner0", lambda lib, a, b: a @ b, [np.zeros((2, 0)), np.zeros((0, 3))]),
    ("empty-matmul-outer0", lambda lib, a, b: a @ b, [np.zeros((0, 2)), np.ones((2, 3))]),
    ("empty-dot-1d", lambda lib, a, b: a @ b, [np.zeros(0), np.zeros(0)]),
    ("empty-cat", lambda lib, a, b: lib.cat([a, b], -2), [E03, np.ones((2, 3))]),
    ("empty-stack-neg", lambda lib, a, b: lib.stack([a, b], -1), [E03, E03]),
    ("empty-reshape", lambda lib, x: x.reshape(3, -1), [E03]),
    ("empty-flatten", lambda lib, x: x.flatten(), [E03]),
    ("empty-permute-neg", lambda lib, x: x.permute(-1, 0), [E03]),
    ("empty-squeeze", lambda lib, x: x.squeeze(), [np.zeros((1, 0, 1))]),
    ("empty-expand", lambda lib, x: x.expand(0, 3), [np.ones((1, 3))]),
    ("empty-slice", lambda lib, x: x[2:1], [np.ones((3, 2))]),
    # reductions over empty tensors (torch: sum 0, mean nan, amax over non-empty dims ok)
    ("empty-sum-all", lambda lib, x: x.sum(), [E03]),
    ("empty-sum-dim0-keepdim", lambda lib, x: x.sum(0, keepdim=True), [E03]),
    ("empty-sum-neg-tuple", lambda lib, x: x.sum((-1, -2)), [E03]),
    ("empty-mean-dim1", lambda lib, x: x.mean(-1), [E03]),
    ("empty-mean-all", lambda lib, x: x.mean(), [E03]),
    ("empty-mean-dim0", lambda lib, x: x.mean(0), [E03]),
    ("empty-amax-nonempty-dim", lambda lib, x: x.amax(1), [E03]),
    ("empty-amin-keepdim", lambda lib, x: x.amin(-1, keepdim=True), [E03]),
    ("empty-softmax-dim1", lambda lib, x: x.softmax(1), [E03]),
    ("empty-softmax-over-empty-dim", lambda lib, x: x.softmax(0), [E03]),
    ("empty-log_softmax-over-empty-dim", lambda lib, x: x.log_softmax(-2), [E03]),
    # dim=() reduces every dim in torch
    ("sum-dim-empty-tuple", lambda lib, x: x.sum(()), [np.arange(6.0).reshape(2, 3)]),
    ("mean-dim-empty-list", lambda lib, x: x.mean([]), [np.arange(6.0).reshape(2, 3)]),
    ("amax-dim-empty-tuple", lambda lib, x: x.amax(()), [B([[1.0, 3.0], [3.0, 2.0]])]),
    # 0-d tensors
    ("0d-amax-dim-tuple", lambda lib, x: x.amax((0,), keepdim=True), [B(2.0)]),
    ("0d-getitem-none-ellipsis", lambda lib, x: x[None, ..., None], [B(2.0)]),
    ("0d-unsqueeze-neg", lambda lib, x: x.unsqueeze(-1), [B(2.0)]),
    ("0d-squeeze-0", lambda lib, x: x.squeeze(0), [B(2.0)]),
    ("0d-transpose-0-minus1", lambda lib, x: x.transpose(0, -1), [B(2.0)]),
    ("0d-flatten-0-minus1", lambda lib, x: x.flatten(0, -1), [B(2.0)]),
    ("0d-times-empty", lambda lib, a, b: a * b, [B(2.0), np.zeros(0)]),
    # pow, division, log/sqrt at 0 and negatives (not in test_ops.NON_FINITE)
    ("pow-0-to-half", lambda lib, x: x**0.5, [B([0.0, 1.0])]),
    ("pow-0-to-minus-half", lambda lib, x: x**-0.5, [B([0.0, 1.0])]),
    ("pow-0-to-1.5", lambda lib, x: x**1.5, [B([0.0, 1.0])]),
    ("pow-0-to-1", lambda lib, x: x**1, [B([0.0, 1.0])]),
    ("pow-negative-to-3.0", lambda lib, x: x**3.0, [B([-2.0, -1.0])]),
    (
        "pow-tensor-0-to-negative",
        lambda lib, a, b: a**b,
        [B([0.0, 0.0, 0.0]), B([-1.0, -0.5, 0.5])],
    ),
    (
        "pow-tensor-negative-base",
        lambda lib, a, b: a**b,
        [B([-2.0, -2.0, -2.0]), B([2.0, 3.0, 0.5])],
    ),
    ("rpow-0-base", lambda lib, x: 0.0**x, [B([-1.0, 0.0, 1.0])]),
    ("rpow-negative-base", lambda lib, x: (-2.0) ** x, [B([2.0, 0.5])]),
    (
        "div-0-by-0-and-minus-0",
        lambda lib, a, b: a / b,
        [B([0.0, 1.0, -1.0, 0.0]), B([0.0, 0.0, -0.0, -0.0])],
    ),
    ("div-by-python-0.0", lambda lib, a: a / 0.0, [B([0.0, 1.0, -1.0])]),
    ("div-by-python-int-0", lambda lib, a: a / 0, [B([0.0, 1.0, -1.0])]),
    ("log-negative", lambda lib, a: a.log(), [B([-1.0, 0.0])]),
    ("sqrt-negative", lambda lib, a: a.sqrt(), [B([-1.0, 0.0])]),
    (
        "where-nan-in-unselected-branch",
        lambda lib, c, a: lib.where(c, a.sqrt(), a),
        [B([True, False]), B([1.0, -1.0])],
    ),
    ("clamp-min-above-max", lambda lib, a: a.clamp(1.0, 0.0), [B([-1.0, 0.5, 2.0])]),
    ("clamp-equal-bounds", lambda lib, a: a.clamp(0.5, 0.5), [B([-1.0, 0.5, 2.0])]),
    ("clamp-int-bounds-at-bounds", lambda lib, a: a.clamp(0, 1), [B([-1.0, 0.0, 1.0, 2.0])]),
    ("abs-signed-zeros", lambda lib, a: a.abs(), [B([-0.0, 0.0])]),
    ("amax-signed-zero-tie", lambda lib, a: a.amax(), [B([-0.0, 0.0])]),
    ("amax-inf-ties-dim0", lambda lib, a: a.amax(0), [B([[np.inf, 1.0], [np.inf, 1.0]])]),
    # NaN and inf corners
    ("relu-nan", lambda lib, a: a.relu(), [B([np.nan, 0.5])]),
    ("maximum-nan", lambda lib, a, b: lib.maximum(a, b), [B([np.nan, 1.0]), B([0.0, np.nan])]),
    ("minimum-nan", lambda lib, a, b: lib.minimum(a, b), [B([np.nan, 1.0]), B([0.0, np.nan])]),
    ("clamp-nan", lambda lib, a: a.clamp(0, 1), [B([np.nan, 0.5])]),
    ("sigmoid-nan", lambda lib, a: a.sigmoid(), [B([np.nan, 0.0])]),
    ("amax-nan", lambda lib, a: a.amax(), [B([np.nan, 1.0])]),
    ("softmax-all-minus-inf", lambda lib, a: a.softmax(0), [B([-np.inf, -np.inf])]),
    ("softmax-plus-inf", lambda lib, a: a.softmax(0), [B([np.inf, 1.0])]),
    # indexing gradients beyond test_ops.GETITEM_*
    (
        "getitem-repeated-negative-and-positive",
        lambda lib, x, i: x[i],
        [np.arange(4.0), B([-1, 3, 3, -4])],
    ),
    (
        "getitem-mask-then-int-array",
        lambda lib, x, m: x[m][[0, 0]],
        [np.arange(6.0).reshape(3, 2), B([True, False, True])],
    ),
    ("getitem-step-slice-then-neg", lambda lib, x: x[1::2, -1], [np.arange(12.0).reshape(4, 3)]),
    (
        "getitem-none-ellipsis-step",
        lambda lib, x: x[None, ..., ::2],
        [np.arange(12.0).reshape(3, 4)],
    ),
    (
        "getitem-bool-mask-2d-of-3d",
        lambda lib, x, m: x[:, m],
        [np.arange(24.0).reshape(2, 3, 4), np.eye(3, 4, dtype=bool)],
    ),
    ("getitem-0d-mask", lambda lib, x, m: x[m], [np.arange(3.0), B(True)]),
    # shape ops with negative dims, size-1 broadcasting both sides
    (
        "bcast-1x3x1-times-2x1x4",
        lambda lib, a, b: a * b,
        [np.ones((1, 3, 1)) * 2, np.arange(8.0).reshape(2, 1, 4)],
    ),
    (
        "expand-neg-then-sum",
        lambda lib, x: x.expand(2, -1, -1).sum(-1),
        [np.arange(3.0).reshape(3, 1)],
    ),
    ("unsqueeze-min-dim", lambda lib, x: x.unsqueeze(-3), [np.ones((2, 3))]),
    ("squeeze-neg-tuple", lambda lib, x: x.squeeze((-1, -3)), [np.ones((1, 3, 1))]),
    (
        "cat-neg-dim-3d",
        lambda lib, a, b: lib.cat([a, b], -3),
        [np.ones((1, 2, 2)), np.zeros((2, 2, 2))],
    ),
    ("stack-neg-dim", lambda lib, a, b: lib.stack([a, b], -2), [np.ones((2, 3)), np.zeros((2, 3))]),
    ("matmul-1d-batched-bcast", lambda lib, a, b: a @ b, [np.arange(3.0), np.ones((2, 1, 3, 4))]),
    ("matmul-batched-1d", lambda lib, a, b: a @ b, [np.ones((2, 1, 4, 3)), np.arange(3.0)]),
]


@pytest.mark.parametrize(("fn", "arrays"), [pytest.param(f, a, id=n) for n, f, a in PARITY])
@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's var/x.T warnings
def test_edge_case_matches_torch_without_numpy_warnings(fn, arrays) -> None:
    _parity(fn, *arrays)


# --- errors -------------------------------------------------------------------------------
ERRORS = [  # (id, fn, arrays, fragments of minigrad's message)
    ("amax-over-empty-dim", lambda lib, x: x.amax(0), [E03], ["amax", "(0, 3)"]),
    ("amin-over-empty-dim", lambda lib, x: x.amin(-2), [E03], ["amin", "(0, 3)"]),
    ("max-all-of-empty", lambda lib, x: x.max(), [E03], ["(0, 3)"]),
    (
        "where-shapes",
        lambda lib, c, a, b: lib.where(c, a, b),
        [np.ones((2, 3), bool), np.ones(2), np.ones(3)],
        ["where", "(2,)"],
    ),
    (
        "cat-ndim",
        lambda lib, a, b: lib.cat([a, b]),
        [np.ones((2, 3)), np.ones(3)],
        ["cat", "(2, 3)", "(3,)"],
    ),
    (
        "stack-neg-dim-shapes",
        lambda lib, a, b: lib.stack([a, b], -1),
        [np.ones((2, 3)), np.ones((2, 2))],
        ["stack", "(2, 3)", "(2, 2)"],
    ),
    ("expand-neg-leading", lambda lib, x: x.expand(-1, 3), [np.ones(3)], ["expand"]),
    (
        "matmul-empty-mismatch",
        lambda lib, a, b: a @ b,
        [np.zeros((2, 0)), np.ones((3, 2))],
        ["(2, 0)", "(3, 2)"],
    ),
    ("permute-repeated-dim", lambda lib, x: x.permute(0, -2), [np.ones((2, 3))], ["permute"]),
    ("sum-repeated-neg-dim", lambda lib, x: x.sum((1, -1)), [np.ones((2, 3))], ["sum"]),
    ("int-pow-negative-int", lambda lib, x: x**-1, [B([1, 2])], ["negative"]),
]


@pytest.mark.parametrize(
    ("fn", "arrays", "fragments"), [pytest.param(f, a, fr, id=n) for n, f, a, fr in ERRORS]
)
def test_error_type_matches_torch_and_message_names_op_and_shapes(fn, arrays, fragments) -> None:
    with pytest.raises(Exception) as theirs:
        fn(torch, *[torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays])
    with pytest.raises(Exception) as ours:
        fn(mg, *[mg.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays])
    assert isinstance(ours.value, type(theirs.value)), (type(ours.value), type(theirs.value))
    for fragment in fragments:
        assert fragment in str(ours.value)


# --- dtypes -------------------------------------------------------------------------------
DTYPES = [  # (id, fn): the result dtype must equal torch's (or both must raise)
    ("int-plus-python-float", lambda lib: lib.tensor([1, 2]) + 1.5),
    ("int-times-python-int", lambda lib: lib.tensor([1, 2]) * 2),
    ("int-div-int", lambda lib: lib.tensor([1, 2]) / 2),
    ("int-pow-int", lambda lib: lib.tensor([1, 2]) ** 2),
    ("int-pow-float", lambda lib: lib.tensor([1, 2]) ** 0.5),
    ("int-exp", lambda lib: lib.tensor([1, 2]).exp()),
    ("int-sqrt", lambda lib: lib.tensor([1, 2]).sqrt()),
    ("int-tanh", lambda lib: lib.tensor([1, 2]).tanh()),
    ("int-sigmoid", lambda lib: lib.tensor([1, 2]).sigmoid()),
    ("int-abs", lambda lib: lib.tensor([-1, 2]).abs()),
    ("int-relu", lambda lib: lib.tensor([-1, 2]).relu()),
    ("int-clamp-float-bounds", lambda lib: lib.tensor([-1, 2]).clamp(0.5, 1.5)),
    ("int-clamp-int-bounds", lambda lib: lib.tensor([-1, 2]).clamp(0, 1)),
    ("int-sum", lambda lib: lib.tensor([1, 2]).sum()),
    ("int-amax", lambda lib: lib.tensor([1, 2]).amax()),
    ("int-mean", lambda lib: lib.tensor([1, 2]).mean()),
    ("int-var", lambda lib: lib.tensor([1, 2]).var()),
    ("int-softmax", lambda lib: lib.tensor([1, 2]).softmax(0)),
    ("int-matmul", lambda lib: lib.tensor([[1, 2]]) @ lib.tensor([[1], [2]])),
    (
        "int-where-python-float",
        lambda lib: lib.where(lib.tensor([True, False]), lib.tensor([1, 2]), 0.5),
    ),
    ("bool-times-python-float", lambda lib: lib.tensor([True, False]) * 2.5),
    ("int-plus-bool-scalar", lambda lib: lib.tensor([1, 2]) + True),
    ("f32-times-bool-scalar", lambda lib: lib.tensor([1.0, 2.0]) * True),
    ("int-plus-f32-tensor", lambda lib: lib.tensor([1, 2]) + lib.tensor([1.0, 2.0])),
    ("int-maximum-f32-tensor", lambda lib: lib.maximum(lib.tensor([1, 2]), lib.tensor([1.5, 0.5]))),
    ("int-times-f64-tensor", lambda lib: lib.tensor([1, 2]) * lib.tensor(np.array([1.0, 2.0]))),
    ("f32-plus-0d-f64-tensor", lambda lib: lib.tensor([1.0, 2.0]) + lib.tensor(np.array(2.0))),
    ("f32-times-0d-int-tensor", lambda lib: lib.tensor([1.0, 2.0]) * lib.tensor(3)),
    ("0d-f32-times-f64-tensor", lambda lib: lib.tensor(2.0) * lib.tensor(np.array([1.0, 2.0]))),
    (
        "f32-where-0d-f64-tensor",
        lambda lib: lib.where(
            lib.tensor([True, False]), lib.tensor([1.0, 2.0]), lib.tensor(np.array(0.5))
        ),
    ),
]


def _np_dtype(dtype) -> np.dtype:
    return np.dtype(str(dtype).removeprefix("torch."))


# Where minigrad promotes as numpy does and PyTorch does not (README, "Where minigrad
# differs"): integer and bool tensors in floating-point math give float64 (PyTorch: its
# default float32; for mean, var and softmax PyTorch refuses integers), and a 0-d tensor
# promotes like any array (PyTorch treats it like a Python scalar).
NUMPY_PROMOTION = {
    "int-plus-python-float",
    "int-div-int",
    "int-pow-float",
    "int-exp",
    "int-sqrt",
    "int-tanh",
    "int-sigmoid",
    "int-clamp-float-bounds",
    "int-mean",
    "int-var",
    "int-softmax",
    "int-where-python-float",
    "bool-times-python-float",
    "int-plus-f32-tensor",
    "int-maximum-f32-tensor",
    "f32-plus-0d-f64-tensor",
    "f32-times-0d-int-tensor",
    "f32-where-0d-f64-tensor",
}


@pytest.mark.parametrize(
    "fn", [pytest.param(f, id=n) for n, f in DTYPES if n not in NUMPY_PROMOTION]
)
def test_result_dtype_and_values_match_torch(fn) -> None:
    try:
        expected = fn(torch)
    except (RuntimeError, NotImplementedError):
        with pytest.raises((RuntimeError, NotImplementedError, TypeError)):
            fn(mg)
        return
    out = fn(mg)
    assert (out.dtype, out.shape) == (_np_dtype(expected.dtype), tuple(expected.shape))
    np.testing.assert_allclose(out.data, expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize("fn", [pytest.param(f, id=n) for n, f in DTYPES if n in NUMPY_PROMOTION])
def test_numpy_promotion_gives_float64_with_torchs_values(fn) -> None:
    out = fn(mg)
    assert out.dtype == np.float64
    try:
        expected = fn(torch)
    except RuntimeError:  # PyTorch refuses integers here (mean, var, softmax)
        return
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.double().numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda lib: lib.tensor([1, 2]) * 2, id="int-op-result"),
        pytest.param(lambda lib: lib.tensor([1.0, 2.0]) > 1, id="comparison-result"),
        pytest.param(lambda lib: lib.tensor([1, 2]).amax(), id="int-0d-reduction"),
    ],
)
def test_requires_grad_on_integer_results_is_refused(make) -> None:
    with pytest.raises(RuntimeError, match="floating point"):
        make(torch).requires_grad_()
    with pytest.raises(RuntimeError, match="floating point"):
        make(mg).requires_grad_()


def test_float_result_mixing_int_tensor_gets_grad_only_on_float_side() -> None:
    fn = lambda lib, x, i: (x * i).sum(-1)
    _parity(fn, np.arange(6.0).reshape(2, 3), B([1, -2, 3]))


# --- max/min with dim, ties -----------------------------------------------------------------
def test_max_with_dim_returns_values_only_matching_torch_max_values() -> None:
    """api.md: max/min(dim) return values only (documented difference); the values must be
    torch.max(dim).values and the gradient without ties must equal torch's."""
    x = np.array([[1.0, 5.0, 2.0], [7.0, -1.0, 0.0]])
    ours = mg.tensor(x, requires_grad=True)
    out = ours.max(-1, keepdim=True)
    assert isinstance(out, mg.Tensor)
    theirs = torch.tensor(x, requires_grad=True)
    values, _ = theirs.max(-1, keepdim=True)
    g = np.array([[0.3], [-1.1]])
    out.backward(g)
    values.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(out.data, values.detach().numpy())
    np.testing.assert_array_equal(ours.grad, theirs.grad.numpy())


@pytest.mark.parametrize("op", ["amax", "amin"])
def test_amax_amin_tie_split_over_tuple_of_negative_dims(op) -> None:
    x = np.array([[[1.0, 1.0], [0.0, 1.0]], [[2.0, 0.0], [2.0, 2.0]]])
    _parity(lambda lib, t: getattr(t, op)((-1, -2), keepdim=True), x)
