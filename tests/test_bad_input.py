"""Bad input to every public op, layer, loss, functional and optimizer (api.md).

The project's standard: bad input gets a clear error, naming the op, the argument and the
shapes, and never corrupts state. Each case checks (1) the exception type PyTorch would raise,
(2) that the message names the op or layer and, where shapes are involved, the offending
shapes, and (3) for the stateful cases, that inputs, .grad, parameters and optimizer state are
exactly as before. Integer tensors in floating-point ops are not bad input here: minigrad
computes them in float64 (README, "Where minigrad differs"), where PyTorch refuses some.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn, optim

RTE, VE, IE, TE = RuntimeError, ValueError, IndexError, TypeError


def T(*shape, requires_grad=True, value=None):
    """A float64 tensor of ``shape`` (random, or filled with ``value``)."""
    if value is None:
        data = np.random.default_rng(0).standard_normal(shape)
    else:
        data = np.full(shape, value, dtype=np.float64)
    return mg.tensor(data, requires_grad=requires_grad)


def P(*shape, value=0.5):
    """Probabilities for binary_cross_entropy."""
    return T(*shape, value=value)


def lin(i=3, o=4):
    return nn.Linear(i, o, dtype=mg.float64, generator=np.random.default_rng(0))


def idx(*values):
    return mg.tensor(np.array(values, dtype=np.int64))


S23, S45 = "(2, 3)", "(4, 5)"

# (id, thunk, accepted exception types, substrings the message must contain)
CASES = [
    # ---------------------------------------------------------------- broadcasting ops
    ("add", lambda: T(2, 3) + T(4, 5), RTE, ["add", S23, S45]),
    ("add_ndarray", lambda: T(2, 3) + np.ones((4, 5)), RTE, ["add", S23, S45]),
    ("radd_ndarray", lambda: np.ones((4, 5)) + T(2, 3), RTE, ["add", S23, S45]),
    ("sub", lambda: T(2, 3) - T(4, 5), RTE, ["sub", S23, S45]),
    ("mul", lambda: T(2, 3) * T(4, 5), RTE, ["mul", S23, S45]),
    ("div", lambda: T(2, 3) / T(4, 5), RTE, ["div", S23, S45]),
    ("pow", lambda: T(2, 3) ** T(4, 5), RTE, ["pow", S23, S45]),
    ("maximum", lambda: mg.maximum(T(2, 3), T(4, 5)), RTE, ["maximum", S23, S45]),
    ("minimum", lambda: mg.minimum(T(2, 3), T(4, 5)), RTE, ["minimum", S23, S45]),
    (
        "where_cond",
        lambda: mg.where(mg.tensor(np.ones((4, 5), bool)), T(2, 3), T(2, 3)),
        RTE,
        ["where", S23, S45],
    ),
    (
        "where_b",
        lambda: mg.where(mg.tensor(np.ones((2, 3), bool)), T(2, 3), T(4, 5)),
        RTE,
        ["where", S23, S45],
    ),
    # clamp's bounds are numbers (README, "Where minigrad differs"); a tensor is refused
    ("clamp_tensor_bound", lambda: T(2, 3).clamp(min=T(4, 5)), TE, ["clamp", "Tensor"]),
    ("clamp_str_bound", lambda: T(2, 3).clamp(min="a"), TE, ["clamp"]),
    ("add_list_of_str", lambda: T(2, 3) + ["a", "b", "c"], TE, ["tensor", "list"]),
    ("mul_none", lambda: T(2, 3) * None, TE, ["NoneType"]),
    # ---------------------------------------------------------------- matmul family
    ("matmul", lambda: T(2, 3) @ T(4, 5), RTE, ["matmul", S23, S45]),
    ("matmul_fn", lambda: mg.matmul(T(2, 3), T(4, 5)), RTE, ["matmul", S23, S45]),
    ("matmul_0d", lambda: T(2, 3) @ mg.tensor(2.0), RTE, ["matmul", S23]),
    ("matmul_1d", lambda: T(3) @ T(4), RTE, ["matmul", "(3,)", "(4,)"]),
    ("dot_len", lambda: mg.dot(T(3), T(4)), RTE, ["dot", "(3,)", "(4,)"]),
    ("dot_2d", lambda: mg.dot(T(3, 3), T(3)), RTE, ["dot", "(3, 3)"]),
    ("outer_2d", lambda: mg.outer(T(3, 2), T(3)), RTE, ["outer", "(3, 2)"]),
    # ---------------------------------------------------------------- cat / stack
    ("cat_shapes", lambda: mg.cat([T(2, 3), T(2, 4)]), RTE, ["cat", S23, "(2, 4)"]),
    ("cat_ndim", lambda: mg.cat([T(2, 3), T(2)]), RTE, ["cat", S23, "(2,)"]),
    ("cat_dim", lambda: mg.cat([T(2, 3), T(2, 3)], 5), IE, ["cat", "5"]),
    ("cat_empty", lambda: mg.cat([]), RTE, ["cat"]),
    ("cat_strs", lambda: mg.cat(["a", "b"]), TE, ["str"]),
    ("cat_a_tensor", lambda: mg.cat(T(2, 3)), TE, ["cat", "Tensor"]),
    ("stack_shapes", lambda: mg.stack([T(2, 3), T(2, 4)]), RTE, ["stack", S23, "(2, 4)"]),
    ("stack_dim", lambda: mg.stack([T(2, 3), T(2, 3)], 5), IE, ["stack", "5"]),
    ("stack_empty", lambda: mg.stack([]), RTE, ["stack"]),
    # ---------------------------------------------------------------- reductions and dims
    ("sum_dim", lambda: T(2, 3).sum(5), IE, ["sum", "5"]),
    ("sum_dim_str", lambda: T(2, 3).sum("a"), TE, ["sum", "str"]),
    ("mean_dim", lambda: T(2, 3).mean(-3), IE, ["mean", "-3"]),
    ("var_dim", lambda: T(2, 3).var(4), IE, ["var", "4"]),
    ("amax_dim", lambda: T(2, 3).amax(4), IE, ["amax", "4"]),
    ("amin_dim", lambda: T(2, 3).amin(4), IE, ["amin", "4"]),
    ("max_dim", lambda: T(2, 3).max(4), IE, ["4"]),
    ("amin_empty", lambda: T(0, 3).amin(), RTE, ["amin", "(0, 3)"]),
    ("softmax_dim", lambda: T(2, 3).softmax(3), IE, ["softmax", "3"]),
    ("log_softmax_dim", lambda: T(2, 3).log_softmax(3), IE, ["log_softmax", "3"]),
    # ---------------------------------------------------------------- shape ops
    ("reshape", lambda: T(2, 3).reshape(4, 2), RTE, ["reshape", "[4, 2]", "6"]),
    ("reshape_neg", lambda: T(2, 3).reshape(-2, 3), RTE, ["reshape", "-2"]),
    ("reshape_two_minus_one", lambda: T(2, 3).reshape(-1, -1), RTE, ["reshape"]),
    ("view", lambda: T(2, 3).view(7), RTE, ["7", "6"]),
    ("reshape_str", lambda: T(2, 3).reshape("a"), TE, ["reshape"]),
    ("reshape_tensor_size", lambda: T(2, 3).reshape(mg.tensor(6.0)), TE, ["reshape"]),
    ("flatten_order", lambda: T(2, 3).flatten(1, 0), RTE, ["flatten"]),
    ("flatten_dim", lambda: T(2, 3).flatten(0, 5), IE, ["flatten", "5"]),
    ("transpose_dim", lambda: T(2, 3).transpose(0, 2), IE, ["transpose", "2"]),
    ("permute_len", lambda: T(2, 3).permute(0), RTE, ["permute", S23]),
    ("permute_dup", lambda: T(2, 3).permute(0, 0), RTE, ["permute"]),
    ("permute_dim", lambda: T(2, 3).permute(0, 2), IE, ["permute", "2"]),
    ("unsqueeze_dim", lambda: T(2, 3).unsqueeze(4), IE, ["unsqueeze", "4"]),
    ("squeeze_dim", lambda: T(2, 3).squeeze(4), IE, ["squeeze", "4"]),
    ("expand", lambda: T(2, 3).expand(2, 4), RTE, ["expand", "[2, 4]", "[2, 3]"]),
    ("expand_fewer", lambda: T(2, 3).expand(3), RTE, ["expand"]),
    ("expand_negative", lambda: T(2, 3).expand(-2, 3), RTE, ["expand"]),
    ("t_3d", lambda: T(2, 3, 4).t(), RTE, ["t()", "(2, 3, 4)"]),
    # ---------------------------------------------------------------- indexing
    ("getitem_int", lambda: T(2, 3)[5], IE, ["index", "5", S23]),
    ("getitem_array", lambda: T(2, 3)[np.array([0, 7])], IE, ["index", "7", S23]),
    ("getitem_mask", lambda: T(2, 3)[np.ones(5, bool)], IE, ["index", S23]),
    ("getitem_str", lambda: T(2, 3)["a"], IE, ["index", S23]),
    ("getitem_too_many", lambda: T(2, 3)[0, 0, 0], IE, ["index", S23]),
    # ---------------------------------------------------------------- factories
    ("tensor_list_of_str", lambda: mg.tensor(["a", "b"]), TE, ["tensor"]),
    ("tensor_ragged", lambda: mg.tensor([[1.0, 2.0], [3.0]]), VE, ["tensor"]),
    ("tensor_none", lambda: mg.tensor(None), TE, ["tensor", "NoneType"]),
    (
        "tensor_int_requires_grad",
        lambda: mg.tensor([1, 2], requires_grad=True),
        RTE,
        ["only floating point tensors can require gradients"],
    ),
    ("zeros_negative", lambda: mg.zeros(-1, 2), RTE, ["zeros", "negative", "-1"]),
    ("ones_negative", lambda: mg.ones(2, -3), RTE, ["ones", "negative", "-3"]),
    ("full_negative", lambda: mg.full((-1,), 1.0), RTE, ["full", "negative"]),
    ("randn_negative", lambda: mg.randn(-1), RTE, ["randn", "negative", "-1"]),
    ("rand_negative", lambda: mg.rand(-1), RTE, ["rand", "negative", "-1"]),
    ("zeros_str", lambda: mg.zeros("a"), TE, ["zeros"]),
    ("zeros_float_size", lambda: mg.zeros(2.5), TE, ["zeros", "2.5"]),
    ("arange_zero_step", lambda: mg.arange(0, 5, 0), RTE, ["arange", "step"]),
    ("item_many", lambda: T(2, 3).item(), RTE, ["item", "6"]),
    # ---------------------------------------------------------------- backward
    (
        "backward_gradient_shape",
        lambda: (T(2, 3) * 2).backward(np.ones((4, 5))),
        RTE,
        [S23, S45],
    ),
    ("backward_nonscalar", lambda: (T(2, 3) * 2).backward(), RTE, ["scalar", S23]),
    (
        "backward_no_grad",
        lambda: (T(2, 3, requires_grad=False) * 2).backward(np.ones((2, 3))),
        RTE,
        ["does not require grad"],
    ),
    # ---------------------------------------------------------------- Linear / linear
    ("Linear_in_features", lambda: lin()(T(2, 5)), RTE, ["linear", "in_features=3", "(2, 5)"]),
    ("Linear_0d_input", lambda: lin()(mg.tensor(1.0)), RTE, ["linear", "()"]),
    ("Linear_negative_size", lambda: nn.Linear(-1, 3), (RTE, VE), ["Linear", "-1"]),
    ("linear_weight", lambda: F.linear(T(2, 3), T(4, 5)), RTE, ["linear", S23, S45]),
    ("linear_bias", lambda: F.linear(T(2, 3), T(4, 3), T(5)), RTE, ["linear", "(5,)"]),
    ("linear_1d_weight", lambda: F.linear(T(2, 3), T(4)), RTE, ["linear", S23, "(4,)"]),
    ("linear_list_input", lambda: F.linear([1.0, 2.0, 3.0], T(4, 3)), TE, ["linear", "list"]),
    (
        "LoRALinear_in_features",
        lambda: nn.LoRALinear(lin(), 2)(T(2, 5)),
        RTE,
        ["linear", "(2, 5)"],
    ),
    ("LoRALinear_rank0", lambda: nn.LoRALinear(lin(), 0), VE, ["LoRALinear", "rank"]),
    ("LoRALinear_base", lambda: nn.LoRALinear(nn.ReLU(), 2), TE, ["LoRALinear", "ReLU"]),
    ("Sequential_not_module", lambda: nn.Sequential(lin(), 3), TE, ["int", "Module"]),
    # ---------------------------------------------------------------- other layers
    (
        "LayerNorm_shape",
        lambda: nn.LayerNorm(4)(T(2, 3)),
        RTE,
        ["layer_norm", "[4]", "[2, 3]"],
    ),
    ("layer_norm_shape", lambda: F.layer_norm(T(2, 3), (4,)), RTE, ["layer_norm", "[2, 3]"]),
    (
        "layer_norm_weight",
        lambda: F.layer_norm(T(2, 3), (3,), weight=T(4)),
        RTE,
        ["layer_norm", "weight", "[4]"],
    ),
    (
        "layer_norm_bias",
        lambda: F.layer_norm(T(2, 3), (3,), bias=T(4)),
        RTE,
        ["layer_norm", "bias", "[4]"],
    ),
    ("Embedding_index_high", lambda: nn.Embedding(5, 2)(idx(0, 5)), IE, ["embedding", "5"]),
    ("Embedding_index_negative", lambda: nn.Embedding(5, 2)(idx(-1)), IE, ["embedding", "-1"]),
    (
        "Embedding_float_index",
        lambda: nn.Embedding(5, 2)(mg.tensor([0.0, 1.0])),
        (RTE, TE),
        ["embedding", "float32"],
    ),
    ("Embedding_negative_size", lambda: nn.Embedding(-5, 2), (RTE, VE), ["Embedding", "-5"]),
    ("embedding_1d_weight", lambda: F.embedding(idx(0), T(5)), RTE, ["embedding", "(5,)"]),
    (
        "embedding_padding_idx",
        lambda: F.embedding(idx(0), T(5, 2), padding_idx=9),
        VE,
        ["padding_idx", "9"],
    ),
    ("Dropout_p", lambda: nn.Dropout(1.5), VE, ["dropout", "1.5"]),
    ("dropout_p", lambda: F.dropout(T(2, 3), p=-0.1), VE, ["dropout", "-0.1"]),
    ("gelu_approximate", lambda: F.gelu(T(2, 3), approximate="foo"), RTE, ["gelu", "foo"]),
    ("Softmax_dim", lambda: nn.Softmax(dim=3)(T(2, 3)), IE, ["softmax", "3"]),
    ("softmax_fn_dim", lambda: F.softmax(T(2, 3), 3), IE, ["softmax", "3"]),
    ("log_softmax_fn_dim", lambda: F.log_softmax(T(2, 3), 3), IE, ["log_softmax", "3"]),
    ("Flatten_dim", lambda: nn.Flatten(5)(T(2, 3)), IE, ["flatten", "5"]),
    ("LeakyReLU_str_slope", lambda: nn.LeakyReLU("a")(T(2, 3)), TE, ["leaky_relu"]),
    ("tanh_str", lambda: F.tanh("a"), TE, ["tanh"]),
    # ---------------------------------------------------------------- losses
    ("mse_shape", lambda: F.mse_loss(T(2, 3), T(4, 5)), RTE, ["mse_loss", S23, S45]),
    ("l1_shape", lambda: F.l1_loss(T(2, 3), T(4, 5)), RTE, ["l1_loss", S23, S45]),
    ("mse_reduction", lambda: F.mse_loss(T(2, 3), T(2, 3), reduction="foo"), VE, ["mse_loss"]),
    (
        "cross_entropy_float_target",
        lambda: F.cross_entropy(T(2, 3), mg.tensor([0.0, 1.0])),
        RTE,
        ["cross_entropy", "float32"],
    ),
    (
        "cross_entropy_class_high",
        lambda: F.cross_entropy(T(2, 3), idx(0, 3)),
        IE,
        ["cross_entropy", "3"],
    ),
    (
        "cross_entropy_class_negative",
        lambda: F.cross_entropy(T(2, 3), idx(0, -2)),
        IE,
        ["cross_entropy", "-2"],
    ),
    (
        "cross_entropy_list_target",
        lambda: F.cross_entropy(T(2, 3), [0, 5]),
        IE,
        ["cross_entropy", "5"],
    ),
    (
        "cross_entropy_str_target",
        lambda: F.cross_entropy(T(2, 3), ["a", "b"]),
        (RTE, TE),
        ["cross_entropy"],
    ),
    (
        "cross_entropy_batch",
        lambda: F.cross_entropy(T(2, 3), idx(0, 1, 2)),
        VE,
        ["cross_entropy", "(2)", "(3)"],
    ),
    (
        "cross_entropy_target_2d",
        lambda: F.cross_entropy(T(2, 3), mg.tensor(np.array([[0], [1]]))),
        RTE,
        ["cross_entropy", "(2, 1)"],
    ),
    (
        "cross_entropy_0d_input",
        lambda: F.cross_entropy(mg.tensor(1.0, requires_grad=True), idx(0)),
        (RTE, VE),
        ["cross_entropy"],
    ),
    (
        "cross_entropy_weight",
        lambda: F.cross_entropy(T(2, 3), idx(0, 1), weight=T(5)),
        RTE,
        ["cross_entropy", "(5,)"],
    ),
    (
        "cross_entropy_reduction",
        lambda: F.cross_entropy(T(2, 3), idx(0, 1), reduction="foo"),
        VE,
        ["cross_entropy", "foo"],
    ),
    (
        "cross_entropy_label_smoothing",
        lambda: F.cross_entropy(T(2, 3), idx(0, 1), label_smoothing=2.0),
        VE,
        ["cross_entropy", "2.0"],
    ),
    ("nll_class_high", lambda: F.nll_loss(T(2, 3), idx(0, 3)), IE, ["nll_loss", "3"]),
    (
        "nll_float_target",
        lambda: F.nll_loss(T(2, 3), mg.tensor([0.0, 1.0])),
        RTE,
        ["nll_loss", "float32"],
    ),
    ("nll_batch", lambda: F.nll_loss(T(2, 3), idx(0)), VE, ["nll_loss", "(2)", "(1)"]),
    (
        "bce_shape",
        lambda: F.binary_cross_entropy(P(2, 3), T(4, 5)),
        (VE, RTE),
        ["binary_cross_entropy", S23, S45],
    ),
    (
        "bce_range",
        lambda: F.binary_cross_entropy(P(2, 3, value=1.5), T(2, 3, value=1.0)),
        RTE,
        ["binary_cross_entropy", "between 0 and 1"],
    ),
    (
        "bce_weight",
        lambda: F.binary_cross_entropy(P(2, 3), T(2, 3, value=1.0), weight=T(5)),
        RTE,
        ["binary_cross_entropy", S23, "(5,)"],
    ),
    (
        "bce_logits_shape",
        lambda: F.binary_cross_entropy_with_logits(T(2, 3), T(4, 5)),
        (VE, RTE),
        ["binary_cross_entropy_with_logits", S23, S45],
    ),
    (
        "bce_logits_pos_weight",
        lambda: F.binary_cross_entropy_with_logits(T(2, 3), T(2, 3), pos_weight=T(5)),
        RTE,
        ["binary_cross_entropy_with_logits", S23, "(5,)"],
    ),
    (
        "bce_logits_weight",
        lambda: F.binary_cross_entropy_with_logits(T(2, 3), T(2, 3), weight=T(5)),
        RTE,
        ["binary_cross_entropy_with_logits", S23, "(5,)"],
    ),
    # ---------------------------------------------------------------- nn.init / utils
    ("kaiming_1d", lambda: nn.init.kaiming_uniform_(T(3)), VE, ["fan", "(3,)"]),
    ("xavier_1d", lambda: nn.init.xavier_normal_(T(3)), VE, ["fan", "(3,)"]),
    (
        "clip_grad_norm_str",
        lambda: nn.utils.clip_grad_norm_([_with_grad(T(3))], "a"),
        (TE, VE),
        ["clip_grad_norm_", "max_norm"],
    ),
    ("Module_to_bad_dtype", lambda: lin().to("foo"), TE, ["Module.to", "foo"]),
    ("Module_to_int", lambda: lin().to(mg.int64), TE, ["Module.to", "int64"]),
    # ---------------------------------------------------------------- optim
    ("SGD_negative_lr", lambda: optim.SGD([T(2)], lr=-1), VE, ["learning rate", "-1"]),
    ("SGD_str_lr", lambda: optim.SGD([T(2)], lr="a"), (TE, VE), ["learning rate"]),
    ("SGD_empty", lambda: optim.SGD([], lr=0.1), VE, ["SGD", "empty"]),
    ("SGD_list_of_str", lambda: optim.SGD(["a", "b"], lr=0.1), TE, ["Tensor", "str"]),
    ("SGD_a_tensor", lambda: optim.SGD(T(2), lr=0.1), TE, ["SGD", "Tensor"]),
    ("SGD_nesterov", lambda: optim.SGD([T(2)], lr=0.1, nesterov=True), VE, ["Nesterov"]),
    ("SGD_momentum", lambda: optim.SGD([T(2)], lr=0.1, momentum=-1), VE, ["momentum"]),
    ("SGD_non_leaf", lambda: optim.SGD([T(2) * 2], lr=0.1), VE, ["non-leaf"]),
    ("Adam_betas", lambda: optim.Adam([T(2)], betas=(1.5, 0.9)), VE, ["beta", "1.5"]),
    ("Adam_eps", lambda: optim.Adam([T(2)], eps=-1), VE, ["epsilon"]),
    ("AdamW_betas", lambda: optim.AdamW([T(2)], betas=(0.9, 1.0)), VE, ["beta", "1.0"]),
    ("RMSprop_alpha", lambda: optim.RMSprop([T(2)], alpha=-1), VE, ["alpha"]),
    ("StepLR_not_optimizer", lambda: optim.lr_scheduler.StepLR("a", 2), TE, ["Optimizer"]),
    ("StepLR_zero", lambda: optim.lr_scheduler.StepLR(_sgd(), 0), VE, ["StepLR", "step_size"]),
    (
        "StepLR_str",
        lambda: optim.lr_scheduler.StepLR(_sgd(), "a"),
        (TE, VE),
        ["StepLR", "step_size"],
    ),
    (
        "CosineAnnealingLR_str",
        lambda: optim.lr_scheduler.CosineAnnealingLR(_sgd(), "a"),
        (TE, VE),
        ["CosineAnnealingLR", "T_max"],
    ),
    (
        "optimizer_load_state_dict_list",
        lambda: _sgd().load_state_dict([1, 2]),
        (TE, VE),
        ["state_dict"],
    ),
]


def _with_grad(t):
    t.grad = np.full(t.shape, 10.0)
    return t


def _sgd():
    return optim.SGD([T(3)], lr=0.1)


@pytest.mark.parametrize(
    ("thunk", "errors", "needles"),
    [pytest.param(f, e, n, id=name) for name, f, e, n in CASES],
)
def test_bad_input_raises_clear_error(thunk, errors, needles):
    with pytest.raises(Exception) as info:
        thunk()
    exc = info.value
    assert isinstance(exc, errors), f"{type(exc).__name__} (want {errors}): {exc}"
    message = str(exc)
    missing = [n for n in needles if n not in message]
    assert not missing, f"message lacks {missing}: {type(exc).__name__}: {message}"


def test_case_ids_are_unique():
    names = [name for name, *_ in CASES]
    assert len(names) == len(set(names))


# ----------------------------------------------------------------------------- no corruption


def _snapshot_tensors(tensors):
    return [
        (t.data.copy(), None if t.grad is None else t.grad.copy(), t.requires_grad) for t in tensors
    ]


def _assert_unchanged(tensors, before):
    for i, (t, (data, grad, rg)) in enumerate(zip(tensors, before)):
        assert np.array_equal(t.data, data), f"tensor {i}: data changed"
        assert t.requires_grad == rg, f"tensor {i}: requires_grad changed"
        if grad is None:
            assert t.grad is None, f"tensor {i}: .grad set to {t.grad}"
        else:
            assert t.grad is not None and np.array_equal(t.grad, grad), f"tensor {i}: .grad"


def test_failed_binary_op_leaves_inputs_alone():
    a, b = T(2, 3), T(4, 5)
    a.grad = np.ones((2, 3))
    before = _snapshot_tensors([a, b])
    for op in (lambda: a + b, lambda: a * b, lambda: a @ b, lambda: mg.cat([a, b], 0)):
        with pytest.raises(RuntimeError):
            op()
    _assert_unchanged([a, b], before)


def test_failed_inplace_ops_leave_data_alone():
    t = T(2, 3, requires_grad=False)
    before = _snapshot_tensors([t])
    with pytest.raises(RuntimeError, match=r"add_.*\(4, 5\)"):
        t.add_(np.ones((4, 5)))
    with pytest.raises(RuntimeError, match=r"copy_.*\(4, 5\)"):
        t.copy_(np.ones((4, 5)))
    with pytest.raises(RuntimeError, match="mul_"):
        t.mul_("a")
    _assert_unchanged([t], before)


def test_failed_forward_in_sequential_changes_nothing():
    model = nn.Sequential(lin(3, 4), nn.ReLU(), lin(5, 2))
    x = T(2, 3)
    params = list(model.parameters())
    for p in params:
        p.grad = np.ones(p.shape)
    before = _snapshot_tensors([*params, x])
    with pytest.raises(RuntimeError, match=r"linear.*in_features=5.*\(2, 4\)"):
        model(x)
    _assert_unchanged([*params, x], before)


def test_bad_hook_return_leaves_grads_alone():
    x, y = T(3), T(3)
    x.grad = np.full(3, 5.0)
    before = _snapshot_tensors([x, y])
    z = x * 2
    z.register_hook(lambda g: np.ones(4))
    out = x.sum() + z.sum() + (y * 3).sum()
    with pytest.raises(RuntimeError, match=r"hook.*\(4,\).*\(3,\)"):
        out.backward()
    _assert_unchanged([x, y], before)


def test_bad_custom_function_gradient_leaves_grads_alone():
    class Bad(mg.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            return np.ones(7)

    x, y = T(3), T(3)
    x.grad = np.full(3, 5.0)
    before = _snapshot_tensors([x, y])
    out = x.sum() * 1.0 + Bad.apply(y * 1.0).sum()
    with pytest.raises(RuntimeError, match=r"BadBackward.*\(7,\).*\(3,\)"):
        out.backward()
    _assert_unchanged([x, y], before)


def test_failed_module_load_state_dict_changes_nothing():
    model = lin()
    before = _snapshot_tensors(list(model.parameters()))
    bad = {"weight": np.zeros((4, 3)), "bias": np.zeros(5)}
    with pytest.raises(RuntimeError, match=r"bias.*\(5,\).*\(4,\)"):
        model.load_state_dict(bad)
    with pytest.raises((RuntimeError, TypeError, ValueError)):
        model.load_state_dict({"weight": np.zeros((4, 3)), "bias": ["a"] * 4})
    with pytest.raises(RuntimeError, match="unexpected key"):
        model.load_state_dict({"weight": np.zeros((4, 3)), "bias": np.zeros(4), "x": 1.0})
    _assert_unchanged(list(model.parameters()), before)


def test_assigning_a_grad_of_the_wrong_shape_raises():
    """PyTorch: 'attempting to assign a gradient of size [4] to a tensor of size [3]'."""
    p = T(3)
    with pytest.raises(RuntimeError, match=r"grad.*4.*3"):
        p.grad = np.ones(4)
    assert p.grad is None


def _optimizers():
    return [
        ("SGD", lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9)),
        ("Adam", lambda ps: optim.Adam(ps, lr=0.1)),
        ("AdamW", lambda ps: optim.AdamW(ps, lr=0.1)),
        ("RMSprop", lambda ps: optim.RMSprop(ps, lr=0.1)),
    ]


@pytest.mark.parametrize(("make",), [pytest.param(m, id=n) for n, m in _optimizers()])
def test_failed_optimizer_step_changes_nothing(make):
    """One parameter's .grad has the wrong shape: step must raise before updating any."""
    p1, p2 = T(3, value=1.0), T(3, value=1.0)
    opt = make([p1, p2])
    p1.grad = np.ones(3)
    p2.grad = np.ones(3)
    opt.step()  # give the optimizer some state
    state_before = copy.deepcopy(opt.state_dict())
    p1.grad = np.ones(3)
    try:
        p2.grad = np.ones(4)  # minigrad does not check this assignment (see the test above)
    except RuntimeError:
        return  # rejected up front: nothing can go wrong later
    before = _snapshot_tensors([p1, p2])
    with pytest.raises(Exception) as info:
        opt.step()
    _assert_unchanged([p1, p2], before)  # no partial update of p1 (or of p2 before failing)
    _assert_state_equal(opt.state_dict(), state_before)
    exc = info.value
    assert isinstance(exc, RuntimeError), f"{type(exc).__name__}: {exc}"
    assert "(4,)" in str(exc) and "(3,)" in str(exc), str(exc)


