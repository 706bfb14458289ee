"""The autograd engine and Tensor semantics against PyTorch (float64), side by side.

Each test runs the same program on minigrad and on torch and compares values, dtypes and
whether an error is raised (and that the message names the same problem).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 4))
B = RNG.standard_normal((3, 4))


def pair(arr: np.ndarray, requires_grad: bool = True) -> tuple[Any, Any]:
    arr = np.asarray(arr, dtype=np.float64)
    return (
        mg.tensor(arr.copy(), requires_grad=requires_grad),
        torch.tensor(arr.copy(), requires_grad=requires_grad),
    )


def arr(g: Any) -> np.ndarray:
    """A copy of a hook's gradient (a torch Tensor or an ndarray) as an ndarray."""
    return g.detach().numpy().copy() if isinstance(g, torch.Tensor) else np.array(g)


def close(m: Any, t: Any) -> None:
    m_arr = np.asarray(m.data if isinstance(m, mg.Tensor) else m)
    t_arr = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    assert m_arr.shape == t_arr.shape, (m_arr.shape, t_arr.shape)
    assert m_arr.dtype == t_arr.dtype, (m_arr.dtype, t_arr.dtype)
    np.testing.assert_allclose(m_arr, t_arr, rtol=1e-12, atol=1e-12)


def outcome(fn: Callable[[], Any]) -> tuple[type[BaseException] | None, str]:
    try:
        fn()
    except Exception as exc:
        return type(exc), str(exc)
    return None, ""


def same_outcome(
    mg_fn: Callable[[], Any], torch_fn: Callable[[], Any], words: tuple[str, ...] = ()
) -> None:
    m_exc, m_msg = outcome(mg_fn)
    t_exc, t_msg = outcome(torch_fn)
    assert (m_exc is None) == (t_exc is None), (
        f"minigrad: {m_exc} {m_msg!r}; torch: {t_exc} {t_msg!r}"
    )
    if t_exc is not None:
        assert m_exc is t_exc or issubclass(m_exc, t_exc), (m_exc, m_msg, t_exc, t_msg)  # type: ignore[arg-type]
        for w in words:
            assert w.lower() in m_msg.lower(), f"{w!r} not in minigrad message {m_msg!r}"
            assert w.lower() in t_msg.lower(), f"{w!r} not in torch message {t_msg!r}"


# ------------------------------------------------------------------------ backward, retain_graph


def test_second_backward_through_saved_tensors_raises() -> None:
    (xm, xt) = pair(A)

    def run(x: Any) -> Callable[[], None]:
        y = (x * x).sum()
        y.backward()
        return lambda: y.backward()

    same_outcome(run(xm), run(xt), words=("second time", "retain_graph"))
    close(xm.grad, xt.grad)  # the failed second backward did not change .grad


def test_second_backward_without_saved_tensors_raises_unlike_torch() -> None:
    # A documented difference (README, "Where minigrad differs"): backward frees the whole
    # graph, so a second backward raises even where no op saved anything. torch refuses a
    # second backward only when it needs a freed saved tensor: (x + 1).sum() saves none.
    xm, xt = pair(A)
    ym, yt = (xm + 1).sum(), (xt + 1).sum()
    ym.backward()
    yt.backward()
    yt.backward()  # torch: fine
    with pytest.raises(RuntimeError, match="second time"):
        ym.backward()
    close(xm.grad, xt.grad / 2)  # the failed second backward did not change .grad


def test_retain_graph_allows_second_backward_and_accumulates() -> None:
    xm, xt = pair(A)
    for x in (xm, xt):
        y = (x * x.exp()).sum()
        y.backward(retain_graph=True)
        y.backward(retain_graph=True)
        y.backward()
    close(xm.grad, xt.grad)
    assert xm.grad.dtype == np.float64
    same_outcome(lambda: (xm * 1).sum().backward(), lambda: (xt * 1).sum().backward())


def test_third_backward_after_retain_then_free_raises() -> None:
    xm, xt = pair(A)

    def run(x: Any) -> Callable[[], None]:
        y = (x.exp() * x).sum()
        y.backward(retain_graph=True)
        y.backward()
        return lambda: y.backward()

    same_outcome(run(xm), run(xt), words=("second time",))


