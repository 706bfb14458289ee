"""Layer-by-layer parity of minigrad.nn with torch.nn, in float64 with identical weights.

Covers every layer listed in the API contract (Linear, activations, Softmax, Dropout,
LayerNorm, Embedding, Flatten, Identity, Sequential, ModuleList, LoRALinear) and their
nn.functional counterparts: forward values and the gradients of inputs and parameters
under a random upstream gradient, on 1-D, 3-D and batch-size-1 shapes, with the
constructor options PyTorch has; module reprs; nn.init bounds and standard deviations
(torch's fan computation, 2-D and 4-D weights); nn.utils.clip_grad_norm_; Module.to /
double / float; and per_sample_grads against per-sample torch gradients from a loop.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn

torch = pytest.importorskip("torch")
tnn = torch.nn
TF = torch.nn.functional

RTOL, ATOL = 1e-10, 1e-12


def _rng(seed=0):
    return np.random.default_rng(seed)


def _copy_weights(mm, tm):
    """Give the torch twin minigrad's weights (both float64)."""
    mm.double()
    tm.double()
    tm.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in mm.state_dict().items()})


def _check_module(mm, tm, x, seed=1):
    """Same weights, same input, same upstream gradient: outputs and all gradients agree."""
    _copy_weights(mm, tm)
    xm = mg.tensor(x.copy(), requires_grad=True)
    xt = torch.tensor(x.copy(), requires_grad=True)
    ym, yt = mm(xm), tm(xt)
    assert ym.shape == tuple(yt.shape)
    assert ym.dtype == np.float64
    np.testing.assert_allclose(ym.numpy(), yt.detach().numpy(), rtol=RTOL, atol=ATOL)
    g = _rng(seed).standard_normal(ym.shape)
    ym.backward(g)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(xm.grad, xt.grad.numpy(), rtol=RTOL, atol=ATOL)
    named_t = dict(tm.named_parameters())
    named_m = dict(mm.named_parameters())
    assert sorted(named_m) == sorted(named_t)
    for name, pm in named_m.items():
        pt = named_t[name]
        if pt.grad is None:
            assert pm.grad is None, name
        else:
            np.testing.assert_allclose(pm.grad, pt.grad.numpy(), rtol=RTOL, atol=ATOL)


SHAPES_LAST_4 = [(4,), (1, 4), (5, 4), (2, 3, 4)]

LAYER_CASES = [
    ("Linear", lambda: (nn.Linear(4, 3), tnn.Linear(4, 3))),
    ("Linear-nobias", lambda: (nn.Linear(4, 3, bias=False), tnn.Linear(4, 3, bias=False))),
    ("ReLU", lambda: (nn.ReLU(), tnn.ReLU())),
    ("LeakyReLU", lambda: (nn.LeakyReLU(), tnn.LeakyReLU())),
    ("LeakyReLU-0.3", lambda: (nn.LeakyReLU(0.3), tnn.LeakyReLU(0.3))),
    ("LeakyReLU-neg", lambda: (nn.LeakyReLU(-0.5), tnn.LeakyReLU(-0.5))),
    ("Tanh", lambda: (nn.Tanh(), tnn.Tanh())),
    ("Sigmoid", lambda: (nn.Sigmoid(), tnn.Sigmoid())),
    ("GELU", lambda: (nn.GELU(), tnn.GELU())),
    ("GELU-tanh", lambda: (nn.GELU(approximate="tanh"), tnn.GELU(approximate="tanh"))),
    ("Softmax-1", lambda: (nn.Softmax(dim=-1), tnn.Softmax(dim=-1))),
    ("Softmax-0", lambda: (nn.Softmax(dim=0), tnn.Softmax(dim=0))),
    ("LayerNorm", lambda: (nn.LayerNorm(4), tnn.LayerNorm(4))),
    ("LayerNorm-eps", lambda: (nn.LayerNorm(4, eps=0.5), tnn.LayerNorm(4, eps=0.5))),
    (
        "LayerNorm-noaffine",
        lambda: (
            nn.LayerNorm(4, elementwise_affine=False),
            tnn.LayerNorm(4, elementwise_affine=False),
        ),
    ),
    ("LayerNorm-nobias", lambda: (nn.LayerNorm(4, bias=False), tnn.LayerNorm(4, bias=False))),
    ("Identity", lambda: (nn.Identity(), tnn.Identity())),
    ("Identity-args", lambda: (nn.Identity(3, x=1), tnn.Identity(3, x=1))),
    ("Dropout-p0", lambda: (nn.Dropout(0.0), tnn.Dropout(0.0))),
    ("Dropout-eval", lambda: (nn.Dropout(0.7).eval(), tnn.Dropout(0.7).eval())),
    (
        "Sequential",
        lambda: (
            nn.Sequential(nn.Linear(4, 5), nn.LayerNorm(5), nn.GELU(), nn.Linear(5, 2)),
            tnn.Sequential(tnn.Linear(4, 5), tnn.LayerNorm(5), tnn.GELU(), tnn.Linear(5, 2)),
        ),
    ),
    (
        "Sequential-dict",
        lambda: (
            nn.Sequential(OrderedDict(fc=nn.Linear(4, 2), act=nn.Sigmoid())),
            tnn.Sequential(OrderedDict(fc=tnn.Linear(4, 2), act=tnn.Sigmoid())),
        ),
    ),
]


