"""Functional forms of the layers and losses: ``F.linear``, ``F.relu``, ``F.cross_entropy`` ...

``LinearFunction`` is minigrad's signature op: the dense layer's backward written out as the
outer products it is made of.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad import ops
from minigrad._shapes import check_broadcast, is_number
from minigrad.autograd import Context, Function
from minigrad.functions import default_generator
from minigrad.tensor import Tensor, as_array


class LinearFunction(Function):
    """y = x W^T + b, with its backward written as outer products.

    Shapes: x (..., in), W (out, in), b (out,), y (..., out). Write delta = dL/dy.

    For one sample (x of shape (in,)), y_i = sum_j W_ij x_j + b_i, so dL/dW_ij = delta_i x_j:
    the weight gradient is the rank-1 outer product ``dW = delta x^T`` (``np.outer(delta, x)``).
    A batch X (B, in) with deltas D (B, out) sums those rank-1 matrices:
    ``dW = sum_b delta_b x_b^T = D^T X``. Leading dims beyond one are flattened into the batch.
    Also ``db = sum_b delta_b`` and ``dx = delta W`` (each sample's delta sent back through W).
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, weight: np.ndarray, bias: Any = None) -> np.ndarray:
        if weight.ndim != 2:
            raise RuntimeError(
                f"linear: weight must be 2-D (out_features, in_features), got shape "
                f"{weight.shape} (input of shape {x.shape})"
            )
        if bias is not None and bias.shape != weight.shape[:1]:
            raise RuntimeError(
                f"linear: bias must have shape ({weight.shape[0]},) (out_features), got shape "
                f"{np.shape(bias)}"
            )
        if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
            raise RuntimeError(
                f"linear: the input's last dim must be in_features={weight.shape[1]}, but the "
                f"input has shape {x.shape} (weight {weight.shape}: (out_features, in_features))"
            )
        ctx.save_for_backward(x, weight)
        out = x @ weight.T  # (..., in) @ (in, out) -> (..., out)
        if bias is not None:
            out += bias  # (..., out) + (out,): `out` is ours, so adding in place is safe
        return out

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        x, weight = ctx.saved_tensors
        delta = grad_output  # (..., out): dL/dy
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = delta @ weight  # (..., out) @ (out, in) -> (..., in)
        if x.ndim == 1:  # one sample: the weight gradient is one outer product
            grad_weight = np.outer(delta, x)  # (out,) x (in,) -> (out, in): delta x^T
            grad_bias = delta  # (out,)
        else:
            X, D = x, delta  # (B, in) and (B, out)
            if x.ndim > 2:  # leading dims flattened into the batch
                X = x.reshape(-1, x.shape[-1])  # (B, in)
                D = delta.reshape(-1, delta.shape[-1])  # (B, out)
            grad_weight = D.T @ X  # (out, B) @ (B, in) -> (out, in): sum_b outer(delta_b, x_b)
            grad_bias = D.sum(axis=0)  # (out,): sum_b delta_b
        if not ctx.needs_input_grad[2]:
            grad_bias = None
        return grad_input, grad_weight, grad_bias

    @staticmethod
    def grad_sample(ctx: Context, grad_output: np.ndarray, *, norms_only: bool) -> tuple[Any, ...]:
        """Per-sample gradients (used inside ``mg.per_sample_grads()``), batch = first dim.

        For a 2-D input, sample b's weight gradient is the rank-1 matrix ``delta_b x_b^T``;
        the batch gradient ``delta^T X`` is their sum. With middle dims (B, T, in), sample b's
        is ``sum_t delta_bt x_bt^T``. With ``norms_only`` returns each sample's Frobenius
        norm instead, without forming the matrices: ``||delta_b x_b^T|| = ||delta_b|| ||x_b||``
        (with middle dims, ``sqrt(sum_ts (delta_bt . delta_bs)(x_bt . x_bs))``).
        """
        x, _ = ctx.saved_tensors
        if x.ndim == 1:  # one unbatched sample: a batch of one
            x, grad_output = x[None], grad_output[None]
        X = x.reshape(x.shape[0], -1, x.shape[-1])  # (B, T, in), middle dims flattened
        D = grad_output.reshape(X.shape[0], -1, grad_output.shape[-1])  # (B, T, out)
        grad_bias = D.sum(axis=1) if ctx.needs_input_grad[2] else None  # (B, out)
        if norms_only:
            if X.shape[1] == 1:
                weight_norms = np.linalg.norm(D[:, 0], axis=1) * np.linalg.norm(X[:, 0], axis=1)
            else:
                gram_d = D @ D.transpose(0, 2, 1)  # (B, T, T): delta_bt . delta_bs
                gram_x = X @ X.transpose(0, 2, 1)  # (B, T, T): x_bt . x_bs
                weight_norms = np.sqrt(np.maximum((gram_d * gram_x).sum(axis=(1, 2)), 0))
            bias_norms = None if grad_bias is None else np.linalg.norm(grad_bias, axis=1)
            return None, weight_norms, bias_norms  # (B,) each
        if X.shape[1] == 1:
            grad_weight = D[:, 0, :, None] * X[:, 0, None, :]  # (B, out, 1) * (B, 1, in): outer
        else:
            grad_weight = np.einsum("bto,bti->boi", D, X)  # (B, out, in): sum_t outer products
        return None, grad_weight, grad_bias


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = input W^T + b (see :class:`LinearFunction` for the outer-product backward)."""
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(
            f"linear: input and weight must be Tensors, got {type(input).__name__} and "
            f"{type(weight).__name__}"
        )
    return LinearFunction.apply(input, weight, bias)


# ============================================================================= activations


def relu(input: Tensor) -> Tensor:
    """max(x, 0) elementwise; the gradient at 0 is 0, as in PyTorch."""
    return ops.Relu.apply(input)


def tanh(input: Tensor) -> Tensor:
    """tanh x elementwise; d/dx = 1 - tanh^2 x."""
    return ops.Tanh.apply(input)


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + e^-x), computed without overflow for large |x|."""
    return ops.Sigmoid.apply(input)


