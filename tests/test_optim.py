"""Optimizers and schedulers against torch.optim: same problem, same numbers, step after step.

Each comparison runs one float64 problem on both sides: identical starting weights, and every
step a gradient computed by the same numpy formula from that side's *current* weights (a
noisy quadratic), so a wrong update shows up in the next step's gradient as well.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.optim import lr_scheduler

torch = pytest.importorskip("torch")

STEPS = 20
SHAPES = [(3, 4), (4,), (2, 2, 2)]
RTOL, ATOL = 1e-10, 1e-12


class Problem:
    """A noisy quadratic: grad_i(w) = scale * (curvature_i * (w - target_i) + noise_i[step])."""

    def __init__(self, seed: int = 0, scale: float = 1.0, steps: int = STEPS) -> None:
        rng = np.random.default_rng(seed)
        self.init = [rng.standard_normal(shape) for shape in SHAPES]
        self.target = [rng.standard_normal(shape) for shape in SHAPES]
        self.curvature = [rng.uniform(0.5, 2.0, shape) for shape in SHAPES]
        self.noise = [[0.3 * rng.standard_normal(shape) for shape in SHAPES] for _ in range(steps)]
        self.scale = scale

    def grad(self, i: int, value: np.ndarray, step: int) -> np.ndarray:
        g = self.scale * (self.curvature[i] * (value - self.target[i]) + self.noise[step][i])
        return g.astype(value.dtype)

    def mg_params(self, dtype=np.float64) -> list[nn.Parameter]:
        return [nn.Parameter(a.astype(dtype)) for a in self.init]

    def torch_params(self, dtype=torch.float64) -> list:
        return [torch.tensor(a, dtype=dtype, requires_grad=True) for a in self.init]

    def set_mg_grads(self, params, step: int) -> None:
        for i, p in enumerate(params):
            p.grad = self.grad(i, p.data, step)

    def set_torch_grads(self, params, step: int) -> None:
        for i, p in enumerate(params):
            p.grad = torch.from_numpy(self.grad(i, p.detach().numpy(), step))


def make(lib: str, name: str, params, **kwargs):
    """The optimizer ``name`` of minigrad or torch; torch's forced onto its single-tensor code."""
    if lib == "mg":
        return getattr(optim, name)(params, **kwargs)
    return getattr(torch.optim, name)(params, foreach=False, **kwargs)


def assert_params_match(mg_params, torch_params, step: int, rtol=RTOL, atol=ATOL) -> None:
    for i, (p, q) in enumerate(zip(mg_params, torch_params)):
        np.testing.assert_allclose(
            p.data, q.detach().numpy(), rtol=rtol, atol=atol, err_msg=f"step {step}, param {i}"
        )


def run_both(name: str, kwargs: dict, *, groups=None, scale: float = 1.0, steps: int = STEPS):
    """Run ``steps`` updates on both sides, checking the parameters after every one.

    ``groups`` maps the parameter list to the ``params`` argument (parameter groups). A
    fourth parameter never gets a gradient: both libraries must leave it alone.
    """
    problem = Problem(scale=scale, steps=steps)
    mg_params, torch_params = problem.mg_params(), problem.torch_params()
    mg_frozen = nn.Parameter(np.arange(3.0))
    torch_frozen = torch.arange(3.0, dtype=torch.float64, requires_grad=True)
    groups = groups or (lambda ps: ps)
    mg_opt = make("mg", name, groups([*mg_params, mg_frozen]), **kwargs)
    torch_opt = make("torch", name, groups([*torch_params, torch_frozen]), **kwargs)
    for step in range(steps):
        problem.set_mg_grads(mg_params, step)
        problem.set_torch_grads(torch_params, step)
        mg_opt.step()
        torch_opt.step()
        assert_params_match(mg_params, torch_params, step)
    # Both moved a long way from the start, so matching is not trivially true.
    assert not np.allclose(mg_params[0].data, problem.init[0])
    np.testing.assert_array_equal(mg_frozen.data, np.arange(3.0))
    assert mg_frozen not in mg_opt.state
    return mg_opt, torch_opt


# ----------------------------------------------------------------------------- grids