@pytest.mark.parametrize("shape", SHAPES_LAST_4, ids=str)
@pytest.mark.parametrize("case", LAYER_CASES, ids=lambda c: c[0])
def test_layer_forward_and_gradients_match_torch(case, shape):
    mm, tm = case[1]()
    x = _rng(0).standard_normal(shape) * 2
    _check_module(mm, tm, x)


def test_layernorm_affine_parameters_trained_away_from_defaults_match_torch():
    mm, tm = nn.LayerNorm(4), tnn.LayerNorm(4)
    mm.weight.data[:] = _rng(5).standard_normal(4)
    mm.bias.data[:] = _rng(6).standard_normal(4)
    _check_module(mm, tm, _rng(0).standard_normal((2, 3, 4)))


@pytest.mark.parametrize(
    "normalized_shape, shape",
    [((3, 4), (3, 4)), ((3, 4), (2, 3, 4)), ((2, 3, 4), (1, 2, 3, 4)), ([4], (2, 4))],
    ids=str,
)
@pytest.mark.parametrize("affine", [True, False])
def test_layernorm_with_tuple_normalized_shape_matches_torch(normalized_shape, shape, affine):
    mm = nn.LayerNorm(normalized_shape, elementwise_affine=affine)
    tm = tnn.LayerNorm(normalized_shape, elementwise_affine=affine)
    if affine:
        mm.weight.data[:] = _rng(5).standard_normal(mm.weight.shape)
        mm.bias.data[:] = _rng(6).standard_normal(mm.bias.shape)
    _check_module(mm, tm, _rng(0).standard_normal(shape))


def test_layernorm_attributes_match_torch():
    mm, tm = nn.LayerNorm([3, 4], eps=1e-3), tnn.LayerNorm([3, 4], eps=1e-3)
    assert mm.normalized_shape == tm.normalized_shape
    assert mm.eps == tm.eps
    assert mm.weight.shape == tuple(tm.weight.shape)
    assert mm.weight.dtype == np.float32  # torch's default dtype
    np.testing.assert_array_equal(mm.weight.numpy(), tm.weight.detach().numpy())
    np.testing.assert_array_equal(mm.bias.numpy(), tm.bias.detach().numpy())


SOFTMAX_CASES = [
    (dim, shape)
    for shape in [(5,), (1, 5), (3, 5), (2, 3, 5), (2, 2, 3, 2)]
    for dim in [None, 0, 1, 2, -1, -2]
    if dim is None or -len(shape) <= dim < len(shape)
]


