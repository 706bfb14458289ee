"""The autograd machinery: grad mode, Function and its ctx, graph nodes, and the backward engine.

How a graph is built: every differentiable op is a :class:`Function`. ``Op.apply(x, y)`` runs
``Op.forward(ctx, x.data, y.data)`` on numpy arrays and, when gradients are wanted, wraps the
result in a Tensor whose ``grad_fn`` is a :class:`Node`. The node remembers the op, its ``ctx``
(the arrays the forward saved) and ``next_functions``: for each input, the node that produced
it, or an :class:`AccumulateGrad` node for a leaf, or ``None``.

How backward runs (:func:`backward`): the nodes reachable from the output are found with an
explicit stack and put in topological order (newest first: every node is made after the nodes
of its inputs), then one plain ``for`` loop hands each node the summed gradient of its output
and calls its ``backward``. Each gradient is un-broadcast to its input's shape right there, in
the engine, and nowhere else.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import operator
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from minigrad._shapes import unbroadcast

if TYPE_CHECKING:
    from minigrad.tensor import Tensor

# ----------------------------------------------------------------------------- grad mode


class _GradMode:
    enabled = True


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()``: whether ops record a graph."""
    return _GradMode.enabled


class _SetGradEnabled(contextlib.ContextDecorator):
    """Context manager and decorator that sets grad mode and restores it on exit."""

    mode = True

    def __new__(cls, func: Callable[..., Any] | None = None) -> Any:
        # `@mg.no_grad` without parentheses, as PyTorch allows: decorate `func` right away.
        if func is not None:
            return cls()(func)
        return super().__new__(cls)

    def __enter__(self) -> None:
        self._previous = _GradMode.enabled
        _GradMode.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _GradMode.enabled = self._previous

    def _recreate_cm(self) -> _SetGradEnabled:
        # A fresh instance per decorated call, so recursive calls keep their own `_previous`.
        return type(self)()

    def __call__(self, func: Callable[..., Any]) -> Any:
        if not inspect.isgeneratorfunction(func):
            return super().__call__(func)

        # A generator runs between its caller's steps: set the mode around each step, as
        # PyTorch does, not just around the call that makes the generator.
        @functools.wraps(func)
        def generator(*args: Any, **kwargs: Any) -> Any:
            steps = func(*args, **kwargs)
            try:
                with self._recreate_cm():
                    request = next(steps)
                while True:
                    try:
                        sent = yield request
                    except GeneratorExit:
                        steps.close()
                        raise
                    except BaseException as error:  # thrown in by the caller: pass it on
                        with self._recreate_cm():
                            request = steps.throw(error)
                    else:
                        with self._recreate_cm():
                            request = steps.send(sent)
            except StopIteration as stop:  # the generator returned
                return stop.value

        return generator


class no_grad(_SetGradEnabled):  # noqa: N801 - PyTorch's name
    """Ops inside run on data only: results have ``requires_grad=False`` and no ``grad_fn``."""

    mode = False


class enable_grad(_SetGradEnabled):  # noqa: N801 - PyTorch's name
    """Turn graph recording back on inside a ``no_grad`` block."""

    mode = True


# ----------------------------------------------------------------------------- debug hooks


class _DebugHooks:
    """Where :mod:`minigrad.debug` (``trace``, ``break_on``, ``detect_anomaly``) plugs in.

    ``active`` is the one check the hot paths make (in ``Function.apply`` and
    ``Node.backward``); it is False unless a debug tool is on, and then the two functions
    below, installed by ``minigrad.debug``, run instead. This module never imports debug.
    """

    active = False

    @staticmethod
    def forward(function: type[Function], outputs: tuple[Tensor, ...]) -> None:
        """Called after every op's forward (anomaly mode: note where it was made, check NaN)."""

    @staticmethod
    def backward(node: Node, grad_outputs: list[np.ndarray]) -> Any:
        """Runs an op's backward in place of ``Node.backward``'s plain call."""
        assert node.ctx is not None
        return node.function.backward(node.ctx, *grad_outputs)


