"""float32 stays float32: no op, layer, loss or optimizer silently upcasts to float64.

float32 is minigrad's default dtype (api.md: Python floats become float32, layers default to
float32). With float32 inputs and parameters, every forward result, every ``.grad`` and every
optimizer state buffer must be float32, and the values must match torch's float32 ones.
Mixing a float32 tensor with Python floats and numpy float64 scalars keeps float32 (as in
torch); a 0-d float64 numpy array is an array, so it promotes as numpy does (api.md).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as MF
from minigrad import nn, optim

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RTOL, ATOL = 1e-5, 1e-6
MG = SimpleNamespace(t=mg, F=MF, name="minigrad")
TO = SimpleNamespace(t=torch, F=TF, name="torch")


def _arr(lib, a):
    """A constant (no grad) of ``lib`` holding the numpy array ``a``."""
    return mg.tensor(a) if lib is MG else torch.from_numpy(np.array(a, copy=True))


def _data(rng, shape, kind="any"):
    a = rng.standard_normal(shape).astype(np.float32)
    if kind == "pos":
        a = np.abs(a) + np.float32(0.5)
    elif kind == "prob":
        a = np.float32(0.05) + np.float32(0.9) * rng.random(shape, dtype=np.float32)
    elif kind == "distinct":
        a = rng.permutation(np.arange(np.prod(shape), dtype=np.float32)).reshape(shape) / 7
    return a.astype(np.float32)


def _close(actual, expected, what, rtol=RTOL, atol=ATOL):
    expected = expected.detach().numpy() if isinstance(expected, torch.Tensor) else expected
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol, atol=atol, err_msg=what)


def _f32(array, what):
    assert np.asarray(array).dtype == np.float32, f"{what}: dtype {np.asarray(array).dtype}"


def _check(fn, specs, seed=0):
    """Run ``fn(lib, *inputs)`` on float32 inputs in both libraries; compare forward, grads."""
    rng = np.random.default_rng(seed)
    arrays = [_data(rng, shape, kind) for shape, kind in specs]
    xs = [mg.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = fn(MG, *xs), fn(TO, *ts)
    assert tout.dtype == torch.float32  # the reference itself stays float32
    _f32(out.data, "forward")
    _close(out.data, tout, "forward")
    g = rng.standard_normal(tout.shape).astype(np.float32)
    out.backward(g)
    tout.backward(torch.from_numpy(g))
    for i, (x, t) in enumerate(zip(xs, ts)):
        assert x.grad is not None, f"input {i} got no grad"
        _f32(x.grad, f"input {i} grad")
        _close(x.grad, t.grad, f"input {i} grad")


# ------------------------------------------------------------ Tensor methods and mg.* functions

A = ((3, 4), "any")
P = ((3, 4), "pos")
D = ((3, 4), "distinct")
METHODS = {
    "add": (lambda L, x, y: x + y, [A, A]),
    "add_bcast": (lambda L, x, y: x + y, [A, ((4,), "any")]),
    "sub": (lambda L, x, y: x - y, [A, A]),
    "mul": (lambda L, x, y: x * y, [A, ((3, 1), "any")]),
    "div": (lambda L, x, y: x / y, [A, P]),
    "pow_tensor": (lambda L, x, y: x**y, [P, A]),
    "neg": (lambda L, x: -x, [A]),
    "matmul_op": (lambda L, x, y: x @ y, [A, ((4, 2), "any")]),
    "matmul_batched": (lambda L, x, y: x.matmul(y), [((2, 3, 4), "any"), ((4, 5), "any")]),
    "matvec": (lambda L, x, y: x @ y, [A, ((4,), "any")]),
    "method_add_sub_mul_div": (lambda L, x, y: x.add(y).sub(y).mul(y).div(y + 3), [A, P]),
    "method_neg": (lambda L, x: x.neg(), [A]),
    "sum": (lambda L, x: x.sum(), [A]),
    "sum_dim": (lambda L, x: x.sum(1, keepdim=True), [A]),
    "mean": (lambda L, x: x.mean(), [A]),
    "mean_dims": (lambda L, x: x.mean(dim=(0, 1)), [A]),
    "var": (lambda L, x: x.var(1), [A]),
    "var_all": (lambda L, x: x.var(), [A]),
    "amax": (lambda L, x: x.amax(dim=1), [D]),
    "amin": (lambda L, x: x.amin(dim=0, keepdim=True), [D]),
    "max_all": (lambda L, x: x.max(), [D]),
    "min_all": (lambda L, x: x.min(), [D]),
    "max_dim": (lambda L, x: x.max(1) if L is MG else x.amax(1), [D]),
    "min_dim": (lambda L, x: x.min(0) if L is MG else x.amin(0), [D]),
    "exp": (lambda L, x: x.exp(), [A]),
    "log": (lambda L, x: x.log(), [P]),
    "sqrt": (lambda L, x: x.sqrt(), [P]),
    "abs": (lambda L, x: x.abs(), [A]),
    "tanh": (lambda L, x: x.tanh(), [A]),
    "sigmoid": (lambda L, x: x.sigmoid(), [A]),
    "relu": (lambda L, x: x.relu(), [A]),
    "clamp": (lambda L, x: x.clamp(-0.5, 0.5), [A]),
    "clamp_min": (lambda L, x: x.clamp(min=0.1), [A]),
    "pow_float": (lambda L, x: x.pow(1.5), [P]),
    "pow_int": (lambda L, x: x**3, [A]),
    "sqrt_via_pow": (lambda L, x: x**0.5, [P]),
    "softmax": (lambda L, x: x.softmax(1), [A]),
    "log_softmax": (lambda L, x: x.log_softmax(0), [A]),
    "reshape": (lambda L, x: x.reshape(2, 6), [A]),
    "view": (lambda L, x: x.view(4, 3), [A]),
    "flatten": (lambda L, x: x.flatten(), [((2, 3, 4), "any")]),
    "transpose": (lambda L, x: x.transpose(0, 1), [A]),
    "T": (lambda L, x: x.T, [A]),
    "permute": (lambda L, x: x.permute(2, 0, 1), [((2, 3, 4), "any")]),
    "unsqueeze_squeeze": (lambda L, x: x.unsqueeze(1).squeeze(1).squeeze(), [((3, 1, 4), "any")]),
    "expand": (lambda L, x: x.expand(3, 5), [((3, 1), "any")]),
    "getitem_slice": (lambda L, x: x[1:, ::2], [A]),
    "getitem_int_none_ellipsis": (lambda L, x: x[1, None, ...], [A]),
    "getitem_int_array": (lambda L, x: x[[0, 2, 2]], [A]),
    "getitem_bool_mask": (lambda L, x: x[x > 0], [A]),
    "mg_matmul": (lambda L, x, y: L.t.matmul(x, y), [A, ((4, 2), "any")]),
    "mg_outer": (lambda L, x, y: L.t.outer(x, y), [((3,), "any"), ((4,), "any")]),
    "mg_dot": (lambda L, x, y: L.t.dot(x, y), [((5,), "any"), ((5,), "any")]),
    "mg_cat": (lambda L, x, y: L.t.cat([x, y], dim=1), [A, ((3, 2), "any")]),
    "mg_stack": (lambda L, x, y: L.t.stack([x, y], dim=-1), [A, A]),
    "mg_where": (lambda L, x, y: L.t.where(x > y, x, y), [A, A]),
    "mg_where_scalar": (lambda L, x: L.t.where(x > 0, x, 0.5), [A]),
    "mg_maximum": (lambda L, x, y: L.t.maximum(x, y), [D, A]),
    "mg_minimum": (lambda L, x, y: L.t.minimum(x, y), [D, A]),
    "mg_elementwise": (
        lambda L, x: L.t.exp(L.t.tanh(x)) + L.t.sigmoid(x) + L.t.relu(x) + L.t.abs(x),
        [A],
    ),
    "mg_log_sqrt": (lambda L, x: L.t.log(x) + L.t.sqrt(x), [P]),
    "mg_clamp": (lambda L, x: L.t.clamp(x, -0.3, 0.7), [A]),
    "mg_pow": (lambda L, x, y: L.t.pow(x, y), [P, A]),
    "mg_softmax": (lambda L, x: L.t.softmax(x, 1) * L.t.log_softmax(x, 0), [A]),
    "mg_reductions": (
        lambda L, x: L.t.sum(x, 1) + L.t.mean(x, 1) + L.t.amax(x, 1) + L.t.amin(x, 1),
        [D],
    ),
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_tensor_op_stays_float32(name):
    fn, specs = METHODS[name]
    _check(fn, specs)


# ------------------------------------------------------------ nn.functional and the losses

X = ((4, 5), "any")
TGT = np.array([0, 4, 2, 1])
W_CLS = np.array([0.5, 1.0, 2.0, 1.5, 0.25], dtype=np.float32)
FUNCTIONAL = {
    "linear": (lambda L, x, w, b: L.F.linear(x, w, b), [X, ((3, 5), "any"), ((3,), "any")]),
    "linear_nobias_1d": (lambda L, x, w: L.F.linear(x, w), [((5,), "any"), ((3, 5), "any")]),
    "linear_3d": (
        lambda L, x, w, b: L.F.linear(x, w, b),
        [((2, 4, 5), "any"), ((3, 5), "any"), ((3,), "any")],
    ),
    "relu": (lambda L, x: L.F.relu(x), [X]),
    "leaky_relu": (lambda L, x: L.F.leaky_relu(x, 0.2), [X]),
    "gelu": (lambda L, x: L.F.gelu(x), [X]),
    "gelu_tanh": (lambda L, x: L.F.gelu(x, approximate="tanh"), [X]),
    "tanh": (lambda L, x: L.F.tanh(x), [X]),
    "sigmoid": (lambda L, x: L.F.sigmoid(x), [X]),
    "softmax": (lambda L, x: L.F.softmax(x, dim=1), [X]),
    "log_softmax": (lambda L, x: L.F.log_softmax(x, dim=-1), [X]),
    "dropout_eval": (lambda L, x: L.F.dropout(x, 0.5, training=False), [X]),
    "layer_norm": (
        lambda L, x, w, b: L.F.layer_norm(x, (5,), w, b),
        [X, ((5,), "any"), ((5,), "any")],
    ),
    "layer_norm_plain": (lambda L, x: L.F.layer_norm(x, (4, 5)), [((2, 4, 5), "any")]),
    "embedding": (
        lambda L, w: L.F.embedding(_arr(L, np.array([[0, 3], [3, 1]])), w),
        [((4, 3), "any")],
    ),
    "mse_loss": (lambda L, x, y: L.F.mse_loss(x, y), [X, X]),
    "mse_loss_const": (lambda L, x: L.F.mse_loss(x, _arr(L, np.ones((4, 5), np.float32))), [X]),
    "mse_loss_sum": (lambda L, x, y: L.F.mse_loss(x, y, reduction="sum"), [X, X]),
    "l1_loss": (lambda L, x, y: L.F.l1_loss(x, y), [X, X]),
    "l1_loss_none": (lambda L, x, y: L.F.l1_loss(x, y, reduction="none"), [X, X]),
    "nll_loss": (lambda L, x: L.F.nll_loss(L.F.log_softmax(x, 1), _arr(L, TGT)), [X]),
    "nll_loss_weight": (
        lambda L, x: L.F.nll_loss(x, _arr(L, TGT), weight=_arr(L, W_CLS), reduction="sum"),
        [X],
    ),
    "cross_entropy": (lambda L, x: L.F.cross_entropy(x, _arr(L, TGT)), [X]),
    "cross_entropy_sum": (lambda L, x: L.F.cross_entropy(x, _arr(L, TGT), reduction="sum"), [X]),
    "cross_entropy_none": (
        lambda L, x: L.F.cross_entropy(x, _arr(L, TGT), reduction="none"),
        [X],
    ),
    "cross_entropy_weight": (
        lambda L, x: L.F.cross_entropy(x, _arr(L, TGT), weight=_arr(L, W_CLS)),
        [X],
    ),
    "cross_entropy_smoothing": (
        lambda L, x: L.F.cross_entropy(x, _arr(L, TGT), label_smoothing=0.1),
        [X],
    ),
    "cross_entropy_smoothing_weight_ignore": (
        lambda L, x: L.F.cross_entropy(
            x,
            _arr(L, np.array([0, -100, 2, 1])),
            weight=_arr(L, W_CLS),
            label_smoothing=0.2,
        ),
        [X],
    ),
    "cross_entropy_3d": (
        lambda L, x: L.F.cross_entropy(x, _arr(L, np.array([[0, 2], [1, 1]]))),
        [((2, 3, 2), "any")],
    ),
    "binary_cross_entropy": (
        lambda L, x: L.F.binary_cross_entropy(x, _arr(L, np.float32([[0, 1, 1], [0.3, 0, 1]]))),
        [((2, 3), "prob")],
    ),
    "binary_cross_entropy_weight": (
        lambda L, x, t: L.F.binary_cross_entropy(
            x, t, weight=_arr(L, np.float32([1.0, 2.0, 0.5])), reduction="sum"
        ),
        [((2, 3), "prob"), ((2, 3), "prob")],
    ),
    "bce_with_logits": (
        lambda L, x, t: L.F.binary_cross_entropy_with_logits(x, t),
        [((2, 3), "any"), ((2, 3), "prob")],
    ),
    "bce_with_logits_pos_weight": (
        lambda L, x: L.F.binary_cross_entropy_with_logits(
            x,
            _arr(L, np.float32([[0, 1, 1], [1, 0, 1]])),
            weight=_arr(L, np.float32([1.0, 2.0, 0.5])),
            pos_weight=_arr(L, np.float32([3.0, 1.0, 0.5])),
            reduction="none",
        ),
        [((2, 3), "any")],
    ),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONAL))
def test_functional_stays_float32(name):
    fn, specs = FUNCTIONAL[name]
    _check(fn, specs)


def test_dropout_training_stays_float32():
    x = mg.tensor(_data(np.random.default_rng(1), (50, 40)), requires_grad=True)
    out = MF.dropout(x, 0.25, training=True, generator=np.random.default_rng(0))
    _f32(out.data, "dropout forward")
    kept = out.data != 0
    _close(out.data[kept], x.data[kept] / np.float32(0.75), "dropout scale")
    out.backward(np.ones(out.shape, np.float32))
    _f32(x.grad, "dropout grad")
    _close(x.grad, np.where(kept, np.float32(1 / 0.75), 0), "dropout grad")


# ----------------------------------------------------------------------------------- layers


def _layer_pairs():
    gen = np.random.default_rng(3)
    return {
        "Linear": (nn.Linear(5, 3, generator=gen), torch.nn.Linear(5, 3), (4, 5)),
        "Linear_nobias": (
            nn.Linear(5, 3, bias=False, generator=gen),
            torch.nn.Linear(5, 3, bias=False),
            (2, 4, 5),
        ),
        "ReLU": (nn.ReLU(), torch.nn.ReLU(), (4, 5)),
        "LeakyReLU": (nn.LeakyReLU(0.1), torch.nn.LeakyReLU(0.1), (4, 5)),
        "Tanh": (nn.Tanh(), torch.nn.Tanh(), (4, 5)),
        "Sigmoid": (nn.Sigmoid(), torch.nn.Sigmoid(), (4, 5)),
        "GELU": (nn.GELU(), torch.nn.GELU(), (4, 5)),
        "GELU_tanh": (nn.GELU("tanh"), torch.nn.GELU("tanh"), (4, 5)),
        "Softmax": (nn.Softmax(dim=1), torch.nn.Softmax(dim=1), (4, 5)),
        "Dropout_eval": (nn.Dropout(0.3).eval(), torch.nn.Dropout(0.3).eval(), (4, 5)),
        "LayerNorm": (nn.LayerNorm(5), torch.nn.LayerNorm(5), (4, 5)),
        "LayerNorm_2d": (nn.LayerNorm((3, 5)), torch.nn.LayerNorm((3, 5)), (2, 3, 5)),
        "Flatten": (nn.Flatten(), torch.nn.Flatten(), (2, 3, 5)),
        "Identity": (nn.Identity(), torch.nn.Identity(), (4, 5)),
        "Sequential": (
            nn.Sequential(
                nn.Linear(5, 8, generator=gen),
                nn.GELU(),
                nn.LayerNorm(8),
                nn.Linear(8, 3, generator=gen),
                nn.Softmax(dim=-1),
            ),
            torch.nn.Sequential(
                torch.nn.Linear(5, 8),
                torch.nn.GELU(),
                torch.nn.LayerNorm(8),
                torch.nn.Linear(8, 3),
                torch.nn.Softmax(dim=-1),
            ),
            (4, 5),
        ),
    }


LAYERS = sorted(_layer_pairs())


def _perturb_state(module):
    """Random float32 values for every parameter (LayerNorm's ones/zeros hide little)."""
    rng = np.random.default_rng(11)
    state = {k: _data(rng, v.shape) for k, v in module.state_dict().items()}
    module.load_state_dict(state)
    return state


@pytest.mark.parametrize("name", LAYERS)
def test_layer_stays_float32(name):
    layer, twin, shape = _layer_pairs()[name]
    for key, value in layer.state_dict().items():
        _f32(value, f"{name}.{key} at construction")
    state = _perturb_state(layer)
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    rng = np.random.default_rng(5)
    xa = _data(rng, shape)
    x, tx = mg.tensor(xa, requires_grad=True), torch.tensor(xa, requires_grad=True)
    out, tout = layer(x), twin(tx)
    _f32(out.data, f"{name} forward")
    _close(out.data, tout, f"{name} forward")
    g = _data(rng, tout.shape)
    out.backward(g)
    tout.backward(torch.from_numpy(g))
    _f32(x.grad, f"{name} input grad")
    _close(x.grad, tx.grad, f"{name} input grad")
    tparams = dict(twin.named_parameters())
    for key, p in layer.named_parameters():
        _f32(p.data, f"{name}.{key}")
        _f32(p.grad, f"{name}.{key} grad")
        _close(p.grad, tparams[key].grad, f"{name}.{key} grad")


def test_embedding_layer_stays_float32():
    emb, twin = nn.Embedding(6, 3, padding_idx=1), torch.nn.Embedding(6, 3, padding_idx=1)
    _f32(emb.weight.data, "Embedding weight")
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in emb.state_dict().items()})
    idx = np.array([[0, 1, 5], [5, 2, 0]])
    out, tout = emb(mg.tensor(idx)), twin(torch.from_numpy(idx))
    _f32(out.data, "Embedding forward")
    _close(out.data, tout, "Embedding forward")
    g = _data(np.random.default_rng(2), tout.shape)
    out.backward(g)
    tout.backward(torch.from_numpy(g))
    _f32(emb.weight.grad, "Embedding weight grad")
    _close(emb.weight.grad, twin.weight.grad, "Embedding weight grad")