@pytest.mark.parametrize("dim, shape", SOFTMAX_CASES, ids=str)
def test_softmax_dim_matches_torch(dim, shape):
    mm, tm = nn.Softmax(dim=dim), tnn.Softmax(dim=dim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about the implicit dim
        _check_module(mm, tm, _rng(0).standard_normal(shape) * 3)


@pytest.mark.parametrize(
    "start_dim, end_dim, shape",
    [
        (1, -1, (2, 3, 4)),
        (1, -1, (1, 5)),
        (0, -1, (2, 3, 4)),
        (0, -1, (4,)),
        (1, 2, (2, 3, 4, 5)),
        (-3, -2, (2, 3, 4, 5)),
        (2, 2, (2, 3, 4)),
        (0, 0, (3,)),
    ],
    ids=str,
)
def test_flatten_start_end_dims_match_torch(start_dim, end_dim, shape):
    mm, tm = nn.Flatten(start_dim, end_dim), tnn.Flatten(start_dim, end_dim)
    _check_module(mm, tm, _rng(0).standard_normal(shape))


@pytest.mark.parametrize("shape", [(6,), (1, 6), (4, 3, 2)], ids=str)
def test_dropout_p1_in_training_gives_zeros_and_zero_gradients_like_torch(shape):
    mm, tm = nn.Dropout(1.0), tnn.Dropout(1.0)
    _check_module(mm, tm, _rng(0).standard_normal(shape))


def test_dropout_training_scales_kept_entries_and_gradient_by_one_over_keep_prob():
    p = 0.4
    x = _rng(0).standard_normal((200, 50)) + 3
    xm = mg.tensor(x, requires_grad=True)
    y = nn.Dropout(p, generator=_rng(3))(xm)
    g = _rng(1).standard_normal(x.shape)
    y.backward(g)
    kept = y.numpy() != 0
    # the same identity torch's dropout satisfies: kept entries are x / (1 - p)
    torch.manual_seed(0)
    xt = torch.tensor(x, requires_grad=True)
    yt = TF.dropout(xt, p, training=True)
    yt.backward(torch.from_numpy(g))
    kept_t = yt.detach().numpy() != 0
    np.testing.assert_allclose(y.numpy()[kept], x[kept] / (1 - p), rtol=1e-14)
    np.testing.assert_allclose(yt.detach().numpy()[kept_t], x[kept_t] / (1 - p), rtol=1e-14)
    np.testing.assert_allclose(xm.grad, np.where(kept, g / (1 - p), 0.0), rtol=1e-14)
    assert abs(kept.mean() - kept_t.mean()) < 0.03  # both keep about 1 - p
    assert abs(kept.mean() - (1 - p)) < 0.03


def test_dropout_rejects_p_outside_0_1_like_torch():
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError):
            tnn.Dropout(p)
        with pytest.raises(ValueError):
            nn.Dropout(p)
        with pytest.raises(ValueError):
            F.dropout(mg.tensor(np.ones(3)), p)


# ----------------------------------------------------------------------------- activations at 0


@pytest.mark.parametrize(
    "case",
    [
        ("relu", lambda x: F.relu(x), lambda x: TF.relu(x)),
        ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
        ("gelu", lambda x: F.gelu(x), lambda x: TF.gelu(x)),
        ("sigmoid", lambda x: F.sigmoid(x), lambda x: TF.sigmoid(x)),
        ("tanh", lambda x: F.tanh(x), lambda x: TF.tanh(x)),
    ],
    ids=lambda c: c[0],
)
def test_activation_gradients_at_zero_and_extremes_match_torch(case):
    _, fm, ft = case
    x = np.array([0.0, -0.0, 1e-300, -1e-300, 40.0, -40.0, 800.0, -800.0])
    xm = mg.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ym, yt = fm(xm), ft(xt)
    np.testing.assert_allclose(ym.numpy(), yt.detach().numpy(), rtol=1e-12, atol=0)
    g = np.arange(1.0, 1.0 + len(x))
    ym.backward(g)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(xm.grad, xt.grad.numpy(), rtol=1e-12, atol=0)


# ----------------------------------------------------------------------------- functional

FUNCTIONAL_CASES = [
    ("relu", F.relu, TF.relu),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1)),
    ("leaky_relu-default", F.leaky_relu, TF.leaky_relu),
    ("gelu", F.gelu, TF.gelu),
    (
        "gelu-tanh",
        lambda x: F.gelu(x, approximate="tanh"),
        lambda x: TF.gelu(x, approximate="tanh"),
    ),
    ("tanh", F.tanh, torch.tanh),
    ("sigmoid", F.sigmoid, torch.sigmoid),
    ("softmax", lambda x: F.softmax(x, -1), lambda x: TF.softmax(x, -1)),
    ("softmax-0", lambda x: F.softmax(x, 0), lambda x: TF.softmax(x, 0)),
    ("log_softmax", lambda x: F.log_softmax(x, -1), lambda x: TF.log_softmax(x, -1)),
    ("log_softmax-0", lambda x: F.log_softmax(x, 0), lambda x: TF.log_softmax(x, 0)),
    ("dropout-eval", lambda x: F.dropout(x, 0.5, False), lambda x: TF.dropout(x, 0.5, False)),
    ("dropout-p0", lambda x: F.dropout(x, 0.0), lambda x: TF.dropout(x, 0.0)),
    ("layer_norm", lambda x: F.layer_norm(x, (4,)), lambda x: TF.layer_norm(x, (4,))),
    (
        "layer_norm-eps",
        lambda x: F.layer_norm(x, [4], eps=0.3),
        lambda x: TF.layer_norm(x, [4], eps=0.3),
    ),
]


