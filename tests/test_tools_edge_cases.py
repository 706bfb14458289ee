"""Edge cases of the user-facing tools: mg.save/mg.load, mg.gradcheck, assert_grads_match_torch.

Covers gaps left by test_checkpoint.py and test_gradcheck.py: real model and optimizer
state dicts through a file and back into fresh objects, awkward keys, every numpy dtype and
layout, numpy-scalar types, the .npz naming rule against numpy's own, a failing fsync, very
deep nesting, crafted metadata and damaged zip directories (which must raise CheckpointError);
gradcheck verdicts side by side with torch.autograd.gradcheck on correct and wrong custom
Functions (tuples, 0-d inputs, inputs without grad, kinks, NaN), and assert_grads_match_torch
with several outputs, non-float inputs, missing gradients and NaN outputs.
"""

from __future__ import annotations

import os
import struct
import warnings
from typing import Any

import numpy as np
import pytest
from test_checkpoint import assert_same, round_trip
from test_gradcheck import WrongCube

import minigrad as mg
from minigrad import nn, optim
from minigrad.checkpoint import METADATA_MEMBER
from minigrad.testing import assert_grads_match_torch

torch = pytest.importorskip("torch")


def write_metadata(path, text: str) -> None:
    np.savez(path, **{METADATA_MEMBER: np.array(text)})


# ------------------------------------------------------------------------- checkpoints


def test_model_and_optimizer_state_dicts_round_trip_into_fresh_objects(tmp_path):
    def make(seed):
        mg.manual_seed(seed)
        model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        return model, optim.Adam(model.parameters(), lr=0.01, amsgrad=True)

    def step(model, opt, x):
        opt.zero_grad()
        (model(x) ** 2).sum().backward()
        opt.step()

    x = mg.tensor(np.random.default_rng(0).standard_normal((5, 3)), dtype=mg.float32)
    model, opt = make(0)
    step(model, opt, x)
    step(model, opt, x)
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 2}
    loaded = round_trip(state, tmp_path)
    assert_same(loaded, state)

    model2, opt2 = make(1)
    model2.load_state_dict(loaded["model"])
    opt2.load_state_dict(loaded["optimizer"])
    step(model, opt, x)
    step(model2, opt2, x)
    for (name, p), (_, q) in zip(model.named_parameters(), model2.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_awkward_keys_round_trip_with_their_types(tmp_path):
    state = {
        "a.b": {"c": 1},
        "a": {"b.c": 2},
        "a/b": 3,
        "../../etc/passwd": 4,
        "0": "string zero",
        0: "int zero",
        "-1": 5,
        -1: 6,
        "1e3": 7,
        "nan": 8,
        "true": 9,
        "None": 10,
        " ": 11,
        "arr_0": np.ones(2),
        METADATA_MEMBER: "a key named like the metadata member",
        "naïve ☃": 12,
        2**70: "big int key",
        -(2**70): "big negative int key",
    }
    assert_same(round_trip(state, tmp_path), state)


ARRAYS = [
    ("int8", np.array([-128, 0, 127], dtype=np.int8)),
    ("int16", np.array([-3, 4], dtype=np.int16)),
    ("int32", np.array([2**31 - 1], dtype=np.int32)),
    ("uint16", np.array([65535], dtype=np.uint16)),
    ("uint32", np.array([2**32 - 1], dtype=np.uint32)),
    ("uint64", np.array([2**64 - 1], dtype=np.uint64)),
    ("longdouble", np.array([1, 3], dtype=np.longdouble) / 3),
    ("complex64", np.array([1 - 1j], dtype=np.complex64)),
    ("clongdouble", np.array([1 + 1j], dtype=np.clongdouble) / 3),
    ("datetime64", np.array(["2020-01-01", "NaT"], dtype="datetime64[D]")),
    ("timedelta64", np.array([1, -2], dtype="timedelta64[s]")),
    ("bytes", np.array([b"ab", b"c"])),
    ("structured", np.array([(1.5, 2)], dtype=[("a", "<f4"), ("b", "<i8")])),
    ("0-d bool", np.array(True)),
    ("0-d uint8", np.array(255, dtype=np.uint8)),
    ("0-d str", np.array("relu")),
    ("empty float64 (0,)", np.zeros(0)),
    ("empty bool (2, 0, 3)", np.zeros((2, 0, 3), dtype=bool)),
    ("empty 0 rows float16", np.zeros((0,), dtype=np.float16)),
    ("Fortran order", np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3))),
    ("negative strides", np.arange(24.0).reshape(2, 3, 4)[:, ::-1, ::2]),
    ("broadcast (zero strides)", np.broadcast_to(np.arange(3.0), (4, 3))),
    ("transposed float32", np.arange(12, dtype=np.float32).reshape(3, 4).T),
]


