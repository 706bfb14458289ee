"""Differentiable primitives. Each op is one Function: numpy arrays in, numpy arrays out.

Conventions, so that every backward reads the same way:

* ``backward`` begins by unpacking ``ctx.saved_tensors`` and returns one gradient per
  positional input (``None`` for an input that needs none).
* A gradient may be returned in the op's broadcast output shape: the engine sums it back to
  the input's shape (``_shapes.unbroadcast``) and casts it to the input's dtype.
* No backward writes into an array it did not allocate (``grad_output`` may be shared).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad._shapes import (
    Dim,
    broadcast_shapes,
    check_broadcast,
    expand_reduced,
    is_number,
    normalize_dim,
    reduction_axes,
)
from minigrad.autograd import Context, Function

# ----------------------------------------------------------------------------- arithmetic


class Add(Function):
    """out = a + b (broadcasting)."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        check_broadcast("add", a, b)
        return a + b

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        return grad_output, grad_output


class Sub(Function):
    """out = a - b (broadcasting)."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        check_broadcast("sub", a, b)
        return a - b

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        return grad_output, -grad_output


class Neg(Function):
    """out = -a."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        return -a

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        return -grad_output


class Mul(Function):
    """out = a * b; d/da = b, d/db = a."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        check_broadcast("mul", a, b)
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        a, b = ctx.saved_tensors
        grad_a = grad_output * b if ctx.needs_input_grad[0] else None
        grad_b = grad_output * a if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    """out = a / b; d/da = 1/b, d/db = -a/b^2 (x / 0 is inf or nan, as PyTorch, no warning)."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        check_broadcast("div", a, b)
        ctx.save_for_backward(a, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            return a / b

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        a, b = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):
            grad_a = grad_output / b if ctx.needs_input_grad[0] else None
            grad_b = -grad_output * a / (b * b) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Pow(Function):
    """out = a ** b; d/da = b a^(b-1), d/db = a^b log(a).

    As in PyTorch, d/da is 0 where b == 0 (not 0 * 0^-1 = nan), and d/db is 0 where a == 0
    and b >= 0 (not 0 * log 0). Like PyTorch, 0^-1 is inf and (-2)^0.5 is nan, without a warning.
    """

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        check_broadcast("pow", a, b)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            try:
                out = np.power(a, b)
            except ValueError as error:  # an integer to a negative integer power
                raise RuntimeError(f"pow: {error}") from None
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        a, b, out = ctx.saved_tensors
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            with np.errstate(divide="ignore", invalid="ignore"):
                grad_a = grad_output * np.where(b == 0, 0.0, b * np.power(a, b - 1))
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = np.where((a == 0) & (b >= 0), 0.0, np.log(a))
                grad_b = grad_output * out * log_a
        return grad_a, grad_b


class MatMul(Function):
    """out = a @ b with numpy/PyTorch matmul rules (1-D operands, batched leading dims).

    For 2-D operands, a (n, k) @ b (k, m): grad_a = G b^T (n, m)@(m, k), grad_b = a^T G.
    A 1-D operand is treated as a row (a) or column (b) vector and the added dim removed
    again; batch dims are broadcast and the engine sums their gradient back.
    """

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.ndim == 0 or b.ndim == 0:
            raise RuntimeError(
                f"matmul: both arguments need to be at least 1-D, but got shapes {a.shape} "
                f"and {b.shape}"
            )
        inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if a.shape[-1] != inner_b:
            raise RuntimeError(
                f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied (the last dim of "
                f"the first, {a.shape[-1]}, must equal the "
                f"{'only' if b.ndim == 1 else 'second-to-last'} dim of the second, {inner_b})"
            )
        try:
            out = np.matmul(a, b)
        except ValueError:  # the inner dims agree, so the batch dims (all but the last two) clash
            raise RuntimeError(
                f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied: their batch dims "
                f"{a.shape[:-2]} and {b.shape[:-2]} cannot be broadcast together (trailing dims "
                "must be equal or 1)"
            ) from None
        ctx.save_for_backward(a, b)
        return out

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        a, b = ctx.saved_tensors
        if a.ndim == 1 and b.ndim == 1:  # dot product: out is 0-d
            return grad_output * b, grad_output * a
        a2 = a[None, :] if a.ndim == 1 else a  # (k,) -> (1, k)
        b2 = b[:, None] if b.ndim == 1 else b  # (k,) -> (k, 1)
        g2 = grad_output
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)  # (..., m) -> (..., 1, m)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)  # (..., n) -> (..., n, 1)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = g2 @ np.swapaxes(b2, -1, -2)  # (..., n, m) @ (..., m, k) -> (..., n, k)
            if a.ndim == 1:
                grad_a = grad_a[..., 0, :]  # (..., 1, k) -> (..., k)
        if ctx.needs_input_grad[1]:
            grad_b = np.swapaxes(a2, -1, -2) @ g2  # (..., k, n) @ (..., n, m) -> (..., k, m)
            if b.ndim == 1:
                grad_b = grad_b[..., 0]  # (..., k, 1) -> (..., k)
        return grad_a, grad_b