def softmax(input: Tensor, dim: int) -> Tensor:
    """e^x / sum(e^x) over ``dim`` (shifted by the max first, so large logits are safe)."""
    return ops.Softmax.apply(input, dim=dim)


def log_softmax(input: Tensor, dim: int) -> Tensor:
    """x - logsumexp(x) over ``dim``: finite for logits as large as 1e4."""
    return ops.LogSoftmax.apply(input, dim=dim)


class LeakyReluFunction(Function):
    """out = x where x > 0, else negative_slope * x; d/dx = 1 or negative_slope.

    At x = 0 the gradient is negative_slope (PyTorch takes the ``x > 0`` branch strictly).
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, negative_slope: float) -> np.ndarray:
        positive = x > 0
        ctx.save_for_backward(positive)
        ctx.negative_slope = negative_slope
        return np.where(positive, x, x * negative_slope)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        (positive,) = ctx.saved_tensors
        return np.where(positive, grad_output, grad_output * ctx.negative_slope)


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, ``negative_slope * x`` otherwise."""
    if not is_number(negative_slope):
        raise TypeError(f"leaky_relu: negative_slope must be a number, got {negative_slope!r}")
    # float(): a numpy float64 slope would make numpy promote a float32 result to float64.
    return LeakyReluFunction.apply(input, negative_slope=float(negative_slope))


# Cody's rational approximations of erf/erfc (W. J. Cody, "Rational Chebyshev approximations
# for the error function", Math. Comp. 23 (1969) 631-637; the coefficients of his SPECFUN
# routine CALERF). numpy has no erf, and a Python loop over math.erf is slow for real
# tensors. Evaluated in float64 these agree with the C library's erfc to a few ulps (the
# tests check a relative error below 2e-15 on [-30, 30]). Listed highest power first.
_ERF_A = (1.85777706184603153e-1, 3.16112374387056560e00, 1.13864154151050156e02,
          3.77485237685302021e02, 3.20937758913846947e03)  # fmt: skip
_ERF_B = (1.0, 2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)  # fmt: skip
_ERFC_C = (2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e00,
           6.61191906371416295e01, 2.98635138197400131e02, 8.81952221241769090e02,
           1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03)  # fmt: skip
_ERFC_D = (1.0, 1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
           1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
           3.43936767414372164e03, 1.23033935480374942e03)  # fmt: skip
_ERFC_P = (1.63153871373020978e-2, 3.05326634961232344e-1, 3.60344899949804439e-1,
           1.25781726111229246e-1, 1.60837851487422766e-2, 6.58749161529837803e-4)  # fmt: skip
_ERFC_Q = (1.0, 2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
           6.05183413124413191e-2, 2.33520497626869185e-3)  # fmt: skip
_INV_SQRT_PI = 5.6418958354775628695e-1


def _polyval(coefficients: tuple[float, ...], t: np.ndarray) -> np.ndarray:
    """Horner's rule, highest power first."""
    result = np.full_like(t, coefficients[0])
    for c in coefficients[1:]:
        result = result * t + c
    return result


def _exp_minus_square(y: np.ndarray) -> np.ndarray:
    """e^(-y^2), with y^2 split as ys^2 + (y - ys)(y + ys) (ys = y rounded down to 1/16) so
    that the rounding error of y*y is not magnified by the exponential (Cody's trick)."""
    ys = np.trunc(y * 16) / 16
    return np.exp(-ys * ys) * np.exp(-(y - ys) * (y + ys))