@pytest.mark.parametrize("array", [a for _, a in ARRAYS], ids=[n for n, _ in ARRAYS])
def test_array_of_any_dtype_and_layout_round_trips(tmp_path, array):
    loaded = round_trip({"x": [array, (array,)]}, tmp_path)
    assert_same(loaded, {"x": [np.asarray(array), (np.asarray(array),)]})
    assert loaded["x"][0].flags.writeable  # a usable array, even from a read-only view


def test_python_and_numpy_scalars_keep_their_exact_types(tmp_path):
    # np.float64 subclasses float and np.str_ subclasses str: neither may become the other.
    values = [
        3.0,
        3,
        True,
        np.float64(3.0),
        np.float32(3.0),
        np.int8(-3),
        np.uint64(2**64 - 1),
        np.bool_(False),
        np.str_("relu"),
        np.bytes_(b"x"),
        np.longdouble(1) / 3,
        np.datetime64("2020-01-01"),
        "3.0",
        None,
    ]
    assert_same(round_trip({"values": values, "as tuple": tuple(values)}, tmp_path),
                {"values": values, "as tuple": tuple(values)})  # fmt: skip


@pytest.mark.parametrize(
    "name", ["model", "model.npz", "model.NPZ", "model.npz.bak", "weights.pt", "a.b.c"]
)
def test_npz_suffix_rule_matches_numpy_savez(tmp_path, name):
    (tmp_path / "np").mkdir()
    (tmp_path / "mg").mkdir()
    np.savez(tmp_path / "np" / name, x=np.ones(1))
    mg.save({"x": np.ones(1)}, tmp_path / "mg" / name)
    mg.save({"x": np.ones(1)}, str(tmp_path / "mg" / name))  # str and Path agree
    assert os.listdir(tmp_path / "mg") == os.listdir(tmp_path / "np")