def test_shared_subgraph_freed_by_first_backward() -> None:
    xm, xt = pair(A)

    def run(x: Any) -> Callable[[], None]:
        h = x.exp()  # saves its output
        a = h.sum()
        b = (h * 2.0).sum()
        a.backward()
        return lambda: b.backward()

    same_outcome(run(xm), run(xt), words=("second time",))


def test_gradient_accumulates_across_backward_calls() -> None:
    xm, xt = pair(A)
    wm, wt = pair(B, requires_grad=False)
    for x, w in ((xm, wm), (xt, wt)):
        (x * w).sum().backward()
        (x.tanh() * w).sum().backward()
        (x**2).mean().backward()
    close(xm.grad, xt.grad)


def test_grad_accumulates_in_place_into_existing_array() -> None:
    xm, xt = pair(A)
    (xm * 2.0).sum().backward()
    (xt * 2.0).sum().backward()
    old_m, old_t = xm.grad, xt.grad
    (xm * 3.0).sum().backward()
    (xt * 3.0).sum().backward()
    close(old_m, old_t)  # both updated the existing gradient in place
    close(xm.grad, xt.grad)


def test_leaf_backward_twice_and_gradient_copied() -> None:
    xm, xt = pair(A)
    gm, gt = B.copy(), torch.tensor(B.copy())
    xm.backward(gm)
    xt.backward(gt)
    gm += 1
    gt += 1
    close(xm.grad, xt.grad)  # .grad is not the caller's array
    xm.backward(gm)
    xt.backward(gt)
    close(xm.grad, xt.grad)


# ----------------------------------------------------------------------------- explicit gradient


def test_backward_with_explicit_gradient_values() -> None:
    xm, xt = pair(A)
    g = RNG.standard_normal((3, 4))
    (xm.sigmoid() * xm).backward(mg.tensor(g))
    (xt.sigmoid() * xt).backward(torch.tensor(g))
    close(xm.grad, xt.grad)


@pytest.mark.parametrize("gshape", [(4, 3), (12,), (3, 1), (1, 4), (3, 4, 1), ()])
def test_backward_gradient_shape_mismatch_raises(gshape: tuple[int, ...]) -> None:
    xm, xt = pair(A)
    g = np.ones(gshape)
    same_outcome(
        lambda: (xm * 2.0).backward(mg.tensor(g)),
        lambda: (xt * 2.0).backward(torch.tensor(g)),
        words=("shape",),
    )
    assert xm.grad is None and xt.grad is None


def test_backward_gradient_of_other_float_dtype() -> None:
    xm, xt = pair(A)
    g = np.ones((3, 4), dtype=np.float32)
    (xm * 2.0).backward(mg.tensor(g))
    (xt * 2.0).backward(torch.tensor(g))
    close(xm.grad, xt.grad)


@pytest.mark.parametrize("shape", [(3,), (2, 2), (0,)])
def test_backward_nonscalar_without_gradient_raises(shape: tuple[int, ...]) -> None:
    xm, xt = pair(np.ones(shape))
    same_outcome(lambda: (xm * 2.0).backward(), lambda: (xt * 2.0).backward(), words=("scalar",))


@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
def test_backward_one_element_without_gradient(shape: tuple[int, ...]) -> None:
    xm, xt = pair(np.full(shape, 0.7))
    (xm * xm).backward()
    (xt * xt).backward()
    close(xm.grad, xt.grad)


def test_backward_on_tensor_without_grad_raises() -> None:
    xm, xt = pair(A, requires_grad=False)
    same_outcome(
        lambda: (xm * 2.0).sum().backward(),
        lambda: (xt * 2.0).sum().backward(),
        words=("does not require grad",),
    )


def test_autograd_backward_several_outputs() -> None:
    xm, xt = pair(A)
    gm = RNG.standard_normal((3, 4))
    mg.autograd.backward([(xm * 2.0).sum(), xm.exp()], [None, gm])
    torch.autograd.backward([(xt * 2.0).sum(), xt.exp()], [None, torch.tensor(gm)])
    close(xm.grad, xt.grad)


