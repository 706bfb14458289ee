"""Op-level tests: every differentiable op's forward against numpy, its gradients against
PyTorch (float64, a random upstream gradient) and against central finite differences.

Each case is one expression ``fn(lib, *tensors)``, written once and run with ``lib`` set to
minigrad and to torch, so both libraries evaluate exactly the same computation; ``ref`` is
the same forward in plain numpy. The lists of ops and shapes below are the test plan: read
them to see what is covered.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch")

# ----------------------------------------------------------------------------- test cases


@dataclass(frozen=True)
class Spec:
    """A random float64 input: ``normal``, ``positive`` (in [0.5, 2]) or ``nonzero`` (|x| in
    [0.5, 2], for denominators and kinks that finite differences must not straddle)."""

    shape: tuple[int, ...]
    kind: str = "normal"

    def make(self, rng: np.random.Generator) -> np.ndarray:
        if self.kind == "normal":
            return np.asarray(rng.standard_normal(self.shape))
        magnitude = np.asarray(rng.uniform(0.5, 2.0, self.shape))
        if self.kind == "positive":
            return magnitude
        assert self.kind == "nonzero", self.kind
        return magnitude * rng.choice([-1.0, 1.0], self.shape)


def normal(*shape: int) -> Spec:
    return Spec(shape)


def positive(*shape: int) -> Spec:
    return Spec(shape, "positive")


def nonzero(*shape: int) -> Spec:
    return Spec(shape, "nonzero")


@dataclass(frozen=True)
class Case:
    id: str
    fn: Callable[..., Any]  # fn(lib, *inputs) with lib = minigrad or torch
    ref: Callable[..., Any]  # the forward in numpy
    inputs: tuple[Any, ...]  # Specs (random float64 arrays) or fixed arrays (indices, masks)
    finite_differences: bool = True
    torch_fn: Callable[..., Any] | None = None  # only where torch spells the op differently

    def arrays(self) -> list[np.ndarray]:
        """The inputs, the same on every call (the seed comes from the case's id)."""
        rng = np.random.default_rng(zlib.crc32(self.id.encode()))
        return [x.make(rng) if isinstance(x, Spec) else np.asarray(x) for x in self.inputs]

    def on_minigrad(self, *tensors: Any) -> Any:
        return self.fn(mg, *tensors)

    def on_torch(self, *tensors: Any) -> Any:
        return (self.torch_fn or self.fn)(torch, *tensors)


def case(id: str, fn: Callable[..., Any], ref: Callable[..., Any], *inputs: Any, **kw: Any) -> Case:
    return Case(id, fn, ref, inputs, **kw)


def shape_id(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) if shape else "0d"


def dim_id(dim: Any) -> str:
    return "all" if dim is None else str(dim).replace(" ", "")


def numpy_operand(lib: Any, array: np.ndarray) -> Any:
    """``array`` as each library takes it: the ndarray itself for minigrad (what is being
    tested), a tensor for torch (whose operators do not accept ndarrays)."""
    return torch.from_numpy(array) if lib is torch else array


def np_axis(dim: Any, ndim: int) -> Any:
    """numpy has no axes on a 0-d array, where PyTorch accepts dim 0 and -1."""
    return None if ndim == 0 else dim


def np_softmax(x: np.ndarray, dim: int) -> np.ndarray:
    axis = np_axis(dim, x.ndim)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def np_log_softmax(x: np.ndarray, dim: int) -> np.ndarray:
    axis = np_axis(dim, x.ndim)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


# Fixed numpy operands: positive, so they also serve as denominators and bases of powers.
C23 = np.array([[0.5, 1.0, 1.5], [2.0, 0.75, 1.25]])
C3 = np.array([0.5, 1.5, 2.0])
C32 = C23.T.copy()

CASES: list[Case] = []

# --- elementwise, one input ---------------------------------------------------------------

UNARY_SHAPES = [(), (1,), (3,), (2, 3), (2, 1, 3)]
UNARY_OPS = [
    ("neg", lambda lib, x: -x, np.negative, normal),
    ("exp", lambda lib, x: x.exp(), np.exp, normal),
    ("log", lambda lib, x: x.log(), np.log, positive),
    ("sqrt", lambda lib, x: x.sqrt(), np.sqrt, positive),
    ("abs", lambda lib, x: x.abs(), np.abs, nonzero),
    ("tanh", lambda lib, x: x.tanh(), np.tanh, normal),
    ("sigmoid", lambda lib, x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), normal),
    ("relu", lambda lib, x: x.relu(), lambda x: np.maximum(x, 0), nonzero),
    ("clamp", lambda lib, x: x.clamp(-0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5), normal),
    ("clamp_min", lambda lib, x: x.clamp(min=-0.3), lambda x: np.maximum(x, -0.3), normal),
    ("clamp_max", lambda lib, x: x.clamp(max=0.3), lambda x: np.minimum(x, 0.3), normal),
    ("pow_int", lambda lib, x: x**3, lambda x: x**3, normal),
    ("pow_negative_float", lambda lib, x: x**-1.5, lambda x: x**-1.5, positive),
    ("pow_method", lambda lib, x: x.pow(0.5), np.sqrt, positive),
    ("rpow", lambda lib, x: 2.0**x, lambda x: 2.0**x, normal),
    ("clone", lambda lib, x: x.clone(), lambda x: x.copy(), normal),
]
CASES += [
    case(f"{name}-{shape_id(shape)}", fn, ref, kind(*shape))
    for name, fn, ref, kind in UNARY_OPS
    for shape in UNARY_SHAPES
]

FUNCTION_FORMS = [  # mg.exp(t) etc., the same names as torch.exp(t)
    ("mg.exp", lambda lib, x: lib.exp(x), np.exp, normal),
    ("mg.log", lambda lib, x: lib.log(x), np.log, positive),
    ("mg.sqrt", lambda lib, x: lib.sqrt(x), np.sqrt, positive),
    ("mg.abs", lambda lib, x: lib.abs(x), np.abs, nonzero),
    ("mg.tanh", lambda lib, x: lib.tanh(x), np.tanh, normal),
    ("mg.sigmoid", lambda lib, x: lib.sigmoid(x), lambda x: 1 / (1 + np.exp(-x)), normal),
    ("mg.relu", lambda lib, x: lib.relu(x), lambda x: np.maximum(x, 0), nonzero),
    ("mg.clamp", lambda lib, x: lib.clamp(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5), normal),
    ("mg.pow", lambda lib, x: lib.pow(x, 2.5), lambda x: x**2.5, positive),
    ("mg.softmax", lambda lib, x: lib.softmax(x, 1), lambda x: np_softmax(x, 1), normal),
    (
        "mg.log_softmax",
        lambda lib, x: lib.log_softmax(x, 0),
        lambda x: np_log_softmax(x, 0),
        normal,
    ),
    ("mg.sum", lambda lib, x: lib.sum(x, 1), lambda x: x.sum(1), normal),
    (
        "mg.mean",
        lambda lib, x: lib.mean(x, 0, keepdim=True),
        lambda x: x.mean(0, keepdims=True),
        normal,
    ),
    ("mg.amax", lambda lib, x: lib.amax(x, -1), lambda x: x.max(-1), normal),
    ("mg.amin", lambda lib, x: lib.amin(x, 0), lambda x: x.min(0), normal),
]
CASES += [case(f"{name}-2x3", fn, ref, kind(2, 3)) for name, fn, ref, kind in FUNCTION_FORMS]

# --- elementwise, two inputs, broadcasting ----------------------------------------------

