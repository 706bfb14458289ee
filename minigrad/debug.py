"""Watching backprop happen: a backward trace, breakpoints in an op's backward, anomaly mode.

Three context managers, each of which costs nothing when off (the engine checks one flag,
``autograd._DebugHooks.active``, per op; this module installs the functions that run when it
is set, so ``autograd`` never imports ``debug``)::

    with mg.debug.trace() as t:          # record every step of a backward pass
        loss.backward()
    print(t)                             # a table: op, shapes, gradient norms, where they go

    with mg.debug.break_on("Linear"):    # or a named layer: break_on("fc1")
        loss.backward()                  # stops in pdb with delta, x and weight as locals

    with mg.detect_anomaly():            # forward notes where each op was made;
        loss = model(x).log().sum()      # a NaN/inf gradient (or a NaN in forward)
        loss.backward()                  # raises RuntimeError naming the op and that line

Without any of them, put a breakpoint on the line marked ``# <- every op's backward runs
here`` in ``minigrad/autograd.py``: every op's backward is called from that one line.

Every Linear backward that runs while one of these tools is on is also remembered (references
to its ``delta``, ``x`` and weight gradient, no copies) for
:func:`minigrad.viz.plot_weight_gradient`; see :func:`last_linear_backward`.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import weakref
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np

from minigrad._shapes import unbroadcast
from minigrad.autograd import AccumulateGrad, Function, Node, _DebugHooks
from minigrad.nn.functional import LinearFunction
from minigrad.tensor import Tensor

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class _State:
    """What is switched on; ``_update`` turns it into the engine's one flag."""

    traces: ClassVar[list[Trace]] = []
    breaks: ClassVar[list[break_on]] = []
    anomaly = False
    check_nan = True


def _update() -> None:
    _DebugHooks.active = bool(_State.traces or _State.breaks or _State.anomaly)


# ============================================================================= where an op was made


@dataclass(frozen=True)
class Site:
    """A line of user code: where an op was created (anomaly mode)."""

    filename: str
    lineno: int
    function: str
    code: str

    def __str__(self) -> str:
        return f'File "{self.filename}", line {self.lineno}, in {self.function}\n    {self.code}'


def _user_stack(limit: int = 4) -> list[Site]:
    """The innermost ``limit`` frames outside the minigrad package, innermost first."""
    sites: list[Site] = []
    frame = sys._getframe(1)
    while frame is not None and len(sites) < limit:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_PACKAGE_DIR):
            code = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
            sites.append(Site(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name, code))
        frame = frame.f_back  # type: ignore[assignment]
    return sites


def created_at(node: Node | None) -> Site | None:
    """The user line that created ``node`` (recorded only inside ``detect_anomaly()``)."""
    metadata = getattr(node, "metadata", None)
    return None if not metadata else metadata["site"]


def _where(node: Node | None) -> str:
    metadata = getattr(node, "metadata", None)
    if not metadata:
        return (
            "Its forward ran outside detect_anomaly(), so where it was created is unknown: "
            "run the forward pass inside `with mg.detect_anomaly():` too."
        )
    stack = metadata["stack"]
    lines = [f"The op was created at:\n  {stack[0]}".replace("\n    ", "\n      ")]
    if len(stack) > 1:
        lines.append("called from:")
        lines += [f"  {site}".replace("\n    ", "\n      ") for site in stack[1:]]
    return "\n".join(lines)


# ============================================================================= anomaly mode


class detect_anomaly(contextlib.ContextDecorator):  # noqa: N801 - PyTorch's name
    """Context manager (and decorator), as ``torch.autograd.detect_anomaly(check_nan=True)``.

    Inside, every op's forward records where it was created (the user's file, line and code,
    in ``grad_fn.metadata``), and with ``check_nan``:

    - a NaN in an op's forward output raises ``RuntimeError`` naming the op and that line;
    - a NaN or inf in a gradient an op's backward returns raises ``RuntimeError`` naming the
      op (``Function 'LogBackward' returned inf values in its 0th output``) and the line
      that created it, before any leaf's ``.grad`` changes.

    Unlike PyTorch, inf gradients count as anomalies too (``sqrt`` at 0 gives one), and a
    NaN made in forward is caught where it appears. It slows every op down: debugging only.
    """

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan

    def _recreate_cm(self) -> detect_anomaly:
        # A fresh instance per decorated call, so recursive calls keep their own `_previous`.
        return type(self)(self.check_nan)

    def __enter__(self) -> None:
        self._previous = (_State.anomaly, _State.check_nan)
        _State.anomaly, _State.check_nan = True, bool(self.check_nan)
        _update()

    def __exit__(self, *exc: object) -> None:
        _State.anomaly, _State.check_nan = self._previous
        _update()