@pytest.mark.parametrize("shape", SHAPES_LAST_4, ids=str)
@pytest.mark.parametrize("case", FUNCTIONAL_CASES, ids=lambda c: c[0])
def test_functional_forms_match_torch(case, shape):
    _, fm, ft = case
    x = _rng(0).standard_normal(shape) * 2
    xm = mg.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ym, yt = fm(xm), ft(xt)
    np.testing.assert_allclose(ym.numpy(), yt.detach().numpy(), rtol=RTOL, atol=ATOL)
    g = _rng(1).standard_normal(ym.shape)
    ym.backward(g)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(xm.grad, xt.grad.numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("shape", SHAPES_LAST_4, ids=str)
@pytest.mark.parametrize("with_bias", [True, False])
def test_functional_linear_and_layer_norm_parameter_gradients_match_torch(shape, with_bias):
    rng = _rng(2)
    x, w, b = rng.standard_normal(shape), rng.standard_normal((3, 4)), rng.standard_normal(3)
    lw, lb = rng.standard_normal(4), rng.standard_normal(4)
    arrays = [x, w, b, lw, lb] if with_bias else [x, w, lw]
    ms = [mg.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]

    def run(lib, t):
        f = F if lib == "mg" else TF
        if with_bias:
            xx, ww, bb, lww, lbb = t
            h = f.layer_norm(xx, (4,), lww, lbb)
            return f.linear(h, ww, bb)
        xx, ww, lww = t
        return f.linear(f.layer_norm(xx, (4,), lww), ww)

    ym, yt = run("mg", ms), run("torch", ts)
    np.testing.assert_allclose(ym.numpy(), yt.detach().numpy(), rtol=RTOL, atol=ATOL)
    g = _rng(3).standard_normal(ym.shape)
    ym.backward(g)
    yt.backward(torch.from_numpy(g))
    for a, b_ in zip(ms, ts):
        np.testing.assert_allclose(a.grad, b_.grad.numpy(), rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------- Embedding

EMBEDDING_INDICES = [
    np.array(3),
    np.array([0, 4, 4, 2]),
    np.array([[1]]),
    np.array([[0, 1, 1], [4, 2, 0]]),
    np.array([[[3, 3], [0, 4]], [[1, 1], [2, 0]]]),
]


@pytest.mark.parametrize("indices", EMBEDDING_INDICES, ids=lambda a: str(a.shape))
@pytest.mark.parametrize("padding_idx", [None, 0, 4, -1, -5])
def test_embedding_forward_and_weight_gradient_match_torch(indices, padding_idx):
    mm = nn.Embedding(5, 3, padding_idx=padding_idx, generator=_rng(4))
    tm = tnn.Embedding(5, 3, padding_idx=padding_idx)
    assert mm.padding_idx == tm.padding_idx
    if padding_idx is not None:
        np.testing.assert_array_equal(mm.weight.numpy()[padding_idx], 0)
    _copy_weights(mm, tm)
    ym = mm(mg.tensor(indices))
    yt = tm(torch.from_numpy(indices))
    np.testing.assert_array_equal(ym.numpy(), yt.detach().numpy())
    g = _rng(1).standard_normal(ym.shape)
    ym.backward(g)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(mm.weight.grad, tm.weight.grad.numpy(), rtol=RTOL, atol=ATOL)
    # functional form with a plain array of indices
    w = mg.tensor(mm.weight.numpy().copy(), requires_grad=True)
    wt = torch.tensor(mm.weight.numpy().copy(), requires_grad=True)
    F.embedding(indices, w, padding_idx=padding_idx).backward(g)
    TF.embedding(torch.from_numpy(indices), wt, padding_idx=padding_idx).backward(
        torch.from_numpy(g)
    )
    np.testing.assert_allclose(w.grad, wt.grad.numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("padding_idx", [5, -6])
def test_embedding_padding_idx_out_of_range_raises_like_torch(padding_idx):
    with pytest.raises((AssertionError, ValueError)):
        tnn.Embedding(5, 3, padding_idx=padding_idx)
    with pytest.raises(ValueError):
        nn.Embedding(5, 3, padding_idx=padding_idx)


def test_embedding_default_init_is_standard_normal_like_torch():
    w = nn.Embedding(400, 500, generator=_rng(0)).weight.numpy()
    assert w.dtype == np.float32
    assert abs(w.mean()) < 0.01
    assert abs(w.std() - 1.0) < 0.01


# ----------------------------------------------------------------------------- LoRALinear


class _TorchLoRA(tnn.Module):
    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.rank, self.alpha = rank, alpha
        self.A = tnn.Parameter(torch.empty(rank, base.in_features))
        self.B = tnn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x):
        return self.base(x) + (self.alpha / self.rank) * (x @ self.A.T @ self.B.T)

    def extra_repr(self):
        return f"rank={self.rank}, alpha={self.alpha}"


@pytest.mark.parametrize("shape", SHAPES_LAST_4, ids=str)
@pytest.mark.parametrize("rank, alpha", [(1, 1.0), (2, 8.0)])
def test_lora_linear_forward_and_gradients_match_torch(shape, rank, alpha):
    mm = nn.LoRALinear(nn.Linear(4, 3), rank, alpha)
    mm.B.data[:] = _rng(7).standard_normal(mm.B.shape)  # away from zero, so A gets a gradient
    tm = _TorchLoRA(tnn.Linear(4, 3), rank, alpha)
    _check_module(mm, tm, _rng(0).standard_normal(shape))
    assert mm.base.weight.grad is None and mm.base.bias.grad is None
    merged = tm.base.weight + (alpha / rank) * tm.B @ tm.A
    np.testing.assert_allclose(mm.merged_weight(), merged.detach().numpy(), rtol=1e-12)


# ----------------------------------------------------------------------------- repr


REPR_CASES = [
    ("Linear", lambda m: m.Linear(3, 2)),
    ("Linear-nobias", lambda m: m.Linear(3, 2, bias=False)),
    ("ReLU", lambda m: m.ReLU()),
    ("LeakyReLU", lambda m: m.LeakyReLU()),
    ("LeakyReLU-0.2", lambda m: m.LeakyReLU(0.2)),
    ("Tanh", lambda m: m.Tanh()),
    ("Sigmoid", lambda m: m.Sigmoid()),
    ("GELU", lambda m: m.GELU()),
    ("GELU-tanh", lambda m: m.GELU(approximate="tanh")),
    ("Softmax", lambda m: m.Softmax()),
    ("Softmax-1", lambda m: m.Softmax(dim=1)),
    ("Dropout", lambda m: m.Dropout()),
    ("Dropout-0.25", lambda m: m.Dropout(0.25)),
    ("LayerNorm", lambda m: m.LayerNorm(4)),
    ("LayerNorm-tuple", lambda m: m.LayerNorm((2, 3), eps=1e-6)),
    ("LayerNorm-noaffine", lambda m: m.LayerNorm(4, elementwise_affine=False)),
    ("LayerNorm-nobias", lambda m: m.LayerNorm(4, bias=False)),
    ("Embedding", lambda m: m.Embedding(10, 3)),
    ("Embedding-pad", lambda m: m.Embedding(10, 3, padding_idx=-2)),
    ("Flatten", lambda m: m.Flatten()),
    ("Flatten-0-2", lambda m: m.Flatten(0, 2)),
    ("Identity", lambda m: m.Identity()),
    ("Sequential", lambda m: m.Sequential(m.Linear(2, 3), m.ReLU(), m.Sequential(m.Tanh()))),
    ("Sequential-dict", lambda m: m.Sequential(OrderedDict(fc=m.Linear(2, 3), act=m.ReLU()))),
    ("ModuleList", lambda m: m.ModuleList([m.Linear(2, 3), m.ReLU()])),
    ("ModuleList-repeated", lambda m: m.ModuleList([m.ReLU(), m.ReLU(), m.ReLU()])),
]


@pytest.mark.parametrize("case", REPR_CASES, ids=lambda c: c[0])
def test_repr_matches_torch(case):
    assert repr(case[1](nn)) == repr(case[1](tnn))


def test_repr_of_a_module_with_extra_repr_and_children_matches_torch_layout():
    mm = nn.LoRALinear(nn.Linear(4, 3), 2, 1.0)
    tm = _TorchLoRA(tnn.Linear(4, 3), 2, 1.0)
    assert repr(mm).replace("LoRALinear", "_TorchLoRA") == repr(tm)


# ----------------------------------------------------------------------------- nn.init


@pytest.mark.parametrize("shape", [(300, 400), (64, 32, 3, 3), (40, 1000, 2)], ids=str)
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"a": math.sqrt(5)},
        {"mode": "fan_out"},
        {"nonlinearity": "relu"},
        {"a": 0.2, "mode": "fan_out", "nonlinearity": "leaky_relu"},
        {"nonlinearity": "tanh"},
    ],
    ids=str,
)
@pytest.mark.parametrize("kind", ["uniform", "normal"])
def test_kaiming_init_matches_torch_formula(shape, kwargs, kind):
    fan_in, fan_out = tnn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    fan = fan_out if kwargs.get("mode") == "fan_out" else fan_in
    gain = tnn.init.calculate_gain(kwargs.get("nonlinearity", "leaky_relu"), kwargs.get("a", 0))
    std = gain / math.sqrt(fan)
    w = nn.Parameter(np.empty(shape))
    getattr(nn.init, f"kaiming_{kind}_")(w, generator=_rng(0), **kwargs)
    torch.manual_seed(0)
    t = torch.empty(shape, dtype=torch.float64)
    getattr(tnn.init, f"kaiming_{kind}_")(t, **kwargs)
    _check_distribution(w.numpy(), t.numpy(), std, kind)


