"""save/load: exact round trips, atomic writes, and refusal of damaged, foreign or pickled files."""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import zipfile
from typing import Any

import numpy as np
import pytest

from minigrad.checkpoint import METADATA_MEMBER, CheckpointError, load, save
from minigrad.tensor import Tensor


def assert_same(actual: Any, expected: Any, where: str = "top") -> None:
    """Equal values of exactly the same types, all the way down (1 is not 1.0 nor True)."""
    assert type(actual) is type(expected), f"{where}: {type(actual)} != {type(expected)}"
    if isinstance(expected, (np.ndarray, np.generic)):
        assert actual.dtype == expected.dtype, where
        assert actual.shape == expected.shape, where
        if expected.dtype.kind in "mM":  # datetimes: compare the raw counts (NaT != NaT)
            assert np.array_equal(actual.view("i8"), expected.view("i8")), where
        else:
            np.testing.assert_array_equal(actual, expected, err_msg=where)
    elif isinstance(expected, dict):
        # Key order and key types (0 vs "0") both matter.
        assert [(type(k), k) for k in actual] == [(type(k), k) for k in expected], where
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{where}.{i}")
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual), where
    elif isinstance(expected, float):
        # == alone would accept -0.0 for 0.0.
        assert actual == expected and math.copysign(1, actual) == math.copysign(1, expected), where
    else:
        assert actual == expected, where


def round_trip(obj: Any, tmp_path) -> Any:
    path = tmp_path / "checkpoint.npz"
    save(obj, path)
    return load(path)


def optimizer_state_dict() -> dict:
    rng = np.random.default_rng(0)
    return {
        "state": {
            0: {"step": 3, "exp_avg": rng.standard_normal((3, 2)), "exp_avg_sq": rng.random(2)},
            1: {"step": 3, "exp_avg": rng.standard_normal(2).astype(np.float32)},
        },
        "param_groups": [
            {"params": [0, 1], "lr": 0.1, "betas": (0.9, 0.999), "amsgrad": False, "foreach": None}
        ],
    }


# ---------------------------------------------------------------------------- round trips


def test_optimizer_state_dict_round_trips_with_int_keys_and_tuples(tmp_path):
    state = optimizer_state_dict()
    loaded = round_trip(state, tmp_path)
    assert_same(loaded, state)
    assert list(loaded["state"]) == [0, 1]
    assert loaded["param_groups"][0]["betas"] == (0.9, 0.999)


VALUES = [
    ("float32", np.array([[1.5, -2.0], [3.25, 0.0]], dtype=np.float32)),
    ("float64", np.linspace(-1, 1, 7)),
    ("int64", np.array([-(2**62), 0, 2**62], dtype=np.int64)),
    ("bool array", np.array([True, False, True])),
    ("uint8", np.arange(256, dtype=np.uint8)),
    ("float16", np.array([0.5, 65504.0], dtype=np.float16)),
    ("complex128", np.array([1 + 2j, -3j])),
    ("0-d array", np.array(2.5)),
    ("0-d int array", np.array(7, dtype=np.int32)),
    ("empty array", np.zeros((0, 3), dtype=np.float32)),
    ("empty 1-d", np.array([], dtype=np.int64)),
    ("string array", np.array(["relu", "tanh"])),
    ("big-endian", np.array([1.0, 2.0], dtype=">f8")),
    ("numpy float32 scalar", np.float32(0.1)),
    ("numpy int64 scalar", np.int64(-5)),
    ("numpy bool scalar", np.bool_(True)),
    ("None", None),
    ("str", 'naïve ☃ with "quotes", a \\ and a \x00 inside'),
    ("empty str", ""),
    ("True", True),
    ("False", False),
    ("int 1", 1),
    ("int 0", 0),
    ("big int", 2**100),
    ("negative int", -7),
    ("float 1.0", 1.0),
    ("float 0.1", 0.1),
    ("tiny float", 1e-300),
    ("subnormal float", 5e-324),
    ("max float", 1.7976931348623157e308),
    ("inf", math.inf),
    ("-inf", -math.inf),
    ("nan", math.nan),
    ("-0.0", -0.0),
    ("empty dict", {}),
    ("empty list", []),
    ("empty tuple", ()),
    ("nested tuples", ((1, (2.0, [3])), ())),
    ("mixed keys", {"0": "str key", 0: "int key", -1: None, "": []}),
    ("bools vs ints", [True, 1, 1.0, False, 0, 0.0]),
    ("list of arrays", [np.ones(2), np.zeros((1, 1), dtype=bool), np.array(3)]),
]


