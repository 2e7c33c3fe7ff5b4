"""One honest scale for every pruning method: bits.

:func:`account` measures a (pruned, quantised, compressed, or variational) classifier:
per layer the non-zero weights and the bits to store them, the total size, the
compression ratio against the dense float32 model, the test error and the two-part
description length (Rissanen's MDL, the lecture's ``L(M) + L(D | M)``)

    L(D | M) = sum_n -log2 p(y_n | x_n, M)          (bits of the labels given the model)
    L(M)     = the bits that encode the model.

How the weights are stored (and so ``L(M)``) depends on what the method produced:

``"dense"``
    A layer nothing was removed from: ``32`` bits per weight (float32), no index.
``"sparse"``
    A pruned, unquantised layer: the Deep Compression sparse format with float32 values --
    one stored entry per non-zero weight plus one *filler* entry (an explicit zero) for
    every gap of more than ``2**index_bits - 1`` zeros (Han, Mao & Dally 2016, fig. 2), each
    entry ``32`` value bits + ``index_bits`` relative-index bits. A layer is stored in
    whichever of "dense" and "sparse" is smaller (a flag's worth of bits is not counted), so
    an unpruned model has ratio 1.
``"huffman"``
    A layer of a Deep Compression file (:func:`bayesstruct.prune.compress`): the Huffman
    payload bits of its weight indices and of its relative indices, its float32 codebook
    and the two Huffman code tables, as :class:`~bayesstruct.prune.CompressionReport` lists
    them. The *total* is then the size of the actual file on disk (``os.path.getsize``),
    which also counts the architecture header, lengths and checksum; the test error and
    ``L(D | M)`` are measured on the model *decoded from the file*.

Biases are float32 (32 bits each) in every format, and so are the parameters and floating
buffers outside the prunable layers (``other_bits``: e.g. batch-norm's scale, shift and running
statistics, which inference needs). ``L(M)`` is ``8 * total_bytes`` -- the model's code length in
the format above -- except for Graves's variational fit, where the surviving weights' values
cost their Bits-Back code length ``KL(q || p) / ln 2`` (Graves, NIPS 2011, sec. 7). A removed
weight costs no KL, but the evaluated model has it at exactly 0, so a receiver must be told
*which* weights survive: their positions cost the storage format's index bits (a one-bit mask
for a layer stored dense), and the biases and ``other_bits`` are added as in every row, so that
the column compares across methods. ``L(D | M)`` of that row is measured at the posterior means
(the evaluated model), not as Graves's expectation under ``q``.

The compression ratio is ``dense_bytes / total_bytes`` with ``dense_bytes = 4 *
(number of parameters and floating buffers)``, the convention of
:class:`~bayesstruct.prune.CompressionReport` (whose models have no buffers).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from bayesstruct import _json
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.prune.compression import CompressionReport, decompress, relative_indices
from bayesstruct.prune.graves import VariationalFit, _check_fit, weight_kl_bits
from bayesstruct.prune.saliency import _check_finite_weights, _check_layers, _check_model_takes, get_masks
from bayesstruct.prune.training import _param_dtype, check_data, data_bits, evaluate

__all__ = ["LayerAccount", "Account", "AccountingTable", "account", "accounting_table", "sparse_layer_bits"]

FLOAT_BITS = 32


@dataclass(frozen=True)
class LayerAccount:
    """Storage of one prunable layer (bits are exact integers).

    ``num_entries`` is the number of stored entries (non-zeros + fillers) of the sparse
    formats, ``num_weights`` for "dense".
    """

    name: str
    format: str
    num_weights: int
    num_nonzero: int
    num_entries: int
    weight_bits: int
    index_bits: int
    codebook_bits: int
    table_bits: int
    bias_bits: int

    @property
    def total_bits(self) -> int:
        return self.weight_bits + self.index_bits + self.codebook_bits + self.table_bits + self.bias_bits

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "total_bits": self.total_bits}


@dataclass(frozen=True)
class Account:
    """The measurements of one model (see the module docstring for the formats).

    Attributes
    ----------
    method : str
    layers : tuple of LayerAccount
    other_bits : int
        Float32 parameters and floating buffers outside the prunable layers (e.g. batch-norm's
        scale, shift and running statistics), 32 bits each.
    total_bytes : int
        The file's size where there is one (``file_bytes``), else ``ceil(total_bits / 8)``.
    file_bytes : int or None
    dense_bytes : int
        ``4 * (number of parameters)``.
    test_error : float
    num_test : int
    data_bits : float
        ``L(D | M)`` in bits on the test data (or ``mdl_data``).
    model_bits : float
        ``L(M)`` in bits: ``8 * total_bytes``, or for a variational fit the KL of the surviving
        weights plus their positions, the biases and ``other_bits`` (see the module docstring).
    model_bits_source : str
        ``"storage"`` or ``"kl"``.
    """

    method: str
    layers: tuple[LayerAccount, ...]
    other_bits: int
    total_bytes: int
    file_bytes: int | None
    dense_bytes: int
    test_error: float
    num_test: int
    data_bits: float
    model_bits: float
    model_bits_source: str

    @property
    def num_weights(self) -> int:
        return sum(la.num_weights for la in self.layers)

    @property
    def num_nonzero(self) -> int:
        return sum(la.num_nonzero for la in self.layers)

    @property
    def fraction_kept(self) -> float:
        return self.num_nonzero / self.num_weights

    @property
    def weight_bits(self) -> int:
        return sum(la.weight_bits for la in self.layers)

    @property
    def index_bits(self) -> int:
        return sum(la.index_bits for la in self.layers)

    @property
    def codebook_bits(self) -> int:
        """Codebooks and Huffman code tables."""
        return sum(la.codebook_bits + la.table_bits for la in self.layers)

    @property
    def bias_bits(self) -> int:
        """The prunable layers' float32 biases, 32 bits each."""
        return sum(la.bias_bits for la in self.layers)

    @property
    def total_bits(self) -> int:
        """Payload bits: ``weight_bits + index_bits + codebook_bits + bias_bits + other_bits``."""
        return sum(la.total_bits for la in self.layers) + self.other_bits

    @property
    def compression_ratio(self) -> float:
        return self.dense_bytes / self.total_bytes

    @property
    def weight_reduction(self) -> float:
        """``num_weights / num_nonzero`` (the papers' "x fewer weights")."""
        return self.num_weights / self.num_nonzero if self.num_nonzero else math.inf

    @property
    def mdl_bits(self) -> float:
        """``L(M) + L(D | M)``."""
        return self.model_bits + self.data_bits

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "layers": [la.to_dict() for la in self.layers],
            "num_weights": self.num_weights,
            "num_nonzero": self.num_nonzero,
            "fraction_kept": self.fraction_kept,
            "weight_reduction": self.weight_reduction if math.isfinite(self.weight_reduction) else None,
            "weight_bits": self.weight_bits,
            "index_bits": self.index_bits,
            "codebook_bits": self.codebook_bits,
            "bias_bits": self.bias_bits,
            "other_bits": self.other_bits,
            "total_bits": self.total_bits,
            "total_bytes": self.total_bytes,
            "file_bytes": self.file_bytes,
            "dense_bytes": self.dense_bytes,
            "compression_ratio": self.compression_ratio,
            "test_error": self.test_error,
            "num_test": self.num_test,
            "data_bits": self.data_bits,
            "model_bits": self.model_bits,
            "model_bits_source": self.model_bits_source,
            "mdl_bits": self.mdl_bits,
        }

    def to_json(self, **kwargs: Any) -> str:
        return _json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        lines = [f"{self.method}: {self.num_nonzero}/{self.num_weights} weights ({self.weight_reduction:.1f}x fewer), "
                 f"{self.total_bytes} bytes{' (file)' if self.file_bytes is not None else ''} = {self.compression_ratio:.1f}x smaller "
                 f"than dense float32, test error {self.test_error:.4f}, MDL {self.mdl_bits:.0f} bits "
                 f"= {self.model_bits:.0f} model ({self.model_bits_source}) + {self.data_bits:.0f} data"]
        lines.append(f"  {'layer':<8}{'format':>8}{'non-zero':>10}{'weights':>9}{'w bits':>10}{'idx bits':>10}{'cb bits':>9}"
                     f"{'tbl bits':>9}{'bias bits':>10}{'total bits':>11}")
        for la in self.layers:
            lines.append(f"  {la.name:<8}{la.format:>8}{la.num_nonzero:>10}{la.num_weights:>9}{la.weight_bits:>10}"
                         f"{la.index_bits:>10}{la.codebook_bits:>9}{la.table_bits:>9}{la.bias_bits:>10}{la.total_bits:>11}")
        if self.other_bits:
            lines.append(f"  {'other':<8}{'dense':>8}{'':>10}{'':>9}{'':>10}{'':>10}{'':>9}{'':>9}{'':>10}{self.other_bits:>11}")
        tail = f"  total {self.total_bits} payload bits"
        if self.file_bytes is not None:
            tail += f"; the file is {self.file_bytes} bytes (payload plus header, lengths and checksum)"
        else:
            tail += f" = {self.total_bytes} bytes"
        lines.append(tail)
        return "\n".join(lines)