def test_failing_fsync_keeps_the_old_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    old = {"step": 1, "w": np.arange(3.0)}
    mg.save(old, path)

    def fsync(fd):
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="I/O error"):
        mg.save({"step": 2, "w": np.zeros(3)}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["c.npz"]
    assert_same(mg.load(path), old)


def nested(depth: int) -> Any:
    obj: Any = np.arange(2.0)
    for i in range(depth):
        obj = {"k": obj} if i % 3 == 0 else [obj] if i % 3 == 1 else (obj,)
    return obj


def test_deep_nesting_round_trips(tmp_path):
    obj = nested(300)
    assert_same(round_trip(obj, tmp_path), obj)


def test_too_deep_nesting_fails_before_touching_the_old_checkpoint(tmp_path):
    path = tmp_path / "c.npz"
    mg.save({"w": np.ones(2)}, path)
    with pytest.raises(RecursionError):
        mg.save(nested(5000), path)
    assert os.listdir(tmp_path) == ["c.npz"]
    assert_same(mg.load(path), {"w": np.ones(2)})


def header(tree: str) -> str:
    return '{"format": "minigrad.checkpoint", "version": 1, "tree": ' + tree + "}"


CRAFTED = {
    # A foreign file need not have been written by save(): its JSON can nest without limit.
    "deeply nested JSON": header("[" * 100_000 + "]" * 100_000),
    "deeply nested tree": header(
        '{"type": "list", "items": [' * 5000 + '{"type": "none"}' + "]}" * 5000
    ),
    "5000-digit int": header('{"type": "int", "value": ' + "9" * 5000 + "}"),
}  # fmt: skip


@pytest.mark.parametrize("text", list(CRAFTED.values()), ids=list(CRAFTED))
def test_crafted_metadata_raises_checkpoint_error_naming_the_file(tmp_path, text):
    path = tmp_path / "foreign.npz"
    write_metadata(path, text)
    with pytest.raises(mg.CheckpointError) as info:
        mg.load(path)
    assert str(path) in str(info.value)


def central_directory(data: bytes) -> int:
    start = data.find(b"PK\x01\x02")
    assert start > 0
    return start


def set_u16(data: bytearray, offset: int, value: int) -> None:
    data[offset : offset + 2] = struct.pack("<H", value)


ZIP_DAMAGE = {
    # Offsets within a central-directory file header (PKWARE APPNOTE 4.3.12).
    "compression method 99": lambda d, s: set_u16(d, s + 10, 99),
    "encrypted flag": lambda d, s: set_u16(d, s + 8, struct.unpack_from("<H", d, s + 8)[0] | 1),
    "patched-data flag": lambda d, s: set_u16(d, s + 8, struct.unpack_from("<H", d, s + 8)[0] | 32),
    "version needed 21.0": lambda d, s: set_u16(d, s + 6, 210),
}  # fmt: skip


@pytest.mark.parametrize("damage", list(ZIP_DAMAGE.values()), ids=list(ZIP_DAMAGE))
def test_damaged_zip_directory_raises_checkpoint_error(tmp_path, damage):
    path = tmp_path / "c.npz"
    mg.save({"w": np.arange(4.0), "step": 3}, path)
    data = bytearray(path.read_bytes())
    damage(data, central_directory(bytes(data)))
    path.write_bytes(bytes(data))
    with pytest.raises(mg.CheckpointError) as info:
        mg.load(path)
    assert str(path) in str(info.value)


def test_any_flipped_byte_in_the_zip_directory_loads_intact_or_raises_checkpoint_error(tmp_path):
    good = {"state": {0: {"step": 3, "m": np.arange(4.0)}}, "betas": (0.9, 0.99)}
    path = tmp_path / "c.npz"
    mg.save(good, path)
    data = path.read_bytes()
    other: list[str] = []
    for offset in range(central_directory(data), len(data)):
        for mask in (0xFF, 0x01):
            damaged = bytearray(data)
            damaged[offset] ^= mask
            path.write_bytes(bytes(damaged))
            try:
                assert_same(mg.load(path), good)
            except mg.CheckpointError:
                pass
            except Exception as error:
                other.append(f"byte {offset} ^ {mask:#x}: {type(error).__name__}: {error}")
    assert not other, "\n".join(other[:10])


# --------------------------------------------------------------------------- gradcheck


def function_pair(forward, backward):
    """The same custom op as an mg.Function and a torch.autograd.Function."""

    class MgOp(mg.Function):
        @staticmethod
        def forward(ctx, *xs):
            ctx.save_for_backward(*xs)
            return forward(*xs)

        @staticmethod
        def backward(ctx, *grads):
            return backward(ctx.saved_tensors, grads)

    class TorchOp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *xs):
            ctx.save_for_backward(*xs)
            return forward(*xs)

        @staticmethod
        def backward(ctx, *grads):
            return backward(ctx.saved_tensors, grads)

    return MgOp.apply, TorchOp.apply