# ----------------------------------------------------------------------------- tensor hooks


class _TensorHooks:
    """``used`` turns True, for good, once any tensor gets a hook or ``retain_grad()``.

    Until then backward does not look for hooks: most programs never register one, and
    looking costs a weak-reference lookup per output of every node.
    """

    used = False


# ----------------------------------------------------------------------------- versions


class VersionCounter:
    """Counts in-place changes to a tensor's data; shared by a tensor and its ``detach()``."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


# ----------------------------------------------------------------------------- ctx

_FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward."
)


class Context:
    """The ``ctx`` an op's ``forward`` fills and its ``backward`` reads.

    ``save_for_backward(*arrays)`` keeps arrays for backward; ``saved_tensors`` returns them,
    after checking that no tensor they came from was changed in place since (a stale array
    would give a silently wrong gradient). ``needs_input_grad[i]`` tells whether input ``i``
    wants a gradient, so a backward can skip work. Other settings (a dim, a shape) may be
    stored as plain attributes.
    """

    # Class-level defaults, replaced per instance when they change: one op is made per call
    # of every Tensor method, so each attribute written in __init__ costs on every op.
    _saved: tuple[Any, ...] = ()
    # Beside each saved array: the version counter of the tensor whose data it is (None for
    # any other array) and the version that counter read. Two flat tuples, not a tuple per
    # array: each tuple is one more object the garbage collector scans while the graph lives.
    _counters: tuple[VersionCounter | None, ...] = ()
    _versions: tuple[int, ...] = ()
    _freed = False

    def __init__(self, op_name: str, needs_input_grad: tuple[bool, ...]) -> None:
        self.needs_input_grad = needs_input_grad
        self._op_name = op_name

    if TYPE_CHECKING:
        # ops store settings on ctx as attributes (ctx.axis = ...); tell the type checker so.
        # Only for the checker: at run time a missing attribute is a plain AttributeError.
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

    def save_for_backward(self, *arrays: Any) -> None:
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        if self._freed:
            raise RuntimeError(_FREED_MESSAGE)
        versions = self._versions
        for i, counter in enumerate(self._counters):
            if counter is not None and counter.value != versions[i]:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by "
                    f"an inplace operation: the array of shape {np.shape(self._saved[i])} saved "
                    f"by {self._op_name}Backward is at version {counter.value}; expected version "
                    f"{versions[i]} instead. Hint: use an out-of-place op (x = x + 1 rather than "
                    "x.add_(1)), or .clone() the tensor before changing it in place."
                )
        return self._saved

    def _track_versions(self, inputs: Sequence[Tensor], outputs: Sequence[Tensor]) -> None:
        """Remember the version of each saved array that is the data of an input or output."""
        if not self._saved:
            return
        counters: list[VersionCounter | None] = []
        versions: list[int] = []
        tensors = (*inputs, *outputs)
        for array in self._saved:
            for tensor in tensors:
                if tensor.data is array:
                    counters.append(tensor._version)
                    versions.append(tensor._version.value)
                    break
            else:  # not the data of a tensor: nothing can change it in place
                counters.append(None)
                versions.append(0)
        if counters.count(None) < len(counters):  # else keep the shared empty tuples
            self._counters = tuple(counters)
            self._versions = tuple(versions)

    def _free(self) -> None:
        self._saved = ()  # the arrays go now; the version tuples with ctx (they are small)
        self._freed = True


# ----------------------------------------------------------------------------- nodes

Edge = tuple["Node | None", int]
_NO_EDGE: Edge = (None, 0)  # an input that gets no gradient (one shared tuple for all of them)
InputMeta = tuple[tuple[int, ...], np.dtype] | None

# Numbers the nodes in the order they are made (PyTorch's ``sequence_nr``). An op's node is
# always made after the nodes of its inputs, so this order is a topological order of the graph.
_node_counter = itertools.count()


# One (shape, dtype) tuple per distinct pair, shared by every node that records it: a graph
# has few distinct shapes, and each tuple a node kept for itself would be two more objects
# (the pair and the shape) that the garbage collector scans for as long as the graph lives.
_metas: dict[tuple[tuple[int, ...], np.dtype], tuple[tuple[int, ...], np.dtype]] = {}


def _shared_meta(data: np.ndarray) -> tuple[tuple[int, ...], np.dtype]:
    """``(data.shape, data.dtype)``, as the one tuple ``_metas`` keeps for that pair."""
    meta = (data.shape, data.dtype)
    shared = _metas.get(meta)
    if shared is None:
        if len(_metas) >= 1024:  # a program that keeps changing shapes: start over, stay small
            _metas.clear()
        shared = _metas[meta] = meta
    return shared


class Node:
    """A ``grad_fn``: one recorded call of a Function, a vertex of the backward graph.

    ``next_functions[i]`` is ``(node, output_index)`` for input ``i`` (``(None, 0)`` when that
    input needs no gradient), as in PyTorch. ``backward`` turns the gradients of this node's
    outputs into one gradient per input.
    """

    __slots__ = (
        "function",
        "ctx",
        "next_functions",
        "metadata",
        "sequence_nr",
        "_input_meta",
        "_outputs",
        "_output_meta",
    )

    def __init__(
        self,
        function: type[Function],
        ctx: Context,
        next_functions: tuple[Edge, ...],
        input_meta: tuple[InputMeta, ...],
        outputs: Sequence[Tensor],
    ) -> None:
        self.function = function
        self.ctx: Context | None = ctx
        self.next_functions = next_functions
        self.metadata: dict[str, Any] | None = None  # anomaly mode: where the op was made
        self.sequence_nr = next(_node_counter)  # nodes made later get larger numbers
        self._input_meta = input_meta
        output_meta = []
        for t in outputs:
            output_meta.append(_shared_meta(t.data))
        self._output_meta = tuple(output_meta)
        # Weak references to the output tensors, made only for an output that gets a hook,
        # retain_grad() or a name (see `keep_output`): most outputs never do, and two more
        # objects per op is time, and work for the garbage collector while the graph lives.
        self._outputs: list[weakref.ref[Tensor] | None] | None = None

    def name(self) -> str:
        """PyTorch's naming: ``LinearFunction`` (nn/functional.py) gives ``"LinearBackward"``."""
        op = self.function.__name__.removesuffix("Function") or self.function.__name__
        return f"{op}Backward"

    def __repr__(self) -> str:
        """``<LinearBackward inputs=[(4, 3), (8, 3), (8,)] saved=[(4, 3) float32, ...]>``."""
        if self.freed:
            return f"<{self.name()} (freed by backward)>"
        inputs = [meta[0] if meta is not None else "-" for meta in self._input_meta]
        assert self.ctx is not None
        saved = [
            f"{np.shape(a)} {a.dtype}" if isinstance(a, np.ndarray) else type(a).__name__
            for a in self.ctx._saved
        ]
        return f"<{self.name()} inputs={inputs} saved=[{', '.join(saved)}]>"

    def backward(self, grad_outputs: list[np.ndarray]) -> tuple[Any, ...]:
        """Call the op's backward: ``grad_outputs`` (dL/d output) in, one dL/d input per input."""
        if self.ctx is None:
            raise RuntimeError(_FREED_MESSAGE)
        if _DebugHooks.active:  # mg.debug.trace / break_on / detect_anomaly: they run it
            grad_inputs = _DebugHooks.backward(self, grad_outputs)
        else:
            grad_inputs = self.function.backward(self.ctx, *grad_outputs)
        if not isinstance(grad_inputs, tuple):
            grad_inputs = (grad_inputs,)
        if len(grad_inputs) != len(self.next_functions):
            grad_inputs = self._check_gradient_count(grad_inputs)
        return grad_inputs

    def _check_gradient_count(self, grad_inputs: tuple[Any, ...]) -> tuple[Any, ...]:
        """Drop extra trailing ``None`` gradients (PyTorch allows them); any other count raises."""
        expected = len(self.next_functions)
        extra = grad_inputs[expected:]
        if extra and all(grad is None for grad in extra):
            return grad_inputs[:expected]
        raise RuntimeError(
            f"function {self.name()} returned an incorrect number of gradients "
            f"(expected {expected}, got {len(grad_inputs)})"
        )

    def output_tensors(self) -> tuple[Tensor | None, ...]:
        """This node's outputs that are alive and have a hook, ``retain_grad`` or a name."""
        refs = self._outputs or [None] * len(self._output_meta)
        return tuple([None if ref is None else ref() for ref in refs])

    def keep_output(self, tensor: Tensor) -> None:
        """Remember ``tensor`` (an output of this node, weakly): it has a hook or a name."""
        if self._outputs is None:
            self._outputs = [None] * len(self._output_meta)
        self._outputs[tensor._output_nr] = weakref.ref(tensor)

    def release(self) -> None:
        """Free what the graph holds once backward has used it: saved arrays and links."""
        if self.ctx is not None:
            self.ctx._free()
        self.ctx = None
        self.next_functions = ()
        self._input_meta = ()

    @property
    def freed(self) -> bool:
        return self.ctx is None