def test_lora_linear_stays_float32():
    gen = np.random.default_rng(4)
    lora = nn.LoRALinear(nn.Linear(5, 3, generator=gen), rank=2, alpha=3.0)
    _perturb_state(lora)
    for key, value in lora.state_dict().items():
        _f32(value, f"LoRALinear.{key}")
    _f32(lora.merged_weight(), "merged_weight")
    params = {k: torch.tensor(v, requires_grad=True) for k, v in lora.state_dict().items()}
    xa = _data(np.random.default_rng(6), (4, 5))
    x, tx = mg.tensor(xa, requires_grad=True), torch.tensor(xa, requires_grad=True)
    out = lora(x)
    tout = TF.linear(tx, params["base.weight"], params["base.bias"]) + 1.5 * (
        tx @ params["A"].T @ params["B"].T
    )
    _f32(out.data, "LoRALinear forward")
    _close(out.data, tout, "LoRALinear forward")
    out.backward(np.ones(out.shape, np.float32))
    tout.backward(torch.ones(tout.shape))
    _f32(x.grad, "LoRALinear input grad")
    _close(x.grad, tx.grad, "LoRALinear input grad")
    for key, p in lora.named_parameters():
        if not p.requires_grad:
            continue
        _f32(p.grad, f"LoRALinear.{key} grad")
        _close(p.grad, params[key].grad, f"LoRALinear.{key} grad")
    assert lora.base.weight.grad is None


