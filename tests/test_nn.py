"""nn.Module, nn.Linear (the outer-product backward), LoRALinear, init and utils, against torch."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn
from minigrad.testing import assert_grads_match_torch

torch = pytest.importorskip("torch")


def mlp_pair(sizes=(3, 5, 4, 2)):
    """The same MLP in minigrad and torch (float64), with torch's weights copied over."""
    torch.manual_seed(0)
    layers_t, layers_m = [], []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers_t.append(torch.nn.Linear(a, b).double())
        layers_m.append(nn.Linear(a, b, dtype=mg.float64))
        if i < len(sizes) - 2:
            layers_t.append(torch.nn.Tanh())
            layers_m.append(nn.Tanh())
    tm, mm = torch.nn.Sequential(*layers_t), nn.Sequential(*layers_m)
    mm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return mm, tm


# ----------------------------------------------------------------------------- Linear


LINEAR_INPUT_SHAPES = [(4,), (1, 4), (6, 4), (2, 3, 4), (0, 4)]


@pytest.mark.parametrize("shape", LINEAR_INPUT_SHAPES, ids=str)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_linear_matches_torch(shape, bias):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(shape), rng.standard_normal((3, 4)), rng.standard_normal(3)
    if bias:
        assert_grads_match_torch(F.linear, torch.nn.functional.linear, x, w, b)
    else:
        assert_grads_match_torch(F.linear, torch.nn.functional.linear, x, w)


@pytest.mark.parametrize("shape", [(4,), (5, 4), (2, 2, 4)], ids=str)
def test_linear_gradcheck(shape):
    rng = np.random.default_rng(2)
    x = mg.tensor(rng.standard_normal(shape), requires_grad=True)
    w = mg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = mg.tensor(rng.standard_normal(3), requires_grad=True)
    assert mg.gradcheck(F.linear, (x, w, b))


def test_linear_weight_gradient_is_outer_product_for_one_sample():
    rng = np.random.default_rng(3)
    layer = nn.Linear(4, 3, dtype=mg.float64)
    x = mg.tensor(rng.standard_normal(4))
    delta = rng.standard_normal(3)
    layer(x).backward(delta)
    np.testing.assert_array_equal(layer.weight.grad, np.outer(delta, x.data))
    np.testing.assert_array_equal(layer.bias.grad, delta)


def test_linear_batch_weight_gradient_is_sum_of_outer_products():
    rng = np.random.default_rng(4)
    layer = nn.Linear(4, 3, dtype=mg.float64)
    X = rng.standard_normal((5, 4))
    D = rng.standard_normal((5, 3))
    layer(mg.tensor(X)).backward(D)
    expected = sum(np.outer(D[b], X[b]) for b in range(5))
    np.testing.assert_allclose(layer.weight.grad, expected, rtol=1e-12)
    assert layer.weight.grad.flags.c_contiguous  # not a transposed view
    assert layer(mg.tensor(X)).grad_fn.name() == "LinearBackward"


def test_linear_3d_input_weight_gradient_sums_outer_products_over_batch_and_tokens():
    rng = np.random.default_rng(6)
    layer = nn.Linear(4, 3, dtype=mg.float64)
    X = rng.standard_normal((2, 5, 4))  # (batch, tokens, in): flattened into 10 samples
    D = rng.standard_normal((2, 5, 3))
    layer(mg.tensor(X)).backward(D)
    expected = sum(np.outer(D[b, t], X[b, t]) for b in range(2) for t in range(5))
    np.testing.assert_allclose(layer.weight.grad, expected, rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, D.sum((0, 1)), rtol=1e-12)


def test_linear_is_one_node_not_a_chain():
    layer = nn.Linear(4, 3)
    out = layer(mg.randn(2, 4))
    names = [n.name() if n is not None else None for n, _ in out.grad_fn.next_functions]
    assert names == [None, "AccumulateGrad", "AccumulateGrad"]


def test_linear_wrong_in_features_raises():
    layer = nn.Linear(4, 3)
    with pytest.raises(RuntimeError, match=r"in_features=4.*\(2, 5\)"):
        layer(mg.randn(2, 5))


