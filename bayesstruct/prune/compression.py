"""Deep Compression: weight sharing, centroid fine-tuning and a real compressed file.

Han, Mao & Dally, "Deep Compression" (arXiv:1510.00149, ICLR 2016): after pruning,

1. **weight sharing** (:func:`share_weights`) -- per layer, 1-D k-means over the surviving
   (non-zero) weights with ``2**bits - 1`` centroids, initialised linearly between the
   smallest and largest surviving weight (the paper's best initialisation), Lloyd
   iterations to convergence. Codebook index ``0`` is reserved for the pruned zeros, so a
   layer's codebook has ``2**bits`` entries ``(0, c_1, ..., c_{2**bits - 1})`` and every
   weight is ``codebook[assignment]``;
2. **centroid fine-tuning** (:func:`finetune_centroids`) -- with the assignments fixed,
   ``dL/dc_k = sum_{i: a_i = k} dL/dW_i`` (the paper's eq. 3), plain SGD on the centroids;
3. **Huffman coding of a sparse format** (:func:`compress` / :func:`decompress`) -- the
   positions of the non-zeros are stored as *relative* indices (the number of zeros skipped
   since the previous stored entry) of width ``index_bits``; a gap wider than
   ``2**index_bits - 1`` is bridged by *filler* entries (gap ``2**index_bits - 1``, weight
   index ``0``, i.e. an explicit zero), as in the paper's fig. 2. The weight indices and the
   relative indices are Huffman coded separately (:func:`bayesstruct.prune.huffman_encode`).

File layout written by :func:`compress` (integers big endian)::

    b"BSDC"  version (1 byte)  header length (4 bytes)  header (UTF-8 JSON: architecture + per-layer shapes)
    per module of the Sequential, in order:
      prunable layer: codebook (2**bits - 1 float32 LE centroids; index 0 is the implicit zero)
                      length (4 bytes) + HuffmanEncoded.to_bytes() of the weight indices
                      length (4 bytes) + HuffmanEncoded.to_bytes() of the relative indices
                      bias (float32 LE), if the layer has one
    CRC-32 of everything above (4 bytes)

Only ``nn.Sequential`` models of ``Linear``, ``Conv2d`` (zero padding), ``MaxPool2d``, ``ReLU``,
``Tanh``, ``Sigmoid`` and ``Flatten`` with float32 parameters can be written: the file must describe
the architecture so that :func:`decompress` rebuilds the model without the Python code.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from bayesstruct import _json
from bayesstruct.exceptions import InvalidArgumentError, warn_not_converged
from bayesstruct.io import write_atomic
from bayesstruct.prune.huffman import HuffmanFormatError, _as_int_array, huffman_decode, huffman_encode
from bayesstruct.prune.saliency import _batches, _check_batches, _check_model_takes, _raw_weight, prunable_layers
from bayesstruct.prune.training import _check_loss_fn

__all__ = [
    "CompressionFormatError",
    "OutputExistsError",
    "SharedWeights",
    "LayerCompression",
    "CompressionReport",
    "share_weights",
    "finetune_centroids",
    "relative_indices",
    "decode_relative_indices",
    "compress",
    "decompress",
]

_MAGIC = b"BSDC"
_VERSION = 1
_MAX_LLOYD = 1000


class CompressionFormatError(InvalidArgumentError):
    """A Deep Compression file (or the model to write) is corrupt, truncated or unsupported."""


class OutputExistsError(InvalidArgumentError, FileExistsError):
    """The file :func:`compress` would write already exists and ``overwrite=True`` was not given.

    Both a :class:`~bayesstruct.exceptions.BayesStructError` (an ``InvalidArgumentError``) and
    the builtin :class:`FileExistsError`.
    """


# ----------------------------------------------------------------------------- weight sharing


def _check_bits(bits: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not lo <= int(bits) <= hi:
        raise InvalidArgumentError(f"`{name}` must be an integer in {lo}..{hi}; got {bits!r}")
    return int(bits)


def _assign(w: torch.Tensor, c: torch.Tensor, chunk: int = 1 << 15) -> torch.Tensor:
    """Index (1-based) of the nearest centroid of each ``w`` (ties: the lower index)."""
    out = torch.empty(w.numel(), dtype=torch.long)
    for s in range(0, w.numel(), chunk):
        out[s : s + chunk] = torch.argmin((w[s : s + chunk, None] - c[None, :]).abs(), dim=1) + 1
    return out


def _kmeans_1d(w: torch.Tensor, k: int, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on float32 values ``w`` with linear init; returns ``(centroids (k,), labels (n,) in 1..k)``."""
    if w.numel() == 0:
        return torch.zeros(k, dtype=torch.float32), torch.zeros(0, dtype=torch.long)
    lo, hi = float(w.min()), float(w.max())
    c = torch.linspace(lo, hi, k, dtype=torch.float64).to(torch.float32)
    a = _assign(w, c)
    w64 = w.double()
    for _ in range(_MAX_LLOYD):
        sums = torch.zeros(k + 1, dtype=torch.float64).index_add_(0, a, w64)[1:]
        cnt = torch.bincount(a, minlength=k + 1)[1:]
        c = torch.where(cnt > 0, sums / cnt.clamp(min=1), c.double()).to(torch.float32)  # empty cluster: keep centroid
        a_new = _assign(w, c)
        if torch.equal(a_new, a):
            return c, a_new
        a = a_new
    warn_not_converged(f"share_weights: k-means of layer {name!r} did not converge in {_MAX_LLOYD} Lloyd iterations")
    return c, a


