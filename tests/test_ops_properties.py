"""Property tests: binary ops over random broadcastable shape pairs, and reductions over random
dims, compared with PyTorch (outputs and gradients, float64, a random upstream gradient).

Values are drawn from small sets as well as from ranges, so that ties (equal elements in
maximum, minimum and amax) and exact zeros come up often: those are where gradient rules
differ between libraries.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays, mutually_broadcastable_shapes

import minigrad as mg

torch = pytest.importorskip("torch")

ANY = st.floats(-3, 3) | st.sampled_from([-1.0, 0.0, 0.5, 1.0])
NONZERO = st.floats(0.5, 3) | st.floats(-3, -0.5)
POSITIVE = st.floats(0.5, 3) | st.sampled_from([0.5, 1.0, 2.0])

# (name, fn(lib, a, b), values of a, values of b, smooth): smooth ops are also checked with
# finite differences; maximum and minimum are not, since a near-tie puts a kink within eps.
BINARY_OPS = [
    ("add", lambda lib, a, b: a + b, ANY, ANY, True),
    ("sub", lambda lib, a, b: a - b, ANY, ANY, True),
    ("mul", lambda lib, a, b: a * b, ANY, ANY, True),
    ("div", lambda lib, a, b: a / b, ANY, NONZERO, True),
    ("pow", lambda lib, a, b: a**b, POSITIVE, ANY, True),
    ("maximum", lambda lib, a, b: lib.maximum(a, b), ANY, ANY, False),
    ("minimum", lambda lib, a, b: lib.minimum(a, b), ANY, ANY, False),
]
BROADCAST_SHAPE_PAIRS = mutually_broadcastable_shapes(
    num_shapes=2, min_dims=0, max_dims=3, max_side=3
)


@pytest.mark.parametrize(
    ("fn", "a_values", "b_values"),
    [pytest.param(fn, a, b, id=name) for name, fn, a, b, _ in BINARY_OPS],
)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_binary_op_over_broadcast_shapes_matches_torch(fn, a_values, b_values, data) -> None:
    shape_a, shape_b = data.draw(BROADCAST_SHAPE_PAIRS, label="shapes").input_shapes
    a = data.draw(arrays(np.float64, shape_a, elements=a_values), label="a")
    b = data.draw(arrays(np.float64, shape_b, elements=b_values), label="b")

    out = fn(mg, mg.tensor(a), mg.tensor(b))
    assert out.shape == np.broadcast_shapes(shape_a, shape_b)
    mg.testing.assert_grads_match_torch(
        lambda x, y: fn(mg, x, y), lambda x, y: fn(torch, x, y), a, b
    )


@pytest.mark.parametrize(
    ("fn", "a_values", "b_values"),
    [pytest.param(fn, a, b, id=name) for name, fn, a, b, smooth in BINARY_OPS if smooth],
)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_smooth_binary_op_over_broadcast_shapes_passes_gradcheck(
    fn, a_values, b_values, data
) -> None:
    shape_a, shape_b = data.draw(BROADCAST_SHAPE_PAIRS, label="shapes").input_shapes
    a = data.draw(arrays(np.float64, shape_a, elements=a_values), label="a")
    b = data.draw(arrays(np.float64, shape_b, elements=b_values), label="b")
    inputs = [mg.tensor(a, requires_grad=True), mg.tensor(b, requires_grad=True)]
    assert mg.gradcheck(lambda x, y: fn(mg, x, y), inputs)


@st.composite
def shape_and_dims(draw: Any) -> tuple[tuple[int, ...], Any]:
    """A shape and a PyTorch ``dim`` for it: None, an int or a tuple, negative or not."""
    shape = draw(array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3), label="shape")
    ndim = len(shape)
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    signed = [a - ndim if draw(st.booleans()) else a for a in axes]
    dim = draw(st.sampled_from([None, signed[0], tuple(signed)]), label="dim")
    return shape, dim


TIE_PRONE = st.sampled_from([-1.0, 0.0, 0.5, 2.0])  # few values: ties in almost every slice

# (name, fn(lib, x, dim, keepdim), values)
REDUCTIONS = [
    ("sum", lambda lib, x, dim, keepdim: x.sum(dim, keepdim=keepdim), ANY),
    ("mean", lambda lib, x, dim, keepdim: x.mean(dim, keepdim=keepdim), ANY),
    ("var", lambda lib, x, dim, keepdim: x.var(dim, correction=0, keepdim=keepdim), ANY),
    ("amax", lambda lib, x, dim, keepdim: x.amax(dim, keepdim=keepdim), TIE_PRONE),
    ("amin", lambda lib, x, dim, keepdim: x.amin(dim, keepdim=keepdim), TIE_PRONE),
]


@pytest.mark.parametrize(
    ("fn", "values"), [pytest.param(fn, v, id=name) for name, fn, v in REDUCTIONS]
)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_reduction_over_random_dims_matches_torch(fn, values, data) -> None:
    shape, dim = data.draw(shape_and_dims())
    keepdim = data.draw(st.booleans(), label="keepdim")
    x = data.draw(arrays(np.float64, shape, elements=values), label="x")
    if dim is None:
        # torch spells "every dim" as dim=None for sum/mean/var and as dim=() for amax/amin.
        torch_dim: Any = tuple(range(len(shape)))
    else:
        torch_dim = dim
    mg.testing.assert_grads_match_torch(
        lambda t: fn(mg, t, dim, keepdim), lambda t: fn(torch, t, torch_dim, keepdim), x
    )


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_softmax_over_random_dims_matches_torch(op, data) -> None:
    shape = data.draw(array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), label="shape")
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    x = data.draw(arrays(np.float64, shape, elements=st.floats(-50, 50) | TIE_PRONE), label="x")
    mg.testing.assert_grads_match_torch(
        lambda t: getattr(t, op)(dim), lambda t: getattr(t, op)(dim), x
    )