class Outer(Function):
    """out = a ⊗ b, the rank-1 matrix with out[i, j] = a[i] * b[j].

    a (n,), b (m,), G = dL/dout (n, m): grad_a[i] = sum_j G[i, j] b[j] = G @ b, and
    grad_b[j] = sum_i G[i, j] a[i] = G^T @ a.
    """

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.ndim != 1 or b.ndim != 1:
            raise RuntimeError(
                f"outer: expected two 1-D tensors, got shapes {a.shape} and {b.shape}"
            )
        ctx.save_for_backward(a, b)
        return np.outer(a, b)  # (n,) x (m,) -> (n, m)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        a, b = ctx.saved_tensors
        grad_a = grad_output @ b if ctx.needs_input_grad[0] else None  # (n, m) @ (m,) -> (n,)
        grad_b = grad_output.T @ a if ctx.needs_input_grad[1] else None  # (m, n) @ (n,) -> (m,)
        return grad_a, grad_b


class Dot(Function):
    """out = sum_i a[i] b[i] (0-d); grad_a = g b, grad_b = g a."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.ndim != 1 or b.ndim != 1:
            raise RuntimeError(f"dot: expected two 1-D tensors, got shapes {a.shape} and {b.shape}")
        if a.shape != b.shape:
            raise RuntimeError(
                f"dot: the tensors must have the same number of elements, got shapes "
                f"{a.shape} and {b.shape}"
            )
        ctx.save_for_backward(a, b)
        return np.dot(a, b)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        a, b = ctx.saved_tensors
        return grad_output * b, grad_output * a


# ----------------------------------------------------------------------------- elementwise


class Exp(Function):
    """out = e^x; d/dx = out."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):  # e^1000 = inf, as PyTorch
            out = np.exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_tensors
        return grad_output * out


class Log(Function):
    """out = ln x; d/dx = 1/x."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf, as PyTorch
            return np.log(x)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        (x,) = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):
            return grad_output / x


class Sqrt(Function):
    """out = sqrt(x); d/dx = 1 / (2 out) (inf at 0, as PyTorch)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            out = np.sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):
            return grad_output / (2 * out)


class Abs(Function):
    """out = |x|; d/dx = sign(x), which is 0 at x = 0 and at NaN (PyTorch's choice)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        (x,) = ctx.saved_tensors
        sign = (x > 0).astype(grad_output.dtype) - (x < 0)  # np.sign would give NaN at NaN
        return grad_output * sign


class Tanh(Function):
    """out = tanh x; d/dx = 1 - out^2."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_tensors
        return grad_output * (1 - out * out)


