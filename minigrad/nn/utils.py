"""Gradient utilities: clipping the total gradient norm, per-sample gradient norms."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from minigrad._shapes import is_number
from minigrad.tensor import Tensor


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    The joint norm is the norm of the vector of every parameter's gradient norm (as
    PyTorch computes it). Gradients are multiplied in place by
    ``min(1, max_norm / (total_norm + 1e-6))``. Returns the total norm before clipping.
    """
    if not is_number(max_norm):
        raise TypeError(f"clip_grad_norm_: max_norm must be a number, got {max_norm!r}")
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return Tensor(np.asarray(0.0, dtype=np.float32))
    norm_type = float(norm_type)
    if norm_type == np.inf:
        norms = np.array([np.max(np.abs(g)) if g.size else 0.0 for g in grads])
        total = np.max(norms)
    else:
        norms = np.array([np.linalg.norm(g.ravel(), ord=norm_type) for g in grads])
        total = np.linalg.norm(norms, ord=norm_type)
    total = np.asarray(total, dtype=grads[0].dtype)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
            f"{float(total)}, so they cannot be clipped; pass error_if_nonfinite=False to skip "
            "this check"
        )
    scale = min(1.0, float(max_norm) / (float(total) + 1e-6))
    for g in grads:
        g *= np.asarray(scale, dtype=g.dtype)  # in place: .grad arrays belong to the params
    return Tensor(total)


def per_sample_grad_norms(parameters: Iterable[Tensor]) -> np.ndarray:
    """Each sample's gradient norm over all ``parameters``: sqrt(sum over params of ||g_i||^2).

    Uses ``grad_sample_norm`` when ``per_sample_grads(norms_only=True)`` left it (computed
    without ever forming the per-sample matrices), else the materialised ``grad_sample``.
    """
    squares = None
    for p in parameters:
        sample_norm = getattr(p, "grad_sample_norm", None)
        if sample_norm is None:
            sample = getattr(p, "grad_sample", None)
            if sample is None:
                continue
            sample_norm = np.sqrt(np.sum(sample.reshape(sample.shape[0], -1) ** 2, axis=1))
        squares = sample_norm**2 if squares is None else squares + sample_norm**2
    if squares is None:
        raise RuntimeError(
            "per_sample_grad_norms: no parameter has per-sample gradients; run backward "
            "inside `with mg.per_sample_grads():` first"
        )
    return np.sqrt(squares)
