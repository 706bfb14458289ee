"""minigrad.nn and minigrad.optim against PyTorch: gaps left by test_nn/test_optim/test_functional.

Covers: whole-model training (LayerNorm, GELU, Tanh, Linear, cross-entropy with weights and
label smoothing) in float64 with every optimizer and a scheduler, resumed mid-run from state
dicts; Module API corners (tied weights, duplicate children, Sequential slices, assigning a
plain tensor to a parameter slot, ``apply``); raise-or-not parity of hyper-parameters and
scheduler arguments; and loss edge cases (every target ignored with sum/none, empty batches,
zero total class weight).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn, optim
from minigrad.optim import lr_scheduler

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RTOL, ATOL = 1e-12, 1e-14
STEPS = 20


# ============================================================================= helpers


def _to_np(obj):
    """A torch state dict (nested) with tensors turned into numpy arrays / numbers."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().numpy().copy()
    if isinstance(obj, dict):
        return {k: _to_np(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_np(v) for v in obj]
    return obj


def _mg_model():
    return nn.Sequential(
        nn.Linear(6, 8, dtype=mg.float64),
        nn.LayerNorm(8, dtype=mg.float64),
        nn.GELU(),
        nn.Linear(8, 8, dtype=mg.float64),
        nn.Tanh(),
        nn.Linear(8, 4, dtype=mg.float64),
    )


def _torch_model():
    return torch.nn.Sequential(
        torch.nn.Linear(6, 8),
        torch.nn.LayerNorm(8),
        torch.nn.GELU(),
        torch.nn.Linear(8, 8),
        torch.nn.Tanh(),
        torch.nn.Linear(8, 4),
    ).double()


def _twins(seed=0):
    torch.manual_seed(seed)
    tm = _torch_model()
    with torch.no_grad():  # LayerNorm starts at ones/zeros: move it so it matters
        tm[1].weight.add_(torch.randn(8, dtype=torch.float64) * 0.3)
        tm[1].bias.add_(torch.randn(8, dtype=torch.float64) * 0.3)
    mm = _mg_model()
    mm.load_state_dict(_to_np(tm.state_dict()))
    return mm, tm


def _batches(steps=STEPS, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((10, 6)), rng.integers(0, 4, size=10)) for _ in range(steps)]


CLASS_WEIGHT = np.array([0.5, 1.0, 2.0, 1.5])


def _mg_step(model, opt, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(mg.tensor(x)), y, weight=CLASS_WEIGHT, label_smoothing=0.1)
    loss.backward()
    opt.step()
    return loss.item()


def _torch_step(model, opt, x, y):
    opt.zero_grad()
    loss = TF.cross_entropy(
        model(torch.from_numpy(x)),
        torch.from_numpy(y),
        weight=torch.from_numpy(CLASS_WEIGHT),
        label_smoothing=0.1,
    )
    loss.backward()
    opt.step()
    return loss.item()


def _assert_models_match(mm, tm, step):
    tsd = tm.state_dict()
    msd = mm.state_dict()
    assert list(msd) == list(tsd)
    for key in tsd:
        np.testing.assert_allclose(
            msd[key], tsd[key].numpy(), rtol=RTOL, atol=ATOL, err_msg=f"step {step}, {key}"
        )


OPTIMIZERS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.01}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("RMSprop", {"lr": 0.005}),
    ("RMSprop", {"lr": 0.005, "momentum": 0.5, "centered": True, "weight_decay": 0.01}),
]
SCHEDULERS = [
    ("StepLR", {"step_size": 3, "gamma": 0.7}),
    ("CosineAnnealingLR", {"T_max": 6, "eta_min": 1e-4}),
]


def _groups(model, lib):
    """Two parameter groups: the body with defaults, the head with its own lr."""
    params = list(model.parameters())
    return [{"params": params[:-2]}, {"params": params[-2:], "lr": 0.02}]


# ============================================================================= training


