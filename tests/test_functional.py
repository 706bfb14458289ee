"""minigrad.nn.functional against torch.nn.functional: values, gradients, finite differences.

Every function is compared with PyTorch through the same expression and a random upstream
gradient (``assert_grads_match_torch``, float64), and its gradients are checked against
central finite differences (``mg.gradcheck``). Float arrays become tensors that require grad
on both sides (so a loss's float target gets a gradient too); integer arrays (class indices,
embedding indices) are passed as plain tensors. Settings that get no gradient (class
weights, pos_weight) are captured by the lambdas.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.testing import assert_grads_match_torch

torch = pytest.importorskip("torch")
TF = torch.nn.functional

REDUCTIONS = ["mean", "sum", "none"]


def _inputs(arrays: tuple[np.ndarray, ...]) -> list[mg.Tensor]:
    """minigrad tensors as assert_grads_match_torch makes them: floats require grad."""
    return [mg.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]


def _check(mg_fn: Callable[..., Any], torch_fn: Callable[..., Any], *arrays: np.ndarray) -> None:
    """Same values and gradients as torch, and gradients equal to finite differences."""
    assert_grads_match_torch(mg_fn, torch_fn, *arrays)
    assert mg.gradcheck(mg_fn, _inputs(arrays))


# ============================================================================= activations

ACTIVATIONS: list[tuple[str, Callable[..., Any], Callable[..., Any]]] = [
    ("relu", lambda x: F.relu(x), lambda x: TF.relu(x)),
    ("leaky_relu", lambda x: F.leaky_relu(x), lambda x: TF.leaky_relu(x)),
    ("leaky_relu_0.2", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    ("leaky_relu_-1.5", lambda x: F.leaky_relu(x, -1.5), lambda x: TF.leaky_relu(x, -1.5)),
    ("gelu", lambda x: F.gelu(x), lambda x: TF.gelu(x)),
    (
        "gelu_tanh",
        lambda x: F.gelu(x, approximate="tanh"),
        lambda x: TF.gelu(x, approximate="tanh"),
    ),
    ("tanh", lambda x: F.tanh(x), lambda x: torch.tanh(x)),
    ("sigmoid", lambda x: F.sigmoid(x), lambda x: torch.sigmoid(x)),
    ("softmax_dim0", lambda x: F.softmax(x, dim=0), lambda x: TF.softmax(x, dim=0)),
    ("softmax_dim-1", lambda x: F.softmax(x, dim=-1), lambda x: TF.softmax(x, dim=-1)),
    ("log_softmax_dim0", lambda x: F.log_softmax(x, dim=0), lambda x: TF.log_softmax(x, dim=0)),
    (
        "log_softmax_dim-1",
        lambda x: F.log_softmax(x, dim=-1),
        lambda x: TF.log_softmax(x, dim=-1),
    ),
]
ACTIVATION_IDS = [a[0] for a in ACTIVATIONS]
ACTIVATION_SHAPES = [(7,), (3, 4), (2, 3, 4)]


@pytest.mark.parametrize("shape", ACTIVATION_SHAPES, ids=str)
@pytest.mark.parametrize(("name", "mg_fn", "torch_fn"), ACTIVATIONS, ids=ACTIVATION_IDS)
def test_activation_matches_torch_and_finite_differences(name, mg_fn, torch_fn, shape):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape) * 3
    x[np.abs(x) < 1e-3] = 0.5  # keep finite differences away from the kinks at 0
    _check(mg_fn, torch_fn, x)


@pytest.mark.parametrize(("name", "mg_fn", "torch_fn"), ACTIVATIONS, ids=ACTIVATION_IDS)
def test_activation_at_zero_and_large_inputs_matches_torch(name, mg_fn, torch_fn):
    # 0 is where relu and leaky_relu pick a one-sided gradient; +-50 tests the tails.
    x = np.array([0.0, -0.0, 1e-8, -1e-8, 50.0, -50.0, 8.0, -8.0, 20.0, -20.0])
    assert_grads_match_torch(mg_fn, torch_fn, x)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_torch_over_a_wide_range_in_float64(approximate):
    x = np.linspace(-12, 12, 2401)
    assert_grads_match_torch(
        lambda t: F.gelu(t, approximate=approximate),
        lambda t: TF.gelu(t, approximate=approximate),
        x,
        rtol=1e-12,
        atol=1e-14,
    )


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_keeps_float32(approximate):
    x = np.linspace(-6, 6, 101).astype(np.float32)
    ours = F.gelu(mg.tensor(x), approximate=approximate)
    assert ours.dtype == np.float32
    # minigrad computes in float64 and rounds once: within half an ulp of float64 torch...
    exact = TF.gelu(torch.tensor(x, dtype=torch.float64), approximate=approximate).numpy()
    np.testing.assert_allclose(ours.data, exact, rtol=6e-8, atol=1e-15)
    # ...while torch's float32 1 + erf(x) cancels for negative x: close in absolute terms only.
    theirs = TF.gelu(torch.tensor(x), approximate=approximate).numpy()
    np.testing.assert_allclose(ours.data, theirs, rtol=1e-5, atol=1e-6)


def test_erfc_is_accurate_to_a_few_ulps():
    x = np.linspace(-30, 30, 60001)
    ours = F._erfc(x)
    reference = np.array([math.erfc(v) for v in x])
    # Relative error below 2e-15, except for subnormal results (below 1e-300) in the far tail.
    np.testing.assert_allclose(ours, reference, rtol=2e-15, atol=1e-300)
    special = F._erfc(np.array([np.inf, -np.inf, np.nan, 0.0]))
    assert special[0] == 0 and special[1] == 2 and np.isnan(special[2]) and special[3] == 1


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(RuntimeError, match="approximate"):
        F.gelu(mg.tensor([1.0]), approximate="erf")


# ============================================================================= dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_statistics_and_scaling(p):
    x = mg.ones(200, 500, dtype=mg.float64)
    y = F.dropout(x, p, generator=np.random.default_rng(0)).data
    zeroed = y == 0
    # 10^5 draws: the standard deviation of the fraction is at most 0.0016.
    assert abs(zeroed.mean() - p) < 0.01
    np.testing.assert_allclose(y[~zeroed], 1 / (1 - p), rtol=1e-15)
    assert abs(y.mean() - 1) < 0.05  # inverted dropout keeps the expected value


def test_dropout_gradient_is_the_mask_scaled():
    p = 0.3
    rng = np.random.default_rng(1)
    x = mg.tensor(rng.random((4, 6)) + 0.5, requires_grad=True)
    y = F.dropout(x, p, generator=np.random.default_rng(2))
    upstream = rng.standard_normal((4, 6))
    y.backward(upstream)
    kept = y.data != 0
    assert 0 < kept.sum() < kept.size
    np.testing.assert_allclose(x.grad, upstream * kept / (1 - p), rtol=1e-15)
    assert y.grad_fn is not None


def test_dropout_gradcheck_with_a_fixed_mask():
    x = mg.tensor(np.random.default_rng(3).standard_normal((3, 5)), requires_grad=True)
    assert mg.gradcheck(lambda t: F.dropout(t, 0.4, generator=np.random.default_rng(4)), [x])


def test_dropout_is_deterministic_with_a_seeded_generator():
    x = mg.randn(5, 8, generator=np.random.default_rng(0))
    a = F.dropout(x, 0.5, generator=np.random.default_rng(123)).data
    b = F.dropout(x, 0.5, generator=np.random.default_rng(123)).data
    c = F.dropout(x, 0.5, generator=np.random.default_rng(124)).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dropout_uses_the_default_generator_seeded_by_manual_seed():
    x = mg.ones(6, 10)
    mg.manual_seed(7)
    a = F.dropout(x, 0.5).data
    b = F.dropout(x, 0.5).data  # the generator moved on: a new mask
    mg.manual_seed(7)
    np.testing.assert_array_equal(F.dropout(x, 0.5).data, a)
    assert not np.array_equal(a, b)
    assert a.dtype == np.float32


def test_dropout_in_eval_or_with_p0_is_identity():
    x = mg.randn(3, 4, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_dropout_p1_gives_zeros_and_zero_gradient():
    x = mg.tensor(np.ones((3, 4)), requires_grad=True)
    y = F.dropout(x, 1.0)
    np.testing.assert_array_equal(y.data, np.zeros((3, 4)))
    assert np.isfinite(y.data).all()
    y.backward(np.ones((3, 4)))
    np.testing.assert_array_equal(x.grad, np.zeros((3, 4)))


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_rejects_p_outside_0_1(p):
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(mg.ones(2), p)


# ============================================================================= layer_norm

# (input shape, normalized_shape, with weight, with bias, eps)
LAYER_NORM_CASES = [
    ((4, 5), (5,), True, True, 1e-5),
    ((2, 3, 4), (3, 4), True, True, 1e-5),
    ((2, 3, 4), 4, False, False, 1e-5),
    ((3, 6), [6], True, False, 1e-3),
    ((3, 6), (6,), False, True, 0.1),
    ((6,), (6,), True, True, 1e-5),
]


@pytest.mark.parametrize(
    ("shape", "normalized_shape", "with_weight", "with_bias", "eps"), LAYER_NORM_CASES, ids=str
)
def test_layer_norm_matches_torch_and_finite_differences(
    shape, normalized_shape, with_weight, with_bias, eps
):
    rng = np.random.default_rng(0)
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    x = rng.standard_normal(shape) * 2 + 1
    w = rng.standard_normal(ns) if with_weight else None
    b = rng.standard_normal(ns) if with_bias else None
    arrays = [a for a in (x, w, b) if a is not None]

    def split(args):  # put the present arrays back in (x, weight, bias) order
        it = iter(args)
        return next(it), next(it) if with_weight else None, next(it) if with_bias else None

    def mg_fn(*args):
        xi, wi, bi = split(args)
        return F.layer_norm(xi, normalized_shape, wi, bi, eps=eps)

    def torch_fn(*args):
        xi, wi, bi = split(args)
        return TF.layer_norm(xi, ns, wi, bi, eps=eps)

    _check(mg_fn, torch_fn, *arrays)


def test_layer_norm_output_is_normalised():
    x = mg.tensor(np.random.default_rng(1).standard_normal((5, 8)) * 10 + 3)
    y = F.layer_norm(x, (8,)).data
    np.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=-1), 1, rtol=1e-4)  # biased var / (var + eps)


def test_layer_norm_keeps_float32():
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    w, b = np.ones(4, np.float32), np.zeros(4, np.float32)
    y = F.layer_norm(mg.tensor(x), (4,), mg.tensor(w), mg.tensor(b))
    assert y.dtype == np.float32
    expected = TF.layer_norm(torch.tensor(x), (4,), torch.tensor(w), torch.tensor(b)).numpy()
    np.testing.assert_allclose(y.data, expected, rtol=1e-5, atol=1e-6)


def test_layer_norm_shape_errors():
    x = mg.randn(2, 3)
    with pytest.raises(RuntimeError, match=r"normalized_shape=\[4\].*\[2, 3\]"):
        F.layer_norm(x, (4,))
    with pytest.raises(RuntimeError, match="weight of shape"):
        F.layer_norm(x, (3,), weight=mg.ones(4))
    with pytest.raises(RuntimeError, match="normalized_shape"):
        F.layer_norm(x, (1, 2, 3))


# ============================================================================= embedding

# (indices, num_embeddings, embedding_dim, padding_idx)
EMBEDDING_CASES = [
    (np.array([0, 2, 2, 5, 2]), 6, 3, None),
    (np.array([[1, 4, 1, 0], [9, 1, 1, 3]]), 10, 2, 1),
    (np.array([[1, 4], [5, 5]]), 6, 4, -1),
    (np.array([[[0, 1], [1, 2]], [[2, 2], [0, 0]]]), 3, 2, 0),
    (np.array(3), 5, 3, None),
]


@pytest.mark.parametrize(("indices", "num", "dim", "padding_idx"), EMBEDDING_CASES, ids=str)
def test_embedding_matches_torch_and_finite_differences(indices, num, dim, padding_idx):
    weight = np.random.default_rng(0).standard_normal((num, dim))
    mg_fn = lambda i, w: F.embedding(i, w, padding_idx=padding_idx)
    assert_grads_match_torch(
        mg_fn, lambda i, w: TF.embedding(i, w, padding_idx=padding_idx), indices, weight
    )
    if padding_idx is None:  # the padding row's gradient is 0 by design, not the derivative
        assert mg.gradcheck(mg_fn, _inputs((indices, weight)))


def test_embedding_repeated_indices_accumulate():
    weight = mg.tensor(np.zeros((4, 2)), requires_grad=True)
    out = F.embedding(np.array([1, 1, 1, 3]), weight)
    assert out.shape == (4, 2)
    out.backward(np.array([[1.0, 2.0], [10.0, 20.0], [100.0, 200.0], [5.0, 7.0]]))
    np.testing.assert_array_equal(
        weight.grad, np.array([[0.0, 0.0], [111.0, 222.0], [0.0, 0.0], [5.0, 7.0]])
    )


def test_embedding_padding_row_gets_no_gradient():
    weight = mg.tensor(np.ones((3, 2)), requires_grad=True)
    out = F.embedding(mg.tensor([2, 0, 2]), weight, padding_idx=2)
    np.testing.assert_array_equal(out.data, np.ones((3, 2)))  # the forward still reads the row
    out.backward(np.ones((3, 2)))
    np.testing.assert_array_equal(weight.grad, [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])


@pytest.mark.parametrize("bad", [7, -1])
def test_embedding_out_of_range_index_names_index_and_size(bad):
    with pytest.raises(IndexError, match=rf"index {bad}.*num_embeddings=5"):
        F.embedding(np.array([0, bad]), mg.randn(5, 2))


def test_embedding_input_errors():
    with pytest.raises(RuntimeError, match="integer indices"):
        F.embedding(np.array([0.0, 1.0]), mg.randn(5, 2))
    with pytest.raises(ValueError, match="padding_idx"):
        F.embedding(np.array([0]), mg.randn(5, 2), padding_idx=5)
    with pytest.raises(RuntimeError, match="2-D"):
        F.embedding(np.array([0]), mg.randn(5))


# ============================================================================= mse / l1

ELEMENTWISE_SHAPES = [(5,), (3, 4), (2, 3, 4)]


@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss", ["mse_loss", "l1_loss"])
def test_regression_losses_match_torch_in_input_and_target(loss, reduction, shape):
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal(shape), rng.standard_normal(shape)
    _check(
        lambda a, b: getattr(F, loss)(a, b, reduction=reduction),
        lambda a, b: getattr(TF, loss)(a, b, reduction=reduction),
        x,
        t,
    )


def test_l1_gradient_is_zero_where_input_equals_target():
    x = np.array([1.0, 2.0, 3.0])
    t = np.array([1.0, 0.0, 3.0])
    assert_grads_match_torch(
        lambda a, b: F.l1_loss(a, b, reduction="sum"),
        lambda a, b: TF.l1_loss(a, b, reduction="sum"),
        x,
        t,
    )
    xt = mg.tensor(x, requires_grad=True)
    F.l1_loss(xt, t, reduction="sum").backward()
    np.testing.assert_array_equal(xt.grad, [0.0, 1.0, 0.0])


def test_regression_losses_accept_a_plain_array_target():
    x = mg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = F.mse_loss(x, np.array([0.0, 4.0]))
    assert loss.item() == pytest.approx((1 + 4) / 2)
    loss.backward()
    np.testing.assert_allclose(x.grad, [1.0, -2.0])


def test_regression_losses_shape_mismatch():
    x = mg.randn(3, 1)
    with pytest.warns(UserWarning, match="different to the input size"):
        F.mse_loss(x, mg.randn(3))
    with pytest.raises(RuntimeError, match=r"target's shape \(3,\).*\(3, 2\)"):
        F.l1_loss(mg.randn(3, 2), mg.randn(3))


# ============================================================================= nll / cross_entropy

# name -> (input shape, target shape): 2-D batch, one 1-D sample, and extra dims (N, C, d1, d2)
CLASS_SHAPES = {"NC": ((5, 4), (5,)), "C": ((4,), ()), "NCd1d2": ((3, 4, 2, 2), (3, 2, 2))}

# name -> options; "ignored" puts the ignore_index into some targets
CLASS_OPTIONS: dict[str, dict[str, Any]] = {
    "plain": {},
    "weight": {"weight": True},
    "ignore_1": {"ignore_index": 1, "ignored": True},
    "ignore_default_weight": {"weight": True, "ignored": True},
    "smoothing": {"label_smoothing": 0.1},
    "smoothing_weight_ignore": {
        "label_smoothing": 0.25,
        "weight": True,
        "ignore_index": 2,
        "ignored": True,
    },
}


def _class_case(shape_name: str, options: dict[str, Any], seed: int = 0):
    rng = np.random.default_rng(seed)
    input_shape, target_shape = CLASS_SHAPES[shape_name]
    num_classes = input_shape[0] if len(input_shape) == 1 else input_shape[1]
    x = rng.standard_normal(input_shape) * 2
    target = rng.integers(0, num_classes, size=target_shape)
    ignore_index = options.get("ignore_index", -100)
    if ignore_index >= 0:  # a class used as ignore_index: keep the others in range
        target = np.where(target == ignore_index, (ignore_index + 1) % num_classes, target)
    if options.get("ignored") and target.ndim > 0:  # one sample only: keep it counted
        target.flat[::2] = ignore_index
    weight = rng.random(num_classes) + 0.5 if options.get("weight") else None
    kwargs: dict[str, Any] = {"ignore_index": ignore_index}
    if "label_smoothing" in options:
        kwargs["label_smoothing"] = options["label_smoothing"]
    return x, target, weight, kwargs


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", list(CLASS_OPTIONS))
@pytest.mark.parametrize("shape_name", list(CLASS_SHAPES))
def test_cross_entropy_matches_torch_and_finite_differences(shape_name, options, reduction):
    x, target, weight, kwargs = _class_case(shape_name, CLASS_OPTIONS[options])
    torch_weight = None if weight is None else torch.tensor(weight)
    _check(
        lambda a, t: F.cross_entropy(a, t, weight=weight, reduction=reduction, **kwargs),
        lambda a, t: TF.cross_entropy(a, t, weight=torch_weight, reduction=reduction, **kwargs),
        x,
        target,
    )


NLL_OPTIONS = [name for name, o in CLASS_OPTIONS.items() if "label_smoothing" not in o]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", NLL_OPTIONS)
@pytest.mark.parametrize("shape_name", list(CLASS_SHAPES))
def test_nll_loss_matches_torch_and_finite_differences(shape_name, options, reduction):
    x, target, weight, kwargs = _class_case(shape_name, CLASS_OPTIONS[options])
    class_dim = 0 if x.ndim == 1 else 1
    x = x - np.log(np.exp(x).sum(axis=class_dim, keepdims=True))  # log-probabilities
    torch_weight = None if weight is None else torch.tensor(weight)
    _check(
        lambda a, t: F.nll_loss(a, t, weight=weight, reduction=reduction, **kwargs),
        lambda a, t: TF.nll_loss(a, t, weight=torch_weight, reduction=reduction, **kwargs),
        x,
        target,
    )


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_is_finite_at_logits_of_1e4(reduction, label_smoothing):
    x = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4], [-1e4, -1e4, 1e4], [1e4, -1e4, 0.0]])
    target = np.array([0, 1, 0, 2])  # confident right, a tie, confident wrong, wrong
    ours = F.cross_entropy(mg.tensor(x), target, reduction=reduction, label_smoothing=0.0)
    assert np.isfinite(ours.data).all()
    assert_grads_match_torch(
        lambda a, t: F.cross_entropy(a, t, reduction=reduction, label_smoothing=label_smoothing),
        lambda a, t: TF.cross_entropy(a, t, reduction=reduction, label_smoothing=label_smoothing),
        x,
        target,
    )
    xt = mg.tensor(x, requires_grad=True)
    F.cross_entropy(xt, target, label_smoothing=label_smoothing).backward()
    assert np.isfinite(xt.grad).all()


def test_cross_entropy_known_values():
    # Uniform logits over 4 classes: -log(1/4) whatever the target.
    loss = F.cross_entropy(mg.tensor(np.zeros((3, 4))), np.array([0, 3, 1]))
    assert loss.item() == pytest.approx(math.log(4), rel=1e-15)
    # A confident right answer costs ~0, a confident wrong one ~the logit gap.
    x = mg.tensor(np.array([[1e4, 0.0], [0.0, 1e4]]))
    per_sample = F.cross_entropy(x, np.array([0, 0]), reduction="none").data
    np.testing.assert_allclose(per_sample, [0.0, 1e4], atol=1e-12)


@pytest.mark.parametrize("loss", ["nll_loss", "cross_entropy"])
def test_all_targets_ignored_gives_nan_mean_as_torch(loss):
    x = np.random.default_rng(0).standard_normal((3, 4))
    target = np.array([-100, -100, -100])
    ours = getattr(F, loss)(mg.tensor(x), target).item()
    theirs = getattr(TF, loss)(torch.tensor(x), torch.tensor(target)).item()
    assert math.isnan(ours) and math.isnan(theirs)
    summed = getattr(F, loss)(mg.tensor(x), target, reduction="sum").item()
    assert summed == 0.0


def test_cross_entropy_keeps_float32():
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    t = np.array([0, 2, 1, 1])
    ours = F.cross_entropy(mg.tensor(x), t, label_smoothing=0.1)
    assert ours.dtype == np.float32
    expected = TF.cross_entropy(torch.tensor(x), torch.tensor(t), label_smoothing=0.1).item()
    assert ours.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("loss", ["nll_loss", "cross_entropy"])
@pytest.mark.parametrize("bad", [4, 7, -3])
def test_class_index_out_of_range_names_index_and_class_count(loss, bad):
    with pytest.raises(IndexError, match=rf"target {bad} is out of bounds for 4 classes"):
        getattr(F, loss)(mg.randn(3, 4), np.array([0, bad, 1]))


@pytest.mark.parametrize("loss", ["nll_loss", "cross_entropy"])
def test_class_target_shape_and_type_errors(loss):
    fn = getattr(F, loss)
    with pytest.raises(ValueError, match=r"batch_size \(3\).*batch_size \(2\)"):
        fn(mg.randn(3, 4), np.array([0, 1]))
    with pytest.raises(RuntimeError, match=r"target of shape \(2, 4\)"):
        fn(mg.randn(2, 3, 4), np.array([1, 2]))
    with pytest.raises(RuntimeError, match="target of shape"):
        fn(mg.randn(4), np.array([1]))
    with pytest.raises(RuntimeError, match="integer class indices"):
        fn(mg.randn(3, 4), np.array([0.0, 1.0, 2.0]))
    with pytest.raises(RuntimeError, match="all 4 classes"):
        fn(mg.randn(3, 4), np.array([0, 1, 2]), weight=np.ones(3))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (64, 10)])
def test_fused_cross_entropy_equals_the_general_path(monkeypatch, shape, reduction, dtype):
    # The training-loop case runs as one CrossEntropyFunction node; pin it to the general
    # log_softmax + nll path, value and gradient, at ordinary and extreme logits.
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * np.where(rng.random(shape) < 0.2, 1e4, 1.0)).astype(dtype)
    target = rng.integers(0, shape[1], size=shape[0])
    upstream = dtype(rng.standard_normal())

    def loss_and_grad() -> tuple[mg.Tensor, np.ndarray]:
        xt = mg.tensor(x, requires_grad=True)
        loss = F.cross_entropy(xt, target, reduction=reduction)
        loss.backward(mg.tensor(upstream))
        return loss, xt.grad

    fused, fused_grad = loss_and_grad()
    assert fused.grad_fn.name() == "CrossEntropyBackward"
    monkeypatch.setattr(F, "_fused_cross_entropy_applies", lambda *args: False)
    general, general_grad = loss_and_grad()
    assert general.grad_fn.name() != "CrossEntropyBackward"
    assert fused.dtype == general.dtype == dtype and fused_grad.dtype == dtype
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(fused.item(), general.item(), rtol=rtol)
    np.testing.assert_allclose(fused_grad, general_grad, rtol=rtol, atol=rtol * 1e-3)


@pytest.mark.parametrize(
    "case",
    ["ignored target", "class weights", "label smoothing", "reduction none", "3-D logits"],
)
def test_fused_cross_entropy_is_not_used_where_it_would_differ(case):
    x = mg.randn(4, 3, requires_grad=True)
    target = np.array([0, 1, 2, 1])
    kwargs: dict[str, Any] = {}
    if case == "ignored target":
        kwargs["ignore_index"] = 1
    elif case == "class weights":
        kwargs["weight"] = np.ones(3)
    elif case == "label smoothing":
        kwargs["label_smoothing"] = 0.1
    elif case == "reduction none":
        kwargs["reduction"] = "none"
    else:
        x, target = mg.randn(4, 3, 2, requires_grad=True), np.zeros((4, 2), dtype=np.int64)
    assert F.cross_entropy(x, target, **kwargs).grad_fn.name() != "CrossEntropyBackward"


TARGET_RANGE_CASES = [([0, 1, 2, 1], True), ([0, 3, 2, 1], False)]
NEGATIVE_TARGET_CASES = [([0, -1, 2, 1], False), ([0, -100, 1, 1], False)]


@pytest.mark.parametrize(
    ("dtype", "target", "fused"),
    [(d, t, f) for d in (np.uint8, np.uint64) for t, f in TARGET_RANGE_CASES]
    + [
        (d, t, f)
        for d in (np.int8, np.int16, np.int32, np.int64)
        for t, f in TARGET_RANGE_CASES + NEGATIVE_TARGET_CASES
    ],
)
def test_fused_cross_entropy_only_for_targets_in_range(dtype, target, fused):
    # One check covers both bounds (a negative target viewed as unsigned is huge): pin it for
    # every integer width, signed and unsigned.
    x = mg.randn(4, 3)
    t = np.array(target).astype(dtype)
    assert F._fused_cross_entropy_applies(x, t, None, -100, "mean", 0.0) is fused


def test_cross_entropy_rejects_bad_label_smoothing():
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(mg.randn(2, 3), np.array([0, 1]), label_smoothing=1.5)


# ============================================================================= binary cross-entropy

# name -> (shape, weight shape or None)
BCE_CASES = {
    "vector": ((6,), None),
    "matrix": ((3, 4), None),
    "weight_full": ((3, 4), (3, 4)),
    "weight_per_column": ((3, 4), (4,)),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", list(BCE_CASES))
def test_binary_cross_entropy_matches_torch_and_finite_differences(case, reduction):
    shape, weight_shape = BCE_CASES[case]
    rng = np.random.default_rng(0)
    x = rng.uniform(0.05, 0.95, shape)
    t = rng.random(shape)  # soft targets: the target gets a gradient too
    w = None if weight_shape is None else rng.random(weight_shape) + 0.5
    tw = None if w is None else torch.tensor(w)
    _check(
        lambda a, b: F.binary_cross_entropy(a, b, weight=w, reduction=reduction),
        lambda a, b: TF.binary_cross_entropy(a, b, weight=tw, reduction=reduction),
        x,
        t,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_is_finite_at_inputs_0_and_1(reduction):
    x = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    t = np.array([0.0, 1.0, 0.0, 1.0, 0.5, 0.5])
    ours = F.binary_cross_entropy(mg.tensor(x), mg.tensor(t), reduction="none").data
    np.testing.assert_allclose(ours, [0.0, 100.0, 100.0, 0.0, 50.0, 50.0])  # logs clamped
    assert_grads_match_torch(
        lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction),
        lambda a, b: TF.binary_cross_entropy(a, b, reduction=reduction),
        x,
        t,
    )


# name -> (shape, weight shape or None, pos_weight shape or None)
BCE_LOGITS_CASES = {
    "vector": ((6,), None, None),
    "matrix": ((3, 4), None, None),
    "weight": ((3, 4), (3, 4), None),
    "pos_weight": ((3, 4), None, (4,)),
    "weight_and_pos_weight": ((3, 4), (4,), (4,)),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", list(BCE_LOGITS_CASES))
def test_bce_with_logits_matches_torch_and_finite_differences(case, reduction):
    shape, weight_shape, pos_shape = BCE_LOGITS_CASES[case]
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape) * 3
    t = rng.random(shape)
    w = None if weight_shape is None else rng.random(weight_shape) + 0.5
    pw = None if pos_shape is None else rng.random(pos_shape) * 3
    tw = None if w is None else torch.tensor(w)
    tpw = None if pw is None else torch.tensor(pw)
    _check(
        lambda a, b: F.binary_cross_entropy_with_logits(
            a, b, weight=w, reduction=reduction, pos_weight=pw
        ),
        lambda a, b: TF.binary_cross_entropy_with_logits(
            a, b, weight=tw, reduction=reduction, pos_weight=tpw
        ),
        x,
        t,
    )


@pytest.mark.parametrize("pos_weight", [None, 2.5])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_is_finite_at_plus_minus_100(reduction, pos_weight):
    x = np.array([100.0, 100.0, -100.0, -100.0, 1000.0, -1000.0])
    t = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    pw = None if pos_weight is None else np.array(pos_weight)
    tpw = None if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float64)
    ours = F.binary_cross_entropy_with_logits(mg.tensor(x), mg.tensor(t), reduction="none")
    np.testing.assert_allclose(ours.data, [100.0, 0.0, 0.0, 100.0, 1000.0, 1000.0], atol=1e-40)
    assert_grads_match_torch(
        lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction, pos_weight=pw),
        lambda a, b: TF.binary_cross_entropy_with_logits(a, b, reduction=reduction, pos_weight=tpw),
        x,
        t,
    )


def test_bce_with_logits_equals_bce_of_sigmoid_for_moderate_logits():
    rng = np.random.default_rng(2)
    x, t = rng.standard_normal((4, 3)), rng.random((4, 3))
    a = F.binary_cross_entropy_with_logits(mg.tensor(x), mg.tensor(t)).item()
    b = F.binary_cross_entropy(F.sigmoid(mg.tensor(x)), mg.tensor(t)).item()
    assert a == pytest.approx(b, rel=1e-12)


def test_binary_cross_entropy_errors():
    with pytest.raises(ValueError, match="target size"):
        F.binary_cross_entropy(mg.rand(2), mg.rand(1))
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(mg.tensor([0.5, 1.5]), mg.tensor([1.0, 0.0]))
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(mg.tensor([float("nan")]), mg.tensor([1.0]))
    with pytest.raises(ValueError, match="target size"):
        F.binary_cross_entropy_with_logits(mg.randn(2), mg.rand(1))


# ============================================================================= reductions

LOSS_CALLS: dict[str, Callable[[str], Any]] = {
    "mse_loss": lambda r: F.mse_loss(mg.randn(3), mg.randn(3), reduction=r),
    "l1_loss": lambda r: F.l1_loss(mg.randn(3), mg.randn(3), reduction=r),
    "nll_loss": lambda r: F.nll_loss(mg.randn(2, 3), np.array([0, 1]), reduction=r),
    "cross_entropy": lambda r: F.cross_entropy(mg.randn(2, 3), np.array([0, 1]), reduction=r),
    "binary_cross_entropy": lambda r: F.binary_cross_entropy(mg.rand(3), mg.rand(3), reduction=r),
    "binary_cross_entropy_with_logits": lambda r: F.binary_cross_entropy_with_logits(
        mg.randn(3), mg.rand(3), reduction=r
    ),
}


@pytest.mark.parametrize("loss", list(LOSS_CALLS))
def test_bad_reduction_raises_value_error(loss):
    with pytest.raises(ValueError, match="'avg' is not a valid value for reduction"):
        LOSS_CALLS[loss]("avg")


@pytest.mark.parametrize("loss", list(LOSS_CALLS))
def test_reductions_have_the_right_shapes(loss):
    assert LOSS_CALLS[loss]("mean").shape == ()
    assert LOSS_CALLS[loss]("sum").shape == ()
    assert LOSS_CALLS[loss]("none").ndim == 1