def test_module_float_and_defaults():
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Embedding(5, 4))
    assert all(p.dtype == np.float32 for p in model.parameters())
    model.double().float()
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert mg.tensor([1.0, 2.0]).dtype == np.float32
    assert mg.tensor(1.5).dtype == np.float32
    for made in (
        mg.zeros(2),
        mg.ones(2),
        mg.randn(2),
        mg.rand(2),
        mg.full((2,), 1.5),
        mg.arange(0.0, 1.0, 0.25),
        mg.zeros_like(mg.ones(2)),
        mg.ones_like(mg.ones(2)),
    ):
        assert made.dtype == np.float32, made


# ------------------------------------------------------------------------ scalars as operands

BINARY = {
    "add": lambda a, b: a + b,
    "radd": lambda a, b: b + a,
    "sub": lambda a, b: a - b,
    "rsub": lambda a, b: b - a,
    "mul": lambda a, b: a * b,
    "rmul": lambda a, b: b * a,
    "div": lambda a, b: a / b,
    "rdiv": lambda a, b: b / a,
    "pow": lambda a, b: a**b,
    "rpow": lambda a, b: b**a,
    "method_add": lambda a, b: a.add(b),
    "method_mul": lambda a, b: a.mul(b),
    "method_div": lambda a, b: a.div(b),
    "method_pow": lambda a, b: a.pow(b),
    "maximum": None,  # mg.maximum(x, x * 0 + scalar): special-cased below
}


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("kind", ["python_float", "np_float64_scalar", "np_float32_scalar"])
def test_scalar_operand_keeps_float32(op, kind):
    """api.md: a Python scalar never changes a tensor's dtype; minigrad counts a numpy scalar
    as the number it holds (tensor.py ``_operand``), as torch does."""
    scalar = {"python_float": 1.75, "np_float64_scalar": np.float64(1.75)}.get(kind)
    scalar = np.float32(1.75) if scalar is None else scalar
    xa = _data(np.random.default_rng(0), (3, 4), "pos")
    x, tx = mg.tensor(xa, requires_grad=True), torch.tensor(xa, requires_grad=True)
    fn = BINARY[op]
    if op == "maximum":
        out, tout = mg.maximum(x, x * 0 + scalar), torch.maximum(tx, tx * 0 + scalar)
    else:
        out, tout = fn(x, scalar), fn(tx, scalar)
    assert tout.dtype == torch.float32
    _f32(out.data, f"{op} with {kind}")
    _close(out.data, tout, f"{op} with {kind}")
    out.backward(np.ones(out.shape, np.float32))
    tout.backward(torch.ones(tout.shape))
    _f32(x.grad, f"{op} with {kind} grad")
    _close(x.grad, tx.grad, f"{op} with {kind} grad")