class set_detect_anomaly:  # noqa: N801 - PyTorch's name
    """``set_detect_anomaly(True)`` turns anomaly mode on (or off) from here on; used with
    ``with`` it restores the previous setting on exit, as PyTorch's does."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self._previous = (_State.anomaly, _State.check_nan)
        _State.anomaly, _State.check_nan = bool(mode), bool(check_nan)
        _update()

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        _State.anomaly, _State.check_nan = self._previous
        _update()


def is_anomaly_enabled() -> bool:
    return _State.anomaly


def _op_name(function: type[Function]) -> str:
    return function.__name__.removesuffix("Function") or function.__name__


def _on_forward(function: type[Function], outputs: tuple[Tensor, ...]) -> None:
    """Anomaly mode, after an op's forward: note the user's line, check for NaN."""
    if not _State.anomaly:
        return
    stack = _user_stack()
    node = outputs[0].grad_fn if outputs else None
    if node is not None and node.function is function:
        node.metadata = {"site": stack[0] if stack else None, "stack": stack}
    if not _State.check_nan:
        return
    for i, out in enumerate(outputs):
        if np.issubdtype(out.dtype, np.floating) and np.isnan(out.data).any():
            count = int(np.isnan(out.data).sum())
            here = f"\n  {stack[0]}".replace("\n    ", "\n      ") if stack else ""
            raise RuntimeError(
                f"Function '{_op_name(function)}' produced nan values in its {i}th output "
                f"(shape {out.shape}, {count} of {out.data.size} values) in forward, at:{here}"
            )


def _check_gradients(node: Node, grad_inputs: tuple[Any, ...]) -> None:
    for i, grad in enumerate(grad_inputs):
        if grad is None:
            continue
        grad = np.asarray(grad)
        if not np.issubdtype(grad.dtype, np.floating) or np.isfinite(grad).all():
            continue
        kind = "nan" if np.isnan(grad).any() else "inf"
        raise RuntimeError(
            f"Function '{node.name()}' returned {kind} values in its {i}th output (the "
            f"gradient for its input {i}, shape {grad.shape}).\n{_where(node)}"
        )


# ============================================================================= the trace


class InputGrad(NamedTuple):
    """One gradient an op's backward sends on: to whom, its shape, its norm (None: no grad)."""

    to: str
    shape: tuple[int, ...]
    norm: float | None


@dataclass
class TraceStep:
    """One op's backward: what came in, what went out."""

    index: int
    op: str
    output_shapes: list[tuple[int, ...]]
    grad_output_shapes: list[tuple[int, ...]]
    grad_output_norms: list[float]
    inputs: list[InputGrad]
    note: str = ""


@dataclass
class Trace:
    """The steps one or more backward passes took, in the order they ran.

    ``print(trace)`` shows the table; ``trace.ops()`` lists the op names; ``trace.steps`` are
    :class:`TraceStep` records.
    """

    steps: list[TraceStep] = field(default_factory=list)

    def ops(self) -> list[str]:
        return [step.op for step in self.steps]

    def __len__(self) -> int:
        return len(self.steps)

    def __str__(self) -> str:
        return self.table()

    def table(self) -> str:
        head = ("#", "op", "output", "grad_output", "gradients sent to inputs")
        rows = []
        for step in self.steps:
            grad_in = ", ".join(
                f"{_shape(s)} |g|={_norm(n)}"
                for s, n in zip(step.grad_output_shapes, step.grad_output_norms)
            )
            sent = "; ".join(
                f"{g.to} {_shape(g.shape)} "
                + ("no grad" if g.norm is None else f"|g|={_norm(g.norm)}")
                for g in step.inputs
            )
            outputs = ", ".join(_shape(s) for s in step.output_shapes)
            rows.append((str(step.index), step.op, outputs, grad_in, sent, step.note))
        widths = [max([len(head[c])] + [len(r[c]) for r in rows]) for c in range(4)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)) + "  " + head[4]]
        for row in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4])
            if row[5]:
                lines.append(" " * (widths[0] + 2) + "  " + row[5])
        return "\n".join(line.rstrip() for line in lines)


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _norm(value: float) -> str:
    return f"{value:.4g}"


