"""Optimizer: the base class that holds parameter groups and per-parameter state.

An optimizer owns no math of its own: ``step()`` walks every parameter that has a gradient and
hands it to the subclass's ``_update``, which changes ``param.data`` in place under
``no_grad()``. Updates are therefore never recorded in the graph, parameters stay leaves, and
each in-place call bumps the parameter's version counter (so a graph that saved the old
values refuses to back-propagate through them).

Everything else follows ``torch.optim.Optimizer``: parameter groups, ``state`` keyed by
parameter, ``zero_grad``, and ``state_dict()`` in PyTorch's format, so an optimizer's state can
move between the two libraries once its tensors are converted to numpy arrays.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from minigrad._shapes import is_number
from minigrad.autograd import enable_grad, no_grad
from minigrad.tensor import Tensor

ParamGroup = dict[str, Any]

# A set has no stable order, and state dicts number parameters by their order.
_SET_MESSAGE = (
    "optimizer parameters need to be organized in ordered collections, but the ordering of "
    "tensors in sets will change between runs. Please use a list instead."
)


class Optimizer:
    """Base class of all optimizers.

    Args:
        params: an iterable of Tensors, or of dicts (parameter groups). A dict holds its
            Tensors under ``"params"`` and may override any of ``defaults`` for that group,
            e.g. ``[{"params": body}, {"params": head, "lr": 1e-2}]``.
        defaults: the hyper-parameters of every group that does not set its own.

    Attributes:
        param_groups: a list of dicts, each with ``"params"`` (a list of Tensors) and every
            hyper-parameter, so ``group["lr"] = ...`` changes the learning rate (schedulers do).
        state: per-parameter state (``state[param]`` is a dict of numpy buffers and counts).
        defaults: the hyper-parameters given to the constructor.

    Subclasses validate hyper-parameters in ``_check_hyperparameters(group)`` and implement
    ``_update(param, grad, state, group)``, the rule for one parameter.
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[ParamGroup], defaults: ParamGroup):
        self.defaults = dict(defaults)
        self._check_hyperparameters(self.defaults)
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[ParamGroup] = []

        if isinstance(params, Tensor):
            # A Tensor is iterable (over its rows): list(params) would quietly take the rows.
            raise TypeError(
                f"{type(self).__name__}: params should be an iterable of Tensors or of dicts, "
                f"but got a Tensor of shape {params.shape}; wrap it in a list: [param]"
            )
        if isinstance(params, (set, frozenset)):
            raise TypeError(_SET_MESSAGE)
        groups: list[Any] = list(params)
        if len(groups) == 0:
            raise ValueError(f"{type(self).__name__}: optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    # ------------------------------------------------------------------------- groups

    def _check_hyperparameters(self, group: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` for a hyper-parameter out of range (subclasses add theirs)."""
        if "lr" in group:
            lr = group["lr"]
            if not is_number(lr):
                raise TypeError(f"Invalid learning rate: {lr!r} (it must be a number)")
            if not 0.0 <= float(lr):
                raise ValueError(f"Invalid learning rate: {lr}")

    def add_param_group(self, param_group: ParamGroup) -> None:
        """Add a group of parameters, e.g. layers unfrozen during fine-tuning.

        Hyper-parameters the group does not set are taken from ``defaults``.
        """
        if not isinstance(param_group, dict):
            raise TypeError(
                f"add_param_group: a parameter group must be a dict with a 'params' key, "
                f"but got {type(param_group).__name__}"
            )
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(_SET_MESSAGE)
        else:
            param_group["params"] = list(params)
        _split_names(param_group)

        for i, param in enumerate(param_group["params"]):
            if not isinstance(param, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but params[{i}] is a "
                    f"{type(param).__name__}"
                )
            if not param.is_leaf:
                raise ValueError(
                    f"can't optimize a non-leaf Tensor (params[{i}] was made by "
                    f"{param.grad_fn.name() if param.grad_fn is not None else 'an op'}); "
                    "optimize the leaf it was computed from, or .detach().requires_grad_()"
                )

        for name, default in self.defaults.items():
            param_group.setdefault(name, default)
        self._check_hyperparameters(param_group)

        # By identity: Tensor.__eq__ is elementwise, so `in` on a list would compare values.
        ids = [id(p) for p in param_group["params"]]
        if len(ids) != len(set(ids)):
            raise ValueError(
                "optimizer contains a parameter group with duplicate parameters: each "
                "parameter may appear only once"
            )
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if not seen.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ------------------------------------------------------------------------- stepping

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient before the next ``backward``.

        ``set_to_none=True`` (the default, as in PyTorch) drops the arrays: ``param.grad``
        becomes ``None`` and the next ``backward`` allocates fresh ones. ``set_to_none=False``
        fills the existing arrays with zeros in place. Per-sample gradients
        (``param.grad_sample``) are dropped either way.
        """
        for group in self.param_groups:
            for param in group["params"]:
                if getattr(param, "grad_sample", None) is not None:
                    param.grad_sample = None
                if param.grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                else:
                    param.grad.fill(0)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a ``.grad``; parameters without one are skipped.

        ``closure``, if given, re-evaluates the model (zero_grad, forward, backward) and returns
        the loss; it runs with grad mode on, and ``step`` returns its result.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():  # the update is not part of any model: never record it
            for group in self.param_groups:
                for param in group["params"]:
                    grad = param.grad
                    if grad is not None:
                        state = self.state.get(param)
                        if state is None:  # kept only if the rule stores something, as PyTorch
                            state = {}
                            self._update(param, grad, state, group)
                            if state:
                                self.state[param] = state
                        else:
                            self._update(param, grad, state, group)
        return loss

    def _update(
        self, param: Tensor, grad: np.ndarray, state: dict[str, Any], group: ParamGroup
    ) -> None:
        """Apply the update rule to one parameter, in place (called under ``no_grad``)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _update")

    # ------------------------------------------------------------------------- state dict

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state in PyTorch's format, as copies.

        ``{"state": {index: {name: array or number}}, "param_groups": [{..., "params":
        [index, ...]}]}``: parameters are numbered 0, 1, ... in the order of ``param_groups``.
        Buffers are numpy arrays (copies: training on does not change a saved state dict), step
        counts are ints. Parameters with no state yet are left out, as in PyTorch.
        """
        index_of: dict[int, int] = {}
        param_groups = []
        for group in self.param_groups:
            packed = {key: copy.deepcopy(value) for key, value in group.items() if key != "params"}
            for param in group["params"]:
                index_of.setdefault(id(param), len(index_of))
            packed["params"] = [index_of[id(param)] for param in group["params"]]
            param_groups.append(packed)
        state = {
            index_of[id(param)]: copy.deepcopy(param_state)
            for param, param_state in self.state.items()
            if param_state and id(param) in index_of
        }
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a state from :meth:`state_dict` (or a PyTorch optimizer's, converted to arrays).

        The groups must have the same number of parameters, in the same order, as this
        optimizer's. Buffers are copied and cast to their parameter's dtype; the loaded
        hyper-parameters replace the current ones.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"load_state_dict: expected a dict with 'state' and 'param_groups', got "
                f"{type(state_dict).__name__}"
            )
        groups = self.param_groups
        saved_groups = state_dict["param_groups"]
        if len(groups) != len(saved_groups):
            raise ValueError(
                f"loaded state dict has a different number of parameter groups "
                f"({len(saved_groups)}) than the optimizer ({len(groups)})"
            )
        for i, (group, saved) in enumerate(zip(groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    f"loaded state dict contains a parameter group that doesn't match the size "
                    f"of optimizer's group: group {i} has {len(saved['params'])} parameters in "
                    f"the state dict and {len(group['params'])} in the optimizer"
                )

        param_of: dict[int, Tensor] = {}
        for group, saved in zip(groups, saved_groups):
            for index, param in zip(saved["params"], group["params"]):
                param_of[int(index)] = param

        new_state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for index, saved_state in state_dict["state"].items():
            if int(index) not in param_of:
                raise ValueError(
                    f"loaded state dict has state for parameter {index}, which none of its "
                    f"parameter groups lists"
                )
            param = param_of[int(index)]
            new_state[param] = {
                key: _load_state_value(key, value, param, index)
                for key, value in saved_state.items()
            }

        new_groups = []
        for group, saved in zip(groups, saved_groups):
            new_group = {key: copy.deepcopy(v) for key, v in saved.items() if key != "params"}
            new_group["params"] = group["params"]
            new_groups.append(new_group)
        self.state = new_state
        self.param_groups = new_groups


def _load_state_value(key: str, value: Any, param: Tensor, index: Any) -> Any:
    """One entry of a parameter's loaded state: a count stays a number, a buffer becomes an
    array of the parameter's shape and dtype (whatever array-like it came as)."""
    if key == "step":
        return int(np.asarray(value).item())  # PyTorch keeps it as a float tensor
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    array = np.array(value, dtype=param.dtype, copy=True)
    if array.shape != param.shape:
        raise ValueError(
            f"loaded state dict has {key!r} of shape {array.shape} for parameter {index}, "
            f"whose shape is {param.shape}"
        )
    return array


def _split_names(param_group: ParamGroup) -> None:
    """``(name, param)`` pairs (from ``model.named_parameters()``) become ``params`` and
    ``param_names``, as in PyTorch, which also keeps the names in ``state_dict()``."""
    params = param_group["params"]
    named = [isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in params]
    if not any(named):
        return
    if not all(named):
        raise ValueError(
            "all optimizer params should be with or without names: this group mixes "
            "(name, parameter) pairs and bare parameters"
        )
    param_group["param_names"] = [name for name, _ in params]
    param_group["params"] = [param for _, param in params]


def add_to_param_(param: Tensor, update: np.ndarray, alpha: float) -> None:
    """``param.data += alpha * update`` in place, and bump ``param``'s version counter.

    Computes exactly what ``param.add_(update, alpha=alpha)`` computes, without the checks that
    method makes on every call for any tensor (grad mode, read-only views): ``step()`` runs
    under ``no_grad`` and optimizes leaves, so they could never fail here. In a small model the
    optimizer spent more time in those checks than in the arithmetic. The counter still moves,
    so a graph that saved the old values refuses to back-propagate through them. Pinned to
    ``add_`` by tests/test_fast_paths.py.
    """
    data = param.data
    np.add(data, update if alpha == 1 else alpha * update, out=data)
    param._version.value += 1


def lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """start += weight * (end - start), in place, with ``torch.lerp``'s formula.

    For ``weight >= 0.5`` PyTorch computes ``end - (end - start) * (1 - weight)`` instead,
    which is more accurate there; following it keeps the two libraries' round-off identical.
    """
    if weight < 0.5:
        start += weight * (end - start)
    else:
        np.subtract(end, (end - start) * (1 - weight), out=start, casting="same_kind")