def _erfc(x: np.ndarray) -> np.ndarray:
    """The complementary error function 1 - erf(x), elementwise, in float64.

    Three ranges of |x|: up to 0.46875 erf(x) = x P(x^2) / Q(x^2); up to 4
    erfc(|x|) = e^(-x^2) P(|x|) / Q(|x|); beyond, an asymptotic rational form in 1/x^2.
    Negative x use erfc(x) = 2 - erfc(-x). Accurate to a few ulps (relative) everywhere,
    including the far tail where 1 - erf(x) would cancel to 0.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.abs(x)
    out = np.full_like(y, np.nan)  # nan stays nan: it falls in none of the ranges below
    small = y <= 0.46875
    middle = (y > 0.46875) & (y <= 4.0)
    large = y > 4.0

    xs = x[small]
    z = xs * xs
    out[small] = 1.0 - xs * _polyval(_ERF_A, z) / _polyval(_ERF_B, z)

    ym = y[middle]
    erfc_middle = _exp_minus_square(ym) * _polyval(_ERFC_C, ym) / _polyval(_ERFC_D, ym)
    out[middle] = np.where(x[middle] < 0, 2.0 - erfc_middle, erfc_middle)

    yl = np.minimum(y[large], 30.0)  # erfc(30) < 1e-392 is 0 in float64, as is erfc(inf)
    z = 1.0 / (yl * yl)
    tail = z * _polyval(_ERFC_P, z) / _polyval(_ERFC_Q, z)
    erfc_large = _exp_minus_square(yl) * (_INV_SQRT_PI - tail) / yl
    out[large] = np.where(x[large] < 0, 2.0 - erfc_large, erfc_large)
    return out


_SQRT_HALF = 0.7071067811865476  # 1/sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327  # 1/sqrt(2 pi)
_SQRT_2_OVER_PI = 0.7978845608028654  # sqrt(2/pi)
_GELU_KAPPA = 0.044715


class GeluFunction(Function):
    """out = x Phi(x), with Phi the standard normal CDF; or PyTorch's tanh approximation.

    approximate="none": Phi(x) = erfc(-x / sqrt 2) / 2, and d/dx = Phi(x) + x phi(x), where
    phi(x) = e^(-x^2/2) / sqrt(2 pi). erfc is Cody's rational approximation (see ``_erfc``),
    computed in float64: it matches ``torch.nn.functional.gelu`` to about 1e-15 relative.
    approximate="tanh": out = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), and
    d/dx = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2).
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, approximate: str) -> np.ndarray:
        x64 = x.astype(np.float64, copy=False)  # the erf approximation is a float64 formula
        if approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (x64 + _GELU_KAPPA * x64**3)
            tanh_inner = np.tanh(inner)
            out = 0.5 * x64 * (1 + tanh_inner)
            ctx.save_for_backward(x64, tanh_inner)
        else:
            cdf = 0.5 * _erfc(-x64 * _SQRT_HALF)
            out = x64 * cdf
            ctx.save_for_backward(x64, cdf)
        ctx.approximate = approximate
        return out.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        x, saved = ctx.saved_tensors
        if ctx.approximate == "tanh":
            tanh_inner = saved
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * _GELU_KAPPA * x * x)
            derivative = 0.5 * (1 + tanh_inner) + 0.5 * x * (1 - tanh_inner**2) * d_inner
        else:
            cdf = saved
            pdf = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
            derivative = cdf + x * pdf
        return grad_output * derivative.astype(grad_output.dtype, copy=False)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x) (``approximate="none"``, exact) or its tanh approximation (``"tanh"``)."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError(
            f"gelu: approximate argument must be either 'none' or 'tanh', got {approximate!r}"
        )
    return GeluFunction.apply(input, approximate=approximate)