@pytest.mark.parametrize("sched", SCHEDULERS, ids=lambda s: s[0])
@pytest.mark.parametrize("name, kwargs", OPTIMIZERS, ids=str)
def test_model_training_with_groups_and_scheduler_matches_torch(name, kwargs, sched):
    mm, tm = _twins()
    mg_opt = getattr(optim, name)(_groups(mm, "mg"), **kwargs)
    t_opt = getattr(torch.optim, name)(_groups(tm, "torch"), foreach=False, **kwargs)
    mg_s = getattr(lr_scheduler, sched[0])(mg_opt, **sched[1])
    t_s = getattr(torch.optim.lr_scheduler, sched[0])(t_opt, **sched[1])
    start = mm.state_dict()
    for step, (x, y) in enumerate(_batches()):
        lm = _mg_step(mm, mg_opt, x, y)
        lt = _torch_step(tm, t_opt, x, y)
        mg_s.step()
        t_s.step()
        assert lm == pytest.approx(lt, rel=RTOL, abs=ATOL), f"loss at step {step}"
        assert mg_s.get_last_lr() == pytest.approx(t_s.get_last_lr(), rel=1e-15)
        _assert_models_match(mm, tm, step)
    assert not np.allclose(mm.state_dict()["0.weight"], start["0.weight"])


@pytest.mark.parametrize("name, kwargs", OPTIMIZERS, ids=str)
def test_resuming_model_optimizer_and_scheduler_mid_training_matches_uninterrupted_torch(
    name, kwargs
):
    """Train 8 steps, copy model/optimizer/scheduler state into fresh minigrad objects (from
    minigrad's own state dicts), train 12 more; torch runs the 20 steps uninterrupted."""
    mm, tm = _twins()
    mg_opt = getattr(optim, name)(mm.parameters(), **kwargs)
    t_opt = getattr(torch.optim, name)(tm.parameters(), foreach=False, **kwargs)
    mg_s = lr_scheduler.StepLR(mg_opt, step_size=4, gamma=0.5)
    t_s = torch.optim.lr_scheduler.StepLR(t_opt, step_size=4, gamma=0.5)
    batches = _batches()
    for step, (x, y) in enumerate(batches):
        if step == 8:
            m_sd, o_sd, s_sd = mm.state_dict(), mg_opt.state_dict(), mg_s.state_dict()
            mm = _mg_model()
            mm.load_state_dict(m_sd)
            mg_opt = getattr(optim, name)(mm.parameters(), **kwargs)
            mg_opt.load_state_dict(o_sd)
            mg_s = lr_scheduler.StepLR(mg_opt, step_size=4, gamma=0.5)
            mg_s.load_state_dict(s_sd)
        _mg_step(mm, mg_opt, x, y)
        _torch_step(tm, t_opt, x, y)
        mg_s.step()
        t_s.step()
        _assert_models_match(mm, tm, step)


@pytest.mark.parametrize("name, kwargs", OPTIMIZERS, ids=str)
def test_torch_checkpoint_mid_training_resumes_in_minigrad(name, kwargs):
    """Torch trains 8 steps; minigrad loads torch's model and optimizer state dicts and
    continues; both must stay equal to an uninterrupted torch run."""
    _, tm = _twins()
    t_opt = getattr(torch.optim, name)(tm.parameters(), foreach=False, **kwargs)
    batches = _batches()
    for x, y in batches[:8]:
        _torch_step(tm, t_opt, x, y)
    mm = _mg_model()
    mm.load_state_dict(_to_np(tm.state_dict()))
    mg_opt = getattr(optim, name)(mm.parameters(), **kwargs)
    mg_opt.load_state_dict(_to_np(t_opt.state_dict()))
    for step, (x, y) in enumerate(batches[8:], start=8):
        _mg_step(mm, mg_opt, x, y)
        _torch_step(tm, t_opt, x, y)
        _assert_models_match(mm, tm, step)


