"""SGD: stochastic gradient descent with optional momentum, dampening, Nesterov and L2 decay."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from minigrad.optim.optimizer import Optimizer, ParamGroup, add_to_param_
from minigrad.tensor import Tensor


class SGD(Optimizer):
    r"""Stochastic gradient descent, exactly as ``torch.optim.SGD``.

    For each parameter p with gradient g, learning rate lr, momentum mu, dampening tau and
    weight decay lambda::

        g <- g + lambda * p                         (if weight_decay != 0: L2 penalty)
        b <- g                                      (first step: the buffer starts at g)
        b <- mu * b + (1 - tau) * g                 (later steps)
        g <- g + mu * b   if nesterov  else  g <- b (if momentum != 0)
        p <- p - lr * g

    State per parameter: ``momentum_buffer`` (only when momentum != 0).

    Args:
        params: Tensors or parameter groups (dicts), see :class:`Optimizer`.
        lr: learning rate (default 1e-3, as PyTorch).
        momentum: momentum factor mu (default 0).
        dampening: dampening tau of the momentum (default 0).
        weight_decay: L2 penalty lambda (default 0).
        nesterov: use Nesterov momentum; needs momentum > 0 and dampening 0.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[ParamGroup],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
        }
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: Mapping[str, Any]) -> None:
        super()._check_hyperparameters(group)
        if group["momentum"] < 0.0:
            raise ValueError(f"Invalid momentum value: {group['momentum']}")
        if group["weight_decay"] < 0.0:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _update(
        self, param: Tensor, grad: np.ndarray, state: dict[str, Any], group: ParamGroup
    ) -> None:
        momentum, weight_decay = group["momentum"], group["weight_decay"]

        if weight_decay != 0:
            grad = grad + weight_decay * param.data  # a new array: param.grad stays as it was

        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                # The buffer starts at the first gradient, undamped (PyTorch's choice).
                buf = np.array(grad, dtype=param.dtype, copy=True)
                state["momentum_buffer"] = buf
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf

        add_to_param_(param, grad, -group["lr"])  # param.add_(grad, alpha=-lr), lean