class DropoutFunction(Function):
    """out = x * mask / (1 - p), mask drawn once in forward; d/dx = mask / (1 - p).

    ``multiplier`` (x's shape) holds 0 for dropped entries and 1/(1-p) for kept ones.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, multiplier: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(multiplier)
        return x * multiplier

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        (multiplier,) = ctx.saved_tensors
        return grad_output * multiplier


def dropout(
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by 1/(1-p).

    The mask comes from ``generator`` (a ``numpy.random.Generator``), else from minigrad's
    default generator (seeded by ``mg.manual_seed``). When not ``training``, or ``p == 0``,
    ``input`` itself is returned; ``p == 1`` gives zeros. The expected value of every
    element is unchanged, so nothing needs rescaling at evaluation time.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    rng = generator if generator is not None else default_generator()
    keep = rng.random(input.shape) >= p  # (input.shape): True with probability 1 - p
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    multiplier = keep.astype(input.dtype) * input.dtype.type(scale)
    return DropoutFunction.apply(input, multiplier=multiplier)


# ============================================================================= normalisation


class LayerNormFunction(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last k dims of x.

    Shapes: x (*, *normalized_shape), weight and bias (normalized_shape) or None, y like x.
    mean and the biased var (divided by D, the number of normalised elements) are taken per
    leading index. With x_hat = (x - mean) * rstd, rstd = 1/sqrt(var + eps), g = dL/dy and
    g_hat = g * weight (g if no weight):

        dL/dx = rstd * (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat))
        dL/dweight = sum over the leading dims of g * x_hat,  dL/dbias = that sum of g

    (the means are over the normalised dims: the standard formula, from differentiating
    through mean and var). The weight and bias gradients are returned in x's shape; the
    engine sums them over the leading dims.
    """

    @staticmethod
    def forward(
        ctx: Context,
        x: np.ndarray,
        weight: np.ndarray | None,
        bias: np.ndarray | None,
        *,
        axes: tuple[int, ...],
        eps: float,
    ) -> np.ndarray:
        mean = x.mean(axis=axes, keepdims=True)  # (*, 1, ..., 1)
        centered = x - mean  # (*, *normalized_shape)
        var = (centered * centered).mean(axis=axes, keepdims=True)  # (*, 1, ..., 1), biased
        rstd = 1.0 / np.sqrt(var + eps)  # (*, 1, ..., 1)
        x_hat = centered * rstd  # (*, *normalized_shape)
        out = x_hat if weight is None else x_hat * weight
        if bias is not None:
            out = out + bias
        ctx.save_for_backward(x_hat, rstd, weight)
        ctx.axes = axes
        return out

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        x_hat, rstd, weight = ctx.saved_tensors
        g = grad_output  # (*, *normalized_shape)
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            g_hat = g if weight is None else g * weight  # (*, *normalized_shape)
            mean_g = g_hat.mean(axis=ctx.axes, keepdims=True)  # (*, 1, ..., 1)
            mean_gx = (g_hat * x_hat).mean(axis=ctx.axes, keepdims=True)  # (*, 1, ..., 1)
            grad_input = rstd * (g_hat - mean_g - x_hat * mean_gx)  # (*, *normalized_shape)
        if ctx.needs_input_grad[1]:
            grad_weight = g * x_hat  # (*, *normalized_shape); the engine sums the * dims
        if ctx.needs_input_grad[2]:
            grad_bias = g  # (*, *normalized_shape); the engine sums the * dims
        return grad_input, grad_weight, grad_bias