NAN = float("nan")
VERDICTS = {
    "correct cube": (lambda x: x**3, lambda s, g: g[0] * 3 * s[0] ** 2, 1, [True]),
    "wrong cube": (lambda x: x**3, lambda s, g: g[0] * 2 * s[0] ** 2, 1, [True]),
    "correct product": (
        lambda a, b: a * b, lambda s, g: (g[0] * s[1], g[0] * s[0]), 2, [True, True]
    ),
    "product, second gradient wrong": (
        lambda a, b: a * b, lambda s, g: (g[0] * s[1], g[0] * s[1]), 2, [True, True]
    ),
    "wrong gradient of an input without grad": (
        lambda a, b: a * b, lambda s, g: (g[0] * s[1], g[0] * 0.0), 2, [True, False]
    ),
    "tuple out, correct": (
        lambda x: (2 * x, x * x), lambda s, g: g[0] * 2 + g[1] * 2 * s[0], 1, [True]
    ),
    "tuple out, second wrong": (
        lambda x: (2 * x, x * x), lambda s, g: g[0] * 2 + g[1] * s[0], 1, [True]
    ),
    "0-d input, correct": (lambda x: x**3, lambda s, g: g[0] * 3 * s[0] ** 2, 1, "0-d"),
    "NaN forward and backward": (lambda x: x * NAN, lambda s, g: g[0] * NAN, 1, [True]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(VERDICTS.values()), ids=list(VERDICTS))
def test_gradcheck_verdict_matches_torch_on_custom_functions(case):
    forward, backward, n_inputs, requires = case
    mg_op, torch_op = function_pair(forward, backward)
    rng = np.random.default_rng(3)
    if requires == "0-d":
        arrays, requires = [np.array(1.7)], [True]
    else:
        arrays = [rng.standard_normal((2, 3)) + 2.0 for _ in range(n_inputs)]
    ours = mg.gradcheck(
        mg_op,
        [mg.tensor(a, requires_grad=r) for a, r in zip(arrays, requires)],
        raise_exception=False,
    )
    theirs = torch.autograd.gradcheck(
        torch_op,
        [torch.tensor(a, requires_grad=r) for a, r in zip(arrays, requires)],
        raise_exception=False,
    )
    assert ours is theirs


@pytest.mark.parametrize(
    ("name", "x", "expected"),
    [("relu", [0.0, 1.0, -1.0], False), ("abs", [0.0, 1.0, -1.0], True)],
)
def test_gradcheck_verdict_matches_torch_at_kinks(name, x, expected):
    ours = mg.gradcheck(
        lambda t: getattr(t, name)(), (mg.tensor(x, dtype=mg.float64, requires_grad=True),),
        raise_exception=False,
    )  # fmt: skip
    theirs = torch.autograd.gradcheck(
        getattr(torch, name),
        (torch.tensor(x, dtype=torch.float64, requires_grad=True),),
        raise_exception=False,
    )
    assert (ours, theirs) == (expected, expected)


def test_gradcheck_float32_warns_and_agrees_with_torch():
    x = np.random.default_rng(4).standard_normal(4)
    mg_op, torch_op = function_pair(lambda x: x**3, lambda s, g: g[0] * 3 * s[0] ** 2)
    with pytest.warns(UserWarning, match=r"input 0 is float32.*float64"):
        ours = mg.gradcheck(
            mg_op, (mg.tensor(x, dtype=mg.float32, requires_grad=True),), raise_exception=False
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.autograd.gradcheck(
            torch_op, (torch.tensor(x, dtype=torch.float32, requires_grad=True),),
            raise_exception=False,
        )  # fmt: skip
    assert ours is theirs


def test_gradcheck_names_the_element_where_the_function_is_undefined():
    def sqrt_forward(x):
        with np.errstate(invalid="ignore"):
            return np.sqrt(x)

    def sqrt_backward(saved, grads):
        with np.errstate(invalid="ignore", divide="ignore"):
            return grads[0] * 0.5 / np.sqrt(saved[0])

    mg_op, _ = function_pair(sqrt_forward, sqrt_backward)
    # Element 0 (sqrt(-1)) is where the gradients are NaN; element 1 (sqrt(1)) is fine and
    # has a finite numerical derivative (torch.autograd.gradcheck reports 0.5 there).
    with pytest.raises(mg.GradcheckError) as info:
        mg.gradcheck(mg_op, (mg.tensor([-1.0, 1.0], dtype=mg.float64, requires_grad=True),))
    assert "element (0,)" in str(info.value)


# ------------------------------------------------------------ assert_grads_match_torch


class ProductWithoutSecondGradient(mg.Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad_output):
        _, b = ctx.saved_tensors
        return grad_output * b, None


DATA = np.random.default_rng(5).standard_normal((2, 3)) + 2.0


@pytest.mark.parametrize(
    ("mg_fn", "torch_fn", "arrays"),
    [
        (lambda a, s: a * s, lambda a, s: a * s, (DATA, 2.5)),
        (lambda a, i: a[i], lambda a, i: a[i], (DATA, 1)),
        (lambda a, m: a[m] * 2.0, lambda a, m: a[m] * 2.0, (DATA, DATA > 2.0)),
        (lambda a: a * 2.0, lambda a: a * 2.0, ([[1.0, 2.0], [3.0, 4.0]],)),
        (lambda a: a.exp(), lambda a: a.exp(), (DATA.astype(np.float32),)),
        (lambda a: (a * 2.0, a > 2.0), lambda a: (a * 2.0, a > 2.0), (DATA,)),
        (lambda a: (a.sum(1), a.exp()), lambda a: (a.sum(1), a.exp()), (DATA,)),
    ],
    ids=["python float", "python int index", "bool mask", "nested list", "float32 array",
         "float and bool outputs", "two float outputs"],
)  # fmt: skip
def test_assert_grads_match_torch_passes_on_equal_functions(mg_fn, torch_fn, arrays):
    assert_grads_match_torch(mg_fn, torch_fn, *arrays)


def test_assert_grads_match_torch_reports_a_wrong_gradient_through_a_second_output():
    with pytest.raises(AssertionError) as info:
        assert_grads_match_torch(
            lambda a: (a * 2.0, WrongCube.apply(a)), lambda a: (a * 2.0, a**3), DATA
        )
    report = str(info.value)
    assert "gradient of input 0: 6 of 6 elements differ" in report
    assert "output" not in report


def test_assert_grads_match_torch_reports_only_the_input_whose_gradient_differs():
    with pytest.raises(AssertionError) as info:
        assert_grads_match_torch(
            lambda a, b, i: a * WrongCube.apply(b)[i], lambda a, b, i: a * (b**3)[i],
            DATA, DATA + 1.0, np.array([1, 0]),
        )  # fmt: skip
    report = str(info.value)
    assert "gradient of input 1" in report
    assert "gradient of input 0" not in report
    assert "input 2" not in report


def test_assert_grads_match_torch_reports_a_gradient_minigrad_never_computed():
    with pytest.raises(AssertionError, match=r"gradient of input 1: 6 of 6 elements differ"):
        assert_grads_match_torch(ProductWithoutSecondGradient.apply, lambda a, b: a * b, DATA, DATA)


def test_assert_grads_match_torch_reports_an_output_that_does_not_require_grad():
    with pytest.raises(AssertionError, match="requires_grad of the outputs differ"):
        assert_grads_match_torch(lambda a: (a * 2.0).detach(), lambda a: a * 2.0, DATA)


def test_assert_grads_match_torch_reports_a_differing_bool_output():
    with pytest.raises(AssertionError, match=r"output 1: values differ"):
        assert_grads_match_torch(lambda a: (a * 2.0, a > 2.0), lambda a: (a * 2.0, a > 100.0), DATA)


def test_assert_grads_match_torch_reports_nan_output_as_a_mismatch():
    # Under this project's pytest settings a RuntimeWarning from minigrad is an error, so the
    # report itself must not warn on NaN.
    with pytest.raises(AssertionError, match=r"output 0: 6 of 6 elements differ"):
        assert_grads_match_torch(lambda a: a * np.nan, lambda a: a * 1.0, DATA)
