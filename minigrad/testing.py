"""Compare minigrad with PyTorch on the same expression: outputs and every input's gradient.

PyTorch is imported only when :func:`assert_grads_match_torch` runs, so minigrad itself never
needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad.autograd import backward
from minigrad.tensor import Tensor


def assert_grads_match_torch(
    mg_fn: Callable[..., Any],
    torch_fn: Callable[..., Any],
    *arrays: Any,
    atol: float = 1e-10,
    rtol: float = 1e-7,
    seed: int = 0,
) -> None:
    """Run ``mg_fn`` and ``torch_fn`` on the same float64 inputs and compare everything.

    Floating inputs become float64 tensors that require grad on both sides; integer and bool
    inputs (indices, masks) are passed as tensors without grad. Both outputs receive the same
    random upstream gradient (seeded by ``seed``), never a plain sum. Raises ``AssertionError``
    with a report of every output and input gradient that differs.
    """
    torch = _import_torch()
    values = [np.asarray(a) for a in arrays]
    values = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in values]
    mg_inputs = [Tensor(a.copy(), requires_grad=a.dtype.kind == "f") for a in values]
    torch_inputs = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in values]

    mg_out = _tuple(mg_fn(*mg_inputs))
    torch_out = _tuple(torch_fn(*torch_inputs))
    problems: list[str] = []
    if len(mg_out) != len(torch_out):
        raise AssertionError(f"minigrad gave {len(mg_out)} outputs, torch {len(torch_out)}")

    rng = np.random.default_rng(seed)
    upstream = [rng.standard_normal(np.shape(t.detach().numpy())) for t in torch_out]
    for k, (ours, theirs) in enumerate(zip(mg_out, torch_out)):
        _compare(problems, f"output {k}", ours.data, theirs.detach().numpy(), atol, rtol)
    if any(ours.shape != tuple(theirs.shape) for ours, theirs in zip(mg_out, torch_out)):
        # One upstream gradient cannot fit both sides: report the outputs alone.
        raise AssertionError("minigrad and torch disagree:\n" + "\n".join(problems))

    mg_roots = [(y, v) for y, v in zip(mg_out, upstream) if y.requires_grad]
    torch_roots = [(y, v) for y, v in zip(torch_out, upstream) if y.requires_grad]
    if len(mg_roots) != len(torch_roots):
        problems.append(
            f"requires_grad of the outputs differ: minigrad {[y.requires_grad for y in mg_out]}, "
            f"torch {[y.requires_grad for y in torch_out]}"
        )
    elif mg_roots:
        backward([y for y, _ in mg_roots], [v.astype(y.dtype) for y, v in mg_roots])
        torch.autograd.backward(
            [y for y, _ in torch_roots],
            [torch.as_tensor(v, dtype=y.dtype) for y, v in torch_roots],
        )
        for i, (ours_in, theirs_in) in enumerate(zip(mg_inputs, torch_inputs)):
            if not theirs_in.requires_grad:
                continue
            ours_grad = ours_in.grad
            theirs_grad = None if theirs_in.grad is None else theirs_in.grad.numpy()
            if ours_grad is None and theirs_grad is None:
                continue
            if ours_grad is None or theirs_grad is None:
                # One side never reached this input; PyTorch's None means zeros.
                ours_grad = np.zeros(values[i].shape) if ours_grad is None else ours_grad
                theirs_grad = np.zeros(values[i].shape) if theirs_grad is None else theirs_grad
            _compare(problems, f"gradient of input {i}", ours_grad, theirs_grad, atol, rtol)
    if problems:
        raise AssertionError("minigrad and torch disagree:\n" + "\n".join(problems))


def _compare(
    problems: list[str], what: str, ours: np.ndarray, theirs: np.ndarray, atol: float, rtol: float
) -> None:
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if ours.shape != theirs.shape:
        problems.append(f"{what}: shape {ours.shape} in minigrad, {theirs.shape} in torch")
        return
    if ours.dtype != theirs.dtype:
        problems.append(f"{what}: dtype {ours.dtype} in minigrad, {theirs.dtype} in torch")
        return
    if ours.dtype.kind not in "fc":
        if not np.array_equal(ours, theirs):
            problems.append(f"{what}: values differ\n  minigrad: {ours}\n  torch:    {theirs}")
        return
    close = np.isclose(ours, theirs, atol=atol, rtol=rtol, equal_nan=True)
    if not close.all():
        where = tuple(int(n) for n in np.argwhere(~close)[0])
        diff = np.abs(ours - theirs)
        finite = diff[~np.isnan(diff)]  # a NaN on one side only differs by NaN
        largest = finite.max() if finite.size else float("nan")
        problems.append(
            f"{what}: {int((~close).sum())} of {close.size} elements differ (largest difference "
            f"{largest}); first at {where}: minigrad {ours[where].item()!r}, torch "
            f"{theirs[where].item()!r}\n  minigrad: {np.array2string(ours, precision=6)}\n"
            f"  torch:    {np.array2string(theirs, precision=6)}"
        )


def _tuple(result: Any) -> tuple[Any, ...]:
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "assert_grads_match_torch needs PyTorch, which minigrad itself does not depend on: "
            "install it with `pip install torch==2.13.0` (or `pip install -e '.[test]'`)"
        ) from exc
    return torch
