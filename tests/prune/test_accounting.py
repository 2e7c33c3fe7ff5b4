"""Bit accounting checked against hand-computed small cases and against the real file size."""

import json
import math
import os

import pytest
import torch
from torch import nn

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.prune import (
    Account,
    VariationalFit,
    account,
    accounting_table,
    compress,
    prune,
    share_weights,
    sparse_layer_bits,
)


def two_layer():
    """Linear(8 -> 2) with non-zeros at flat positions 0, 1, 9, then Linear(2 -> 3) dense; float32."""
    net = nn.Sequential(nn.Linear(8, 2), nn.ReLU(), nn.Linear(2, 3)).float()
    with torch.no_grad():
        w = torch.zeros(16)
        w[[0, 1, 9]] = torch.tensor([0.5, -1.0, 2.0])
        net[0].weight.copy_(w.reshape(2, 8))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
        net[2].bias.zero_()
    return net


def test_sparse_format_by_hand_with_fillers():
    net = two_layer()
    # index_bits=2: gaps up to 3. Entries: pos 0 (gap 0), pos 1 (gap 0), then 7 zeros before pos 9:
    # one filler covering 4 positions (gap 3) and the entry at pos 9 (gap 3) -> 4 entries of 32 + 2 bits.
    assert sparse_layer_bits(net[0].weight, 2) == (4, 4 * 34)
    x = torch.zeros(4, 8)
    y = torch.tensor([0, 1, 2, 0])
    acc = account(net, (x, y), method="hand", index_bits=2)
    l0, l2 = acc.layers
    assert (l0.format, l0.num_nonzero, l0.num_entries, l0.weight_bits, l0.index_bits, l0.bias_bits) == ("sparse", 3, 4, 128, 8, 64)
    # the dense 2x3 layer: sparse would cost 6 * 34 > 6 * 32 bits, so it is stored dense without indices
    assert (l2.format, l2.weight_bits, l2.index_bits, l2.bias_bits) == ("dense", 192, 0, 96)
    assert acc.total_bits == 128 + 8 + 64 + 192 + 96 == 488 and acc.total_bytes == 61
    assert acc.dense_bytes == 4 * (16 + 2 + 6 + 3) == 108
    assert acc.compression_ratio == pytest.approx(108 / 61)
    assert acc.file_bytes is None and acc.model_bits == 8 * 61 and acc.model_bits_source == "storage"
    # zero input, zero biases: uniform logits over 3 classes -> log2(3) bits per label, argmax = class 0
    assert acc.data_bits == pytest.approx(4 * math.log2(3))
    assert acc.test_error == pytest.approx(0.5)
    assert acc.mdl_bits == pytest.approx(acc.model_bits + acc.data_bits)
    assert acc.num_nonzero == 3 + 6 and acc.num_weights == 22


def test_unpruned_model_has_ratio_one():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).float()
    acc = account(net, (torch.randn(6, 5), torch.zeros(6, dtype=torch.long)), method="dense")
    assert all(la.format == "dense" for la in acc.layers) and acc.compression_ratio == 1.0


def test_deep_compression_total_is_the_file_size(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 4)).float()
    prune(net, "magnitude", amount=0.8)
    shared = share_weights(net, bits=3)
    report = compress(net, shared, tmp_path / "m.bsc", index_bits=4)
    x, y = torch.randn(50, 20), torch.randint(0, 4, (50,))
    acc = account(net, (x, y), method="deep-compression", compressed=report)
    assert acc.total_bytes == acc.file_bytes == os.path.getsize(tmp_path / "m.bsc")
    assert acc.model_bits == 8 * os.path.getsize(tmp_path / "m.bsc")
    for la, lc in zip(acc.layers, report.layers):
        assert (la.format, la.weight_bits, la.index_bits, la.codebook_bits, la.table_bits) == (
            "huffman", lc.weight_bits, lc.index_bits, lc.codebook_bits, lc.table_bits)
    # the file's payload plus its framing (header, lengths, checksum) is the file
    assert acc.total_bits <= 8 * acc.file_bytes
    plain = account(net, (x, y), method="pruned")
    assert plain.test_error == acc.test_error and plain.data_bits == pytest.approx(acc.data_bits)
    # a model the file does not hold is refused, not silently accounted: another bias ...
    bias = net[0].bias.detach().clone()
    with torch.no_grad():
        net[0].bias.add_(5.0)
    with pytest.raises(InvalidArgumentError, match="does not hold `model`'s weights and biases"):
        account(net, (x, y), method="dc", compressed=report)
    with torch.no_grad():
        net[0].bias.copy_(bias)
    assert account(net, (x, y), method="dc", compressed=report).file_bytes == acc.file_bytes
    # ... or another weight
    with torch.no_grad():
        net[0].parametrizations.weight.original[0, 0] += 1.0
        net[0].parametrizations.weight[0].mask[0, 0] = 1.0
    with pytest.raises(InvalidArgumentError, match="does not hold"):
        account(net, (x, y), method="dc", compressed=report)