@pytest.mark.parametrize("name, kwargs", OPTIMIZERS, ids=str)
def test_optimizer_state_dict_keys_and_shapes_match_torch_after_training(name, kwargs):
    mm, tm = _twins()
    mg_opt = getattr(optim, name)(_groups(mm, "mg"), **kwargs)
    t_opt = getattr(torch.optim, name)(_groups(tm, "torch"), foreach=False, **kwargs)
    for x, y in _batches(3):
        _mg_step(mm, mg_opt, x, y)
        _torch_step(tm, t_opt, x, y)
    msd, tsd = mg_opt.state_dict(), t_opt.state_dict()
    assert sorted(msd["state"]) == sorted(tsd["state"])
    for index, tstate in tsd["state"].items():
        mstate = msd["state"][index]
        assert sorted(mstate) == sorted(tstate), f"param {index}"
        for key, value in tstate.items():
            if key == "step":
                assert int(mstate[key]) == int(value.item())
            elif value is None:
                assert mstate[key] is None
            else:
                assert np.shape(mstate[key]) == tuple(value.shape), f"{index} {key}"
                np.testing.assert_allclose(mstate[key], value.numpy(), rtol=1e-9, atol=1e-12)
    for mg_group, t_group in zip(msd["param_groups"], tsd["param_groups"]):
        assert mg_group["params"] == t_group["params"]
        for key, value in mg_group.items():
            assert t_group[key] == value, key


# ============================================================================= hyper-parameters

BAD_HYPERPARAMETERS = [
    ("SGD", {"lr": float("nan")}),
    ("SGD", {"lr": 0.1, "dampening": -1.0}),
    ("SGD", {"lr": 0.1, "momentum": 1.5}),
    ("SGD", {"lr": 0.0}),
    ("SGD", {"lr": 0.1, "momentum": float("nan")}),
    ("Adam", {"lr": float("inf")}),
    ("Adam", {"eps": 0.0}),
    ("Adam", {"eps": float("nan")}),
    ("Adam", {"betas": (float("nan"), 0.9)}),
    ("Adam", {"weight_decay": float("nan")}),
    ("AdamW", {"weight_decay": -0.1}),
    ("AdamW", {"eps": -1.0}),
    ("RMSprop", {"alpha": 1.5}),
    ("RMSprop", {"alpha": float("nan")}),
    ("RMSprop", {"momentum": float("nan")}),
]


def _raises(fn) -> bool:
    try:
        fn()
    except Exception:
        return True
    return False


# Arguments minigrad refuses with a clear error where PyTorch accepts them (README, "Where
# minigrad differs"): a NaN learning rate for SGD, a negative scheduler period.
STRICTER = {
    ("SGD", "lr", "nan"),
    ("StepLR", "step_size", "-1"),
    ("CosineAnnealingLR", "T_max", "-2"),
}


def _stricter(name, kwargs) -> bool:
    return any((name, key, str(value)) in STRICTER for key, value in kwargs.items())


@pytest.mark.parametrize("name, kwargs", BAD_HYPERPARAMETERS, ids=str)
def test_odd_hyperparameters_raise_or_not_like_torch(name, kwargs):
    mg_raises = _raises(lambda: getattr(optim, name)([nn.Parameter(np.ones(2))], **kwargs))
    t_raises = _raises(
        lambda: getattr(torch.optim, name)([torch.ones(2, requires_grad=True)], **kwargs)
    )
    expected = True if _stricter(name, kwargs) else t_raises
    assert mg_raises == expected, f"minigrad raises: {mg_raises}, torch raises: {t_raises}"


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("StepLR", {"step_size": 0}),
        ("StepLR", {"step_size": -1}),
        ("CosineAnnealingLR", {"T_max": 0}),
        ("CosineAnnealingLR", {"T_max": -2}),
    ],
    ids=str,
)
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")
def test_scheduler_bad_arguments_raise_or_not_like_torch(name, kwargs):
    def run(lib_opt, lib_sched, param):
        sched = getattr(lib_sched, name)(lib_opt.SGD([param], lr=0.1), **kwargs)
        for _ in range(5):
            sched.step()

    mg_raises = _raises(lambda: run(optim, lr_scheduler, nn.Parameter(np.ones(2))))
    t_raises = _raises(
        lambda: run(torch.optim, torch.optim.lr_scheduler, torch.ones(2, requires_grad=True))
    )
    expected = True if _stricter(name, kwargs) else t_raises
    assert mg_raises == expected, f"minigrad raises: {mg_raises}, torch raises: {t_raises}"


