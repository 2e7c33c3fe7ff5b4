r"""Crash-safe, pickle-free checkpoints of a Markov chain: sampler state, history, metadata.

A long MCMC run (e.g. the cascading-IBP belief net of
:mod:`bayesstruct.families.belief_net`) is checkpointed every few sweeps so that a chain
killed by SIGKILL, an out-of-memory kill or a power cut can be resumed and end in *the
same state* as an uninterrupted chain with the same seed. Two properties make that work:

* **Atomic replacement.** :func:`save_checkpoint` renders the whole file in memory,
  writes it to a temporary file in the target's directory, ``fsync``\ s it and renames it
  over the target with ``os.replace`` (:func:`bayesstruct.io.write_atomic`). A crash at
  any instant leaves either the previous complete checkpoint or the new one, never a
  truncated file.
* **Validation on load.** :func:`load_checkpoint` checks a magic line, the format
  version, the payload length and a SHA-256 checksum before decoding anything, and
  raises :class:`CheckpointError` (naming the file) on a foreign, truncated or corrupt
  file -- the caller can then refuse to run instead of overwriting it.

File layout (format version 1)
------------------------------
::

    bayesstruct-checkpoint\n                       magic line
    {"format_version": 1, "length": n, "sha256": h}\n   JSON header
    <n bytes of payload>                           an uncompressed .npz (zip) archive

The payload is read with ``numpy.load(..., allow_pickle=False)``: it holds the arrays of
the state as ``.npy`` members plus one member ``__tree__``, the UTF-8 JSON of the
nested structure ``{"sampler_state": ..., "history": ..., "meta": ...}`` in which each
array is replaced by a reference. **No pickle is ever written or read**, so loading a
file from an untrusted source cannot execute code.

What can be stored
------------------
``None``, ``bool``, ``int`` (of any size up to Python's 4300-digit limit on converting
ints to text, e.g. a PCG64 state), ``float`` (bit-exact, ±inf included; a NaN comes back as
NaN, without its sign or payload bits), ``str``, ``bytes`` (a ``bytearray`` comes back as
``bytes``), ``list``, ``tuple``, ``dict`` (any keys of these kinds), NumPy scalars (their dtype is kept), NumPy arrays and PyTorch tensors of
non-object dtype (dtype and values kept; tensors come back on the CPU). Anything else
(custom objects, object arrays) is refused at save time with
:class:`~bayesstruct.exceptions.InvalidArgumentError`, so a checkpoint never depends on
importing a class to be read.

Examples
--------
>>> import numpy as np, tempfile, os
>>> rng = np.random.default_rng(0)
>>> path = os.path.join(tempfile.mkdtemp(), "chain.ckpt")
>>> _ = save_checkpoint(path, {"rng": rng.bit_generator.state, "x": np.arange(3.0)}, [1, 2], {"seed": 0})
>>> ck = load_checkpoint(path)
>>> ck.sampler_state["x"], ck.history, ck.meta
(array([0., 1., 2.]), [1, 2], {'seed': 0})
>>> r2 = np.random.default_rng(); r2.bit_generator.state = ck.sampler_state["rng"]
>>> bool(r2.random() == rng.random())
True
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.io import _as_path, write_atomic

__all__ = ["FORMAT_VERSION", "MAGIC", "Checkpoint", "CheckpointError", "save_checkpoint", "load_checkpoint"]

#: first line of every checkpoint file
MAGIC = b"bayesstruct-checkpoint\n"
#: version written by :func:`save_checkpoint`; :func:`load_checkpoint` reads versions <= this one
FORMAT_VERSION = 1

_TREE = "__tree__"
_MARK = "__bs__"  # key of the one-entry dicts that encode non-JSON values in the tree
_MAX_HEADER = 4096


class CheckpointError(InvalidArgumentError):
    """A checkpoint file is missing, foreign, truncated or corrupt (the message names the file)."""


@dataclass(frozen=True)
class Checkpoint:
    """The content of a checkpoint file.

    Attributes
    ----------
    sampler_state : Any
        What was passed to :func:`save_checkpoint` as ``sampler_state`` (e.g. a sampler's
        ``state_dict()``), with arrays, tensors and NumPy scalars restored exactly.
    history : Any
        The recorded statistics so far.
    meta : Any
        Free-form metadata (run settings, data description).
    format_version : int
        The version of the file format that was read.
    path : pathlib.Path
        The file it was read from.
    """

    sampler_state: Any
    history: Any
    meta: Any
    format_version: int
    path: Path

    def __repr__(self) -> str:
        return f"Checkpoint(path={str(self.path)!r}, format_version={self.format_version})"


# -- encoding -----------------------------------------------------------------------------
class _Encoder:
    """Nested Python/NumPy/torch value -> JSON-able tree + dict of arrays."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def _store(self, a: np.ndarray, where: str) -> str:
        if a.dtype.hasobject or a.dtype.kind == "V":
            raise InvalidArgumentError(f"checkpoint: {where} is an array of dtype {a.dtype}, which needs pickle; "
                                       "store numbers, strings or plain containers")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = a if a.flags.c_contiguous else a.copy(order="C")
        return key

    def encode(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int) and not isinstance(value, np.integer):
            return int(value)  # int subclasses (IntEnum) are stored as plain ints
        if isinstance(value, float) and not isinstance(value, np.floating):
            return {_MARK: "float", "hex": float(value).hex()}  # bit-exact, inf included; every NaN as "nan"
        if isinstance(value, np.generic):
            return {_MARK: "scalar", "key": self._store(np.asarray(value), where)}
        if isinstance(value, np.ndarray):
            return {_MARK: "ndarray", "key": self._store(value, where)}
        if torch.is_tensor(value):
            t = value.detach().cpu()
            if t.dtype == torch.bfloat16:
                raise InvalidArgumentError(f"checkpoint: {where} is a bfloat16 tensor, which NumPy cannot store; "
                                           "convert it to float32 first")
            return {_MARK: "tensor", "key": self._store(t.numpy(), where)}
        if isinstance(value, (bytes, bytearray)):
            return {_MARK: "bytes", "b64": base64.b64encode(bytes(value)).decode("ascii")}
        if isinstance(value, tuple):
            return {_MARK: "tuple", "items": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            if all(isinstance(k, str) and k != _MARK for k in value):
                return {k: self.encode(v, f"{where}[{k!r}]") for k, v in value.items()}
            return {_MARK: "dict", "items": [[self.encode(k, f"{where} key"), self.encode(v, f"{where}[{k!r}]")]
                                             for k, v in value.items()]}
        raise InvalidArgumentError(
            f"checkpoint: {where} has type {type(value).__name__}, which a checkpoint cannot store without pickle; "
            "use None, bool, int, float, str, bytes, list, tuple, dict, NumPy arrays/scalars or torch tensors")


def _decode(node: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    if not isinstance(node, dict):
        return node
    kind = node.get(_MARK)
    if kind is None:
        return {k: _decode(v, arrays) for k, v in node.items()}
    if kind == "float":
        return float.fromhex(node["hex"])
    if kind == "scalar":
        return arrays[node["key"]][()]
    if kind == "ndarray":
        return arrays[node["key"]]
    if kind == "tensor":
        return torch.from_numpy(np.array(arrays[node["key"]]))
    if kind == "bytes":
        return base64.b64decode(node["b64"])
    if kind == "tuple":
        return tuple(_decode(v, arrays) for v in node["items"])
    if kind == "dict":
        return {_freeze(_decode(k, arrays)): _decode(v, arrays) for k, v in node["items"]}
    raise ValueError(f"unknown tree node kind {kind!r}")


def _freeze(key: Any) -> Any:
    return tuple(_freeze(k) for k in key) if isinstance(key, (list, tuple)) else key


# -- public API -----------------------------------------------------------------------------
def save_checkpoint(path: str | os.PathLike, sampler_state: Any, history: Any = None, meta: Any = None) -> Path:
    """Write a checkpoint to ``path`` atomically (temporary file, fsync, ``os.replace``).

    Parameters
    ----------
    path : str or path
        Target file; its directory must exist. An existing file is replaced only by a
        complete new one.
    sampler_state : Any
        The chain's state, typically ``sampler.state_dict()`` (including the RNG state).
    history : Any, optional
        Statistics recorded so far (e.g. one dict per sweep, or columns of numbers).
    meta : Any, optional
        Settings needed to check that a resume is compatible (data set, seed, ...).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    InvalidArgumentError
        If the directory does not exist, ``path`` is a directory, or a value cannot be
        stored without pickle (the message gives its location, e.g.
        ``sampler_state['moves'][2]``).
    """
    path = _as_path(path)
    if not path.parent.is_dir():
        raise InvalidArgumentError(f"`path`: directory {str(path.parent)!r} of the checkpoint does not exist")
    if path.is_dir():
        raise InvalidArgumentError(f"`path` {str(path)!r} is a directory; give a checkpoint file name")
    enc = _Encoder()
    tree = {"sampler_state": enc.encode(sampler_state, "sampler_state"), "history": enc.encode(history, "history"),
            "meta": enc.encode(meta, "meta")}
    arrays = dict(enc.arrays)
    arrays[_TREE] = np.frombuffer(json.dumps(tree, separators=(",", ":")).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    payload = buf.getvalue()
    header = {"format_version": FORMAT_VERSION, "length": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    write_atomic(path, MAGIC + json.dumps(header).encode("ascii") + b"\n" + payload)
    return path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    The magic line, format version, payload length and SHA-256 checksum are checked
    before the payload is decoded; the payload is read with ``allow_pickle=False``.

    Parameters
    ----------
    path : str or path

    Returns
    -------
    Checkpoint

    Raises
    ------
    CheckpointError
        (an :class:`~bayesstruct.exceptions.InvalidArgumentError`) naming ``path`` if the
        file is missing, not a bayesstruct checkpoint, of a newer format version,
        truncated, or fails its checksum.
    """
    try:
        path = _as_path(path)
    except InvalidArgumentError as exc:
        raise CheckpointError(str(exc)) from None
    name = repr(str(path))
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise CheckpointError(f"checkpoint {name} {what}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"checkpoint {name} cannot be read: {exc}") from None
    if not raw.startswith(MAGIC):
        if len(raw) < len(MAGIC) and MAGIC.startswith(raw):
            raise CheckpointError(f"checkpoint {name} is truncated ({len(raw)} bytes, inside its magic line)")
        raise CheckpointError(f"{name} is not a bayesstruct checkpoint (it does not start with {MAGIC!r}); "
                              "a foreign or corrupt file")
    end = raw.find(b"\n", len(MAGIC), len(MAGIC) + _MAX_HEADER)
    if end < 0:
        raise CheckpointError(f"checkpoint {name} is truncated or corrupt: its header line is incomplete")
    try:
        header = json.loads(raw[len(MAGIC):end].decode("ascii"))
        version, length, digest = int(header["format_version"]), int(header["length"]), str(header["sha256"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise CheckpointError(f"checkpoint {name} is corrupt: unreadable header") from None
    if version > FORMAT_VERSION or version < 1:
        raise CheckpointError(f"checkpoint {name} has format version {version}; this bayesstruct reads versions "
                              f"1..{FORMAT_VERSION} (upgrade bayesstruct to read it)")
    payload = raw[end + 1:]
    if len(payload) != length:
        what = "truncated" if len(payload) < length else "longer than its header says"
        raise CheckpointError(f"checkpoint {name} is {what}: header says {length} payload bytes, found {len(payload)}")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError(f"checkpoint {name} is corrupt: SHA-256 checksum mismatch")
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        tree = json.loads(arrays.pop(_TREE).tobytes().decode("utf-8"))
        return Checkpoint(_decode(tree["sampler_state"], arrays), _decode(tree["history"], arrays),
                          _decode(tree["meta"], arrays), version, path)
    except (ValueError, KeyError, TypeError, OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        # the checksum matched, so this is a file written by something else with our magic line
        raise CheckpointError(f"checkpoint {name} is corrupt: its payload cannot be decoded ({exc})") from None