def test_nonleaf_grad_is_none_and_leaf_without_grad_gets_none() -> None:
    xm, xt = pair(A)
    wm, wt = pair(B, requires_grad=False)
    ym, yt = xm * wm, xt * wt
    ym.sum().backward()
    with pytest.warns(UserWarning):
        t_nonleaf_grad = yt.grad
    yt.sum().backward()
    assert ym.grad is None and t_nonleaf_grad is None
    assert wm.grad is None and wt.grad is None


# ----------------------------------------------------------------------------- hooks


def test_leaf_hooks_order_replacement_and_remove() -> None:
    results = {}
    for lib, (x,) in (("mg", (pair(A)[0],)), ("torch", (pair(A)[1],))):
        seen: list[tuple[str, np.ndarray]] = []

        def h1(g: Any, seen: list = seen) -> Any:
            seen.append(("h1", arr(g)))
            return g * 2

        def h2(g: Any, seen: list = seen) -> Any:
            seen.append(("h2", arr(g)))
            return None

        def h3(g: Any, seen: list = seen) -> Any:
            seen.append(("h3", arr(g)))
            return g + 1

        x.register_hook(h1)
        x.register_hook(h2)
        handle = x.register_hook(h3)
        (x * x).sum().backward()
        handle.remove()
        handle.remove()  # removing twice is harmless
        (x * 3.0).sum().backward()
        results[lib] = (seen, arr(x.grad))
    m_seen, m_grad = results["mg"]
    t_seen, t_grad = results["torch"]
    assert [n for n, _ in m_seen] == [n for n, _ in t_seen]
    for (_, gm), (_, gt) in zip(m_seen, t_seen):
        np.testing.assert_allclose(gm, gt, rtol=1e-12)
    np.testing.assert_allclose(m_grad, t_grad, rtol=1e-12)


def test_leaf_hook_fires_once_with_summed_gradient() -> None:
    calls = {}
    for lib, x in (("mg", pair(A)[0]), ("torch", pair(A)[1])):
        got: list[np.ndarray] = []
        x.register_hook(lambda g, got=got: got.append(arr(g)))
        (x.exp().sum() + (x * 2.0).sum() + x.sum()).backward()
        calls[lib] = got
    assert len(calls["mg"]) == len(calls["torch"]) == 1
    np.testing.assert_allclose(calls["mg"][0], calls["torch"][0], rtol=1e-12)


def test_nonleaf_hooks_replacement_propagates_and_order() -> None:
    results = {}
    for lib in ("mg", "torch"):
        x = pair(A)[0 if lib == "mg" else 1]
        y = x.tanh()
        z = y * y
        order: list[str] = []

        def ha(g: Any, order: list = order) -> Any:
            order.append("a")
            return g * 10

        def hb(g: Any, order: list = order) -> Any:
            order.append("b")
            return g - 1

        y.register_hook(ha)
        hc = y.register_hook(lambda g, order=order: order.append("c"))
        y.register_hook(hb)
        hc.remove()
        z.sum().backward()
        results[lib] = (order, arr(x.grad))
    assert results["mg"][0] == results["torch"][0]
    np.testing.assert_allclose(results["mg"][1], results["torch"][1], rtol=1e-12)


def test_hook_wrong_shape_raises() -> None:
    xm, xt = pair(A)
    ym, yt = xm * 2.0, xt * 2.0
    ym.register_hook(lambda g: np.ones((4, 3)))
    yt.register_hook(lambda g: torch.ones(4, 3, dtype=torch.float64))
    same_outcome(lambda: ym.sum().backward(), lambda: yt.sum().backward())


def test_register_hook_on_tensor_without_grad_raises() -> None:
    xm, xt = pair(A, requires_grad=False)
    same_outcome(
        lambda: xm.register_hook(lambda g: g),
        lambda: xt.register_hook(lambda g: g),
        words=("require",),
    )


def test_hooks_fire_on_every_backward_with_retained_graph() -> None:
    counts = {}
    for lib in ("mg", "torch"):
        x = pair(A)[0 if lib == "mg" else 1]
        y = x.exp()
        n = [0]
        y.register_hook(lambda g, n=n: n.__setitem__(0, n[0] + 1))
        s = y.sum()
        s.backward(retain_graph=True)
        s.backward()
        counts[lib] = n[0]
    assert counts["mg"] == counts["torch"] == 2


# ----------------------------------------------------------------------------- retain_grad