class AccumulateGrad(Node):
    """The node at a leaf tensor: its backward adds the incoming gradient into ``leaf.grad``."""

    __slots__ = ("variable", "__weakref__")

    def __init__(self, variable: Tensor) -> None:
        self.variable = variable
        self.ctx = None
        self.next_functions = ()
        self.metadata = None
        self.sequence_nr = next(_node_counter)
        self._input_meta = ()
        self._outputs = [weakref.ref(variable)]
        self._output_meta = (_shared_meta(variable.data),)

    def name(self) -> str:
        return "AccumulateGrad"

    def __repr__(self) -> str:
        name = f" {self.variable.name}" if self.variable.name else ""
        return f"<AccumulateGrad{name} {self.variable.shape}>"

    def backward(self, grad_outputs: list[np.ndarray]) -> tuple[Any, ...]:
        # The engine sends a leaf only arrays that nothing else holds (see `_is_new`), unless a
        # hook of this leaf saw it and may have kept it.
        variable = self.variable
        variable._accumulate_grad(grad_outputs[0], owned=not variable._hooks)
        return ()

    def release(self) -> None:
        pass  # holds nothing but the leaf

    @property
    def freed(self) -> bool:
        return False


def gradient_edge(tensor: Tensor) -> Edge:
    """Where a gradient for ``tensor`` goes: its ``grad_fn``, or its leaf's AccumulateGrad."""
    if tensor.grad_fn is not None:
        return (tensor.grad_fn, tensor._output_nr)
    node = tensor._grad_accumulator() if tensor._grad_accumulator is not None else None
    if node is None:
        # The tensor keeps only a weak reference: tensor -> node -> tensor must not be a cycle.
        node = AccumulateGrad(tensor)
        tensor._grad_accumulator = weakref.ref(node)
    return (node, 0)