def layer_norm(
    input: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` dims, then scale and shift.

    Shapes: input (*, *normalized_shape); weight, bias (normalized_shape). Uses the biased
    variance, as PyTorch. See :class:`LayerNormFunction` for the backward.
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or input.shape[input.ndim - k :] != shape or input.ndim < k:
        raise RuntimeError(
            f"layer_norm: given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(map(str, shape))}], but got input of size {list(input.shape)}"
        )
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and param.shape != shape:
            raise RuntimeError(
                f"layer_norm: expected {name} of shape {list(shape)} (normalized_shape), "
                f"got {list(param.shape)}"
            )
    axes = tuple(range(input.ndim - k, input.ndim))
    # float(): a numpy float64 eps would make numpy promote a float32 result to float64.
    return LayerNormFunction.apply(input, weight, bias, axes=axes, eps=float(eps))


# ============================================================================= embedding


class EmbeddingFunction(Function):
    """out = weight[indices]: row ``indices[...]`` of the table for every index.

    Shapes: weight (num_embeddings, embedding_dim), indices (*) integers, out
    (*, embedding_dim). The gradient of the table is the rows of ``grad_output`` scattered
    back to the rows they came from; an index used twice receives the sum of both rows, so
    the scatter is ``np.add.at`` (``grad[indices] = g`` would keep only the last). The row
    ``padding_idx`` gets no gradient.

    The indices are kept on ``ctx.indices`` (not a saved tensor: they never change and need
    no gradient); ``grad_sample`` uses them to split the gradient by sample.
    """

    @staticmethod
    def forward(
        ctx: Context, weight: np.ndarray, *, indices: np.ndarray, padding_idx: int | None
    ) -> np.ndarray:
        ctx.indices, ctx.padding_idx, ctx.weight_shape = indices, padding_idx, weight.shape
        return weight[indices]  # (*) -> (*, embedding_dim)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        grad_weight = np.zeros(ctx.weight_shape, dtype=grad_output.dtype)  # (num, dim)
        np.add.at(grad_weight, ctx.indices, grad_output)  # adds row g[i] into row indices[i]
        if ctx.padding_idx is not None:
            grad_weight[ctx.padding_idx] = 0
        return grad_weight

    @staticmethod
    def grad_sample(ctx: Context, grad_output: np.ndarray, *, norms_only: bool) -> tuple[Any, ...]:
        """Per-sample table gradients (batch = first dim of the indices): (B, num, dim).

        Sample b's gradient scatters only its own rows. ``norms_only`` returns their norms
        (B,), computed from the same per-sample matrices.
        """
        indices = ctx.indices if ctx.indices.ndim > 0 else ctx.indices[None]
        grads = grad_output.reshape(indices.shape + (-1,))  # (B, *, dim)
        batch = indices.shape[0]
        grad_weight = np.zeros((batch, *ctx.weight_shape), dtype=grad_output.dtype)
        rows = indices.reshape(batch, -1)  # (B, T)
        samples = np.repeat(np.arange(batch), rows.shape[1])  # (B*T,) which sample each row is
        np.add.at(grad_weight, (samples, rows.ravel()), grads.reshape(-1, grads.shape[-1]))
        if ctx.padding_idx is not None:
            grad_weight[:, ctx.padding_idx] = 0
        if norms_only:
            return (np.linalg.norm(grad_weight.reshape(batch, -1), axis=1),)
        return (grad_weight,)


def embedding(input: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Look up rows of ``weight`` (num_embeddings, embedding_dim) by integer ``input`` (*).

    Returns (*, embedding_dim). ``padding_idx`` (negative counts from the end) marks a row
    whose gradient is always zero. An index outside [0, num_embeddings) raises IndexError.
    """
    indices = np.asarray(input.data if isinstance(input, Tensor) else input)
    if indices.dtype.kind not in "iu":
        raise RuntimeError(
            f"embedding: expected integer indices, but got dtype {indices.dtype} "
            "(convert them with .long())"
        )
    if weight.ndim != 2:
        raise RuntimeError(
            f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape "
            f"{weight.shape}"
        )
    num_embeddings = weight.shape[0]
    bad = (indices < 0) | (indices >= num_embeddings)
    if bad.any():
        raise IndexError(
            f"embedding: index {int(indices[bad].flat[0])} is out of range for "
            f"num_embeddings={num_embeddings} (valid indices are 0 to {num_embeddings - 1})"
        )
    if padding_idx is not None:
        if not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(
                f"embedding: padding_idx={padding_idx} must be within num_embeddings="
                f"{num_embeddings}"
            )
        padding_idx %= num_embeddings
    return EmbeddingFunction.apply(weight, indices=indices, padding_idx=padding_idx)


# ============================================================================= losses

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"{op}: {reduction!r} is not a valid value for reduction (use 'mean', 'sum' or 'none')"
        )


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _as_tensor(value: Any) -> Tensor:
    return value if isinstance(value, Tensor) else Tensor(as_array(value))


def _as_array(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    return np.asarray(value.data if isinstance(value, Tensor) else value)


def _check_same_shape_or_warn(op: str, input: Tensor, target: Tensor) -> None:
    """As PyTorch: a broadcastable target of another shape warns, an incompatible one raises."""
    if input.shape == target.shape:
        return
    try:
        np.broadcast_shapes(input.shape, target.shape)
    except ValueError:
        raise RuntimeError(
            f"{op}: the target's shape {target.shape} does not match the input's shape "
            f"{input.shape}, and the two cannot be broadcast together"
        ) from None
    warnings.warn(
        f"{op}: using a target size {target.shape} that is different to the input size "
        f"{input.shape}. This will likely lead to incorrect results due to broadcasting. "
        "Please ensure they have the same size.",
        UserWarning,
        stacklevel=3,
    )


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """(input - target)^2, reduced. Differentiable in both input and target."""
    _check_reduction("mse_loss", reduction)
    target = _as_tensor(target)
    _check_same_shape_or_warn("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction)


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """|input - target|, reduced. The gradient at input == target is 0, as in PyTorch."""
    _check_reduction("l1_loss", reduction)
    target = _as_tensor(target)
    _check_same_shape_or_warn("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction)


class NLLLossFunction(Function):
    """loss[n] = -target_weight[n] * input[n, target[n]]: one entry per target.

    Shapes: input (N, C, d1, ...) log-probabilities (or (C,) for one sample), target and
    target_weight (N, d1, ...) (or 0-d), loss like target. ``target_weight`` is the class
    weight of each target, 0 where the target is ignored (those targets may hold any value,
    such as -100, and are replaced by class 0 before indexing).

    The gradient is -target_weight[n] * g[n] at [n, target[n]] and 0 at every other class.
    """

    @staticmethod
    def forward(
        ctx: Context, x: np.ndarray, *, target: np.ndarray, target_weight: np.ndarray
    ) -> np.ndarray:
        class_axis = 0 if x.ndim == 1 else 1
        log_probs = np.moveaxis(x, class_axis, -1)  # (N, d1, ..., C)
        picked = np.take_along_axis(log_probs, target[..., None], axis=-1)[..., 0]  # (N, d1..)
        ctx.save_for_backward(target, target_weight)
        ctx.class_axis, ctx.shape = class_axis, x.shape
        with np.errstate(invalid="ignore"):  # 0 * -inf at an ignored target: masked below
            return np.where(target_weight != 0, -target_weight * picked, 0).astype(x.dtype)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        target, target_weight = ctx.saved_tensors
        moved_shape = np.moveaxis(np.empty(ctx.shape, dtype=np.bool_), ctx.class_axis, -1).shape
        grad = np.zeros(moved_shape, dtype=grad_output.dtype)  # (N, d1, ..., C)
        values = -target_weight * grad_output  # (N, d1, ...)
        np.put_along_axis(grad, target[..., None], values[..., None], axis=-1)
        return np.moveaxis(grad, -1, ctx.class_axis)  # (N, C, d1, ...)


def _class_targets(
    op: str, input: Tensor, target: Any, weight: Any, ignore_index: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Check integer class targets against ``input`` (N, C, d1, ...) or (C,).

    Returns (safe_target, target_weight, ignored, num_classes): ``safe_target`` has ignored
    entries replaced by class 0, ``target_weight`` is each target's class weight (0 where
    ignored) in input's dtype, and ``ignored`` is the mask of ignored targets.
    """
    if input.ndim == 0:
        raise ValueError(f"{op}: expected an input of shape (C,), (N, C) or (N, C, d1, ...)")
    t = _as_array(target)
    assert t is not None
    if t.dtype.kind not in "iu":
        raise RuntimeError(
            f"{op}: expected integer class indices as target, but got dtype {t.dtype} "
            "(class-probability targets are not supported)"
        )
    if input.ndim == 1:
        expected: tuple[int, ...] = ()
        num_classes = input.shape[0]
    else:
        expected = (input.shape[0], *input.shape[2:])
        num_classes = input.shape[1]
        if t.ndim >= 1 and t.shape[0] != input.shape[0]:
            raise ValueError(
                f"{op}: expected input batch_size ({input.shape[0]}) to match target "
                f"batch_size ({t.shape[0]})"
            )
    if t.shape != expected:
        raise RuntimeError(
            f"{op}: expected a target of shape {expected} for an input of shape "
            f"{input.shape} (class dim {0 if input.ndim == 1 else 1}), got {t.shape}"
        )
    w = _as_array(weight)
    if w is not None and w.shape != (num_classes,):
        raise RuntimeError(
            f"{op}: weight should be defined either for all {num_classes} classes or no "
            f"classes, but got weight of shape {w.shape}"
        )
    ignored = t == ignore_index
    out_of_range = ~ignored & ((t < 0) | (t >= num_classes))
    if out_of_range.any():
        raise IndexError(
            f"{op}: target {int(t[out_of_range].flat[0])} is out of bounds for "
            f"{num_classes} classes (valid classes are 0 to {num_classes - 1}, or "
            f"ignore_index={ignore_index})"
        )
    safe_target = np.where(ignored, 0, t).astype(np.intp)
    class_weight = np.ones(num_classes) if w is None else w
    target_weight = np.where(ignored, 0, class_weight[safe_target]).astype(input.dtype)
    return safe_target, target_weight, ignored, num_classes


def _weighted_mean(loss_sum: Tensor, total_weight: float, all_ignored: bool) -> Tensor:
    """loss_sum / total_weight; nan when the total weight is 0 (0 / 0), as PyTorch.

    As in PyTorch, the gradient is then nan at targets that count with weight 0 (-0 / 0), and
    zero when every target is ignored (none has a gradient to divide).
    """
    if total_weight == 0 and all_ignored:
        return loss_sum * 0.0 + float("nan")
    return loss_sum * (1.0 / total_weight if total_weight != 0 else float("nan"))


def nll_loss(
    input: Tensor,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of integer class ``target`` under log-probabilities ``input``.

    Shapes: input (N, C), (C,) or (N, C, d1, ...); target (N,), () or (N, d1, ...) with values
    in [0, C) or ``ignore_index``; weight (C,). Per target: -weight[t] * input[n, t].
    ``"mean"`` divides the sum by the total weight of the targets that are not ignored (nan if
    all are). ``weight`` is a constant: no gradient flows into it (as in PyTorch).
    """
    _check_reduction("nll_loss", reduction)
    safe_target, target_weight, ignored, _ = _class_targets(
        "nll_loss", input, target, weight, ignore_index
    )
    loss = NLLLossFunction.apply(input, target=safe_target, target_weight=target_weight)
    if reduction == "mean":
        return _weighted_mean(loss.sum(), float(target_weight.sum()), bool(ignored.all()))
    return _reduce(loss, reduction)


class CrossEntropyFunction(Function):
    """Cross-entropy of logits x (N, C) with class targets t (N,): one node for the common case.

    loss_n = logsumexp(x_n) - x_n[t_n], reduced by mean (divided by N) or sum. The gradient is
    the classic ``dL/dx_n = softmax(x_n) - onehot(t_n)`` (times the upstream gradient, over N
    for the mean): what log_softmax, nll_loss and the reduction give together, in one backward.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, target: np.ndarray, reduction: str) -> Any:
        shifted = x - x.max(axis=1, keepdims=True)  # (N, C), max 0 per row: exp cannot overflow
        exp = np.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)  # (N, 1)
        rows = np.arange(len(target))
        losses = np.log(sum_exp[:, 0]) - shifted[rows, target]  # (N,): logsumexp - x[t]
        exp /= sum_exp  # (N, C): softmax(x), in place as `exp` is ours
        ctx.save_for_backward(exp)
        ctx.rows, ctx.target = rows, target
        ctx.scale = 1.0 / len(target) if reduction == "mean" else 1.0
        return losses.sum() * ctx.scale  # 0-d

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> np.ndarray:
        (probs,) = ctx.saved_tensors
        g = grad_output * ctx.scale  # 0-d: each sample's share of the upstream gradient
        grad_input = probs * g  # (N, C): softmax part, a new array
        grad_input[ctx.rows, ctx.target] -= g  # minus the one-hot part
        return grad_input


def _fused_cross_entropy_applies(
    input: Tensor, target: Any, weight: Any, ignore_index: int, reduction: str, smoothing: float
) -> bool:
    """Whether ``CrossEntropyFunction`` computes exactly what the general path would.

    It does for 2-D logits, integer targets all in [0, C) (so none is ignored), no class
    weights, no label smoothing and a mean or sum. Anything else, including every input the
    general path rejects, takes the general path, which raises its precise errors.
    """
    if input.ndim != 2 or weight is not None or smoothing != 0.0 or reduction == "none":
        return False
    if not isinstance(target, np.ndarray) or target.dtype.kind not in "iu":
        return False
    num_classes = input.shape[1]
    if target.shape != (input.shape[0],) or target.size == 0 or 0 <= ignore_index < num_classes:
        return False
    if not target.dtype.isnative or num_classes > 1 << (8 * target.itemsize - 1):
        return bool(target.min() >= 0 and target.max() < num_classes)
    # One reduction checks both bounds: viewed as unsigned, a negative target is at least
    # 2^(bits - 1), and so, with no more classes than that (checked above), out of range.
    return bool(target.view(_UNSIGNED[target.itemsize]).max() < num_classes)


_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}  # by itemsize


def cross_entropy(
    input: Tensor,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """nll_loss(log_softmax(input, class dim), target): stable for logits as large as 1e4.

    Shapes as :func:`nll_loss`, with unnormalised logits as ``input`` and the class dim 1 (0
    for a 1-D input). With ``label_smoothing`` e, PyTorch's formula:
    ``(1 - e) * nll + (e / C) * smooth``, where ``smooth = -sum_c weight[c] * log_softmax_c``
    per target (0 for ignored ones), reduced like the nll term ("mean" divides by the same
    total target weight).
    """
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(
            f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}"
        )
    t = target.data if isinstance(target, Tensor) else target
    if _fused_cross_entropy_applies(input, t, weight, ignore_index, reduction, label_smoothing):
        # The training-loop case as one op: a step pays for one node instead of four (log_softmax,
        # nll, sum, scale); tests pin it to the general path below.
        return CrossEntropyFunction.apply(input, target=t, reduction=reduction)
    class_dim = 0 if input.ndim == 1 else 1
    safe_target, target_weight, ignored, num_classes = _class_targets(
        "cross_entropy", input, target, weight, ignore_index
    )
    log_probs = log_softmax(input, dim=class_dim)  # (N, C, d1, ...)
    nll = NLLLossFunction.apply(log_probs, target=safe_target, target_weight=target_weight)
    total_weight, all_ignored = float(target_weight.sum()), bool(ignored.all())
    if label_smoothing == 0.0:
        if reduction == "mean":
            return _weighted_mean(nll.sum(), total_weight, all_ignored)
        return _reduce(nll, reduction)

    w = _as_array(weight)
    if w is not None:
        broadcast_shape = [1] * input.ndim
        broadcast_shape[class_dim] = num_classes
        log_probs = log_probs * w.reshape(broadcast_shape).astype(input.dtype)  # (N, C, ...)
    smooth = -log_probs.sum(dim=class_dim)  # (N, d1, ...)
    smooth = smooth * (~ignored).astype(input.dtype)  # ignored targets contribute nothing
    if reduction == "mean":
        nll_term = _weighted_mean(nll.sum(), total_weight, all_ignored)
        smooth_term = _weighted_mean(smooth.sum(), total_weight, all_ignored)
    else:
        nll_term, smooth_term = _reduce(nll, reduction), _reduce(smooth, reduction)
    return nll_term * (1.0 - label_smoothing) + smooth_term * (label_smoothing / num_classes)


class BinaryCrossEntropyFunction(Function):
    """loss = -weight * (t log(x) + (1 - t) log(1 - x)), each log clamped at -100 (PyTorch).

    Shapes: x (probabilities in [0, 1]) and t alike; weight broadcasts to them. The clamp
    keeps x = 0 or 1 finite. The gradients are PyTorch's: d/dx = weight (x - t) /
    max(x (1 - x), 1e-12), and d/dt = -weight logit(x) = weight (log(1 - x) - log(x)) with
    the logs not clamped, so it is infinite at x = 0 or 1 (as in PyTorch).
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, t: np.ndarray, *, weight: Any) -> np.ndarray:
        with np.errstate(divide="ignore"):  # log(0) = -inf, clamped to -100 next
            log_x = np.maximum(np.log(x), -100)
            log_1mx = np.maximum(np.log1p(-x), -100)
        loss = -(t * log_x + (1 - t) * log_1mx)
        if weight is not None:
            loss = loss * weight
        ctx.save_for_backward(x, t, weight)
        return loss

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        x, t, weight = ctx.saved_tensors
        g = grad_output if weight is None else grad_output * weight
        grad_x = grad_t = None
        if ctx.needs_input_grad[0]:
            grad_x = g * (x - t) / np.maximum(x * (1 - x), 1e-12)
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore"):  # log(0) = -inf: an infinite gradient, as torch
                grad_t = g * (np.log1p(-x) - np.log(x))
        return grad_x, grad_t


def binary_cross_entropy(
    input: Tensor, target: Any, weight: Any = None, reduction: str = "mean"
) -> Tensor:
    """-weight * (t log x + (1 - t) log(1 - x)) for probabilities ``input`` in [0, 1], reduced.

    As PyTorch, each log is clamped at -100, so input 0 or 1 gives a finite loss (at most
    100 per element) and gradient. ``target`` must have the input's shape; ``weight``
    broadcasts to it and gets no gradient.
    """
    _check_reduction("binary_cross_entropy", reduction)
    target = _as_tensor(target)
    if target.shape != input.shape:
        raise ValueError(
            f"binary_cross_entropy: using a target size {target.shape} that is different to "
            f"the input size {input.shape} is not supported; please ensure they have the same "
            "size"
        )
    if ((input.data < 0) | (input.data > 1)).any() or np.isnan(input.data).any():
        raise RuntimeError(
            "binary_cross_entropy: all elements of input should be between 0 and 1 (apply "
            "sigmoid first, or use binary_cross_entropy_with_logits)"
        )
    w = _as_array(weight)
    if w is not None:
        check_broadcast("binary_cross_entropy (weight)", input.data, w)
    loss = BinaryCrossEntropyFunction.apply(input, target, weight=w)
    return _reduce(loss, reduction)


def _log1p_exp_neg_abs(x: np.ndarray) -> np.ndarray:
    """log(1 + e^-|x|), never overflowing."""
    return np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) without overflow: e^-|x| <= 1 whatever x is."""
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


class BinaryCrossEntropyWithLogitsFunction(Function):
    """loss = (1 - t) x + l * softplus(-x), with l = 1 + (pos_weight - 1) t, times weight.

    This is -weight * (pos_weight t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))), written so
    that nothing overflows: softplus(-x) = log(1 + e^-x) = max(-x, 0) + log(1 + e^-|x|).
    Without pos_weight it is the familiar max(x, 0) - x t + log(1 + e^-|x|).

    d/dx = weight ((1 - t) - l sigmoid(-x)) (= weight (sigmoid(x) - t) without pos_weight);
    d/dt = weight (-x + (pos_weight - 1) softplus(-x)).
    Shapes: x and t alike; weight and pos_weight broadcast to them.
    """

    @staticmethod
    def forward(
        ctx: Context, x: np.ndarray, t: np.ndarray, *, weight: Any, pos_weight: Any
    ) -> np.ndarray:
        softplus_neg = np.maximum(-x, 0) + _log1p_exp_neg_abs(x)  # log(1 + e^-x)
        if pos_weight is None:
            loss = (1 - t) * x + softplus_neg
        else:
            loss = (1 - t) * x + (1 + (pos_weight - 1) * t) * softplus_neg
        if weight is not None:
            loss = loss * weight
        ctx.save_for_backward(x, t, softplus_neg, weight, pos_weight)
        return loss

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple[Any, ...]:
        x, t, softplus_neg, weight, pos_weight = ctx.saved_tensors
        g = grad_output if weight is None else grad_output * weight
        grad_x = grad_t = None
        if ctx.needs_input_grad[0]:
            if pos_weight is None:
                grad_x = g * (_sigmoid(x) - t)
            else:
                grad_x = g * ((1 - t) - (1 + (pos_weight - 1) * t) * _sigmoid(-x))
        if ctx.needs_input_grad[1]:
            if pos_weight is None:
                grad_t = g * -x
            else:
                grad_t = g * (-x + (pos_weight - 1) * softplus_neg)
        return grad_x, grad_t


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Any,
    weight: Any = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Tensor:
    """binary_cross_entropy(sigmoid(input), target) computed stably from the logits.

    Finite with exact gradients for logits as large as +-100 and beyond. ``target`` must have
    the input's shape; ``weight`` and ``pos_weight`` (the weight of positive targets, e.g.
    shape (C,) for input (N, C)) broadcast to it and get no gradient. Differentiable in input
    and target.
    """
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    target = _as_tensor(target)
    if target.shape != input.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: target size {target.shape} must be the same "
            f"as input size {input.shape}"
        )
    op = "binary_cross_entropy_with_logits"
    for name, value in (("weight", weight), ("pos_weight", pos_weight)):
        if value is not None:
            check_broadcast(f"{op} ({name})", input.data, _as_array(value))
    loss = BinaryCrossEntropyWithLogitsFunction.apply(
        input, target, weight=_as_array(weight), pos_weight=_as_array(pos_weight)
    )
    return _reduce(loss, reduction)
