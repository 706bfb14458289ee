"""mg.per_sample_grads: one gradient per sample; each Linear slice is delta_b x_b^T."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn, optim
from minigrad.nn.utils import per_sample_grad_norms


def _mlp(seed: int = 0, dtype=np.float64) -> nn.Sequential:
    gen = np.random.default_rng(seed)
    model = nn.Sequential(nn.Linear(5, 7, generator=gen), nn.ReLU(), nn.Linear(7, 3, generator=gen))
    return model.to(dtype) if dtype != np.float64 else model.double()


def _data(batch: int = 6, seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, 5)), rng.integers(0, 3, size=batch)


def test_linear_slices_are_the_outer_products_of_delta_and_x():
    rng = np.random.default_rng(0)
    layer = nn.Linear(4, 3).double()
    x = rng.standard_normal((5, 4))
    upstream = rng.standard_normal((5, 3))
    with mg.per_sample_grads():
        y = layer(mg.tensor(x))
        y.backward(upstream)
    gs_w, gs_b = layer.weight.grad_sample, layer.bias.grad_sample
    assert gs_w.shape == (5, 3, 4) and gs_b.shape == (5, 3)
    for b in range(5):
        np.testing.assert_allclose(gs_w[b], np.outer(upstream[b], x[b]), rtol=1e-14, atol=0)
        assert np.linalg.matrix_rank(gs_w[b]) <= 1
    np.testing.assert_allclose(gs_w.sum(0), layer.weight.grad, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gs_b.sum(0), layer.bias.grad, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(gs_b, upstream)


def test_grad_samples_sum_to_grad_in_an_mlp_and_keep_the_parameter_dtype():
    model = _mlp(dtype=np.float32)
    X, y = _data()
    with mg.per_sample_grads():
        F.cross_entropy(model(mg.tensor(X.astype(np.float32))), mg.tensor(y)).backward()
    for name, p in model.named_parameters():
        assert p.grad_sample.shape == (6, *p.shape), name
        assert p.grad_sample.dtype == np.float32, name
        np.testing.assert_allclose(p.grad_sample.sum(0), p.grad, rtol=1e-5, atol=1e-6)


def test_mlp_matches_torch_vmap_of_grad():
    torch = pytest.importorskip("torch")
    from torch.func import functional_call, grad, vmap

    model = _mlp()
    X, y = _data(batch=8)
    with mg.per_sample_grads():
        F.cross_entropy(model(mg.tensor(X)), mg.tensor(y), reduction="sum").backward()

    twin = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    twin = twin.double()
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    params = {k: v.detach() for k, v in twin.named_parameters()}

    def loss_of_one(p, x, target):
        logits = functional_call(twin, p, (x[None],))
        return torch.nn.functional.cross_entropy(logits, target[None])

    theirs = vmap(grad(loss_of_one), in_dims=(None, 0, 0))(
        params, torch.from_numpy(X), torch.from_numpy(y)
    )
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad_sample, theirs[name].numpy(), rtol=1e-10, atol=1e-12)


def test_norms_only_equals_the_materialised_norms_without_storing_matrices():
    model = _mlp()
    X, y = _data()
    with mg.per_sample_grads():
        F.cross_entropy(model(mg.tensor(X)), mg.tensor(y)).backward()
    full = per_sample_grad_norms(model.parameters())
    per_param = [np.linalg.norm(p.grad_sample.reshape(6, -1), axis=1) for p in model.parameters()]

    model.zero_grad()
    with mg.per_sample_grads(norms_only=True):
        F.cross_entropy(model(mg.tensor(X)), mg.tensor(y)).backward()
    for p, expected in zip(model.parameters(), per_param):
        assert p.grad_sample is None
        assert p.grad_sample_norm.shape == (6,)
        np.testing.assert_allclose(p.grad_sample_norm, expected, rtol=1e-12)
    np.testing.assert_allclose(per_sample_grad_norms(model.parameters()), full, rtol=1e-12)


def test_inputs_with_middle_dims_sum_each_samples_outer_products():
    rng = np.random.default_rng(2)
    layer = nn.Linear(4, 3).double()
    x = rng.standard_normal((2, 5, 4))  # (batch, tokens, in)
    upstream = rng.standard_normal((2, 5, 3))
    with mg.per_sample_grads():
        layer(mg.tensor(x)).backward(upstream)
    for b in range(2):
        expected = sum(np.outer(upstream[b, t], x[b, t]) for t in range(5))
        np.testing.assert_allclose(layer.weight.grad_sample[b], expected, rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad_sample, upstream.sum(1), rtol=1e-12)
    np.testing.assert_allclose(layer.weight.grad_sample.sum(0), layer.weight.grad, rtol=1e-12)

    weight_full = np.linalg.norm(layer.weight.grad_sample.reshape(2, -1), axis=1)
    with mg.per_sample_grads(norms_only=True):
        layer(mg.tensor(x)).backward(upstream)
    np.testing.assert_allclose(layer.weight.grad_sample_norm, weight_full, rtol=1e-12)


def test_an_unbatched_input_is_a_batch_of_one():
    layer = nn.Linear(3, 2).double()
    x = np.array([1.0, -2.0, 0.5])
    with mg.per_sample_grads():
        layer(mg.tensor(x)).backward(np.array([2.0, -1.0]))
    assert layer.weight.grad_sample.shape == (1, 2, 3)
    np.testing.assert_allclose(layer.weight.grad_sample[0], np.outer([2.0, -1.0], x))


def test_embedding_per_sample_rows_accumulate_repeated_indices():
    rng = np.random.default_rng(3)
    emb = nn.Embedding(6, 4, padding_idx=0).double()
    idx = np.array([[1, 1, 2], [0, 5, 5], [3, 2, 1]])  # repeats within a sample; padding 0
    upstream = rng.standard_normal((3, 3, 4))
    with mg.per_sample_grads():
        emb(idx).backward(upstream)
    gs = emb.weight.grad_sample
    assert gs.shape == (3, 6, 4)
    expected = np.zeros((3, 6, 4))
    for b in range(3):
        for t in range(3):
            if idx[b, t] != 0:
                expected[b, idx[b, t]] += upstream[b, t]
    np.testing.assert_allclose(gs, expected, rtol=1e-14)
    np.testing.assert_allclose(gs.sum(0), emb.weight.grad, rtol=1e-14)
    with mg.per_sample_grads(norms_only=True):
        emb(idx).backward(upstream)
    np.testing.assert_allclose(
        emb.weight.grad_sample_norm, np.linalg.norm(expected.reshape(3, -1), axis=1)
    )


def test_lora_linear_gives_grad_samples_for_a_and_b_only():
    gen = np.random.default_rng(4)
    lora = nn.LoRALinear(nn.Linear(4, 3, generator=gen), rank=2, alpha=4.0).double()
    lora.B.data[...] = gen.standard_normal(lora.B.shape)  # B starts at zero: give it values
    x = gen.standard_normal((5, 4))
    with mg.per_sample_grads():
        lora(mg.tensor(x)).backward(gen.standard_normal((5, 3)))
    assert lora.base.weight.grad_sample is None and lora.base.weight.grad is None
    for p in (lora.A, lora.B):
        assert p.grad_sample.shape == (5, *p.shape)
        np.testing.assert_allclose(p.grad_sample.sum(0), p.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "make_layer",
    [lambda: nn.LayerNorm(5), lambda: _Scale(5)],
    ids=["LayerNorm", "custom-module"],
)
def test_an_unsupported_layer_raises_and_changes_nothing(make_layer):
    model = nn.Sequential(nn.Linear(5, 5), make_layer(), nn.Linear(5, 3)).double()
    X, y = _data()
    loss = F.cross_entropy(model(mg.tensor(X)), mg.tensor(y))
    name = type(model[1]).__name__
    with pytest.raises(
        RuntimeError, match=rf"per_sample_grads: a parameter of {name} \(shape \(5,\)\)"
    ):
        with mg.per_sample_grads():
            loss.backward()
    for p in model.parameters():
        assert p.grad is None and p.grad_sample is None
    loss.backward()  # the graph was not freed by the failed pass
    assert all(p.grad is not None for p in model.parameters())


def test_a_frozen_unsupported_layer_is_fine():
    model = nn.Sequential(nn.Linear(5, 5), nn.LayerNorm(5), nn.Linear(5, 3)).double()
    model[1].requires_grad_(False)
    X, y = _data()
    with mg.per_sample_grads():
        F.cross_entropy(model(mg.tensor(X)), mg.tensor(y)).backward()
    assert model[0].weight.grad_sample.shape == (6, 5, 5)
    assert model[1].weight.grad_sample is None


class _Scale(nn.Module):
    """A parameter used through a plain elementwise op: no per-sample rule."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(np.ones(n))

    def forward(self, x):
        return x * self.scale