class Sigmoid(Function):
    """out = 1 / (1 + e^-x), computed without overflow; d/dx = out (1 - out)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        # e^-|x| never overflows: for x < 0 use e^x / (1 + e^x), the same value.
        z = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1 / (1 + z), z / (1 + z))  # an int tensor gives float64, as exp
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_tensors
        return grad_output * out * (1 - out)


class Relu(Function):
    """out = max(x, 0); d/dx = 1 where x > 0, else 0 (relu'(0) = 0, as PyTorch)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        out = np.maximum(x, 0)
        # out > 0 exactly where x > 0. Saving the output (as PyTorch does) rather than x lets
        # x be freed after forward: in an MLP the next layer saves `out` anyway.
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_tensors
        # Zero where out <= 0, as PyTorch's threshold_backward, so a NaN passes its gradient
        # (out > 0 would stop it). A multiply: np.where is 2x to 3x slower here.
        return grad_output * ~(out <= 0)


class Clamp(Function):
    """out = min(max(x, min), max); the gradient passes where min <= x <= max (bounds included).

    Bounds are settings (Python numbers or None), as in ``Tensor.clamp(min, max)``.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, min: Any = None, max: Any = None) -> np.ndarray:
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        for name, bound in (("min", min), ("max", max)):
            if bound is not None and not is_number(bound):
                raise TypeError(
                    f"clamp: {name} must be a number or None, got {type(bound).__name__} "
                    "(for tensor bounds use mg.maximum and mg.minimum)"
                )
        ctx.save_for_backward(x)
        ctx.min, ctx.max = min, max
        out = np.clip(x, min, max)
        if x.dtype.kind != "f":  # an integer tensor with a float bound gives floats, not ints
            return out
        return out.astype(x.dtype, copy=False)  # a bound never changes a float tensor's dtype

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        (x,) = ctx.saved_tensors
        inside = np.ones(x.shape, dtype=bool)
        if ctx.min is not None:
            inside &= x >= ctx.min
        if ctx.max is not None:
            inside &= x <= ctx.max
        return grad_output * inside


class Maximum(Function):
    """out = max(a, b) elementwise; at ties each side gets half the gradient (as PyTorch)."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        check_broadcast("maximum", a, b)
        ctx.save_for_backward(a, b)
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        a, b = ctx.saved_tensors
        # 1 where a wins, 1/2 at a tie, 0 where b wins. Where either is NaN neither wins, and
        # both get the whole gradient (PyTorch's formula does the same).
        tie = 0.5 * (a == b)
        return grad_output * (1 - tie - (a < b)), grad_output * (1 - tie - (a > b))


class Minimum(Function):
    """out = min(a, b) elementwise; at ties each side gets half the gradient (as PyTorch)."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        check_broadcast("minimum", a, b)
        ctx.save_for_backward(a, b)
        return np.minimum(a, b)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        a, b = ctx.saved_tensors
        # 1 where a wins, 1/2 at a tie, 0 where b wins; both get it all where either is NaN.
        tie = 0.5 * (a == b)
        return grad_output * (1 - tie - (a > b)), grad_output * (1 - tie - (a < b))


class Where(Function):
    """out = a where cond else b; the gradient goes to whichever side was picked."""

    @staticmethod
    def forward(ctx: Context, cond: Any, a: Any, b: Any) -> np.ndarray:
        cond = np.asarray(cond)
        if cond.dtype != np.bool_:
            raise TypeError(f"where: condition must be a bool tensor, got dtype {cond.dtype}")
        broadcast_shapes("where", cond.shape, np.shape(a), np.shape(b))
        ctx.save_for_backward(cond)
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        (cond,) = ctx.saved_tensors
        grad_a = np.where(cond, grad_output, 0) if ctx.needs_input_grad[1] else None
        grad_b = np.where(cond, 0, grad_output) if ctx.needs_input_grad[2] else None
        return None, grad_a, grad_b


class Cast(Function):
    """out = x converted to ``dtype``; the engine casts the gradient back to x's dtype."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, dtype: Any) -> np.ndarray:
        return x.astype(dtype)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        return grad_output


class Clone(Function):
    """out = a copy of x with its own memory; d/dx = 1."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        return x.copy()

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        return grad_output


# ----------------------------------------------------------------------------- reductions


class Sum(Function):
    """out = x summed over ``dim``; every summed element gets the output's gradient."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, dim: Dim = None, keepdim: bool = False) -> Any:
        ctx.axes = reduction_axes("sum", dim, x.ndim)
        ctx.shape = x.shape
        return np.sum(x, axis=ctx.axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        return expand_reduced(grad_output, ctx.shape, ctx.axes)  # (reduced) -> x.shape


class Mean(Function):
    """out = x averaged over ``dim``; each of the N averaged elements gets grad / N."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, dim: Dim = None, keepdim: bool = False) -> Any:
        ctx.axes = reduction_axes("mean", dim, x.ndim)
        ctx.shape = x.shape
        ctx.count = int(np.prod([x.shape[a] for a in ctx.axes]))
        total = np.sum(x, axis=ctx.axes, keepdims=keepdim)  # np.mean, without its warning
        with np.errstate(invalid="ignore", divide="ignore"):  # the mean of nothing is NaN
            return total / ctx.count

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):  # nothing averaged: no gradient
            return expand_reduced(grad_output / ctx.count, ctx.shape, ctx.axes)


class Var(Function):
    """out = sum (x - mean)^2 / (N - correction) over ``dim``; d/dx = 2 (x - mean) / (N - c)."""

    @staticmethod
    def forward(
        ctx: Context, x: np.ndarray, *, dim: Dim = None, correction: int = 1, keepdim: bool = False
    ) -> Any:
        axes = reduction_axes("var", dim, x.ndim)
        count = int(np.prod([x.shape[a] for a in axes]))
        centered = x - np.mean(x, axis=axes, keepdims=True)
        ctx.save_for_backward(centered)
        ctx.axes, ctx.divisor = axes, max(count - correction, 0)
        with np.errstate(invalid="ignore", divide="ignore"):  # N <= correction gives inf/nan
            return np.sum(centered * centered, axis=axes, keepdims=keepdim) / ctx.divisor

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        (centered,) = ctx.saved_tensors
        grad = expand_reduced(grad_output, centered.shape, ctx.axes)
        # A numpy division, not Python's 2 / 0: with N <= correction the divisor is 0 and the
        # gradient is nan, as the output is (and as in PyTorch), rather than ZeroDivisionError.
        with np.errstate(invalid="ignore", divide="ignore"):
            return grad * centered * 2 / ctx.divisor


class Amax(Function):
    """out = max of x over ``dim``; the gradient is split evenly among tied maxima (PyTorch)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, dim: Dim = None, keepdim: bool = False) -> Any:
        return _extreme_forward(ctx, "amax", np.amax, x, dim, keepdim)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        return _extreme_backward(ctx, grad_output)


class Amin(Function):
    """out = min of x over ``dim``; the gradient is split evenly among tied minima (PyTorch)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, dim: Dim = None, keepdim: bool = False) -> Any:
        return _extreme_forward(ctx, "amin", np.amin, x, dim, keepdim)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        return _extreme_backward(ctx, grad_output)


def _extreme_forward(
    ctx: Context, op: str, reduce: Any, x: np.ndarray, dim: Dim, keepdim: bool
) -> Any:
    axes = reduction_axes(op, dim, x.ndim)
    if any(x.shape[a] == 0 for a in axes):  # PyTorch's error types: a dim given, or not
        error = RuntimeError if dim is None else IndexError
        raise error(f"{op}: cannot reduce over a zero-size dimension (shape {x.shape})")
    out = reduce(x, axis=axes, keepdims=True)
    winners = x == out  # (x.shape) True at every maximum (or minimum), ties included
    ctx.save_for_backward(winners)
    ctx.axes = axes
    return out if keepdim else np.squeeze(out, axis=axes)


def _extreme_backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
    (winners,) = ctx.saved_tensors
    count = winners.sum(axis=ctx.axes, keepdims=True)  # ties per reduced slice
    grad = expand_reduced(grad_output, winners.shape, ctx.axes)
    with np.errstate(invalid="ignore", divide="ignore"):  # a NaN extreme ties with nothing:
        return grad * winners / count  # 0 / 0, NaN gradients, as in PyTorch


class Softmax(Function):
    """out = e^x / sum e^x over ``dim`` (x shifted by its max first, so e^x cannot overflow).

    d/dx: grad_input = out * (g - sum(g * out, dim)), the Jacobian diag(out) - out out^T
    applied to the upstream gradient g without forming it.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, dim: int) -> np.ndarray:
        axis = _softmax_axis("softmax", dim, x)
        x = _as_float(x)
        with np.errstate(invalid="ignore"):  # all -inf, or an inf: NaN, as in PyTorch
            shifted = x - np.amax(x, axis=axis, keepdims=True, initial=-np.inf)  # initial: empty
            e = np.exp(shifted)
            out = e / np.sum(e, axis=axis, keepdims=True)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_tensors
        dot = np.sum(grad_output * out, axis=ctx.axis, keepdims=True)
        return out * (grad_output - dot)