@dataclass
class SharedWeights:
    """Per-layer codebooks and assignments of shared weights (mutable: fine-tuning updates the codebooks).

    Attributes
    ----------
    codebooks : dict of str to Tensor
        Per layer name, float32 ``(2**bits,)``; ``codebooks[n][0] == 0`` is the pruned zero.
    assignments : dict of str to Tensor
        Per layer name, int64 of the weight's shape, values in ``0..2**bits - 1``
        (``0`` exactly where the weight is pruned).
    bits : dict of str to int
        Bits per weight index, per layer.
    """

    codebooks: dict[str, torch.Tensor]
    assignments: dict[str, torch.Tensor]
    bits: dict[str, int] = field(default_factory=dict)

    def weights(self) -> dict[str, torch.Tensor]:
        """The quantised weights ``codebook[assignment]`` per layer (float32)."""
        return {n: self.codebooks[n][a] for n, a in self.assignments.items()}

    def apply(self, model: nn.Module) -> nn.Module:
        """Write ``codebook[assignment]`` into ``model``'s prunable weights (masks are kept)."""
        layers = dict(prunable_layers(model))
        missing = [n for n in self.assignments if n not in layers]
        if missing:
            raise InvalidArgumentError(f"`model` has no prunable layers {missing} that these shared weights describe")
        with torch.no_grad():
            for n, w in self.weights().items():
                raw = _raw_weight(layers[n])
                if raw.shape != w.shape:
                    raise InvalidArgumentError(f"layer {n!r}: weight shape {tuple(raw.shape)} != shared shape {tuple(w.shape)}")
                raw.copy_(w.to(raw.dtype))
        return model

    def to_dict(self) -> dict[str, Any]:
        return {
            n: {
                "bits": self.bits.get(n),
                "codebook": self.codebooks[n].tolist(),
                "num_nonzero": int((a != 0).sum()),
                "shape": list(a.shape),
            }
            for n, a in self.assignments.items()
        }

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}: {self.bits.get(n)} bits, {int((a != 0).sum())}/{a.numel()} non-zero" for n, a in self.assignments.items())
        return f"SharedWeights({inner})"