BROADCAST_PAIRS = [
    ((), ()),
    ((2, 3), ()),
    ((), (2, 3)),
    ((2, 3), (2, 3)),
    ((2, 3), (3,)),
    ((3,), (2, 3)),
    ((2, 3), (1, 3)),  # a size-1 dim on the right
    ((2, 1), (2, 3)),  # ... and on the left
    ((2, 1), (1, 3)),  # both sides broadcast
    ((4, 1, 3), (2, 1)),  # both sides, plus a new leading dim
    ((1,), (2, 3)),
]
BINARY_OPS = [
    ("add", lambda lib, a, b: a + b, np.add, normal, normal),
    ("sub", lambda lib, a, b: a - b, np.subtract, normal, normal),
    ("mul", lambda lib, a, b: a * b, np.multiply, normal, normal),
    ("div", lambda lib, a, b: a / b, np.divide, normal, nonzero),
    ("pow", lambda lib, a, b: a**b, np.power, positive, normal),
    ("maximum", lambda lib, a, b: lib.maximum(a, b), np.maximum, normal, normal),
    ("minimum", lambda lib, a, b: lib.minimum(a, b), np.minimum, normal, normal),
]
CASES += [
    case(f"{name}-{shape_id(sa)}-{shape_id(sb)}", fn, ref, kind_a(*sa), kind_b(*sb))
    for name, fn, ref, kind_a, kind_b in BINARY_OPS
    for sa, sb in BROADCAST_PAIRS
]

METHOD_FORMS = [  # x.add(y) etc.
    ("add_method", lambda lib, a, b: a.add(b), np.add, normal),
    ("sub_method", lambda lib, a, b: a.sub(b), np.subtract, normal),
    ("mul_method", lambda lib, a, b: a.mul(b), np.multiply, normal),
    ("div_method", lambda lib, a, b: a.div(b), np.divide, nonzero),
    ("pow_method_tensor", lambda lib, a, b: b.abs().pow(a), lambda a, b: np.abs(b) ** a, nonzero),
    ("mg.pow_tensor", lambda lib, a, b: lib.pow(b.abs(), a), lambda a, b: np.abs(b) ** a, nonzero),
]
CASES += [
    case(f"{name}-2x3-3", fn, ref, normal(2, 3), kind(3)) for name, fn, ref, kind in METHOD_FORMS
]

# --- Python scalars and numpy arrays on either side of an operator ------------------------

SCALAR_OPERANDS = [
    ("add_scalar_right", lambda lib, x: x + 2.0, lambda x: x + 2.0, normal),
    ("add_scalar_left", lambda lib, x: 2.0 + x, lambda x: 2.0 + x, normal),
    ("add_int_right", lambda lib, x: x + 3, lambda x: x + 3, normal),
    ("sub_scalar_right", lambda lib, x: x - 2.0, lambda x: x - 2.0, normal),
    ("sub_scalar_left", lambda lib, x: 2.0 - x, lambda x: 2.0 - x, normal),
    ("mul_scalar_right", lambda lib, x: x * -1.5, lambda x: x * -1.5, normal),
    ("mul_scalar_left", lambda lib, x: 2.5 * x, lambda x: 2.5 * x, normal),
    ("mul_int_left", lambda lib, x: 3 * x, lambda x: 3 * x, normal),
    ("div_scalar_right", lambda lib, x: x / 4.0, lambda x: x / 4.0, normal),
    ("div_scalar_left", lambda lib, x: 3.0 / x, lambda x: 3.0 / x, nonzero),
    ("div_int_left", lambda lib, x: 1 / x, lambda x: 1 / x, nonzero),
    ("pow_scalar_right", lambda lib, x: x**2.0, lambda x: x**2.0, normal),
    ("pow_scalar_left", lambda lib, x: 1.5**x, lambda x: 1.5**x, normal),
    (
        "maximum_constant_0d",
        lambda lib, x: lib.maximum(x, lib.tensor(0.25, dtype=x.dtype)),
        lambda x: np.maximum(x, 0.25),
        normal,
    ),
]
CASES += [case(f"{name}-2x3", fn, ref, kind(2, 3)) for name, fn, ref, kind in SCALAR_OPERANDS]

NUMPY_OPERANDS = [  # (2, 3) constants against a (3,) tensor: broadcasting both ways
    ("add_numpy_right", lambda lib, x: x + numpy_operand(lib, C23), lambda x: x + C23, normal),
    ("add_numpy_left", lambda lib, x: numpy_operand(lib, C23) + x, lambda x: C23 + x, normal),
    ("sub_numpy_right", lambda lib, x: x - numpy_operand(lib, C23), lambda x: x - C23, normal),
    ("sub_numpy_left", lambda lib, x: numpy_operand(lib, C23) - x, lambda x: C23 - x, normal),
    ("mul_numpy_right", lambda lib, x: x * numpy_operand(lib, C23), lambda x: x * C23, normal),
    ("mul_numpy_left", lambda lib, x: numpy_operand(lib, C23) * x, lambda x: C23 * x, normal),
    ("div_numpy_right", lambda lib, x: x / numpy_operand(lib, C23), lambda x: x / C23, normal),
    ("div_numpy_left", lambda lib, x: numpy_operand(lib, C23) / x, lambda x: C23 / x, nonzero),
    ("pow_numpy_right", lambda lib, x: x ** numpy_operand(lib, C23), lambda x: x**C23, positive),
    ("pow_numpy_left", lambda lib, x: numpy_operand(lib, C23) ** x, lambda x: C23**x, normal),
    (
        "maximum_numpy",
        lambda lib, x: lib.maximum(numpy_operand(lib, C3), x),
        lambda x: np.maximum(C3, x),
        normal,
    ),
    (
        "where_numpy",
        lambda lib, x: lib.where(numpy_operand(lib, C3 > 1), x, numpy_operand(lib, C23)),
        lambda x: np.where(C3 > 1, x, C23),
        normal,
    ),
]
CASES += [case(f"{name}-3", fn, ref, kind(3)) for name, fn, ref, kind in NUMPY_OPERANDS]
# torch's matmul does not promote float32 with float64 as numpy (and so minigrad) does, so
# its side promotes explicitly; for the float64 comparisons `.double()` changes nothing.
CASES += [
    case(
        "matmul_numpy_left-3",
        lambda lib, x: C23 @ x,
        lambda x: C23 @ x,
        normal(3),
        torch_fn=lambda lib, x: numpy_operand(lib, C23) @ x.double(),
    ),
    case(
        "matmul_numpy_right-3",
        lambda lib, x: x @ C32,
        lambda x: x @ C32,
        normal(3),
        torch_fn=lambda lib, x: x.double() @ numpy_operand(lib, C32),
    ),
]

# --- matrix products ----------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3,), (3,)),  # 1-D @ 1-D: a 0-d dot product
    ((3,), (3, 2)),  # 1-D @ 2-D
    ((2, 3), (3,)),  # 2-D @ 1-D
    ((2, 3), (3, 4)),
    ((2, 2, 3), (3, 4)),  # batched @ matrix
    ((2, 2, 3), (2, 3, 4)),  # batched @ batched
    ((2, 1, 2, 3), (3, 3, 2)),  # batch dims broadcast on both sides
    ((3,), (2, 3, 2)),  # 1-D @ batched
    ((2, 4, 3), (3,)),  # batched @ 1-D
]
MATMUL_FORMS = [
    ("matmul_op", lambda lib, a, b: a @ b),
    ("mg.matmul", lambda lib, a, b: lib.matmul(a, b)),
    ("matmul_method", lambda lib, a, b: a.matmul(b)),
]
CASES += [
    case(f"{name}-{shape_id(sa)}-{shape_id(sb)}", fn, np.matmul, normal(*sa), normal(*sb))
    for name, fn in MATMUL_FORMS
    for sa, sb in MATMUL_SHAPES
]
CASES += [
    case("outer-3-2", lambda lib, a, b: lib.outer(a, b), np.outer, normal(3), normal(2)),
    case("outer-1-4", lambda lib, a, b: lib.outer(a, b), np.outer, normal(1), normal(4)),
    case("dot-3-3", lambda lib, a, b: lib.dot(a, b), np.dot, normal(3), normal(3)),
    case("dot-1-1", lambda lib, a, b: lib.dot(a, b), np.dot, normal(1), normal(1)),
]