class LogSoftmax(Function):
    """out = x - logsumexp(x, dim), computed as (x - max) - log(sum e^(x - max)).

    d/dx: grad_input = g - softmax(x) * sum(g, dim).
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, dim: int) -> np.ndarray:
        axis = _softmax_axis("log_softmax", dim, x)
        x = _as_float(x)
        # NaN for all -inf or an inf, as in PyTorch; log(0) only over an empty dim (no result)
        with np.errstate(invalid="ignore", divide="ignore"):
            shifted = x - np.amax(x, axis=axis, keepdims=True, initial=-np.inf)  # initial: empty
            out = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_tensors
        return grad_output - np.exp(out) * np.sum(grad_output, axis=ctx.axis, keepdims=True)


def _as_float(x: np.ndarray) -> np.ndarray:
    """Integers and bools as float64 (numpy's promotion; PyTorch refuses them here)."""
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def _softmax_axis(op: str, dim: int, x: np.ndarray) -> tuple[int, ...]:
    if dim is None:
        raise TypeError(f"{op}: dim is required (which dim sums to 1?)")
    return reduction_axes(op, dim, x.ndim)


# ----------------------------------------------------------------------------- shapes


class Reshape(Function):
    """out = x with a new ``shape`` (same elements, C order); the gradient is reshaped back."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, shape: tuple[int, ...]) -> np.ndarray:
        ctx.shape = x.shape
        if any(n < -1 for n in shape):  # numpy reads any negative size as -1; PyTorch refuses
            raise RuntimeError(f"reshape: invalid shape dimension {min(shape)} in {list(shape)}")
        try:
            return x.reshape(shape)
        except ValueError:
            raise RuntimeError(
                f"reshape: shape {list(shape)} is invalid for input of size {x.size} "
                f"(shape {x.shape})"
            ) from None

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        return grad_output.reshape(ctx.shape)


class Permute(Function):
    """out = x with its dims reordered (``out.shape[i] = x.shape[dims[i]]``)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, dims: tuple[int, ...]) -> np.ndarray:
        axes = tuple(normalize_dim("permute", d, x.ndim) for d in dims)
        if len(axes) != x.ndim or sorted(axes) != list(range(x.ndim)):
            raise RuntimeError(
                f"permute: dims {list(dims)} must be a permutation of the {x.ndim} dims of a "
                f"tensor of shape {x.shape}"
            )
        ctx.axes = axes
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        return np.transpose(grad_output, np.argsort(ctx.axes))  # the inverse permutation