@pytest.mark.parametrize("value", [v for _, v in VALUES], ids=[name for name, _ in VALUES])
def test_value_round_trips_exactly(tmp_path, value):
    assert_same(round_trip(value, tmp_path), value)
    # The same value nested in a dict under an int key.
    assert_same(round_trip({7: {"x": value}}, tmp_path), {7: {"x": value}})


def test_dict_key_order_is_kept(tmp_path):
    state = {"z": 1, 3: 2, "a": 3, 1: 4}
    assert list(round_trip(state, tmp_path)) == ["z", 3, "a", 1]


def test_tensor_is_saved_as_its_data(tmp_path):
    weight = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    loaded = round_trip({"weight": weight}, tmp_path)
    assert_same(loaded, {"weight": np.arange(6, dtype=np.float32).reshape(2, 3)})


def test_non_contiguous_array_keeps_its_values(tmp_path):
    array = np.arange(12.0).reshape(3, 4)[:, ::2].T
    loaded = round_trip([array], tmp_path)[0]
    np.testing.assert_array_equal(loaded, array)
    assert loaded.shape == (2, 3)


def test_shared_array_is_saved_as_a_copy_each_time(tmp_path):
    array = np.arange(3.0)
    loaded = round_trip({"a": array, "b": array}, tmp_path)
    loaded["a"][0] = 100.0
    assert loaded["b"][0] == 0.0
    assert array[0] == 0.0


def test_container_shared_by_two_keys_is_not_a_cycle(tmp_path):
    betas = (0.9, 0.999)
    groups = [{"betas": betas}, {"betas": betas}]
    assert_same(round_trip(groups, tmp_path), groups)


def test_file_is_a_plain_npz_with_json_metadata(tmp_path):
    save({"w": np.ones(2), 0: (1.5, "x")}, tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted([METADATA_MEMBER, "arr_0"])
        metadata = json.loads(str(archive[METADATA_MEMBER][()]))
    assert metadata["format"] == "minigrad.checkpoint"
    assert metadata["version"] == 1
    assert metadata["tree"]["items"][1][0] == 0  # the int key is a JSON int


# ------------------------------------------------------------------------------- paths


def test_npz_is_appended_to_a_path_without_it(tmp_path):
    save({"a": 1}, tmp_path / "model")
    save({"b": 2}, str(tmp_path / "other.ckpt"))
    assert sorted(os.listdir(tmp_path)) == ["model.npz", "other.ckpt.npz"]
    assert load(tmp_path / "model.npz") == {"a": 1}
    assert load(str(tmp_path / "other.ckpt.npz")) == {"b": 2}


def test_path_with_npz_is_kept(tmp_path):
    save([1], tmp_path / "model.npz")
    assert os.listdir(tmp_path) == ["model.npz"]


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nothing.npz")


def test_loading_without_the_added_suffix_says_what_to_load(tmp_path):
    save({"a": 1}, tmp_path / "model")
    with pytest.raises(FileNotFoundError, match=re.escape("model.npz")):
        load(tmp_path / "model")


def test_saving_again_replaces_the_checkpoint(tmp_path):
    path = tmp_path / "c.npz"
    save({"step": 1, "w": np.zeros(3)}, path)
    save({"step": 2}, path)
    assert_same(load(path), {"step": 2})
    assert os.listdir(tmp_path) == ["c.npz"]


# ----------------------------------------------------------------------- atomic writes


def failing_savez(file, *args, **kwargs):
    """Write half an archive, then fail, as a full disk or a crash mid-write would."""
    file.write(b"PK\x03\x04 half an archive")
    raise OSError("No space left on device")


@pytest.mark.parametrize("error", [OSError, KeyboardInterrupt])
def test_failure_mid_write_keeps_the_old_checkpoint_and_no_temp_file(tmp_path, monkeypatch, error):
    path = tmp_path / "c.npz"
    old = {"step": 1, "w": np.arange(4.0)}
    save(old, path)

    def fail(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half an archive")
        raise error("interrupted")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(error):
        save({"step": 2, "w": np.zeros(4)}, path)
    monkeypatch.undo()

    assert os.listdir(tmp_path) == ["c.npz"]
    assert_same(load(path), old)


def test_failed_rename_keeps_the_old_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    old = {"w": np.ones(2)}
    save(old, path)

    def fail(src, dst):
        raise PermissionError("rename refused")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(PermissionError):
        save({"w": np.zeros(2)}, path)
    monkeypatch.undo()

    assert os.listdir(tmp_path) == ["c.npz"]
    assert_same(load(path), old)


def test_failed_first_write_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="No space left"):
        save({"w": np.ones(2)}, tmp_path / "c.npz")
    assert os.listdir(tmp_path) == []


def test_data_is_synced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync")
        real_fsync(fd)

    def replace(src, dst):
        # The temporary file sits beside the target, so the rename stays on one file system.
        assert os.path.dirname(src) == os.path.dirname(dst)
        assert os.path.getsize(src) > 0
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    save({"w": np.ones(2)}, tmp_path / "c.npz")
    assert "replace" in events
    assert events.index("fsync") < events.index("replace")


# -------------------------------------------------------------- unsupported values


class Opaque:
    pass


UNSUPPORTED = [
    ("set", {"state": {0: {"exp_avg": {1, 2}}}}, "state.0.exp_avg", "set"),
    ("object", {"model": [1, Opaque()]}, "model.1", "Opaque"),
    (
        "object array",
        {"param_groups": [{"params": np.array([None, 1], dtype=object)}]},
        "param_groups.0.params",
        "object",
    ),
    ("object scalar in tuple", {"a": (1, 2, 3j)}, "a.2", "complex"),
    ("bytes", {"a": {"b": b"raw"}}, "a.b", "bytes"),
    ("float key", {"state": {1.5: 0}}, "state", "1.5"),
    ("tuple key", {"state": {(0, 1): 0}}, "state", "(0, 1)"),
    ("bool key", {"flags": {True: 0}}, "flags", "True"),
    ("numpy int key", {"state": {np.int64(0): 0}}, "state", "int64"),
    ("function", {"lr_lambda": lambda epoch: 0.9**epoch}, "lr_lambda", "function"),
]


@pytest.mark.parametrize(
    ("obj", "where", "detail"),
    [case[1:] for case in UNSUPPORTED],
    ids=[case[0] for case in UNSUPPORTED],
)
def test_unsupported_value_is_rejected_naming_its_key_path(tmp_path, obj, where, detail):
    with pytest.raises(TypeError, match=re.escape(f"'{where}'")) as info:
        save(obj, tmp_path / "c.npz")
    assert detail in str(info.value)
    assert os.listdir(tmp_path) == []  # checked before anything is written


def test_unsupported_top_level_value_is_rejected(tmp_path):
    with pytest.raises(TypeError, match="top-level value is a set"):
        save({1, 2}, tmp_path / "c.npz")


def test_container_that_contains_itself_is_rejected(tmp_path):
    state: dict = {"groups": []}
    state["groups"].append(state)
    with pytest.raises(ValueError, match=re.escape("'groups.0' contains itself")):
        save(state, tmp_path / "c.npz")


def test_rejected_save_keeps_the_old_checkpoint(tmp_path):
    path = tmp_path / "c.npz"
    save({"w": np.ones(2)}, path)
    with pytest.raises(TypeError):
        save({"w": {1, 2}}, path)
    assert_same(load(path), {"w": np.ones(2)})


# ------------------------------------------------------------- damaged and foreign files


def saved_bytes(tmp_path) -> bytes:
    path = tmp_path / "good.npz"
    save(optimizer_state_dict(), path)
    return path.read_bytes()


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.5, 0.9, 0.99])
def test_truncated_file_raises_checkpoint_error(tmp_path, fraction):
    data = saved_bytes(tmp_path)
    path = tmp_path / "cut.npz"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load(path)