def test_linear_default_init_bounds_and_dtype():
    layer = nn.Linear(100, 50, generator=np.random.default_rng(0))
    bound = 1 / math.sqrt(100)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    assert layer.weight.shape == (50, 100) and layer.bias.shape == (50,)
    assert np.abs(layer.weight.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.9 * bound  # really uniform over the range
    assert np.abs(layer.bias.data).max() <= bound


def test_linear_generator_makes_weights_reproducible():
    a = nn.Linear(5, 3, generator=np.random.default_rng(7))
    b = nn.Linear(5, 3, generator=np.random.default_rng(7))
    c = nn.Linear(5, 3, generator=np.random.default_rng(8))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert not np.array_equal(a.weight.data, c.weight.data)


def test_manual_seed_makes_linear_reproducible():
    mg.manual_seed(3)
    a = nn.Linear(5, 3)
    mg.manual_seed(3)
    b = nn.Linear(5, 3)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)


# ----------------------------------------------------------------------------- Module


def test_state_dict_keys_match_torch():
    mm, tm = mlp_pair()
    assert list(mm.state_dict()) == list(tm.state_dict())
    assert [n for n, _ in mm.named_parameters()] == [n for n, _ in tm.named_parameters()]


def test_forward_and_backward_match_torch_after_loading_weights():
    mm, tm = mlp_pair()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 3))
    g = rng.standard_normal((7, 2))
    out_m, out_t = mm(mg.tensor(x)), tm(torch.tensor(x))
    np.testing.assert_allclose(out_m.data, out_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    out_m.backward(g)
    out_t.backward(torch.tensor(g))
    for (name, pm), (_, pt) in zip(mm.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(pm.grad, pt.grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=name)


def test_weights_move_from_minigrad_to_torch():
    mm, tm = mlp_pair()
    for p in mm.parameters():
        p.data[...] = np.random.default_rng(9).standard_normal(p.shape)
    tm.load_state_dict({k: torch.tensor(v) for k, v in mm.state_dict().items()})
    x = np.random.default_rng(6).standard_normal((2, 3))
    np.testing.assert_allclose(
        mm(mg.tensor(x)).data, tm(torch.tensor(x)).detach().numpy(), rtol=1e-12
    )


def test_state_dict_returns_copies():
    layer = nn.Linear(2, 2)
    sd = layer.state_dict()
    sd["weight"][...] = 123.0
    assert not np.any(layer.weight.data == 123.0)


def test_load_state_dict_shape_mismatch_names_key_and_shapes_and_changes_nothing():
    layer = nn.Linear(3, 2)
    before = layer.state_dict()
    bad = {"weight": np.zeros((2, 3)), "bias": np.zeros(5)}
    with pytest.raises(RuntimeError, match=r'"bias".*\(5,\).*\(2,\)'):
        layer.load_state_dict(bad)
    for k, v in layer.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_load_state_dict_missing_and_unexpected_keys():
    layer = nn.Linear(3, 2)
    before = layer.weight.data.copy()
    with pytest.raises(RuntimeError, match='missing key "bias"'):
        layer.load_state_dict({"weight": np.ones((2, 3))})
    np.testing.assert_array_equal(layer.weight.data, before)
    with pytest.raises(RuntimeError, match='unexpected key "extra"'):
        layer.load_state_dict({"weight": np.ones((2, 3)), "bias": np.ones(2), "extra": 1})
    result = layer.load_state_dict({"weight": np.ones((2, 3))}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == []
    np.testing.assert_array_equal(layer.weight.data, np.ones((2, 3)))


def test_load_state_dict_keeps_dtype_and_bumps_version():
    layer = nn.Linear(3, 2)  # float32
    version = layer.weight._version.value
    layer.load_state_dict({"weight": np.ones((2, 3)), "bias": [1.0, 2.0]})
    assert layer.weight.dtype == np.float32
    assert layer.weight._version.value == version + 1


def test_module_registration_order_children_modules_and_repr():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(2, 3)
            self.act = nn.ReLU()
            self.fc2 = nn.Linear(3, 1, bias=False)
            self.scale = nn.Parameter(np.ones(1))
            self.note = "not registered"

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x))) * self.scale

    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "scale",
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
    ]
    assert [type(m).__name__ for m in net.children()] == ["Linear", "ReLU", "Linear"]
    assert len(list(net.modules())) == 4
    assert net.fc2.bias is None
    assert "(fc1): Linear(in_features=2, out_features=3, bias=True)" in repr(net)
    assert "(fc2): Linear(in_features=3, out_features=1, bias=False)" in repr(net)
    assert net(mg.randn(4, 2)).shape == (4, 1)


