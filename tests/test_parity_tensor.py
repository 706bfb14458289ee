"""The Tensor API surface (not the math of ops) against PyTorch, side by side.

Covers factories (mg.tensor/zeros/ones/randn/rand/arange/full/zeros_like/ones_like: dtype rules
and argument forms), values out (item/tolist/numpy/np.asarray, int()/float()/operator.index),
len/iteration/bool(), comparisons (bool tensors, no graph, broadcasting) and hashing by
identity, in-place methods (values, alpha, broadcasting, dtype casting, errors), clone/detach,
dtype conversion (.to/.float/.double), shape methods (.T, transpose, permute, squeeze, expand,
flatten, view/reshape, size/numel/ndim) and repr. Each case runs the same expression on minigrad
and on torch and compares dtype, shape and values, or the exception type. Op edge cases are in
test_parity_ops.py.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch")

Fn = Callable[[Any], Any]


def as_np(x: Any) -> np.ndarray:
    if isinstance(x, mg.Tensor):
        return x.data
    return x.detach().numpy()


def same_tensor(m: Any, t: Any) -> None:
    """Same dtype, shape and values (exactly, NaN equal to NaN)."""
    a, b = as_np(m), as_np(t)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_array_equal(a, b)


def outcome(fn: Callable[[], Any]) -> tuple[type[BaseException] | None, Any]:
    try:
        return None, fn()
    except Exception as exc:  # the exception is the result being compared
        return type(exc), exc


def same_error(mg_fn: Callable[[], Any], torch_fn: Callable[[], Any]) -> None:
    """Both raise, and minigrad's exception is of torch's type (or a subclass of it)."""
    t_exc, t_val = outcome(torch_fn)
    m_exc, m_val = outcome(mg_fn)
    assert t_exc is not None, "torch did not raise: the case is wrong"
    assert m_exc is not None, f"minigrad did not raise (got {m_val!r}); torch raised {t_val!r}"
    assert issubclass(m_exc, t_exc), f"minigrad: {m_exc.__name__}: {m_val}; torch: {t_val!r}"


def both(fn: Fn) -> None:
    same_tensor(fn(mg), fn(torch))


X3 = np.arange(24.0).reshape(2, 3, 4)


# ----------------------------------------------------------------------------- mg.tensor


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda lib: lib.tensor([[1, 2], [3, 4]]), id="nested-ints"),
        pytest.param(lambda lib: lib.tensor([[1.5], [2.0]]), id="nested-floats"),
        pytest.param(lambda lib: lib.tensor([1, 2.5]), id="mixed-int-float"),
        pytest.param(lambda lib: lib.tensor([True, 2]), id="mixed-bool-int"),
        pytest.param(lambda lib: lib.tensor([True, 2.5]), id="mixed-bool-float"),
        pytest.param(lambda lib: lib.tensor(True), id="bool-0d"),
        pytest.param(lambda lib: lib.tensor([[True], [False]]), id="bool-nested"),
        pytest.param(lambda lib: lib.tensor(2**40), id="big-int"),
        pytest.param(lambda lib: lib.tensor([]), id="empty-list"),
        pytest.param(lambda lib: lib.tensor(np.float64(1.5)), id="np-float64-scalar"),
        pytest.param(lambda lib: lib.tensor(np.float32(1.5)), id="np-float32-scalar"),
        pytest.param(lambda lib: lib.tensor(np.int32(3)), id="np-int32-scalar"),
        pytest.param(lambda lib: lib.tensor(np.array([1, 2], dtype=np.uint8)), id="np-uint8"),
        pytest.param(lambda lib: lib.tensor(np.array([1, 2], dtype=np.float16)), id="np-f16"),
        pytest.param(lambda lib: lib.tensor([1, 2], dtype=lib.float32), id="int-as-float32"),
        pytest.param(lambda lib: lib.tensor([1.7, -2.7], dtype=lib.int64), id="float-as-int64"),
        pytest.param(lambda lib: lib.tensor(lib.tensor([1.0, 2.0])), id="of-a-tensor"),
        pytest.param(
            lambda lib: lib.tensor(lib.tensor([1.0], dtype=lib.float64)), id="of-a-f64-tensor"
        ),
        pytest.param(lambda lib: lib.tensor([lib.tensor(1.0), lib.tensor(2.0)]), id="0d-list"),
    ],
)
@pytest.mark.filterwarnings("ignore:To copy construct from a tensor")
def test_tensor_constructor_dtype_and_values_match_torch(make: Fn) -> None:
    both(make)


def test_tensor_of_a_tensor_copies_and_drops_the_graph() -> None:
    src = mg.tensor([1.0, 2.0], requires_grad=True)
    out = mg.tensor(src)
    assert out.is_leaf and not out.requires_grad
    out.data[0] = 9.0
    assert src.data[0] == 1.0


def test_ragged_list_raises_value_error_like_torch() -> None:
    same_error(lambda: mg.tensor([[1, 2], [3]]), lambda: torch.tensor([[1, 2], [3]]))


# ----------------------------------------------------------------------------- factories


@pytest.mark.parametrize("name", ["zeros", "ones"])
@pytest.mark.parametrize("args", [(2, 3), ((2, 3),), ([2, 3],), ((),), (0,), (4,)])
def test_constant_factories_accept_ints_tuple_or_list(name: str, args: tuple) -> None:
    same_tensor(getattr(mg, name)(*args), getattr(torch, name)(*args))


@pytest.mark.parametrize("name", ["randn", "rand"])
@pytest.mark.parametrize("args", [(2, 3), ((2, 3),), ([2, 3],), ((),)])
@pytest.mark.parametrize("dtype", [None, "float64"])
def test_random_factories_shape_and_dtype_match_torch(name: str, args: tuple, dtype: Any) -> None:
    m = getattr(mg, name)(*args, dtype=None if dtype is None else getattr(mg, dtype))
    t = getattr(torch, name)(*args, dtype=None if dtype is None else getattr(torch, dtype))
    assert m.shape == tuple(t.shape) and m.dtype == as_np(t).dtype


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda lib: lib.full((2,), 3), id="int"),
        pytest.param(lambda lib: lib.full((2,), 3.5), id="float"),
        pytest.param(lambda lib: lib.full((2,), True), id="bool"),
        pytest.param(lambda lib: lib.full([2, 2], 1.0), id="list-size"),
        pytest.param(lambda lib: lib.full((), 2.0), id="0d"),
        pytest.param(lambda lib: lib.full((2,), 3, dtype=lib.float64), id="int-as-f64"),
        pytest.param(lambda lib: lib.full((2,), 3.7, dtype=lib.int64), id="float-as-int64"),
        pytest.param(lambda lib: lib.full((2,), 1, dtype=lib.bool_ if lib is mg else lib.bool)),
        pytest.param(lambda lib: lib.full((2,), np.float64(1.5)), id="np-float64-fill"),
        pytest.param(lambda lib: lib.full((2,), np.int32(1)), id="np-int32-fill"),
    ],
)
def test_full_fill_value_dtype_matches_torch(make: Fn) -> None:
    both(make)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda lib: lib.zeros_like(lib.tensor([1, 2])), id="zeros-int"),
        pytest.param(lambda lib: lib.ones_like(lib.tensor([True])), id="ones-bool"),
        pytest.param(lambda lib: lib.ones_like(lib.tensor([1, 2]), dtype=lib.float64), id="dt"),
        pytest.param(lambda lib: lib.zeros_like(lib.tensor(1.5)), id="0d"),
    ],
)
def test_like_factories_match_torch(make: Fn) -> None:
    both(make)


@pytest.mark.parametrize(
    "args",
    [
        (5,),
        (5.0,),
        (1, 4),
        (5, 0, -1),
        (5, 0, -2),
        (0, 1, 0.25),
        (0, 2.5),
        (3, 3),
        (np.float64(3),),
        (0, 0.3, 0.1),
        (1.0, 0.0, -0.3),
        (1, 1.3, 0.1),
    ],
)
def test_arange_dtype_and_values_match_torch(args: tuple) -> None:
    same_tensor(mg.arange(*args), torch.arange(*args))


def test_arange_float_values_agree_with_torch_to_float32_round_off() -> None:
    # Both compute start + i * step and cast; the last bit may differ (torch's float32 kernel
    # gives -3e-9 where the exact value is 0), so values agree to float32 round-off.
    got, expected = mg.arange(-1.0, 1.0, 0.1), torch.arange(-1.0, 1.0, 0.1)
    assert got.dtype == np.float32 and got.shape == tuple(expected.shape)
    np.testing.assert_allclose(got.data, expected.numpy(), rtol=1e-6, atol=1e-7)


def test_numpy_scalars_in_a_list_count_as_python_numbers() -> None:
    # A documented difference (README): minigrad reads them as Python floats (float32);
    # torch keeps a numpy float64's dtype.
    assert mg.tensor([np.float64(1.5), np.float64(2.0)]).dtype == np.float32
    assert torch.tensor([np.float64(1.5), np.float64(2.0)]).dtype == torch.float64


def test_arange_with_dtype_and_keyword_end() -> None:
    same_tensor(mg.arange(3, dtype=mg.float64), torch.arange(3, dtype=torch.float64))
    same_tensor(mg.arange(start=1, end=3), torch.arange(start=1, end=3))
    same_tensor(mg.arange(end=3), torch.arange(end=3))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda lib: lib.arange(0, 3, 0), id="arange-zero-step"),
        pytest.param(lambda lib: lib.arange(0, 3, -1), id="arange-step-sign"),
        pytest.param(lambda lib: lib.zeros(-1), id="zeros-negative-size"),
        pytest.param(lambda lib: lib.ones(2.0), id="ones-float-size"),
        pytest.param(lambda lib: lib.zeros(2, dtype=lib.int64, requires_grad=True), id="int-rg"),
        pytest.param(lambda lib: lib.arange(3, requires_grad=True), id="arange-int-rg"),
    ],
)
def test_invalid_factory_arguments_raise_like_torch(make: Fn) -> None:
    same_error(lambda: make(mg), lambda: make(torch))


# ----------------------------------------------------------------------------- values out


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda lib: lib.tensor([2.5]).item(), id="item-float"),
        pytest.param(lambda lib: lib.tensor([[3]]).item(), id="item-int"),
        pytest.param(lambda lib: lib.tensor(True).item(), id="item-bool"),
        pytest.param(lambda lib: lib.tensor(2.5).tolist(), id="tolist-0d"),
        pytest.param(lambda lib: lib.tensor([[1, 2]]).tolist(), id="tolist-nested"),
        pytest.param(lambda lib: lib.tensor([True, False]).tolist(), id="tolist-bool"),
        pytest.param(lambda lib: float(lib.tensor([2])), id="float()"),
        pytest.param(lambda lib: int(lib.tensor([2.7])), id="int()"),
        pytest.param(lambda lib: int(lib.tensor(-2.7)), id="int()-negative"),
    ],
)
def test_python_values_out_match_torch(make: Fn) -> None:
    m, t = make(mg), make(torch)
    assert m == t and type(m) is type(t), (m, t)
    if isinstance(m, list):
        flat_m, flat_t = np.ravel(m).tolist(), np.ravel(t).tolist()
        assert [type(v) for v in flat_m] == [type(v) for v in flat_t]


def test_item_of_an_empty_tensor_raises_runtime_error() -> None:
    same_error(lambda: mg.tensor([]).item(), lambda: torch.tensor([]).item())


def test_numpy_and_asarray_give_the_values_with_torchs_dtype() -> None:
    for data in ([1.0, 2.0], [[1, 2]], [True], 3.5):
        m, t = mg.tensor(data), torch.tensor(data)
        for a, b in ((m.numpy(), t.numpy()), (np.asarray(m), np.asarray(t))):
            assert type(a) is np.ndarray and a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)
    assert np.asarray(mg.tensor([1.0]), dtype=np.float64).dtype == np.float64


def test_integer_0d_tensor_works_as_an_index_like_torch() -> None:
    """torch tensors have __index__ (a one-element integer tensor indexes a list, range...)."""
    assert [10, 20, 30][torch.tensor(1)] == 20
    assert operator.index(torch.tensor(2)) == 2
    assert [10, 20, 30][mg.tensor(1)] == 20
    assert operator.index(mg.tensor(2)) == 2


# ----------------------------------------------------------------------------- len, iter, bool


def test_len_and_iteration_of_0d_raise_type_error_like_torch() -> None:
    same_error(lambda: len(mg.tensor(1.0)), lambda: len(torch.tensor(1.0)))
    same_error(lambda: list(mg.tensor(1.0)), lambda: list(torch.tensor(1.0)))


@pytest.mark.parametrize("data", [[[1.0, 2.0], [3.0, 4.0]], [1, 2, 3], [], X3])
def test_iteration_yields_the_rows_like_torch(data: Any) -> None:
    m, t = mg.tensor(data), torch.tensor(data)
    assert len(m) == len(t)
    rows_m, rows_t = list(m), list(t)
    assert len(rows_m) == len(rows_t)
    for a, b in zip(rows_m, rows_t, strict=True):
        same_tensor(a, b)


def test_iteration_keeps_the_graph() -> None:
    xm = mg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    xt = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    for x in (xm, xt):
        total = None
        for i, row in enumerate(x):
            assert row.requires_grad
            term = (row * (i + 1)).sum()
            total = term if total is None else total + term
        total.backward()
    np.testing.assert_array_equal(xm.grad, xt.grad.numpy())


@pytest.mark.parametrize("data", [[0.0], [[3]], 0, 2.5, [True], [[False]]])
def test_bool_of_one_element_matches_torch(data: Any) -> None:
    assert bool(mg.tensor(data)) is bool(torch.tensor(data))


@pytest.mark.parametrize("data", [[1.0, 2.0], [[True, True]], []])
def test_bool_of_several_or_no_elements_raises_like_torch(data: Any) -> None:
    same_error(lambda: bool(mg.tensor(data)), lambda: bool(torch.tensor(data)))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(mg.tensor(data))


def test_bool_of_an_empty_tensor_says_it_has_no_values() -> None:
    with pytest.raises(RuntimeError, match="no values"):
        bool(torch.tensor([]))
    with pytest.raises(RuntimeError, match="no values"):
        bool(mg.tensor([]))


# ----------------------------------------------------------------------------- comparisons, hash

COMPARISONS = [operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge]


@pytest.mark.parametrize("op", COMPARISONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("left", "right"),
    [
        pytest.param([[1.0], [2.0]], [1.0, 2.0, 3.0], id="2x1-vs-3"),
        pytest.param([1.0, 2.0, 3.0], 2.0, id="scalar"),
        pytest.param([1, 2, 3], 2.5, id="int-vs-float"),
        pytest.param([[1.0, 2.0]], 2.0, id="0d-tensor-right"),
    ],
)
def test_comparisons_broadcast_give_bool_without_graph(op: Any, left: Any, right: Any) -> None:
    def run(lib: Any) -> Any:
        a = lib.tensor(left, requires_grad=not isinstance(left[0], int))
        b = right if isinstance(right, float) and left[0] != [1.0, 2.0] else lib.tensor(right)
        out = op(a, b)
        assert out.grad_fn is None and not out.requires_grad
        return out

    both(run)
    same_tensor(op(2.0, mg.tensor(left)), op(2.0, torch.tensor(left)))


def test_comparison_of_unbroadcastable_shapes_raises_runtime_error() -> None:
    """api.md: shape mismatches raise RuntimeError (as PyTorch)."""
    same_error(
        lambda: mg.tensor([1.0, 2.0]) == mg.tensor([1.0, 2.0, 3.0]),
        lambda: torch.tensor([1.0, 2.0]) == torch.tensor([1.0, 2.0, 3.0]),
    )


def test_hash_by_identity_while_eq_is_elementwise() -> None:
    for lib in (mg, torch):
        a, b = lib.tensor([1.0, 2.0]), lib.tensor([1.0, 2.0])
        assert (a == b).tolist() == [True, True]
        seen = {a: "a"}
        assert b not in seen and seen[a] == "a"
        with lib.no_grad():
            a.add_(1.0)  # changing the values does not change the hash
        assert seen[a] == "a" and a in {a}
        assert hash(a) == hash(a) and len({a, b, a}) == 2


# ----------------------------------------------------------------------------- in-place methods


@pytest.mark.parametrize(
    ("start", "apply"),
    [
        pytest.param([1.0, 2.0], lambda lib, t: t.add_(lib.tensor([1.0, 1.0]), alpha=3), id="a"),
        pytest.param([1.0, 2.0], lambda lib, t: t.sub_(lib.tensor([1.0, 2.0]), alpha=0.5)),
        pytest.param([1, 2], lambda lib, t: t.add_(lib.tensor([1, 1]), alpha=3), id="int-alpha"),
        pytest.param([1, 2], lambda lib, t: t.sub_(2, alpha=2), id="int-sub-scalar-alpha"),
        pytest.param([[1.0, 2.0], [3.0, 4.0]], lambda lib, t: t.add_(lib.tensor([10.0, 20.0]))),
        pytest.param([[1.0, 2.0], [3.0, 4.0]], lambda lib, t: t.mul_(lib.tensor([[2.0], [3.0]]))),
        pytest.param([1.0, 2.0], lambda lib, t: t.div_(lib.tensor([2, 4])), id="f32-div-int"),
        pytest.param(
            [1.0, 2.0], lambda lib, t: t.add_(lib.tensor([0.1, 0.2], dtype=lib.float64)), id="f64"
        ),
        pytest.param([1, 2], lambda lib, t: t.mul_(lib.tensor([True, False])), id="int-by-bool"),
        pytest.param([True, False], lambda lib, t: t.add_(lib.tensor([True, True])), id="bool"),
        pytest.param([1.0, 0.0], lambda lib, t: t.div_(0.0), id="div-by-zero"),
        pytest.param([1.0, 2.0], lambda lib, t: t.add_(lib.tensor(3)), id="0d-int-into-f32"),
        pytest.param([1, 2], lambda lib, t: t.copy_(lib.tensor([1.7, -2.7])), id="copy-f2i"),
        pytest.param([True, True], lambda lib, t: t.copy_(lib.tensor([0.0, 2.5])), id="copy-f2b"),
        pytest.param([[1.0, 2.0]] * 2, lambda lib, t: t.copy_(lib.tensor([5.0, 6.0])), id="cp-b"),
        pytest.param([1, 2], lambda lib, t: t.fill_(2.7), id="fill-float-into-int"),
        pytest.param([1.0, 2.0], lambda lib, t: t.fill_(lib.tensor(3.0)), id="fill-0d-tensor"),
        pytest.param([1, 2], lambda lib, t: t.zero_(), id="zero-int"),
        pytest.param([1, 5], lambda lib, t: t.clamp_(2, 3), id="clamp-int"),
        pytest.param([1.0, 2.0, 5.0], lambda lib, t: t.clamp_(3.0, 2.0), id="clamp-min>max"),
        pytest.param([1.0, 2.0, 5.0], lambda lib, t: t.clamp_(max=2.5), id="clamp-max-only"),
        pytest.param(
            [1.0, 2.0, 5.0],
            lambda lib, t: t.clamp_(lib.tensor([2.0, 0.0, 0.0]), lib.tensor([3.0, 3.0, 3.0])),
            id="clamp-tensor-bounds",
        ),
    ],
)
def test_in_place_methods_match_torch(start: Any, apply: Callable[[Any, Any], Any]) -> None:
    def run(lib: Any) -> Any:
        t = lib.tensor(start)
        assert apply(lib, t) is t
        return t

    both(run)


def _set(index: Any, value: Any) -> Callable[[Any, Any], None]:
    def do(lib: Any, t: Any) -> None:
        t[index] = value(lib) if callable(value) else value

    return do


@pytest.mark.parametrize(
    ("start", "apply"),
    [
        pytest.param([1, 2], _set(0, 2.7), id="float-into-int"),
        pytest.param([[1.0, 2.0]] * 2, _set(slice(None), lambda lib: lib.tensor([7.0, 8.0]))),
        pytest.param([1.0, 2.0, 3.0], _set(np.array([True, False, True]), 0.0), id="mask"),
        pytest.param([1.0, 2.0, 3.0], _set((Ellipsis,), lambda lib: lib.tensor(5.0)), id="ell"),
        pytest.param([[1.0, 2.0]] * 2, _set((0, 1), -1.0), id="tuple-index"),
        pytest.param([1.0, 2.0], _set(1, lambda lib: lib.tensor(9, dtype=lib.int64)), id="int"),
    ],
)
def test_setitem_matches_torch(start: Any, apply: Callable[[Any, Any], None]) -> None:
    def run(lib: Any) -> Any:
        t = lib.tensor(start)
        apply(lib, t)
        return t

    both(run)


def test_setitem_with_tensor_index_matches_torch() -> None:
    def run(lib: Any) -> Any:
        t = lib.tensor([1.0, 2.0, 3.0])
        t[lib.tensor([0, 2])] = -1.0
        t[t > 1.5] = 0.0
        return t

    both(run)


@pytest.mark.parametrize(
    ("start", "apply"),
    [
        pytest.param([1, 2], lambda lib, t: t.add_(1.5), id="add-float-into-int"),
        pytest.param([1, 2], lambda lib, t: t.div_(2), id="div-int"),
        pytest.param([1, 2], lambda lib, t: t.mul_(lib.tensor([1.5, 1.5])), id="mul-ftensor-int"),
        pytest.param([True], lambda lib, t: t.add_(1), id="int-into-bool"),
        pytest.param([1, 2], lambda lib, t: t.add_(lib.tensor([1, 1]), alpha=0.5), id="alpha"),
        pytest.param([1.0, 2.0], lambda lib, t: t.add_(lib.tensor([[1.0], [2.0]])), id="grows"),
        pytest.param([[1.0, 2.0]], lambda lib, t: t.sub_(lib.tensor([[1.0], [2.0]])), id="gr1"),
        pytest.param([1.0, 2.0], lambda lib, t: t.copy_(lib.tensor([[1.0, 2.0]] * 2)), id="cp"),
        pytest.param([1, 5], lambda lib, t: t.clamp_(1.5, 3.5), id="clamp-float-on-int"),
        pytest.param([1.0, 2.0], lambda lib, t: t.fill_(lib.tensor([3.0, 4.0])), id="fill-2"),
        pytest.param([[1.0, 2.0]] * 2, _set(0, lambda lib: lib.tensor([7.0, 8.0, 9.0])), id="si"),
    ],
)
def test_invalid_in_place_raises_runtime_error_and_keeps_data(
    start: Any, apply: Callable[[Any, Any], Any]
) -> None:
    """torch raises RuntimeError for a dtype it cannot cast to or a shape that does not fit."""
    t = torch.tensor(start)
    with pytest.raises(RuntimeError):
        apply(torch, t)
    m = mg.tensor(start)
    before, version = m.data.copy(), m._version.value
    exc, val = outcome(lambda: apply(mg, m))
    assert exc is not None and issubclass(exc, RuntimeError), f"{exc}: {val}"
    np.testing.assert_array_equal(m.data, before)
    assert m._version.value == version


IN_PLACE = {
    "add_": lambda t: t.add_(1.0, alpha=2.0),
    "sub_": lambda t: t.sub_(1.0),
    "mul_": lambda t: t.mul_(2.0),
    "div_": lambda t: t.div_(2.0),
    "copy_": lambda t: t.copy_(t.detach() * 2),
    "zero_": lambda t: t.zero_(),
    "fill_": lambda t: t.fill_(3.0),
    "clamp_": lambda t: t.clamp_(0.0, 1.5),
    "__setitem__": lambda t: t.__setitem__(0, 5.0),
}


@pytest.mark.parametrize("name", list(IN_PLACE))
def test_in_place_on_a_leaf_requiring_grad_raises_and_works_under_no_grad(name: str) -> None:
    apply = IN_PLACE[name]
    expected = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        apply(expected)
    with torch.no_grad():
        apply(expected)
    ours = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        apply(ours)
    np.testing.assert_array_equal(ours.data, [1.0, 2.0])
    with mg.no_grad():
        result = apply(ours)
    assert result is ours or result is None
    same_tensor(ours, expected)
    assert ours.requires_grad and ours.is_leaf and ours.grad_fn is None


# ----------------------------------------------------------------------------- clone, detach, to


def test_clone_copies_memory_and_keeps_the_graph() -> None:
    xm = mg.tensor([1.0, 2.0], requires_grad=True)
    xt = torch.tensor([1.0, 2.0], requires_grad=True)
    cm, ct = xm.clone(), xt.clone()
    assert cm.requires_grad and not cm.is_leaf and ct.requires_grad and not ct.is_leaf
    assert not np.shares_memory(cm.data, xm.data)
    (cm * mg.tensor([3.0, 4.0])).sum().backward()
    (ct * torch.tensor([3.0, 4.0])).sum().backward()
    np.testing.assert_array_equal(xm.grad, xt.grad.numpy())
    plain = mg.tensor([1, 2])
    copy = plain.clone()
    copy.add_(1)
    same_tensor(plain, torch.tensor([1, 2]))
    assert not copy.requires_grad and copy.dtype == np.int64


def test_detach_shares_memory_is_a_leaf_and_keeps_dtype() -> None:
    for lib in (mg, torch):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        d = (x * 2).detach()
        assert d.is_leaf and not d.requires_grad and d.grad_fn is None
        d2 = x.detach()
        d2.add_(1.0)
        assert x.tolist() == [2.0, 3.0]
        assert as_np(d).dtype == np.float64


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda lib, t: t.to(lib.float64), id="to-f64"),
        pytest.param(lambda lib, t: t.to(dtype=lib.float64), id="to-dtype-kw"),
        pytest.param(lambda lib, t: t.double(), id="double"),
        pytest.param(lambda lib, t: t.to(lib.float64).float(), id="round-trip"),
        pytest.param(lambda lib, t: t.to(lib.int64), id="to-int64"),
        pytest.param(lambda lib, t: t.long(), id="long"),
    ],
)
@pytest.mark.parametrize("data", [[1.7, -2.5], [1, 2], [True, False]], ids=["f", "i", "b"])
def test_dtype_conversion_matches_torch(make: Callable[[Any, Any], Any], data: Any) -> None:
    same_tensor(make(mg, mg.tensor(data)), make(torch, torch.tensor(data)))


def test_to_same_dtype_returns_self() -> None:
    for lib in (mg, torch):
        t = lib.tensor([1.0])
        assert t.to(lib.float32) is t and t.float() is t
        d = lib.tensor([1.0], dtype=lib.float64)
        assert d.double() is d


def test_float_to_double_and_back_is_differentiable() -> None:
    xm = mg.tensor([1.0, 2.0], requires_grad=True)
    xt = torch.tensor([1.0, 2.0], requires_grad=True)
    for x, lib in ((xm, mg), (xt, torch)):
        y = x.double() * lib.tensor([3.0, 4.0], dtype=lib.float64)
        assert y.requires_grad and as_np(y).dtype == np.float64
        y.float().sum().backward()
    assert xm.grad.dtype == np.float32
    np.testing.assert_array_equal(xm.grad, xt.grad.numpy())


@pytest.mark.parametrize("dtype", ["int64", "bool_"])
def test_casting_a_grad_tensor_to_int_or_bool_gives_no_graph(dtype: str) -> None:
    """torch: the cast to a non-float dtype is not differentiable, so the result does not
    require grad (api.md: integer and bool tensors cannot require grad)."""
    t = torch.tensor([1.7, 2.2], requires_grad=True).to(getattr(torch, dtype.rstrip("_")))
    assert not t.requires_grad
    m = mg.tensor([1.7, 2.2], requires_grad=True).to(getattr(mg, dtype))
    assert not m.requires_grad and m.grad_fn is None, repr(m)


# ----------------------------------------------------------------------------- shape methods


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda lib: lib.tensor([1.0, 2.0]).T, id="T-1d"),
        pytest.param(lambda lib: lib.tensor(1.5).T, id="T-0d"),
        pytest.param(lambda lib: lib.tensor([1.0, 2.0]).t(), id="t-1d"),
        pytest.param(lambda lib: lib.tensor([[1.0, 2.0, 3.0]]).t(), id="t-2d"),
        pytest.param(lambda lib: lib.tensor(X3).transpose(-1, 0), id="transpose-neg"),
        pytest.param(lambda lib: lib.tensor(X3).transpose(1, 1), id="transpose-same"),
        pytest.param(lambda lib: lib.tensor([1.0, 2.0]).transpose(0, -1), id="transpose-1d"),
        pytest.param(lambda lib: lib.tensor(1.0).transpose(0, -1), id="transpose-0d"),
        pytest.param(lambda lib: lib.tensor(X3).permute(2, 0, 1), id="permute-ints"),
        pytest.param(lambda lib: lib.tensor(X3).permute((2, 0, 1)), id="permute-tuple"),
        pytest.param(lambda lib: lib.tensor(X3).permute([-1, 0, 1]), id="permute-list-neg"),
        pytest.param(lambda lib: lib.tensor(X3).squeeze(0), id="squeeze-non-1"),
        pytest.param(lambda lib: lib.tensor(X3).squeeze(-1), id="squeeze-non-1-neg"),
        pytest.param(lambda lib: lib.tensor([[[1.0]], [[2.0]]]).squeeze(-1), id="squeeze-1"),
        pytest.param(lambda lib: lib.tensor([[[1.0]], [[2.0]]]).squeeze((1, 2)), id="sq-tup"),
        pytest.param(lambda lib: lib.tensor([[[1.0, 2.0]]]).squeeze(), id="squeeze-all"),
        pytest.param(lambda lib: lib.tensor(1.0).squeeze(0), id="squeeze-0d"),
        pytest.param(lambda lib: lib.tensor([[1.0], [2.0]]).expand(-1, 3), id="expand-minus1"),
        pytest.param(lambda lib: lib.tensor([1.0, 2.0]).expand(3, 2), id="expand-lead"),
        pytest.param(lambda lib: lib.tensor([1.0, 2.0]).expand(4, 3, -1), id="expand-lead-m1"),
        pytest.param(lambda lib: lib.tensor([1.0, 2.0]).expand((2, 2)), id="expand-tuple"),
        pytest.param(lambda lib: lib.tensor([1.0, 2.0]).expand([2, 2]), id="expand-list"),
        pytest.param(lambda lib: lib.tensor(1.0).expand(2, 3), id="expand-0d"),
        pytest.param(lambda lib: lib.tensor([[1.0]]).expand(0, 2), id="expand-to-0"),
        pytest.param(lambda lib: lib.tensor(X3).flatten(), id="flatten"),
        pytest.param(lambda lib: lib.tensor(X3).flatten(1), id="flatten-1"),
        pytest.param(lambda lib: lib.tensor(X3).flatten(0, 1), id="flatten-0-1"),
        pytest.param(lambda lib: lib.tensor(X3).flatten(-2, -1), id="flatten-neg"),
        pytest.param(lambda lib: lib.tensor(X3).flatten(1, 1), id="flatten-same"),
        pytest.param(lambda lib: lib.tensor(1.0).flatten(), id="flatten-0d"),
        pytest.param(lambda lib: lib.tensor(np.zeros((2, 0, 3))).flatten(1), id="flatten-empty"),
        pytest.param(lambda lib: lib.tensor(X3).view(-1), id="view-m1"),
        pytest.param(lambda lib: lib.tensor(X3).view(2, -1, 2), id="view-mid-m1"),
        pytest.param(lambda lib: lib.tensor(X3).view((4, -1)), id="view-tuple"),
        pytest.param(lambda lib: lib.tensor(X3).reshape([6, -1]), id="reshape-list"),
        pytest.param(lambda lib: lib.tensor([1.0]).reshape(()), id="reshape-0d"),
        pytest.param(lambda lib: lib.tensor(X3).unsqueeze(-1), id="unsqueeze-neg"),
    ],
)
@pytest.mark.filterwarnings("ignore:The use of `x.T` on tensors")
@pytest.mark.filterwarnings("ignore:Tensor.T is deprecated on 0-D")
def test_shape_methods_match_torch(make: Fn) -> None:
    both(make)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda lib: lib.tensor([[1.0, 2.0]]).transpose(0, 2), id="transpose-oob"),
        pytest.param(lambda lib: lib.tensor(X3).permute(0, 0, 1), id="permute-dup"),
        pytest.param(lambda lib: lib.tensor(X3).permute(0, 1), id="permute-short"),
        pytest.param(lambda lib: lib.tensor([[1.0, 2.0]]).squeeze(2), id="squeeze-oob"),
        pytest.param(lambda lib: lib.tensor(1.0).squeeze(1), id="squeeze-0d-oob"),
        pytest.param(lambda lib: lib.tensor([1.0, 2.0]).expand(-1, 2), id="expand-m1-lead"),
        pytest.param(lambda lib: lib.tensor(X3).expand(3), id="expand-fewer"),
        pytest.param(lambda lib: lib.tensor([1.0, 2.0]).expand(3), id="expand-mismatch"),
        pytest.param(lambda lib: lib.tensor(X3).flatten(2, 1), id="flatten-start>end"),
        pytest.param(lambda lib: lib.tensor(X3).flatten(0, 3), id="flatten-oob"),
        pytest.param(lambda lib: lib.tensor(X3).reshape(-1, -1), id="reshape-two-m1"),
        pytest.param(lambda lib: lib.tensor(X3).view(5, -1), id="view-bad"),
        pytest.param(lambda lib: lib.tensor([1.0, 2.0]).reshape(-2), id="reshape-minus-2"),
        pytest.param(lambda lib: lib.tensor(X3).size(3), id="size-oob"),
        pytest.param(lambda lib: lib.tensor(X3).size(-4), id="size-oob-neg"),
        pytest.param(lambda lib: lib.tensor(1.0).size(0), id="size-0d"),
        pytest.param(lambda lib: lib.tensor(1.0).size(-1), id="size-0d-neg"),
    ],
)
def test_invalid_shape_arguments_raise_like_torch(make: Fn) -> None:
    same_error(lambda: make(mg), lambda: make(torch))


def test_expand_is_a_read_only_view_with_summed_gradient() -> None:
    xm = mg.tensor([1.0, 2.0], requires_grad=True)
    xt = torch.tensor([1.0, 2.0], requires_grad=True)
    w = np.arange(8.0, dtype=np.float32).reshape(4, 2)
    (xm.expand(4, -1) * mg.tensor(w)).sum().backward()
    (xt.expand(4, -1) * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(xm.grad, xt.grad.numpy())
    same_error(
        lambda: mg.tensor([[1.0], [2.0]]).expand(2, 3).add_(1.0),
        lambda: torch.tensor([[1.0], [2.0]]).expand(2, 3).add_(1.0),
    )


@pytest.mark.parametrize("data", [X3, [1.0, 2.0], 3.0, np.zeros((2, 0))])
def test_numel_ndim_shape_and_size_match_torch(data: Any) -> None:
    m, t = mg.tensor(data), torch.tensor(data)
    assert m.numel() == t.numel() and m.ndim == t.ndim and m.dim() == t.dim()
    assert m.shape == tuple(t.shape) and m.size() == tuple(t.size())
    assert isinstance(m.shape, tuple) and isinstance(m.size(), tuple)
    for d in range(-m.ndim, m.ndim):
        assert m.size(d) == t.size(d) and m.size(dim=d) == t.size(dim=d)


# ----------------------------------------------------------------------------- repr


def _torch_repr(t: Any) -> str:
    """torch's repr in minigrad's spelling: dtype names without "torch.", no overload number."""
    text = repr(t).replace("torch.", "")
    return re.sub(r"(grad_fn=<\w+?)\d+>", r"\1>", text)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda lib: lib.tensor([1, 2]), id="int"),
        pytest.param(lambda lib: lib.tensor(3), id="int-0d"),
        pytest.param(lambda lib: lib.tensor([True, False]), id="bool"),
        pytest.param(lambda lib: lib.tensor([1.0, 2.0]), id="whole-floats"),
        pytest.param(lambda lib: lib.tensor([[1.0, 2.0], [3.0, 4.0]]), id="2d"),
        pytest.param(lambda lib: lib.tensor([1.0, 2.0], dtype=lib.float64), id="f64"),
        pytest.param(lambda lib: lib.tensor(np.array([1, 2], dtype=np.int32)), id="int32"),
        pytest.param(lambda lib: lib.tensor([1.0, 2.0], requires_grad=True), id="requires-grad"),
        pytest.param(lambda lib: lib.tensor([1.0], dtype=lib.float64, requires_grad=True)),
        pytest.param(lambda lib: lib.tensor([1.0, 2.0], requires_grad=True) * 2, id="grad-fn"),
    ],
)
def test_repr_has_pytorchs_form(make: Fn) -> None:
    assert repr(make(mg)) == _torch_repr(make(torch))


def test_int_bool_conversions_and_comparison_with_none_like_torch() -> None:
    values = [1.5, -2.0, 0.0]
    ours, theirs = mg.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    for method in ("int", "long", "bool"):
        got, expected = getattr(ours, method)(), getattr(theirs, method)()
        same_tensor(got, expected)
        assert got.grad_fn is None and not got.requires_grad
    assert (ours == None) is False and (theirs == None) is False  # noqa: E711
    assert (ours != None) is True and (theirs != None) is True  # noqa: E711
    with pytest.raises(ValueError, match="only one element"):
        int(theirs)
    with pytest.raises(ValueError, match="only one element"):
        int(ours)
    with pytest.raises(ValueError, match="only one element"):
        float(ours)
    assert int(mg.tensor([7.9])) == int(torch.tensor([7.9])) == 7