# ----------------------------------------------------------------------------- Function


class Function:
    """Base class of every differentiable op, built-in or user-written.

    Subclass it with two static methods that see and return numpy arrays::

        class Exp(mg.Function):
            @staticmethod
            def forward(ctx, x):
                y = np.exp(x)
                ctx.save_for_backward(y)
                return y

            @staticmethod
            def backward(ctx, grad_output):
                (y,) = ctx.saved_tensors
                return grad_output * y  # d exp(x)/dx = exp(x)

    and call it as ``Exp.apply(t)``. Tensor inputs are positional (anything else positional is
    passed through and gets no gradient); settings are keyword arguments. ``backward`` returns
    one gradient (or ``None``) per positional input, in the output's broadcast shape: the
    engine sums it down to the input's shape and casts it to the input's dtype.
    """

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("a Function subclass must define forward(ctx, *inputs)")

    @staticmethod
    def backward(ctx: Context, *grad_outputs: Any) -> Any:
        raise NotImplementedError("a Function subclass must define backward(ctx, *grad_outputs)")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        tensor_class = _tensor_class()
        grad_mode = _GradMode.enabled
        # One pass over the arguments: a Tensor gives its array and where its gradient goes;
        # anything else is passed to forward as it is, and gets no gradient.
        inputs: list[Any] = []
        tensors: list[Tensor] = []
        needs_grad: list[bool] = []
        edges: list[Edge] = []
        meta: list[InputMeta] = []
        for a in args:
            if isinstance(a, tensor_class):
                data = a.data
                needs = grad_mode and a._requires_grad
                inputs.append(data)
                tensors.append(a)
                needs_grad.append(needs)
                edges.append(gradient_edge(a) if needs else _NO_EDGE)
                meta.append(_shared_meta(data))
            else:
                inputs.append(a)
                needs_grad.append(False)
                edges.append(_NO_EDGE)
                meta.append(None)
        ctx = Context(cls.__name__, tuple(needs_grad))

        raw = cls.forward(ctx, *inputs, **kwargs)

        if isinstance(raw, tuple):
            outputs = tuple([tensor_class._from_op(np.asarray(a), i) for i, a in enumerate(raw)])
        else:
            outputs = (tensor_class._from_op(np.asarray(raw)),)
        for out in outputs:
            _share_version_with_base(out, tensors)
        if True in needs_grad:  # record the op in the graph
            ctx._track_versions(tensors, outputs)
            node = Node(cls, ctx, tuple(edges), tuple(meta), outputs)
            for out in outputs:
                out._attach(node)
        if _DebugHooks.active:  # anomaly mode: record where this op was made, check for NaN
            _DebugHooks.forward(cls, outputs)
        return outputs if isinstance(raw, tuple) else outputs[0]


