"""The Tensor API: construction and dtypes, factories, attributes, values out, grad mode,
hooks, graph inspection, in-place ops, and errors that say what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd import AccumulateGrad


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- mg.tensor dtypes


@pytest.mark.parametrize(
    ("data", "dtype"),
    [
        (1.5, np.float32),
        ([1.0, 2.0], np.float32),
        ([[1, 2.5], [3, 4]], np.float32),
        (3, np.int64),
        ([1, 2, 3], np.int64),
        (True, np.bool_),
        ([True, False], np.bool_),
        (np.array([1.0, 2.0]), np.float64),
        (np.array([1.0], dtype=np.float32), np.float32),
        (np.array([1, 2], dtype=np.int32), np.int32),
        (np.float64(2.5), np.float64),
    ],
)
def test_tensor_dtype_follows_pytorch_rules(data, dtype):
    assert mg.tensor(data).dtype == dtype


def test_tensor_dtypes_match_torch_for_python_values(torch_module):
    torch = torch_module
    for data in (1.5, [1.0, 2.0], 3, [1, 2], True, [[True]]):
        expected = torch.tensor(data).numpy().dtype
        assert mg.tensor(data).dtype == expected, data


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (mg.float64, np.float64),
        (mg.float32, np.float32),
        (mg.int64, np.int64),
        (np.float16, np.float16),
        (np.dtype("float64"), np.float64),
    ],
)
def test_tensor_dtype_argument_overrides(dtype, expected):
    t = mg.tensor([1, 2], dtype=dtype)
    assert t.dtype == expected
    np.testing.assert_array_equal(t.data, [1, 2])


@pytest.mark.parametrize(
    "source", [np.array([1.0, 2.0]), mg.tensor(np.array([1.0, 2.0])), [1.0, 2.0]]
)
def test_tensor_copies_its_input(source):
    t = mg.tensor(source)
    if isinstance(source, np.ndarray):
        source[0] = 100.0
        assert not np.shares_memory(t.data, source)
    elif isinstance(source, mg.Tensor):
        source.data[0] = 100.0
        assert not np.shares_memory(t.data, source.data)
    assert t.data[0] == 1.0


def test_tensor_rejects_non_numeric_data():
    with pytest.raises(TypeError, match="cannot make a tensor"):
        mg.tensor(["a", "b"])


def test_tensor_name_is_kept_and_shown():
    t = mg.tensor([1.0], requires_grad=True, name="w")
    assert t.name == "w"
    assert "name='w'" in repr(t)
    assert "requires_grad=True" in repr(t)


# ----------------------------------------------------------------------------- values out


def test_numpy_and_asarray_share_memory():
    t = mg.tensor([1.0, 2.0])
    assert t.numpy() is t.data
    assert np.shares_memory(np.asarray(t), t.data)
    t.numpy()[0] = 5.0
    assert t.data[0] == 5.0


def test_asarray_with_dtype_converts():
    t = mg.tensor([1.5, 2.5])
    out = np.asarray(t, dtype=np.float64)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [1.5, 2.5])


def test_detach_shares_memory_and_has_no_graph():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    d = y.detach()
    assert np.shares_memory(d.data, y.data)
    assert d.grad_fn is None
    assert not d.requires_grad
    assert d.is_leaf
    d.data[0] = 7.0
    assert y.data[0] == 7.0


def test_item_and_tolist_give_python_values():
    assert mg.tensor([[2.5]]).item() == 2.5
    assert isinstance(mg.tensor([[2.5]]).item(), float)
    assert isinstance(mg.tensor(3).item(), int)
    assert mg.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert mg.tensor([1.5, 2.0], requires_grad=True).tolist() == [1.5, 2.0]


def test_item_of_several_elements_raises():
    with pytest.raises(RuntimeError, match="2 elements cannot be converted"):
        mg.tensor([1.0, 2.0]).item()


# ----------------------------------------------------------------------------- factories


@pytest.mark.parametrize(
    ("make", "shape", "dtype", "value"),
    [
        (lambda: mg.zeros(2, 3), (2, 3), np.float32, 0.0),
        (lambda: mg.zeros((2, 3)), (2, 3), np.float32, 0.0),
        (lambda: mg.ones([4]), (4,), np.float32, 1.0),
        (lambda: mg.ones(2, 2, dtype=mg.float64), (2, 2), np.float64, 1.0),
        (lambda: mg.full((2, 3), 1.5), (2, 3), np.float32, 1.5),
        (lambda: mg.full((2,), 7), (2,), np.int64, 7),
        (lambda: mg.full((2,), 7, dtype=mg.float64), (2,), np.float64, 7.0),
        (lambda: mg.zeros_like(mg.ones(3, dtype=mg.float64)), (3,), np.float64, 0.0),
        (lambda: mg.ones_like(mg.zeros(2, 1)), (2, 1), np.float32, 1.0),
        (lambda: mg.ones_like(mg.zeros(2), dtype=np.dtype("float64")), (2,), np.float64, 1.0),
        (lambda: mg.zeros_like(mg.ones(2), dtype=np.dtype("int64")), (2,), np.int64, 0),
    ],
)
def test_constant_factories(make, shape, dtype, value):
    t = make()
    assert t.shape == shape
    assert t.dtype == dtype
    assert (t.data == value).all()
    assert t.is_leaf and not t.requires_grad


def test_factories_match_torch(torch_module):
    torch = torch_module
    pairs = [
        (mg.zeros(2, 3), torch.zeros(2, 3)),
        (mg.full((2,), 7), torch.full((2,), 7)),
        (mg.full((2,), 1.5), torch.full((2,), 1.5)),
        (mg.arange(5), torch.arange(5)),
        (mg.arange(1, 7, 2), torch.arange(1, 7, 2)),
        (mg.arange(0, 1, 0.25), torch.arange(0, 1, 0.25)),
        (mg.arange(3.0), torch.arange(3.0)),
    ]
    for ours, theirs in pairs:
        expected = theirs.numpy()
        assert ours.dtype == expected.dtype
        np.testing.assert_array_equal(ours.data, expected)


def test_factories_with_requires_grad_are_leaves():
    for t in (mg.zeros(2, requires_grad=True), mg.randn(2, requires_grad=True)):
        assert t.requires_grad and t.is_leaf and t.grad_fn is None


def test_random_factories_follow_manual_seed():
    mg.manual_seed(1234)
    a, u = mg.randn(3, 4), mg.rand(5)
    mg.manual_seed(1234)
    b, v = mg.randn(3, 4), mg.rand(5)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(u.data, v.data)
    assert not np.array_equal(mg.randn(3, 4).data, a.data)  # the stream moves on
    assert a.dtype == np.float32
    assert ((u.data >= 0) & (u.data < 1)).all()


def test_random_factories_take_a_generator_and_leave_the_default_alone():
    mg.manual_seed(0)
    expected_default = mg.randn(3).data
    mg.manual_seed(0)
    a = mg.randn(2, 2, generator=np.random.default_rng(7), dtype=mg.float64)
    b = mg.randn(2, 2, generator=np.random.default_rng(7), dtype=mg.float64)
    r = mg.rand(4, generator=np.random.default_rng(8))
    assert a.dtype == np.float64
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(r.data, np.random.default_rng(8).random(4, dtype=np.float32))
    np.testing.assert_array_equal(mg.randn(3).data, expected_default)


# ----------------------------------------------------------------------------- attributes


def test_shape_ndim_numel_len():
    t = mg.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4)
    assert isinstance(t.shape, tuple)
    assert t.ndim == 3
    assert t.numel() == 24
    assert len(t) == 2
    s = mg.tensor(1.0)
    assert (s.shape, s.ndim, s.numel()) == ((), 0, 1)


def test_len_of_a_0d_tensor_raises():
    with pytest.raises(TypeError, match="0-d"):
        len(mg.tensor(1.0))


def test_T_reverses_all_dims_and_backpropagates(torch_module):
    torch = torch_module
    data = rng(1).standard_normal((2, 3, 4))
    upstream = rng(2).standard_normal((4, 3, 2))
    x = mg.tensor(data, requires_grad=True)
    y = x.T
    assert y.shape == (4, 3, 2)
    np.testing.assert_array_equal(y.data, np.transpose(data))
    y.backward(upstream)
    tx = torch.tensor(data, requires_grad=True)
    tx.permute(2, 1, 0).backward(torch.tensor(upstream))
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())


def test_is_leaf_and_grad_fn():
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    b = mg.tensor([1.0, 2.0])
    y = a * b
    assert a.is_leaf and a.grad_fn is None
    assert b.is_leaf and b.grad_fn is None
    assert not y.is_leaf and y.grad_fn is not None and y.requires_grad
    z = b * 2.0  # nothing requires grad: no graph
    assert z.is_leaf and z.grad_fn is None and not z.requires_grad


def test_grad_fn_is_none_under_no_grad():
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.no_grad():
        y = (a * 2.0).exp()
    assert y.grad_fn is None
    assert not y.requires_grad
    assert y.is_leaf


# ----------------------------------------------------------------------------- requires_grad


@pytest.mark.parametrize(
    "make",
    [
        lambda: mg.tensor([1, 2], requires_grad=True),
        lambda: mg.tensor([True, False], requires_grad=True),
        lambda: mg.arange(3, requires_grad=True),
        lambda: mg.zeros(2, dtype=mg.int64, requires_grad=True),
        lambda: mg.full((2,), 3, requires_grad=True),
    ],
)
def test_requires_grad_on_integer_or_bool_data_raises(make):
    with pytest.raises(RuntimeError, match="only floating point tensors can require gradients"):
        make()


def test_requires_grad_underscore_on_integer_data_raises_and_changes_nothing():
    t = mg.tensor([1, 2])
    with pytest.raises(RuntimeError, match="only floating point tensors can require gradients"):
        t.requires_grad_()
    assert not t.requires_grad


def test_requires_grad_underscore_returns_self_and_can_be_switched_off():
    t = mg.tensor([1.0])
    assert t.requires_grad_() is t
    assert t.requires_grad
    assert t.requires_grad_(False) is t
    assert not t.requires_grad


def test_requires_grad_of_a_non_leaf_cannot_be_switched_off():
    y = mg.tensor([1.0], requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)
    assert y.requires_grad


# ----------------------------------------------------------------------------- comparisons, hash


@pytest.mark.parametrize(
    ("compare", "expected"),
    [
        (lambda t: t > 1.5, [False, True, True]),
        (lambda t: t >= 2.0, [False, True, True]),
        (lambda t: t < 2, [True, False, False]),
        (lambda t: t <= 2.0, [True, True, False]),
        (lambda t: t == 2.0, [False, True, False]),
        (lambda t: t != 2.0, [True, False, True]),
        (lambda t: t == mg.tensor([1.0, 0.0, 3.0]), [True, False, True]),
        (lambda t: 2.0 < t, [False, False, True]),
        (lambda t: np.array([0.0, 2.0, 5.0]) < t, [True, False, False]),
    ],
)
def test_comparisons_return_bool_tensors_without_graph(compare, expected):
    t = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    out = compare(t)
    assert isinstance(out, mg.Tensor)
    assert out.dtype == np.bool_
    assert out.grad_fn is None and not out.requires_grad
    assert out.tolist() == expected


def test_tensors_hash_by_identity():
    a = mg.tensor([1.0, 2.0])
    b = mg.tensor([1.0, 2.0])  # equal values, a different tensor
    table = {a: "a", b: "b"}
    assert table[a] == "a" and table[b] == "b"
    assert len({a, b, a}) == 2
    assert hash(a) != hash(b)


# ----------------------------------------------------------------------------- numpy on the left


@pytest.mark.parametrize(
    ("name", "mg_fn", "torch_fn"),
    [
        ("add", lambda arr, t: arr + t, lambda arr, t: arr + t),
        ("sub", lambda arr, t: arr - t, lambda arr, t: arr - t),
        ("mul", lambda arr, t: arr * t, lambda arr, t: arr * t),
        ("div", lambda arr, t: arr / t, lambda arr, t: arr / t),
        ("matmul", lambda arr, t: arr @ t, lambda arr, t: arr @ t),
    ],
)
def test_numpy_array_on_the_left_gives_a_tensor_with_grads(name, mg_fn, torch_fn, torch_module):
    torch = torch_module
    arr = rng(3).standard_normal((3, 3))
    data = rng(4).standard_normal((3, 3)) + 3.0
    upstream = rng(5).standard_normal((3, 3))
    t = mg.tensor(data, requires_grad=True)
    out = mg_fn(arr, t)
    assert isinstance(out, mg.Tensor), name
    assert out.grad_fn is not None
    out.backward(upstream)
    tt = torch.tensor(data, requires_grad=True)
    torch_fn(torch.tensor(arr), tt).backward(torch.tensor(upstream))
    np.testing.assert_allclose(out.data, torch_fn(arr, data), rtol=1e-12)
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-12)


def test_numpy_scalar_does_not_change_dtype_as_in_torch(torch_module):
    torch = torch_module
    t = mg.ones(2)
    for scalar in (np.float64(2.0), np.int64(2), np.float32(2.0)):
        assert (scalar * t).dtype == (scalar * torch.ones(2)).numpy().dtype
        assert (t + scalar).dtype == np.float32


# ----------------------------------------------------------------------------- grad mode


def test_no_grad_and_enable_grad_as_context_managers():
    x = mg.tensor([1.0], requires_grad=True)
    assert mg.is_grad_enabled()
    with mg.no_grad():
        assert not mg.is_grad_enabled()
        assert not (x * 2.0).requires_grad
        with mg.enable_grad():
            assert mg.is_grad_enabled()
            assert (x * 2.0).requires_grad
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()


def test_no_grad_restores_grad_mode_after_an_exception():
    with pytest.raises(ValueError):
        with mg.no_grad():
            raise ValueError("inside")
    assert mg.is_grad_enabled()


def test_no_grad_and_enable_grad_as_decorators():
    x = mg.tensor([1.0], requires_grad=True)

    @mg.no_grad()
    def frozen(t):
        return t * 2.0, mg.is_grad_enabled()

    @mg.no_grad
    def frozen_bare(t):
        return t * 2.0, mg.is_grad_enabled()

    @mg.enable_grad()
    def recorded(t):
        return t * 2.0

    for fn in (frozen, frozen_bare):
        y, mode = fn(x)
        assert not mode and y.grad_fn is None
        assert mg.is_grad_enabled()
    with mg.no_grad():
        z = recorded(x)
        assert not mg.is_grad_enabled()
    assert z.grad_fn is not None


def test_no_grad_decorator_survives_recursion():
    @mg.no_grad()
    def depth(n):
        if n == 0:
            return mg.is_grad_enabled()
        return depth(n - 1)

    assert depth(3) is False
    assert mg.is_grad_enabled()


# ----------------------------------------------------------------------------- hooks


def test_retain_grad_keeps_the_gradient_of_a_non_leaf(torch_module):
    torch = torch_module
    data, upstream = rng(6).standard_normal(4), rng(7).standard_normal(4)
    x = mg.tensor(data, requires_grad=True)
    h = x.tanh()
    h.retain_grad()
    (h * h).backward(upstream)
    tx = torch.tensor(data, requires_grad=True)
    th = tx.tanh()
    th.retain_grad()
    (th * th).backward(torch.tensor(upstream))
    np.testing.assert_allclose(h.grad, th.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)


def test_register_hook_gets_an_ndarray_and_can_replace_the_gradient():
    x = mg.tensor([1.0, 2.0], dtype=mg.float64, requires_grad=True)
    h = x * 3.0
    seen = []

    def double(grad):
        seen.append(grad.copy())
        assert type(grad) is np.ndarray
        return grad * 2.0

    h.register_hook(double)
    h.backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(seen[0], [1.0, 10.0])
    np.testing.assert_array_equal(x.grad, [6.0, 60.0])  # the doubled gradient flowed on


def test_hook_returning_none_keeps_the_gradient_and_leaf_hooks_run():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda grad: seen.append(grad.copy()))
    (x * 4.0).backward(np.ones(2, dtype=np.float32))
    np.testing.assert_array_equal(seen[0], [4.0, 4.0])
    np.testing.assert_array_equal(x.grad, [4.0, 4.0])


def test_hook_of_a_tensor_used_twice_runs_once_with_the_summed_gradient():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1.0
    calls = []
    h.register_hook(lambda grad: calls.append(grad.copy()))
    (h * 2.0 + h * 3.0).backward(np.ones(2, dtype=np.float32))
    assert len(calls) == 1
    np.testing.assert_array_equal(calls[0], [5.0, 5.0])


def test_retain_grad_on_the_root_keeps_the_upstream_gradient():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    y.retain_grad()
    y.backward(np.array([0.5, -1.0]))
    np.testing.assert_array_equal(y.grad, [0.5, -1.0])
    assert y.grad.dtype == np.float32


def test_hook_handle_remove_unregisters_it():
    x = mg.tensor([1.0], requires_grad=True)
    handle = x.register_hook(lambda grad: grad * 100.0)
    (x * 1.0).backward(np.ones(1, dtype=np.float32))
    assert x.grad[0] == 100.0
    handle.remove()
    x.grad = None
    (x * 1.0).backward(np.ones(1, dtype=np.float32))
    assert x.grad[0] == 1.0


def test_hook_returning_a_wrong_shape_raises():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda grad: np.ones(3))
    with pytest.raises(RuntimeError, match=r"shape \(3,\).*shape \(2,\)"):
        (x * 2.0).backward(np.ones(2))
    assert x.grad is None


def test_register_hook_on_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        mg.tensor([1.0]).register_hook(lambda grad: grad)


# ----------------------------------------------------------------------------- graph inspection


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda x: x * 2.0, "MulBackward"),
        (lambda x: x + x, "AddBackward"),
        (lambda x: x.exp(), "ExpBackward"),
        (lambda x: x @ x, "MatMulBackward"),
        (lambda x: x.sum(), "SumBackward"),
        (lambda x: x[0], "GetItemBackward"),
    ],
)
def test_grad_fn_name(make, name):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    assert make(x).grad_fn.name() == name
    assert name in repr(make(x))


def test_next_functions_are_node_index_pairs_with_accumulate_grad():
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    b = mg.tensor([3.0, 4.0])
    h = a.exp()
    y = h * b + a
    add = y.grad_fn
    assert isinstance(add.next_functions, tuple)
    (mul, mul_index), (acc, acc_index) = add.next_functions
    assert (mul.name(), mul_index) == ("MulBackward", 0)
    assert isinstance(acc, AccumulateGrad)
    assert (acc.name(), acc.variable, acc_index) == ("AccumulateGrad", a, 0)
    assert mul.next_functions[0] == (h.grad_fn, 0)
    assert mul.next_functions[1] == (None, 0)  # b needs no gradient
    assert acc.next_functions == ()


def test_next_functions_index_names_the_output_of_a_multi_output_node():
    x = mg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)

    class Halves(mg.Function):
        @staticmethod
        def forward(ctx, v):
            return v[:2].copy(), v[2:].copy()

        @staticmethod
        def backward(ctx, g1, g2):
            return np.concatenate([g1, g2])

    first, second = Halves.apply(x)
    y = second * first
    assert y.grad_fn.next_functions == ((second.grad_fn, 1), (first.grad_fn, 0))


# ----------------------------------------------------------------------------- backward(gradient)


@pytest.mark.parametrize(
    "gradient",
    [
        mg.tensor([1.0, -2.0, 0.5]),
        [1.0, -2.0, 0.5],
        np.array([1.0, -2.0, 0.5]),
        np.array([1.0, -2.0, 0.5], dtype=np.float32),
        (1.0, -2.0, 0.5),
    ],
)
def test_backward_accepts_tensor_list_or_array(gradient):
    x = mg.tensor([1.0, 2.0, 3.0], dtype=mg.float64, requires_grad=True)
    (x * x).backward(gradient)
    np.testing.assert_allclose(x.grad, 2 * x.data * np.array([1.0, -2.0, 0.5]))


def test_backward_without_gradient_on_one_element_tensors():
    for shape in ((), (1,), (1, 1)):
        x = mg.tensor(np.full(shape, 3.0), requires_grad=True)
        (x * x).backward()
        np.testing.assert_array_equal(x.grad, np.full(shape, 6.0))


@pytest.mark.parametrize("dtype", [mg.float32, mg.float64, np.float16])
def test_gradients_keep_input_dtype_and_shape(dtype):
    x = mg.tensor(rng(8).standard_normal((2, 3)), dtype=dtype, requires_grad=True)
    w = mg.tensor(rng(9).standard_normal(3), requires_grad=True)  # float64
    (x * w).exp().backward(np.ones((2, 3)))
    assert x.grad.shape == (2, 3) and x.grad.dtype == dtype
    assert w.grad.shape == (3,) and w.grad.dtype == np.float64


def test_grad_is_owned_by_the_tensor():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = mg.tensor([1.0, 2.0], requires_grad=True)
    (x + y).backward(np.ones(2, dtype=np.float32))  # Add hands one array to both inputs
    assert not np.shares_memory(x.grad, y.grad)
    x.grad += 1.0
    np.testing.assert_array_equal(y.grad, [1.0, 1.0])


# ----------------------------------------------------------------------------- in-place ops


@pytest.mark.parametrize(
    ("name", "apply", "expected"),
    [
        ("add_", lambda t: t.add_(2.0), [3.0, 4.0, 5.0]),
        ("add_ alpha", lambda t: t.add_(mg.tensor([1.0, 1.0, 1.0]), alpha=2.0), [3.0, 4.0, 5.0]),
        ("sub_", lambda t: t.sub_(np.array([1.0, 1.0, 1.0])), [0.0, 1.0, 2.0]),
        ("mul_", lambda t: t.mul_(3.0), [3.0, 6.0, 9.0]),
        ("div_", lambda t: t.div_(2.0), [0.5, 1.0, 1.5]),
        ("zero_", lambda t: t.zero_(), [0.0, 0.0, 0.0]),
        ("fill_", lambda t: t.fill_(7.0), [7.0, 7.0, 7.0]),
        ("copy_", lambda t: t.copy_(mg.tensor([9.0, 8.0, 7.0])), [9.0, 8.0, 7.0]),
        ("copy_ broadcast", lambda t: t.copy_(np.float64(4.0)), [4.0, 4.0, 4.0]),
    ],
)
def test_in_place_ops_change_data_return_self_and_bump_version(name, apply, expected):
    t = mg.tensor([1.0, 2.0, 3.0])
    storage = t.data
    version = t._version.value
    assert apply(t) is t, name
    assert t.data is storage  # truly in place
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.data, expected)
    assert t._version.value == version + 1


def test_in_place_ops_match_torch(torch_module):
    torch = torch_module
    ours = mg.tensor([1.0, 2.0, 3.0])
    theirs = torch.tensor([1.0, 2.0, 3.0])
    for op in (
        lambda t: t.add_(1.5, alpha=2.0),
        lambda t: t.sub_(0.25),
        lambda t: t.mul_(-3.0),
        lambda t: t.div_(4.0),
    ):
        op(ours)
        op(theirs)
    np.testing.assert_allclose(ours.data, theirs.numpy())


@pytest.mark.parametrize(
    "apply",
    [
        lambda t: t.add_(1.0),
        lambda t: t.sub_(1.0),
        lambda t: t.mul_(2.0),
        lambda t: t.div_(2.0),
        lambda t: t.zero_(),
        lambda t: t.fill_(1.0),
        lambda t: t.copy_([5.0, 6.0]),
    ],
)
def test_in_place_on_a_leaf_requiring_grad_raises_and_changes_nothing(apply):
    t = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"leaf Variable that requires grad.*in-place"):
        apply(t)
    np.testing.assert_array_equal(t.data, [1.0, 2.0])
    assert t._version.value == 0


def test_in_place_on_a_leaf_requiring_grad_is_allowed_under_no_grad():
    t = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.no_grad():
        t.sub_(mg.tensor([0.5, 0.5]), alpha=2.0)
    np.testing.assert_array_equal(t.data, [0.0, 1.0])
    assert t.requires_grad and t.is_leaf
    assert t._version.value == 1


@pytest.mark.parametrize(
    ("make", "apply", "match"),
    [
        (lambda: mg.tensor([1.0, 2.0, 3.0]), lambda t: t.add_(np.ones((2, 3))), "shape"),
        (lambda: mg.tensor([1.0, 2.0, 3.0]), lambda t: t.copy_([1.0, 2.0]), "broadcast"),
        (lambda: mg.tensor([1, 2, 3]), lambda t: t.add_(1.5), "add_"),
        (lambda: mg.tensor([1, 2, 3]), lambda t: t.div_(2), "div_"),
        (lambda: mg.ones(3, 1).expand(3, 2), lambda t: t.mul_(2.0), "read-only view"),
    ],
)
def test_failed_in_place_op_leaves_data_and_version_unchanged(make, apply, match):
    t = make()
    before = t.data.copy()
    with pytest.raises(RuntimeError, match=match):
        apply(t)
    np.testing.assert_array_equal(t.data, before)
    assert t._version.value == 0


def test_detach_shares_the_version_counter():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    x.detach().add_(1.0)
    assert x._version.value == 1
    np.testing.assert_array_equal(x.data, [2.0, 3.0])


# ----------------------------------------------------------------------------- errors


def test_backward_on_a_tensor_that_does_not_require_grad_raises():
    x = mg.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        (x * 2.0).backward(np.ones(2))
    assert x.grad is None


def test_backward_on_a_non_scalar_without_gradient_raises():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"grad can be implicitly created only for scalar"):
        (x * 2.0).backward()
    assert x.grad is None


@pytest.mark.parametrize("gradient", [np.ones(3), np.ones((2, 1)), [1.0], 1.0])
def test_backward_with_a_gradient_of_the_wrong_shape_raises(gradient):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    x.grad = np.array([5.0, 5.0], dtype=np.float32)
    with pytest.raises(RuntimeError, match=r"Mismatch in shape.*\(2,\)"):
        (x * 2.0).backward(gradient)
    np.testing.assert_array_equal(x.grad, [5.0, 5.0])


def test_reshape_to_an_incompatible_size_raises():
    x = mg.zeros(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"reshape.*\[4, 2\].*6"):
        x.reshape(4, 2)


@pytest.mark.parametrize(
    "index", [5, -4, (0, 3), (slice(None), 7), np.array([0, 3]), mg.tensor([1, 9])]
)
def test_index_out_of_range_raises_index_error(index):
    x = mg.zeros(3, 3, requires_grad=True)
    with pytest.raises(IndexError, match="out of bounds"):
        x[index]
