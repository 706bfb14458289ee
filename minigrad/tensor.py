"""Tensor: a numpy array (``data``), its gradient (``grad``) and the op that made it (``grad_fn``).

Every differentiable method is one line that calls an op from ``ops.py``; the math lives
there, beside its backward. Methods ending in ``_`` change ``data`` in place and are not
recorded in the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from minigrad import ops
from minigrad._shapes import Dim, check_broadcast, normalize_dim, size_args
from minigrad.autograd import (
    Node,
    RemovableHandle,
    VersionCounter,
    _TensorHooks,
    is_grad_enabled,
)
from minigrad.autograd import backward as run_backward

DTypeLike = Any


class Tensor:
    """An n-dimensional array that records the ops applied to it, for reverse-mode autodiff.

    Attributes:
        data: the values, a numpy array (shared, not copied: ``.numpy()`` returns it).
        grad: ``None``, or after ``backward`` a numpy array of ``data``'s shape and dtype.
        requires_grad: whether ops on this tensor are recorded so gradients can flow to it.
        grad_fn: the :class:`~minigrad.autograd.Node` that made this tensor, ``None`` for leaves.
        name: an optional label, shown in ``repr`` and graph pictures.

    Prefer ``mg.tensor(...)``, which copies its input; ``Tensor(array)`` wraps it as it is.
    """

    __slots__ = (
        "data",
        "_grad",
        "grad_fn",
        "_name",
        "_requires_grad",
        "_version",
        "_output_nr",
        "_grad_accumulator",
        "_hooks",
        "_retains_grad",
        "__weakref__",
    )
    # Make numpy hand `ndarray + tensor` to Tensor.__radd__ instead of looping over elements.
    __array_ufunc__ = None

    def __init__(
        self,
        data: Any,
        *,
        dtype: DTypeLike = None,
        requires_grad: bool = False,
        name: str | None = None,
    ) -> None:
        self.data: np.ndarray = as_array(data, dtype)
        self._grad: np.ndarray | None = None
        self.grad_fn: Node | None = None
        self._name = name
        self._requires_grad = False
        self._version = VersionCounter()
        self._output_nr = 0
        self._grad_accumulator: Any = None
        self._hooks: dict[int, Callable[..., Any]] | None = None
        self._retains_grad = False
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _from_op(cls, data: np.ndarray, output_nr: int = 0) -> Tensor:
        """A result of an op (``Function.apply``): wrap ``data`` without checks or copies."""
        out = cls.__new__(cls)
        out.data = data
        out._grad = None
        out.grad_fn = None
        out._name = None
        out._requires_grad = False
        out._version = VersionCounter()
        out._output_nr = output_nr
        out._grad_accumulator = None
        out._hooks = None
        out._retains_grad = False
        return out

    def _attach(self, node: Node) -> None:
        self.grad_fn = node
        self._requires_grad = True

    # ------------------------------------------------------------------------- attributes

    @property
    def grad(self) -> np.ndarray | None:
        return self._grad

    @grad.setter
    def grad(self, grad: Any) -> None:
        """``None``, or an array of this tensor's shape (as PyTorch checks): a gradient of
        another shape would only fail later, in the middle of an optimizer's step."""
        if grad is not None:
            grad = grad.data if isinstance(grad, Tensor) else np.asarray(grad)
            if grad.shape != self.data.shape:
                raise RuntimeError(
                    f"assigned grad has data of a different size: grad of shape {grad.shape} "
                    f"for a tensor of shape {self.data.shape}"
                )
        self._grad = grad

    @property
    def name(self) -> str | None:
        return self._name

    @name.setter
    def name(self, name: str | None) -> None:
        self._name = name
        if name is not None and self.grad_fn is not None:
            self.grad_fn.keep_output(self)  # so graph pictures can label the edge with it

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if self.grad_fn is not None and not flag:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables; use .detach() to "
                "get a tensor without a graph"
            )
        if flag and not np.issubdtype(self.data.dtype, np.floating):
            raise RuntimeError(
                f"only floating point tensors can require gradients, but this tensor has dtype "
                f"{self.data.dtype} (convert it with .float() or .double() first)"
            )
        self._requires_grad = bool(flag)

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def T(self) -> Tensor:
        """All dims reversed (for a matrix, the transpose)."""
        return ops.Permute.apply(self, dims=tuple(reversed(range(self.ndim))))

    def size(self, dim: int | None = None) -> Any:
        """The shape, or the size of one ``dim``, as PyTorch's ``size()``."""
        if dim is None:
            return self.shape
        if self.ndim == 0:
            raise IndexError(f"size: dimension specified as {dim} but tensor has no dimensions")
        return self.shape[normalize_dim("size", dim, self.ndim)]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __hash__(self) -> int:
        return id(self)

    def __bool__(self) -> bool:
        if self.data.size != 1:
            how_many = "no values" if self.data.size == 0 else "more than one value"
            raise RuntimeError(
                f"Boolean value of Tensor with {how_many} is ambiguous (shape {self.shape})"
            )
        return bool(self.data)

    def __index__(self) -> int:
        """An integer tensor of one element as a Python index (``items[t]``), as in PyTorch."""
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError(
                "only integer tensors of a single element can be converted to an index "
                f"(this one has dtype {self.dtype} and shape {self.shape})"
            )
        return int(self.data.item())

    def __repr__(self) -> str:
        """PyTorch's form, ``tensor([1., 2.], requires_grad=True, name='w')``; a large tensor's
        values are summarised (``...``, as numpy prints them) and then its shape and dtype
        are shown too, as are an empty tensor's shape and any dtype but the defaults."""
        body = np.array2string(self.data, separator=", ", prefix="tensor(", precision=4)
        extras = []
        summarised = self.data.size > np.get_printoptions()["threshold"]
        if summarised or self.data.size == 0:
            extras.append(f"shape={self.shape}")
        if summarised or self.dtype not in (np.float32, np.int64, np.bool_):
            extras.append(f"dtype={self.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.name is not None:
            extras.append(f"name={self.name!r}")
        return "tensor(" + ", ".join([body, *extras]) + ")"

    # ------------------------------------------------------------------------- values out

    def numpy(self) -> np.ndarray:
        """The data array itself (shared memory, no graph)."""
        return self.data

    def item(self) -> Any:
        if self.data.size != 1:
            raise RuntimeError(
                f"item(): a Tensor with {self.data.size} elements cannot be converted to a "
                "Python number"
            )
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is not None and dtype != self.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __float__(self) -> float:
        return float(self._scalar())

    def __int__(self) -> int:
        return int(self._scalar())

    def _scalar(self) -> Any:
        if self.data.size != 1:  # ValueError here, as PyTorch (item() raises RuntimeError)
            raise ValueError(
                f"only one element tensors can be converted to Python scalars (this one has "
                f"shape {self.shape})"
            )
        return self.data.item()

    # ------------------------------------------------------------------------- autograd

    def backward(self, gradient: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``gradient`` is dL/d(self), of self's shape; it may be omitted for one element (1).
        """
        run_backward((self,), (gradient,), retain_graph=retain_graph)

    def detach(self) -> Tensor:
        """The same data (shared memory and version counter) without a graph."""
        out = Tensor._from_op(self.data)
        out._version = self._version
        return out

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on a Tensor that has requires_grad=False")
        if self.grad_fn is not None:
            self._retains_grad = True
            self.grad_fn.keep_output(self)
            _TensorHooks.used = True

    def register_hook(self, hook: Callable[[np.ndarray], Any]) -> RemovableHandle:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a non-None return
        value replaces the gradient. Returns a handle whose ``remove()`` unregisters it."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._hooks is None:
            self._hooks = {}
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = hook
        if self.grad_fn is not None:
            self.grad_fn.keep_output(self)
        _TensorHooks.used = True
        return handle

    def _accumulate_grad(self, grad: np.ndarray, *, owned: bool = False) -> None:
        """Add ``grad`` into ``.grad``. ``owned``: nothing else holds ``grad``, so it may be kept.

        Otherwise ``.grad`` starts as a copy: ``grad`` may be shared (``Add`` hands one array to
        both inputs, and a hook may have kept it).
        """
        # `_grad`, not the `grad` property: the engine has already fitted `grad` to this
        # tensor's shape, so the setter's check would only cost time on every step.
        if self._grad is None:
            if owned and grad.dtype == self.data.dtype:
                self._grad = grad
            else:
                self._grad = np.array(grad, dtype=self.data.dtype)
        else:
            self._grad += grad  # accumulate in place, as PyTorch does

    # ------------------------------------------------------------------------- operators

    def __add__(self, other: Any) -> Tensor:
        return ops.Add.apply(self, _operand(other))

    def __radd__(self, other: Any) -> Tensor:
        return ops.Add.apply(_operand(other), self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.Sub.apply(self, _operand(other))

    def __rsub__(self, other: Any) -> Tensor:
        return ops.Sub.apply(_operand(other), self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.Mul.apply(self, _operand(other))

    def __rmul__(self, other: Any) -> Tensor:
        return ops.Mul.apply(_operand(other), self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.Div.apply(self, _operand(other))

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.Div.apply(_operand(other), self)

    def __pow__(self, exponent: Any) -> Tensor:
        return ops.Pow.apply(self, _operand(exponent))

    def __rpow__(self, base: Any) -> Tensor:
        return ops.Pow.apply(_operand(base), self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.MatMul.apply(self, _operand(other))

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.MatMul.apply(_operand(other), self)

    def __neg__(self) -> Tensor:
        return ops.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    # Comparisons give bool tensors with no graph.
    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare("eq", np.equal, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare("ne", np.not_equal, other)

    def __lt__(self, other: Any) -> Tensor:
        return self._compare("lt", np.less, other)

    def __le__(self, other: Any) -> Tensor:
        return self._compare("le", np.less_equal, other)

    def __gt__(self, other: Any) -> Tensor:
        return self._compare("gt", np.greater, other)

    def __ge__(self, other: Any) -> Tensor:
        return self._compare("ge", np.greater_equal, other)

    def _compare(self, op: str, ufunc: Any, other: Any) -> Any:
        if other is None and op in ("eq", "ne"):  # as PyTorch: a tensor is never None
            return op == "ne"
        value = _value(other)
        check_broadcast(op, self.data, value)  # shapes that do not broadcast: RuntimeError
        return Tensor(ufunc(self.data, value))

    def __getitem__(self, index: Any) -> Tensor:
        return ops.GetItem.apply(self, index=_index(index))

    def __setitem__(self, index: Any, value: Any) -> None:
        self._check_inplace("__setitem__")
        value = _value(value)
        try:
            self.data[_index(index)] = value
        except ValueError as exc:
            raise RuntimeError(
                f"__setitem__: cannot write a value of shape {np.shape(value)} into that part of "
                f"a tensor of shape {self.shape} ({exc})"
            ) from None
        self._version.value += 1

    # ------------------------------------------------------------------------- methods

    def add(self, other: Any) -> Tensor:
        return ops.Add.apply(self, _operand(other))

    def sub(self, other: Any) -> Tensor:
        return ops.Sub.apply(self, _operand(other))

    def mul(self, other: Any) -> Tensor:
        return ops.Mul.apply(self, _operand(other))

    def div(self, other: Any) -> Tensor:
        return ops.Div.apply(self, _operand(other))

    def neg(self) -> Tensor:
        return ops.Neg.apply(self)

    def pow(self, exponent: Any) -> Tensor:
        return ops.Pow.apply(self, _operand(exponent))

    def matmul(self, other: Any) -> Tensor:
        return ops.MatMul.apply(self, _operand(other))

    def exp(self) -> Tensor:
        return ops.Exp.apply(self)

    def log(self) -> Tensor:
        return ops.Log.apply(self)

    def sqrt(self) -> Tensor:
        return ops.Sqrt.apply(self)

    def abs(self) -> Tensor:
        return ops.Abs.apply(self)

    def tanh(self) -> Tensor:
        return ops.Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        return ops.Sigmoid.apply(self)

    def relu(self) -> Tensor:
        return ops.Relu.apply(self)

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:
        return ops.Clamp.apply(self, min=min, max=max)

    def softmax(self, dim: int) -> Tensor:
        return ops.Softmax.apply(self, dim=dim)

    def log_softmax(self, dim: int) -> Tensor:
        return ops.LogSoftmax.apply(self, dim=dim)

    def sum(self, dim: Dim = None, keepdim: bool = False) -> Tensor:
        return ops.Sum.apply(self, dim=dim, keepdim=keepdim)

    def mean(self, dim: Dim = None, keepdim: bool = False) -> Tensor:
        return ops.Mean.apply(self, dim=dim, keepdim=keepdim)

    def var(
        self,
        dim: Dim = None,
        *,
        correction: int | None = None,
        keepdim: bool = False,
        unbiased: bool | None = None,
    ) -> Tensor:
        """Variance over ``dim``, divided by ``N - correction`` (default 1, unbiased)."""
        return ops.Var.apply(
            self, dim=dim, correction=_correction(correction, unbiased), keepdim=keepdim
        )

    def amax(self, dim: Dim = None, keepdim: bool = False) -> Tensor:
        return ops.Amax.apply(self, dim=dim, keepdim=keepdim)

    def amin(self, dim: Dim = None, keepdim: bool = False) -> Tensor:
        return ops.Amin.apply(self, dim=dim, keepdim=keepdim)

    def max(self, dim: Dim = None, keepdim: bool = False) -> Tensor:
        """The values of the maximum (never a (values, indices) pair); ties share the gradient."""
        return ops.Amax.apply(self, dim=dim, keepdim=keepdim)

    def min(self, dim: Dim = None, keepdim: bool = False) -> Tensor:
        """The values of the minimum (never a (values, indices) pair); ties share the gradient."""
        return ops.Amin.apply(self, dim=dim, keepdim=keepdim)

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Indices of the maxima (int64, no graph); over the flattened tensor when dim is None."""
        if dim is None:
            return Tensor(np.asarray(np.argmax(self.data), dtype=np.int64))
        axis = normalize_dim("argmax", dim, self.ndim)
        return Tensor(np.argmax(self.data, axis=axis, keepdims=keepdim).astype(np.int64))

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Indices of the minima (int64, no graph); over the flattened tensor when dim is None."""
        if dim is None:
            return Tensor(np.asarray(np.argmin(self.data), dtype=np.int64))
        axis = normalize_dim("argmin", dim, self.ndim)
        return Tensor(np.argmin(self.data, axis=axis, keepdims=keepdim).astype(np.int64))

    def reshape(self, *shape: Any) -> Tensor:
        return ops.Reshape.apply(self, shape=size_args("reshape", shape))

    def view(self, *shape: Any) -> Tensor:
        """As ``reshape`` (numpy returns a view when it can, a copy otherwise)."""
        return ops.Reshape.apply(self, shape=size_args("view", shape))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return ops.Reshape.apply(self, shape=_flattened_shape(self.shape, start_dim, end_dim))

    def unsqueeze(self, dim: int) -> Tensor:
        return ops.Reshape.apply(self, shape=_unsqueezed_shape(self.shape, dim))

    def squeeze(self, dim: Dim = None) -> Tensor:
        return ops.Reshape.apply(self, shape=_squeezed_shape(self.shape, dim))

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        return ops.Transpose.apply(self, dim0=dim0, dim1=dim1)

    def t(self) -> Tensor:
        """The transpose of a matrix (a tensor of at most 2 dims), as PyTorch's ``t()``."""
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dims, but got shape {self.shape}")
        return ops.Permute.apply(self, dims=tuple(reversed(range(self.ndim))))

    def permute(self, *dims: Any) -> Tensor:
        return ops.Permute.apply(self, dims=size_args("permute", dims))

    def expand(self, *sizes: Any) -> Tensor:
        return ops.Expand.apply(self, shape=size_args("expand", sizes))

    def clone(self) -> Tensor:
        return ops.Clone.apply(self)

    def to(self, dtype: DTypeLike) -> Tensor:
        """A copy in ``dtype`` (differentiable between float dtypes); self if already so.

        An integer or bool result has no graph, as in PyTorch: it cannot require grad.
        """
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self
        if dtype.kind != "f":
            return Tensor(self.data.astype(dtype))
        return ops.Cast.apply(self, dtype=dtype)

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def long(self) -> Tensor:
        return self.to(np.int64)

    def int(self) -> Tensor:
        return self.to(np.int32)

    def bool(self) -> Tensor:
        return self.to(np.bool_)

    # ------------------------------------------------------------------------- in place

    def _check_inplace(self, op: str) -> None:
        if not self.data.flags.writeable:
            raise RuntimeError(
                f"{op}: this tensor is a read-only view (expand() makes one, where many elements "
                "share one memory location); .clone() it before changing it in place"
            )
        if self._requires_grad and is_grad_enabled():
            kind = "a leaf Variable" if self.is_leaf else "a tensor"
            raise RuntimeError(
                f"{op}: {kind} that requires grad is being used in an in-place operation. "
                "minigrad does not record in-place ops in the graph: do it under "
                "mg.no_grad() (as optimizers do), or on .detach()"
            )

    def _inplace(self, op: str, ufunc: Any, value: Any) -> Tensor:
        """``ufunc(data, value)`` written into ``data``; ``value`` is an array or a number."""
        self._check_inplace(op)
        try:
            with np.errstate(
                divide="ignore", invalid="ignore", over="ignore"
            ):  # inf, nan: as torch
                ufunc(self.data, value, out=self.data)
        except ValueError as exc:
            raise RuntimeError(
                f"{op}: cannot write a result of shape {np.shape(value)} combined with "
                f"{self.shape} into a tensor of shape {self.shape} ({exc})"
            ) from None
        except TypeError as exc:  # numpy's UFuncTypeError, e.g. float into an int tensor
            raise RuntimeError(f"{op}: {exc}") from None
        self._version.value += 1
        return self

    def add_(self, other: Any, *, alpha: Any = 1) -> Tensor:
        """self += alpha * other, in place (not recorded in the graph)."""
        value = _value(other)
        return self._inplace("add_", np.add, value if alpha == 1 else alpha * value)

    def sub_(self, other: Any, *, alpha: Any = 1) -> Tensor:
        """self -= alpha * other, in place (not recorded in the graph)."""
        value = _value(other)
        return self._inplace("sub_", np.subtract, value if alpha == 1 else alpha * value)

    def mul_(self, other: Any) -> Tensor:
        return self._inplace("mul_", np.multiply, _value(other))

    def div_(self, other: Any) -> Tensor:
        return self._inplace("div_", np.divide, _value(other))

    def copy_(self, src: Any) -> Tensor:
        """Copy ``src`` (broadcast to self's shape, cast to self's dtype) into self."""
        self._check_inplace("copy_")
        value = _value(src)
        try:
            np.copyto(self.data, value, casting="unsafe")
        except ValueError:
            raise RuntimeError(
                f"copy_: the source of shape {np.shape(value)} cannot be broadcast to the "
                f"destination's shape {self.shape}"
            ) from None
        self._version.value += 1
        return self

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def fill_(self, value: Any) -> Tensor:
        self._check_inplace("fill_")
        value = _value(value)
        if np.ndim(value) != 0:
            raise RuntimeError(
                f"fill_: only supports a 0-dimension value, but got one of shape {np.shape(value)}"
            )
        self.data.fill(value)
        self._version.value += 1
        return self

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:
        """Clamp in place; bounds may be numbers or tensors (not recorded in the graph)."""
        self._check_inplace("clamp_")
        try:
            np.clip(self.data, _value(min), _value(max), out=self.data, casting="same_kind")
        except TypeError as exc:  # numpy's UFuncTypeError: float bounds for an int tensor
            raise RuntimeError(f"clamp_: {exc}") from None
        self._version.value += 1
        return self


# ----------------------------------------------------------------------------- helpers


def as_array(data: Any, dtype: DTypeLike = None, copy: bool = False) -> np.ndarray:
    """``data`` as a numpy array, with PyTorch's dtype rules for Python values.

    Python floats become float32, ints int64, bools bool; numpy arrays and scalars keep their
    dtype; a Tensor gives its data. ``dtype`` overrides all of that.
    """
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (np.ndarray, np.generic)):
        array = np.array(data, dtype=dtype, copy=copy or None)
    else:
        try:
            array = np.array(data, dtype=dtype)
        except ValueError as exc:  # nested lists of different lengths, or text
            raise ValueError(
                f"tensor: cannot make a tensor from {type(data).__name__}: {exc}"
            ) from None
        if dtype is None and array.dtype == np.float64:
            array = array.astype(np.float32)  # Python floats: PyTorch's default dtype
        elif dtype is None and array.dtype.kind in "iu":
            array = array.astype(np.int64, copy=False)
    if array.dtype == object or array.dtype.kind in "USVMmc":
        raise TypeError(
            f"tensor: cannot make a tensor from {type(data).__name__} (numpy dtype "
            f"{array.dtype}); use numbers, nested lists of numbers or a numeric numpy array"
        )
    return array


def _operand(value: Any) -> Any:
    """The other side of a binary op: a Tensor or a Python scalar as is, else an array.

    A numpy scalar counts as a Python scalar, as in PyTorch: ``float32 * np.float64(2)``
    stays float32 (numpy itself would promote it to float64).
    """
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, (Tensor, int, float, bool, np.ndarray)):
        return value
    return as_array(value)


