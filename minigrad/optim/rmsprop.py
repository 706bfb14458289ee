"""RMSprop: divide the gradient by a running root-mean-square of recent gradients."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from minigrad.optim.optimizer import Optimizer, ParamGroup, add_to_param_, lerp_
from minigrad.tensor import Tensor


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture 6e), exactly as ``torch.optim.RMSprop``.

    For each parameter p with gradient g::

        g   <- g + lambda * p                       (if weight_decay != 0)
        v   <- alpha * v + (1 - alpha) * g^2        (running mean of squares)
        avg = sqrt(v) + eps, or if centered (subtract the running mean's square):
            g_avg <- alpha * g_avg + (1 - alpha) * g;   avg = sqrt(v - g_avg^2) + eps
        if momentum > 0:  b <- momentum * b + g / avg;  p <- p - lr * b
        else:             p <- p - lr * g / avg

    State per parameter: ``step`` (int), ``square_avg`` (v), ``momentum_buffer`` (when
    momentum > 0) and ``grad_avg`` (when centered).

    Args:
        params: Tensors or parameter groups (dicts), see :class:`Optimizer`.
        lr: learning rate (default 1e-2).
        alpha: smoothing constant of the running averages (default 0.99).
        eps: added to the denominator for numerical stability (default 1e-8).
        weight_decay: L2 penalty lambda (default 0).
        momentum: momentum factor (default 0).
        centered: normalize by an estimate of the gradient's variance instead of its second
            moment (default False).
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[ParamGroup],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
        }
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: Mapping[str, Any]) -> None:
        super()._check_hyperparameters(group)
        if not 0.0 <= group["eps"]:
            raise ValueError(f"Invalid epsilon value: {group['eps']}")
        if not 0.0 <= group["momentum"]:
            raise ValueError(f"Invalid momentum value: {group['momentum']}")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")
        if not 0.0 <= group["alpha"]:
            raise ValueError(f"Invalid alpha value: {group['alpha']}")

    def _update(
        self, param: Tensor, grad: np.ndarray, state: dict[str, Any], group: ParamGroup
    ) -> None:
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(param.data)
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(param.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(param.data)
        square_avg = state["square_avg"]
        # Nothing in the update depends on it; kept so state dicts match PyTorch's.
        state["step"] += 1

        if weight_decay != 0:
            grad = grad + weight_decay * param.data  # a new array: param.grad is untouched

        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad

        if group["centered"]:
            grad_avg = state["grad_avg"]
            lerp_(grad_avg, grad, 1 - alpha)
            avg = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += eps

        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += grad / avg
            add_to_param_(param, buf, -lr)
        else:
            add_to_param_(param, grad / avg, -lr)