SCALAR_ARGS = {
    "clamp": (lambda L, x, s: x.clamp(-s, s)),
    "where": (lambda L, x, s: L.t.where(x > 0, x, s)),
    "maximum": (lambda L, x, s: L.t.maximum(x, s) if L is MG else torch.maximum(x, x * 0 + s)),
    "pow": (lambda L, x, s: L.t.pow(x.abs() + 1, s)),
    "leaky_relu": (lambda L, x, s: L.F.leaky_relu(x, s)),
    "LeakyReLU_module": (
        lambda L, x, s: (nn.LeakyReLU(s) if L is MG else torch.nn.LeakyReLU(s))(x)
    ),
    "layer_norm_eps": (lambda L, x, s: L.F.layer_norm(x, (4,), eps=s)),
    "LayerNorm_module_eps": (
        lambda L, x, s: (nn.LayerNorm(4, eps=s) if L is MG else torch.nn.LayerNorm(4, eps=s))(x)
    ),
    "dropout_eval": (lambda L, x, s: L.F.dropout(x, s, training=False)),
    "label_smoothing": (
        lambda L, x, s: L.F.cross_entropy(x, _arr(L, np.array([0, 3, 2])), label_smoothing=s)
    ),
}


@pytest.mark.parametrize("name", sorted(SCALAR_ARGS))
@pytest.mark.parametrize("scalar", [0.3, np.float64(0.3)], ids=["python", "np_float64"])
def test_scalar_arguments_keep_float32(name, scalar):
    """Scalars as arguments (clamp bounds, where's branch, leaky slope, eps...) keep float32.

    ``np.float64`` is a subclass of Python ``float``, so api.md's "a Python scalar never changes
    a tensor's dtype" covers it; torch keeps float32 for it everywhere here."""
    fn = SCALAR_ARGS[name]
    xa = _data(np.random.default_rng(0), (3, 4))
    x, tx = mg.tensor(xa, requires_grad=True), torch.tensor(xa, requires_grad=True)
    out, tout = fn(MG, x, scalar), fn(TO, tx, scalar)
    assert tout.dtype == torch.float32
    _f32(out.data, f"{name}({scalar!r}) forward")
    _close(out.data, tout, f"{name}({scalar!r}) forward")
    out.backward(np.ones(out.shape, np.float32))
    tout.backward(torch.ones(tout.shape))
    _f32(x.grad, f"{name}({scalar!r}) grad")
    _close(x.grad, tx.grad, f"{name}({scalar!r}) grad")