class trace(contextlib.ContextDecorator):  # noqa: N801 - a context manager, named like no_grad
    """Record every step of the backward passes run inside: ``with trace() as t: ...``.

    Each step (a :class:`TraceStep`) is one op's backward: its name, its output's shape, the
    incoming gradient's shape and norm, and the gradient it sends to each input (named after
    the parameter it reaches, ``fc1.weight``, or the op it goes to, ``-> ReluBackward``).
    A Linear step notes that its weight gradient is the sum of ``batch`` outer products
    ``delta_b x_b^T``. Tracing changes no number: it only reads the arrays.
    """

    def __init__(self) -> None:
        self.result = Trace()

    def __enter__(self) -> Trace:
        _State.traces.append(self.result)
        _update()
        return self.result

    def __exit__(self, *exc: object) -> None:
        # By identity: two traces that saw the same steps are equal, and a nested one must
        # not take its outer trace out.
        _State.traces[:] = [t for t in _State.traces if t is not self.result]
        _update()


def _input_label(edge: tuple[Node | None, int], i: int) -> str:
    next_node = edge[0]
    if isinstance(next_node, AccumulateGrad):
        return next_node.variable.name or f"leaf{i}"
    if next_node is not None:
        return f"-> {next_node.name()}"
    return f"input{i}"


def _linear_note(x_shape: tuple[int, ...], out_features: int) -> str:
    if len(x_shape) == 1:
        return f"dW = outer(delta, x): one outer product, ({out_features},) x {_shape(x_shape)}"
    batch = int(np.prod(x_shape[:-1]))
    return (
        f"dW = delta^T X = sum of {batch} outer products delta_b x_b^T: "
        f"({out_features}, {batch}) @ ({batch}, {x_shape[-1]})"
    )


def _record(node: Node, grad_outputs: list[np.ndarray], grad_inputs: tuple[Any, ...]) -> None:
    inputs = []
    for i, (edge, meta) in enumerate(zip(node.next_functions, node._input_meta)):
        if meta is None:  # a setting passed positionally, not a tensor
            continue
        grad = grad_inputs[i] if i < len(grad_inputs) else None
        norm = None
        if grad is not None and edge[0] is not None:
            grad = np.asarray(grad)
            if grad.shape != meta[0]:
                grad = unbroadcast(grad, meta[0])  # what the engine will pass on
            norm = float(np.linalg.norm(grad))
        inputs.append(InputGrad(_input_label(edge, i), meta[0], norm))
    note = ""
    if node.function is LinearFunction:
        x_meta, w_meta = node._input_meta[0], node._input_meta[1]
        assert x_meta is not None and w_meta is not None
        note = _linear_note(x_meta[0], w_meta[0][0])
    for result in _State.traces:
        result.steps.append(
            TraceStep(
                index=len(result.steps) + 1,
                op=node.name(),
                output_shapes=[shape for shape, _ in node._output_meta],
                grad_output_shapes=[g.shape for g in grad_outputs],
                grad_output_norms=[float(np.linalg.norm(g)) for g in grad_outputs],
                inputs=inputs,
                note=note,
            )
        )


# ============================================================================= breakpoints


class break_on(contextlib.ContextDecorator):  # noqa: N801 - a context manager, like no_grad
    """Stop in the debugger just before the backward of a chosen op or layer runs.

    ``targets`` are op names (``"Linear"``, ``"LinearBackward"``, ``"Relu"``), names of
    layers (``"fc1"``, ``"0"``: the op whose parameter is named ``fc1.weight`` ...) or
    ``"*"`` for every op. Inside ``with break_on("Linear"): loss.backward()``, Python's
    ``breakpoint()`` (pdb unless ``PYTHONBREAKPOINT`` says otherwise) is called in
    :func:`_stop_in_backward`, whose locals are plain numpy arrays: ``delta`` (=
    ``grad_output``, dL/d output), ``x`` and ``weight`` (what the op saved: for Linear its
    input and W). ``step`` enters the op's backward (``LinearFunction.backward``), ``next``
    runs it (then ``p grad_inputs``), ``continue`` goes on to the next matching op.
    """

    def __init__(self, *targets: str) -> None:
        if not targets:
            raise TypeError('break_on needs an op or layer name, e.g. break_on("Linear")')
        for target in targets:
            if not isinstance(target, str):
                raise TypeError(
                    f"break_on takes names, not {type(target).__name__} objects: pass the op "
                    'or layer name, e.g. break_on("Linear") or break_on("fc1")'
                )
        self.targets = targets

    def __enter__(self) -> break_on:
        _State.breaks.append(self)
        _update()
        return self

    def __exit__(self, *exc: object) -> None:
        _State.breaks.remove(self)
        _update()

    def matches(self, node: Node) -> bool:
        name = node.name()
        op_names = {name, name.removesuffix("Backward"), node.function.__name__, "*"}
        params = [
            edge[0].variable.name
            for edge in node.next_functions
            if isinstance(edge[0], AccumulateGrad) and edge[0].variable.name
        ]
        for target in self.targets:
            if target in op_names:
                return True
            if any(p == target or p.startswith(target + ".") for p in params):
                return True
        return False