def sparse_layer_bits(weight: torch.Tensor, index_bits: int = 5) -> tuple[int, int]:
    """``(num_entries, bits)`` of the sparse float32 format of ``weight``: ``num_entries * (32 + index_bits)``.

    ``num_entries`` counts the non-zero weights and the filler entries that bridge gaps wider
    than ``2**index_bits - 1`` (:func:`bayesstruct.prune.relative_indices`).
    """
    if not torch.is_tensor(weight):
        raise InvalidArgumentError(f"`weight` must be a tensor; got {type(weight).__name__}")
    gaps, _ = relative_indices((weight.detach().reshape(-1) != 0).to(torch.int64), index_bits)
    return int(gaps.size), int(gaps.size) * (FLOAT_BITS + index_bits)


def _bias_bits(mod: nn.Module) -> int:
    b = getattr(mod, "bias", None)
    return FLOAT_BITS * b.numel() if torch.is_tensor(b) else 0


def _plain_layers(model: nn.Module, index_bits: int) -> list[LayerAccount]:
    out = []
    for name, mod in _check_layers(model):
        w = mod.weight.detach()
        n, nz = w.numel(), int(torch.count_nonzero(w))
        entries, sparse_bits = sparse_layer_bits(w, index_bits)
        if sparse_bits < FLOAT_BITS * n:
            out.append(LayerAccount(name, "sparse", n, nz, entries, FLOAT_BITS * entries, index_bits * entries, 0, 0, _bias_bits(mod)))
        else:
            out.append(LayerAccount(name, "dense", n, nz, n, FLOAT_BITS * n, 0, 0, 0, _bias_bits(mod)))
    return out