@pytest.mark.parametrize("shape", [(300, 400), (64, 32, 3, 3), (40, 1000, 2)], ids=str)
@pytest.mark.parametrize("gain", [1.0, 5.0 / 3, 0.1])
@pytest.mark.parametrize("kind", ["uniform", "normal"])
def test_xavier_init_matches_torch_formula(shape, gain, kind):
    fan_in, fan_out = tnn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    w = nn.Parameter(np.empty(shape))
    getattr(nn.init, f"xavier_{kind}_")(w, gain=gain, generator=_rng(0))
    torch.manual_seed(0)
    t = torch.empty(shape, dtype=torch.float64)
    getattr(tnn.init, f"xavier_{kind}_")(t, gain=gain)
    _check_distribution(w.numpy(), t.numpy(), std, kind)


def _check_distribution(w, t, std, kind):
    """Both samples have mean 0 and standard deviation ``std``; uniform ones fill the bounds."""
    for sample in (w, t):
        assert abs(sample.mean()) < 0.04 * std
        assert sample.std() == pytest.approx(std, rel=0.02)
        if kind == "uniform":
            bound = math.sqrt(3.0) * std
            assert np.abs(sample).max() <= bound * (1 + 1e-12)
            assert np.abs(sample).max() > 0.999 * bound


