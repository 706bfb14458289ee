"""Check analytical gradients against central finite differences.

For a function ``f`` with outputs ``y_k``, pick a random upstream gradient ``v_k`` for each
output and look at the scalar ``L(x) = sum_k <v_k, y_k(x)>``. Backward with ``v`` gives the
analytical ``dL/dx = J^T v``; the numerical one is, element by element,

    dL/dx_j ~ (L(x + eps e_j) - L(x - eps e_j)) / (2 eps).

A random ``v`` (not ``y.sum()``) matters: ``sum(softmax(x))`` is constant, so a sum would hide
any bug in softmax's backward. ``L`` is accumulated in float64.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minigrad.autograd import backward, no_grad
from minigrad.tensor import Tensor


class GradcheckError(RuntimeError):
    """Analytical and numerical gradients disagree (the message names input and element)."""


def gradcheck(
    fn: Callable[..., Any],
    inputs: Tensor | Sequence[Any],
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
) -> bool:
    """True if ``fn``'s gradients match central differences for every input requiring grad.

    Inputs are copied first, so their ``.grad`` and data are left as they were. On a mismatch,
    raises :class:`GradcheckError` naming the input, the element and both values (or returns
    False when ``raise_exception=False``).
    """
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            warnings.warn(
                f"gradcheck: input {i} is {inputs[i].dtype}, not float64; finite differences "
                f"with eps={eps} need float64 for a trustworthy check",
                UserWarning,
                stacklevel=2,
            )
    copies = tuple(
        Tensor(x.data.copy(), requires_grad=True) if i in checked else x
        for i, x in enumerate(inputs)
    )

    outputs = _as_outputs(fn(*copies))
    rng = np.random.default_rng(seed)
    upstream = [rng.standard_normal(y.shape) for y in outputs]
    differentiable = [k for k, y in enumerate(outputs) if y.requires_grad]
    if not differentiable:
        raise ValueError("gradcheck: no output of fn requires grad")
    backward(
        [outputs[k] for k in differentiable],
        [upstream[k].astype(outputs[k].dtype) for k in differentiable],
    )

    def projected(*args: Any) -> float:
        with no_grad():
            ys = _as_outputs(fn(*args))
        return sum(float(np.sum(v * y.data.astype(np.float64))) for v, y in zip(upstream, ys))

    for i in checked:
        x = copies[i]
        analytical = np.zeros(x.shape) if x.grad is None else x.grad.astype(np.float64)
        numerical = np.zeros(x.shape)
        for j in np.ndindex(x.shape):
            original = x.data[j].copy()
            x.data[j] = original + eps
            plus = projected(*copies)
            x.data[j] = original - eps
            minus = projected(*copies)
            x.data[j] = original
            numerical[j] = (plus - minus) / (2 * eps)
        # NaN agrees with nothing, NaN included, as in torch.autograd.gradcheck.
        bad = ~np.isclose(analytical, numerical, rtol=rtol, atol=atol)
        if bad.any():
            j = tuple(int(n) for n in np.argwhere(bad)[0])
            message = (
                f"gradcheck: gradients of input {i} (shape {x.shape}) disagree at element {j}: "
                f"numerical {float(numerical[j])!r}, analytical {float(analytical[j])!r} "
                f"({int(bad.sum())} of {bad.size} elements differ; atol={atol}, rtol={rtol})\n"
                f"numerical:\n{numerical}\nanalytical:\n{analytical}"
            )
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True


def _as_outputs(result: Any) -> tuple[Tensor, ...]:
    outputs = result if isinstance(result, (tuple, list)) else (result,)
    for k, y in enumerate(outputs):
        if not isinstance(y, Tensor):
            raise TypeError(f"gradcheck: fn must return Tensors, but output {k} is {type(y)}")
    return tuple(outputs)