def _unit_fit(bias: bool):
    """A 2-weight net at means (1, 2), and the fit q = N(mean, 1) with prior N(0, 1): KL = 1/2 + 2 nats."""
    net = nn.Sequential(nn.Linear(2, 1, bias=bias)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 2.0]]))
    loc = {"0": torch.tensor([[1.0, 2.0]], dtype=torch.float64)}
    scale = {"0": torch.tensor([[1.0, 1.0]], dtype=torch.float64)}
    fit = VariationalFit(layers=("0",), loc=loc, scale=scale, point_params={}, prior_scale=1.0, data_bits=0.0, model_bits=0.0,
                         initial_total_bits=0.0, history=(), likelihood="categorical", num_steps=1, lr=0.1, seed=0, param_state={})
    return net, fit, (torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3, dtype=torch.long))


def test_variational_fit_costs_the_kl_of_the_surviving_weights():
    net, fit, (x, y) = _unit_fit(bias=False)
    # KL(N(mu, 1) || N(0, 1)) = mu^2 / 2 nats: 1/2 + 2 for the two weights
    acc = account(net, (x, y), method="graves", fit=fit)
    assert acc.model_bits_source == "kl" and acc.model_bits == pytest.approx(2.5 / math.log(2))
    # prune the first weight: it costs no KL, so only the second one's 2 nats remain -- plus the position of
    # the survivor, which the receiver needs since the evaluated model has the pruned weight at exactly 0:
    # one 5-bit relative index (index_bits=5; the sparse format, 37 bits, is smaller than the dense 64)
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.1, 5.0]]))
    prune(net, "magnitude", threshold=1.0)
    pruned = account(net, (x, y), method="graves", fit=fit)
    assert pruned.layers[0].format == "sparse" and pruned.layers[0].index_bits == 5
    assert pruned.model_bits == pytest.approx(2.0 / math.log(2) + 5)


def test_variational_fit_l_m_counts_the_biases_like_every_other_row():
    net, fit, (x, y) = _unit_fit(bias=True)
    acc = account(net, (x, y), method="graves", fit=fit)
    storage = account(net, (x, y), method="dense")
    assert acc.bias_bits == storage.bias_bits == 32
    assert acc.model_bits == pytest.approx(2.5 / math.log(2) + 32)  # the KL of the weights, the bias in float32


def test_batch_norm_statistics_are_counted_in_the_size_and_the_dense_baseline():
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    acc = account(net, (torch.randn(6, 4), torch.randint(0, 2, (6,))), method="bn")
    assert acc.other_bits == 32 * (8 + 8 + 8 + 8)  # weight, bias, running mean and variance (not the step count)
    assert acc.dense_bytes == 4 * (4 * 8 + 8 + 8 * 2 + 2 + 4 * 8)
    prune(net, "magnitude", amount=0.5)
    assert account(net, (torch.randn(6, 4), torch.randint(0, 2, (6,))), method="bn").other_bits == acc.other_bits  # masks are not "other"


def test_table_markdown_json_and_bad_input():
    net = two_layer()
    data = (torch.zeros(4, 8), torch.tensor([0, 1, 2, 0]))
    rows = [account(net, data, method="a"), account(net, data, method="b", index_bits=2)]
    table = accounting_table(rows)
    md = table.to_markdown().splitlines()
    assert len(md) == 2 + 2 and md[0].startswith("| method | kept") and md[2].startswith("| a |")
    # every line has the same number of cells (the "|" of "L(D|M)" is escaped)
    assert len({line.replace("\\|", "").count("|") for line in md}) == 1
    assert len(str(table).splitlines()) == 3
    d = json.loads(table.to_json())
    assert [r["method"] for r in d["rows"]] == ["a", "b"] and d["rows"][1]["total_bytes"] == 61
    assert set(d["columns"]) <= set(d["rows"][0])
    with pytest.raises(InvalidArgumentError, match="reports"):
        accounting_table([])
    with pytest.raises(InvalidArgumentError, match="index_bits"):
        account(net, data, method="x", index_bits=0)
    with pytest.raises(InvalidArgumentError, match="at most one"):
        account(net, data, method="x", compressed=object(), fit=object())
    with pytest.raises(InvalidArgumentError, match="CompressionReport"):
        account(net, data, method="x", compressed="model.bsc")
    with pytest.raises(InvalidArgumentError, match="data_test"):
        account(net, (torch.zeros(4, 8), torch.zeros(3, dtype=torch.long)), method="x")
    assert isinstance(rows[0], Account)


