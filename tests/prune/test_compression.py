"""Deep Compression (weight sharing, centroid fine-tuning, compressed file) on a tiny 20-30-10 float32 MLP."""

import os

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.functional import mse_loss

from bayesstruct.exceptions import BayesStructError, InvalidArgumentError
from bayesstruct.prune import (
    CompressionFormatError,
    OutputExistsError,
    compress,
    decode_relative_indices,
    decompress,
    finetune_centroids,
    get_masks,
    prune,
    relative_indices,
    share_weights,
)


def make_net(seed=0, amount=0.8):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 10)).float()
    prune(net, "magnitude", amount=amount)
    return net


def make_data(seed=0, n=32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 20, generator=g, dtype=torch.float32), torch.randn(n, 10, generator=g, dtype=torch.float32)


def test_kmeans_deterministic_nearest_and_zeros_kept():
    net_a, net_b = make_net(), make_net()
    masks = get_masks(net_a)
    sa, sb = share_weights(net_a, bits=3), share_weights(net_b, bits=3)
    for n in sa.assignments:
        assert torch.equal(sa.codebooks[n], sb.codebooks[n]) and torch.equal(sa.assignments[n], sb.assignments[n])
        cb, a = sa.codebooks[n], sa.assignments[n]
        assert cb.shape == (8,) and cb[0] == 0 and cb.dtype == torch.float32
        assert torch.equal(a != 0, masks[n] > 0)  # pruned <-> index 0
        w = dict(net_a.named_modules())[n].weight.detach()
        assert torch.equal(w, cb[a])  # applied to the model
    # nearest centroid of the ORIGINAL (pre-quantisation) weights
    net_c = make_net()
    orig = {n: dict(net_c.named_modules())[n].weight.detach().clone() for n in sa.assignments}
    for n, w in orig.items():
        nz = w != 0
        d = (w[nz][:, None] - sa.codebooks[n][None, 1:]).abs()
        chosen = d.gather(1, (sa.assignments[n][nz] - 1)[:, None]).squeeze(1)
        assert torch.all(chosen <= d.min(dim=1).values)


def test_bits_per_layer_and_bad_arguments():
    net = make_net()
    s = share_weights(net, bits={"0": 2, "2": 4})
    assert s.codebooks["0"].numel() == 4 and s.codebooks["2"].numel() == 16
    with pytest.raises(BayesStructError, match="bits"):
        share_weights(make_net(), bits={"0": 2})
    with pytest.raises(BayesStructError, match="init"):
        share_weights(make_net(), init="random")
    x, y = make_data()
    with pytest.raises(InvalidArgumentError, match=r"`data`: the model fails on x of shape \(32, 19\)"):
        finetune_centroids(net, s, mse_loss, (x[:, 1:], y), num_steps=1)


def test_finetune_centroid_gradient_is_sum_of_member_gradients():
    net = make_net()
    shared = share_weights(net, bits=3)
    data = make_data()
    before = {n: c.clone() for n, c in shared.codebooks.items()}
    # hand computation: gradient of the loss w.r.t. the quantised weights, summed per cluster
    for p in net.parameters():
        p.grad = None
    mse_loss(net(data[0]), data[1]).backward()
    mods = dict(net.named_modules())
    expected = {}
    lr = 0.1
    for n, a in shared.assignments.items():
        g = mods[n].parametrizations.weight.original.grad.double()
        cb = before[n].double().clone()
        for k in range(1, cb.numel()):
            cb[k] -= lr * g[a == k].sum()
        expected[n] = cb.float()
    masks = get_masks(net)
    finetune_centroids(net, shared, mse_loss, data, num_steps=1, lr=lr)
    for n in shared.codebooks:
        assert shared.codebooks[n][0] == 0
        torch.testing.assert_close(shared.codebooks[n], expected[n], rtol=0, atol=1e-7)
        assert not torch.equal(shared.codebooks[n], before[n])
        w = mods[n].weight.detach()
        assert torch.equal(w, shared.codebooks[n][shared.assignments[n]])
        assert torch.all(w[masks[n] == 0] == 0)


def test_round_trip_exact(tmp_path):
    net = make_net()
    shared = share_weights(net, bits=5)
    finetune_centroids(net, shared, mse_loss, make_data(), num_steps=3, lr=0.01)
    path = tmp_path / "net.bsdc"
    report = compress(net, shared, path, index_bits=4)
    back = decompress(path)
    x = make_data(seed=1)[0]
    with torch.no_grad():
        assert torch.equal(back(x), net(x))
    for n, m in net.named_modules():
        if isinstance(m, nn.Linear):
            got = dict(back.named_modules())[n].weight
            assert torch.equal(got != 0, m.weight != 0)
    assert report.total_bytes == os.path.getsize(path)
    assert report.compression_ratio > 1
    d = report.to_dict()
    assert d["total_bytes"] == report.total_bytes and len(d["layers"]) == 2
    assert sum(l.num_nonzero for l in report.layers) == sum(int((m != 0).sum()) for m in shared.assignments.values())
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".bsdc-")]  # no temp file left


def test_relative_index_fillers():
    a = np.zeros(100, dtype=np.int64)
    a[[2, 40, 41, 99]] = [3, 1, 2, 5]
    gaps, idx = relative_indices(a, index_bits=3)  # max gap 7: 37 zeros -> 4 fillers; 57 -> 7 fillers
    assert gaps.max() <= 7
    assert (idx == 0).sum() == 4 + 7
    assert gaps[0] == 2 and idx[0] == 3
    assert np.array_equal(decode_relative_indices(gaps, idx, 100), a)
    # no fillers when the width suffices
    g5, i5 = relative_indices(a, index_bits=6)
    assert (i5 == 0).sum() == 0 and np.array_equal(decode_relative_indices(g5, i5, 100), a)


