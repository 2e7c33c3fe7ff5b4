"""Huffman coding that really encodes to bits (Huffman, 1952), with canonical codes.

The code for a stream of non-negative integer symbols is built from the symbol counts
by repeatedly merging the two lightest subtrees (a heap, ties broken by creation order),
which minimises the total length :math:`\\sum_s c_s \\ell_s` over all prefix codes.
The code words are then made *canonical* (sorted by ``(length, symbol)`` and numbered
consecutively, as in DEFLATE), so the code table only has to store one length per
distinct symbol.

Serialised layout written by :meth:`HuffmanEncoded.to_bytes` (all integers are unsigned
LEB128 varints unless stated)::

    b"BSHF"  version (1 byte)  num_symbols
    table:   num_distinct, then per distinct symbol in increasing order:
             gap (= symbol - previous symbol - 1; the first gap is the symbol itself),
             code length (1 byte, 1..255)
    payload_bits  payload (ceil(payload_bits / 8) bytes, zero padded)  CRC-32 (4 bytes, big endian)

Single distinct symbol: it gets the 1-bit code ``0``, so ``payload_bits == num_symbols``
(a Huffman tree with one leaf would give 0 bits; one bit per symbol keeps the payload
self-describing at the cost of exceeding the entropy bound ``H + 1 = 1`` by nothing:
``payload_bits / n == 1 == H + 1``).
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from bayesstruct import _json
from bayesstruct.exceptions import InvalidArgumentError

__all__ = [
    "HuffmanEncoded",
    "HuffmanFormatError",
    "huffman_code_lengths",
    "huffman_encode",
    "huffman_decode",
]

_MAGIC = b"BSHF"
_VERSION = 1
_MAX_CODE_LENGTH = 255
_INT64_MAX = np.iinfo(np.int64).max


class HuffmanFormatError(InvalidArgumentError):
    """A Huffman encoding (object or byte string) is corrupt, truncated or inconsistent."""


# ----------------------------------------------------------------------------- varints


def _write_varint(value: int, out: bytearray) -> None:
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _read_varint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise HuffmanFormatError(f"truncated Huffman buffer: ran out of bytes while reading {what}")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 70:  # > 64-bit value: never written by this module
            raise HuffmanFormatError(f"corrupt Huffman buffer: {what} is not a valid varint")


# ----------------------------------------------------------------------------- code construction


def huffman_code_lengths(counts: Any) -> dict[int, int]:
    """Optimal prefix-code lengths for the given symbol counts (Huffman, 1952).

    Parameters
    ----------
    counts : mapping or 1-D array-like
        Either ``{symbol: count}`` or a 1-D sequence whose index is the symbol.
        Counts must be non-negative integers; symbols with count 0 get no code.

    Returns
    -------
    dict
        ``{symbol: code length in bits}`` minimising ``sum(count * length)`` over all
        prefix codes. A single symbol gets length 1 (see the module docstring).

    Examples
    --------
    >>> huffman_code_lengths({0: 5, 1: 2, 2: 1, 3: 1})
    {0: 1, 1: 2, 2: 3, 3: 3}
    """
    if isinstance(counts, Mapping):
        items = list(counts.items())
    else:
        arr = _as_int_array(counts, "counts")
        items = list(enumerate(arr.tolist()))
    pairs: list[tuple[int, int]] = []
    for sym, cnt in items:
        if isinstance(sym, bool) or not isinstance(sym, (int, np.integer)) or sym < 0:
            raise InvalidArgumentError(f"`counts` keys must be non-negative integer symbols; got {sym!r}")
        if isinstance(cnt, bool) or not isinstance(cnt, (int, np.integer)) or cnt < 0:
            raise InvalidArgumentError(f"`counts` values must be non-negative integers; got {cnt!r} for symbol {sym}")
        if cnt > 0:
            pairs.append((int(sym), int(cnt)))
    return _lengths_from_pairs(pairs)


def _lengths_from_pairs(pairs: list[tuple[int, int]]) -> dict[int, int]:
    """Code lengths from ``(symbol, count)`` pairs with count > 0 (deterministic ties)."""
    pairs = sorted(pairs, key=lambda p: (p[1], p[0]))
    k = len(pairs)
    if k == 0:
        return {}
    if k == 1:
        return {pairs[0][0]: 1}
    # Heap entries (weight, creation order, node id); leaves are created in (count, symbol) order,
    # so equal weights are merged in a fixed order.
    heap = [(cnt, i, i) for i, (_, cnt) in enumerate(pairs)]
    heapq.heapify(heap)
    parent = [-1] * (2 * k - 1)
    next_id = k
    while len(heap) > 1:
        w1, _, a = heapq.heappop(heap)
        w2, _, b = heapq.heappop(heap)
        parent[a] = parent[b] = next_id
        heapq.heappush(heap, (w1 + w2, next_id, next_id))
        next_id += 1
    depth = [0] * (2 * k - 1)
    for node in range(2 * k - 3, -1, -1):  # parents have larger ids than their children
        depth[node] = depth[parent[node]] + 1
    return dict(sorted((pairs[i][0], depth[i]) for i in range(k)))


def _canonical_codes(lengths: Mapping[int, int]) -> dict[int, tuple[int, int]]:
    """``{symbol: (code, length)}`` of the canonical code with these lengths."""
    codes: dict[int, tuple[int, int]] = {}
    code = 0
    prev_len = 0
    for sym, length in sorted(lengths.items(), key=lambda p: (p[1], p[0])):
        code <<= length - prev_len
        codes[sym] = (code, length)
        code += 1
        prev_len = length
    return codes


def _check_table(table: tuple[tuple[int, int], ...]) -> None:
    """Raise HuffmanFormatError unless ``table`` is a valid complete canonical code table."""
    prev = -1
    for sym, length in table:
        if sym <= prev:
            raise HuffmanFormatError(f"corrupt Huffman table: symbols must be strictly increasing; got {sym} after {prev}")
        if sym > _INT64_MAX:
            raise HuffmanFormatError(f"corrupt Huffman table: symbol {sym} does not fit in int64")
        if not 1 <= length <= _MAX_CODE_LENGTH:
            raise HuffmanFormatError(
                f"corrupt Huffman table: code length {length} of symbol {sym} is outside 1..{_MAX_CODE_LENGTH}"
            )
        prev = sym
    if len(table) == 1:
        if table[0][1] != 1:
            raise HuffmanFormatError(
                f"corrupt Huffman table: a single symbol must have a 1-bit code; got length {table[0][1]}"
            )
    elif len(table) > 1:
        max_len = max(length for _, length in table)
        kraft = sum(1 << (max_len - length) for _, length in table)
        if kraft != 1 << max_len:
            raise HuffmanFormatError(
                "corrupt Huffman table: the code lengths do not form a complete prefix code "
                f"(Kraft sum {kraft}/2^{max_len} != 1)"
            )


def _table_bytes(table: tuple[tuple[int, int], ...]) -> bytes:
    out = bytearray()
    _write_varint(len(table), out)
    prev = -1
    for sym, length in table:
        _write_varint(sym - prev - 1, out)
        out.append(length)
        prev = sym
    return bytes(out)


# ----------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class HuffmanEncoded:
    """A Huffman-encoded symbol stream.

    Attributes
    ----------
    payload : bytes
        The concatenated canonical code words, MSB first, zero padded to whole bytes.
    payload_bits : int
        Meaningful bits in ``payload``: ``sum_i len(code(s_i))`` (the code table excluded).
    num_symbols : int
        Number of encoded symbols ``n``.
    code_lengths : tuple of (int, int)
        ``(symbol, code length)`` per distinct symbol, symbols increasing. The canonical
        code is fully determined by these lengths.

    ``table_bits`` (a property) is the size in bits of the serialised code table: the
    distinct-symbol count plus the (symbol gap, length) pairs, as written by
    :meth:`to_bytes` (the 5-byte magic/version tag, ``num_symbols``, ``payload_bits`` and the
    4-byte checksum are container overhead, counted in neither).
    """

    payload: bytes
    payload_bits: int
    num_symbols: int
    code_lengths: tuple[tuple[int, int], ...] = field(default=())

    def __post_init__(self) -> None:
        try:
            pairs = tuple(self.code_lengths)
            if not all(len(p) == 2 and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in p) for p in pairs):
                raise TypeError
        except TypeError:
            raise HuffmanFormatError(
                f"`code_lengths` must be a sequence of (symbol, code length) integer pairs; got {self.code_lengths!r}"
            ) from None
        object.__setattr__(self, "code_lengths", tuple((int(s), int(l)) for s, l in pairs))
        if not isinstance(self.payload, (bytes, bytearray, memoryview)):
            raise HuffmanFormatError(f"`payload` must be bytes; got {type(self.payload).__name__}")
        object.__setattr__(self, "payload", bytes(self.payload))
        _check_table(self.code_lengths)
        for name in ("payload_bits", "num_symbols"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise HuffmanFormatError(f"`{name}` must be a non-negative integer; got {v!r}")
        if not self.code_lengths and (self.num_symbols or self.payload_bits):
            raise HuffmanFormatError(
                f"corrupt Huffman encoding: an empty code table cannot encode {self.num_symbols} symbol(s) "
                f"in {self.payload_bits} bit(s)"
            )
        if self.code_lengths and self.num_symbols == 0:
            raise HuffmanFormatError("corrupt Huffman encoding: a non-empty code table with num_symbols == 0")
        if len(self.payload) != (self.payload_bits + 7) // 8:
            raise HuffmanFormatError(
                f"corrupt or truncated Huffman payload: {self.payload_bits} bits need "
                f"{(self.payload_bits + 7) // 8} byte(s); got {len(self.payload)}"
            )
        if self.code_lengths:
            lens = [l for _, l in self.code_lengths]
            if not min(lens) * self.num_symbols <= self.payload_bits <= max(lens) * self.num_symbols:
                raise HuffmanFormatError(
                    f"corrupt Huffman encoding: {self.num_symbols} symbols with code lengths "
                    f"{min(lens)}..{max(lens)} cannot take {self.payload_bits} bits"
                )

    @property
    def table_bits(self) -> int:
        """Bits of the serialised code table (see the class docstring)."""
        return 8 * len(_table_bytes(self.code_lengths))

    @property
    def code_table(self) -> dict[int, str]:
        """``{symbol: code word as a '0'/'1' string}`` of the canonical code."""
        return {s: format(c, f"0{l}b") for s, (c, l) in _canonical_codes(dict(self.code_lengths)).items()}

    def to_bytes(self) -> bytes:
        """Self-contained serialisation (layout in the module docstring); inverse of :meth:`from_bytes`."""
        out = bytearray(_MAGIC)
        out.append(_VERSION)
        _write_varint(self.num_symbols, out)
        out += _table_bytes(self.code_lengths)
        _write_varint(self.payload_bits, out)
        out += self.payload
        out += zlib.crc32(bytes(out)).to_bytes(4, "big")
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> HuffmanEncoded:
        """Parse :meth:`to_bytes` output.

        Raises
        ------
        HuffmanFormatError
            Bad magic or version, truncated buffer, trailing bytes, a table whose lengths do not
            form a complete prefix code, or a checksum mismatch.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgumentError(f"`data` must be bytes; got {type(data).__name__}")
        data = bytes(data)
        if len(data) < len(_MAGIC) + 1 or data[: len(_MAGIC)] != _MAGIC:
            raise HuffmanFormatError(
                f"not a bayesstruct Huffman buffer: expected magic {_MAGIC!r}, got {data[:len(_MAGIC)]!r}"
            )
        if data[len(_MAGIC)] != _VERSION:
            raise HuffmanFormatError(
                f"unsupported Huffman buffer version {data[len(_MAGIC)]}; this bayesstruct reads version {_VERSION}"
            )
        pos = len(_MAGIC) + 1
        num_symbols, pos = _read_varint(data, pos, "num_symbols")
        k, pos = _read_varint(data, pos, "the number of distinct symbols")
        if k > num_symbols:
            raise HuffmanFormatError(f"corrupt Huffman buffer: {k} distinct symbols but only {num_symbols} symbols")
        table = []
        prev = -1
        for i in range(k):
            gap, pos = _read_varint(data, pos, f"symbol {i} of the code table")
            if pos >= len(data):
                raise HuffmanFormatError(f"truncated Huffman buffer: ran out of bytes in code length {i}")
            sym = prev + 1 + gap
            table.append((sym, data[pos]))
            pos += 1
            prev = sym
        table_t = tuple(table)
        _check_table(table_t)
        payload_bits, pos = _read_varint(data, pos, "payload_bits")
        nbytes = (payload_bits + 7) // 8
        if len(data) - pos != nbytes + 4:
            what = "truncated" if len(data) - pos < nbytes + 4 else "corrupt (trailing bytes)"
            raise HuffmanFormatError(
                f"{what} Huffman buffer: {payload_bits} payload bits need {nbytes} byte(s) plus a 4-byte "
                f"checksum; {len(data) - pos} byte(s) remain"
            )
        payload = data[pos : pos + nbytes]
        if zlib.crc32(data[:-4]) != int.from_bytes(data[-4:], "big"):
            raise HuffmanFormatError("corrupt Huffman buffer: CRC-32 checksum mismatch")
        return cls(payload=payload, payload_bits=payload_bits, num_symbols=num_symbols, code_lengths=table_t)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (the payload as hex)."""
        return {
            "num_symbols": self.num_symbols,
            "payload_bits": self.payload_bits,
            "table_bits": self.table_bits,
            "code_lengths": [list(p) for p in self.code_lengths],
            "payload_hex": self.payload.hex(),
        }

    def to_json(self) -> str:
        return _json.dumps(self.to_dict())

    def __repr__(self) -> str:
        return (
            f"HuffmanEncoded(num_symbols={self.num_symbols}, num_distinct={len(self.code_lengths)}, "
            f"payload_bits={self.payload_bits}, table_bits={self.table_bits})"
        )


# ----------------------------------------------------------------------------- encode / decode


def _as_int_array(values: Any, name: str) -> np.ndarray:
    """1-D int64 array of non-negative integers, or InvalidArgumentError naming ``name``."""
    if torch.is_tensor(values):
        values = values.detach().cpu().numpy()
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"`{name}` must be a 1-D array of non-negative integers; got {exc}") from None
    if arr.ndim == 0 and (arr.dtype.kind not in "iufb" or isinstance(values, (str, bytes))):
        hint = f" (pass list({name}) for a {type(values).__name__})" if hasattr(values, "__iter__") and not isinstance(values, (str, bytes)) else ""
        raise InvalidArgumentError(f"`{name}` must be a 1-D array of non-negative integers; got {type(values).__name__}{hint}")
    if arr.ndim != 1:
        raise InvalidArgumentError(f"`{name}` must be 1-D; got shape {arr.shape}. Flatten it first (e.g. `.ravel()`).")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iufO":
        raise InvalidArgumentError(f"`{name}` must contain non-negative integers; got dtype {arr.dtype}")
    if arr.dtype.kind == "O":
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr.tolist()):
            raise InvalidArgumentError(f"`{name}` must contain only integers; got a mix of types")
        if any(v < 0 or v > _INT64_MAX for v in arr.tolist()):
            raise InvalidArgumentError(f"`{name}` must contain integers in 0..{_INT64_MAX}")
        return np.array(arr.tolist(), dtype=np.int64)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise InvalidArgumentError(f"`{name}` contains {int((~np.isfinite(arr)).sum())} NaN or infinite value(s)")
        if not (arr == np.round(arr)).all():
            raise InvalidArgumentError(f"`{name}` must contain integers; got non-integer values such as {arr[arr != np.round(arr)][0]}")
        if arr.max() >= 2.0**63:
            raise InvalidArgumentError(f"`{name}` must contain integers below 2**63")
    if arr.min() < 0:
        raise InvalidArgumentError(f"`{name}` must be non-negative; got minimum {arr.min()}")
    if arr.dtype.kind == "u" and arr.max() > _INT64_MAX:
        raise InvalidArgumentError(f"`{name}` must contain integers in 0..{_INT64_MAX}")
    return arr.astype(np.int64)


def huffman_encode(symbols: Any) -> HuffmanEncoded:
    """Encode a stream of non-negative integers with an optimal canonical Huffman code.

    Parameters
    ----------
    symbols : 1-D array-like or tensor, shape ``(n,)``
        Non-negative integers (floats with integral values are accepted). Empty is allowed.

    Returns
    -------
    HuffmanEncoded
        ``payload_bits = sum_i len(code(s_i))`` is minimal over prefix codes, so
        ``H <= payload_bits / n < H + 1`` for the empirical entropy ``H`` (with one distinct
        symbol, ``payload_bits == n``; see the module docstring).

    Raises
    ------
    InvalidArgumentError
        ``symbols`` is not 1-D, or holds negative, non-integer, NaN or non-numeric values.

    Examples
    --------
    >>> enc = huffman_encode([0, 0, 0, 0, 1, 1, 2, 3])
    >>> enc.payload_bits, enc.code_table
    (14, {0: '0', 1: '10', 2: '110', 3: '111'})
    >>> huffman_decode(enc.to_bytes()).tolist()
    [0, 0, 0, 0, 1, 1, 2, 3]
    """
    arr = _as_int_array(symbols, "symbols")
    if arr.size == 0:
        return HuffmanEncoded(payload=b"", payload_bits=0, num_symbols=0, code_lengths=())
    uniq, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
    lengths = _lengths_from_pairs(list(zip(uniq.tolist(), counts.tolist())))
    codes = _canonical_codes(lengths)
    words = np.array([format(codes[s][0], f"0{codes[s][1]}b") for s in uniq.tolist()], dtype=object)
    bits = "".join(words[inverse.ravel()].tolist())
    payload_bits = len(bits)
    nbytes = (payload_bits + 7) // 8
    payload = int(bits.ljust(8 * nbytes, "0"), 2).to_bytes(nbytes, "big")
    table = tuple((s, lengths[s]) for s in uniq.tolist())
    return HuffmanEncoded(payload=payload, payload_bits=payload_bits, num_symbols=int(arr.size), code_lengths=table)


def huffman_decode(encoded: HuffmanEncoded | bytes | bytearray | memoryview) -> np.ndarray:
    """Decode a :class:`HuffmanEncoded` (or its :meth:`~HuffmanEncoded.to_bytes`) to symbols.

    Returns
    -------
    numpy.ndarray
        int64, shape ``(num_symbols,)``.

    Raises
    ------
    HuffmanFormatError
        The encoding is corrupt: the payload does not hold exactly ``num_symbols`` code words
        in ``payload_bits`` bits with zero padding, or the buffer fails :meth:`HuffmanEncoded.from_bytes`.
    """
    if isinstance(encoded, (bytes, bytearray, memoryview)):
        encoded = HuffmanEncoded.from_bytes(encoded)
    elif not isinstance(encoded, HuffmanEncoded):
        raise InvalidArgumentError(
            f"`encoded` must be a HuffmanEncoded or the bytes of its to_bytes(); got {type(encoded).__name__}"
        )
    n = encoded.num_symbols
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    nbits = encoded.payload_bits
    all_bits = format(int.from_bytes(encoded.payload, "big"), f"0{8 * len(encoded.payload)}b")
    if "1" in all_bits[nbits:]:
        raise HuffmanFormatError("corrupt Huffman payload: the padding bits after payload_bits are not zero")
    # Canonical decoding tables: per length, the first code, the count and the first index.
    ordered = sorted(encoded.code_lengths, key=lambda p: (p[1], p[0]))
    syms = [s for s, _ in ordered]
    max_len = ordered[-1][1]
    count = [0] * (max_len + 1)
    for _, length in ordered:
        count[length] += 1
    out = np.empty(n, dtype=np.int64)
    pos = 0
    for i in range(n):
        code = first = index = 0
        length = 0
        while True:
            if pos >= nbits:
                raise HuffmanFormatError(
                    f"corrupt Huffman payload: the {nbits} payload bits end inside symbol {i} of {n}"
                )
            code |= all_bits[pos] == "1"
            pos += 1
            length += 1
            if length > max_len:
                raise HuffmanFormatError(f"corrupt Huffman payload: no code word matches at symbol {i}")
            c = count[length]
            if code - first < c:
                out[i] = syms[index + code - first]
                break
            index += c
            first = (first + c) << 1
            code <<= 1
    if pos != nbits:
        raise HuffmanFormatError(
            f"corrupt Huffman payload: {n} symbols used {pos} bits but payload_bits is {nbits}"
        )
    return out