# --- reductions ---------------------------------------------------------------------------

REDUCE_DIMS = [  # (shape, dim, keepdim)
    ((2, 3, 4), None, False),
    ((2, 3, 4), 0, False),
    ((2, 3, 4), 1, True),
    ((2, 3, 4), -1, False),
    ((2, 3, 4), (0, 2), False),
    ((2, 3, 4), (-1, -3), True),
    ((3,), 0, True),
    ((1, 3), 0, False),  # reducing a size-1 dim
    ((), None, False),
    ((), 0, False),
    ((), -1, True),
]


def reduce_fn(method: str, dim: Any, keepdim: bool) -> Callable[..., Any]:
    if dim is None:
        return lambda lib, x: getattr(x, method)()
    if method in ("max", "min"):
        # minigrad's max(dim) returns values only, like torch's amax(dim) (its max(dim) gives
        # a (values, indices) pair and sends the gradient to one index at ties).
        return lambda lib, x: getattr(x, method if lib is mg else "a" + method)(dim, keepdim)
    return lambda lib, x: getattr(x, method)(dim, keepdim=keepdim)


REDUCTIONS = [
    ("sum", np.sum),
    ("mean", np.mean),
    ("amax", np.amax),
    ("amin", np.amin),
    ("max", np.amax),
    ("min", np.amin),
]
CASES += [
    case(
        f"{method}-{shape_id(shape)}-dim{dim_id(dim)}{'-keepdim' if keepdim else ''}",
        reduce_fn(method, dim, keepdim),
        partial(
            lambda x, f, dim, keepdim: f(x, axis=np_axis(dim, x.ndim), keepdims=keepdim),
            f=f,
            dim=dim,
            keepdim=keepdim,
        ),
        normal(*shape),
    )
    for method, f in REDUCTIONS
    for shape, dim, keepdim in REDUCE_DIMS
]
CASES += [
    case("sum-dim-keyword-2x3", lambda lib, x: x.sum(dim=1), lambda x: x.sum(1), normal(2, 3)),
    case(
        "mean-dim-keyword-2x3",
        lambda lib, x: x.mean(dim=(0, 1), keepdim=True),
        lambda x: x.mean((0, 1), keepdims=True),
        normal(2, 3),
    ),
]

VAR_DIMS = [  # (shape, dim, correction, keepdim)
    ((2, 3, 4), None, 1, False),
    ((2, 3, 4), None, 0, False),
    ((2, 3, 4), 1, 1, True),
    ((2, 3, 4), -1, 0, False),
    ((2, 3, 4), (0, 2), 1, False),
    ((2, 3, 4), (-1, -2), 0, True),
    ((3,), 0, 1, False),
    ((1, 3), 1, 0, True),
    ((), None, 0, False),
]


def var_fn(dim: Any, correction: int, keepdim: bool) -> Callable[..., Any]:
    if dim is None:
        return lambda lib, x: x.var(correction=correction)
    return lambda lib, x: x.var(dim, correction=correction, keepdim=keepdim)


CASES += [
    case(
        f"var-{shape_id(shape)}-dim{dim_id(dim)}-correction{correction}"
        f"{'-keepdim' if keepdim else ''}",
        var_fn(dim, correction, keepdim),
        partial(
            lambda x, dim, c, keepdim: np.var(x, axis=dim, ddof=c, keepdims=keepdim),
            dim=dim,
            c=correction,
            keepdim=keepdim,
        ),
        normal(*shape),
    )
    for shape, dim, correction, keepdim in VAR_DIMS
]
CASES += [
    case(
        "var-default-unbiased-2x3",
        lambda lib, x: x.var(),
        lambda x: np.var(x, ddof=1),
        normal(2, 3),
    ),
    case(
        "var-unbiased-false-2x3",
        lambda lib, x: x.var(1, unbiased=False),
        lambda x: np.var(x, axis=1),
        normal(2, 3),
    ),
]

SOFTMAX_DIMS = [
    ((2, 3, 4), 0),
    ((2, 3, 4), 1),
    ((2, 3, 4), -1),
    ((2, 3), -2),
    ((5,), 0),
    ((1, 4), 0),  # a size-1 dim: the output is all ones
    ((), 0),
]
CASES += [
    case(
        f"softmax-{shape_id(shape)}-dim{dim}",
        partial(lambda lib, x, dim: x.softmax(dim), dim=dim),
        partial(np_softmax, dim=dim),
        normal(*shape),
    )
    for shape, dim in SOFTMAX_DIMS
]
CASES += [
    case(
        f"log_softmax-{shape_id(shape)}-dim{dim}",
        partial(lambda lib, x, dim: x.log_softmax(dim), dim=dim),
        partial(np_log_softmax, dim=dim),
        normal(*shape),
    )
    for shape, dim in SOFTMAX_DIMS
]

# --- shapes -------------------------------------------------------------------------------

