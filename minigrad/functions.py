"""Tensor factories (``mg.tensor``, ``mg.zeros``, ``mg.randn`` ...) and the function forms of ops
(``mg.exp(t)``, ``mg.cat``, ``mg.outer`` ...). Each differentiable function is one line that
calls an op from ``ops.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad import ops
from minigrad._shapes import Dim, size_args
from minigrad.tensor import DTypeLike, Tensor, _operand, as_array

float32 = np.float32
float64 = np.float64
float16 = np.float16
int32 = np.int32
int64 = np.int64
bool_ = np.bool_

# ----------------------------------------------------------------------------- random state


class _DefaultGenerator:
    """The generator that random factories (and dropout) use unless given a ``generator``."""

    generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed minigrad's default random generator (as ``torch.manual_seed``); returns it."""
    _DefaultGenerator.generator = np.random.default_rng(seed)
    return _DefaultGenerator.generator


def default_generator() -> np.random.Generator:
    return _DefaultGenerator.generator


# ----------------------------------------------------------------------------- factories


def tensor(
    data: Any, *, dtype: DTypeLike = None, requires_grad: bool = False, name: str | None = None
) -> Tensor:
    """A new leaf tensor holding a copy of ``data``.

    Python floats become float32 (PyTorch's default), ints int64, bools bool; numpy arrays
    keep their dtype (float64 stays float64).
    """
    return Tensor(as_array(data, dtype, copy=True), requires_grad=requires_grad, name=name)


def _float_dtype(dtype: DTypeLike) -> np.dtype:
    return np.dtype(np.float32 if dtype is None else dtype)


def _new_shape(op: str, size: tuple[Any, ...]) -> tuple[int, ...]:
    """The shape of a new tensor: sizes as ints, a tuple or a list, none of them negative."""
    shape = size_args(op, size)
    if any(n < 0 for n in shape):
        raise RuntimeError(
            f"{op}: trying to create a tensor with negative dimension: {list(shape)}"
        )
    return shape