def test_retain_grad_values_and_accumulation() -> None:
    xm, xt = pair(A)
    out = {}
    for lib, x in (("mg", xm), ("torch", xt)):
        y = x.exp()
        y.retain_grad()
        x.retain_grad()  # no-op on a leaf
        z = (y * y).sum()
        z.backward(retain_graph=True)
        first = arr(y.grad)
        z.backward()
        out[lib] = (first, arr(y.grad), y.is_leaf)
    np.testing.assert_allclose(out["mg"][0], out["torch"][0], rtol=1e-12)
    np.testing.assert_allclose(out["mg"][1], out["torch"][1], rtol=1e-12)
    assert out["mg"][2] == out["torch"][2] is False
    close(xm.grad, xt.grad)


def test_retain_grad_sees_hook_replacement_regardless_of_order() -> None:
    out = {}
    for lib in ("mg", "torch"):
        x = pair(A)[0 if lib == "mg" else 1]
        y = x * 3.0
        y.retain_grad()  # registered before the hook
        y.register_hook(lambda g: g * 5)
        (y * y).sum().backward()
        out[lib] = (arr(y.grad), arr(x.grad))
    np.testing.assert_allclose(out["mg"][0], out["torch"][0], rtol=1e-12)
    np.testing.assert_allclose(out["mg"][1], out["torch"][1], rtol=1e-12)


def test_retain_grad_without_requires_grad_raises() -> None:
    xm, xt = pair(A, requires_grad=False)
    same_outcome(lambda: xm.retain_grad(), lambda: xt.retain_grad(), words=("retain_grad",))


# ----------------------------------------------------------------------------- grad mode


def test_no_grad_enable_grad_nesting() -> None:
    for lib, x in (("mg", pair(A)[0]), ("torch", pair(A)[1])):
        ctx = (
            (mg.no_grad, mg.enable_grad, mg.is_grad_enabled)
            if lib == "mg"
            else (torch.no_grad, torch.enable_grad, torch.is_grad_enabled)
        )
        no_grad, enable_grad, is_enabled = ctx
        states = [is_enabled()]
        with no_grad():
            states.append(is_enabled())
            a = x * 2.0
            with enable_grad():
                states.append(is_enabled())
                b = x * 2.0
                with no_grad():
                    states.append(is_enabled())
                    c = x * 2.0
                states.append(is_enabled())
            states.append(is_enabled())
        states.append(is_enabled())
        flags = [(t.requires_grad, t.grad_fn is None, t.is_leaf) for t in (a, b, c)]
        if lib == "mg":
            mg_states, mg_flags = states, flags
        else:
            assert mg_states == states
            assert mg_flags == flags


def test_grad_mode_restored_after_exception() -> None:
    for no_grad, is_enabled in (
        (mg.no_grad, mg.is_grad_enabled),
        (torch.no_grad, torch.is_grad_enabled),
    ):
        with pytest.raises(ValueError):
            with no_grad():
                raise ValueError("boom")
        assert is_enabled()


def test_decorators_with_and_without_parentheses() -> None:
    def make(lib: Any) -> list[bool]:
        @lib.no_grad()
        def f1() -> bool:
            return lib.is_grad_enabled()

        @lib.no_grad
        def f2() -> bool:
            return lib.is_grad_enabled()

        @lib.enable_grad()
        def g1() -> bool:
            return lib.is_grad_enabled()

        @lib.enable_grad
        def g2() -> bool:
            return lib.is_grad_enabled()

        with lib.no_grad():
            inner = [g1(), g2()]
        return [f1(), f2(), *inner, lib.is_grad_enabled()]

    assert make(mg) == make(torch)


def test_no_grad_decorator_recursive_and_result_has_no_graph() -> None:
    out = []
    for lib, x in ((mg, pair(A)[0]), (torch, pair(A)[1])):

        @lib.no_grad()
        def f(t: Any, n: int) -> Any:
            return t * 2.0 if n == 0 else f(t, n - 1) + 1.0

        y = f(x, 3)
        out.append((y.requires_grad, y.grad_fn is None, lib.is_grad_enabled()))
    assert out[0] == out[1]