@pytest.mark.parametrize(
    "nonlinearity, param",
    [
        ("linear", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("leaky_relu", 0),
        ("selu", None),
        ("conv2d", None),
    ],
)
def test_calculate_gain_matches_torch(nonlinearity, param):
    assert nn.init.calculate_gain(nonlinearity, param) == pytest.approx(
        tnn.init.calculate_gain(nonlinearity, param), rel=1e-15
    )


@pytest.mark.parametrize("fn", ["kaiming_uniform_", "xavier_normal_"])
def test_init_of_a_1d_tensor_raises_like_torch(fn):
    with pytest.raises(ValueError):
        getattr(tnn.init, fn)(torch.empty(5))
    with pytest.raises(ValueError):
        getattr(nn.init, fn)(nn.Parameter(np.empty(5)))


def test_init_keeps_dtype_and_object_and_returns_it():
    w = nn.Parameter(np.empty((30, 20), dtype=np.float32))
    data = w.data
    out = nn.init.kaiming_uniform_(w, generator=_rng(0))
    assert out is w and w.dtype == np.float32 and w.data is data
    assert w.grad_fn is None and w.requires_grad


# ----------------------------------------------------------------------------- clip_grad_norm_


def _params_with_grads(dtype, with_none=False):
    rng = _rng(11)
    shapes = [(3, 4), (4,), (2, 2, 2)]
    grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
    pm = [nn.Parameter(np.zeros(s, dtype=dtype)) for s in shapes]
    pt = [tnn.Parameter(torch.zeros(s, dtype=getattr(torch, np.dtype(dtype).name))) for s in shapes]
    for i, g in enumerate(grads):
        if with_none and i == 1:
            continue
        pm[i].grad = g.copy()
        pt[i].grad = torch.from_numpy(g.copy())
    if with_none:
        pm.append(nn.Parameter(np.zeros(2, dtype=dtype)))  # never had a gradient
        pt.append(tnn.Parameter(torch.zeros(2, dtype=getattr(torch, np.dtype(dtype).name))))
    return pm, pt


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_none", [False, True])
@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, 0.5, 0.0, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(dtype, with_none, norm_type, max_norm):
    pm, pt = _params_with_grads(dtype, with_none)
    total_m = nn.utils.clip_grad_norm_(pm, max_norm, norm_type=norm_type)
    total_t = tnn.utils.clip_grad_norm_(pt, max_norm, norm_type=norm_type)
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    assert isinstance(total_m, mg.Tensor)
    assert total_m.shape == ()
    assert total_m.dtype == dtype
    np.testing.assert_allclose(total_m.numpy(), total_t.numpy(), rtol=rtol)
    for a, b in zip(pm, pt):
        if b.grad is None:
            assert a.grad is None
        else:
            assert a.grad.dtype == dtype
            np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=rtol)