@functools.cache
def _tensor_class() -> type[Tensor]:
    """``minigrad.tensor.Tensor``, imported on first use (tensor.py imports this module).

    Cached because an import statement inside ``apply`` would cost, on every op, about as
    much as a small op's numpy work.
    """
    from minigrad.tensor import Tensor

    return Tensor


def _share_version_with_base(out: Tensor, inputs: Sequence[Tensor]) -> None:
    """A view (reshape, transpose, basic indexing ...) shares its base's version counter.

    As in PyTorch: the two share memory, so an in-place change through either one must make
    arrays saved from the other stale, or backward would silently use the changed values.
    """
    data = out.data
    is_view = data.base is not None
    for x in inputs:
        if data is x.data or (is_view and np.may_share_memory(data, x.data)):
            out._version = x._version
            return


# ----------------------------------------------------------------------------- the engine


def backward(
    tensors: Sequence[Tensor],
    grad_tensors: Sequence[Any] | None = None,
    retain_graph: bool = False,
) -> None:
    """Accumulate d(outputs)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

    ``grad_tensors[k]`` is the upstream gradient of ``tensors[k]`` (``None`` for a one-element
    output, meaning 1). Without ``retain_graph`` the graph's saved arrays and links are freed,
    once every node has run: a backward that raises part-way leaves the graph and every
    leaf's ``.grad`` as they were.
    """
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    pending: dict[Node, list[Any]] = {}
    for k, (tensor, grad) in enumerate(zip(tensors, grad_tensors)):
        seed = _seed_gradient(k, tensor, grad)
        node, index = gradient_edge(tensor)
        if type(node) is AccumulateGrad:  # backward on a leaf: it keeps a copy, not the caller's
            seed = np.array(seed)
        _add_gradient(pending, node, index, seed)  # type: ignore[arg-type]

    order = topological_order(tuple(pending))
    samples = _PerSampleGrads(order) if _PerSampleMode.active else None
    for node in order:
        grad_outputs = pending.pop(node, None)
        if grad_outputs is not None:
            if _TensorHooks.used:
                _run_tensor_hooks(node, grad_outputs)
            if len(grad_outputs) > 1:  # an op with several outputs, not all of which may have one
                _materialize(node, grad_outputs)
            grad_inputs = node.backward(grad_outputs)  # <- every op's backward runs here
            for i, ((next_node, index), grad) in enumerate(zip(node.next_functions, grad_inputs)):
                if next_node is not None and grad is not None:
                    # Most gradients already have their input's shape and dtype (numpy's dtypes
                    # are singletons, so `is` tells): skip the call.
                    shape, dtype = node._input_meta[i]  # type: ignore[misc]
                    fits = type(grad) is np.ndarray and grad.shape == shape and grad.dtype is dtype
                    if not fits:
                        grad = _fit_to_input(node, i, grad)
                    if type(next_node) is AccumulateGrad and not _is_new(
                        grad, node, grad_outputs, grad_inputs
                    ):
                        grad = grad.copy()  # the leaf keeps what it gets: never a shared array
                    _add_gradient(pending, next_node, index, grad)
            if samples is not None:
                samples.collect(node, grad_outputs)
    if samples is not None:
        samples.store()
    if not retain_graph:
        for node in order:
            node.release()