def _num_floats(model: nn.Module) -> int:
    """Parameters and floating buffers (batch-norm's running statistics; not its integer step count,
    nor the pruning masks, which the storage formats already encode as positions)."""
    buffers = sum(b.numel() for name, b in model.named_buffers()
                  if b.is_floating_point() and "parametrizations." not in f".{name}")
    return sum(p.numel() for p in model.parameters()) + buffers


def _other_bits(model: nn.Module) -> int:
    """float32 bits of the parameters and floating buffers outside the prunable layers' weight and bias."""
    covered = sum(p.numel() for _, mod in _check_layers(model) for p in mod.parameters())
    return FLOAT_BITS * (_num_floats(model) - covered)


def _same_weights(model: nn.Module, restored: nn.Module) -> bool:
    """The prunable layers of ``model`` and ``restored`` hold equal weights *and* biases."""
    a, b = _check_layers(model), _check_layers(restored)
    if [n for n, _ in a] != [n for n, _ in b]:
        return False

    def same(p: torch.Tensor | None, q: torch.Tensor | None) -> bool:
        if p is None or q is None:
            return p is None and q is None
        return p.shape == q.shape and torch.equal(p.detach().to(torch.float32), q.detach())

    return all(same(ma.weight, mb.weight) and same(ma.bias, mb.bias) for (_, ma), (_, mb) in zip(a, b))