SHAPE_OPS = [  # (id, fn, numpy ref, input shape)
    (
        "reshape-2x3x4-to-4x-1",
        lambda lib, x: x.reshape(4, -1),
        lambda x: x.reshape(4, -1),
        (2, 3, 4),
    ),
    ("reshape-2x3x4-to-(-1)", lambda lib, x: x.reshape(-1), lambda x: x.reshape(-1), (2, 3, 4)),
    ("reshape-2x3-tuple", lambda lib, x: x.reshape((3, 2)), lambda x: x.reshape(3, 2), (2, 3)),
    ("reshape-6-to-2x1x3", lambda lib, x: x.reshape(2, 1, 3), lambda x: x.reshape(2, 1, 3), (6,)),
    ("reshape-0d-to-1x1", lambda lib, x: x.reshape(1, 1), lambda x: x.reshape(1, 1), ()),
    ("reshape-1-to-0d", lambda lib, x: x.reshape(()), lambda x: x.reshape(()), (1,)),
    ("view-2x3x4-to-6x4", lambda lib, x: x.view(6, 4), lambda x: x.reshape(6, 4), (2, 3, 4)),
    ("view-2x3-to-(-1,2)", lambda lib, x: x.view(-1, 2), lambda x: x.reshape(-1, 2), (2, 3)),
    ("flatten-2x3x4", lambda lib, x: x.flatten(), lambda x: x.reshape(-1), (2, 3, 4)),
    ("flatten-2x3x4-1-2", lambda lib, x: x.flatten(1, 2), lambda x: x.reshape(2, 12), (2, 3, 4)),
    ("flatten-2x3x4-0-1", lambda lib, x: x.flatten(0, 1), lambda x: x.reshape(6, 4), (2, 3, 4)),
    (
        "flatten-2x3x4-(-2)-(-1)",
        lambda lib, x: x.flatten(-2, -1),
        lambda x: x.reshape(2, 12),
        (2, 3, 4),
    ),
    (
        "flatten-2x3x4-start1",
        lambda lib, x: x.flatten(start_dim=1),
        lambda x: x.reshape(2, 12),
        (2, 3, 4),
    ),
    ("flatten-0d", lambda lib, x: x.flatten(), lambda x: x.reshape(1), ()),
    (
        "transpose-2x3x4-0-2",
        lambda lib, x: x.transpose(0, 2),
        lambda x: x.swapaxes(0, 2),
        (2, 3, 4),
    ),
    (
        "transpose-2x3x4-(-1)-0",
        lambda lib, x: x.transpose(-1, 0),
        lambda x: x.swapaxes(-1, 0),
        (2, 3, 4),
    ),
    ("transpose-2x3-0-1", lambda lib, x: x.transpose(0, 1), lambda x: x.T, (2, 3)),
    ("transpose-3-0-0", lambda lib, x: x.transpose(0, 0), lambda x: x, (3,)),
    (
        "permute-2x3x4-2-0-1",
        lambda lib, x: x.permute(2, 0, 1),
        lambda x: x.transpose(2, 0, 1),
        (2, 3, 4),
    ),
    (
        "permute-2x3x4-negative",
        lambda lib, x: x.permute(-1, 0, -2),
        lambda x: x.transpose(2, 0, 1),
        (2, 3, 4),
    ),
    ("permute-2x3-tuple", lambda lib, x: x.permute((1, 0)), lambda x: x.T, (2, 3)),
    ("T-2x3", lambda lib, x: x.T, lambda x: x.T, (2, 3)),
    ("T-1x4", lambda lib, x: x.T, lambda x: x.T, (1, 4)),
    ("unsqueeze-2x3-0", lambda lib, x: x.unsqueeze(0), lambda x: x[None], (2, 3)),
    ("unsqueeze-2x3-1", lambda lib, x: x.unsqueeze(1), lambda x: x[:, None], (2, 3)),
    ("unsqueeze-2x3-2", lambda lib, x: x.unsqueeze(2), lambda x: x[..., None], (2, 3)),
    ("unsqueeze-2x3-(-1)", lambda lib, x: x.unsqueeze(-1), lambda x: x[..., None], (2, 3)),
    ("unsqueeze-2x3-(-3)", lambda lib, x: x.unsqueeze(-3), lambda x: x[None], (2, 3)),
    ("unsqueeze-0d-0", lambda lib, x: x.unsqueeze(0), lambda x: x.reshape(1), ()),
    ("squeeze-1x3x1-all", lambda lib, x: x.squeeze(), lambda x: x.reshape(3), (1, 3, 1)),
    ("squeeze-1x3x1-0", lambda lib, x: x.squeeze(0), lambda x: x.reshape(3, 1), (1, 3, 1)),
    ("squeeze-1x3x1-(-1)", lambda lib, x: x.squeeze(-1), lambda x: x.reshape(1, 3), (1, 3, 1)),
    ("squeeze-1x3x1-1-not-size-1", lambda lib, x: x.squeeze(1), lambda x: x, (1, 3, 1)),
    ("squeeze-1x3x1-tuple", lambda lib, x: x.squeeze((0, 2)), lambda x: x.reshape(3), (1, 3, 1)),
    ("squeeze-1-0", lambda lib, x: x.squeeze(0), lambda x: x.reshape(()), (1,)),
    ("squeeze-0d-all", lambda lib, x: x.squeeze(), lambda x: x, ()),
    (
        "expand-3x1-to-3x4",
        lambda lib, x: x.expand(3, 4),
        lambda x: np.broadcast_to(x, (3, 4)),
        (3, 1),
    ),
    (
        "expand-3x1-new-leading",
        lambda lib, x: x.expand(2, 3, 4),
        lambda x: np.broadcast_to(x, (2, 3, 4)),
        (3, 1),
    ),
    (
        "expand-3x1-minus-1",
        lambda lib, x: x.expand(2, -1, 4),
        lambda x: np.broadcast_to(x, (2, 3, 4)),
        (3, 1),
    ),
    (
        "expand-3x1-tuple",
        lambda lib, x: x.expand((3, 2)),
        lambda x: np.broadcast_to(x, (3, 2)),
        (3, 1),
    ),
    ("expand-0d", lambda lib, x: x.expand(2, 3), lambda x: np.broadcast_to(x, (2, 3)), ()),
    ("expand-1-to-5", lambda lib, x: x.expand(5), lambda x: np.broadcast_to(x, (5,)), (1,)),
]
CASES += [case(name, fn, ref, normal(*shape)) for name, fn, ref, shape in SHAPE_OPS]

# --- indexing -----------------------------------------------------------------------------

GETITEM_BASIC = [  # (id, index, input shape): the same index works on numpy and torch
    ("int", 1, (3, 4)),
    ("negative-int", -1, (3, 4)),
    ("int-int", (2, -1), (3, 4)),
    ("slices", (slice(1, None), slice(None, 2)), (3, 4)),
    ("step", slice(None, None, 2), (3, 4)),
    ("none", None, (3, 4)),
    ("slice-none-int", (slice(None), None, 1), (3, 4)),
    ("ellipsis-int", (Ellipsis, 1), (2, 3, 4)),
    ("int-ellipsis", (0, Ellipsis), (2, 3, 4)),
    ("none-ellipsis-int", (None, Ellipsis, -1), (2, 3, 4)),
    ("slices-3d", (slice(None), slice(1, None), slice(None, None, 2)), (2, 3, 4)),
    ("int-array-repeated", [0, 0, 2, 0], (3, 4)),
    ("int-arrays-pairs-repeated", ([0, 0, 1], [1, 1, 3]), (3, 4)),
    ("slice-int-array-repeated", (slice(None), [3, 3, 0]), (3, 4)),
    ("int-and-int-array", (1, [0, 0, 3]), (3, 4)),
    ("ellipsis-int-array", (Ellipsis, [1, 1]), (2, 3, 4)),
    ("separated-int-arrays", ([1, 1], slice(None), [0, 3]), (2, 3, 4)),
    ("int-int-int", (1, 2, 3), (2, 3, 4)),
    ("empty-tuple", (), ()),
    ("ellipsis", Ellipsis, ()),
    ("none", None, ()),
]
CASES += [
    case(
        f"getitem-{name}-{shape_id(shape)}",
        partial(lambda lib, x, index: x[index], index=index),
        partial(lambda x, index: x[index], index=index),
        normal(*shape),
    )
    for name, index, shape in GETITEM_BASIC
]