def share_weights(model: nn.Module, bits: int | Mapping[str, int] = 5, *, init: str = "linear") -> SharedWeights:
    """Per-layer k-means weight sharing of a pruned model (Han, Mao & Dally 2015, sec. 3).

    Each layer's non-zero weights ``w`` (``(n,)``) are clustered into ``K = 2**bits - 1``
    clusters minimising ``sum_k sum_{w_i in c_k} |w_i - c_k|^2``; centroids start evenly
    spaced on ``[min w, max w]`` (``init="linear"``) and Lloyd iterations run until the
    assignments stop changing (deterministic). Index ``0`` of each codebook is reserved for
    the pruned (zero) weights, which stay zero. The quantised weights ``codebook[assignment]``
    are written into ``model`` (in place; pruning masks are kept).

    Parameters
    ----------
    model : nn.Module
        Its ``nn.Linear``/``nn.Conv2d`` weights are shared (usually after :func:`~bayesstruct.prune.prune`).
    bits : int or mapping of layer name to int
        Bits per weight index, ``1..16`` (the paper: 8 for conv, 5 for fc layers).
    init : {"linear"}
        Centroid initialisation; only the paper's recommended linear init is provided.

    Returns
    -------
    SharedWeights

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    >>> shared = share_weights(net, bits=2)
    >>> int(torch.unique(net[0].weight).numel()) <= 3
    True
    """
    if init != "linear":
        raise InvalidArgumentError(f"`init` must be 'linear' (the paper's choice); got {init!r}")
    layers = prunable_layers(model)
    if not layers:
        raise InvalidArgumentError(f"`model` ({type(model).__name__}) has no nn.Linear/nn.Conv2d weights to share")
    names = [n for n, _ in layers]
    if isinstance(bits, Mapping):
        unknown = [n for n in bits if n not in names]
        missing = [n for n in names if n not in bits]
        if unknown or missing:
            raise InvalidArgumentError(f"`bits` as a mapping must name exactly the prunable layers {names}; missing {missing}, unknown {unknown}")
        per = {n: _check_bits(bits[n], f"bits[{n!r}]", 1, 16) for n in names}
    else:
        b = _check_bits(bits, "bits", 1, 16)
        per = {n: b for n in names}
    codebooks, assignments = {}, {}
    for n, mod in layers:
        w = mod.weight.detach().to(torch.float32).reshape(-1)
        if not torch.isfinite(w).all():
            raise InvalidArgumentError(f"layer {n!r} has NaN or infinite weights")
        nz = w != 0
        k = 2 ** per[n] - 1
        c, a_nz = _kmeans_1d(w[nz], k, n)
        a = torch.zeros(w.numel(), dtype=torch.long)
        a[nz] = a_nz
        codebooks[n] = torch.cat([torch.zeros(1, dtype=torch.float32), c])
        assignments[n] = a.reshape(mod.weight.shape)
    shared = SharedWeights(codebooks, assignments, per)
    shared.apply(model)
    return shared