@pytest.mark.parametrize("op", ["add", "radd", "mul", "rmul", "sub", "div", "rdiv", "pow"])
@pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")
def test_zero_d_float64_array_promotes_as_an_array(op):  # (the warning is torch's, with numpy 2)
    """api.md: two arrays promote as numpy does, so a 0-d float64 ndarray gives float64 (torch
    also gives float64 for ``float32_tensor <op> np.array(2.0)``); the grad stays float32."""
    xa = _data(np.random.default_rng(0), (3, 4), "pos")
    x = mg.tensor(xa, requires_grad=True)
    other = np.array(1.75)
    out = BINARY[op](x, other)
    assert out.dtype == np.float64
    if not op.startswith("r"):  # ndarray <op> torch.Tensor is numpy's business, not torch's
        assert BINARY[op](torch.tensor(xa), other).dtype == torch.float64
    out.backward(np.ones(out.shape))
    _f32(x.grad, f"{op} with 0-d float64 array grad")
    # 0-d float32 array: stays float32.
    assert BINARY[op](mg.tensor(xa), np.array(1.75, dtype=np.float32)).dtype == np.float32


# ------------------------------------------------------------------------ optimizers

OPTIMIZERS = {
    "SGD": ("SGD", {"lr": 0.1}),
    "SGD_momentum": ("SGD", {"lr": 0.05, "momentum": 0.9}),
    "SGD_momentum_dampening_wd": (
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
    ),
    "SGD_nesterov_wd": (
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    ),
    "Adam": ("Adam", {"lr": 0.01}),
    "Adam_wd_amsgrad": ("Adam", {"lr": 0.01, "weight_decay": 0.01, "amsgrad": True}),
    "AdamW": ("AdamW", {"lr": 0.01}),
    "AdamW_amsgrad": ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    "RMSprop": ("RMSprop", {"lr": 0.01}),
    "RMSprop_centered": ("RMSprop", {"lr": 0.01, "centered": True}),
    "RMSprop_momentum": ("RMSprop", {"lr": 0.01, "momentum": 0.9}),
    "RMSprop_centered_momentum_wd": (
        "RMSprop",
        {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.01, "alpha": 0.9},
    ),
}


