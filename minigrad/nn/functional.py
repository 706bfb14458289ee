"""Functional forms of the layers and losses: ``F.linear``, ``F.relu``, ``F.cross_entropy`` ...

``LinearFunction`` is minigrad's signature op: the dense layer's backward written out as the
outer products it is made of.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.autograd import Context, Function
from minigrad.tensor import Tensor


class LinearFunction(Function):
    """y = x W^T + b, with its backward written as outer products.

    Shapes: x (..., in), W (out, in), b (out,), y (..., out). Write delta = dL/dy.

    For one sample (x of shape (in,)), y_i = sum_j W_ij x_j + b_i, so dL/dW_ij = delta_i x_j:
    the weight gradient is the rank-1 outer product ``dW = delta x^T`` (``np.outer(delta, x)``).
    A batch X (B, in) with deltas D (B, out) sums those rank-1 matrices:
    ``dW = sum_b delta_b x_b^T = D^T X``. Leading dims beyond one are flattened into the batch.
    Also ``db = sum_b delta_b`` and ``dx = delta W`` (each sample's delta sent back through W).
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, weight: np.ndarray, bias: Any = None) -> np.ndarray:
        if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
            raise RuntimeError(
                f"linear: the input's last dim must be in_features={weight.shape[1]}, but the "
                f"input has shape {x.shape} (weight {weight.shape}: (out_features, in_features))"
            )
        ctx.save_for_backward(x, weight)
        out = x @ weight.T  # (..., in) @ (in, out) -> (..., out)
        if bias is not None:
            out += bias  # (..., out) + (out,): `out` is ours, so adding in place is safe
        return out

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        x, weight = ctx.saved_tensors
        delta = grad_output  # (..., out): dL/dy
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = delta @ weight  # (..., out) @ (out, in) -> (..., in)
        if x.ndim == 1:  # one sample: the weight gradient is one outer product
            grad_weight = np.outer(delta, x)  # (out,) x (in,) -> (out, in): delta x^T
            grad_bias = delta  # (out,)
        else:
            X = x.reshape(-1, x.shape[-1])  # (B, in), leading dims flattened into the batch
            D = delta.reshape(-1, delta.shape[-1])  # (B, out)
            grad_weight = D.T @ X  # (out, B) @ (B, in) -> (out, in): sum_b outer(delta_b, x_b)
            grad_bias = D.sum(axis=0)  # (out,): sum_b delta_b
        if not ctx.needs_input_grad[2]:
            grad_bias = None
        return grad_input, grad_weight, grad_bias


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = input W^T + b (see :class:`LinearFunction` for the outer-product backward)."""
    return LinearFunction.apply(input, weight, bias)