def test_file_missing_its_last_byte_raises_checkpoint_error(tmp_path):
    data = saved_bytes(tmp_path)
    path = tmp_path / "cut.npz"
    path.write_bytes(data[:-1])
    with pytest.raises(CheckpointError, match=re.escape("not a readable .npz archive")):
        load(path)


def test_flipped_byte_in_an_array_raises_checkpoint_error(tmp_path):
    path = tmp_path / "c.npz"
    array = np.arange(16.0)
    save({"w": array}, path)
    data = bytearray(path.read_bytes())
    data[data.index(array.tobytes()) + 20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"'arr_0' for the value at 'w'.*CRC"):
        load(path)


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)


@pytest.mark.parametrize(
    "content",
    [b"", b"this is a text file\nnot a checkpoint\n", bytes(range(256)) * 4, b"PK\x03\x04junk"],
    ids=["empty", "text", "random bytes", "zip magic then junk"],
)
def test_garbage_file_raises_checkpoint_error(tmp_path, content):
    path = tmp_path / "c.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load(path)


def test_plain_npz_raises_checkpoint_error(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weight=np.ones(3), bias=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a minigrad checkpoint") as info:
        load(path)
    assert str(path) in str(info.value)


def test_npy_file_raises_checkpoint_error(tmp_path):
    path = tmp_path / "array.npz"
    with open(path, "wb") as f:
        np.save(f, np.ones(3))
    with pytest.raises(CheckpointError, match=re.escape("single .npy array")):
        load(path)


def write_archive(path, metadata: Any, **arrays: np.ndarray) -> None:
    """An npz with our metadata member holding ``metadata`` (a dict is dumped as JSON)."""
    text = json.dumps(metadata) if isinstance(metadata, dict) else metadata
    np.savez(path, **{METADATA_MEMBER: np.array(text)}, **arrays)


def array_tree(member="arr_0", dtype="<f8", shape=(3,)) -> dict:
    node = {"type": "array", "member": member, "dtype": dtype, "shape": list(shape)}
    return {"format": "minigrad.checkpoint", "version": 1, "tree": node}


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ("{not json", "not valid JSON"),
        ({"format": "something.else", "version": 1, "tree": None}, "not a minigrad checkpoint"),
        ({"format": "minigrad.checkpoint", "version": 99, "tree": None}, "version 99"),
        ({"format": "minigrad.checkpoint", "version": 1}, "no 'tree'"),
        (
            {"format": "minigrad.checkpoint", "version": 1, "tree": {"type": "frozenset"}},
            "unknown node type 'frozenset'",
        ),
        (
            {
                "format": "minigrad.checkpoint",
                "version": 1,
                "tree": {"type": "dict", "items": [[0, {"type": "int", "value": "3"}]]},
            },
            "metadata for the value at '0' is malformed",
        ),
        (
            {
                "format": "minigrad.checkpoint",
                "version": 1,
                "tree": {"type": "dict", "items": [[1.5, {"type": "none"}]]},
            },
            "a dict key should be a str or an int",
        ),
        (array_tree(member="arr_7"), "member 'arr_7' for the top-level value is missing"),
        (array_tree(dtype="<f4"), "dtype '<f4' was saved"),
        (array_tree(shape=(4,)), "shape [4] was saved"),
    ],
    ids=[
        "not json",
        "wrong format",
        "newer version",
        "no tree",
        "unknown node",
        "int node holding a string",
        "float key",
        "missing member",
        "dtype mismatch",
        "shape mismatch",
    ],
)
def test_damaged_metadata_raises_checkpoint_error(tmp_path, metadata, message):
    path = tmp_path / "c.npz"
    write_archive(path, metadata, arr_0=np.ones(3))
    with pytest.raises(CheckpointError, match=re.escape(message)) as info:
        load(path)
    assert str(path) in str(info.value)