def topological_order(roots: tuple[Node, ...]) -> list[Node]:
    """Every node reachable from ``roots``, each after all nodes that feed it a gradient.

    A node is made after the nodes of its inputs (the op runs once its inputs exist), so the
    nodes sorted by ``sequence_nr``, newest first, are in topological order, as in PyTorch.
    Finding them is a walk with an explicit stack (no recursion, so million-node chains work).
    The leaves' AccumulateGrad nodes, which feed nothing, come last, so no leaf's ``.grad``
    changes before every op's backward has succeeded.
    """
    op_nodes: list[Node] = []
    leaf_nodes: list[Node] = []
    seen = set(roots)
    stack = list(roots)
    while stack:
        node = stack.pop()
        if type(node) is AccumulateGrad:
            leaf_nodes.append(node)
        elif node.ctx is None:  # freed by an earlier backward
            raise RuntimeError(_FREED_MESSAGE)
        else:
            op_nodes.append(node)
        for child, _ in node.next_functions:
            if child is not None and child not in seen:
                seen.add(child)
                stack.append(child)
    op_nodes.sort(key=_sequence_nr, reverse=True)  # newest first
    leaf_nodes.sort(key=_sequence_nr, reverse=True)
    return op_nodes + leaf_nodes


_sequence_nr = operator.attrgetter("sequence_nr")


def _seed_gradient(k: int, tensor: Tensor, grad: Any) -> np.ndarray:
    if not tensor.requires_grad:
        raise RuntimeError(
            f"element {k} of tensors does not require grad and does not have a grad_fn "
            "(call .requires_grad_() on the leaf tensors you want gradients for)"
        )
    if grad is None:
        if tensor.data.size != 1:
            raise RuntimeError(
                "grad can be implicitly created only for scalar outputs: this output has shape "
                f"{tensor.shape}; pass backward(gradient) of that shape, or reduce it first"
            )
        if tensor.ndim == 0:  # the usual loss: np.array makes it several times faster than np.ones
            return np.array(1, dtype=tensor.dtype)
        return np.ones(tensor.shape, dtype=tensor.dtype)
    grad = np.asarray(getattr(grad, "data", grad))
    if grad.shape != tensor.shape:
        raise RuntimeError(
            f"Mismatch in shape: grad_output[{k}] has a shape of {grad.shape} and output[{k}] "
            f"has a shape of {tensor.shape}."
        )
    return grad.astype(tensor.dtype, copy=False)