def finetune_centroids(
    model: nn.Module,
    shared: SharedWeights,
    loss_fn: Callable,
    data: Any,
    num_steps: int = 100,
    lr: float = 1e-2,
) -> SharedWeights:
    """Fine-tune the shared centroids by SGD (Han, Mao & Dally 2015, eq. 3).

    With the assignments fixed, ``dL/dc_k = sum_{i: a_i = k} dL/dW_i`` and
    ``c_k <- c_k - lr * dL/dc_k`` for ``k >= 1``; ``c_0 = 0`` (the pruned weights) never moves.
    Only the centroids train (biases are left as they are). Each step uses the next batch of
    ``data`` (cycling). ``shared`` is updated in place, applied to ``model`` and returned.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(model(x), y)`` -> scalar.
    data : (x, y) tuple or iterable of (x, y) batches
    num_steps : int >= 0
    lr : float > 0
        SGD step size. A centroid's gradient is a *sum* over its cluster, so it grows with the
        cluster's size: the default ``1e-2`` suits clusters of hundreds of weights (LeNet-300-100
        at 5 bits after pruning). Measured on 8x8 digits (64-300-100-10 pruned to 10%, 3-bit
        sharing, 200 steps of batch 128): training cross-entropy 0.45 after sharing, 0.18 with
        ``lr=1e-3``, 0.094 with ``1e-2``, 0.071 with ``1e-1``, divergence with ``1``.
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 0:
        raise InvalidArgumentError(f"`num_steps` must be an integer >= 0; got {num_steps!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not np.isfinite(lr) or lr <= 0:
        raise InvalidArgumentError(f"`lr` must be a finite number > 0; got {lr!r}")
    if not isinstance(shared, SharedWeights):
        raise InvalidArgumentError(f"`shared` must be the SharedWeights returned by share_weights; got {type(shared).__name__}")
    layers = dict(prunable_layers(model))
    if not callable(loss_fn):
        raise InvalidArgumentError(f"`loss_fn` must be a callable loss_fn(model(x), y) -> scalar; got {type(loss_fn).__name__}")
    batches = _batches(data)
    _check_batches(batches)
    for x, y in batches:  # every batch, before the first step changes `shared` and `model`
        _check_model_takes(model, x, y, F.cross_entropy if loss_fn is F.cross_entropy else None)
        _check_loss_fn(model, loss_fn, x, y, x.shape[0])
    shared.apply(model)
    params = list(model.parameters())
    for step in range(int(num_steps)):
        x, y = batches[step % len(batches)]
        for p in params:
            p.grad = None
        loss = loss_fn(model(x), y)
        loss.backward()
        with torch.no_grad():
            for n, a in shared.assignments.items():
                g = _raw_weight(layers[n]).grad
                if g is None:
                    continue
                cb = shared.codebooks[n]
                gc = torch.zeros(cb.numel(), dtype=torch.float64).index_add_(0, a.reshape(-1), g.reshape(-1).double())
                gc[0] = 0.0  # the pruned zero is not a trainable centroid
                shared.codebooks[n] = (cb.double() - lr * gc).to(torch.float32)
        shared.apply(model)
    for p in params:
        p.grad = None
    return shared


# ----------------------------------------------------------------------------- sparse relative indices


def relative_indices(assignment: Any, index_bits: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Sparse relative-index form of a flattened assignment (Han, Mao & Dally 2015, fig. 2).

    Each stored entry is ``(gap, q)``: ``gap`` zeros are skipped, then the entry's position
    holds weight index ``q``. A gap above ``2**index_bits - 1`` is bridged by filler entries
    ``(2**index_bits - 1, 0)`` (an explicit zero), each covering ``2**index_bits`` positions.

    Parameters
    ----------
    assignment : array-like of int, any shape (flattened row-major)
    index_bits : int, 1..16

    Returns
    -------
    (gaps, indices) : two int64 arrays of shape ``(num_entries,)``
    """
    b = _check_bits(index_bits, "index_bits", 1, 16)
    try:
        flat = np.asarray(assignment.detach().cpu() if torch.is_tensor(assignment) else assignment).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"`assignment` must be an array of non-negative integers; got {exc}") from None
    a = _as_int_array(flat, "assignment")
    max_gap = 2**b - 1
    pos = np.flatnonzero(a)
    raw_gaps = np.diff(np.concatenate([[-1], pos])) - 1
    gaps, idx = [], []
    for p, g in zip(pos.tolist(), raw_gaps.tolist()):
        while g > max_gap:
            gaps.append(max_gap)
            idx.append(0)
            g -= max_gap + 1
        gaps.append(g)
        idx.append(int(a[p]))
    return np.asarray(gaps, dtype=np.int64), np.asarray(idx, dtype=np.int64)


def decode_relative_indices(gaps: Any, indices: Any, numel: int) -> np.ndarray:
    """Inverse of :func:`relative_indices`: the flat assignment ``(numel,)`` (int64)."""
    if isinstance(numel, bool) or not isinstance(numel, (int, np.integer)) or numel < 0:
        raise InvalidArgumentError(f"`numel` must be an integer >= 0 (the layer's number of weights); got {numel!r}")
    try:
        gaps, indices = _as_int_array(gaps, "gaps"), _as_int_array(indices, "indices")
    except InvalidArgumentError as exc:
        raise CompressionFormatError(str(exc)) from None
    if gaps.shape != indices.shape or gaps.ndim != 1:
        raise CompressionFormatError(f"relative indices and weight indices differ in length ({gaps.shape} vs {indices.shape})")
    if (gaps < 0).any() or (indices < 0).any():
        raise CompressionFormatError("relative indices and weight indices must be non-negative")
    pos = np.cumsum(gaps + 1) - 1
    if pos.size and pos[-1] >= numel:
        raise CompressionFormatError(f"relative indices run past the end of the layer ({int(pos[-1]) + 1} > {numel} positions)")
    out = np.zeros(numel, dtype=np.int64)
    out[pos] = indices
    return out


# ----------------------------------------------------------------------------- architecture spec