MASK_3X4 = np.array(
    [[True, False, True, True], [False, False, False, True], [True, True, False, False]]
)
GETITEM_TENSOR_INDEX = [  # (id, fn, index array): the index is a tensor input (no gradient)
    ("bool-mask-full", lambda lib, x, m: x[m], MASK_3X4),
    ("bool-mask-rows", lambda lib, x, m: x[m], np.array([True, False, True])),
    ("bool-mask-rows-and-slice", lambda lib, x, m: x[m, 1:], np.array([False, True, True])),
    ("bool-mask-none-selected", lambda lib, x, m: x[m], np.zeros(3, dtype=bool)),
    ("int-tensor-repeated", lambda lib, x, i: x[i], np.array([2, 0, 2, 2])),
    ("int-tensor-2d", lambda lib, x, i: x[i], np.array([[0, 1], [1, 1]])),
    ("int-tensor-0d", lambda lib, x, i: x[i], np.array(1)),
    ("int-tensor-columns", lambda lib, x, i: x[:, i], np.array([3, 0, 3])),
    ("int-tensor-negative", lambda lib, x, i: x[i], np.array([-1, -1, 0])),
]
CASES += [
    case(f"getitem-{name}-3x4", fn, lambda x, i, fn=fn: fn(np, x, i), normal(3, 4), index)
    for name, fn, index in GETITEM_TENSOR_INDEX
]
GETITEM_3D_TENSOR_INDEX = [  # (id, fn, index arrays) on a (2, 3, 4) tensor
    (
        "bool-mask-2d",
        lambda lib, x, m: x[m],
        [np.array([[True, False, True], [False, True, True]])],
    ),
    ("bool-mask-last-dim", lambda lib, x, m: x[:, :, m], [np.array([True, False, False, True])]),
    ("int-tensor-ellipsis", lambda lib, x, i: x[i, ..., 0], [np.array([1, 1, 0])]),
    (
        "int-tensors-broadcast",
        lambda lib, x, i, j: x[i, :, j],
        [np.array([[1], [0]]), np.array([3, 3, 0])],
    ),
]
CASES += [
    case(
        f"getitem-{name}-2x3x4",
        fn,
        lambda x, *index, fn=fn: fn(np, x, *index),
        normal(2, 3, 4),
        *indices,
    )
    for name, fn, indices in GETITEM_3D_TENSOR_INDEX
]
# numpy takes negative steps; torch does not, so its side of the comparison uses flip.
CASES += [
    case(
        "getitem-negative-step-3x4",
        lambda lib, x: x[::-1, 1],
        lambda x: x[::-1, 1],
        normal(3, 4),
        torch_fn=lambda lib, x: x.flip(0)[:, 1],
    ),
    case(
        "getitem-negative-step-2-3x4",
        lambda lib, x: x[:, ::-2],
        lambda x: x[:, ::-2],
        normal(3, 4),
        torch_fn=lambda lib, x: x.flip(1)[:, ::2],
    ),
]

# --- joining, selecting, copying ----------------------------------------------------------

CAT_CASES = [  # (input shapes, dim)
    (((2, 3), (1, 3)), 0),
    (((2, 3), (2, 1), (2, 2)), 1),
    (((2, 3), (2, 2)), -1),
    (((3,), (2,)), 0),
    (((2, 1, 2), (2, 2, 2)), -2),
    (((2, 3),), 0),
]
CASES += [
    case(
        f"cat-{'-'.join(map(shape_id, shapes))}-dim{dim}",
        partial(lambda lib, *xs, dim: lib.cat(list(xs), dim), dim=dim),
        partial(lambda *xs, dim: np.concatenate(xs, axis=dim), dim=dim),
        *[normal(*s) for s in shapes],
    )
    for shapes, dim in CAT_CASES
]
CASES += [
    case(
        "cat-default-dim-2x3-1x3",
        lambda lib, a, b: lib.cat([a, b]),
        lambda a, b: np.concatenate([a, b]),
        normal(2, 3),
        normal(1, 3),
    ),
]

STACK_CASES = [  # (input shapes, dim)
    (((2, 3), (2, 3)), 0),
    (((2, 3), (2, 3)), 1),
    (((2, 3), (2, 3)), 2),
    (((2, 3), (2, 3)), -1),
    (((2, 3), (2, 3)), -3),
    (((3,), (3,), (3,)), 1),
    (((), ()), 0),
    (((), ()), -1),
]
CASES += [
    case(
        f"stack-{'-'.join(map(shape_id, shapes))}-dim{dim}",
        partial(lambda lib, *xs, dim: lib.stack(list(xs), dim), dim=dim),
        partial(lambda *xs, dim: np.stack(xs, axis=dim), dim=dim),
        *[normal(*s) for s in shapes],
    )
    for shapes, dim in STACK_CASES
]

COND_2X3 = np.array([[True, False, True], [False, False, True]])
WHERE_CASES = [  # (id, fn, numpy ref, inputs)
    (
        "same-shapes",
        lambda lib, c, a, b: lib.where(c, a, b),
        np.where,
        (COND_2X3, normal(2, 3), normal(2, 3)),
    ),
    (
        "broadcast-a-b",
        lambda lib, c, a, b: lib.where(c, a, b),
        np.where,
        (COND_2X3, normal(3), normal()),
    ),
    (
        "broadcast-cond",
        lambda lib, c, a, b: lib.where(c, a, b),
        np.where,
        (np.array([True, False, True]), normal(2, 1), normal(1, 3)),
    ),
    (
        "scalar-other",
        lambda lib, c, a: lib.where(c, a, 0.0),
        lambda c, a: np.where(c, a, 0.0),
        (COND_2X3, normal(2, 3)),
    ),
    (
        "scalar-input",
        lambda lib, c, b: lib.where(c, -1.0, b),
        lambda c, b: np.where(c, -1.0, b),
        (COND_2X3, normal(3)),
    ),
    (
        "same-tensor",
        lambda lib, c, a: lib.where(c, a, a * 2),
        lambda c, a: np.where(c, a, a * 2),
        (COND_2X3, normal(2, 3)),
    ),
]
CASES += [case(f"where-{name}", fn, ref, *inputs) for name, fn, ref, inputs in WHERE_CASES]

# Casts go through float32, whose rounding (1e-7) swamps a finite difference with eps=1e-6:
# they are checked against torch and not by finite differences.
CAST_CASES = [
    ("to-float32", lambda lib, x: x.to(lib.float32), lambda x: x.astype(np.float32)),
    ("to-float64-same-dtype", lambda lib, x: x.to(lib.float64) * 2, lambda x: x * 2),
    ("float", lambda lib, x: x.float(), lambda x: x.astype(np.float32)),
    (
        "float-then-double",
        lambda lib, x: x.float().double() * x,
        lambda x: x.astype(np.float32).astype(np.float64) * x,
    ),
]
CASES += [
    case(f"cast-{name}-2x3", fn, ref, normal(2, 3), finite_differences=False)
    for name, fn, ref in CAST_CASES
]

# A few compositions, so that gradients flowing through several ops are checked as well.
CASES += [
    case(
        "compose-softmax-of-matmul",
        lambda lib, x, w: (x @ w).softmax(-1) * x.sum(1, keepdim=True),
        lambda x, w: np_softmax(x @ w, -1) * x.sum(1, keepdims=True),
        normal(2, 3),
        normal(3, 4),
    ),
    case(
        "compose-reused-input",
        lambda lib, x: x * x.exp() - x[0] / (1 + x.abs()),
        lambda x: x * np.exp(x) - x[0] / (1 + np.abs(x)),
        normal(2, 3),
    ),
    case(
        "compose-expand-then-getitem",
        lambda lib, x: x.expand(3, 2, 4)[[0, 0, 2], 1],
        lambda x: np.broadcast_to(x, (3, 2, 4))[[0, 0, 2], 1],
        normal(2, 1),
    ),
]

FD_CASES = [c for c in CASES if c.finite_differences]


def case_id(c: Case) -> str:
    return c.id


def minigrad_inputs(arrays: list[np.ndarray], *, requires_grad: bool) -> list[mg.Tensor]:
    """Float arrays become tensors (that require grad if asked); indices and masks stay as
    int64 and bool tensors."""
    return [mg.tensor(a, requires_grad=requires_grad and a.dtype.kind == "f") for a in arrays]


def torch_dtype_as_numpy(dtype: Any) -> np.dtype:
    return np.dtype(str(dtype).removeprefix("torch."))