def _is_new(
    grad: np.ndarray, node: Node, grad_outputs: list[Any], grad_inputs: tuple[Any, ...]
) -> bool:
    """Whether ``grad``, from ``node``'s backward, is a new array that nothing else holds.

    A leaf may then keep it as its ``.grad`` with no copy (PyTorch's AccumulateGrad likewise
    takes over a gradient nobody else refers to). It is new when one of minigrad's own ops made
    it: it owns its memory, and it is none of the gradients the op was given or the arrays it
    saved, and was returned for one input only (``Add`` hands one array to both). A user's
    Function might return an array it also keeps elsewhere, and the debug tools keep what they
    see, so those gradients are copied. Pinned by tests/test_fast_paths.py.
    """
    if grad.base is not None or not grad.flags.writeable:
        return False
    if _DebugHooks.active or not node.function.__module__.startswith("minigrad."):
        return False
    assert node.ctx is not None  # the graph is freed only after every node has run
    for held in (grad_outputs, node.ctx._saved):
        for array in held:
            if array is grad:
                return False
    times_returned = 0
    for array in grad_inputs:
        if array is grad:
            times_returned += 1
    return times_returned == 1


def _add_gradient(pending: dict[Node, list[Any]], node: Node, index: int, grad: Any) -> None:
    """Sum gradients arriving at ``node``'s output ``index`` (a tensor used more than once)."""
    slots = pending.get(node)
    if slots is None:
        slots = pending[node] = [None] * len(node._output_meta)
    # Never `+=`: the first array may be shared with another input (Add hands one array to both).
    slots[index] = grad if slots[index] is None else slots[index] + grad


def _materialize(node: Node, grad_outputs: list[Any]) -> None:
    """Zeros for outputs of a multi-output op that received no gradient, as PyTorch does."""
    for i, grad in enumerate(grad_outputs):
        if grad is None:
            shape, dtype = node._output_meta[i]
            grad_outputs[i] = np.zeros(shape, dtype=dtype)


def _run_tensor_hooks(node: Node, grad_outputs: list[np.ndarray | None]) -> None:
    """Run ``register_hook`` hooks and ``retain_grad`` of the tensors ``node`` produced.

    An output of a multi-output op that got no gradient shows its hooks ``None``, and
    ``retain_grad`` leaves its ``.grad`` as it was, as in PyTorch; zeros come after, for the
    op's backward only.
    """
    for i, tensor in enumerate(node.output_tensors()):
        # Weak references: a tensor that is gone has no hooks.
        if tensor is None or not (tensor._hooks or tensor._retains_grad):
            continue
        grad = grad_outputs[i]
        for hook in tuple((tensor._hooks or {}).values()):
            replacement = hook(grad)
            if replacement is not None:
                replacement = np.asarray(getattr(replacement, "data", replacement))
                if replacement.shape != tensor.shape:
                    raise RuntimeError(
                        f"hook {hook!r} returned a gradient of shape {replacement.shape}; "
                        f"the tensor has shape {tensor.shape}"
                    )
                grad = replacement
        if tensor._retains_grad and grad is not None:
            tensor._accumulate_grad(grad)
        grad_outputs[i] = grad


def _fit_to_input(node: Node, i: int, grad: Any) -> np.ndarray:
    """Un-broadcast input ``i``'s ``grad`` to that input's shape and cast it to its dtype."""
    meta = node._input_meta[i]
    assert meta is not None, "an input with a gradient edge is always a Tensor"
    shape, dtype = meta
    grad = np.asarray(grad)
    if grad.shape != shape:
        if not _broadcasts_to(shape, grad.shape):
            raise RuntimeError(
                f"function {node.name()} returned an invalid gradient at index {i} - got "
                f"{grad.shape} but expected shape compatible with {shape}"
            )
        grad = unbroadcast(grad, shape)
    if grad.dtype != dtype:
        grad = grad.astype(dtype)
    return grad


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


# ----------------------------------------------------------------------------- per-sample


class _PerSampleMode:
    active = False
    norms_only = False


