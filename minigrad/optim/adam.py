"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from minigrad.optim.optimizer import Optimizer, ParamGroup, add_to_param_, lerp_
from minigrad.tensor import Tensor


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), computed as ``torch.optim.Adam``'s single-tensor code does.

    For each parameter p with gradient g at step t (counting from 1)::

        g   <- g + lambda * p                       (weight_decay lambda: L2, into the moments)
        m   <- beta1 * m + (1 - beta1) * g          (first moment, via lerp as PyTorch)
        v   <- beta2 * v + (1 - beta2) * g^2        (second moment)
        v_max <- max(v_max, v); use v_max for v     (amsgrad only)
        denom = sqrt(v) / sqrt(1 - beta2^t) + eps
        p   <- p - lr / (1 - beta1^t) * m / denom

    ``eps`` is added after the bias correction of sqrt(v), as PyTorch does; the paper's
    "epsilon-hat" rearrangement (eps added before dividing by sqrt(1 - beta2^t)) drifts away
    from PyTorch when gradients are small.

    State per parameter: ``step`` (int), ``exp_avg`` (m), ``exp_avg_sq`` (v) and, with amsgrad,
    ``max_exp_avg_sq`` — arrays of the parameter's shape and dtype.

    Args:
        params: Tensors or parameter groups (dicts), see :class:`Optimizer`.
        lr: learning rate (default 1e-3).
        betas: (beta1, beta2), decay rates of the two moments (default (0.9, 0.999)).
        eps: added to the denominator for numerical stability (default 1e-8).
        weight_decay: L2 penalty lambda (default 0).
        amsgrad: use the maximum of all second moments so far (Reddi et al., 2018).
    """

    # AdamW sets this: weight decay shrinks p directly instead of entering the gradient.
    _decoupled_weight_decay = False

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[ParamGroup],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
        }
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: Mapping[str, Any]) -> None:
        super()._check_hyperparameters(group)
        beta1, beta2 = group["betas"]
        if not 0.0 <= group["eps"]:
            raise ValueError(f"Invalid epsilon value: {group['eps']}")
        if not 0.0 <= beta1 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {beta1}")
        if not 0.0 <= beta2 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {beta2}")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")

    def _update(
        self, param: Tensor, grad: np.ndarray, state: dict[str, Any], group: ParamGroup
    ) -> None:
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(param.data)
            state["exp_avg_sq"] = np.zeros_like(param.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(param.data)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]

        state["step"] += 1
        step = state["step"]

        if weight_decay != 0:
            if self._decoupled_weight_decay:
                param.mul_(1 - lr * weight_decay)
            else:
                grad = grad + weight_decay * param.data  # a new array: param.grad is untouched

        lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad

        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5

        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            second_moment = state["max_exp_avg_sq"]
        else:
            second_moment = exp_avg_sq
        denom = np.sqrt(second_moment) / bias_correction2_sqrt + eps
        update = np.divide(exp_avg, denom, out=denom)  # exp_avg / denom; denom is ours to reuse
        add_to_param_(param, update, -step_size)  # param.add_(update, alpha=-step_size)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    The decay shrinks the parameter before the Adam step instead of being added to the
    gradient, so it is not rescaled by the adaptive denominator::

        p <- p * (1 - lr * lambda)
        (then the Adam update above, with weight_decay not added to g)

    Same arguments as :class:`Adam`, but ``weight_decay`` defaults to 1e-2.
    """

    _decoupled_weight_decay = True

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[ParamGroup],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
