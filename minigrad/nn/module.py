"""Module: the base class of layers and models, shaped like ``torch.nn.Module``.

Assigning a :class:`Parameter` or a sub-``Module`` to an attribute registers it, in
assignment order, so ``parameters()`` and ``state_dict()`` list them as PyTorch does
(``"0.weight"``, ``"fc1.bias"``) and weights move between the two libraries by name.
Registered objects are also ordinary attributes: "go to definition" and a debugger's
watch window see them directly.

Parameters are named after their place in the model, for ``repr``, ``mg.debug`` traces and
graph pictures: registering ``weight`` names it ``"weight"``, and assigning the module as a
child ``fc1`` renames its parameters ``"fc1.weight"`` (and so on up, as models are built
bottom-up: ``"encoder.0.weight"``). Only names given this way change: a name set by hand
stays. A parameter shared by two places keeps the first name it got.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from minigrad.autograd import no_grad
from minigrad.nn.parameter import Parameter
from minigrad.tensor import Tensor, as_array


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class: subclasses set parameters and sub-modules in ``__init__`` and define
    ``forward``; calling the module runs ``forward``."""

    training: bool
    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Tensor | None]
    _modules: dict[str, Module]

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------------- registration

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() call (call super().__init__() "
                "first in your module's __init__)"
            )
        # As in PyTorch, a registered parameter (or child module) can be replaced only by
        # another one or None: anything else would silently drop it from parameters().
        if name in self._parameters and not isinstance(value, Parameter) and value is not None:
            raise TypeError(
                f"cannot assign {type(value).__name__!r} as parameter {name!r} "
                "(nn.Parameter or None expected)"
            )
        if name in self._modules and not isinstance(value, Module) and value is not None:
            raise TypeError(
                f"cannot assign {type(value).__name__!r} as child module {name!r} "
                "(nn.Module or None expected)"
            )
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
            if value._layer is None:
                value._layer = type(self).__name__
            if value.name is None:
                value.name = name
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
            _prefix_parameter_names(value, name)
        elif name in self._parameters:
            self._parameters[name] = None  # a parameter slot set to None, as PyTorch keeps it
        elif name in self._modules:
            self._modules[name] = None  # type: ignore[assignment]
        elif name in self._buffers:
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor: Tensor | None) -> None:
        """A tensor saved in ``state_dict`` but not trained (a running mean, say)."""
        self._buffers[name] = tensor
        object.__setattr__(self, name, tensor)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {type(module).__name__} is not a Module subclass")
        setattr(self, name, module)

    # ------------------------------------------------------------------------- calling

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every sub-module (children first) and then on this one; returns self.

        Typically used to initialise weights: ``model.apply(init_fn)``, as in PyTorch.
        """
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------------- walking

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-modules with their names; one registered twice is listed once."""
        seen: set[int] = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(
        self, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """This module and every sub-module, with dotted names, depth first.

        A module registered in several places is listed once, unless ``remove_duplicate`` is
        False: then under each of its names (``state_dict`` lists tied weights that way).
        """
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if remove_duplicate:
                if id(module) in seen:
                    continue
                seen.add(id(module))
            yield name, module
            children = [
                (f"{name}.{child_name}" if name else child_name, child)
                for child_name, child in module._modules.items()
                if child is not None
            ]
            stack.extend(reversed(children))  # reversed: pop the first child first

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Parameters with dotted names (``"0.weight"``), in registration order, each once
        (or, with ``remove_duplicate=False``, a shared one under each of its names)."""
        seen: set[int] = set()
        if recurse:
            modules = self.named_modules(prefix, remove_duplicate=remove_duplicate)
        else:
            modules = iter([(prefix, self)])
        for module_name, module in modules:
            for name, param in module._parameters.items():
                if param is None or (remove_duplicate and id(param) in seen):
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(
        self, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        for module_name, module in self.named_modules(prefix, remove_duplicate=remove_duplicate):
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    yield (f"{module_name}.{name}" if module_name else name), buffer

    def buffers(self) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers():
            yield buffer

    # ------------------------------------------------------------------------- training state

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's ``.grad`` (and per-sample ``grad_sample``)."""
        for param in self.parameters():
            param.grad_sample = None
            param.grad_sample_norm = None
            if set_to_none or param.grad is None:
                param.grad = None
            else:
                param.grad.fill(0)

    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def to(self, dtype: Any) -> Module:
        """Convert every floating parameter and buffer to ``dtype``, in place (same objects)."""
        try:
            dtype = np.dtype(dtype)
        except TypeError as exc:
            raise TypeError(f"Module.to: {dtype!r} is not a dtype ({exc})") from None
        if dtype.kind != "f":
            raise TypeError(
                f"nn.Module.to only accepts floating point dtypes, but got desired dtype={dtype}"
            )
        for tensor in [*self.parameters(), *self.buffers()]:
            if np.issubdtype(tensor.dtype, np.floating) and tensor.dtype != dtype:
                tensor.data = tensor.data.astype(dtype)
                if tensor.grad is not None:
                    tensor.grad = tensor.grad.astype(dtype)
                tensor._version.value += 1
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    # ------------------------------------------------------------------------- state dict

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer by dotted name, as numpy copies (PyTorch's keys).

        A parameter shared by two layers (tied weights) appears under both names, as in PyTorch.
        """
        params = self.named_parameters(remove_duplicate=False)
        state = {name: param.data.copy() for name, param in params}
        buffers = self.named_buffers(remove_duplicate=False)
        state.update({name: buffer.data.copy() for name, buffer in buffers})
        return state

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy values into the parameters and buffers of the same names.

        ``state_dict`` may map names to numpy arrays, minigrad tensors, or anything
        ``np.asarray`` accepts (a PyTorch tensor after ``.detach().numpy()``, a list...).
        Every key and shape is checked before anything is copied, so a mismatch raises
        ``RuntimeError`` naming the key (and both shapes) and leaves the model unchanged.
        """
        own: dict[str, Tensor] = dict(self.named_parameters(remove_duplicate=False))
        own.update(self.named_buffers(remove_duplicate=False))
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        problems = []
        if strict:
            problems += [f'missing key "{key}" (shape {own[key].shape})' for key in missing]
            problems += [f'unexpected key "{key}"' for key in unexpected]
        values = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = as_array(_plain(state_dict[key]))
            if value.shape != target.shape:
                problems.append(
                    f'size mismatch for "{key}": copying a param with shape {value.shape}, '
                    f"the shape in the current model is {target.shape}"
                )
            values[key] = value
        if problems:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n  "
                + "\n  ".join(problems)
            )
        with no_grad():
            for key, value in values.items():
                own[key].copy_(value)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------------- repr

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        """PyTorch's layout: settings inline when there are no children, else one per line."""
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        children = []
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            children.append(f"({name}): {child}")
        if not children:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines + children) + "\n)"


def _prefix_parameter_names(child: Module, name: str) -> None:
    """``child`` becomes ``self.<name>``: its parameters' given names get ``name.`` in front."""
    for relative, param in child.named_parameters():
        if param.name == relative:  # named by registration, not by hand nor shared
            param.name = f"{name}.{relative}"


def _plain(value: Any) -> Any:
    """Numbers out of a minigrad tensor or anything with ``.numpy()`` (a detached torch one)."""
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().numpy()
    return value