def test_lr_set_by_hand_between_steps_is_used_like_torch():
    mm, tm = _twins()
    mg_opt = optim.Adam(mm.parameters(), lr=0.01)
    t_opt = torch.optim.Adam(tm.parameters(), lr=0.01, foreach=False)
    for step, (x, y) in enumerate(_batches(6)):
        if step == 3:
            mg_opt.param_groups[0]["lr"] = 0.003
            t_opt.param_groups[0]["lr"] = 0.003
        _mg_step(mm, mg_opt, x, y)
        _torch_step(tm, t_opt, x, y)
        _assert_models_match(mm, tm, step)


# ============================================================================= Module API


class _Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(3, 3, dtype=mg.float64)
        self.dec = nn.Linear(3, 3, dtype=mg.float64)
        self.dec.weight = self.enc.weight


class _TorchTied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = torch.nn.Linear(3, 3)
        self.dec = torch.nn.Linear(3, 3)
        self.dec.weight = self.enc.weight


def test_tied_weights_named_parameters_match_torch():
    assert [n for n, _ in _Tied().named_parameters()] == [
        n for n, _ in _TorchTied().named_parameters()
    ]


def test_tied_weights_state_dict_keys_match_torch():
    # torch's state_dict lists a shared parameter under every name it has.
    assert list(_Tied().state_dict()) == list(_TorchTied().state_dict())


def test_tied_weights_torch_state_dict_loads_strictly():
    tm = _TorchTied().double()
    mm = _Tied()
    mm.load_state_dict(_to_np(tm.state_dict()))
    np.testing.assert_array_equal(mm.dec.weight.data, tm.dec.weight.detach().numpy())


def test_children_lists_a_repeated_module_once_like_torch():
    layer, t_layer = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    seq, t_seq = nn.Sequential(layer, layer), torch.nn.Sequential(t_layer, t_layer)
    assert len(list(seq.children())) == len(list(t_seq.children())) == 1
    assert [n for n, _ in seq.named_children()] == [n for n, _ in t_seq.named_children()]
    assert len(list(seq.modules())) == len(list(t_seq.modules()))


def test_sequential_slice_keeps_state_dict_keys_like_torch():
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    t_seq = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 2))
    assert list(seq[1:].state_dict()) == list(t_seq[1:].state_dict())


def test_assigning_a_plain_tensor_to_a_parameter_slot_raises_type_error_like_torch():
    with pytest.raises(TypeError):
        torch.nn.Linear(2, 2).weight = torch.ones(2, 2)
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError):
        layer.weight = mg.tensor(np.ones((2, 2), dtype=np.float32))
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]


def test_module_apply_visits_children_first_and_returns_self():
    order, t_order = [], []
    seq = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Linear(2, 2)))
    t_seq = torch.nn.Sequential(
        torch.nn.Linear(2, 2), torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(2, 2))
    )
    assert seq.apply(lambda m: order.append(type(m).__name__)) is seq
    t_seq.apply(lambda m: t_order.append(type(m).__name__))
    assert order == t_order