def test_a_bayesian_pyro_module_is_refused_not_miscounted():
    import pyro.distributions as dist
    from pyro.nn import PyroModule, PyroSample

    from bayesstruct.exceptions import InvalidArgumentError

    layer = PyroModule[torch.nn.Linear](3, 2)
    layer.weight = PyroSample(dist.Normal(0.0, 1.0).expand([2, 3]).to_event(2))
    with pytest.raises(InvalidArgumentError, match="PyroSample weights"):
        account(layer, (torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)), method="bnn")


def test_table_bit_columns_add_up_to_the_total_and_the_file_column_is_its_size(tmp_path):
    import re

    torch.manual_seed(0)
    x, y = torch.randn(30, 20), torch.randint(0, 4, (30,))
    dc_net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 4)).float()
    prune(dc_net, "magnitude", amount=0.8)
    report = compress(dc_net, share_weights(dc_net, bits=3), tmp_path / "m.bsc", index_bits=4)
    normed = nn.Sequential(nn.Linear(20, 30), nn.LayerNorm(30), nn.Linear(30, 4)).float()  # 60 "other" parameters
    prune(normed, "magnitude", amount=0.5)
    rows = [account(normed, (x, y), method="normed"), account(dc_net, (x, y), method="dc", compressed=report)]
    size = os.path.getsize(tmp_path / "m.bsc")
    assert rows[0].other_bits == 32 * 60 and rows[0].bias_bits == 32 * (30 + 4) == rows[1].bias_bits
    for r in rows:
        assert r.weight_bits + r.index_bits + r.codebook_bits + r.bias_bits + r.other_bits == r.total_bits
    lines = str(accounting_table(rows)).splitlines()
    head = re.split(r"\s{2,}", lines[0].strip())
    for line, r in zip(lines[1:], rows):
        cell = dict(zip(head, re.split(r"\s{2,}", line.strip())))
        parts = ("weight bits", "index bits", "codebook bits", "bias bits", "other bits")
        assert sum(int(cell[c]) for c in parts) == int(cell["total bits"]) == r.total_bits, cell
        assert cell["file bytes"] == ("-" if r.file_bytes is None else str(size))  # was "yes"
    assert int(cell["bytes"]) == size
    md = accounting_table(rows).to_markdown().splitlines()
    assert "| bias bits | other bits | total bits |" in md[0] and f"| {size} | {size} |" in md[3]
    # JSON: the old keys are all still there; bias_bits is added (the table's columns are row keys)
    d = json.loads(accounting_table(rows).to_json())
    old = {"method", "fraction_kept", "num_nonzero", "weight_bits", "index_bits", "codebook_bits", "other_bits", "total_bits",
           "total_bytes", "file_bytes", "compression_ratio", "test_error", "model_bits", "data_bits", "mdl_bits"}
    assert old <= set(d["rows"][0]) and d["rows"][0]["bias_bits"] == 32 * 34 and set(d["columns"]) <= set(d["rows"][0])
    # the per-layer listing of one Account adds up too: a total per layer, the other parameters, the total
    text = str(rows[0]).splitlines()
    layer_totals = [int(line.split()[-1]) for line in text[2:4]]
    assert text[1].split()[-2:] == ["total", "bits"] and text[4].split()[:2] == ["other", "dense"]
    assert layer_totals == [la.total_bits for la in rows[0].layers]
    assert sum(layer_totals) + int(text[4].split()[-1]) == rows[0].total_bits
    assert text[5] == f"  total {rows[0].total_bits} payload bits = {rows[0].total_bytes} bytes"
    assert f"the file is {size} bytes" in str(rows[1]).splitlines()[-1]