def _twins(seed=0):
    gen = np.random.default_rng(seed)
    model = nn.Sequential(
        nn.Linear(4, 16, generator=gen), nn.Tanh(), nn.Linear(16, 3, generator=gen)
    )
    twin = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    rng = np.random.default_rng(seed + 1)
    xs = _data(rng, (20, 8, 4))
    ys = rng.integers(0, 3, size=(20, 8))
    return model, twin, xs, ys


def _check_state(opt, topt, what, rtol):
    state = opt.state_dict()["state"]
    tstate = topt.state_dict()["state"]
    assert sorted(state) == sorted(tstate), what
    for idx, buffers in state.items():
        for key, value in buffers.items():
            if key == "step":
                continue
            _f32(value, f"{what}: state[{idx}][{key!r}]")
            expected = tstate[idx][key].numpy()
            atol = rtol * float(np.abs(expected).max())  # round-off scales with the buffer
            _close(value, expected, f"{what}: state[{idx}][{key!r}]", rtol, atol)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_training_stays_float32(name):
    cls, kwargs = OPTIMIZERS[name]
    model, twin, xs, ys = _twins()
    opt = getattr(optim, cls)(model.parameters(), **kwargs)
    topt = getattr(torch.optim, cls)(twin.parameters(), **kwargs)
    for step, (xa, ya) in enumerate(zip(xs, ys)):
        opt.zero_grad()
        topt.zero_grad()
        loss = MF.cross_entropy(model(mg.tensor(xa)), mg.tensor(ya))
        tloss = TF.cross_entropy(twin(torch.from_numpy(xa)), torch.from_numpy(ya))
        _f32(loss.data, f"{name} step {step} loss")
        loss.backward()
        tloss.backward()
        if step == 0:
            _close(loss.data, tloss, "first loss")
            for p, tp in zip(model.parameters(), twin.parameters()):
                _close(p.grad, tp.grad, "first grads")
        opt.step()
        with torch.no_grad():
            topt.step()
        for key, p in model.named_parameters():
            _f32(p.data, f"{name} step {step}: {key}")
            _f32(p.grad, f"{name} step {step}: {key}.grad")
        _check_state(opt, topt, f"{name} step {step}", rtol=1e-4 if step < 19 else 2e-4)
    for (key, p), tp in zip(model.named_parameters(), twin.parameters()):
        _close(p.data, tp, f"{name}: {key} after 20 steps", rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_optimizer_with_numpy_float64_hyperparameters(cls):
    """Hyperparameters that are numpy float64 scalars (from a config, np.linspace...) must not
    turn the parameters or the state buffers into float64."""
    kwargs = {
        "SGD": {
            "lr": np.float64(0.05),
            "momentum": np.float64(0.9),
            "weight_decay": np.float64(0.01),
            "nesterov": True,
        },
        "Adam": {
            "lr": np.float64(0.01),
            "betas": (np.float64(0.9), np.float64(0.99)),
            "eps": np.float64(1e-8),
            "weight_decay": np.float64(0.01),
            "amsgrad": True,
        },
        "AdamW": {
            "lr": np.float64(0.01),
            "betas": (np.float64(0.9), np.float64(0.99)),
            "weight_decay": np.float64(0.1),
        },
        "RMSprop": {
            "lr": np.float64(0.01),
            "alpha": np.float64(0.9),
            "momentum": np.float64(0.5),
            "centered": True,
        },
    }[cls]
    model, twin, xs, ys = _twins(2)
    opt = getattr(optim, cls)(model.parameters(), **kwargs)
    tkw = {k: (tuple(map(float, v)) if isinstance(v, tuple) else v) for k, v in kwargs.items()}
    tkw = {k: (float(v) if isinstance(v, np.floating) else v) for k, v in tkw.items()}
    topt = getattr(torch.optim, cls)(twin.parameters(), **tkw)
    for xa, ya in zip(xs[:5], ys[:5]):
        opt.zero_grad()
        topt.zero_grad()
        MF.cross_entropy(model(mg.tensor(xa)), mg.tensor(ya)).backward()
        TF.cross_entropy(twin(torch.from_numpy(xa)), torch.from_numpy(ya)).backward()
        opt.step()
        topt.step()
        for key, p in model.named_parameters():
            _f32(p.data, f"{cls}: {key}")
        _check_state(opt, topt, cls, rtol=1e-4)
    for (key, p), tp in zip(model.named_parameters(), twin.parameters()):
        _close(p.data, tp, f"{cls}: {key}", rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.1, np.float64(100.0)])
def test_clip_grad_norm_stays_float32(norm_type, max_norm):
    model, twin, xs, ys = _twins(4)
    MF.cross_entropy(model(mg.tensor(xs[0])), mg.tensor(ys[0])).backward()
    TF.cross_entropy(twin(torch.from_numpy(xs[0])), torch.from_numpy(ys[0])).backward()
    total = nn.utils.clip_grad_norm_(model.parameters(), max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(twin.parameters(), float(max_norm), norm_type=norm_type)
    _f32(total.data, "clip_grad_norm_ total")
    assert ttotal.dtype == torch.float32
    _close(total.data, ttotal, "clip_grad_norm_ total")
    for (key, p), tp in zip(model.named_parameters(), twin.parameters()):
        _f32(p.grad, f"clipped {key}.grad")
        _close(p.grad, tp.grad, f"clipped {key}.grad")