def test_no_grad_decorator_on_generator() -> None:
    out = []
    for lib, x in ((mg, pair(A)[0]), (torch, pair(A)[1])):

        @lib.no_grad()
        def gen(t: Any) -> Any:
            yield lib.is_grad_enabled(), (t * 2.0).requires_grad
            yield lib.is_grad_enabled(), (t * 3.0).requires_grad

        out.append(list(gen(x)))
    assert out[0] == out[1]


def test_leaf_created_under_no_grad_still_requires_grad() -> None:
    with mg.no_grad():
        xm = mg.tensor(A, requires_grad=True)
    with torch.no_grad():
        xt = torch.tensor(A, requires_grad=True)
    assert (xm.requires_grad, xm.is_leaf) == (xt.requires_grad, xt.is_leaf)


# ----------------------------------------------------------------------------- detach


def test_detach_shares_memory_and_has_no_graph() -> None:
    xm, xt = pair(A)
    ym, yt = xm * 2.0, xt * 2.0
    dm, dt = ym.detach(), yt.detach()
    assert (dm.requires_grad, dm.is_leaf, dm.grad_fn) == (dt.requires_grad, dt.is_leaf, dt.grad_fn)
    dm.add_(1.0)
    dt.add_(1.0)
    close(ym, yt)  # the change is seen through the original
    assert np.shares_memory(dm.numpy(), ym.numpy())


def test_detach_shares_version_counter() -> None:
    xm, xt = pair(A)

    def run(x: Any) -> Callable[[], None]:
        y = x.exp()  # saves its output
        y.detach().mul_(2.0)
        return lambda: y.sum().backward()

    same_outcome(run(xm), run(xt), words=("inplace",))


def test_detached_requires_grad_is_new_leaf() -> None:
    xm, xt = pair(A)
    for x in (xm, xt):
        d = (x * 2.0).detach().requires_grad_()
        (d * d).sum().backward()
        assert d.is_leaf and d.requires_grad
    close(np.zeros(1) if xm.grad is None else xm.grad, np.zeros(1) if xt.grad is None else xt.grad)


# ----------------------------------------------------------------------------- requires_grad_


def test_requires_grad_false_on_nonleaf_raises() -> None:
    xm, xt = pair(A)
    ym, yt = xm * 2.0, xt * 2.0
    same_outcome(
        lambda: ym.requires_grad_(False), lambda: yt.requires_grad_(False), words=("leaf",)
    )


def test_requires_grad_true_on_nonleaf_is_fine() -> None:
    xm, xt = pair(A)
    ym, yt = xm * 2.0, xt * 2.0
    same_outcome(lambda: ym.requires_grad_(True), lambda: yt.requires_grad_(True))
    assert (ym.requires_grad, ym.is_leaf) == (yt.requires_grad, yt.is_leaf)


def test_requires_grad_on_integer_tensor_raises() -> None:
    same_outcome(
        lambda: mg.tensor([1, 2, 3]).requires_grad_(),
        lambda: torch.tensor([1, 2, 3]).requires_grad_(),
        words=("floating point",),
    )


def test_requires_grad_propagation_and_is_leaf() -> None:
    xm, xt = pair(A)
    wm, wt = pair(B, requires_grad=False)
    for (a, b), (c, d) in [((xm, wm), (xt, wt))]:
        for fm, ft in (
            (lambda: a * b, lambda: c * d),
            (lambda: b * b, lambda: d * d),
            (lambda: a, lambda: c),
        ):
            m, t = fm(), ft()
            assert (m.requires_grad, m.is_leaf, m.grad_fn is None) == (
                t.requires_grad,
                t.is_leaf,
                t.grad_fn is None,
            )


# ----------------------------------------------------------------------------- in place


@pytest.mark.parametrize(
    "op", ["add_", "mul_", "sub_", "div_", "zero_", "fill_", "setitem", "copy_"]
)
def test_inplace_on_leaf_requiring_grad_raises(op: str) -> None:
    xm, xt = pair(A)

    def do(x: Any, lib: Any) -> Callable[[], Any]:
        def f() -> Any:
            if op in ("add_", "mul_", "sub_", "div_"):
                return getattr(x, op)(2.0)
            if op == "zero_":
                return x.zero_()
            if op == "fill_":
                return x.fill_(1.0)
            if op == "copy_":
                return x.copy_(lib.tensor(B))
            x[0] = 5.0
            return None

        return f

    same_outcome(do(xm, mg), do(xt, torch), words=("leaf", "in-place"))