def test_clip_grad_norm_accepts_a_single_tensor_and_a_generator_like_torch():
    pm, pt = _params_with_grads(np.float64)
    tm = nn.utils.clip_grad_norm_(pm[0], 0.1)
    tt = tnn.utils.clip_grad_norm_(pt[0], 0.1)
    np.testing.assert_allclose(tm.numpy(), tt.numpy(), rtol=1e-13)
    np.testing.assert_allclose(pm[0].grad, pt[0].grad.numpy(), rtol=1e-13)
    tm = nn.utils.clip_grad_norm_(iter(pm), 0.1)
    tt = tnn.utils.clip_grad_norm_(iter(pt), 0.1)
    np.testing.assert_allclose(tm.numpy(), tt.numpy(), rtol=1e-13)
    for a, b in zip(pm, pt):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-13)


def test_clip_grad_norm_without_any_gradient_returns_zero_like_torch():
    total_m = nn.utils.clip_grad_norm_([nn.Parameter(np.zeros(3))], 1.0)
    total_t = tnn.utils.clip_grad_norm_([tnn.Parameter(torch.zeros(3))], 1.0)
    assert total_m.item() == total_t.item() == 0.0


def test_clip_grad_norm_scales_to_max_norm():
    pm, _ = _params_with_grads(np.float64)
    nn.utils.clip_grad_norm_(pm, 0.7)
    after = math.sqrt(sum(float((p.grad**2).sum()) for p in pm))
    assert after == pytest.approx(0.7, rel=1e-5)


# ----------------------------------------------------------------------------- Module.to


def _model_pair():
    mm = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Embedding(5, 2))
    tm = tnn.Sequential(tnn.Linear(3, 4), tnn.LayerNorm(4), tnn.Embedding(5, 2))
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in mm.state_dict().items()})
    for p, q in zip(mm.parameters(), tm.parameters()):
        g = _rng(3).standard_normal(p.shape).astype(np.float32)
        p.grad = g.copy()
        q.grad = torch.from_numpy(g.copy())
    return mm, tm


@pytest.mark.parametrize(
    "convert",
    [
        ("double", lambda m: m.double(), lambda m: m.double()),
        ("to-float64", lambda m: m.to(mg.float64), lambda m: m.to(torch.float64)),
        ("to-np-float64", lambda m: m.to(np.float64), lambda m: m.to(torch.float64)),
        ("double-float", lambda m: m.double().float(), lambda m: m.double().float()),
        ("float", lambda m: m.float(), lambda m: m.float()),
    ],
    ids=lambda c: c[0],
)
def test_module_dtype_conversion_converts_parameters_and_grads_like_torch(convert):
    mm, tm = _model_pair()
    before = list(mm.parameters())
    out_m, out_t = convert[1](mm), convert[2](tm)
    assert out_m is mm and out_t is tm
    assert all(a is b for a, b in zip(before, mm.parameters()))
    for p, q in zip(mm.parameters(), tm.parameters()):
        assert p.dtype == np.dtype(str(q.dtype).removeprefix("torch."))
        assert p.grad.dtype == np.dtype(str(q.grad.dtype).removeprefix("torch."))
        np.testing.assert_array_equal(p.numpy(), q.detach().numpy())
        np.testing.assert_array_equal(p.grad, q.grad.numpy())
        assert p.requires_grad and p.is_leaf


def test_module_to_an_integer_dtype_raises_type_error_like_torch():
    mm, tm = _model_pair()
    with pytest.raises(TypeError):
        tm.to(torch.int64)
    with pytest.raises(TypeError):
        mm.to(mg.int64)