def account(
    model: nn.Module,
    data_test: tuple[torch.Tensor, torch.Tensor],
    *,
    method: str,
    compressed: CompressionReport | None = None,
    fit: VariationalFit | None = None,
    index_bits: int = 5,
    mdl_data: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> Account:
    """Measure ``model`` on the common scale of bits (see the module docstring).

    Parameters
    ----------
    model : nn.Module
        The classifier (logits out) as the method left it: pruned (masks applied),
        quantised, or pruned by relative density.
    data_test : (x, y)
        Test data: the test error and, unless ``mdl_data`` is given, ``L(D | M)``.
    method : str
        A label for the table.
    compressed : CompressionReport, optional
        The Deep Compression file written for ``model``: storage is read from it, the total is
        the file's size, and the test error / ``L(D | M)`` are those of the model decoded
        from the file (which must hold ``model``'s weights).
    fit : VariationalFit, optional
        Graves's fit the model was pruned from: ``L(M) = sum_{kept i} KL(q_i || p_i) / ln 2``,
        plus 32 bits per kept weight for its prior scale when the fit had one per weight
        (:func:`bayesstruct.prune.graves.weight_kl_bits`).
    index_bits : int
        Width of the relative indices of the "sparse" format.
    mdl_data : (x, y), optional
        Data for ``L(D | M)`` (e.g. the training set) instead of ``data_test``.

    Returns
    -------
    Account

    Examples
    --------
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    >>> acc = account(net, (torch.zeros(1, 2), torch.tensor([0])), method="demo")
    >>> acc.layers[0].format, acc.total_bits   # one sparse entry (32 + 5 bits) beats dense (4 * 32 bits)
    ('sparse', 37)
    """
    if any(getattr(m, "_pyro_samples", None) for m in model.modules()):
        raise InvalidArgumentError(
            "`model` has PyroSample weights (a Bayesian PyroModule): they are not parameters, so account() would "
            "count neither them nor their masks, and its test error would be one random draw. Account a network of "
            "point weights instead: the same architecture holding the guide's posterior means, masks applied")
    layers = _check_layers(model)
    _check_finite_weights(layers)
    x, y = check_data(data_test, "data_test")
    _check_model_takes(model, x.to(_param_dtype(model)), y, F.cross_entropy, name="data_test")
    if mdl_data is not None:
        mx, my = check_data(mdl_data, "mdl_data")
        _check_model_takes(model, mx.to(_param_dtype(model)), my, F.cross_entropy, name="mdl_data")
    if isinstance(index_bits, bool) or not isinstance(index_bits, int) or not 1 <= index_bits <= 16:
        raise InvalidArgumentError(f"`index_bits` must be an integer in 1..16; got {index_bits!r}")
    if not isinstance(method, str) or not method:
        raise InvalidArgumentError(f"`method` must be a non-empty label; got {method!r}")
    if compressed is not None and fit is not None:
        raise InvalidArgumentError("pass at most one of `compressed` (a Deep Compression file) and `fit` (a variational fit)")
    dense_bytes = 4 * _num_floats(model)
    evaluated, file_bytes = model, None
    if compressed is not None:
        if not isinstance(compressed, CompressionReport):
            raise InvalidArgumentError(f"`compressed` must be the CompressionReport returned by compress(); got {type(compressed).__name__}")
        if not os.path.isfile(compressed.path):
            raise InvalidArgumentError(f"`compressed`: the file {compressed.path!r} does not exist (moved or deleted?)")
        evaluated = decompress(compressed.path)
        if not _same_weights(model, evaluated):
            raise InvalidArgumentError(f"`compressed`: the file {compressed.path!r} does not hold `model`'s weights "
                                       "and biases")
        file_bytes = os.path.getsize(compressed.path)
        names = [n for n, _ in layers]
        by_name = {lc.name: lc for lc in compressed.layers}
        if sorted(by_name) != sorted(names):
            raise InvalidArgumentError(f"`compressed` describes layers {sorted(by_name)}, `model` has {names}")
        accts = [
            LayerAccount(n, "huffman", lc.num_weights, lc.num_nonzero, lc.num_nonzero + lc.num_fillers, lc.weight_bits,
                         lc.index_bits, lc.codebook_bits, lc.table_bits, lc.bias_bits)
            for n, lc in ((n, by_name[n]) for n in names)
        ]
    else:
        accts = _plain_layers(model, index_bits)
    other = _other_bits(model)
    payload = sum(la.total_bits for la in accts) + other
    total_bytes = file_bytes if file_bytes is not None else (payload + 7) // 8
    if fit is not None:
        _check_fit(model, fit)
        masks = get_masks(model)
        weights = dict(layers)
        kl_bits = weight_kl_bits(fit)
        # kept = not masked and not zero: a model whose masks were baked in (remove_pruning) keeps only its non-zeros
        kept = {n: (masks[n] != 0) & (weights[n].weight.detach() != 0) for n in fit.layers}
        values = sum(float((kl_bits[n] * kept[n]).sum()) for n in fit.layers)
        positions = sum(la.index_bits if la.format == "sparse" else (la.num_weights if la.num_nonzero < la.num_weights else 0)
                        for la in accts)
        model_bits, source = values + positions + sum(la.bias_bits for la in accts) + other, "kl"
    else:
        model_bits, source = 8.0 * total_bytes, "storage"
    return Account(
        method=method, layers=tuple(accts), other_bits=other, total_bytes=int(total_bytes), file_bytes=file_bytes,
        dense_bytes=dense_bytes, test_error=evaluate(evaluated, (x, y)), num_test=int(y.shape[0]),
        data_bits=data_bits(evaluated, mdl_data if mdl_data is not None else (x, y)), model_bits=float(model_bits),
        model_bits_source=source,
    )


_COLUMNS = [
    ("method", "method", "{}"),
    ("kept", "fraction_kept", "{:.4f}"),
    ("non-zero", "num_nonzero", "{}"),
    ("weight bits", "weight_bits", "{}"),
    ("index bits", "index_bits", "{}"),
    ("codebook bits", "codebook_bits", "{}"),
    ("bias bits", "bias_bits", "{}"),
    ("other bits", "other_bits", "{}"),
    ("total bits", "total_bits", "{}"),
    ("bytes", "total_bytes", "{}"),
    ("file bytes", "file_bytes", "{}"),
    ("ratio", "compression_ratio", "{:.1f}x"),
    ("test error", "test_error", "{:.4f}"),
    ("L(M) bits", "model_bits", "{:.0f}"),
    ("L(D|M) bits", "data_bits", "{:.0f}"),
    ("MDL bits", "mdl_bits", "{:.0f}"),
]


@dataclass(frozen=True)
class AccountingTable:
    """One row per method (:func:`accounting_table`); ``str()`` is a plain table, :meth:`to_markdown` a Markdown one.

    The bit columns add up: ``weight bits + index bits + codebook bits + bias bits + other
    bits = total bits`` (the payload, :attr:`Account.total_bits`). ``bytes`` is
    ``ceil(total bits / 8)``, or for a Deep Compression file its size on disk, which is
    also the ``file bytes`` column (``-`` where there is no file); the file adds its
    header, lengths and checksum to the payload.
    """

    rows: tuple[Account, ...]

    def _cells(self) -> list[list[str]]:
        out = []
        for r in self.rows:
            cells = []
            for _, attr, fmt in _COLUMNS:
                v = getattr(r, attr)
                cells.append("-" if v is None else fmt.format(v))
            out.append(cells)
        return out

    def to_markdown(self) -> str:
        """A GitHub-flavoured markdown table (``|`` inside a cell escaped as ``\\|``)."""
        head = [c for c, _, _ in _COLUMNS]
        row = lambda cells: "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"  # noqa: E731
        lines = [row(head), "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
        lines += [row(c) for c in self._cells()]
        return "\n".join(lines)

    def __str__(self) -> str:
        head = [c for c, _, _ in _COLUMNS]
        cells = self._cells()
        widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(head)]
        fmt = lambda row: "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths)))  # noqa: E731
        return "\n".join([fmt(head)] + [fmt(c) for c in cells])

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [a for _, a, _ in _COLUMNS], "rows": [r.to_dict() for r in self.rows]}

    def to_json(self, **kwargs: Any) -> str:
        return _json.dumps(self.to_dict(), **kwargs)


def accounting_table(reports: Sequence[Account]) -> AccountingTable:
    """Collect :func:`account` results into one table (rows in the given order)."""
    if isinstance(reports, Account) or isinstance(reports, (str, bytes)) or not hasattr(reports, "__iter__"):
        raise InvalidArgumentError(f"`reports` must be a non-empty sequence of Account (from account()); got {type(reports).__name__}")
    reports = tuple(reports)
    bad = [type(r).__name__ for r in reports if not isinstance(r, Account)]
    if bad or not reports:
        raise InvalidArgumentError(f"`reports` must be a non-empty sequence of Account (from account()); got {bad or 'nothing'}")
    return AccountingTable(reports)