class Transpose(Function):
    """out = x with dims ``dim0`` and ``dim1`` swapped; so is the gradient."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, dim0: int, dim1: int) -> np.ndarray:
        ctx.dim0 = normalize_dim("transpose", dim0, x.ndim)
        ctx.dim1 = normalize_dim("transpose", dim1, x.ndim)
        if x.ndim == 0:
            return x
        return np.swapaxes(x, ctx.dim0, ctx.dim1)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        if grad_output.ndim == 0:
            return grad_output
        return np.swapaxes(grad_output, ctx.dim0, ctx.dim1)


class Expand(Function):
    """out = x broadcast to ``shape`` (a read-only view, no copy).

    The backward is the identity: the engine's un-broadcast sums the gradient back to x.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, shape: tuple[int, ...]) -> np.ndarray:
        if len(shape) < x.ndim:
            raise RuntimeError(
                f"expand: the number of sizes provided ({len(shape)}) must be greater or equal "
                f"to the number of dimensions in the tensor ({x.ndim})"
            )
        lead = len(shape) - x.ndim
        target = list(shape)
        for i, size in enumerate(x.shape):
            want = shape[lead + i]
            if want == -1:
                target[lead + i] = size
            elif size != 1 and want != size:
                raise RuntimeError(
                    f"expand: the expanded size of the tensor ({want}) must match the existing "
                    f"size ({size}) at non-singleton dimension {lead + i}. Target sizes: "
                    f"{list(shape)}. Tensor sizes: {list(x.shape)}"
                )
        if any(s < 0 for s in target):
            raise RuntimeError(f"expand: -1 is not allowed in a new leading dim: {list(shape)}")
        return np.broadcast_to(x, tuple(target))

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        return grad_output


