"""Learning-rate schedulers: change ``group["lr"]`` of an optimizer once per epoch.

Call ``scheduler.step()`` after ``optimizer.step()``, once per epoch. The values follow
``torch.optim.lr_scheduler`` number for number: like PyTorch, ``get_lr`` computes each epoch's
rate from the current ``group["lr"]`` (a recursive form), so a rate changed by hand between
epochs carries on from the new value.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from minigrad._shapes import is_number
from minigrad.optim.optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses implement ``get_lr()``, the rates for epoch ``last_epoch``.

    Creating a scheduler records each group's starting rate as ``group["initial_lr"]`` (kept in
    ``base_lrs``) and performs the step to epoch 0, which leaves the rates as they are.

    Args:
        optimizer: the optimizer whose rates are scheduled.
        last_epoch: the index of the last epoch; -1 (the default) starts afresh. Resuming with
            ``last_epoch >= 0`` needs ``"initial_lr"`` in every group (loaded with the
            optimizer's state dict).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when "
                        "resuming a scheduler with last_epoch >= 0: load the optimizer's state "
                        "dict first, or start with last_epoch=-1"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        # The first step only moves to epoch last_epoch + 1 and should leave the rates alone;
        # a recursive get_lr (CosineAnnealingLR) checks this flag rather than recurse there.
        self._is_initial = True
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:
        """The learning rate of each group for epoch ``self.last_epoch``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr")

    def get_last_lr(self) -> list[float]:
        """The rates set by the last ``step()``, one per parameter group."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance one epoch and write the new rates into the optimizer's groups."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer, as PyTorch: ``last_epoch``, ``base_lrs``, the
        scheduler's own settings and private counters."""
        return {key: value for key, value in vars(self).items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (a PyTorch scheduler's works as well)."""
        vars(self).update(state_dict)


class StepLR(LRScheduler):
    """Multiply each group's rate by ``gamma`` every ``step_size`` epochs.

    lr(epoch) = initial_lr * gamma ** (epoch // step_size)

    Args:
        optimizer: the optimizer whose rates are scheduled.
        step_size: the period of the decay, in epochs (a positive int).
        gamma: the factor applied at each decay (default 0.1).
        last_epoch: see :class:`LRScheduler`.
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        if not is_number(step_size, numbers.Integral):
            raise TypeError(f"StepLR: step_size must be a positive int, but got {step_size!r}")
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive int, but got {step_size}")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups = self.optimizer.param_groups
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [group["lr"] for group in groups]
        return [group["lr"] * self.gamma for group in groups]


class CosineAnnealingLR(LRScheduler):
    r"""Anneal each group's rate along a cosine from ``initial_lr`` down to ``eta_min``.

    With T = T_max, the rate at epoch t is

        lr(t) = eta_min + (initial_lr - eta_min) * (1 + cos(pi t / T)) / 2,

    reaching ``eta_min`` at t = T and then climbing back (a period of 2 T), without restarts.
    As in PyTorch it is computed recursively from the current rate,

        lr(t) = eta_min + (lr(t-1) - eta_min) * (1 + cos(pi t / T)) / (1 + cos(pi (t-1) / T)),

    with an additive form one epoch past each bottom, where that ratio would be 0 / 0. So the
    values equal PyTorch's to the last bit, and the closed form above up to round-off.

    Args:
        optimizer: the optimizer whose rates are scheduled.
        T_max: the number of epochs from the top of the cosine to its bottom (positive).
        eta_min: the lowest rate (default 0).
        last_epoch: see :class:`LRScheduler`.
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        if not is_number(T_max):
            raise TypeError(f"CosineAnnealingLR: T_max must be a positive number, got {T_max!r}")
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, but got {T_max}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups = self.optimizer.param_groups
        epoch, T_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return [group["lr"] for group in groups]
        if (epoch - 1 - T_max) % (2 * T_max) == 0:
            # One epoch past the bottom: the recursive ratio is 0 / 0 there, so add instead.
            return [
                group["lr"] + (base_lr - eta_min) * (1 - math.cos(math.pi / T_max)) / 2
                for base_lr, group in zip(self.base_lrs, groups)
            ]
        return [
            (1 + math.cos(math.pi * epoch / T_max))
            / (1 + math.cos(math.pi * (epoch - 1) / T_max))
            * (group["lr"] - eta_min)
            + eta_min
            for group in groups
        ]