# ----------------------------------------------------------------------------- the cases


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_forward_matches_numpy(case: Case) -> None:
    arrays = case.arrays()
    out = case.on_minigrad(*minigrad_inputs(arrays, requires_grad=False))
    expected = np.asarray(case.ref(*arrays))
    assert isinstance(out, mg.Tensor)
    assert out.shape == expected.shape
    assert out.dtype == expected.dtype
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.filterwarnings("ignore:The use of `x.T`:UserWarning")
def test_grads_match_torch(case: Case) -> None:
    mg.testing.assert_grads_match_torch(case.on_minigrad, case.on_torch, *case.arrays())


@pytest.mark.parametrize("case", FD_CASES, ids=case_id)
def test_grads_match_finite_differences(case: Case) -> None:
    inputs = minigrad_inputs(case.arrays(), requires_grad=True)
    assert any(x.requires_grad for x in inputs)
    assert mg.gradcheck(case.on_minigrad, inputs)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_float32_inputs_match_torch_dtypes(case: Case) -> None:
    """Float32 inputs: the output has torch's dtype (float32, unless a float64 numpy array
    joins in), and every input's gradient is float32, close to torch's float32 gradient."""
    arrays = [a.astype(np.float32) if a.dtype.kind == "f" else a for a in case.arrays()]
    ours = minigrad_inputs(arrays, requires_grad=True)
    theirs = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    out, expected = case.on_minigrad(*ours), case.on_torch(*theirs)
    assert out.dtype == torch_dtype_as_numpy(expected.dtype)

    upstream = np.random.default_rng(1).standard_normal(out.shape).astype(out.dtype)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    for x, t in zip(ours, theirs):
        if not x.requires_grad:
            continue
        assert x.grad is not None
        assert x.grad.dtype == np.float32
        np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- kinks and ties


def grads_on(lib: Any, fn: Callable[..., Any], arrays: list[np.ndarray], upstream: Any) -> list:
    """Each input's gradient (as an ndarray) after ``fn(lib, *inputs).backward(upstream)``."""
    if lib is mg:
        inputs = [mg.tensor(a, requires_grad=True) for a in arrays]
        fn(mg, *inputs).backward(np.asarray(upstream))
        return [x.grad for x in inputs]
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    fn(torch, *tensors).backward(torch.as_tensor(np.asarray(upstream)))
    return [t.grad.numpy() for t in tensors]


G3 = np.array([0.7, -1.3, 2.9])  # upstream gradients: distinct values, so a wrong share shows
G2 = np.array([1.9, -0.6])

# (id, fn, inputs, upstream, expected gradients): at a kink or a tie the expected value is
# PyTorch's choice, and the test checks that torch agrees with it too.
KINKS_AND_TIES = [
    ("relu-at-0", lambda lib, x: x.relu(), [np.array([-1.0, 0.0, 2.0])], G3, [G3 * [0, 0, 1]]),
    ("abs-at-0", lambda lib, x: x.abs(), [np.array([-1.0, 0.0, 2.0])], G3, [G3 * [-1, 0, 1]]),
    (
        "clamp-at-both-bounds",
        lambda lib, x: x.clamp(-1.0, 1.0),
        [np.array([-2.0, -1.0, 0.0, 1.0, 2.0])],
        np.arange(1.0, 6.0),
        [np.array([0, 2, 3, 4, 0.0])],
    ),
    (
        "clamp-min-at-bound",
        lambda lib, x: x.clamp(min=0.0),
        [np.array([-1.0, 0.0, 1.0])],
        G3,
        [G3 * [0, 1, 1]],
    ),
    (
        "clamp-max-at-bound",
        lambda lib, x: x.clamp(max=0.0),
        [np.array([-1.0, 0.0, 1.0])],
        G3,
        [G3 * [1, 1, 0]],
    ),
    (
        "amax-two-way-tie",
        lambda lib, x: x.amax(),
        [np.array([1.0, 3.0, 3.0])],
        0.8,
        [np.array([0.0, 0.4, 0.4])],
    ),
    (
        "amax-three-way-tie",
        lambda lib, x: x.amax(),
        [np.array([4.0, 4.0, 1.0, 4.0])],
        1.5,
        [np.array([0.5, 0.5, 0.0, 0.5])],
    ),
    (
        "amax-dim-ties-per-row",
        lambda lib, x: x.amax(1),
        [np.array([[2.0, 2.0, 2.0], [1.0, 5.0, 1.0], [0.0, 7.0, 7.0]])],
        G3,
        [np.array([[G3[0] / 3] * 3, [0, G3[1], 0], [0, G3[2] / 2, G3[2] / 2]])],
    ),
    (
        "amax-dim0-keepdim-tie",
        lambda lib, x: x.amax(0, keepdim=True),
        [np.array([[3.0, 1.0], [3.0, 2.0]])],
        G2[None, :],
        [np.array([[G2[0] / 2, 0], [G2[0] / 2, G2[1]]])],
    ),
    (
        "max-two-way-tie",
        lambda lib, x: x.max(),
        [np.array([1.0, 3.0, 3.0])],
        0.8,
        [np.array([0.0, 0.4, 0.4])],
    ),
    (
        "max-three-way-tie-2d",
        lambda lib, x: x.max(),
        [np.array([[6.0, 1.0], [6.0, 6.0]])],
        0.9,
        [np.array([[0.3, 0.0], [0.3, 0.3]])],
    ),
    (
        "amin-two-way-tie",
        lambda lib, x: x.amin(),
        [np.array([-2.0, 5.0, -2.0])],
        0.8,
        [np.array([0.4, 0.0, 0.4])],
    ),
    (
        "min-three-way-tie",
        lambda lib, x: x.min(),
        [np.array([0.0, 0.0, 0.0])],
        1.5,
        [np.array([0.5, 0.5, 0.5])],
    ),
    (
        "amin-dim-ties-per-row",
        lambda lib, x: x.amin(-1),
        [np.array([[1.0, 1.0, 1.0], [0.0, 3.0, 0.0], [2.0, 2.0, 9.0]])],
        G3,
        [np.array([[G3[0] / 3] * 3, [G3[1] / 2, 0, G3[1] / 2], [G3[2] / 2, G3[2] / 2, 0]])],
    ),
    (
        "maximum-ties",
        lambda lib, a, b: lib.maximum(a, b),
        [np.array([1.0, 2.0, 3.0, 5.0]), np.array([1.0, 0.0, 3.0, 6.0])],
        np.array([1, 2, 3, 4.0]),
        [np.array([0.5, 2, 1.5, 0]), np.array([0.5, 0, 1.5, 4])],
    ),
    (
        "minimum-ties",
        lambda lib, a, b: lib.minimum(a, b),
        [np.array([1.0, 2.0, 3.0, 5.0]), np.array([1.0, 0.0, 3.0, 6.0])],
        np.array([1, 2, 3, 4.0]),
        [np.array([0.5, 0, 1.5, 4]), np.array([0.5, 2, 1.5, 0])],
    ),
    (
        "maximum-ties-broadcast",
        lambda lib, a, b: lib.maximum(a, b),
        [np.array([[1.0, 2.0], [1.0, 0.0]]), np.array(1.0)],
        np.array([[1, 2], [3, 4.0]]),
        [np.array([[0.5, 2], [1.5, 0]]), np.array(0.5 + 1.5 + 4)],
    ),
    ("pow-square-at-0", lambda lib, x: x**2, [np.array([0.0, 1.5])], G2, [G2 * [0, 3]]),
    ("pow-zero-exponent-at-0", lambda lib, x: x**0, [np.array([0.0, 1.5])], G2, [G2 * 0]),
    (
        "pow-base-0-tensor-exponent",
        lambda lib, a, b: a**b,
        [np.array([0.0, 0.0, 0.0]), np.array([0.0, 1.0, 2.0])],
        G3,
        [G3 * [0, 1, 0], G3 * 0],
    ),
]


