"""Parameter: a leaf Tensor that a Module registers as one of its trainable weights."""

from __future__ import annotations

from typing import Any

from minigrad.tensor import Tensor, as_array


class Parameter(Tensor):
    """A Tensor that requires grad (by default) and that ``Module`` lists in ``parameters()``.

    ``Parameter(data)`` wraps a copy of ``data`` (an array, a list or a Tensor's data).
    Inside ``mg.per_sample_grads()`` backward also fills ``grad_sample`` (batch, *shape):
    one gradient per sample, summing to ``grad`` (or ``grad_sample_norm`` (batch,), their
    norms, with ``per_sample_grads(norms_only=True)``).
    """

    __slots__ = ("grad_sample", "grad_sample_norm", "_layer")

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = []
        super().__init__(as_array(data, copy=True), requires_grad=requires_grad)
        self.grad_sample: Any = None
        self.grad_sample_norm: Any = None
        self._layer: str | None = None  # the kind of Module that owns it, for error messages

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
