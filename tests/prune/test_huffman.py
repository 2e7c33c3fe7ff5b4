"""Huffman coder: optimality against an independent reference, entropy bound, lossless
round trips (hypothesis), corrupt buffers and bad input."""

from __future__ import annotations

import bisect

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bayesstruct.exceptions import BayesStructError, InvalidArgumentError
from bayesstruct.prune import (
    HuffmanEncoded,
    HuffmanFormatError,
    huffman_code_lengths,
    huffman_decode,
    huffman_encode,
)


def _optimal_total_bits(counts):
    """Reference: total weighted path length of a Huffman tree = sum of the merged weights,
    merging the two smallest of a plain sorted list (no heap)."""
    weights = sorted(c for c in counts if c > 0)
    total = 0
    while len(weights) > 1:
        merged = weights.pop(0) + weights.pop(0)
        total += merged
        bisect.insort(weights, merged)
    return total


def _stream(counts, rng):
    syms = np.repeat(np.arange(len(counts)), counts)
    rng.shuffle(syms)
    return syms


def _entropy_bits(symbols):
    _, c = np.unique(symbols, return_counts=True)
    p = c / c.sum()
    return float(-(p * np.log2(p)).sum())


# ----------------------------------------------------------------------------- optimality


@pytest.mark.parametrize("seed", range(20))
def test_payload_bits_equal_optimal_prefix_code_total(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 60))
    kind = seed % 3
    if kind == 0:
        counts = rng.integers(1, 50, size=k)
    elif kind == 1:  # skewed (geometric-like)
        counts = np.maximum(1, (1000 * 0.6 ** np.arange(k)).astype(int))
    else:  # with zero counts (absent symbols) and ties
        counts = rng.integers(0, 4, size=k)
        counts[:2] = [1, 1]
    enc = huffman_encode(_stream(counts, rng))
    assert enc.payload_bits == _optimal_total_bits(counts.tolist())
    lengths = huffman_code_lengths(counts)
    assert sum(counts[s] * l for s, l in lengths.items()) == enc.payload_bits
    assert dict(enc.code_lengths) == lengths
    # Kraft equality: the canonical code is complete and prefix free.
    assert sum(2.0 ** -l for l in lengths.values()) == pytest.approx(1.0)
    words = sorted(enc.code_table.values())
    assert all(not b.startswith(a) for a, b in zip(words, words[1:]))


def test_known_small_code_and_determinism():
    enc = huffman_encode([0, 0, 0, 0, 1, 1, 2, 3])
    assert enc.code_table == {0: "0", 1: "10", 2: "110", 3: "111"}
    assert enc.payload_bits == 14 and enc.num_symbols == 8
    assert enc.payload == bytes([0b00001010, 0b11011100])
    # Ties are broken deterministically: the same input gives the same bytes.
    x = np.random.default_rng(1).integers(0, 9, size=500)
    assert huffman_encode(x).to_bytes() == huffman_encode(x.copy()).to_bytes()
    assert huffman_code_lengths({0: 5, 1: 2, 2: 1, 3: 1}) == {0: 1, 1: 2, 2: 3, 3: 3}
    assert huffman_code_lengths([0, 3, 0]) == {1: 1}


@pytest.mark.parametrize("seed", range(10))
def test_entropy_bound(seed):
    rng = np.random.default_rng(100 + seed)
    k = int(rng.integers(2, 40))
    p = rng.dirichlet(np.full(k, 0.3 if seed % 2 else 5.0))
    x = rng.choice(k, size=2000, p=p)
    if len(np.unique(x)) < 2:
        x[:2] = [0, 1]
    h = _entropy_bits(x)
    rate = huffman_encode(x).payload_bits / x.size
    assert h - 1e-12 <= rate < h + 1


def test_single_distinct_symbol_uses_one_bit_each():
    # Documented special case: H = 0 and the code word is 1 bit, so rate == H + 1 == 1.
    enc = huffman_encode([7] * 13)
    assert enc.payload_bits == 13
    assert enc.code_lengths == ((7, 1),)
    assert huffman_decode(enc.to_bytes()).tolist() == [7] * 13


def test_empty_input():
    enc = huffman_encode([])
    assert enc.payload_bits == 0 and enc.num_symbols == 0 and enc.payload == b""
    assert enc.table_bits == 8  # just the distinct-symbol count 0
    for obj in (enc, enc.to_bytes()):
        out = huffman_decode(obj)
        assert out.dtype == np.int64 and out.shape == (0,)


def test_table_bits_matches_serialised_table():
    enc = huffman_encode([0, 1, 1, 300])
    b = enc.to_bytes()
    # magic(4) + version(1) + num_symbols(1) | table | payload_bits(1) + payload + crc(4)
    overhead = 4 + 1 + 1 + 1 + len(enc.payload) + 4
    assert 8 * (len(b) - overhead) == enc.table_bits
    assert enc.to_dict()["table_bits"] == enc.table_bits


# ----------------------------------------------------------------------------- round trips

_symbol_lists = st.one_of(
    st.lists(st.integers(0, 2**63 - 1), max_size=50),  # large, sparse alphabets
    st.lists(st.integers(0, 3), max_size=300),  # small alphabet
    st.lists(st.sampled_from([0] * 20 + [1, 2, 5000]), max_size=300),  # skewed
    st.integers(1, 400).map(lambda k: list(range(k)) * 2),  # uniform, large alphabet
    st.tuples(st.integers(0, 10**6), st.integers(0, 50)).map(lambda t: [t[0]] * t[1]),  # one symbol / empty
)