SGD_CASES = [
    {"lr": 0.1, "momentum": m, "dampening": d, "nesterov": n, "weight_decay": wd}
    for m, d, n, wd in itertools.product([0.0, 0.9], [0.0, 0.5], [False, True], [0.0, 0.1])
    if not (n and (m == 0 or d != 0))
]
ADAM_CASES = [
    {"lr": 0.05, "amsgrad": ams, "weight_decay": wd, "betas": betas}
    for ams, wd, betas in itertools.product([False, True], [0.0, 0.1], [(0.9, 0.999), (0.6, 0.9)])
]
RMSPROP_CASES = [
    {"lr": 0.01, "centered": c, "momentum": m, "weight_decay": wd, "alpha": a}
    for c, m, wd, a in itertools.product([False, True], [0.0, 0.9], [0.0, 0.1], [0.99, 0.9])
]


@pytest.mark.parametrize("kwargs", SGD_CASES, ids=str)
def test_sgd_matches_torch(kwargs):
    mg_opt, _ = run_both("SGD", kwargs)
    has_buffer = kwargs["momentum"] != 0
    assert ("momentum_buffer" in mg_opt.state_dict()["state"].get(0, {})) == has_buffer


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("kwargs", ADAM_CASES, ids=str)
def test_adam_matches_torch(name, kwargs):
    run_both(name, kwargs)


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_matches_torch_at_tiny_gradients(name, amsgrad):
    # Gradients near eps: where the "epsilon-hat" form of Adam would part from PyTorch's.
    run_both(name, {"lr": 1e-3, "amsgrad": amsgrad}, scale=1e-8)


def test_adam_default_hyperparameters_match_torch():
    mg_opt, _ = run_both("AdamW", {})
    assert mg_opt.param_groups[0]["weight_decay"] == 1e-2
    assert optim.Adam([nn.Parameter(np.zeros(1))]).defaults == {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0,
        "amsgrad": False,
    }


@pytest.mark.parametrize("kwargs", RMSPROP_CASES, ids=str)
def test_rmsprop_matches_torch(kwargs):
    mg_opt, _ = run_both("RMSprop", kwargs)
    state = mg_opt.state_dict()["state"][0]
    assert ("grad_avg" in state) == kwargs["centered"]
    assert ("momentum_buffer" in state) == (kwargs["momentum"] > 0)


def two_groups(ps):
    return [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.01, "weight_decay": 0.2}]


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("SGD", {"lr": 0.1, "momentum": 0.9}),
        ("Adam", {"lr": 0.05, "amsgrad": True}),
        ("AdamW", {"lr": 0.05}),
        ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5}),
    ],
)
def test_param_groups_with_different_hyperparameters_match_torch(name, kwargs):
    mg_opt, _ = run_both(name, kwargs, groups=two_groups)
    assert [g["lr"] for g in mg_opt.param_groups] == [kwargs["lr"], 0.01]
    assert mg_opt.param_groups[1]["weight_decay"] == 0.2
    assert mg_opt.param_groups[0]["weight_decay"] == mg_opt.defaults["weight_decay"]


def test_add_param_group_matches_torch():
    problem = Problem()
    mg_params, torch_params = problem.mg_params(), problem.torch_params()
    mg_opt = make("mg", "Adam", mg_params[:1], lr=0.05)
    torch_opt = make("torch", "Adam", torch_params[:1], lr=0.05)
    for step in range(STEPS):
        if step == 5:  # unfreeze the rest, with its own rate
            mg_opt.add_param_group({"params": mg_params[1:], "lr": 0.01})
            torch_opt.add_param_group({"params": torch_params[1:], "lr": 0.01})
        problem.set_mg_grads(mg_params, step)
        problem.set_torch_grads(torch_params, step)
        mg_opt.step()
        torch_opt.step()
        assert_params_match(mg_params, torch_params, step)
    assert len(mg_opt.param_groups) == 2
    assert mg_opt.state[mg_params[1]]["step"] == STEPS - 5


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_float32_parameters_stay_float32(name):
    kwargs = {"lr": 0.01, "weight_decay": 0.1}
    kwargs.update({"SGD": {"momentum": 0.9}, "Adam": {"amsgrad": True}}.get(name, {}))
    if name == "RMSprop":
        kwargs.update(centered=True, momentum=0.5)
    problem = Problem()
    mg_params = problem.mg_params(np.float32)
    torch_params = problem.torch_params(torch.float32)
    mg_opt = make("mg", name, mg_params, **kwargs)
    torch_opt = make("torch", name, torch_params, **kwargs)
    for step in range(STEPS):
        problem.set_mg_grads(mg_params, step)
        problem.set_torch_grads(torch_params, step)
        mg_opt.step()
        torch_opt.step()
        assert_params_match(mg_params, torch_params, step, rtol=1e-4, atol=1e-5)
    for p in mg_params:
        assert p.dtype == np.float32
        for value in mg_opt.state[p].values():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32