@pytest.mark.parametrize(
    ("fn", "arrays", "upstream", "expected"),
    [pytest.param(*rest, id=name) for name, *rest in KINKS_AND_TIES],
)
def test_kinks_and_ties_match_torch_exactly(fn, arrays, upstream, expected) -> None:
    for lib in (mg, torch):
        got = grads_on(lib, fn, arrays, upstream)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-15, atol=0, err_msg=f"{lib.__name__}")


def test_max_with_dim_shares_ties_like_amax_not_like_torch_max() -> None:
    """minigrad's max(dim) is torch's amax(dim): ties share the gradient (torch's max(dim)
    would give all of it to one index)."""
    x = mg.tensor(np.array([[2.0, 2.0], [1.0, 4.0]]), requires_grad=True)
    x.max(1).backward(G2)
    np.testing.assert_allclose(x.grad, [[G2[0] / 2, G2[0] / 2], [0, G2[1]]], rtol=1e-15)


@pytest.mark.filterwarnings("ignore:var\\(\\):UserWarning")  # torch warns that N <= correction
def test_var_with_no_degrees_of_freedom_is_nan_like_torch() -> None:
    # One element per slice and correction=1: 0 / 0 in the output and in the gradient.
    arrays = [np.array([[1.0, 2.0, 3.0]])]
    fn = lambda lib, x: x.var(0)
    for lib in (mg, torch):
        (grad,) = grads_on(lib, fn, arrays, G3)
        assert np.isnan(grad).all()
    mg.testing.assert_grads_match_torch(partial(fn, mg), partial(fn, torch), *arrays)


# ----------------------------------------------------------------------------- stability

LARGE_LOGITS = np.array([[-1000.0, 0.0, 1000.0], [1000.0, 1000.0, -1000.0]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda lib, x: x.softmax(1), id="softmax-dim1"),
        pytest.param(lambda lib, x: x.softmax(0), id="softmax-dim0"),
        pytest.param(lambda lib, x: x.softmax(-1), id="softmax-dim-1"),
        pytest.param(lambda lib, x: x.log_softmax(1), id="log_softmax-dim1"),
        pytest.param(lambda lib, x: x.log_softmax(0), id="log_softmax-dim0"),
        pytest.param(lambda lib, x: x.sigmoid(), id="sigmoid"),
        pytest.param(lambda lib, x: x.tanh(), id="tanh"),
    ],
)
def test_large_inputs_stay_finite_and_match_torch(fn, dtype) -> None:
    upstream = np.random.default_rng(3).standard_normal(LARGE_LOGITS.shape).astype(dtype)
    x = mg.tensor(LARGE_LOGITS.astype(dtype), requires_grad=True)
    t = torch.tensor(LARGE_LOGITS.astype(dtype), requires_grad=True)
    out, expected = fn(mg, x), fn(torch, t)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    assert np.isfinite(out.data).all() and np.isfinite(x.grad).all()
    assert out.dtype == dtype and x.grad.dtype == dtype
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-6, atol=1e-30)


def test_sigmoid_saturates_exactly_at_large_inputs() -> None:
    x = mg.tensor(np.array([-1000.0, 0.0, 1000.0]), requires_grad=True)
    out = x.sigmoid()
    out.backward(G3)
    np.testing.assert_array_equal(out.data, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(x.grad, [0.0, G3[1] / 4, 0.0])


# (id, fn, inputs): inf and nan come out where PyTorch's do, in values and gradients, and
# numpy's RuntimeWarnings stay inside minigrad (PyTorch warns about none of these).
NON_FINITE = [
    ("div-by-zero", lambda lib, a, b: a / b, [np.array([1.0, 0.0, -1.0]), np.zeros(3)]),
    ("rdiv-by-zero", lambda lib, a: 1.0 / a, [np.array([0.0, 2.0])]),
    ("pow-negative-base", lambda lib, a, b: a**b, [np.array([-2.0, 4.0]), np.array([0.5, 0.5])]),
    ("pow-zero-to-negative", lambda lib, a: a**-1.0, [np.array([0.0, 2.0])]),
    ("exp-overflow", lambda lib, a: a.exp(), [np.array([1000.0, 0.0])]),
    ("log-of-zero", lambda lib, a: a.log(), [np.array([0.0, 1.0])]),
    ("sqrt-of-zero", lambda lib, a: a.sqrt(), [np.array([0.0, 1.0])]),
    ("softmax-minus-inf", lambda lib, a: a.softmax(0), [np.array([-np.inf, 0.0, 1.0])]),
    ("log_softmax-minus-inf", lambda lib, a: a.log_softmax(0), [np.array([-np.inf, 0.0, 1.0])]),
]


@pytest.mark.parametrize(("fn", "arrays"), [pytest.param(f, a, id=n) for n, f, a in NON_FINITE])
def test_inf_and_nan_match_torch_without_warnings(fn, arrays) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mg.testing.assert_grads_match_torch(partial(fn, mg), partial(fn, torch), *arrays)


# ----------------------------------------------------------------------------- dtypes

SCALAR_EXPRESSIONS = [  # each on a float32 tensor x: a Python scalar never changes the dtype
    ("mul-float-right", lambda x: x * 2.0),
    ("mul-float-left", lambda x: 2.0 * x),
    ("add-int", lambda x: x + 1),
    ("rsub-int", lambda x: 1 - x),
    ("div-float", lambda x: x / 3.0),
    ("rdiv-float", lambda x: 3.0 / x),
    ("pow-float", lambda x: x**2.0),
    ("pow-int", lambda x: x**2),
    ("rpow-float", lambda x: 2.0**x),
    ("where-float", lambda x: mg.where(x > 1.5, x, 0.5)),
    ("clamp-floats", lambda x: x.clamp(0.25, 2.5)),
]


@pytest.mark.parametrize("fn", [pytest.param(f, id=name) for name, f in SCALAR_EXPRESSIONS])
def test_python_scalar_keeps_float32(fn) -> None:
    x = mg.tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32), requires_grad=True)
    out = fn(x)
    assert out.dtype == np.float32
    out.backward(G3)
    assert x.grad.dtype == np.float32


def test_numpy_scalar_keeps_float32_like_torch() -> None:
    # np.float64 is a subclass of Python's float; torch treats it as a scalar, keeping float32.
    x = mg.tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    assert (torch.ones(2) * np.float64(2.0)).dtype == torch.float32
    assert (x * np.float64(2.0)).dtype == np.float32


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda x, a: x * a, id="tensor-times-array"),
        pytest.param(lambda x, a: a * x, id="array-times-tensor"),
        pytest.param(lambda x, a: a - x, id="array-minus-tensor"),
        pytest.param(lambda x, a: x @ a.reshape(3, 1), id="tensor-matmul-array"),
    ],
)
def test_float32_with_float64_array_promotes_and_keeps_grad_dtype(fn) -> None:
    x = mg.tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32), requires_grad=True)
    a = np.array([0.5, -1.0, 2.0])
    out = fn(x, a)
    assert out.dtype == np.float64
    out.backward(np.random.default_rng(4).standard_normal(out.shape))
    assert x.grad.dtype == np.float32
    assert x.grad.shape == (3,)