def _stop_in_backward(node: Node, grad_outputs: list[np.ndarray]) -> Any:
    """The frame ``break_on`` stops in, just before ``node``'s op runs its backward.

    Locals, plain numpy arrays: ``grad_output`` (also called ``delta``), dL/d(output),
    shape (B, out) for a batched Linear; ``saved``, what forward saved; ``x`` and
    ``weight``, its first two entries (for Linear: the input (B, in) and W (out, in)).
    ``p delta.T @ x`` is the weight gradient about to be computed, the sum over b of
    ``np.outer(delta[b], x[b])``.
    """
    assert node.ctx is not None
    op = node.name()  # noqa: F841 - a local to print in the debugger
    grad_output = delta = grad_outputs[0]  # noqa: F841
    saved = node.ctx.saved_tensors
    x = saved[0] if len(saved) > 0 else None  # noqa: F841
    weight = saved[1] if len(saved) > 1 else None  # noqa: F841
    breakpoint()  # break_on: `p delta`, `p x`; `step` enters the op's backward
    grad_inputs = node.function.backward(node.ctx, *grad_outputs)
    return grad_inputs


# ============================================================================= the engine hook


class LinearRecord(NamedTuple):
    """A Linear layer's last backward: ``delta`` (B, out), ``x`` (B, in), ``grad_weight``."""

    delta: np.ndarray
    x: np.ndarray
    grad_weight: np.ndarray


# id(weight) -> (weak reference to the weight, its record); an entry goes when the weight does.
_LAST_LINEAR: dict[int, tuple[weakref.ref[Tensor], LinearRecord]] = {}


def last_linear_backward(layer: Any) -> LinearRecord | None:
    """``delta``, ``x`` and the weight gradient of ``layer``'s (an ``nn.Linear``) last
    backward that ran while a debug tool (``trace``, ``break_on``, ``detect_anomaly``) was on,
    with leading dims flattened into the batch; ``None`` if there is none."""
    weight = getattr(layer, "weight", layer)
    entry = _LAST_LINEAR.get(id(weight))
    if entry is None or entry[0]() is not weight:
        return None
    return entry[1]


def _remember_linear(node: Node, grad_outputs: list[np.ndarray], grad_inputs: tuple) -> None:
    weight_node = node.next_functions[1][0] if len(node.next_functions) > 1 else None
    if not isinstance(weight_node, AccumulateGrad) or grad_inputs[1] is None:
        return
    assert node.ctx is not None
    x = node.ctx.saved_tensors[0]
    delta = grad_outputs[0]
    record = LinearRecord(
        delta=delta.reshape(-1, delta.shape[-1]),  # (B, out)
        x=x.reshape(-1, x.shape[-1]),  # (B, in)
        grad_weight=np.asarray(grad_inputs[1]),  # (out, in)
    )
    weight = weight_node.variable
    if id(weight) not in _LAST_LINEAR:
        weakref.finalize(weight, _LAST_LINEAR.pop, id(weight), None)
    _LAST_LINEAR[id(weight)] = (weakref.ref(weight), record)


def _on_backward(node: Node, grad_outputs: list[np.ndarray]) -> Any:
    """Runs each op's backward while a debug tool is on (``Node.backward`` calls it)."""
    assert node.ctx is not None
    if any(b.matches(node) for b in _State.breaks):
        grad_inputs = _stop_in_backward(node, grad_outputs)
    else:
        grad_inputs = node.function.backward(node.ctx, *grad_outputs)
    as_tuple = grad_inputs if isinstance(grad_inputs, tuple) else (grad_inputs,)
    if _State.anomaly and _State.check_nan:
        _check_gradients(node, as_tuple)
    if node.function is LinearFunction:
        _remember_linear(node, grad_outputs, as_tuple)
    if _State.traces:
        _record(node, grad_outputs, as_tuple)
    return grad_inputs


_DebugHooks.forward = _on_forward  # type: ignore[method-assign]
_DebugHooks.backward = _on_backward  # type: ignore[method-assign]


def _reset() -> None:
    """Switch every tool off (for tests that fail inside a ``with``)."""
    _State.traces.clear()
    _State.breaks.clear()
    _State.anomaly, _State.check_nan = False, True
    _update()


__all__ = [
    "LinearRecord",
    "Site",
    "Trace",
    "TraceStep",
    "break_on",
    "created_at",
    "detect_anomaly",
    "is_anomaly_enabled",
    "last_linear_backward",
    "set_detect_anomaly",
    "trace",
]