# ----------------------------------------------------------------------------- with the engine


def test_training_a_linear_model_with_backward_matches_torch():
    # Gradients from each library's own backward: the optimizer inside a real training loop.
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 2))
    W0, b0 = rng.standard_normal((2, 3)), rng.standard_normal(2)
    W, b = nn.Parameter(W0), nn.Parameter(b0)
    tW = torch.tensor(W0, requires_grad=True)
    tb = torch.tensor(b0, requires_grad=True)
    mg_opt = optim.SGD([W, b], lr=0.05, momentum=0.9, nesterov=True)
    torch_opt = torch.optim.SGD([tW, tb], lr=0.05, momentum=0.9, nesterov=True, foreach=False)
    Xm, ym, Xt, yt = mg.tensor(X), mg.tensor(y), torch.tensor(X), torch.tensor(y)
    losses = []
    for step in range(STEPS):
        mg_opt.zero_grad()
        loss = ((Xm @ W.T + b - ym) ** 2).mean()
        loss.backward()
        mg_opt.step()
        torch_opt.zero_grad()
        ((Xt @ tW.T + tb - yt) ** 2).mean().backward()
        torch_opt.step()
        assert_params_match([W, b], [tW, tb], step)
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_step_with_a_closure_runs_it_with_grad_enabled_and_returns_its_loss():
    x = nn.Parameter(np.array([3.0, -2.0]))
    opt = optim.SGD([x], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (x * x).sum()
        loss.backward()
        return loss

    with mg.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 13.0
    np.testing.assert_allclose(x.data, [3.0 - 0.1 * 6.0, -2.0 + 0.1 * 4.0], rtol=1e-15)
    assert opt.step() is None


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_step_builds_no_graph_and_bumps_the_version_counter(name):
    p = nn.Parameter(np.array([1.0, -2.0, 3.0]))
    saved = p * p  # a graph that saved p's data, as it was
    opt = make("mg", name, [p], **dict(FULL_STATE)[name])
    p.grad = np.array([0.5, 0.5, -0.5])
    before = p._version.value
    assert mg.is_grad_enabled()
    opt.step()
    assert mg.is_grad_enabled()
    assert p.is_leaf and p.grad_fn is None and p.requires_grad
    assert p._version.value > before
    assert not np.allclose(p.data, [1.0, -2.0, 3.0])
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation|version"):
        saved.sum().backward()


def test_step_does_not_change_the_gradient_arrays():
    p = nn.Parameter(np.ones(3))
    grad = np.array([1.0, 2.0, 3.0])
    p.grad = grad
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.5)
    opt.step()
    opt.step()
    assert p.grad is grad
    np.testing.assert_array_equal(grad, [1.0, 2.0, 3.0])
    assert opt.state[p]["momentum_buffer"] is not grad


# ----------------------------------------------------------------------------- zero_grad


def test_zero_grad_sets_to_none_by_default():
    p, q = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    p.grad = np.ones(2)
    opt = optim.SGD([p, q], lr=0.1)
    opt.zero_grad()
    assert p.grad is None and q.grad is None


def test_zero_grad_set_to_none_false_zeros_the_same_arrays_in_place():
    p = nn.Parameter(np.ones(2, dtype=np.float32))
    grad = np.array([1.0, -4.0], dtype=np.float32)
    p.grad = grad
    opt = optim.Adam([p])
    opt.zero_grad(set_to_none=False)
    assert p.grad is grad
    np.testing.assert_array_equal(p.grad, [0.0, 0.0])
    assert p.grad.dtype == np.float32