def test_composite_model_keys_shapes_modules_and_parameters_match_torch():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(5, 3, padding_idx=0)
            self.ln = nn.LayerNorm(3, bias=False)
            self.body = nn.Sequential(
                nn.Linear(3, 4), nn.GELU(), nn.Dropout(0.1), nn.LayerNorm((4,)), nn.Flatten()
            )
            self.head = nn.Linear(4, 2, bias=False)

    class TNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(5, 3, padding_idx=0)
            self.ln = torch.nn.LayerNorm(3, bias=False)
            self.body = torch.nn.Sequential(
                torch.nn.Linear(3, 4),
                torch.nn.GELU(),
                torch.nn.Dropout(0.1),
                torch.nn.LayerNorm((4,)),
                torch.nn.Flatten(),
            )
            self.head = torch.nn.Linear(4, 2, bias=False)

    net, t_net = Net(), TNet()
    assert [(k, v.shape) for k, v in net.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in t_net.state_dict().items()
    ]
    assert [n for n, _ in net.named_modules()] == [n for n, _ in t_net.named_modules()]
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in t_net.named_parameters()]
    assert [n for n, _ in net.body.named_parameters(prefix="body")] == [
        n for n, _ in t_net.body.named_parameters(prefix="body")
    ]
    assert [n for n, _ in net.named_parameters(recurse=False)] == []
    assert len(list(net.children())) == len(list(t_net.children()))
    net.eval()
    t_net.eval()
    assert [m.training for m in net.modules()] == [m.training for m in t_net.modules()]
    net.body.train()
    t_net.body.train()
    assert [m.training for m in net.modules()] == [m.training for m in t_net.modules()]


def test_non_strict_load_reports_the_same_keys_as_torch_and_loads_the_rest():
    _, tm = _twins()
    sd = _to_np(tm.state_dict())
    del sd["3.bias"]
    sd["9.weight"] = np.ones(2)
    fresh, t_fresh = _mg_model(), _torch_model()
    result = fresh.load_state_dict(sd, strict=False)
    t_result = t_fresh.load_state_dict(
        {k: torch.from_numpy(v) for k, v in sd.items()}, strict=False
    )
    assert list(result.missing_keys) == list(t_result.missing_keys)
    assert list(result.unexpected_keys) == list(t_result.unexpected_keys)
    np.testing.assert_array_equal(fresh.state_dict()["3.weight"], sd["3.weight"])
    with pytest.raises(RuntimeError, match=r"3\.weight"):
        fresh.load_state_dict({"3.weight": np.ones((2, 2))}, strict=False)


def test_strict_load_error_leaves_model_unchanged_and_torch_also_raises():
    mm, tm = _twins()
    before = mm.state_dict()
    sd = _to_np(_torch_model().state_dict())
    sd["extra"] = np.zeros(1)
    with pytest.raises(RuntimeError, match="extra"):
        mm.load_state_dict(sd)
    with pytest.raises(RuntimeError, match="extra"):
        tm.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    for key, value in mm.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


# ============================================================================= losses, edges


def _grad_pair(mg_fn, t_fn, *arrays, grad_index=0):
    """Loss and gradient of the first array in both libraries (float64)."""
    mx = [mg.tensor(a, requires_grad=(i == grad_index)) for i, a in enumerate(arrays)]
    tx = [torch.tensor(a, requires_grad=(i == grad_index)) for i, a in enumerate(arrays)]
    mo, to = mg_fn(*mx), t_fn(*tx)
    seed = np.random.default_rng(3).standard_normal(to.shape)
    mo.backward(seed)
    to.backward(torch.from_numpy(seed))
    return mo.data, to.detach().numpy(), mx[grad_index].grad, tx[grad_index].grad.numpy()


def _assert_pair(pair):
    mo, to, mg_grad, t_grad = pair
    assert np.shape(mo) == np.shape(to)
    np.testing.assert_allclose(mo, to, rtol=1e-12, atol=1e-14, equal_nan=True)
    assert mg_grad is not None
    assert mg_grad.shape == t_grad.shape
    np.testing.assert_allclose(mg_grad, t_grad, rtol=1e-12, atol=1e-14, equal_nan=True)


CLASS_LOSSES = {
    "cross_entropy": (F.cross_entropy, TF.cross_entropy),
    "nll_loss": (F.nll_loss, TF.nll_loss),
}