def _module_spec(i: int, m: nn.Module) -> dict[str, Any]:
    kind = parametrize.type_before_parametrizations(m)  # a pruned layer is a ParametrizedLinear
    if kind is nn.Linear:
        return {"type": "Linear", "in_features": m.in_features, "out_features": m.out_features, "bias": m.bias is not None}
    if kind is nn.Conv2d:
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise CompressionFormatError(f"module {i} (Conv2d): only numeric zero padding is supported; got padding={m.padding!r}, padding_mode={m.padding_mode!r}")
        return {
            "type": "Conv2d", "in_channels": m.in_channels, "out_channels": m.out_channels,
            "kernel_size": list(m.kernel_size), "stride": list(m.stride), "padding": list(m.padding),
            "dilation": list(m.dilation), "groups": m.groups, "bias": m.bias is not None,
        }
    if kind in (nn.ReLU, nn.Tanh, nn.Sigmoid):
        return {"type": kind.__name__}
    if kind is nn.Flatten:
        return {"type": "Flatten", "start_dim": m.start_dim, "end_dim": m.end_dim}
    if kind is nn.MaxPool2d:
        pair = lambda v: list(v) if isinstance(v, (tuple, list)) else [v, v]  # noqa: E731
        if m.return_indices:
            raise CompressionFormatError(f"module {i} (MaxPool2d): return_indices=True is not supported")
        return {"type": "MaxPool2d", "kernel_size": pair(m.kernel_size), "stride": pair(m.stride), "padding": pair(m.padding),
                "dilation": pair(m.dilation), "ceil_mode": bool(m.ceil_mode)}
    raise CompressionFormatError(
        f"compress cannot describe module {i} ({kind.__name__}); supported: Linear, Conv2d, MaxPool2d, ReLU, Tanh, Sigmoid, Flatten "
        "inside one nn.Sequential"
    )


def _check_spec_types(s: dict[str, Any]) -> None:
    """Integer, pair and bool fields of one architecture entry (torch accepts some bad ones until the forward pass)."""
    is_int = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    pairs = {"Conv2d": ("kernel_size", "stride", "padding", "dilation"), "MaxPool2d": ("kernel_size", "stride", "padding", "dilation")}
    ints = {"Linear": ("in_features", "out_features"), "Conv2d": ("in_channels", "out_channels", "groups"),
            "Flatten": ("start_dim", "end_dim")}
    bools = {"Linear": ("bias",), "Conv2d": ("bias",), "MaxPool2d": ("ceil_mode",)}
    t = s["type"]
    for k in ints.get(t, ()):
        if not is_int(s[k]):
            raise CompressionFormatError(f"corrupt Deep Compression file: {t} field {k!r} is {s[k]!r}, not an integer")
    for k in pairs.get(t, ()):
        if not (isinstance(s[k], list) and len(s[k]) == 2 and all(is_int(v) for v in s[k])):
            raise CompressionFormatError(f"corrupt Deep Compression file: {t} field {k!r} is {s[k]!r}, not a pair of integers")
    for k in bools.get(t, ()):
        if not isinstance(s[k], bool):
            raise CompressionFormatError(f"corrupt Deep Compression file: {t} field {k!r} is {s[k]!r}, not a bool")


def _build(spec: list[dict[str, Any]]) -> nn.Sequential:
    mods = []
    try:
        for s in spec:
            t = s["type"]
            _check_spec_types(s)
            if t == "Linear":
                mods.append(nn.Linear(s["in_features"], s["out_features"], bias=s["bias"], dtype=torch.float32))
            elif t == "Conv2d":
                mods.append(nn.Conv2d(s["in_channels"], s["out_channels"], tuple(s["kernel_size"]), stride=tuple(s["stride"]),
                                      padding=tuple(s["padding"]), dilation=tuple(s["dilation"]), groups=s["groups"],
                                      bias=s["bias"], dtype=torch.float32))
            elif t in ("ReLU", "Tanh", "Sigmoid"):
                mods.append(getattr(nn, t)())
            elif t == "Flatten":
                mods.append(nn.Flatten(s["start_dim"], s["end_dim"]))
            elif t == "MaxPool2d":
                mods.append(nn.MaxPool2d(tuple(s["kernel_size"]), stride=tuple(s["stride"]), padding=tuple(s["padding"]),
                                         dilation=tuple(s["dilation"]), ceil_mode=bool(s["ceil_mode"])))
            else:
                raise CompressionFormatError(f"corrupt Deep Compression file: unknown module type {t!r}")
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        if isinstance(exc, CompressionFormatError):
            raise
        raise CompressionFormatError(f"corrupt Deep Compression file: bad architecture entry ({exc})") from None
    return nn.Sequential(*mods)