def test_zero_grad_drops_per_sample_gradients():
    p = nn.Parameter(np.ones(2))
    p.grad, p.grad_sample = np.ones(2), np.ones((5, 2))
    opt = optim.SGD([p], lr=0.1)
    assert "lr: 0.1" in repr(opt)
    opt.zero_grad(set_to_none=False)
    assert p.grad_sample is None and p.grad is not None


def test_zero_grad_matches_torch_then_training_continues():
    problem = Problem()
    mg_params, torch_params = problem.mg_params(), problem.torch_params()
    mg_opt = make("mg", "SGD", mg_params, lr=0.1, momentum=0.9)
    torch_opt = make("torch", "SGD", torch_params, lr=0.1, momentum=0.9)
    for step in range(4):
        problem.set_mg_grads(mg_params, step)
        problem.set_torch_grads(torch_params, step)
        mg_opt.step()
        torch_opt.step()
        mg_opt.zero_grad(set_to_none=step % 2 == 0)
        torch_opt.zero_grad(set_to_none=step % 2 == 0)
        for p, q in zip(mg_params, torch_params):
            assert (p.grad is None) == (q.grad is None)
            if p.grad is not None:
                assert not p.grad.any()
    # With zeroed (not None) gradients both still step: momentum keeps moving them.
    mg_opt.step()
    torch_opt.step()
    assert_params_match(mg_params, torch_params, 4)


# ----------------------------------------------------------------------------- state_dict

FULL_STATE = [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.01}),
    ("AdamW", {"lr": 0.05, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.9, "weight_decay": 0.01}),
]


def _train(opt, params, problem, steps):
    for step in steps:
        problem.set_mg_grads(params, step)
        opt.step()


