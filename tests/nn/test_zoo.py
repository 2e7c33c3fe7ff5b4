"""LeNet-300-100 and LeNet-5: the sizes the papers report, and a Deep Compression round trip of LeNet-5."""

import pytest
import torch
from torch import nn

from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError
from bayesstruct.nn import lenet300, lenet5, make_architecture
from bayesstruct.prune import compress, decompress, prunable_layers, prune, share_weights


def num_prunable(net):
    return sum(m.weight.numel() for _, m in prunable_layers(net))


def test_lenet300_has_the_papers_266k_weights():
    net = lenet300()
    # Han et al. 2015, table 1: LeNet-300-100 has 267K parameters = 266,200 weights + 410 biases
    assert num_prunable(net) == 784 * 300 + 300 * 100 + 100 * 10 == 266_200
    assert sum(p.numel() for p in net.parameters()) == 266_610
    assert net(torch.zeros(3, 784)).shape == (3, 10)
    assert [type(m) for m in net] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    small = lenet300(64, 5, hidden=(7,), dtype=torch.float32)
    assert small(torch.zeros(2, 64, dtype=torch.float32)).shape == (2, 5) and small[0].weight.dtype == torch.float32


def test_lenet5_has_the_papers_431k_weights_and_works_on_8x8():
    net = lenet5()
    # Han et al. 2015, table 2: conv1 0.5K, conv2 25K, fc1 400K, fc2 5K weights
    assert [m.weight.numel() for _, m in prunable_layers(net)] == [500, 25_000, 400_000, 5_000]
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    small = lenet5(8)  # unpadded convolutions would shrink 8x8 to nothing: padding 2 -> 50*2*2 features
    assert small[0].padding == (2, 2) and small[5].in_features == 200
    assert small(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(InvalidArgumentError, match="input_size"):
        lenet5(8, padding=0)
    with pytest.raises(InvalidArgumentError, match="dtype"):
        lenet300(dtype=torch.int64)
    with pytest.raises(InvalidArgumentError, match="hidden"):
        lenet300(hidden=())


def test_make_architecture_sizes_from_an_example_and_rejects_bad_names():
    assert make_architecture("lenet300", torch.zeros(1, 64))[0].in_features == 64
    assert make_architecture("LeNet5", torch.zeros(1, 3, 12, 12), 4)[0].in_channels == 3
    with pytest.raises(UnknownNameError, match="lenet300"):
        make_architecture("vgg", torch.zeros(1, 64))
    with pytest.raises(InvalidArgumentError, match="lenet5"):
        make_architecture("lenet5", torch.zeros(1, 64))


def test_lenet5_compresses_to_a_file_that_decodes_to_the_same_outputs(tmp_path):
    torch.manual_seed(0)
    net = lenet5(8, dtype=torch.float32)
    prune(net, "magnitude", amount=0.8, scope="layer")
    shared = share_weights(net, bits=4)
    report = compress(net, shared, tmp_path / "lenet5.bsc")
    restored = decompress(report.path)  # MaxPool2d is described in the file's architecture header
    x = torch.randn(5, 1, 8, 8, dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(restored(x), net(x))
    assert isinstance(restored[1], nn.MaxPool2d)
