"""Graph fuzzer: hypothesis builds random computation graphs and minigrad's gradients are
compared with PyTorch's (float64, rtol 1e-10).

A graph has 1-3 leaves whose small shapes broadcast together (0-d tensors and size-1 dims
included), then 3-12 ops, each taking earlier nodes as inputs, so that leaves and
intermediates feed several consumers and their gradients must be summed. Every node that no
op consumes is folded into the scalar loss by a weighted sum with random weights. Variants
drawn per graph: two backward calls with ``retain_graph=True`` (gradients accumulate), a
hook that scales the gradient of an intermediate, and ``retain_grad`` on an intermediate
(its ``.grad`` is compared too). Half the graphs take leaf values from multiples of 1/2, so
that exact zeros and ties reach relu, abs, maximum/minimum and amax (PyTorch's rules at the
kinks: zero slope at 0, ties share the gradient evenly). Shapes are worked out by running
each op in torch on zeros while the graph is drawn, so only graphs torch accepts are made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minigrad as mg

torch = pytest.importorskip("torch")

RTOL = 1e-10
MAX_NUMEL = 48  # keeps expand/stack/cat from growing the graph's tensors

# name: (arity, fn(lib, *inputs, **params)); the same lambda runs on minigrad and on torch.
OPS: dict[str, tuple[int, Any]] = {
    "add": (2, lambda lib, a, b: a + b),
    "sub": (2, lambda lib, a, b: a - b),
    "mul": (2, lambda lib, a, b: a * b),
    "div": (2, lambda lib, a, b: a / (b.tanh() + 2)),  # the divisor stays in (1, 3)
    "neg": (1, lambda lib, a: -a),
    "exp": (1, lambda lib, a: a.clamp(-3, 3).exp()),
    "tanh": (1, lambda lib, a: a.tanh()),
    "sigmoid": (1, lambda lib, a: a.sigmoid()),
    "relu": (1, lambda lib, a: a.relu()),
    "abs": (1, lambda lib, a: a.abs()),
    "pow": (1, lambda lib, a, k: a**k),
    "sum": (1, lambda lib, a, dim, keepdim: a.sum(dim=dim, keepdim=keepdim)),
    "mean": (1, lambda lib, a, dim, keepdim: a.mean(dim=dim, keepdim=keepdim)),
    "amax": (1, lambda lib, a, dim, keepdim: a.amax(dim=dim, keepdim=keepdim)),
    "reshape": (1, lambda lib, a, shape: a.reshape(shape)),
    "transpose": (1, lambda lib, a, dim0, dim1: a.transpose(dim0, dim1)),
    "unsqueeze": (1, lambda lib, a, dim: a.unsqueeze(dim)),
    "expand": (1, lambda lib, a, sizes: a.expand(*sizes)),
    "slice": (1, lambda lib, a, index: a[index]),
    "matmul": (2, lambda lib, a, b: a @ b),
    "maximum": (2, lambda lib, a, b: lib.maximum(a, b)),
    "minimum": (2, lambda lib, a, b: lib.minimum(a, b)),
    "where": (2, lambda lib, a, b, mask: lib.where(lib.tensor(mask), a, b)),
    "cat": (2, lambda lib, a, b, dim: lib.cat([a, b], dim=dim)),
    "stack": (2, lambda lib, a, b, dim: lib.stack([a, b], dim=dim)),
}


def _dims(ndim: int, extra: int = 0) -> st.SearchStrategy[int]:
    """A dim index for a tensor of ``ndim`` dims (``extra`` more for unsqueeze/stack)."""
    n = ndim + extra
    return st.integers(-n, n - 1)


@st.composite
def _params(draw, name: str, shapes: list[tuple[int, ...]]) -> dict[str, Any] | None:
    """Parameters for op ``name`` on inputs of ``shapes``; None when the op does not fit."""
    shape = shapes[0]
    ndim = len(shape)
    if name == "pow":
        return {"k": draw(st.sampled_from([2, 3]))}
    if name in ("sum", "mean", "amax"):
        dim = None if ndim == 0 else draw(st.none() | _dims(ndim))
        if dim is None and name == "amax" and ndim:
            dim = tuple(range(ndim))  # torch's amax has no dim=None
        return {"dim": dim, "keepdim": draw(st.booleans())}
    if name == "reshape":
        numel = int(np.prod(shape))
        options = [(numel,), (1, numel), (numel, 1), (-1,), shape[::-1], (*shape, 1)]
        if numel == 1:
            options.append(())
        return {"shape": tuple(draw(st.sampled_from(options)))}
    if name == "transpose":
        if ndim == 0:
            return None
        return {"dim0": draw(_dims(ndim)), "dim1": draw(_dims(ndim))}
    if name == "unsqueeze":
        return {"dim": draw(_dims(ndim, extra=1))}
    if name == "expand":
        sizes = [draw(st.sampled_from([1, 2, 3, -1])) if n == 1 else -1 for n in shape]
        new = draw(st.lists(st.integers(1, 2), max_size=1))
        return {"sizes": tuple(new + sizes)}
    if name == "slice":
        if ndim == 0:
            return None
        dim = draw(st.integers(0, ndim - 1))
        start = draw(st.integers(0, shape[dim] - 1))
        stop = draw(st.integers(start + 1, shape[dim]))
        step = draw(st.sampled_from([1, 2]))
        return {"index": (slice(None),) * dim + (slice(start, stop, step),)}
    if name == "where":
        try:
            out = torch.broadcast_shapes(*shapes)
        except RuntimeError:
            return None
        mask = draw(st.lists(st.booleans(), min_size=out.numel(), max_size=out.numel()))
        return {"mask": np.array(mask, dtype=bool).reshape(tuple(out)).tolist()}
    if name == "cat":
        return None if ndim == 0 else {"dim": draw(_dims(ndim))}
    if name == "stack":
        return {"dim": draw(_dims(ndim, extra=1))}
    return {}


def _torch_shape(name: str, shapes: list, params: dict) -> tuple[int, ...] | None:
    """The output shape of the op in torch, or None when torch refuses these inputs."""
    zeros = [torch.zeros(s, dtype=torch.float64) for s in shapes]
    try:
        out = OPS[name][1](torch, *zeros, **params)
    except (RuntimeError, IndexError, TypeError, ValueError):
        return None
    return tuple(out.shape) if out.numel() <= MAX_NUMEL else None


@dataclass
class Graph:
    seed: int  # leaf values and loss weights come from np.random.default_rng(seed)
    ties: bool  # leaf values are multiples of 1/2 in [-2, 2]: exact ties and zeros
    leaf_shapes: list[tuple[int, ...]]
    ops: list[tuple[str, tuple[int, ...], dict[str, Any]]]  # (op, input nodes, params)
    shapes: list[tuple[int, ...]]  # every node's shape, leaves first
    hook: tuple[int, float] | None  # (node, factor) its gradient is scaled by
    retain: int | None  # node whose .grad is retained and compared
    twice: bool  # backward(retain_graph=True) then backward() again

    def __repr__(self) -> str:
        flags = f"hook={self.hook}, retain={self.retain}, twice={self.twice}"
        lines = [f"Graph(seed={self.seed}, ties={self.ties}, {flags})"]
        lines += [f"  n{i} = leaf{s}" for i, s in enumerate(self.leaf_shapes)]
        for k, (name, inputs, params) in enumerate(self.ops):
            i = len(self.leaf_shapes) + k
            args = ", ".join([f"n{j}" for j in inputs] + [f"{p}={v!r}" for p, v in params.items()])
            lines.append(f"  n{i} = {name}({args})  # {self.shapes[i]}")
        lines.append("  loss = weighted sum of " + ", ".join(f"n{i}" for i in self.sinks()))
        return "\n".join(lines)

    def sinks(self) -> list[int]:
        used = {j for _, inputs, _ in self.ops for j in inputs}
        return [i for i in range(len(self.shapes)) if i not in used]


@st.composite
def graphs(draw) -> Graph:
    ndim = draw(st.sampled_from([2, 3, 1, 0]))
    full = draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim))
    leaf_shapes = []
    for k in range(draw(st.integers(1, 3))):
        keep = ndim if k == 0 else draw(st.integers(0, ndim))  # the trailing dims of full...
        ones = draw(st.lists(st.booleans(), min_size=keep, max_size=keep))
        tail = full[ndim - keep :]
        leaf_shapes.append(tuple(1 if one else n for one, n in zip(ones, tail)))  # ...some 1s
    shapes = list(leaf_shapes)
    ops = []
    for _ in range(draw(st.integers(3, 12))):
        for _attempt in range(8):
            name = draw(st.sampled_from(list(OPS)))
            nodes = st.integers(0, len(shapes) - 1)
            inputs = tuple(draw(nodes) for _ in range(OPS[name][0]))
            if len(inputs) == 2 and draw(st.sampled_from([False, False, False, True])):
                inputs = (inputs[0], inputs[0])  # x op x: ties, exact zeros, a double edge
            params = draw(_params(name, [shapes[j] for j in inputs]))
            if params is not None:
                out = _torch_shape(name, [shapes[j] for j in inputs], params)
                if out is not None:
                    break
        else:
            name, inputs, params, out = "neg", (len(shapes) - 1,), {}, shapes[-1]
        ops.append((name, inputs, params))
        shapes.append(out)
    inner = st.integers(len(leaf_shapes), len(shapes) - 1)
    hook = draw(st.none() | st.tuples(inner, st.sampled_from([0.5, -2.0, 3.0])))
    return Graph(
        seed=draw(st.integers(0, 2**16)),
        ties=draw(st.booleans()),
        leaf_shapes=leaf_shapes,
        ops=ops,
        shapes=shapes,
        hook=hook,
        retain=draw(st.none() | inner),
        twice=draw(st.booleans()),
    )


def _run(lib, graph: Graph) -> tuple[float, list[np.ndarray]]:
    """Build the graph in ``lib``, back-propagate; the loss and the gradients as arrays."""
    rng = np.random.default_rng(graph.seed)
    if graph.ties:
        values = [np.asarray(rng.integers(-4, 5, s) / 2) for s in graph.leaf_shapes]
    else:
        values = [np.asarray(rng.standard_normal(s)) for s in graph.leaf_shapes]
    weights = {i: np.asarray(rng.standard_normal(graph.shapes[i])) for i in graph.sinks()}
    nodes = [lib.tensor(v, requires_grad=True) for v in values]
    for name, inputs, params in graph.ops:
        nodes.append(OPS[name][1](lib, *(nodes[j] for j in inputs), **params))
    if graph.hook is not None:
        node, factor = graph.hook
        nodes[node].register_hook(lambda g: g * factor)
    if graph.retain is not None:
        nodes[graph.retain].retain_grad()
    terms = [(nodes[i] * lib.tensor(w)).sum() for i, w in weights.items()]
    loss = terms[0]
    for term in terms[1:]:
        loss = loss + term
    loss.backward(retain_graph=graph.twice)
    if graph.twice:
        loss.backward()
    watched = nodes[: len(values)] + ([nodes[graph.retain]] if graph.retain is not None else [])
    return float(loss.item()), [np.asarray(t.grad) for t in watched]


@settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(graph=graphs())
def test_random_graph_gradients_match_torch(graph: Graph) -> None:
    mg_loss, mg_grads = _run(mg, graph)
    torch_loss, torch_grads = _run(torch, graph)
    np.testing.assert_allclose(mg_loss, torch_loss, rtol=RTOL, err_msg=f"loss of\n{graph!r}")
    names = [f"leaf n{i}" for i in range(len(graph.leaf_shapes))] + [f"retained n{graph.retain}"]
    for name, got, want in zip(names, mg_grads, torch_grads):
        # the atol covers summation order (BLAS, reductions) in gradients that cancel to ~0
        atol = RTOL * max(1.0, float(np.abs(want).max(initial=0.0)))
        message = f"{name}.grad of\n{graph!r}"
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=atol, err_msg=message)