class GetItem(Function):
    """out = x[index] for basic (ints, slices, None, ...) and advanced (arrays, masks) indexes.

    The gradient is scattered back into zeros of x's shape. With integer arrays an element
    may be picked several times, so its gradients are added with ``np.add.at`` (a plain
    ``grad[index] = g`` would keep only the last one).
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, index: Any) -> np.ndarray:
        try:
            out = x[index]
        except IndexError as exc:
            raise IndexError(f"index: {exc} (tensor of shape {x.shape})") from None
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        return out

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        grad = np.zeros(ctx.shape, dtype=grad_output.dtype)
        if _is_basic_index(ctx.index):
            grad[ctx.index] = grad_output  # a view: each element is picked at most once
        else:
            np.add.at(grad, ctx.index, grad_output)
        return grad


def _is_basic_index(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        p is None
        or p is Ellipsis
        or (isinstance(p, (slice, int, np.integer)) and not isinstance(p, bool))
        for p in parts
    )


class Cat(Function):
    """out = the inputs joined along ``dim``; each input gets its slice of the gradient."""

    @staticmethod
    def forward(ctx: Context, *xs: np.ndarray, dim: int = 0) -> np.ndarray:
        if not xs:
            raise RuntimeError("cat: expected a non-empty list of tensors")
        ref = xs[0]
        if ref.ndim == 0:
            raise RuntimeError(
                "cat: zero-dimensional tensor (at position 0) cannot be concatenated"
            )
        axis = normalize_dim("cat", dim, ref.ndim)
        for i, x in enumerate(xs):
            if x.ndim != ref.ndim or any(
                x.shape[d] != ref.shape[d] for d in range(ref.ndim) if d != axis
            ):
                raise RuntimeError(
                    f"cat: sizes of tensors must match except in dimension {axis}: tensor 0 has "
                    f"shape {ref.shape} and tensor {i} has shape {x.shape}"
                )
        ctx.axis = axis
        ctx.splits = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        return tuple(np.split(grad_output, ctx.splits, axis=ctx.axis))


class Stack(Function):
    """out = the inputs stacked along a new ``dim``; input i gets ``grad.select(dim, i)``."""

    @staticmethod
    def forward(ctx: Context, *xs: np.ndarray, dim: int = 0) -> np.ndarray:
        if not xs:
            raise RuntimeError("stack: expected a non-empty list of tensors")
        for i, x in enumerate(xs):
            if x.shape != xs[0].shape:
                raise RuntimeError(
                    f"stack: expects each tensor to be equal size, but got {xs[0].shape} at "
                    f"entry 0 and {x.shape} at entry {i}"
                )
        ctx.axis = normalize_dim("stack", dim, xs[0].ndim + 1)
        return np.stack(xs, axis=ctx.axis)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        return tuple(np.moveaxis(grad_output, ctx.axis, 0))  # one (x.shape) view per input
