"""Shape helpers: undoing broadcasting, turning PyTorch-style ``dim`` arguments into axes,
and checking that a size or setting is a number.

Nothing here knows about Tensors or graphs; every function takes and returns numpy arrays,
shapes (tuples of ints), axes or plain values.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

Shape = tuple[int, ...]
Dim = int | tuple[int, ...] | list[int] | None


def unbroadcast(grad: np.ndarray, shape: Shape) -> np.ndarray:
    """Sum ``grad`` (in an op's broadcast output shape) back down to an input's ``shape``.

    Broadcasting copies an input along new leading dims and along its size-1 dims, so the
    gradient of those copies is their sum: sum over the leading dims that ``shape`` lacks,
    then over every dim where ``shape`` has 1 and ``grad`` does not.
    Example: grad (4, 2, 3) -> shape (2, 1) sums dim 0, then dim 2 (keeping it as size 1).
    """
    if grad.shape == shape:
        return grad  # the common case: nothing was broadcast
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))  # (extra..., *shape-ish) -> shape-ish
    ones = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if ones:
        grad = grad.sum(axis=ones, keepdims=True)  # size-1 dims of the input
    return grad.reshape(shape)


def broadcast_shapes(op: str, *shapes: Shape) -> Shape:
    """The broadcast shape of ``shapes``, or a RuntimeError naming ``op`` and every shape."""
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        listed = " and ".join(str(tuple(s)) for s in shapes)
        raise RuntimeError(
            f"{op}: shapes {listed} cannot be broadcast together (numpy/PyTorch broadcasting: "
            "trailing dims must be equal or 1)"
        ) from None


def check_broadcast(op: str, a: Any, b: Any) -> None:
    """Raise a clear RuntimeError when ``a`` and ``b`` (arrays or scalars) do not broadcast."""
    if isinstance(a, (int, float)) or isinstance(b, (int, float)):
        return  # a Python number broadcasts with anything (tensor * 2.0 is the common case)
    shape_a, shape_b = np.shape(a), np.shape(b)
    if shape_a != shape_b and shape_a and shape_b:  # so does a 0-d array
        broadcast_shapes(op, shape_a, shape_b)


def is_number(value: Any, kind: type = numbers.Real) -> bool:
    """Whether ``value`` is a Python or numpy number of ``kind`` (``numbers.Real`` or
    ``numbers.Integral``). A bool is not one, though Python counts it as an int."""
    return isinstance(value, kind) and not isinstance(value, bool)


def normalize_dim(op: str, dim: int, ndim: int) -> int:
    """One PyTorch ``dim`` (negative counts from the end) as an axis in ``range(ndim)``.

    A 0-d tensor accepts dim 0 and -1, as in PyTorch; they map to axis 0 of the caller's
    choosing, so callers that reduce a 0-d array should use :func:`reduction_axes`.
    """
    if not is_number(dim, numbers.Integral):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(
            f"{op}: dimension out of range (expected to be in range of [{-size}, {size - 1}], "
            f"but got {dim})"
        )
    return int(dim) % size


def reduction_axes(op: str, dim: Dim, ndim: int) -> tuple[int, ...]:
    """The numpy axes for a reduction over ``dim`` of an ``ndim``-d array.

    ``None`` and an empty tuple or list mean every dim, as in PyTorch (for numpy, ``axis=()``
    reduces nothing). A 0-d array has no axes to reduce, so any valid dim gives ``()`` (numpy
    then returns the value itself, as PyTorch does for ``scalar.sum(0)``).
    """
    dims = (dim,) if isinstance(dim, (int, np.integer)) else dim
    if dims is None or len(dims) == 0:
        return tuple(range(ndim))
    axes = tuple(normalize_dim(op, d, ndim) for d in dims)
    if len(set(axes)) != len(axes):  # also (0, -1) for a 0-d tensor, as in PyTorch
        raise RuntimeError(f"{op}: dim {dim} appears multiple times in the list of dims")
    return axes if ndim > 0 else ()


def expand_reduced(grad: np.ndarray, shape: Shape, axes: tuple[int, ...]) -> np.ndarray:
    """Broadcast a reduction's gradient (reduced over ``axes``, keepdim=False) back to ``shape``.

    Returns a read-only broadcast view: the engine and ops never write into gradients.
    """
    if grad.ndim != len(shape):
        grad = np.expand_dims(grad, axes)  # (reduced) -> (same ndim as the input, 1 at axes)
    return np.broadcast_to(grad, shape)


def size_args(op: str, sizes: tuple[Any, ...]) -> Shape:
    """Accept ``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])`` alike, as PyTorch does."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    for s in sizes:
        if not is_number(s, numbers.Integral):
            raise TypeError(f"{op}: sizes must be ints, got {sizes!r}")
    return tuple(int(s) for s in sizes)