def test_inplace_on_leaf_under_no_grad_allowed_and_bumps_version() -> None:
    xm, xt = pair(A)

    def run(x: Any, lib: Any) -> Callable[[], None]:
        y = (x * x).sum()  # saves x
        with lib.no_grad():
            x.add_(1.0)
        return lambda: y.backward()

    same_outcome(run(xm, mg), run(xt, torch), words=("inplace",))
    close(xm, xt)


def test_inplace_on_input_saved_for_backward_raises() -> None:
    xm, xt = pair(A)
    wm, wt = pair(B, requires_grad=False)

    def run(x: Any, w: Any) -> Callable[[], None]:
        y = (x * w).sum()  # saves w
        w.mul_(2.0)
        return lambda: y.backward()

    same_outcome(run(xm, wm), run(xt, wt), words=("inplace",))


def test_inplace_on_view_of_saved_input_raises() -> None:
    xm, xt = pair(A)
    wm, wt = pair(B, requires_grad=False)

    def run(x: Any, w: Any) -> Callable[[], None]:
        y = (x * w).sum()  # saves w
        w[0:2].mul_(2.0)  # a basic-slice view shares w's version counter
        return lambda: y.backward()

    same_outcome(run(xm, wm), run(xt, wt), words=("inplace",))


def test_inplace_on_advanced_index_copy_does_not_invalidate() -> None:
    xm, xt = pair(A)
    wm, wt = pair(B, requires_grad=False)

    def run(x: Any, w: Any) -> Callable[[], None]:
        y = (x * w).sum()
        w[[0, 1]].mul_(2.0)  # a copy: w unchanged, no version bump
        return lambda: y.backward()

    same_outcome(run(xm, wm), run(xt, wt))
    close(xm.grad, xt.grad)


def test_inplace_on_saved_output_under_no_grad_raises() -> None:
    xm, xt = pair(A)

    def run(x: Any, lib: Any) -> Callable[[], None]:
        y = x.exp()  # saves its output y
        with lib.no_grad():
            y.add_(1.0)
        return lambda: y.sum().backward()

    same_outcome(run(xm, mg), run(xt, torch), words=("inplace",))


def test_inplace_on_unsaved_tensor_is_fine() -> None:
    xm, xt = pair(A)
    wm, wt = pair(B, requires_grad=False)

    def run(x: Any, w: Any) -> Callable[[], None]:
        y = (x + w).sum()  # add saves nothing
        w.mul_(2.0)
        return lambda: y.backward()

    same_outcome(run(xm, wm), run(xt, wt))
    close(xm.grad, xt.grad)


def test_inplace_on_nonleaf_requiring_grad_documented_difference() -> None:
    # README: minigrad raises for in-place ops on any tensor that requires grad (grad mode on);
    # torch records them. Pin that documented difference against torch's behaviour.
    xm, xt = pair(A)
    ym, yt = xm * 2.0, xt * 2.0
    assert outcome(lambda: yt.add_(1.0))[0] is None
    assert outcome(lambda: ym.add_(1.0))[0] is RuntimeError


# ---------------------------------------------------------------------- grad_fn, next_functions


def _strip(name: str) -> str:
    """PyTorch's node name without its overload number or C++ namespace."""
    return re.sub(r"\d+$", "", name.rsplit("::", 1)[-1])


