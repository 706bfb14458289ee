"""Save and load state dicts as ``.npz`` files that never contain pickled code.

The file format
===============

A checkpoint is an ordinary ``.npz`` archive (``np.savez``, uncompressed) holding:

- one ``.npy`` member per array, named ``arr_0``, ``arr_1``, ... in the order the arrays
  are met walking the state dict depth-first;
- one member named ``__minigrad_checkpoint__``: a 0-d unicode array whose string is JSON
  describing everything else::

      {"format": "minigrad.checkpoint", "version": 1, "tree": <node>}

  where a ``<node>`` is one of::

      {"type": "dict", "items": [[<key>, <node>], ...]}   key: a JSON int or string
      {"type": "list", "items": [<node>, ...]}
      {"type": "tuple", "items": [<node>, ...]}
      {"type": "array", "member": "arr_0", "dtype": "<f4", "shape": [3, 4]}
      {"type": "numpy_scalar", "member": "arr_1", "dtype": "<i8"}
      {"type": "int", "value": 3}
      {"type": "float", "value": "0.1"}          repr(), so inf, nan and -0.0 survive
      {"type": "bool", "value": true}
      {"type": "str", "value": "relu"}
      {"type": "none"}

Dict items are a list of pairs rather than a JSON object because JSON object keys are always
strings: an optimizer's ``{0: {...}}`` must come back with the int key ``0``. Floats are
stored as their ``repr`` because strict JSON has no ``inf`` or ``nan`` and ``repr`` round-trips
every float exactly.

Why no pickle: ``np.load(..., allow_pickle=False)`` refuses object arrays and raw pickles,
so loading a checkpoint from an untrusted source can never run code. ``save`` refuses to
write anything that would need pickle, so every file it writes loads under that rule.
"""

from __future__ import annotations

import json
import os
import uuid
import zipfile
from typing import Any

import numpy as np

from minigrad.tensor import Tensor

__all__ = ["CheckpointError", "load", "save"]

FORMAT = "minigrad.checkpoint"
VERSION = 1
METADATA_MEMBER = "__minigrad_checkpoint__"

_SUPPORTED = (
    "dicts (str or int keys), lists, tuples, numpy arrays (not object dtype), Tensors, "
    "numpy scalars, ints, floats, bools, strings and None"
)


class CheckpointError(ValueError):
    """A checkpoint file is truncated, corrupt, or not a minigrad checkpoint."""


# --------------------------------------------------------------------------------- save


