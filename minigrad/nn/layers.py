"""Layers: Linear (the outer-product dense layer), LoRALinear, activations, containers.

Each layer keeps its math in ``nn.functional``; a layer holds parameters and settings.
"""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from minigrad._shapes import is_number
from minigrad.functions import float32
from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.module import Module
from minigrad.nn.parameter import Parameter
from minigrad.tensor import Tensor


class Linear(Module):
    """y = x W^T + b.

    Shape: input (*, in_features) -> output (*, out_features); ``weight`` is
    (out_features, in_features) and ``bias`` (out_features,), as in PyTorch, both drawn from
    U(-1/sqrt(in_features), 1/sqrt(in_features)) (PyTorch's default).

    Backward (``F.LinearFunction``): with delta = dL/dy, ``dW = delta x^T`` for one sample,
    and for a batch the sum of those rank-1 matrices, ``dW = delta^T X``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype: Any = float32,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        _check_sizes("Linear", in_features=in_features, out_features=out_features)
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        if bias:
            self.bias: Parameter | None = Parameter(np.empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        # kaiming_uniform_ with a = sqrt(5) gives bound = 1/sqrt(in_features): PyTorch's default.
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class LoRALinear(Module):
    """A frozen Linear plus a trainable low-rank update: y = base(x) + (alpha/rank) x A^T B^T.

    ``A`` (rank, in_features) starts like a Linear weight and ``B`` (out_features, rank) at
    zero, so the wrapped layer starts out equal to ``base``. The learned change of the weight,
    ``(alpha/rank) B A = (alpha/rank) sum_r B[:, r] A[r, :]^T``, is a sum of ``rank`` outer
    products: a matrix of rank at most ``rank``.
    """

    def __init__(
        self,
        base: Linear,
        rank: int,
        alpha: float = 1.0,
        *,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(base, Linear):
            raise TypeError(f"LoRALinear: base must be an nn.Linear, got {type(base).__name__}")
        if not isinstance(rank, int) or rank < 1:
            raise ValueError(f"LoRALinear: rank must be a positive int, got {rank!r}")
        base.requires_grad_(False)  # frozen in place, bias included
        self.base = base
        self.rank = rank
        self.alpha = alpha
        dtype = base.weight.dtype
        self.A = Parameter(np.empty((rank, base.in_features), dtype=dtype))
        self.B = Parameter(np.zeros((base.out_features, rank), dtype=dtype))
        init.kaiming_uniform_(self.A, a=math.sqrt(5), generator=generator)

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    def forward(self, input: Tensor) -> Tensor:
        low_rank = F.linear(F.linear(input, self.A), self.B)  # (*, in) -> (*, rank) -> (*, out)
        return self.base(input) + low_rank * self.scaling

    def merged_weight(self) -> np.ndarray:
        """W + (alpha/rank) B A, the (out, in) weight of one equivalent Linear."""
        return self.base.weight.data + self.scaling * (self.B.data @ self.A.data)

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha}"


class ReLU(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class Sigmoid(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class GELU(Module):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        # PyTorch's legacy rule when no dim is given: dim 0 for 0-, 1- and 3-d inputs, else 1.
        dim = self.dim if self.dim is not None else (0 if input.ndim in (0, 1, 3) else 1)
        return F.softmax(input, dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def _check_sizes(layer: str, **sizes: Any) -> None:
    """Layer sizes are non-negative ints (numpy's own error would not name the layer)."""
    for name, size in sizes.items():
        if not is_number(size, numbers.Integral) or size < 0:
            raise ValueError(f"{layer}: {name} must be a non-negative int, got {size!r}")


class Dropout(Module):
    """Zero each element with probability p in training, scaling the rest by 1/(1-p)."""

    def __init__(
        self, p: float = 0.5, inplace: bool = False, *, generator: np.random.Generator | None = None
    ) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        if inplace:
            raise ValueError(
                "Dropout(inplace=True) is not supported: minigrad does not record in-place ops "
                "in the graph (the result is the same with inplace=False)"
            )
        self.p = p
        self.inplace = inplace
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class LayerNorm(Module):
    """Normalise over the last ``len(normalized_shape)`` dims, then scale and shift."""

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        *,
        dtype: Any = float32,
    ) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
        self.normalized_shape = tuple(shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self.has_bias = elementwise_affine and bias  # PyTorch's repr shows it as bias=...
        if elementwise_affine:
            self.weight: Parameter | None = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias: Parameter | None = Parameter(
                    np.zeros(self.normalized_shape, dtype=dtype)
                )
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.has_bias}"
        )


class Embedding(Module):
    """A lookup table: row ``i`` of ``weight`` (num_embeddings, embedding_dim) for index i."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        dtype: Any = float32,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        _check_sizes("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} must be within num_embeddings "
                    f"({num_embeddings})"
                )
            padding_idx %= num_embeddings
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype))
        init.normal_(self.weight, generator=generator)  # N(0, 1), PyTorch's default
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0

    def forward(self, input: Any) -> Tensor:
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text if self.padding_idx is None else f"{text}, padding_idx={self.padding_idx}"


class Flatten(Module):
    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Sequential(Module):
    """Modules applied in order; their names are "0", "1", ... (or an OrderedDict's keys)."""

    def __init__(self, *modules: Any) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(modules):
                self.add_module(str(i), module)

    def forward(self, input: Any) -> Any:
        for module in self._modules.values():
            input = module(input)
        return input

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):  # keeps the names: seq[1:] has "1", "2", ... as PyTorch's
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class ModuleList(Module):
    """A list of sub-modules, registered as "0", "1", ..."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __repr__(self) -> str:
        """Runs of identical children collapse to ``(0-2): 3 x ReLU()``, as in PyTorch."""
        reprs = [repr(module).replace("\n", "\n  ") for module in self._modules.values()]
        if not reprs:
            return "ModuleList()"
        lines, start = [], 0
        for end in range(1, len(reprs) + 1):
            if end == len(reprs) or reprs[end] != reprs[start]:
                run = end - start
                name = f"({start})" if run == 1 else f"({start}-{end - 1})"
                lines.append(
                    f"{name}: {reprs[start]}" if run == 1 else f"{name}: {run} x {reprs[start]}"
                )
                start = end
        return "ModuleList(\n  " + "\n  ".join(lines) + "\n)"