# nll_loss has no label_smoothing: only cross_entropy is run with it.
LOSS_AND_SMOOTHING = [(loss, 0.0) for loss in CLASS_LOSSES] + [("cross_entropy", 0.2)]


@pytest.mark.parametrize("reduction", ["sum", "none", "mean"])
@pytest.mark.parametrize(("loss", "smoothing"), LOSS_AND_SMOOTHING)
@pytest.mark.parametrize("shape", [(4, 3), (3,), (2, 3, 2)], ids=str)
def test_all_targets_ignored_with_every_reduction_matches_torch(loss, reduction, shape, smoothing):
    mg_fn, t_fn = CLASS_LOSSES[loss]
    extra = {"label_smoothing": smoothing} if smoothing else {}
    x = np.random.default_rng(0).standard_normal(shape)
    target_shape = () if len(shape) == 1 else (shape[0], *shape[2:])
    target = np.full(target_shape, -100, dtype=np.int64)
    w = np.array([0.3, 1.0, 2.0])
    _assert_pair(
        _grad_pair(
            lambda a: mg_fn(a, target, weight=w, reduction=reduction, **extra),
            lambda a: t_fn(
                a,
                torch.from_numpy(target),
                weight=torch.from_numpy(w),
                reduction=reduction,
                **extra,
            ),
            x,
        )
    )


@pytest.mark.parametrize("reduction", ["sum", "none", "mean"])
@pytest.mark.parametrize("loss", list(CLASS_LOSSES))
def test_zero_total_class_weight_matches_torch(loss, reduction):
    mg_fn, t_fn = CLASS_LOSSES[loss]
    x = np.random.default_rng(0).standard_normal((4, 3))
    target = np.array([1, 1, 2, 1])
    w = np.array([1.0, 0.0, 0.0])
    _assert_pair(
        _grad_pair(
            lambda a: mg_fn(a, target, weight=w, reduction=reduction),
            lambda a: t_fn(
                a, torch.from_numpy(target), weight=torch.from_numpy(w), reduction=reduction
            ),
            x,
        )
    )


@pytest.mark.parametrize("reduction", ["sum", "none", "mean"])
@pytest.mark.parametrize(
    ("loss", "options"),
    [(loss, options) for loss in CLASS_LOSSES for options in ({}, {"weight": True})]
    + [("cross_entropy", {"label_smoothing": 0.1})],
    ids=str,
)
def test_class_losses_on_an_empty_batch_match_torch(loss, reduction, options):
    mg_fn, t_fn = CLASS_LOSSES[loss]
    kw_mg, kw_t = {}, {}
    if options.get("weight"):
        kw_mg["weight"], kw_t["weight"] = np.ones(3), torch.ones(3, dtype=torch.float64)
    if "label_smoothing" in options:
        kw_mg["label_smoothing"] = kw_t["label_smoothing"] = options["label_smoothing"]
    target = np.zeros(0, dtype=np.int64)
    _assert_pair(
        _grad_pair(
            lambda a: mg_fn(a, target, reduction=reduction, **kw_mg),
            lambda a: t_fn(a, torch.from_numpy(target), reduction=reduction, **kw_t),
            np.zeros((0, 3)),
        )
    )


ELEMENTWISE_LOSSES = {
    "mse_loss": (F.mse_loss, TF.mse_loss, lambda r: r.standard_normal),
    "l1_loss": (F.l1_loss, TF.l1_loss, lambda r: r.standard_normal),
    "binary_cross_entropy": (
        F.binary_cross_entropy,
        TF.binary_cross_entropy,
        lambda r: lambda shape: r.uniform(0.05, 0.95, shape),
    ),
    "binary_cross_entropy_with_logits": (
        F.binary_cross_entropy_with_logits,
        TF.binary_cross_entropy_with_logits,
        lambda r: r.standard_normal,
    ),
}