# ----------------------------------------------------------------------------- report


@dataclass(frozen=True)
class LayerCompression:
    """Sizes of one compressed layer (bits are payload bits, not counting container framing)."""

    name: str
    num_weights: int
    num_nonzero: int
    num_fillers: int
    weight_bits: int
    index_bits: int
    codebook_bits: int
    table_bits: int
    bias_bits: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CompressionReport:
    """What :func:`compress` wrote.

    ``total_bytes`` is the size of the file on disk; ``dense_bytes = 4 * num_parameters``
    (the float32 model); ``compression_ratio = dense_bytes / total_bytes``.
    """

    path: str
    layers: tuple[LayerCompression, ...]
    total_bytes: int
    dense_bytes: int

    @property
    def compression_ratio(self) -> float:
        return self.dense_bytes / self.total_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "layers": [l.to_dict() for l in self.layers],
            "total_bytes": self.total_bytes,
            "dense_bytes": self.dense_bytes,
            "compression_ratio": self.compression_ratio,
        }

    def to_json(self, **kwargs: Any) -> str:
        return _json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        rows = [f"{'layer':<10}{'nonzero':>9}{'fillers':>9}{'w bits':>9}{'idx bits':>9}{'cb bits':>9}{'tbl bits':>9}"]
        for l in self.layers:
            rows.append(f"{l.name:<10}{l.num_nonzero:>9}{l.num_fillers:>9}{l.weight_bits:>9}{l.index_bits:>9}{l.codebook_bits:>9}{l.table_bits:>9}")
        rows.append(f"{self.total_bytes} bytes on disk, dense float32 {self.dense_bytes} bytes: {self.compression_ratio:.2f}x")
        return "\n".join(rows)


# ----------------------------------------------------------------------------- compress / decompress