def save(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` (a state dict) to ``path`` as a ``.npz`` checkpoint.

    ``obj`` may nest dicts (str or int keys), lists and tuples of numpy arrays, Tensors
    (saved as their ``.data``; they load back as arrays), numpy scalars, ints, floats,
    bools, strings and ``None``. ``.npz`` is appended to a path without it, as ``np.savez``
    does.

    The archive is written to a temporary file in the same directory, flushed to disk and
    then renamed over ``path``, so a crash leaves either the old checkpoint or the new one,
    never half of one.

    Raises:
        TypeError: ``obj`` holds something else (a set, an object, an object-dtype array, a
            float key, ...); the message names its key path, for example ``state.0.exp_avg``.
        ValueError: ``obj`` contains itself, or holds an int of more than 4,300 digits (the
            limit of Python's int-to-text conversion).
        RecursionError: ``obj`` nests hundreds of levels deep (a state dict nests
            three or four).
    Nothing is written when any of these is raised.
    """
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"

    # Encode everything before touching the disk: an unsupported value then leaves no file.
    # Any, not ndarray: np.savez's signature also has a bool keyword, which mypy would match.
    members: dict[str, Any] = {}
    tree = _encode(obj, [], members, active=set(), file=path)
    metadata = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree}, allow_nan=False)
    members[METADATA_MEMBER] = np.array(metadata)

    directory, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    # os.open with mode 0o666 lets the umask decide the permissions, as for any new file.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **members)
            f.flush()
            # The data must be on disk before the rename makes it the checkpoint; otherwise
            # a power cut could leave the new name pointing at an empty file.
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        # Also on KeyboardInterrupt: never leave a stray temporary file next to the checkpoint.
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _encode(
    value: Any, where: list[str], members: dict[str, Any], *, active: set[int], file: str
) -> dict[str, Any]:
    """The JSON node for ``value``; arrays are added to ``members`` under fresh names.

    ``where`` is the key path to ``value``; ``active`` holds the ids of the containers
    being encoded around it, to catch a container that contains itself.
    """
    # bool before int (True is an int), numpy scalars before float (np.float64 is a float).
    if value is None:
        return {"type": "none"}
    if isinstance(value, bool):
        return {"type": "bool", "value": value}
    if isinstance(value, np.generic):
        _check_dtype(value.dtype, where, file)
        return {"type": "numpy_scalar", **_add_member(np.asarray(value), members)}
    if isinstance(value, int):
        return {"type": "int", "value": int(value)}  # int(): an IntEnum is saved as its number
    if isinstance(value, float):
        return {"type": "float", "value": repr(float(value))}
    if isinstance(value, str):
        return {"type": "str", "value": str.__str__(value)}  # not a str subclass's own __str__
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, np.ndarray):
        _check_dtype(value.dtype, where, file)
        array = np.asarray(value)  # a plain ndarray: subclasses such as np.matrix are not kept
        return {"type": "array", **_add_member(array, members), "shape": list(array.shape)}

    if not isinstance(value, (dict, list, tuple)):
        raise TypeError(
            f"save({file!r}): {_describe(where)} is a {type(value).__qualname__}, which a "
            f"checkpoint cannot hold; it holds {_SUPPORTED}"
        )
    if id(value) in active:
        raise ValueError(f"save({file!r}): {_describe(where)} contains itself")
    active.add(id(value))
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(
                    f"save({file!r}): {_describe(where)} has the key {key!r} of type "
                    f"{type(key).__qualname__}; checkpoint dict keys must be str or int"
                )
            items.append(
                [key, _encode(item, [*where, str(key)], members, active=active, file=file)]
            )
        node: dict[str, Any] = {"type": "dict", "items": items}
    else:
        node = {
            "type": "list" if isinstance(value, list) else "tuple",
            "items": [
                _encode(item, [*where, str(i)], members, active=active, file=file)
                for i, item in enumerate(value)
            ],
        }
    active.remove(id(value))
    return node


def _check_dtype(dtype: np.dtype, where: list[str], file: str) -> None:
    if dtype.hasobject:
        raise TypeError(
            f"save({file!r}): {_describe(where)} is an array of dtype {dtype}, which would need "
            f"pickle; convert it to a numeric, bool or string dtype"
        )


def _add_member(array: np.ndarray, members: dict[str, Any]) -> dict[str, Any]:
    member = f"arr_{len(members)}"
    members[member] = array
    return {"member": member, "dtype": array.dtype.str}


def _describe(where: list[str]) -> str:
    return f"the value at {'.'.join(where)!r}" if where else "the top-level value"


def _fsync_directory(directory: str) -> None:
    """Flush the rename itself to disk (POSIX); Windows cannot open a directory, nor needs to."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems do not support fsync on a directory; the data is safe anyway
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------- load


def load(path: str | os.PathLike[str]) -> Any:
    """Read a checkpoint written by :func:`save` and rebuild the exact structure.

    Dicts keep their key order and int keys, tuples stay tuples, numbers keep their Python
    type (``True`` stays a bool, ``1`` an int, ``1.0`` a float), and arrays keep their dtype
    and shape. Tensors were saved as arrays and come back as arrays.

    The file is read with ``allow_pickle=False``: a file that carries pickled objects is
    refused, never unpickled.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is truncated, corrupt, holds pickled data, or is not a
            minigrad checkpoint (a plain ``np.savez`` archive, a text file, ...).
    """
    path = os.fspath(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError as error:
        if not path.endswith(".npz") and os.path.exists(path + ".npz"):
            raise FileNotFoundError(
                f"no checkpoint at {path!r}; save() added '.npz', so load {path + '.npz'!r}"
            ) from error
        raise
    with f:
        try:
            archive = np.load(f, allow_pickle=False)
        except _UNREADABLE as error:
            # np.load treats anything that is neither a zip nor a .npy file as a pickle and
            # refuses it, so text, random bytes and raw pickles all end up here.
            raise CheckpointError(
                f"cannot load checkpoint {path!r}: it is not a readable .npz archive "
                f"(truncated, corrupt or another kind of file): {error}"
            ) from error
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise CheckpointError(
                f"cannot load checkpoint {path!r}: it is a single .npy array, not a .npz "
                f"checkpoint written by minigrad's save()"
            )
        with archive:
            tree = _read_metadata(archive, path)
            try:
                return _decode(tree, [], _Members(archive, path))
            except RecursionError as error:  # a crafted file nested deeper than save() writes
                raise CheckpointError(
                    f"cannot load checkpoint {path!r}: its metadata is nested too deeply"
                ) from error


def _read_metadata(archive: np.lib.npyio.NpzFile, path: str) -> Any:
    if METADATA_MEMBER not in archive.files:
        raise CheckpointError(
            f"cannot load checkpoint {path!r}: it has no {METADATA_MEMBER!r} member, so it is "
            f"not a minigrad checkpoint (a plain np.savez archive? read it with np.load)"
        )
    text = _Members(archive, path).read(METADATA_MEMBER, where=[])
    if text.dtype.kind != "U" or text.shape != ():
        raise CheckpointError(
            f"cannot load checkpoint {path!r}: member {METADATA_MEMBER!r} should be a 0-d "
            f"string array, found dtype {text.dtype} and shape {text.shape}"
        )
    try:
        metadata = json.loads(str(text[()]))
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError; so is an
        # int too long to convert, and JSON nested beyond Python's recursion limit is neither
        raise CheckpointError(
            f"cannot load checkpoint {path!r}: its metadata is not valid JSON that minigrad "
            f"can read: {type(error).__name__}: {error}"
        ) from error
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise CheckpointError(
            f"cannot load checkpoint {path!r}: its metadata does not say "
            f"format {FORMAT!r}, so it is not a minigrad checkpoint"
        )
    if metadata.get("version") != VERSION:
        raise CheckpointError(
            f"cannot load checkpoint {path!r}: it is format version {metadata.get('version')!r}"
            f", and this minigrad reads version {VERSION}; load it with the minigrad that wrote it"
        )
    if "tree" not in metadata:
        raise CheckpointError(f"cannot load checkpoint {path!r}: its metadata has no 'tree'")
    return metadata["tree"]


# What reading a damaged or foreign archive raises: besides the plain I/O and format errors,
# zipfile raises NotImplementedError for an unsupported compression method or zip version
# and RuntimeError for an encrypted member.
_UNREADABLE = (
    ValueError,
    EOFError,
    OSError,
    zipfile.BadZipFile,
    NotImplementedError,
    RuntimeError,
)


class _Members:
    """Reads array members of an open archive, turning every failure into a CheckpointError."""

    def __init__(self, archive: np.lib.npyio.NpzFile, path: str) -> None:
        self.archive = archive
        self.path = path

    def read(self, member: Any, *, where: list[str]) -> np.ndarray:
        if not isinstance(member, str) or member not in self.archive.files:
            raise CheckpointError(
                f"cannot load checkpoint {self.path!r}: member {member!r} for "
                f"{_describe(where)} is missing from the archive"
            )
        try:
            return self.archive[member]
        except _UNREADABLE as error:
            # ValueError covers an object array, which np.load refuses to unpickle; a damaged
            # member fails its CRC check (BadZipFile) or ends early (EOFError, ValueError).
            raise CheckpointError(
                f"cannot load checkpoint {self.path!r}: member {member!r} for "
                f"{_describe(where)} is unreadable (corrupt, or holds pickled objects): {error}"
            ) from error

    def fail(self, where: list[str], problem: str) -> CheckpointError:
        return CheckpointError(
            f"cannot load checkpoint {self.path!r}: the metadata for {_describe(where)} is "
            f"malformed: {problem}"
        )


def _decode(node: Any, where: list[str], members: _Members) -> Any:
    """Rebuild the value described by ``node`` (see the module docstring for the format)."""
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        raise members.fail(where, f"expected a node with a 'type', found {node!r:.80}")
    kind = node["type"]
    if kind == "none":
        return None
    if kind in ("bool", "int", "str"):
        value = node.get("value")
        # type() rather than isinstance: JSON's true must not pass for an int, nor 1 for a bool.
        expected = {"bool": bool, "int": int, "str": str}[kind]
        if type(value) is not expected:
            raise members.fail(where, f"a {kind} node holds {value!r:.80}")
        return value
    if kind == "float":
        value = node.get("value")
        try:
            if not isinstance(value, str):
                raise ValueError
            return float(value)
        except ValueError:
            raise members.fail(where, f"a float node holds {value!r:.80}") from None
    if kind in ("array", "numpy_scalar"):
        return _decode_array(node, where, members)
    if kind in ("list", "tuple", "dict"):
        items = node.get("items")
        if not isinstance(items, list):
            raise members.fail(where, f"a {kind} node has no list of items")
        if kind == "list":
            return [_decode(item, [*where, str(i)], members) for i, item in enumerate(items)]
        if kind == "tuple":
            return tuple(_decode(item, [*where, str(i)], members) for i, item in enumerate(items))
        result = {}
        for pair in items:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise members.fail(
                    where, f"a dict item should be a [key, value] pair: {pair!r:.80}"
                )
            key, item = pair
            if type(key) not in (str, int):
                raise members.fail(where, f"a dict key should be a str or an int: {key!r:.80}")
            result[key] = _decode(item, [*where, str(key)], members)
        return result
    raise members.fail(where, f"unknown node type {kind!r:.80}")


def _decode_array(node: dict[str, Any], where: list[str], members: _Members) -> Any:
    array = members.read(node.get("member"), where=where)
    # A mismatch means the member was swapped or rewritten after save(): refuse it rather
    # than hand back an array of the wrong shape or dtype.
    if array.dtype.str != node.get("dtype"):
        raise members.fail(
            where, f"dtype {node.get('dtype')!r} was saved but member has {array.dtype.str!r}"
        )
    if node["type"] == "numpy_scalar":
        if array.shape != ():
            raise members.fail(where, f"a numpy scalar has shape {array.shape}")
        return array[()]
    saved_shape = node.get("shape")
    if not isinstance(saved_shape, list) or tuple(saved_shape) != array.shape:
        raise members.fail(where, f"shape {saved_shape!r} was saved but member has {array.shape}")
    return array