def test_member_deleted_from_a_saved_checkpoint_raises_checkpoint_error(tmp_path):
    path = tmp_path / "c.npz"
    save(optimizer_state_dict(), path)
    damaged = tmp_path / "damaged.npz"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(damaged, "w") as target:
        for info in source.infolist():
            if info.filename != "arr_0.npy":
                target.writestr(info, source.read(info))
    with pytest.raises(
        CheckpointError, match=re.escape("'arr_0' for the value at 'state.0.exp_avg'")
    ):
        load(damaged)


def test_metadata_of_the_wrong_kind_raises_checkpoint_error(tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, **{METADATA_MEMBER: np.zeros(3)})
    with pytest.raises(CheckpointError, match="should be a 0-d string array"):
        load(path)


# -------------------------------------------------------------------- pickle payloads


class MakesDirectoryWhenUnpickled:
    """Unpickling this calls os.mkdir(marker): the stand-in for arbitrary code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def evil_array(marker) -> np.ndarray:
    array = np.empty(1, dtype=object)
    array[0] = MakesDirectoryWhenUnpickled(str(marker))
    return array


def test_pickle_payload_is_live_when_numpy_is_allowed_to_unpickle(tmp_path):
    # The control for the tests below: the payload really runs code if anything unpickles it.
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    np.savez(path, arr_0=evil_array(marker))
    with np.load(path, allow_pickle=True) as archive:
        archive["arr_0"]
    assert marker.exists()


def test_pickled_array_member_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    tree = {"type": "array", "member": "arr_0", "dtype": "|O", "shape": [1]}
    write_archive(
        path,
        {"format": "minigrad.checkpoint", "version": 1, "tree": tree},
        arr_0=evil_array(marker),
    )
    with pytest.raises(CheckpointError, match=r"'arr_0'.*pickled") as info:
        load(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_pickled_metadata_member_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    np.savez(path, **{METADATA_MEMBER: evil_array(marker)})
    with pytest.raises(CheckpointError, match="pickled"):
        load(path)
    assert not marker.exists()


def test_raw_pickle_file_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps({"w": MakesDirectoryWhenUnpickled(str(marker))}))
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load(path)
    assert not marker.exists()


def test_pickled_npy_file_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    with open(path, "wb") as f:
        np.save(f, evil_array(marker), allow_pickle=True)
    with pytest.raises(CheckpointError):
        load(path)
    assert not marker.exists()