@settings(max_examples=150, deadline=None)
@given(_symbol_lists)
def test_round_trip(symbols):
    enc = huffman_encode(symbols)
    assert enc.num_symbols == len(symbols)
    for obj in (enc, enc.to_bytes()):
        out = huffman_decode(obj)
        assert out.dtype == np.int64
        assert out.tolist() == symbols
    again = HuffmanEncoded.from_bytes(enc.to_bytes())
    assert again == enc
    assert again.table_bits == enc.table_bits
    assert (enc.payload_bits + 7) // 8 == len(enc.payload)


def test_round_trip_accepts_tensors_and_integral_floats():
    x = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    assert huffman_decode(huffman_encode(x)).tolist() == x.tolist()
    assert huffman_decode(huffman_encode(np.array([1.0, 2.0, 2.0]))).tolist() == [1, 2, 2]
    assert huffman_decode(huffman_encode(np.array([1, 2], dtype=np.uint8))).tolist() == [1, 2]


# ----------------------------------------------------------------------------- corrupt buffers


def _buffer():
    # symbols 0,1,2 with counts 3,1,1 -> lengths 1,2,2; layout: magic(0:4) version(4) n(5)
    # k(6) then (gap, length) pairs at 7..12, payload_bits(13), payload(14), crc(15:19).
    enc = huffman_encode([0, 0, 0, 1, 2])
    assert enc.code_lengths == ((0, 1), (1, 2), (2, 2))
    return enc, bytearray(enc.to_bytes())


def test_corrupt_magic():
    _, b = _buffer()
    b[0] ^= 0xFF
    with pytest.raises(HuffmanFormatError, match="magic"):
        HuffmanEncoded.from_bytes(bytes(b))
    with pytest.raises(HuffmanFormatError, match="magic"):
        huffman_decode(b"")


def test_corrupt_version():
    _, b = _buffer()
    b[4] = 99
    with pytest.raises(HuffmanFormatError, match="version"):
        huffman_decode(bytes(b))


@pytest.mark.parametrize("cut", [1, 4, 5, 8, 12])
def test_truncated_buffer(cut):
    _, b = _buffer()
    with pytest.raises(HuffmanFormatError, match="truncated"):
        huffman_decode(bytes(b[:-cut]))


def test_trailing_bytes():
    _, b = _buffer()
    with pytest.raises(HuffmanFormatError, match="trailing"):
        huffman_decode(bytes(b) + b"\x00")


@pytest.mark.parametrize("new_length", [0, 2, 3, 1])
def test_altered_code_length(new_length):
    _, b = _buffer()
    assert b[8] == 1  # code length of symbol 0
    b[8] = new_length
    if new_length == 1:  # unchanged table: alter symbol 2's length instead
        b[12] = 1
    with pytest.raises(HuffmanFormatError, match="Kraft|outside"):
        huffman_decode(bytes(b))


def test_table_preserving_corruption_caught_by_checksum():
    # Swapping the lengths of symbols 0 and 1 keeps a valid prefix code and the same bit
    # budget range, so only the checksum can tell.
    _, b = _buffer()
    b[8], b[10] = b[10], b[8]
    with pytest.raises(HuffmanFormatError, match="checksum"):
        huffman_decode(bytes(b))
    _, b = _buffer()
    b[14] ^= 0x01  # a padding bit in the payload
    with pytest.raises(HuffmanFormatError, match="checksum"):
        huffman_decode(bytes(b))


def test_inconsistent_object_rejected():
    enc, _ = _buffer()
    with pytest.raises(HuffmanFormatError, match="truncated"):
        HuffmanEncoded(payload=b"", payload_bits=enc.payload_bits, num_symbols=5, code_lengths=enc.code_lengths)
    with pytest.raises(HuffmanFormatError, match="Kraft"):
        HuffmanEncoded(payload=enc.payload, payload_bits=7, num_symbols=5, code_lengths=((0, 1), (1, 1), (2, 2)))
    # Payload bits that do not split into exactly num_symbols code words.
    bad = HuffmanEncoded(payload=enc.payload, payload_bits=enc.payload_bits, num_symbols=4, code_lengths=enc.code_lengths)
    with pytest.raises(HuffmanFormatError, match="payload"):
        huffman_decode(bad)
    assert issubclass(HuffmanFormatError, BayesStructError)
    assert issubclass(HuffmanFormatError, InvalidArgumentError)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=60), st.data())
def test_random_byte_flip_never_silently_wrong(symbols, data):
    b = bytearray(huffman_encode(symbols).to_bytes())
    i = data.draw(st.integers(0, len(b) - 1))
    b[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(HuffmanFormatError):
        huffman_decode(bytes(b))


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "bad",
    [
        [1, -2, 3],
        [1.5, 2.0],
        [1.0, float("nan")],
        [[1, 2], [3, 4]],
        5,
        ["a", "b"],
        np.array([True, False]),
        torch.tensor([[0, 1]]),
        [1, None],
    ],
)
def test_bad_symbols_named(bad):
    with pytest.raises(InvalidArgumentError, match="`symbols`"):
        huffman_encode(bad)


def test_bad_decode_argument():
    with pytest.raises(InvalidArgumentError, match="`encoded`"):
        huffman_decode([0, 1])
    with pytest.raises(InvalidArgumentError, match="`counts`"):
        huffman_code_lengths({0: -1})