def test_sequential_repr_matches_torch():
    mm, tm = mlp_pair()
    assert repr(mm) == repr(tm)


def test_module_attribute_before_init_raises_clearly():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_train_eval_propagate():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Sequential(nn.Dropout(0.1)))
    net.eval()
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_zero_grad_set_to_none_and_zeros():
    layer = nn.Linear(2, 2)
    layer(mg.randn(3, 2)).sum().backward()
    grad = layer.weight.grad
    layer.zero_grad(set_to_none=False)
    assert layer.weight.grad is grad and not grad.any()
    layer.zero_grad()
    assert layer.weight.grad is None and layer.bias.grad is None


def test_to_double_and_float_keep_parameter_objects():
    layer = nn.Linear(2, 2)
    weight = layer.weight
    layer.double()
    assert layer.weight is weight and weight.dtype == np.float64
    layer.float()
    assert weight.dtype == np.float32
    assert next(iter(layer.parameters())) is weight


def test_sequential_indexing_len_iter_append():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    assert isinstance(seq[0], nn.Linear) and isinstance(seq[-1], nn.ReLU)
    assert len(seq) == 2 and len(seq[0:1]) == 1
    seq.append(nn.Linear(3, 1))
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_shared_parameter_listed_once():
    layer = nn.Linear(2, 2)
    seq = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(list(seq.parameters())) == 2


# ----------------------------------------------------------------------------- layers