def _value(value: Any) -> Any:
    """Plain values for no-graph operations (comparisons, in-place updates)."""
    return value.data if isinstance(value, Tensor) else value


def _index(index: Any) -> Any:
    """Tensors inside an index become their arrays (integer or boolean)."""
    if isinstance(index, tuple):
        return tuple(_value(i) for i in index)
    return _value(index)


def _correction(correction: int | None, unbiased: bool | None) -> int:
    if correction is not None and unbiased is not None:
        raise TypeError("var: pass either correction or unbiased, not both")
    if unbiased is not None:
        return 1 if unbiased else 0
    return 1 if correction is None else correction


def _flattened_shape(shape: tuple[int, ...], start_dim: int, end_dim: int) -> tuple[int, ...]:
    if len(shape) == 0:
        return (1,)
    start = normalize_dim("flatten", start_dim, len(shape))
    end = normalize_dim("flatten", end_dim, len(shape))
    if start > end:
        raise RuntimeError(
            f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim})"
        )
    merged = int(np.prod(shape[start : end + 1]))
    return shape[:start] + (merged,) + shape[end + 1 :]


def _unsqueezed_shape(shape: tuple[int, ...], dim: int) -> tuple[int, ...]:
    axis = normalize_dim("unsqueeze", dim, len(shape) + 1)
    return shape[:axis] + (1,) + shape[axis:]


def _squeezed_shape(shape: tuple[int, ...], dim: Dim) -> tuple[int, ...]:
    if dim is None:
        return tuple(n for n in shape if n != 1)
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    axes = {normalize_dim("squeeze", d, len(shape)) for d in dims}  # 0-d: only 0 and -1
    return tuple(n for i, n in enumerate(shape) if not (i in axes and n == 1))