def test_float32_with_float64_tensor_promotes_like_torch() -> None:
    a32, b64 = np.array([1.0, 2.0, 3.0], dtype=np.float32), np.array([0.5, -1.0, 2.0])
    fn = lambda lib, a, b: a * b.exp()
    ours = grads_on(mg, fn, [a32, b64], G3)
    theirs = grads_on(torch, fn, [a32, b64], G3)
    assert fn(mg, mg.tensor(a32), mg.tensor(b64)).dtype == np.float64
    assert [g.dtype for g in ours] == [np.float32, np.float64] == [g.dtype for g in theirs]
    for g, t in zip(ours, theirs):
        np.testing.assert_allclose(g, t, rtol=1e-6)


def test_cast_gradient_comes_back_in_the_input_dtype() -> None:
    x = mg.tensor(np.array([0.1, 0.2, 0.3]), requires_grad=True)
    y = x.to(mg.float32)
    assert y.dtype == np.float32
    y.backward(G3.astype(np.float32))
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad, G3.astype(np.float32).astype(np.float64))


# ----------------------------------------------------------------------------- errors

# (id, fn, input shapes, exception, strings the message must contain). Each is also run on
# torch, which must raise the same exception type: the contract is PyTorch's behaviour.
ERRORS = [
    (
        "matmul-2d",
        lambda lib, a, b: a @ b,
        [(2, 3), (4, 5)],
        RuntimeError,
        ["matmul", "(2, 3)", "(4, 5)"],
    ),
    ("matmul-1d", lambda lib, a, b: a @ b, [(3,), (4,)], RuntimeError, ["(3,)", "(4,)"]),
    (
        "matmul-2d-1d",
        lambda lib, a, b: a.matmul(b),
        [(2, 3), (4,)],
        RuntimeError,
        ["(2, 3)", "(4,)"],
    ),
    (
        "matmul-batch-dims",
        lambda lib, a, b: a @ b,
        [(2, 2, 3), (3, 3, 4)],
        RuntimeError,
        ["(2, 2, 3)", "(3, 3, 4)", "batch dims"],
    ),
    ("matmul-0d", lambda lib, a, b: lib.matmul(a, b), [(2, 3), ()], RuntimeError, ["(2, 3)", "()"]),
    ("dot-sizes", lambda lib, a, b: lib.dot(a, b), [(3,), (4,)], RuntimeError, ["(3,)", "(4,)"]),
    (
        "outer-2d",
        lambda lib, a, b: lib.outer(a, b),
        [(2, 3), (4,)],
        RuntimeError,
        ["(2, 3)", "(4,)"],
    ),
    (
        "add-broadcast",
        lambda lib, a, b: a + b,
        [(2, 3), (4,)],
        RuntimeError,
        ["add", "(2, 3)", "(4,)"],
    ),
    ("sub-broadcast", lambda lib, a, b: a - b, [(2, 3), (2,)], RuntimeError, ["(2, 3)", "(2,)"]),
    (
        "mul-broadcast",
        lambda lib, a, b: a * b,
        [(3, 1), (2, 2)],
        RuntimeError,
        ["(3, 1)", "(2, 2)"],
    ),
    ("div-broadcast", lambda lib, a, b: b / a, [(4,), (2, 3)], RuntimeError, ["(2, 3)", "(4,)"]),
    (
        "pow-broadcast",
        lambda lib, a, b: a.abs() ** b,
        [(2, 3), (3, 2)],
        RuntimeError,
        ["(2, 3)", "(3, 2)"],
    ),
    (
        "maximum-broadcast",
        lambda lib, a, b: lib.maximum(a, b),
        [(2, 3), (4,)],
        RuntimeError,
        ["(2, 3)", "(4,)"],
    ),
    (
        "cat-sizes",
        lambda lib, a, b: lib.cat([a, b], 1),
        [(2, 3), (3, 3)],
        RuntimeError,
        ["(2, 3)", "(3, 3)"],
    ),
    (
        "stack-sizes",
        lambda lib, a, b: lib.stack([a, b]),
        [(2, 3), (3, 2)],
        RuntimeError,
        ["(2, 3)", "(3, 2)"],
    ),
    ("reshape-size", lambda lib, x: x.reshape(4), [(2, 3)], RuntimeError, ["(2, 3)"]),
    ("reshape-minus-1", lambda lib, x: x.reshape(4, -1), [(2, 3)], RuntimeError, ["(2, 3)"]),
    ("view-size", lambda lib, x: x.view(7), [(2, 3)], RuntimeError, ["(2, 3)"]),
    ("expand-size", lambda lib, x: x.expand(2, 4), [(2, 3)], RuntimeError, ["expand"]),
    ("index-int", lambda lib, x: x[5], [(2, 3)], IndexError, ["5"]),
    ("index-negative-int", lambda lib, x: x[-3], [(2, 3)], IndexError, ["-3"]),
    ("index-second-dim", lambda lib, x: x[:, 3], [(2, 3)], IndexError, ["3"]),
    ("index-int-array", lambda lib, x: x[[0, 7]], [(2, 3)], IndexError, ["7"]),
    ("index-too-many", lambda lib, x: x[0, 0, 0], [(2, 3)], IndexError, []),
    ("sum-dim", lambda lib, x: x.sum(2), [(2, 3)], IndexError, ["2"]),
    ("sum-dim-tuple", lambda lib, x: x.sum((0, -3)), [(2, 3)], IndexError, ["-3"]),
    ("mean-dim", lambda lib, x: x.mean(-3), [(2, 3)], IndexError, ["-3"]),
    ("var-dim", lambda lib, x: x.var(2), [(2, 3)], IndexError, ["2"]),
    ("amax-dim", lambda lib, x: x.amax(5), [(2, 3)], IndexError, ["5"]),
    ("max-dim", lambda lib, x: x.max(2) if lib is mg else x.amax(2), [(2, 3)], IndexError, ["2"]),
    ("softmax-dim", lambda lib, x: x.softmax(2), [(2, 3)], IndexError, ["2"]),
    ("log_softmax-dim", lambda lib, x: x.log_softmax(-3), [(2, 3)], IndexError, ["-3"]),
    ("softmax-dim-0d", lambda lib, x: x.softmax(1), [()], IndexError, ["1"]),
    ("transpose-dim", lambda lib, x: x.transpose(0, 2), [(2, 3)], IndexError, ["2"]),
    ("permute-dim", lambda lib, x: x.permute(0, 2), [(2, 3)], IndexError, ["2"]),
    ("unsqueeze-dim", lambda lib, x: x.unsqueeze(3), [(2, 3)], IndexError, ["3"]),
    ("squeeze-dim", lambda lib, x: x.squeeze(-3), [(2, 3)], IndexError, ["-3"]),
    ("flatten-dim", lambda lib, x: x.flatten(0, 2), [(2, 3)], IndexError, ["2"]),
    ("cat-dim", lambda lib, a, b: lib.cat([a, b], 2), [(2, 3), (2, 3)], IndexError, ["2"]),
    ("stack-dim", lambda lib, a, b: lib.stack([a, b], -4), [(2, 3), (2, 3)], IndexError, ["-4"]),
]


@pytest.mark.parametrize(
    ("fn", "shapes", "error", "fragments"),
    [pytest.param(*rest, id=name) for name, *rest in ERRORS],
)
def test_errors_are_raised_as_in_torch_and_name_the_shapes(fn, shapes, error, fragments) -> None:
    arrays = [np.ones(s) for s in shapes]
    with pytest.raises(error):
        fn(torch, *[torch.tensor(a, requires_grad=True) for a in arrays])
    with pytest.raises(error) as info:
        fn(mg, *[mg.tensor(a, requires_grad=True) for a in arrays])
    for fragment in fragments:
        assert fragment in str(info.value)