def test_flatten_identity_softmax_layers_match_torch():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    pairs = [
        (nn.Flatten(), torch.nn.Flatten()),
        (nn.Flatten(0, 1), torch.nn.Flatten(0, 1)),
        (nn.Identity(), torch.nn.Identity()),
        (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
        (nn.Softmax(dim=-1), torch.nn.Softmax(dim=-1)),
    ]
    for mine, theirs in pairs:
        assert_grads_match_torch(mine, theirs, x)


# ----------------------------------------------------------------------------- LoRA


def test_lora_starts_equal_to_base_and_freezes_it():
    base = nn.Linear(6, 4, dtype=mg.float64)
    lora = nn.LoRALinear(base, rank=2, alpha=4.0)
    x = mg.tensor(np.random.default_rng(0).standard_normal((3, 6)))
    np.testing.assert_array_equal(lora(x).data, base(x).data)
    assert not base.weight.requires_grad and not base.bias.requires_grad
    assert lora.base is base
    assert lora.A.shape == (2, 6) and lora.B.shape == (4, 2) and not lora.B.data.any()
    assert [n for n, p in lora.named_parameters() if p.requires_grad] == ["A", "B"]


def test_lora_gradients_match_torch_and_merged_weight():
    rng = np.random.default_rng(1)
    base = nn.Linear(6, 4, dtype=mg.float64)
    lora = nn.LoRALinear(base, rank=3, alpha=2.0)
    with mg.no_grad():
        lora.B.copy_(rng.standard_normal((4, 3)))
    W, b = base.weight.data, base.bias.data
    A, B = lora.A.data, lora.B.data
    x = rng.standard_normal((5, 6))
    g = rng.standard_normal((5, 4))

    out = lora(mg.tensor(x))
    out.backward(g)
    tA = torch.tensor(A, requires_grad=True)
    tB = torch.tensor(B, requires_grad=True)
    tx = torch.tensor(x)
    tout = tx @ torch.tensor(W).T + torch.tensor(b) + (2.0 / 3) * (tx @ tA.T @ tB.T)
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(lora.A.grad, tA.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(lora.B.grad, tB.grad.numpy(), rtol=1e-10)
    assert base.weight.grad is None

    merged = lora.merged_weight()
    assert isinstance(merged, np.ndarray)
    np.testing.assert_allclose(merged, W + (2.0 / 3) * B @ A, rtol=1e-12)
    rank_one_sum = W + (2.0 / 3) * sum(np.outer(B[:, r], A[r]) for r in range(3))
    np.testing.assert_allclose(merged, rank_one_sum, rtol=1e-12)
    np.testing.assert_allclose(x @ merged.T + b, out.data, rtol=1e-10)
    assert np.linalg.matrix_rank(merged - W) == 3


def test_lora_rejects_bad_arguments():
    with pytest.raises(ValueError, match="rank"):
        nn.LoRALinear(nn.Linear(2, 2), rank=0)
    with pytest.raises(TypeError, match="Linear"):
        nn.LoRALinear(nn.ReLU(), rank=1)


# ----------------------------------------------------------------------------- init


@pytest.mark.parametrize(
    ("fn", "expected_std"),
    [
        (lambda t, g: nn.init.kaiming_normal_(t, generator=g), math.sqrt(2 / 400)),
        (lambda t, g: nn.init.kaiming_uniform_(t, generator=g), math.sqrt(2 / 400)),
        (lambda t, g: nn.init.xavier_normal_(t, generator=g), math.sqrt(2 / 700)),
        (lambda t, g: nn.init.xavier_uniform_(t, generator=g), math.sqrt(2 / 700)),
        (lambda t, g: nn.init.normal_(t, 0.0, 0.5, generator=g), 0.5),
        (lambda t, g: nn.init.uniform_(t, -1.0, 1.0, generator=g), 1 / math.sqrt(3)),
    ],
    ids=[
        "kaiming_normal",
        "kaiming_uniform",
        "xavier_normal",
        "xavier_uniform",
        "normal",
        "uniform",
    ],
)
def test_init_statistics(fn, expected_std):
    t = mg.zeros(300, 400)
    out = fn(t, np.random.default_rng(0))
    assert out is t and t.dtype == np.float32
    assert abs(t.data.std() - expected_std) < 0.02 * expected_std
    assert abs(t.data.mean()) < 0.01 * expected_std + 1e-3


def test_init_constants_and_errors():
    t = mg.zeros(2, 3)
    nn.init.ones_(t)
    assert (t.data == 1).all()
    nn.init.zeros_(t)
    assert (t.data == 0).all()
    with pytest.raises(ValueError, match="fewer than 2 dims"):
        nn.init.xavier_uniform_(mg.zeros(3))
    assert nn.init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert nn.init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5))
    )


def test_init_on_parameter_requiring_grad_is_not_recorded():
    layer = nn.Linear(3, 3)
    nn.init.xavier_uniform_(layer.weight)
    assert layer.weight.is_leaf and layer.weight.requires_grad


# ----------------------------------------------------------------------------- utils


@pytest.mark.parametrize("max_norm", [0.1, 1.0, 100.0])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    mm, tm = mlp_pair()
    x = np.random.default_rng(0).standard_normal((4, 3))
    g = np.random.default_rng(1).standard_normal((4, 2))
    mm(mg.tensor(x)).backward(g)
    tm(torch.tensor(x)).backward(torch.tensor(g))
    total_m = nn.utils.clip_grad_norm_(mm.parameters(), max_norm, norm_type=norm_type)
    total_t = torch.nn.utils.clip_grad_norm_(tm.parameters(), max_norm, norm_type=norm_type)
    assert total_m.item() == pytest.approx(total_t.item(), rel=1e-12)
    for pm, pt in zip(mm.parameters(), tm.parameters()):
        np.testing.assert_allclose(pm.grad, pt.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_nonfinite_raises_when_asked():
    p = nn.Parameter(np.ones(2))
    p.grad = np.array([np.inf, 1.0])
    with pytest.raises(RuntimeError, match=r"total norm"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