def test_module_double_keeps_training_working_like_torch():
    mm, tm = _model_pair()
    mm.zero_grad()
    tm.zero_grad()
    mm.double()
    tm.double()
    x = _rng(0).standard_normal((2, 3))
    ym = mm[1](mm[0](mg.tensor(x)))
    yt = tm[1](tm[0](torch.from_numpy(x)))
    g = _rng(1).standard_normal(ym.shape)
    ym.backward(g)
    yt.backward(torch.from_numpy(g))
    for p, q in zip(list(mm.parameters())[:4], list(tm.parameters())[:4]):
        assert p.grad.dtype == np.float64
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- per_sample_grads


def _torch_loop_grads(tm, inputs, g):
    """Per-sample gradients from torch, one backward per sample."""
    out = {name: [] for name, p in tm.named_parameters() if p.requires_grad}
    for i in range(len(inputs)):
        tm.zero_grad()
        y = tm(inputs[i : i + 1])
        y.backward(torch.from_numpy(g[i : i + 1]))
        for name, p in tm.named_parameters():
            if p.requires_grad:
                out[name].append(p.grad.numpy().copy())
    return {name: np.stack(v) for name, v in out.items()}


def _check_per_sample(mm, tm, x_m, x_t):
    _copy_weights(mm, tm)
    with mg.per_sample_grads():
        y = mm(x_m)
        g = _rng(9).standard_normal(y.shape)
        y.backward(g)
    expected = _torch_loop_grads(tm, x_t, g)
    named = dict(mm.named_parameters())
    for name, want in expected.items():
        p = named[name]
        assert p.grad_sample.shape == (len(x_t), *p.shape), name
        np.testing.assert_allclose(p.grad_sample, want, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(p.grad_sample.sum(0), p.grad, rtol=RTOL, atol=ATOL)
    for name, p in named.items():
        if name not in expected:
            assert getattr(p, "grad_sample", None) is None, name


@pytest.mark.parametrize("shape", [(1, 4), (6, 4), (1, 3, 4), (5, 2, 4), (3, 2, 2, 4)], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_per_sample_grads_match_torch_loop(shape, bias):
    x = _rng(0).standard_normal(shape)
    mm, tm = nn.Linear(4, 3, bias=bias), tnn.Linear(4, 3, bias=bias)
    _check_per_sample(mm, tm, mg.tensor(x), torch.from_numpy(x))


@pytest.mark.parametrize("shape", [(1, 4), (6, 4), (5, 2, 4)], ids=str)
def test_sequential_of_linears_per_sample_grads_match_torch_loop(shape):
    x = _rng(0).standard_normal(shape)
    mm = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2))
    tm = tnn.Sequential(tnn.Linear(4, 5), tnn.Tanh(), tnn.Linear(5, 2))
    _check_per_sample(mm, tm, mg.tensor(x), torch.from_numpy(x))


@pytest.mark.parametrize("shape", [(1, 4), (6, 4), (5, 2, 4)], ids=str)
def test_lora_per_sample_grads_match_torch_loop(shape):
    x = _rng(0).standard_normal(shape)
    mm = nn.LoRALinear(nn.Linear(4, 3), 2, 4.0)
    mm.B.data[:] = _rng(7).standard_normal(mm.B.shape)
    tm = _TorchLoRA(tnn.Linear(4, 3), 2, 4.0)
    _check_per_sample(mm, tm, mg.tensor(x), torch.from_numpy(x))


@pytest.mark.parametrize(
    "indices",
    [
        np.array([3]),
        np.array([0, 4, 4, 2]),
        np.array([[1, 1, 1]]),
        np.array([[0, 1, 1], [4, 2, 0]]),
        np.array([[[3, 3], [0, 4]], [[1, 1], [2, 0]]]),
    ],
    ids=lambda a: str(a.shape),
)
@pytest.mark.parametrize("padding_idx", [None, 1])
def test_embedding_per_sample_grads_match_torch_loop(indices, padding_idx):
    mm = nn.Embedding(5, 3, padding_idx=padding_idx)
    tm = tnn.Embedding(5, 3, padding_idx=padding_idx)
    _check_per_sample(mm, tm, mg.tensor(indices), torch.from_numpy(indices))


def test_embedding_then_linear_per_sample_grads_match_torch_loop():
    indices = np.array([[0, 1, 1], [4, 2, 0], [3, 3, 3]])
    mm = nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 2))
    tm = tnn.Sequential(tnn.Embedding(5, 4), tnn.Linear(4, 2))
    _check_per_sample(mm, tm, mg.tensor(indices), torch.from_numpy(indices))