NAMED_OPS: dict[str, Callable[[Any, Any, Any], Any]] = {
    "add": lambda L, x, y: x + y,
    "sub": lambda L, x, y: x - y,
    "mul": lambda L, x, y: x * y,
    "div": lambda L, x, y: x / y,
    "neg": lambda L, x, y: -x,
    "pow_scalar": lambda L, x, y: x**2.0,
    "exp": lambda L, x, y: x.exp(),
    "log": lambda L, x, y: x.abs().log(),
    "sqrt": lambda L, x, y: (x * x).sqrt(),
    "abs": lambda L, x, y: x.abs(),
    "tanh": lambda L, x, y: x.tanh(),
    "sigmoid": lambda L, x, y: x.sigmoid(),
    "relu": lambda L, x, y: x.relu(),
    "sum": lambda L, x, y: x.sum(),
    "sum_dim": lambda L, x, y: x.sum(1),
    "mean": lambda L, x, y: x.mean(),
    "matmul_2d": lambda L, x, y: x @ y.T,
    "T": lambda L, x, y: x.T,
    "reshape": lambda L, x, y: x.reshape(4, 3),
    "transpose": lambda L, x, y: x.transpose(0, 1),
    "permute": lambda L, x, y: x.permute(1, 0),
    "expand": lambda L, x, y: x.unsqueeze(0).expand(2, 3, 4),
    "unsqueeze": lambda L, x, y: x.unsqueeze(0),
    "clone": lambda L, x, y: x.clone(),
    "softmax": lambda L, x, y: x.softmax(1),
    "log_softmax": lambda L, x, y: x.log_softmax(1),
    "amax": lambda L, x, y: x.amax(1),
    "var": lambda L, x, y: x.var(),
    "cat": lambda L, x, y: L.cat([x, y]),
    "stack": lambda L, x, y: L.stack([x, y]),
    "maximum": lambda L, x, y: L.maximum(x, y),
    "where": lambda L, x, y: L.where(x > 0, x, y),
    "getitem_slice": lambda L, x, y: x[1:],
    "getitem_int": lambda L, x, y: x[1],
}


# Where minigrad's node is named after its own op class, not after the kernel torch
# dispatches to (README, "Where minigrad differs").
OWN_NAMES = {
    "matmul_2d": "MatMulBackward",  # torch: MmBackward0
    "reshape": "ReshapeBackward",  # torch: ViewBackward0
    "unsqueeze": "ReshapeBackward",  # torch: UnsqueezeBackward0
    "getitem_slice": "GetItemBackward",  # torch: SliceBackward0
    "getitem_int": "GetItemBackward",  # torch: SelectBackward0
}


@pytest.mark.parametrize("op", list(NAMED_OPS))
def test_grad_fn_name_matches_torch_without_number(op: str) -> None:
    xm, xt = pair(A)
    ym, yt = pair(B)
    m = NAMED_OPS[op](mg, xm, ym)
    t = NAMED_OPS[op](torch, xt, yt)
    close(m, t)
    expected = OWN_NAMES.get(op, _strip(t.grad_fn.name()))
    assert m.grad_fn.name() == expected, (m.grad_fn.name(), t.grad_fn.name())


def test_grad_fn_none_for_leaves_and_no_grad_results() -> None:
    xm, xt = pair(A)
    assert xm.grad_fn is None and xt.grad_fn is None
    with mg.no_grad():
        m = xm * 2.0
    with torch.no_grad():
        t = xt * 2.0
    assert (m.grad_fn, m.requires_grad, m.is_leaf) == (t.grad_fn, t.requires_grad, t.is_leaf)


def _walk(fn: Any) -> Any:
    """The graph as nested names: (name, ((child, index), ...))."""
    if fn is None:
        return None
    return (_strip(fn.name()), tuple((_walk(c), i) for c, i in fn.next_functions))


def test_next_functions_structure() -> None:
    xm, xt = pair(A)
    wm, wt = pair(B, requires_grad=False)
    zm = (xm * wm + xm.exp() * 2.0).sum()
    zt = (xt * wt + xt.exp() * 2.0).sum()
    assert _walk(zm.grad_fn) == _walk(zt.grad_fn)


def test_accumulate_grad_node_shared_and_points_to_leaf() -> None:
    xm, xt = pair(A)
    am, bm = xm * 2.0, xm.exp()
    at, bt = xt * 2.0, xt.exp()
    acc_m, acc_t = am.grad_fn.next_functions[0][0], at.grad_fn.next_functions[0][0]
    assert (acc_m is bm.grad_fn.next_functions[0][0]) == (acc_t is bt.grad_fn.next_functions[0][0])
    assert acc_m.variable is xm and acc_t.variable is xt
    assert acc_m.name() == _strip(acc_t.name()) == "AccumulateGrad"
    assert len(acc_m.next_functions) == len(acc_t.next_functions) == 0