def _check_path(path: Any) -> str:
    try:
        path = os.fspath(path)
    except TypeError:
        raise InvalidArgumentError(f"`path` must be a str or os.PathLike file name; got {type(path).__name__}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path:
        raise InvalidArgumentError("`path` must be a non-empty file name")
    return path


def _f32_bytes(t: torch.Tensor) -> bytes:
    return t.detach().cpu().to(torch.float32).numpy().astype("<f4").tobytes()


def compress(
    model: nn.Module, shared: SharedWeights, path: str | os.PathLike, *, index_bits: int = 5, overwrite: bool = False
) -> CompressionReport:
    """Write ``model`` with its shared weights to ``path`` in the Deep Compression format.

    See the module docstring for the layout. The file is written to a temporary file in the
    same folder and moved into place with :func:`os.replace` (atomic). An existing file at
    ``path`` is refused unless ``overwrite=True`` (like the ``bayesstruct prune`` command
    without ``--overwrite``).

    Parameters
    ----------
    model : nn.Sequential
        Of Linear/Conv2d/MaxPool2d/ReLU/Tanh/Sigmoid/Flatten, float32 parameters; its prunable weights
        must equal ``shared``'s ``codebook[assignment]`` (as :func:`share_weights` and
        :func:`finetune_centroids` leave them).
    shared : SharedWeights
    path : path-like
    index_bits : int, 1..16
        Width of the relative indices (the paper: 5 for fc, 8 for conv layers).
    overwrite : bool
        Replace an existing file at ``path`` (default ``False``: refuse it, writing nothing).

    Returns
    -------
    CompressionReport

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false (also a ``FileExistsError`` and an
        :class:`~bayesstruct.exceptions.InvalidArgumentError`); the file is left as it was.
    """
    b = _check_bits(index_bits, "index_bits", 1, 16)
    path = _check_path(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise InvalidArgumentError(f"`path`: directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise InvalidArgumentError(f"`path` {path!r} is a directory; give a file name")
    if not isinstance(overwrite, bool):
        raise InvalidArgumentError(f"`overwrite` must be True or False; got {overwrite!r}")
    if os.path.lexists(path) and not overwrite:
        raise OutputExistsError(f"`path` {path!r} already exists; pass overwrite=True to replace it, "
                                "or choose another path (nothing was written)")
    if not isinstance(model, nn.Sequential):
        raise CompressionFormatError(
            f"compress supports an nn.Sequential of Linear/Conv2d/MaxPool2d/ReLU/Tanh/Sigmoid/Flatten; got {type(model).__name__}. "
            "Rewrite the model as an nn.Sequential to compress it."
        )
    if not isinstance(shared, SharedWeights):
        raise InvalidArgumentError(f"`shared` must be the SharedWeights returned by share_weights; got {type(shared).__name__}")
    for name, p in model.named_parameters():
        if p.dtype != torch.float32:
            raise InvalidArgumentError(f"parameter {name!r} is {p.dtype}; compress stores float32 exactly: call model.float() first")
    spec = [_module_spec(i, m) for i, m in enumerate(model)]
    layer_names = [n for n, _ in prunable_layers(model)]
    if sorted(layer_names) != sorted(shared.assignments):
        raise InvalidArgumentError(f"`shared` describes layers {sorted(shared.assignments)} but the model's are {layer_names}")
    header_layers = []
    body = bytearray()
    reports = []
    for i, m in enumerate(model):
        if not isinstance(m, (nn.Linear, nn.Conv2d)):
            continue
        n = str(i)
        a = shared.assignments[n]
        cb = shared.codebooks[n]
        bits = shared.bits.get(n) or int(np.log2(cb.numel()))
        if cb.numel() != 2**bits or float(cb[0]) != 0.0:
            raise InvalidArgumentError(f"layer {n!r}: codebook must have 2**bits = {2**bits} entries with entry 0 == 0")
        if tuple(a.shape) != tuple(m.weight.shape):
            raise InvalidArgumentError(f"layer {n!r}: assignment shape {tuple(a.shape)} != weight shape {tuple(m.weight.shape)}")
        if not torch.equal(m.weight.detach(), cb[a]):
            raise InvalidArgumentError(
                f"layer {n!r}: the model's weights are not codebook[assignment]; call shared.apply(model) before compress"
            )
        gaps, idx = relative_indices(a, b)
        enc_w, enc_i = huffman_encode(idx), huffman_encode(gaps)
        wb, ib = enc_w.to_bytes(), enc_i.to_bytes()
        body += _f32_bytes(cb[1:])
        body += struct.pack(">I", len(wb)) + wb
        body += struct.pack(">I", len(ib)) + ib
        bias_bits = 0
        if m.bias is not None:
            body += _f32_bytes(m.bias)
            bias_bits = 32 * m.bias.numel()
        header_layers.append({"module": i, "bits": bits, "index_bits": b, "shape": list(a.shape)})
        reports.append(
            LayerCompression(
                # non-zero *weights*: an assignment to a centroid that fine-tuning moved to exactly 0 is a zero
                name=n, num_weights=a.numel(), num_nonzero=int((cb[a] != 0).sum()), num_fillers=int((idx == 0).sum()),
                weight_bits=enc_w.payload_bits, index_bits=enc_i.payload_bits, codebook_bits=32 * (cb.numel() - 1),
                table_bits=enc_w.table_bits + enc_i.table_bits, bias_bits=bias_bits,
            )
        )
    header = json.dumps({"format": "bayesstruct-deep-compression", "arch": spec, "layers": header_layers}, separators=(",", ":")).encode()
    out = bytearray(_MAGIC) + bytes([_VERSION]) + struct.pack(">I", len(header)) + header + body
    out += struct.pack(">I", zlib.crc32(bytes(out)))
    write_atomic(os.path.abspath(path), bytes(out))
    dense = 4 * sum(p.numel() for p in model.parameters())
    return CompressionReport(path=path, layers=tuple(reports), total_bytes=os.path.getsize(path), dense_bytes=dense)


class _Reader:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise CompressionFormatError(f"truncated Deep Compression file: ran out of bytes reading {what}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u32(self, what: str) -> int:
        return struct.unpack(">I", self.take(4, what))[0]

    def f32(self, count: int, what: str) -> torch.Tensor:
        return torch.from_numpy(np.frombuffer(self.take(4 * count, what), dtype="<f4").astype(np.float32).copy())


def decompress(path: str | os.PathLike) -> nn.Sequential:
    """Rebuild the model written by :func:`compress` (plain float32 ``nn.Sequential``, no masks).

    Its weights are exactly ``codebook[assignment]``, so its outputs equal the quantised
    model's bit for bit.

    Raises
    ------
    CompressionFormatError
        Not a Deep Compression file, an unsupported version, a truncated or corrupt file
        (CRC-32 mismatch, inconsistent header or Huffman streams).
    """
    path = _check_path(path)
    if os.path.isdir(path):
        raise InvalidArgumentError(f"`path` {path!r} is a directory, not a Deep Compression file")
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"`path`: no such file {path!r}")
    with open(path, "rb") as f:
        data = f.read()
    if data[: len(_MAGIC)] != _MAGIC:
        raise CompressionFormatError(f"{os.fspath(path)!r} is not a bayesstruct Deep Compression file (magic {data[:4]!r}, expected {_MAGIC!r})")
    if len(data) < len(_MAGIC) + 1 + 4 + 4:
        raise CompressionFormatError(f"truncated Deep Compression file {os.fspath(path)!r}: {len(data)} bytes, "
                                     "shorter than its fixed header")
    if data[len(_MAGIC)] != _VERSION:
        raise CompressionFormatError(f"unsupported Deep Compression file version {data[len(_MAGIC)]}; this bayesstruct reads version {_VERSION}")
    if zlib.crc32(data[:-4]) != struct.unpack(">I", data[-4:])[0]:
        raise CompressionFormatError(f"corrupt or truncated Deep Compression file {os.fspath(path)!r}: CRC-32 checksum mismatch")
    r = _Reader(data[:-4], len(_MAGIC) + 1)
    try:
        header = json.loads(r.take(r.u32("the header length"), "the header").decode("utf-8"))
        model = _build(header["arch"])
        layers = {int(l["module"]): l for l in header["layers"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise CompressionFormatError(f"corrupt Deep Compression file: bad header ({exc})") from None
    with torch.no_grad():
        for i, m in enumerate(model):
            if not isinstance(m, (nn.Linear, nn.Conv2d)):
                continue
            if i not in layers:
                raise CompressionFormatError(f"corrupt Deep Compression file: no layer record for module {i}")
            meta = layers[i]
            try:
                bits, ib, shape = int(meta["bits"]), int(meta["index_bits"]), tuple(int(s) for s in meta["shape"])
            except (KeyError, TypeError, ValueError) as exc:
                raise CompressionFormatError(f"corrupt Deep Compression file: bad layer record {meta!r} ({exc})") from None
            if shape != tuple(m.weight.shape) or not 1 <= bits <= 16 or not 1 <= ib <= 16:
                raise CompressionFormatError(f"corrupt Deep Compression file: layer {i} record {meta!r} disagrees with its architecture")
            cb = torch.cat([torch.zeros(1, dtype=torch.float32), r.f32(2**bits - 1, f"the codebook of layer {i}")])
            try:
                idx = huffman_decode(r.take(r.u32(f"layer {i} weight stream length"), f"layer {i} weight stream"))
                gaps = huffman_decode(r.take(r.u32(f"layer {i} index stream length"), f"layer {i} index stream"))
            except HuffmanFormatError as exc:
                raise CompressionFormatError(f"corrupt Deep Compression file: layer {i}: {exc}") from exc
            if idx.size != gaps.size:
                raise CompressionFormatError(f"corrupt Deep Compression file: layer {i} has {idx.size} weight indices but "
                                             f"{gaps.size} relative indices")
            if not bool(torch.isfinite(cb).all()):
                raise CompressionFormatError(f"corrupt Deep Compression file: the codebook of layer {i} is not finite")
            if idx.size and (idx.max() >= 2**bits or gaps.max() >= 2**ib):
                raise CompressionFormatError(f"corrupt Deep Compression file: layer {i} has indices outside its {bits}/{ib}-bit range")
            a = torch.from_numpy(decode_relative_indices(gaps, idx, m.weight.numel())).reshape(shape)
            m.weight.copy_(cb[a])
            if m.bias is not None:
                bias = r.f32(m.bias.numel(), f"the bias of layer {i}")
                if not bool(torch.isfinite(bias).all()):
                    raise CompressionFormatError(f"corrupt Deep Compression file: the bias of layer {i} is not finite")
                m.bias.copy_(bias)
    if r.pos != len(r.data):
        raise CompressionFormatError(f"corrupt Deep Compression file: {len(r.data) - r.pos} unexpected trailing byte(s)")
    return model