def _assert_state_equal(a, b):
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for i, entry in a["state"].items():
        assert entry.keys() == b["state"][i].keys()
        for key, value in entry.items():
            assert np.array_equal(value, b["state"][i][key]), f"state {i}.{key} changed"


def test_failed_optimizer_load_state_dict_changes_nothing():
    p1, p2 = T(3), T(3)
    opt = optim.Adam([p1, p2], lr=0.1)
    p1.grad, p2.grad = np.ones(3), np.ones(3)
    opt.step()
    before = copy.deepcopy(opt.state_dict())
    bad = copy.deepcopy(before)
    bad["state"][0]["exp_avg"] = np.full(3, 7.0)  # valid, would be loaded first
    bad["state"][1]["exp_avg"] = np.ones(4)  # then this fails
    bad["param_groups"][0]["lr"] = 99.0
    with pytest.raises(ValueError, match=r"exp_avg.*\(4,\).*\(3,\)"):
        opt.load_state_dict(bad)
    with pytest.raises(ValueError, match="parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})
    _assert_state_equal(opt.state_dict(), before)


def test_failed_clip_grad_norm_changes_nothing():
    p = _with_grad(T(3))
    before = _snapshot_tensors([p])
    for bad in ("a", None):
        with pytest.raises((TypeError, ValueError)):
            nn.utils.clip_grad_norm_([p], bad)
    _assert_unchanged([p], before)


def test_failed_module_to_changes_nothing():
    model = lin()
    with pytest.raises(TypeError):
        model.to(mg.int64)
    with pytest.raises(TypeError):
        model.to("foo")
    assert all(p.dtype == np.float64 for p in model.parameters())


def test_per_sample_unsupported_layer_changes_nothing():
    linear, norm = lin(3, 2), nn.LayerNorm(2).double()
    params = [*linear.parameters(), *norm.parameters()]
    for p in params:
        p.grad = np.ones(p.shape)
    before = _snapshot_tensors(params)
    with mg.per_sample_grads():
        out = norm(linear(T(4, 3)))
        with pytest.raises(RuntimeError, match="LayerNorm"):
            out.sum().backward()
    _assert_unchanged(params, before)
    assert getattr(linear.weight, "grad_sample", None) is None


def test_per_sample_batch_mismatch_changes_nothing():
    linear = lin(3, 2)
    params = list(linear.parameters())
    for p in params:
        p.grad = np.ones(p.shape)
    before = _snapshot_tensors(params)
    with mg.per_sample_grads():
        out = linear(T(4, 3)).sum() + linear(T(5, 3)).sum()
        with pytest.raises(RuntimeError, match=r"per_sample_grads.*\(2, 3\).*batch"):
            out.backward()
    _assert_unchanged(params, before)
    assert getattr(linear.weight, "grad_sample", None) is None


def test_failed_requires_grad_on_int_tensor_changes_nothing():
    t = idx(1, 2)
    with pytest.raises(RuntimeError, match="only floating point"):
        t.requires_grad_()
    assert t.requires_grad is False


def test_embedding_out_of_range_changes_nothing():
    emb = nn.Embedding(5, 2)
    emb.weight.grad = np.ones((5, 2), dtype=emb.weight.dtype)
    before = _snapshot_tensors([emb.weight])
    with pytest.raises(IndexError, match="embedding"):
        emb(idx(0, 9))
    _assert_unchanged([emb.weight], before)