def zeros(*size: Any, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
    shape = _new_shape("zeros", size)
    return Tensor(np.zeros(shape, dtype=_float_dtype(dtype)), requires_grad=requires_grad)


def ones(*size: Any, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
    shape = _new_shape("ones", size)
    return Tensor(np.ones(shape, dtype=_float_dtype(dtype)), requires_grad=requires_grad)


def full(
    size: Sequence[int], fill_value: Any, *, dtype: DTypeLike = None, requires_grad: bool = False
) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (its dtype follows the value's kind).

    A numpy scalar counts as the Python number it holds, as in PyTorch (``np.float64(1.5)``
    gives float32, ``np.int32(1)`` int64).
    """
    if isinstance(fill_value, np.generic):
        fill_value = fill_value.item()
    if dtype is None:
        dtype = as_array(fill_value).dtype
    shape = _new_shape("full", (size,))
    return Tensor(np.full(shape, fill_value, dtype=dtype), requires_grad=requires_grad)


def zeros_like(input: Tensor, *, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
    dtype = input.dtype if dtype is None else dtype  # not `or`: numpy 1.x dtypes are falsy
    return Tensor(np.zeros(input.shape, dtype=dtype), requires_grad=requires_grad)


def ones_like(input: Tensor, *, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
    dtype = input.dtype if dtype is None else dtype  # not `or`: numpy 1.x dtypes are falsy
    return Tensor(np.ones(input.shape, dtype=dtype), requires_grad=requires_grad)


def arange(
    start: Any = 0,
    end: Any = None,
    step: Any = 1,
    *,
    dtype: DTypeLike = None,
    requires_grad: bool = False,
) -> Tensor:
    """Values from ``start`` up to (not including) ``end``: int64 for ints, else float32.

    ``arange(5)`` counts from 0, as does ``arange(end=5)``. Float values are computed in
    float64 and then cast, as PyTorch does, so ``arange(1.0, 0.0, -0.3)`` ends in 0.4, not
    in float32 steps' 0.39999998.
    """
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(
            f"arange: upper bound and larger bound inconsistent with step sign "
            f"(start={start}, end={end}, step={step})"
        )
    if dtype is None:
        all_ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if all_ints else np.float32
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        count = int(np.ceil((end - start) / step))
        values = (start + np.arange(count, dtype=np.float64) * step).astype(dtype)
    else:
        values = np.arange(start, end, step, dtype=dtype)
    return Tensor(values, requires_grad=requires_grad)


def randn(
    *size: Any,
    dtype: DTypeLike = None,
    generator: np.random.Generator | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Standard normal samples from ``generator`` (default: the one ``manual_seed`` seeds)."""
    rng = generator if generator is not None else default_generator()
    data = rng.standard_normal(_new_shape("randn", size), dtype=_float_dtype(dtype))
    return Tensor(data, requires_grad=requires_grad)


def rand(
    *size: Any,
    dtype: DTypeLike = None,
    generator: np.random.Generator | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Uniform samples on [0, 1) from ``generator`` (default: the one ``manual_seed`` seeds)."""
    rng = generator if generator is not None else default_generator()
    data = rng.random(_new_shape("rand", size), dtype=_float_dtype(dtype))
    return Tensor(data, requires_grad=requires_grad)


# ----------------------------------------------------------------------------- functions


def _tensor(value: Any) -> Tensor:
    return value if isinstance(value, Tensor) else Tensor(as_array(value))


def matmul(input: Any, other: Any) -> Tensor:
    return ops.MatMul.apply(_operand(input), _operand(other))


def outer(input: Any, vec2: Any) -> Tensor:
    """The rank-1 matrix ``input ⊗ vec2``: entry (i, j) is ``input[i] * vec2[j]``."""
    return ops.Outer.apply(_tensor(input), _tensor(vec2))


def dot(input: Any, other: Any) -> Tensor:
    """The 0-d inner product of two 1-D tensors."""
    return ops.Dot.apply(_tensor(input), _tensor(other))


def cat(tensors: Sequence[Any], dim: int = 0) -> Tensor:
    _check_sequence("cat", tensors)
    return ops.Cat.apply(*[_tensor(t) for t in tensors], dim=dim)


def stack(tensors: Sequence[Any], dim: int = 0) -> Tensor:
    _check_sequence("stack", tensors)
    return ops.Stack.apply(*[_tensor(t) for t in tensors], dim=dim)


def _check_sequence(op: str, tensors: Any) -> None:
    if isinstance(tensors, Tensor):  # iterating would quietly take its rows
        raise TypeError(
            f"{op}: argument 'tensors' must be a sequence of Tensors, not a Tensor (of shape "
            f"{tensors.shape}); wrap it in a list"
        )


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """Elementwise ``input if condition else other`` (all three broadcast together)."""
    return ops.Where.apply(_operand(condition), _operand(input), _operand(other))


def maximum(input: Any, other: Any) -> Tensor:
    return ops.Maximum.apply(_operand(input), _operand(other))


def minimum(input: Any, other: Any) -> Tensor:
    return ops.Minimum.apply(_operand(input), _operand(other))


def exp(input: Tensor) -> Tensor:
    return ops.Exp.apply(input)


def log(input: Tensor) -> Tensor:
    return ops.Log.apply(input)


def sqrt(input: Tensor) -> Tensor:
    return ops.Sqrt.apply(input)


def abs(input: Tensor) -> Tensor:
    return ops.Abs.apply(input)


def tanh(input: Tensor) -> Tensor:
    return ops.Tanh.apply(input)


def sigmoid(input: Tensor) -> Tensor:
    return ops.Sigmoid.apply(input)


def relu(input: Tensor) -> Tensor:
    return ops.Relu.apply(input)


def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor:
    return ops.Clamp.apply(input, min=min, max=max)


def pow(input: Any, exponent: Any) -> Tensor:
    return ops.Pow.apply(_operand(input), _operand(exponent))


def softmax(input: Tensor, dim: int) -> Tensor:
    return ops.Softmax.apply(input, dim=dim)


def log_softmax(input: Tensor, dim: int) -> Tensor:
    return ops.LogSoftmax.apply(input, dim=dim)


def sum(input: Tensor, dim: Dim = None, keepdim: bool = False) -> Tensor:
    return ops.Sum.apply(input, dim=dim, keepdim=keepdim)


def mean(input: Tensor, dim: Dim = None, keepdim: bool = False) -> Tensor:
    return ops.Mean.apply(input, dim=dim, keepdim=keepdim)


def amax(input: Tensor, dim: Dim = None, keepdim: bool = False) -> Tensor:
    return ops.Amax.apply(input, dim=dim, keepdim=keepdim)


def amin(input: Tensor, dim: Dim = None, keepdim: bool = False) -> Tensor:
    return ops.Amin.apply(input, dim=dim, keepdim=keepdim)