def test_next_functions_after_backward_are_freed_unlike_torch() -> None:
    # Documented: backward without retain_graph frees the links between nodes; torch keeps them.
    xm, xt = pair(A)
    zm, zt = (xm * 2.0).sum(), (xt * 2.0).sum()
    before = _walk(zm.grad_fn)
    assert before == _walk(zt.grad_fn)
    zm.backward()
    zt.backward()
    assert _walk(zt.grad_fn) == before
    assert zm.grad_fn.next_functions == ()


# ----------------------------------------------------------------------------- Function


def _functions(extra: tuple[Any, ...], drop: bool, seen: dict) -> tuple[Any, Any]:
    def fwd(ctx: Any, x: Any, w: Any) -> Any:
        ctx.save_for_backward(x)
        return x * x * w

    def make_bwd(lib: str) -> Any:
        def bwd(ctx: Any, g: Any) -> Any:
            seen[lib] = tuple(ctx.needs_input_grad)
            (x,) = ctx.saved_tensors
            return (g * 2 * x,) if drop else (g * 2 * x, None, *extra)

        return staticmethod(bwd)

    m = type("MgSquare", (mg.Function,), {"forward": staticmethod(fwd), "backward": make_bwd("mg")})
    t = type(
        "TSquare",
        (torch.autograd.Function,),
        {"forward": staticmethod(fwd), "backward": make_bwd("torch")},
    )
    return m, t


@pytest.mark.parametrize("case", ["exact", "too_few", "extra_none", "extra_array"])
def test_custom_function_needs_input_grad_and_gradient_count(case: str) -> None:
    seen: dict = {}
    extra = {"exact": (), "too_few": (), "extra_none": (None,), "extra_array": ("array",)}[case]
    xm, xt = pair(A)
    wm, wt = pair(B, requires_grad=False)
    if extra == ("array",):
        Mf, _ = _functions((np.ones((3, 4)),), False, seen)
        _, Tf = _functions((torch.ones(3, 4, dtype=torch.float64),), False, seen)
    else:
        Mf, Tf = _functions(extra, case == "too_few", seen)
    same_outcome(
        lambda: Mf.apply(xm, wm).sum().backward(),
        lambda: Tf.apply(xt, wt).sum().backward(),
        words=("incorrect number of gradients",),
    )
    assert seen["mg"] == seen["torch"] == (True, False)
    if case in ("exact", "extra_none"):
        close(xm.grad, xt.grad)


def test_leaf_hook_fires_on_backward_called_on_the_leaf() -> None:
    out = []
    for x in pair(A):
        got: list[np.ndarray] = []
        x.register_hook(lambda g, got=got: got.append(arr(g)) or g * 2)
        x.backward(B.copy() if isinstance(x, mg.Tensor) else torch.tensor(B))
        out.append((len(got), arr(x.grad)))
    assert out[0][0] == out[1][0]
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-12)


@pytest.mark.parametrize("view", ["slice", "reshape", "transpose", "T", "int"])
def test_inplace_through_each_view_kind_bumps_base_version(view: str) -> None:
    xm, xt = pair(A)
    wm, wt = pair(B, requires_grad=False)

    def run(x: Any, w: Any) -> Callable[[], None]:
        y = (x * w).sum()
        v = {
            "slice": lambda: w[:, 1:],
            "reshape": lambda: w.reshape(12),
            "transpose": lambda: w.transpose(0, 1),
            "T": lambda: w.T,
            "int": lambda: w[1],
        }[view]()
        v.add_(1.0)
        return lambda: y.backward()

    same_outcome(run(xm, wm), run(xt, wt), words=("inplace",))
    close(wm, wt)


def test_gradient_unbroadcast_and_dtype_of_mixed_inputs() -> None:
    x32 = RNG.standard_normal((3, 1)).astype(np.float32)
    xm, xt = mg.tensor(x32, requires_grad=True), torch.tensor(x32, requires_grad=True)
    wm, wt = pair(B)
    zm, zt = (xm * wm).tanh(), (xt * wt).tanh()
    assert zm.dtype == np.float64 and zt.dtype == torch.float64
    zm.sum().backward()
    zt.sum().backward()
    assert xm.grad.dtype == np.float32 and xt.grad.dtype == torch.float32
    np.testing.assert_allclose(xm.grad, xt.grad.numpy(), rtol=1e-6)
    close(wm.grad, wt.grad)