def test_each_backward_replaces_and_zero_grad_clears():
    model = _mlp()
    X, y = _data()
    with mg.per_sample_grads():
        F.cross_entropy(model(mg.tensor(X)), mg.tensor(y)).backward()
        first = model[0].weight.grad_sample.copy()
        F.cross_entropy(model(mg.tensor(X[:4])), mg.tensor(y[:4])).backward()
    second = model[0].weight.grad_sample
    assert second.shape == (4, 7, 5)  # replaced, not accumulated like .grad
    assert not np.allclose(second, first[:4])  # (the mean over 4, not 6, samples)

    model.zero_grad()
    assert all(p.grad_sample is None and p.grad is None for p in model.parameters())

    opt = optim.SGD(model.parameters(), lr=0.1)
    with mg.per_sample_grads():
        F.cross_entropy(model(mg.tensor(X)), mg.tensor(y)).backward()
    opt.zero_grad()
    assert all(p.grad_sample is None for p in model.parameters())


def test_forward_may_run_outside_the_context_and_backward_outside_stores_nothing():
    model = _mlp()
    X, y = _data()
    loss = F.cross_entropy(model(mg.tensor(X)), mg.tensor(y))
    with mg.per_sample_grads():
        loss.backward(retain_graph=True)
    assert model[2].weight.grad_sample.shape == (6, 3, 7)
    model.zero_grad()
    loss.backward()
    assert all(p.grad_sample is None for p in model.parameters())


def test_a_layer_used_twice_sums_its_contributions():
    rng = np.random.default_rng(5)
    layer = nn.Linear(3, 3).double()
    x = rng.standard_normal((4, 3))
    with mg.per_sample_grads():
        layer(layer(mg.tensor(x))).sum().backward()
    np.testing.assert_allclose(layer.weight.grad_sample.sum(0), layer.weight.grad, rtol=1e-12)
    with pytest.raises(RuntimeError, match="used more than once"):
        with mg.per_sample_grads(norms_only=True):
            layer(layer(mg.tensor(x))).sum().backward()


def test_the_context_restores_the_previous_mode_after_an_error():
    with pytest.raises(ValueError):
        with mg.per_sample_grads():
            raise ValueError("boom")
    layer = nn.Linear(2, 2).double()
    layer(mg.tensor(np.ones((3, 2)))).sum().backward()
    assert layer.weight.grad_sample is None