@pytest.mark.parametrize("name, kwargs", FULL_STATE)
def test_state_dict_round_trip_continues_identically(name, kwargs):
    problem = Problem()
    straight = problem.mg_params()
    opt = make("mg", name, [{"params": straight[:1]}, {"params": straight[1:]}], **kwargs)
    _train(opt, straight, problem, range(STEPS))

    first = problem.mg_params()
    opt = make("mg", name, [{"params": first[:1]}, {"params": first[1:]}], **kwargs)
    _train(opt, first, problem, range(STEPS // 2))
    saved = opt.state_dict()
    snapshot = copy.deepcopy(saved)

    resumed = [nn.Parameter(p.data) for p in first]
    # Other hyper-parameters on purpose: the loaded groups replace them.
    fresh = make("mg", name, [{"params": resumed[:1]}, {"params": resumed[1:]}], lr=1.0)
    fresh.load_state_dict(saved)
    _train(fresh, resumed, problem, range(STEPS // 2, STEPS))
    for p, q in zip(resumed, straight):
        np.testing.assert_array_equal(p.data, q.data)
    assert fresh.param_groups[0]["lr"] == kwargs["lr"]

    # state_dict() handed out copies: neither training on nor the loaded optimizer changed them.
    _train(opt, first, problem, range(STEPS // 2, STEPS))
    for index, state in snapshot["state"].items():
        for key, value in state.items():
            np.testing.assert_array_equal(saved["state"][index][key], value)
    assert saved["param_groups"] == snapshot["param_groups"]


def _to_numpy(state_dict):
    """A torch optimizer's state dict with every tensor converted to a numpy array."""
    return {
        "state": {
            index: {key: value.detach().numpy().copy() for key, value in state.items()}
            for index, state in state_dict["state"].items()
        },
        "param_groups": copy.deepcopy(state_dict["param_groups"]),
    }


def _to_torch(state_dict):
    """A minigrad optimizer's state dict with every array converted to a torch tensor."""
    return {
        "state": {
            index: {
                key: torch.from_numpy(value) if isinstance(value, np.ndarray) else value
                for key, value in state.items()
            }
            for index, state in state_dict["state"].items()
        },
        "param_groups": copy.deepcopy(state_dict["param_groups"]),
    }


@pytest.mark.parametrize("name, kwargs", FULL_STATE)
def test_state_dict_has_torchs_format(name, kwargs):
    problem = Problem()
    mg_params, torch_params = problem.mg_params(), problem.torch_params()
    mg_opt = make("mg", name, two_groups(mg_params), **kwargs)
    torch_opt = make("torch", name, two_groups(torch_params), **kwargs)
    for step in range(3):
        problem.set_mg_grads(mg_params, step)
        problem.set_torch_grads(torch_params, step)
        mg_opt.step()
        torch_opt.step()
    mg_sd, torch_sd = mg_opt.state_dict(), _to_numpy(torch_opt.state_dict())
    assert sorted(mg_sd) == ["param_groups", "state"]
    assert list(mg_sd["state"]) == list(torch_sd["state"]) == [0, 1, 2]
    for index, torch_state in torch_sd["state"].items():
        assert set(mg_sd["state"][index]) == set(torch_state)
        for key, value in torch_state.items():
            mine = mg_sd["state"][index][key]
            if key == "step":
                assert isinstance(mine, int) and mine == value
            else:
                assert isinstance(mine, np.ndarray)
                np.testing.assert_allclose(mine, value, rtol=RTOL, atol=ATOL)
    for mine, theirs in zip(mg_sd["param_groups"], torch_sd["param_groups"]):
        assert mine["params"] == theirs["params"]
        for key, value in mine.items():
            assert theirs[key] == value, key


@pytest.mark.parametrize("name, kwargs", FULL_STATE)
def test_state_dict_from_torch_loads_and_continues_as_torch(name, kwargs):
    problem = Problem()
    torch_params = problem.torch_params()
    torch_opt = make("torch", name, two_groups(torch_params), **kwargs)
    for step in range(STEPS // 2):
        problem.set_torch_grads(torch_params, step)
        torch_opt.step()

    mg_params = [nn.Parameter(q.detach().numpy()) for q in torch_params]
    mg_opt = make("mg", name, two_groups(mg_params))
    mg_opt.load_state_dict(_to_numpy(torch_opt.state_dict()))
    assert mg_opt.param_groups[1]["lr"] == 0.01
    for step in range(STEPS // 2, STEPS):
        problem.set_mg_grads(mg_params, step)
        problem.set_torch_grads(torch_params, step)
        mg_opt.step()
        torch_opt.step()
        assert_params_match(mg_params, torch_params, step)


@pytest.mark.parametrize("name, kwargs", FULL_STATE)
def test_state_dict_loads_into_torch_and_continues_as_minigrad(name, kwargs):
    problem = Problem()
    mg_params = problem.mg_params()
    mg_opt = make("mg", name, two_groups(mg_params), **kwargs)
    _train(mg_opt, mg_params, problem, range(STEPS // 2))

    torch_params = [torch.tensor(p.data, requires_grad=True) for p in mg_params]
    torch_opt = make("torch", name, two_groups(torch_params))
    torch_opt.load_state_dict(_to_torch(mg_opt.state_dict()))
    for step in range(STEPS // 2, STEPS):
        problem.set_mg_grads(mg_params, step)
        problem.set_torch_grads(torch_params, step)
        mg_opt.step()
        torch_opt.step()
        assert_params_match(mg_params, torch_params, step)


def test_load_state_dict_casts_buffers_to_the_parameter_dtype():
    p64 = nn.Parameter(np.ones(3))
    p64.grad = np.full(3, 0.5)
    opt64 = optim.Adam([p64])
    opt64.step()
    p32 = nn.Parameter(np.ones(3, dtype=np.float32))
    opt32 = optim.Adam([p32])
    opt32.load_state_dict(opt64.state_dict())
    assert opt32.state[p32]["exp_avg"].dtype == np.float32
    assert opt32.state[p32]["step"] == 1
    p32.grad = np.full(3, 0.5, dtype=np.float32)
    opt32.step()
    assert p32.dtype == np.float32 and opt32.state[p32]["step"] == 2


def test_load_state_dict_rejects_a_different_layout():
    ps = [nn.Parameter(np.ones(2)) for _ in range(3)]
    for p in ps:
        p.grad = np.ones(2)
    source = optim.SGD([{"params": ps[:2]}, {"params": ps[2:]}], lr=0.1, momentum=0.9)
    source.step()
    saved = source.state_dict()

    with pytest.raises(ValueError, match="different number of parameter groups"):
        optim.SGD([nn.Parameter(np.ones(2))], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="doesn't match the size"):
        other = [nn.Parameter(np.ones(2)) for _ in range(3)]
        optim.SGD([{"params": other[:1]}, {"params": other[1:]}], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(2,\)|shape \(2,\).*\(3,\)"):
        other = [nn.Parameter(np.ones(3)) for _ in range(3)]
        optim.SGD([{"params": other[:2]}, {"params": other[2:]}], lr=0.1).load_state_dict(saved)
    # A failed load leaves the optimizer as it was.
    target = [nn.Parameter(np.ones(2)) for _ in range(3)]
    opt = optim.SGD([{"params": target[:2]}, {"params": target[2:]}], lr=0.5)
    broken = copy.deepcopy(saved)
    broken["state"][2]["momentum_buffer"] = np.ones(5)
    with pytest.raises(ValueError):
        opt.load_state_dict(broken)
    assert opt.param_groups[0]["lr"] == 0.5 and len(opt.state) == 0


# ----------------------------------------------------------------------------- errors


def test_constructor_errors():
    p = nn.Parameter(np.ones(2))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match=r"can only optimize Tensors.*ndarray"):
        optim.Adam([p, np.ones(2)])
    with pytest.raises(TypeError, match="ordered collections"):
        optim.Adam({p})
    with pytest.raises(ValueError, match="duplicate parameters"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": p})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("SGD", {"lr": -0.1}, "Invalid learning rate"),
        ("SGD", {"lr": 0.1, "momentum": -0.5}, "Invalid momentum value"),
        ("SGD", {"lr": 0.1, "weight_decay": -1.0}, "Invalid weight_decay value"),
        ("SGD", {"lr": 0.1, "nesterov": True}, "Nesterov momentum requires"),
        ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True}, "Nesterov"),
        ("Adam", {"lr": -1e-3}, "Invalid learning rate"),
        ("Adam", {"eps": -1e-8}, "Invalid epsilon value"),
        ("Adam", {"betas": (1.0, 0.999)}, "Invalid beta parameter at index 0"),
        ("Adam", {"betas": (0.9, -0.1)}, "Invalid beta parameter at index 1"),
        ("Adam", {"weight_decay": -0.1}, "Invalid weight_decay value"),
        ("AdamW", {"lr": -1e-3}, "Invalid learning rate"),
        ("AdamW", {"betas": (0.9, 1.5)}, "Invalid beta parameter at index 1"),
        ("RMSprop", {"lr": -0.01}, "Invalid learning rate"),
        ("RMSprop", {"alpha": -0.5}, "Invalid alpha value"),
        ("RMSprop", {"eps": -1.0}, "Invalid epsilon value"),
        ("RMSprop", {"momentum": -0.9}, "Invalid momentum value"),
        ("RMSprop", {"weight_decay": -0.1}, "Invalid weight_decay value"),
    ],
)
def test_bad_hyperparameters_raise_like_torch(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make("mg", name, [nn.Parameter(np.ones(2))], **kwargs)
    with pytest.raises(ValueError, match=message):
        make("torch", name, [torch.ones(2, requires_grad=True)], **kwargs)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_bad_hyperparameters_in_a_group_raise(name):
    p, q = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        make("mg", name, [{"params": [p]}, {"params": [q], "lr": -1.0}], lr=0.1)
    opt = make("mg", name, [p], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        opt.add_param_group({"params": [q], "lr": -1.0})
    assert len(opt.param_groups) == 1


# ----------------------------------------------------------------------------- schedulers

SCHEDULERS = [
    ("StepLR", {"step_size": 4}),
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("CosineAnnealingLR", {"T_max": 10}),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 1e-3}),
    ("CosineAnnealingLR", {"T_max": 1, "eta_min": 0.02}),
]


def _scheduled_pair(name, kwargs):
    mg_opt = optim.SGD([{"params": [nn.Parameter(np.ones(2))]}], lr=0.1, momentum=0.9)
    mg_opt.add_param_group({"params": [nn.Parameter(np.ones(3))], "lr": 0.03})
    torch_opt = torch.optim.SGD([{"params": [torch.ones(2, requires_grad=True)]}], lr=0.1)
    torch_opt.add_param_group({"params": [torch.ones(3, requires_grad=True)], "lr": 0.03})
    mg_sched = getattr(lr_scheduler, name)(mg_opt, **kwargs)
    torch_sched = getattr(torch.optim.lr_scheduler, name)(torch_opt, **kwargs)
    return mg_opt, mg_sched, torch_opt, torch_sched


@pytest.mark.parametrize("name, kwargs", SCHEDULERS, ids=str)
def test_scheduler_lrs_equal_torchs(name, kwargs):
    mg_opt, mg_sched, torch_opt, torch_sched = _scheduled_pair(name, kwargs)
    assert mg_sched.get_last_lr() == torch_sched.get_last_lr() == [0.1, 0.03]
    seen = []
    for epoch in range(30):
        mg_opt.step()
        torch_opt.step()  # before the scheduler, or torch warns
        mg_sched.step()
        torch_sched.step()
        assert mg_sched.last_epoch == torch_sched.last_epoch == epoch + 1
        # Same float operations in the same order: equal to the last bit.
        assert mg_sched.get_last_lr() == torch_sched.get_last_lr(), f"epoch {epoch + 1}"
        assert [g["lr"] for g in mg_opt.param_groups] == mg_sched.get_last_lr()
        seen.append(mg_sched.get_last_lr()[0])
    assert len(set(seen)) >= 2  # the schedule did change the rate
    assert [g["initial_lr"] for g in mg_opt.param_groups] == [0.1, 0.03]


def test_cosine_annealing_follows_the_closed_form():
    p = nn.Parameter(np.ones(1))
    opt = optim.SGD([p], lr=0.5)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=8, eta_min=0.1)
    for epoch in range(1, 25):
        sched.step()
        expected = 0.1 + (0.5 - 0.1) * (1 + np.cos(np.pi * epoch / 8)) / 2
        assert sched.get_last_lr()[0] == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("name, kwargs", SCHEDULERS[1:4], ids=str)
def test_scheduler_state_dict_round_trip(name, kwargs):
    mg_opt, mg_sched, _, _ = _scheduled_pair(name, kwargs)
    for _ in range(7):
        mg_sched.step()
    saved_opt, saved_sched = mg_opt.state_dict(), mg_sched.state_dict()
    assert saved_sched["last_epoch"] == 7 and "optimizer" not in saved_sched

    resumed_opt = optim.SGD([nn.Parameter(np.ones(2))], lr=0.1, momentum=0.9)
    resumed_opt.add_param_group({"params": [nn.Parameter(np.ones(3))], "lr": 0.03})
    resumed = getattr(lr_scheduler, name)(resumed_opt, **kwargs)
    resumed_opt.load_state_dict(saved_opt)
    resumed.load_state_dict(saved_sched)
    assert resumed.get_last_lr() == mg_sched.get_last_lr()
    for _ in range(20):
        mg_sched.step()
        resumed.step()
        assert resumed.get_last_lr() == mg_sched.get_last_lr()
        assert [g["lr"] for g in resumed_opt.param_groups] == resumed.get_last_lr()


def test_scheduler_loads_torchs_state_dict():
    mg_opt, mg_sched, torch_opt, torch_sched = _scheduled_pair("CosineAnnealingLR", {"T_max": 6})
    for _ in range(4):
        torch_opt.step()
        torch_sched.step()
    for group, torch_group in zip(mg_opt.param_groups, torch_opt.param_groups):
        group["lr"] = torch_group["lr"]
    mg_sched.load_state_dict(torch_sched.state_dict())
    for _ in range(10):
        torch_opt.step()
        mg_sched.step()
        torch_sched.step()
        assert mg_sched.get_last_lr() == torch_sched.get_last_lr()


def test_scheduler_errors_and_resuming():
    opt = optim.SGD([nn.Parameter(np.ones(2))], lr=0.1)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.StepLR(torch.optim.SGD([torch.ones(1, requires_grad=True)]), step_size=2)
    with pytest.raises(ValueError, match="step_size"):
        lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        lr_scheduler.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(opt, step_size=2, last_epoch=3)
    with pytest.raises(NotImplementedError):
        lr_scheduler.LRScheduler(opt)
    # get_last_lr hands out a copy.
    sched = lr_scheduler.StepLR(opt, step_size=2)
    sched.get_last_lr().append(1.0)
    assert sched.get_last_lr() == [0.1]