@contextlib.contextmanager
def per_sample_grads(norms_only: bool = False) -> Iterator[None]:
    """Inside, ``backward`` also gives each parameter one gradient per sample.

    ``param.grad_sample`` has shape ``(batch, *param.shape)`` (the batch is the first dim of
    the layer's input) and sums over the batch to what backward adds to ``param.grad``. For
    ``nn.Linear`` on a 2-D input, ``weight.grad_sample[b]`` is the rank-1 outer product
    ``delta_b x_b^T``. With ``norms_only=True`` backward stores ``param.grad_sample_norm``,
    shape ``(batch,)``, instead: each sample's gradient norm, for Linear
    ``||delta_b|| ||x_b||``, without forming the ``(batch, out, in)`` array.

    Each backward inside the context replaces these; ``zero_grad`` clears them. Ops that
    support it define ``grad_sample(ctx, *grad_outputs, norms_only)`` beside ``backward``
    (``Linear``, ``LoRALinear`` and ``Embedding``); a parameter whose gradient comes from any
    other op makes ``backward`` raise ``RuntimeError`` before any gradient is written.
    """
    previous = (_PerSampleMode.active, _PerSampleMode.norms_only)
    _PerSampleMode.active, _PerSampleMode.norms_only = True, bool(norms_only)
    try:
        yield
    finally:
        _PerSampleMode.active, _PerSampleMode.norms_only = previous


_PER_SAMPLE_LAYERS = "Linear, LoRALinear and Embedding"


class _PerSampleGrads:
    """Collects one backward pass's per-sample gradients; they are stored only if it succeeds.

    A parameter is a leaf that has ``grad_sample`` (an ``nn.Parameter``). Checked up front, so
    an unsupported layer raises before any gradient moves.
    """

    def __init__(self, order: list[Node]) -> None:
        self.norms_only = _PerSampleMode.norms_only
        self.found: dict[Tensor, Any] = {}  # parameter -> its (batch, *shape) array or norms
        for node in order:
            for next_node, _ in node.next_functions:
                param: Any = getattr(next_node, "variable", None)
                if hasattr(param, "grad_sample") and not hasattr(node.function, "grad_sample"):
                    layer = getattr(param, "_layer", None) or "a module"
                    raise RuntimeError(
                        f"per_sample_grads: a parameter of {layer} (shape {param.shape}) gets "
                        f"its gradient from {node.name()}, which cannot split it by sample. "
                        f"Per-sample gradients are supported for {_PER_SAMPLE_LAYERS} "
                        "layers; freeze the others (requires_grad_(False)) or call backward "
                        "outside the per_sample_grads() context."
                    )

    def collect(self, node: Node, grad_outputs: list[np.ndarray]) -> None:
        grad_sample = getattr(getattr(node, "function", None), "grad_sample", None)
        if grad_sample is None:  # a leaf, or an op without per-sample parameters
            return
        per_input = grad_sample(node.ctx, *grad_outputs, norms_only=self.norms_only)
        for (next_node, _), sample in zip(node.next_functions, per_input):
            param: Any = getattr(next_node, "variable", None)
            if not hasattr(param, "grad_sample"):
                continue
            if sample is None:
                raise RuntimeError(
                    f"per_sample_grads: {node.name()} gives no per-sample gradient for a "
                    f"parameter of shape {param.shape} passed as its input"
                )
            sample = np.asarray(sample).astype(param.dtype, copy=False)
            if param not in self.found:
                self.found[param] = sample
            elif self.norms_only:
                raise RuntimeError(
                    f"per_sample_grads(norms_only=True): a parameter of shape {param.shape} "
                    "is used more than once, and norms of the parts do not add up to the "
                    "norm of the sum; use per_sample_grads() to get the full gradients"
                )
            elif self.found[param].shape != sample.shape:
                raise RuntimeError(
                    f"per_sample_grads: a parameter of shape {param.shape} is used with batch "
                    f"sizes {self.found[param].shape[0]} and {sample.shape[0]}"
                )
            else:
                self.found[param] = self.found[param] + sample

    def store(self) -> None:
        for param, sample in self.found.items():
            if self.norms_only:
                param.grad_sample, param.grad_sample_norm = None, sample  # type: ignore[attr-defined]
            else:
                param.grad_sample, param.grad_sample_norm = sample, None  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- hooks


class RemovableHandle:
    """Returned by ``register_hook``; ``handle.remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict[int, Callable[..., Any]]) -> None:
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)
