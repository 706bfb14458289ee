"""Optimizer and scheduler API corners, side by side with torch.optim (float64).

Construction (empty, generators, duplicates, frozen parameters, groups and defaults),
add_param_group, param_groups edited by hand, zero_grad, stepping with missing gradients,
state_dict/load_state_dict layouts and copies, and schedulers (state dicts, last_epoch,
chaining, several groups). Where torch accepts something minigrad refuses, the test passes
only if the README's list of differences says so.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.optim import lr_scheduler

torch = pytest.importorskip("torch")

SHAPES = [(3, 2), (2,), (4,)]
README = Path(__file__).resolve().parents[1] / "README.md"


def _init(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def _pair(seed: int = 0):
    arrays = _init(seed)
    mg_ps = [nn.Parameter(a.copy()) for a in arrays]
    t_ps = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    return mg_ps, t_ps


def _grad(i: int, value: np.ndarray, step: int) -> np.ndarray:
    rng = np.random.default_rng(100 * step + i)
    return 1.5 * value - 0.3 + 0.2 * rng.standard_normal(value.shape)


def _set_grads(mg_ps, t_ps, step: int, which=None) -> None:
    for i, (p, q) in enumerate(zip(mg_ps, t_ps)):
        if which is not None and i not in which:
            continue
        p.grad = _grad(i, p.data, step)
        q.grad = torch.from_numpy(_grad(i, q.detach().numpy(), step))


def _torch_opt(name: str, params, **kwargs):
    return getattr(torch.optim, name)(params, foreach=False, **kwargs)


def _assert_match(mg_ps, t_ps, where="") -> None:
    for i, (p, q) in enumerate(zip(mg_ps, t_ps)):
        np.testing.assert_allclose(
            p.data, q.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=f"{where} param {i}"
        )


def _common(mg_group: dict, t_group: dict) -> dict:
    return {k: t_group[k] for k in mg_group if k != "params" and k in t_group}


def _readme_differences() -> list[str]:
    text = README.read_text()
    section = text.split("## Where minigrad differs", 1)[1].split("\n## ", 1)[0]
    return section.split("\n- ")


# ============================================================================= construction


def test_empty_parameter_list_raises_like_torch():
    for params in ([], iter([]), (p for p in [])):
        with pytest.raises(ValueError, match="empty parameter list"):
            optim.SGD(params, lr=0.1)
    for params in ([], iter([]), (p for p in [])):
        with pytest.raises(ValueError, match="empty parameter list"):
            torch.optim.SGD(params, lr=0.1)


def test_a_group_with_no_parameters_is_kept_like_torch():
    p, q = nn.Parameter(np.ones(2)), torch.ones(2, dtype=torch.float64, requires_grad=True)
    mg_opt = optim.Adam([{"params": []}, {"params": [p], "lr": 0.5}], lr=0.1)
    t_opt = _torch_opt("Adam", [{"params": []}, {"params": [q], "lr": 0.5}], lr=0.1)
    assert [len(g["params"]) for g in mg_opt.param_groups] == [0, 1]
    assert [len(g["params"]) for g in t_opt.param_groups] == [0, 1]
    p.grad, q.grad = np.ones(2), torch.ones(2, dtype=torch.float64)
    mg_opt.step()
    t_opt.step()
    _assert_match([p], [q])
    assert mg_opt.state_dict()["param_groups"][1]["params"] == [0]
    assert t_opt.state_dict()["param_groups"][1]["params"] == [0]


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_a_generator_of_parameters_is_consumed_once_and_kept(name):
    mg_ps, t_ps = _pair()
    mg_gen, t_gen = (p for p in mg_ps), (q for q in t_ps)
    mg_opt = getattr(optim, name)(mg_gen, lr=0.05)
    t_opt = _torch_opt(name, t_gen, lr=0.05)
    assert next(mg_gen, None) is None and next(t_gen, None) is None
    assert isinstance(mg_opt.param_groups[0]["params"], list)
    assert all(a is b for a, b in zip(mg_opt.param_groups[0]["params"], mg_ps))
    for step in range(5):  # the list survives: every step sees every parameter
        _set_grads(mg_ps, t_ps, step)
        mg_opt.step()
        t_opt.step()
        _assert_match(mg_ps, t_ps, f"step {step}")
    assert not np.allclose(mg_ps[0].data, _init()[0])


def test_generators_inside_group_dicts_and_of_group_dicts():
    mg_ps, t_ps = _pair()

    def groups(ps):
        yield {"params": (p for p in ps[:2])}
        yield {"params": iter(ps[2:]), "lr": 0.01, "momentum": 0.5}

    mg_opt = optim.SGD(groups(mg_ps), lr=0.1, momentum=0.9)
    t_opt = _torch_opt("SGD", groups(t_ps), lr=0.1, momentum=0.9)
    assert [len(g["params"]) for g in mg_opt.param_groups] == [2, 1]
    for mg_g, t_g in zip(mg_opt.param_groups, t_opt.param_groups):
        assert {k: v for k, v in mg_g.items() if k != "params"} == _common(mg_g, t_g)
    for step in range(6):
        _set_grads(mg_ps, t_ps, step)
        mg_opt.step()
        t_opt.step()
        _assert_match(mg_ps, t_ps, f"step {step}")


def test_group_dicts_get_defaults_filled_in_place_like_torch():
    mg_ps, t_ps = _pair()
    mg_groups = [{"params": mg_ps[:1]}, {"params": mg_ps[1:], "lr": 0.01, "weight_decay": 0.3}]
    t_groups = [{"params": t_ps[:1]}, {"params": t_ps[1:], "lr": 0.01, "weight_decay": 0.3}]
    mg_opt = optim.RMSprop(mg_groups, lr=0.02, alpha=0.9, centered=True)
    t_opt = _torch_opt("RMSprop", t_groups, lr=0.02, alpha=0.9, centered=True)
    # The very dicts given are the groups, completed with the defaults (torch does the same).
    assert mg_opt.param_groups[1] is mg_groups[1] and t_opt.param_groups[1] is t_groups[1]
    for mg_g, t_g in zip(mg_opt.param_groups, t_opt.param_groups):
        expected = {k: v for k, v in t_g.items() if k in mg_opt.defaults}
        assert {k: v for k, v in mg_g.items() if k != "params"} == expected
    assert mg_opt.param_groups[1]["alpha"] == 0.9 and mg_opt.param_groups[1]["lr"] == 0.01
    for step in range(6):
        _set_grads(mg_ps, t_ps, step)
        mg_opt.step()
        t_opt.step()
        _assert_match(mg_ps, t_ps, f"step {step}")


def test_the_same_parameter_in_two_groups_raises_like_torch():
    p, q = nn.Parameter(np.ones(2)), torch.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.Adam([{"params": [p]}, {"params": [p], "lr": 0.1}])
    with pytest.raises(ValueError, match="more than one parameter group"):
        torch.optim.Adam([{"params": [q]}, {"params": [q], "lr": 0.1}])
    mg_opt, t_opt = optim.Adam([p]), torch.optim.Adam([q])
    with pytest.raises(ValueError, match="more than one parameter group"):
        mg_opt.add_param_group({"params": [nn.Parameter(np.ones(1)), p]})
    with pytest.raises(ValueError, match="more than one parameter group"):
        t_opt.add_param_group({"params": [torch.ones(1, requires_grad=True), q]})
    assert len(mg_opt.param_groups) == len(t_opt.param_groups) == 1


def _named(lib):
    layer = nn.Linear(2, 3, dtype=mg.float64) if lib == "mg" else torch.nn.Linear(2, 3)
    return layer.named_parameters()


def _retained(lib):
    x = nn.Parameter(np.ones(2)) if lib == "mg" else torch.ones(2, requires_grad=True)
    y = x * 2
    y.retain_grad()
    return [y]


def _dup(lib):
    x = nn.Parameter(np.ones(2)) if lib == "mg" else torch.ones(2, requires_grad=True)
    return [x, x]


def _negative_group_lr(lib):
    x = nn.Parameter(np.ones(2)) if lib == "mg" else torch.ones(2, requires_grad=True)
    return [{"params": [x], "lr": -1.0}]


# (case, params maker, words that a README bullet must all contain if minigrad refuses)
TORCH_ACCEPTS = [
    ("named_parameters", _named, ["named_parameters"]),
    ("non-leaf that retains grad", _retained, ["retain_grad", "optimiz"]),
    ("same parameter twice in one group", _dup, ["duplicate"]),
    ("negative lr in a group dict", _negative_group_lr, ["group", "learning rate"]),
]


@pytest.mark.parametrize("case, make, words", TORCH_ACCEPTS, ids=[c[0] for c in TORCH_ACCEPTS])
def test_params_torch_accepts_are_accepted_or_documented(case, make, words):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns for duplicates
        torch.optim.SGD(make("torch"), lr=0.1)  # torch accepts every one of these
    try:
        optim.SGD(make("mg"), lr=0.1)
    except (TypeError, ValueError) as err:
        documented = [b for b in _readme_differences() if all(w in b for w in words)]
        assert documented, f"{case}: torch accepts, minigrad raises {err!r}, README is silent"


def test_named_parameters_give_param_names_like_torch():
    mg_opt = optim.SGD(_named("mg"), lr=0.1)
    t_opt = torch.optim.SGD(_named("torch"), lr=0.1)
    assert t_opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]
    assert mg_opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]


def test_load_state_dict_with_state_for_an_unlisted_index_torch_keeps_it():
    def saved(lib):
        if lib == "mg":
            p = nn.Parameter(np.ones(2))
            p.grad = np.ones(2)
            opt = optim.SGD([p], lr=0.1, momentum=0.9)
        else:
            p = torch.ones(2, dtype=torch.float64, requires_grad=True)
            p.grad = torch.ones(2, dtype=torch.float64)
            opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
        opt.step()
        sd = opt.state_dict()
        sd["state"][5] = {"momentum_buffer": sd["state"][0]["momentum_buffer"] * 2}
        return sd

    t_opt = torch.optim.SGD([torch.ones(2, dtype=torch.float64, requires_grad=True)], lr=0.1)
    t_opt.load_state_dict(saved("torch"))
    assert 5 in t_opt.state  # kept as is, keyed by the number
    mg_opt = optim.SGD([nn.Parameter(np.ones(2))], lr=0.1, momentum=0.9)
    try:
        mg_opt.load_state_dict(saved("mg"))
    except ValueError as err:
        documented = [b for b in _readme_differences() if "state dict" in b and "load" in b]
        assert documented, f"torch loads it, minigrad raises {err!r}, README is silent"


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_a_parameter_that_does_not_require_grad_is_accepted_and_left_alone(name):
    frozen = np.arange(3.0)
    mg_ps, t_ps = _pair()
    mg_frozen = mg.tensor(frozen, dtype=mg.float64)
    t_frozen = torch.tensor(frozen)
    mg_opt = getattr(optim, name)([mg_frozen, *mg_ps], lr=0.05)
    t_opt = _torch_opt(name, [t_frozen, *t_ps], lr=0.05)
    for step in range(4):
        _set_grads(mg_ps, t_ps, step)
        mg_opt.step()
        t_opt.step()
        _assert_match(mg_ps, t_ps, f"step {step}")
    np.testing.assert_array_equal(mg_frozen.data, frozen)
    assert (mg_frozen in mg_opt.state) == (t_frozen in t_opt.state) == False  # noqa: E712
    # A gradient set by hand is used all the same: torch looks at .grad, not requires_grad.
    mg_frozen.grad, t_frozen.grad = np.ones(3), torch.ones(3, dtype=torch.float64)
    mg_opt.step()
    t_opt.step()
    _assert_match([mg_frozen, *mg_ps], [t_frozen, *t_ps], "hand-set grad")
    assert not np.array_equal(mg_frozen.data, frozen)


# ============================================================================= add_param_group


def test_add_param_group_takes_a_tensor_or_generator_and_fills_defaults_like_torch():
    mg_ps, t_ps = _pair()
    mg_opt = optim.SGD([mg_ps[0]], lr=0.1, momentum=0.9, weight_decay=0.01)
    t_opt = _torch_opt("SGD", [t_ps[0]], lr=0.1, momentum=0.9, weight_decay=0.01)
    mg_g1, t_g1 = {"params": mg_ps[1], "lr": 0.3}, {"params": t_ps[1], "lr": 0.3}
    mg_opt.add_param_group(mg_g1)
    t_opt.add_param_group(t_g1)
    mg_opt.add_param_group({"params": (p for p in mg_ps[2:]), "nesterov": True})
    t_opt.add_param_group({"params": (q for q in t_ps[2:]), "nesterov": True})
    assert mg_opt.param_groups[1] is mg_g1 and mg_g1["params"] == [mg_ps[1]]
    for mg_g, t_g in zip(mg_opt.param_groups, t_opt.param_groups, strict=True):
        assert {k: v for k, v in mg_g.items() if k != "params"} == _common(mg_g, t_g)
        assert len(mg_g["params"]) == len(t_g["params"])
    for step in range(6):
        _set_grads(mg_ps, t_ps, step)
        mg_opt.step()
        t_opt.step()
        _assert_match(mg_ps, t_ps, f"step {step}")
    with pytest.raises(TypeError):
        mg_opt.add_param_group([nn.Parameter(np.ones(1))])
    with pytest.raises(TypeError):
        t_opt.add_param_group([torch.ones(1, requires_grad=True)])


# ============================================================================= hand edits


EDITS = [
    ("SGD", {"lr": 0.1}, {"lr": 0.02, "weight_decay": 0.2}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}, {"momentum": 0.5, "dampening": 0.3}),
    ("SGD", {"lr": 0.1}, {"momentum": 0.8, "nesterov": True}),
    ("Adam", {"lr": 0.05}, {"lr": 0.01, "weight_decay": 0.1, "betas": (0.5, 0.9)}),
    ("Adam", {"lr": 0.05}, {"eps": 1e-2}),
    ("AdamW", {"lr": 0.05}, {"weight_decay": 0.5, "lr": 0.2}),
    ("RMSprop", {"lr": 0.01}, {"alpha": 0.5, "weight_decay": 0.2, "lr": 0.03}),
]


@pytest.mark.parametrize("name, kwargs, edit", EDITS, ids=str)
def test_hyperparameters_edited_by_hand_mid_run_take_effect_like_torch(name, kwargs, edit):
    mg_ps, t_ps = _pair()
    mg_opt = getattr(optim, name)([{"params": mg_ps[:2]}, {"params": mg_ps[2:]}], **kwargs)
    t_opt = _torch_opt(name, [{"params": t_ps[:2]}, {"params": t_ps[2:]}], **kwargs)
    for step in range(8):
        if step == 3:  # only the first group changes
            mg_opt.param_groups[0].update(edit)
            t_opt.param_groups[0].update(edit)
        _set_grads(mg_ps, t_ps, step)
        mg_opt.step()
        t_opt.step()
        _assert_match(mg_ps, t_ps, f"step {step}")
    # The edit mattered: without it the first group ends elsewhere.
    ref_ps, _ = _pair()
    ref = getattr(optim, name)([{"params": ref_ps[:2]}, {"params": ref_ps[2:]}], **kwargs)
    for step in range(8):
        for i, p in enumerate(ref_ps):
            p.grad = _grad(i, p.data, step)
        ref.step()
    assert not np.allclose(ref_ps[0].data, mg_ps[0].data)
    np.testing.assert_allclose(ref_ps[2].data, mg_ps[2].data, rtol=1e-12)


# ============================================================================= zero_grad


def test_zero_grad_with_real_backward_passes_like_torch():
    x = np.random.default_rng(1).standard_normal((5, 3))
    mg_w, t_w = nn.Parameter(np.ones(3)), torch.ones(3, dtype=torch.float64, requires_grad=True)
    mg_unused = nn.Parameter(np.ones(2))
    t_unused = torch.ones(2, dtype=torch.float64, requires_grad=True)
    mg_opt, t_opt = optim.SGD([mg_w, mg_unused], lr=0.1), torch.optim.SGD([t_w, t_unused], lr=0.1)
    (mg.tensor(x) @ mg_w).sum().backward()
    (torch.from_numpy(x) @ t_w).sum().backward()
    mg_before, t_before = mg_w.grad, t_w.grad
    mg_opt.zero_grad(set_to_none=False)
    t_opt.zero_grad(set_to_none=False)
    assert mg_unused.grad is None and t_unused.grad is None  # no grad: stays None
    ((mg.tensor(x) @ mg_w) ** 2).sum().backward()
    ((torch.from_numpy(x) @ t_w) ** 2).sum().backward()
    # Accumulated into the zeroed array itself, not added to the old values.
    assert mg_w.grad is mg_before and t_w.grad is t_before
    np.testing.assert_allclose(mg_w.grad, t_w.grad.numpy(), rtol=1e-12)
    mg_opt.zero_grad()
    t_opt.zero_grad()
    assert mg_w.grad is None and t_w.grad is None
    (mg.tensor(x) @ mg_w).sum().backward()
    (torch.from_numpy(x) @ t_w).sum().backward()
    assert mg_w.grad is not mg_before
    np.testing.assert_allclose(mg_w.grad, t_w.grad.numpy(), rtol=1e-12)


# ============================================================================= missing grads


STATEFUL = [
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1}),
    ("Adam", {"lr": 0.05}),
    ("AdamW", {"lr": 0.05, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
]


@pytest.mark.parametrize("name, kwargs", STATEFUL, ids=str)
def test_step_skips_parameters_without_grad_and_creates_state_like_torch(name, kwargs):
    mg_ps, t_ps = _pair()
    mg_opt = getattr(optim, name)(mg_ps, **kwargs)
    t_opt = _torch_opt(name, t_ps, **kwargs)
    for step, which in enumerate([{0}, {0, 2}, {2}, {0, 2}]):
        for p, q in zip(mg_ps, t_ps):
            p.grad, q.grad = None, None
        _set_grads(mg_ps, t_ps, step, which)
        mg_opt.step()
        t_opt.step()
        _assert_match(mg_ps, t_ps, f"step {step}")
        mg_with_state = [i for i, p in enumerate(mg_ps) if p in mg_opt.state]
        t_with_state = [i for i, q in enumerate(t_ps) if q in t_opt.state]
        assert mg_with_state == t_with_state, f"step {step}: params with an opt.state entry"
        assert len(mg_opt.state) == len(t_opt.state)
    np.testing.assert_array_equal(mg_ps[1].data, _init()[1])
    mg_sd, t_sd = mg_opt.state_dict(), t_opt.state_dict()
    assert sorted(mg_sd["state"]) == sorted(t_sd["state"])
    for index, t_state in t_sd["state"].items():
        assert sorted(mg_sd["state"][index]) == sorted(t_state)


# ============================================================================= state dicts


def test_load_state_dict_with_a_different_layout_raises_like_torch_and_changes_nothing():
    def build(lib, sizes, lr):
        ps = [
            nn.Parameter(np.ones(2)) if lib == "mg" else torch.ones(2, requires_grad=True)
            for _ in range(sum(sizes))
        ]
        groups, start = [], 0
        for n in sizes:
            groups.append({"params": ps[start : start + n]})
            start += n
        if lib == "mg":
            return optim.SGD(groups, lr=lr, momentum=0.9)
        return torch.optim.SGD(groups, lr=lr, momentum=0.9)

    for lib in ("mg", "torch"):
        source = build(lib, [2, 1], 0.1)
        for group in source.param_groups:
            for p in group["params"]:
                p.grad = np.ones(2) if lib == "mg" else torch.ones(2)
        source.step()
        saved = source.state_dict()
        for sizes, message in [
            ([3], "different number of parameter groups"),
            ([2, 1, 1], "different number of parameter groups"),
            ([1, 2], "doesn't match the size"),
            ([2, 2], "doesn't match the size"),
        ]:
            target = build(lib, sizes, 0.5)
            with pytest.raises(ValueError, match=message):
                target.load_state_dict(saved)
            assert [g["lr"] for g in target.param_groups] == [0.5] * len(sizes), lib
            assert len(target.state) == 0, lib


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_state_dict_is_a_snapshot(name):
    kwargs = {"lr": 0.05, "momentum": 0.9} if name != "Adam" else {"lr": 0.05}
    mg_ps, t_ps = _pair()
    mg_opt, t_opt = getattr(optim, name)(mg_ps, **kwargs), _torch_opt(name, t_ps, **kwargs)
    _set_grads(mg_ps, t_ps, 0)
    mg_opt.step()
    t_opt.step()
    mg_sd, t_sd = mg_opt.state_dict(), t_opt.state_dict()
    # Group entries are copies in both libraries: editing the dict leaves the optimizer.
    mg_sd["param_groups"][0]["lr"] = 9.0
    t_sd["param_groups"][0]["lr"] = 9.0
    assert mg_opt.param_groups[0]["lr"] == t_opt.param_groups[0]["lr"] == 0.05
    # Buffers: minigrad copies (its documented contract); torch hands out its live tensors.
    kept = {k: np.array(v) for k, v in mg_sd["state"][0].items()}
    _set_grads(mg_ps, t_ps, 1)
    mg_opt.step()
    for key, value in kept.items():
        np.testing.assert_array_equal(mg_sd["state"][0][key], value, err_msg=key)
    # Loading copies too: training on does not write into the dict that was loaded.
    other, _ = _pair()
    loaded = getattr(optim, name)(other, **kwargs)
    loaded.load_state_dict(mg_sd)
    for i, p in enumerate(other):
        p.grad = np.ones_like(p.data) * (i + 1)
    loaded.step()
    for key, value in kept.items():
        np.testing.assert_array_equal(mg_sd["state"][0][key], value, err_msg=key)
    assert loaded.param_groups[0]["lr"] == 9.0


# ============================================================================= schedulers


def _two_group_pair(lrs=(0.1, 0.02)):
    mg_ps, t_ps = _pair()
    mg_opt = optim.SGD(
        [{"params": mg_ps[:2], "lr": lrs[0]}, {"params": mg_ps[2:], "lr": lrs[1]}], momentum=0.9
    )
    t_opt = _torch_opt(
        "SGD",
        [{"params": t_ps[:2], "lr": lrs[0]}, {"params": t_ps[2:], "lr": lrs[1]}],
        momentum=0.9,
    )
    return mg_ps, t_ps, mg_opt, t_opt


def test_scheduler_state_dict_has_torchs_keys_and_values():
    _, _, mg_opt, t_opt = _two_group_pair()
    for cls, kwargs in [
        ("StepLR", {"step_size": 2, "gamma": 0.5}),
        ("CosineAnnealingLR", {"T_max": 5}),
    ]:
        mg_s = getattr(lr_scheduler, cls)(mg_opt, **kwargs)
        t_s = getattr(torch.optim.lr_scheduler, cls)(t_opt, **kwargs)
        for _ in range(3):
            t_opt.step()
            mg_s.step()
            t_s.step()
        mg_sd, t_sd = mg_s.state_dict(), t_s.state_dict()
        public = {k for k in t_sd if not k.startswith("_")}
        assert {k for k in mg_sd if not k.startswith("_")} == public, cls
        for key in public | {"_last_lr", "_step_count"}:
            assert mg_sd[key] == t_sd[key], f"{cls} {key}"


def test_two_schedulers_chained_on_two_groups_match_torch():
    mg_ps, t_ps, mg_opt, t_opt = _two_group_pair()
    mg_a = lr_scheduler.StepLR(mg_opt, step_size=3, gamma=0.5)
    mg_b = lr_scheduler.CosineAnnealingLR(mg_opt, T_max=7, eta_min=1e-3)
    t_a = torch.optim.lr_scheduler.StepLR(t_opt, step_size=3, gamma=0.5)
    t_b = torch.optim.lr_scheduler.CosineAnnealingLR(t_opt, T_max=7, eta_min=1e-3)
    assert mg_a.base_lrs == mg_b.base_lrs == t_b.base_lrs == [0.1, 0.02]
    for epoch in range(1, 20):
        _set_grads(mg_ps, t_ps, epoch)
        mg_opt.step()
        t_opt.step()
        _assert_match(mg_ps, t_ps, f"epoch {epoch}")
        for mg_s, t_s in ((mg_a, t_a), (mg_b, t_b)):
            mg_s.step()
            t_s.step()
        assert mg_a.get_last_lr() == t_a.get_last_lr(), f"epoch {epoch}"
        assert mg_b.get_last_lr() == t_b.get_last_lr(), f"epoch {epoch}"
        assert mg_a.last_epoch == mg_b.last_epoch == t_b.last_epoch == epoch
        assert [g["lr"] for g in mg_opt.param_groups] == [g["lr"] for g in t_opt.param_groups]
    lrs = mg_b.get_last_lr()
    assert lrs[0] != lrs[1] and lrs[0] != 0.1  # the groups kept their own, changed, rates


@pytest.mark.parametrize("cls", ["StepLR", "CosineAnnealingLR"])
def test_resuming_with_last_epoch_and_state_dicts_matches_torch(cls):
    kwargs = {"step_size": 3, "gamma": 0.5} if cls == "StepLR" else {"T_max": 6}
    _, _, mg_opt, t_opt = _two_group_pair()
    mg_s = getattr(lr_scheduler, cls)(mg_opt, **kwargs)
    t_s = getattr(torch.optim.lr_scheduler, cls)(t_opt, **kwargs)
    for _ in range(5):
        t_opt.step()
        mg_s.step()
        t_s.step()
    mg_opt_sd, t_opt_sd = mg_opt.state_dict(), t_opt.state_dict()
    assert [g["initial_lr"] for g in mg_opt_sd["param_groups"]] == [0.1, 0.02]

    # Resume: load the optimizer, build the scheduler with last_epoch, then load its state.
    _, _, mg_opt2, t_opt2 = _two_group_pair(lrs=(0.7, 0.7))
    mg_opt2.load_state_dict(mg_opt_sd)
    t_opt2.load_state_dict(t_opt_sd)
    mg_s2 = getattr(lr_scheduler, cls)(mg_opt2, last_epoch=4, **kwargs)
    t_s2 = getattr(torch.optim.lr_scheduler, cls)(t_opt2, last_epoch=4, **kwargs)
    assert mg_s2.last_epoch == t_s2.last_epoch
    assert mg_s2.base_lrs == t_s2.base_lrs == [0.1, 0.02]
    assert mg_s2.get_last_lr() == t_s2.get_last_lr()
    mg_s2.load_state_dict(mg_s.state_dict())
    t_s2.load_state_dict(t_s.state_dict())
    assert mg_s2.last_epoch == t_s2.last_epoch == 5
    for epoch in range(6, 20):
        t_opt2.step()
        mg_s2.step()
        t_s2.step()
        assert mg_s2.get_last_lr() == t_s2.get_last_lr(), f"epoch {epoch}"
        assert [g["lr"] for g in mg_opt2.param_groups] == mg_s2.get_last_lr()


def test_group_added_after_the_scheduler_is_scheduled_like_torch():
    mg_ps, t_ps = _pair()
    mg_opt = optim.SGD(mg_ps[:2], lr=0.1)
    t_opt = _torch_opt("SGD", t_ps[:2], lr=0.1)
    mg_s = lr_scheduler.StepLR(mg_opt, step_size=2, gamma=0.5)
    t_s = torch.optim.lr_scheduler.StepLR(t_opt, step_size=2, gamma=0.5)
    mg_opt.add_param_group({"params": mg_ps[2:], "lr": 0.04})
    t_opt.add_param_group({"params": t_ps[2:], "lr": 0.04})
    for epoch in range(1, 7):
        t_opt.step()
        mg_s.step()
        t_s.step()
        assert mg_s.get_last_lr() == t_s.get_last_lr(), f"epoch {epoch}"
    assert mg_s.get_last_lr()[1] == pytest.approx(0.04 * 0.5**3)
    assert ("initial_lr" in mg_opt.param_groups[1]) == ("initial_lr" in t_opt.param_groups[1])


def test_readme_section_is_found():
    bullets = _readme_differences()
    assert len(bullets) > 3 and any(re.search(r"optimi|SGD", b) for b in bullets)
