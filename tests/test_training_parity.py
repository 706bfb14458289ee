"""Training parity: the same MLP trained in minigrad and in torch stays the same, step by step."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import data, nn, optim

torch = pytest.importorskip("torch")


def twin_mlps(sizes=(2, 16, 16, 3), seed=0):
    torch.manual_seed(seed)
    t_layers, m_layers = [], []
    for i in range(len(sizes) - 1):
        t_layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]).double())
        m_layers.append(nn.Linear(sizes[i], sizes[i + 1], dtype=mg.float64))
        if i < len(sizes) - 2:
            t_layers.append(torch.nn.ReLU())
            m_layers.append(nn.ReLU())
    tm, mm = torch.nn.Sequential(*t_layers), nn.Sequential(*m_layers)
    mm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return mm, tm


OPTIMIZERS = [
    (
        "sgd_momentum",
        lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, foreach=False),
    ),
    (
        "adam",
        lambda p: optim.Adam(p, lr=0.01),
        lambda p: torch.optim.Adam(p, lr=0.01, foreach=False),
    ),
]


@pytest.mark.parametrize(
    ("name", "make_mg", "make_torch"), OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS]
)
def test_100_steps_agree_with_torch(name, make_mg, make_torch):
    X, y = data.make_spirals(240, n_classes=3, seed=1)
    X = X.astype(np.float64)
    mm, tm = twin_mlps()
    opt_m, opt_t = make_mg(mm.parameters()), make_torch(tm.parameters())
    rng = np.random.default_rng(0)
    losses_m, losses_t = [], []
    step = 0
    while step < 100:
        for xb, yb in data.batches(X, y, 32, seed=rng):
            opt_m.zero_grad()
            loss_m = F.cross_entropy(mm(mg.tensor(xb)), mg.tensor(yb))
            loss_m.backward()
            opt_m.step()

            opt_t.zero_grad()
            loss_t = torch.nn.functional.cross_entropy(tm(torch.tensor(xb)), torch.tensor(yb))
            loss_t.backward()
            opt_t.step()

            losses_m.append(loss_m.item())
            losses_t.append(loss_t.item())
            step += 1
            if step == 100:
                break
    np.testing.assert_allclose(losses_m, losses_t, rtol=1e-8, atol=0)
    assert np.mean(losses_m[-10:]) < 0.9 * losses_m[0]  # it really trained
    for (key, pm), pt in zip(mm.state_dict().items(), tm.state_dict().values()):
        np.testing.assert_allclose(pm, pt.numpy(), rtol=1e-7, atol=1e-10, err_msg=key)


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path):
    X, y = data.make_moons(128, seed=2)
    X = X.astype(np.float64)
    batches = list(data.batches(X, y, 16, seed=3))

    def train(model, opt, chunk):
        for xb, yb in chunk:
            opt.zero_grad()
            F.cross_entropy(model(mg.tensor(xb)), mg.tensor(yb)).backward()
            opt.step()

    mm, _ = twin_mlps((2, 8, 2), seed=4)
    opt = optim.Adam(mm.parameters(), lr=0.02)
    train(mm, opt, batches)
    uninterrupted = mm.state_dict()

    mm2, _ = twin_mlps((2, 8, 2), seed=4)
    opt2 = optim.Adam(mm2.parameters(), lr=0.02)
    train(mm2, opt2, batches[:4])
    mg.save({"model": mm2.state_dict(), "optim": opt2.state_dict()}, tmp_path / "ckpt")
    loaded = mg.load(tmp_path / "ckpt.npz")

    mm3, _ = twin_mlps((2, 8, 2), seed=99)  # different initial weights, replaced by the checkpoint
    opt3 = optim.Adam(mm3.parameters(), lr=0.02)
    mm3.load_state_dict(loaded["model"])
    opt3.load_state_dict(loaded["optim"])
    train(mm3, opt3, batches[4:])
    for key, value in uninterrupted.items():
        np.testing.assert_array_equal(mm3.state_dict()[key], value, err_msg=key)