def test_fillers_in_a_file(tmp_path):
    net = nn.Sequential(nn.Linear(20, 30), nn.Tanh(), nn.Linear(30, 10)).float()
    mask = torch.zeros(30, 20)
    mask[0, 0] = mask[5, 3] = mask[29, 19] = 1  # gaps of ~100 and ~500 positions
    with torch.no_grad():
        net[0].weight.mul_(mask)
    shared = share_weights(net, bits=2)
    report = compress(net, shared, tmp_path / "f.bsdc", index_bits=4)
    assert report.layers[0].num_fillers > 0
    back = decompress(tmp_path / "f.bsdc")
    assert torch.equal(back[0].weight, net[0].weight)
    x = make_data()[0]
    with torch.no_grad():
        assert torch.equal(back(x), net(x))


def test_corrupt_and_truncated_files_raise(tmp_path):
    net = make_net()
    shared = share_weights(net, bits=4)
    path = tmp_path / "net.bsdc"
    compress(net, shared, path)
    data = path.read_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "empty": b"",
        "flipped": data[:60] + bytes([data[60] ^ 0x10]) + data[61:],
        "magic": b"XXXX" + data[4:],
        "tail": data + b"\0",
    }
    for name, blob in cases.items():
        bad = tmp_path / f"{name}.bsdc"
        bad.write_bytes(blob)
        with pytest.raises(CompressionFormatError):
            decompress(bad)
    assert issubclass(CompressionFormatError, BayesStructError)


def test_bad_path_names_the_argument_and_writes_nothing(tmp_path):
    net = make_net()
    shared = share_weights(net, bits=3)
    with pytest.raises(InvalidArgumentError, match="`path` .* is a directory"):
        compress(net, shared, tmp_path)
    with pytest.raises(InvalidArgumentError, match="`path`: directory .*missing.* does not exist"):
        compress(net, shared, tmp_path / "missing" / "net.bsdc")
    assert os.listdir(tmp_path) == []


def test_unsupported_modules_raise(tmp_path):
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x)

    net = Custom().float()
    with pytest.raises(CompressionFormatError, match="nn.Sequential"):
        compress(net, share_weights(net, bits=2), tmp_path / "c.bsdc")
    seq = nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 2)).float()
    with pytest.raises(CompressionFormatError, match="GELU"):
        compress(seq, share_weights(seq, bits=2), tmp_path / "g.bsdc")
    assert not (tmp_path / "g.bsdc").exists()


def test_conv_round_trip(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 5 * 5, 4)).float()
    prune(net, "magnitude", amount=0.7)
    shared = share_weights(net, bits=3)
    compress(net, shared, tmp_path / "conv.bsdc", index_bits=5)
    back = decompress(tmp_path / "conv.bsdc")
    x = torch.randn(2, 1, 5, 5, dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(back(x), net(x))


def test_an_existing_file_is_refused_unless_overwrite(tmp_path):
    net = make_net()
    shared = share_weights(net, bits=3)
    path = tmp_path / "net.bsdc"
    path.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match=r"`path` '.*net\.bsdc' already exists; pass overwrite=True") as info:
        compress(net, shared, path)  # before: silently replaced
    assert isinstance(info.value, FileExistsError) and isinstance(info.value, InvalidArgumentError)
    assert path.read_bytes() == b"precious" and os.listdir(tmp_path) == ["net.bsdc"]
    with pytest.raises(InvalidArgumentError, match="`overwrite` must be True or False"):
        compress(net, shared, path, overwrite="yes")
    report = compress(net, shared, path, overwrite=True)
    assert report.total_bytes == os.path.getsize(path) and path.read_bytes()[:4] == b"BSDC"
    assert torch.equal(decompress(path)[0].weight, net[0].weight)
    compress(net, shared, tmp_path / "fresh.bsdc")  # a new path needs no overwrite


def test_a_centroid_moved_to_zero_is_not_counted_as_a_non_zero_weight(tmp_path):
    net = make_net()
    shared = share_weights(net, bits=3)
    with torch.no_grad():
        shared.codebooks["0"][1] = 0.0  # as fine-tuning could leave it
    shared.apply(net)
    report = compress(net, shared, tmp_path / "z.bsc", index_bits=4)
    assert report.layers[0].num_nonzero == int((net[0].weight != 0).sum()) < int((shared.assignments["0"] != 0).sum())


def test_a_forged_file_with_a_non_finite_centroid_is_refused(tmp_path):
    import struct
    import zlib

    net = make_net()
    shared = share_weights(net, bits=3)
    path = tmp_path / "f.bsc"
    compress(net, shared, path, index_bits=4)
    data = bytearray(path.read_bytes())
    header_len = struct.unpack(">I", data[5:9])[0]
    first_centroid = 9 + header_len
    data[first_centroid:first_centroid + 4] = struct.pack("<f", float("nan"))
    data[-4:] = struct.pack(">I", zlib.crc32(bytes(data[:-4])))  # a forged file passes the checksum
    path.write_bytes(bytes(data))
    with pytest.raises(CompressionFormatError, match="codebook of layer 0 is not finite"):
        decompress(path)