@pytest.mark.parametrize("reduction", ["sum", "none", "mean"])
@pytest.mark.parametrize("loss", list(ELEMENTWISE_LOSSES))
@pytest.mark.parametrize("shape", [(0,), (0, 3), (), (5,)], ids=str)
def test_elementwise_losses_on_empty_0d_and_1d_inputs_match_torch(loss, reduction, shape):
    mg_fn, t_fn, sampler = ELEMENTWISE_LOSSES[loss]
    rng = np.random.default_rng(0)
    x = np.asarray(sampler(rng)(shape), dtype=np.float64)
    t = np.asarray(rng.uniform(0, 1, shape), dtype=np.float64)
    for grad_index in (0, 1):
        if loss == "binary_cross_entropy" and grad_index == 1:
            continue  # torch has no derivative for target in binary_cross_entropy's formula
        with warnings.catch_warnings():  # values only here; warnings: the test below
            warnings.simplefilter("ignore", RuntimeWarning)
            pair = _grad_pair(
                lambda a, b: mg_fn(a, b, reduction=reduction),
                lambda a, b: t_fn(a, b, reduction=reduction),
                x,
                t,
                grad_index=grad_index,
            )
        _assert_pair(pair)


@pytest.mark.parametrize("loss", list(ELEMENTWISE_LOSSES))
def test_mean_loss_of_an_empty_batch_warns_no_more_than_torch(loss):
    """torch gives nan and an empty gradient silently; minigrad must not add RuntimeWarnings."""
    mg_fn, t_fn, _ = ELEMENTWISE_LOSSES[loss]
    with warnings.catch_warnings(record=True) as t_caught:
        warnings.simplefilter("always")
        tx = torch.zeros((0, 3), dtype=torch.float64, requires_grad=True)
        t_fn(tx, torch.zeros((0, 3), dtype=torch.float64)).backward()
    with warnings.catch_warnings(record=True) as mg_caught:
        warnings.simplefilter("always")
        mx = mg.tensor(np.zeros((0, 3)), requires_grad=True)
        mg_fn(mx, np.zeros((0, 3))).backward()
    assert mx.grad is not None and mx.grad.shape == (0, 3)
    mg_msgs = [f"{w.filename}:{w.lineno}: {w.message}" for w in mg_caught]
    assert len(mg_msgs) == len(t_caught), mg_msgs


def test_bce_with_logits_weight_and_pos_weight_broadcast_on_3d_matches_torch():
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((2, 3, 4)) * 5, rng.uniform(0, 1, (2, 3, 4))
    w, pw = rng.uniform(0.5, 2, (3, 1)), rng.uniform(0.5, 3, (4,))
    for reduction in ("mean", "sum", "none"):
        _assert_pair(
            _grad_pair(
                lambda a: F.binary_cross_entropy_with_logits(
                    a, t, weight=w, pos_weight=pw, reduction=reduction
                ),
                lambda a: TF.binary_cross_entropy_with_logits(
                    a,
                    torch.from_numpy(t),
                    weight=torch.from_numpy(w),
                    pos_weight=torch.from_numpy(pw),
                    reduction=reduction,
                ),
                x,
            )
        )


def test_cross_entropy_1d_input_ignored_target_and_smoothing_matches_torch():
    x = np.array([0.3, -1.2, 2.0, 0.5])
    for target in (np.array(2), np.array(-100)):
        for smoothing in (0.0, 0.3):
            for reduction in ("mean", "sum", "none"):
                _assert_pair(
                    _grad_pair(
                        lambda a: F.cross_entropy(
                            a, target, reduction=reduction, label_smoothing=smoothing
                        ),
                        lambda a: TF.cross_entropy(
                            a,
                            torch.from_numpy(target),
                            reduction=reduction,
                            label_smoothing=smoothing,
                        ),
                        x,
                    )
                )
    assert math.isnan(float(F.cross_entropy(mg.tensor(x), np.array(-100)).item()))
