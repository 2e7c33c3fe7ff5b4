"""The lecture's two example families on real data (digits; MNIST when its files are present)."""

from pathlib import Path

import pytest
import torch

from bayesstruct.datasets import load_digits, load_mnist
from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError
from bayesstruct.families import NetworkFamily, fit_structure_posterior
from bayesstruct.families.examples import cell_graph, conv_family, conv_graph, one_layer_family, one_layer_graph
from bayesstruct.nn import StructureNetwork, operational_criteria

MNIST_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(
    not MNIST_DIR.is_dir(), reason=f"MNIST IDX files not available at {MNIST_DIR} (not shipped with the repo)"
)


def test_one_layer_graph_is_the_lectures_network():
    g = one_layer_graph(64, 10, hidden=16, primitives="linear_sigmoid,linear_tanh")
    assert g.edges == {(0, 1): ("linear_sigmoid", "linear_tanh"), (1, 2): ("linear",)}
    assert g.vertex_shapes == {0: (64,), 1: (16,), 2: (10,)}
    # f(x) = w^T(γ0 σ(W0 x + b0) + γ1 tanh(W1 x + b1)) + b, checked against the formula
    net = StructureNetwork(g).double()
    x = torch.rand(5, 64, dtype=torch.float64)
    gamma = torch.tensor([0.3, 0.7], dtype=torch.float64)
    l0, l1 = net.ops["e0_1"][0].linear, net.ops["e0_1"][1].linear
    out = net.ops["e1_2"][0].linear
    expected = out(gamma[0] * torch.sigmoid(l0(x)) + gamma[1] * torch.tanh(l1(x)))
    torch.testing.assert_close(net(x, {(0, 1): gamma}), expected)
    assert isinstance(one_layer_family(64, 10, hidden=4), NetworkFamily)


def test_cell_graph_has_32_structures_and_cutting_the_input_gives_a_constant():
    g = cell_graph(64, 10, hidden=8)
    assert len(NetworkFamily(g).structures()) == 4 * 4 * 2
    net = StructureNetwork(g).double()
    x = torch.rand(5, 64, dtype=torch.float64)
    for k in range(4):  # zero on both edges out of the input: the output does not depend on x
        cut = {(0, 1): torch.tensor([0.0, 0, 0, 1]), (1, 2): torch.eye(4)[k], (0, 2): torch.tensor([0.0, 1])}
        out = net(x, cut)
        torch.testing.assert_close(out, out[:1].expand(5, 10))
    # identity on 1 -> 2 and relu on the skip: f_2 = f_1 + relu(W x + b)
    gam = {(0, 1): torch.tensor([0.0, 1, 0, 0]), (1, 2): torch.tensor([0.0, 0, 1, 0]), (0, 2): torch.tensor([1.0, 0])}
    f1 = torch.tanh(net.ops["e0_1"][1].linear(x))
    f2 = f1 + torch.relu(net.ops["e0_2"][0].linear(x))
    torch.testing.assert_close(net(x, gam), net.ops["e2_3"][0].linear(f2))


def test_conv_graph_is_convolution_vs_pooling_then_glm():
    g = conv_graph((1, 8, 8), 10)
    assert g.edges == {(0, 1): ("conv3x3", "avgpool3x3"), (1, 2): ("flatten",), (2, 3): ("linear",)}
    assert g.vertex_shapes[2] == (64,)
    fam = conv_family((1, 8, 8), 10)
    assert [s["edge_0_1"] for s in fam.structures()] == ["conv3x3", "avgpool3x3"]
    # criteria of the two discrete structures: conv adds 9 + 1 parameters and 2*9*64 FLOPs
    net = StructureNetwork(g)
    conv = operational_criteria(net, gamma={(0, 1): torch.tensor([1.0, 0.0])}, repeats=2, warmup=0)
    pool = operational_criteria(net, gamma={(0, 1): torch.tensor([0.0, 1.0])}, repeats=2, warmup=0)
    assert conv.num_params - pool.num_params == 10
    assert conv.flops - pool.flops == 2 * 9 * 64 - 9 * 64
    with pytest.raises(InvalidArgumentError, match="edge"):  # pooling keeps 1 channel, conv would give 4
        conv_graph((1, 8, 8), 10, channels=4)
    with pytest.raises(InvalidArgumentError, match="image_shape"):
        conv_graph((8, 8), 10)
    with pytest.raises(UnknownNameError, match="conv5x5"):
        conv_graph((1, 8, 8), 10, primitives=["conv5x5"])


@pytest.mark.parametrize("family", ["one-layer", "conv"])
def test_example_families_learn_digits(family):
    # 300 digits, 150 SVI steps: training accuracy of the mixture far above chance (0.1).
    # Measured: one-layer 0.9, conv 0.8 after 150 steps.
    torch.manual_seed(0)
    x, y = load_digits(num_samples=300, seed=0)
    x = x.double()
    if family == "one-layer":
        g = one_layer_graph(64, 10, hidden=16)
    else:
        g, x = conv_graph((1, 8, 8), 10), x.reshape(-1, 1, 8, 8)
    post = fit_structure_posterior(g, x, y, num_steps=150, lr=0.05, temperature=0.5, seed=0, progress=False,
                                   num_elbo_particles=16, num_gamma_samples=200)
    net = StructureNetwork(g).double()
    with torch.no_grad():
        for n, p in net.named_parameters():
            p.copy_(post.weights[n])
        acc = (net(x, post.posterior_mean_gamma).argmax(-1) == y).double().mean()
    assert acc > 0.6, (acc, post)
    assert post.elbo < 0 and post.elbo > -300 * torch.log(torch.tensor(10.0)) - 2000
    assert post.losses[-1] < post.losses[0]


@needs_mnist
def test_one_layer_family_on_an_mnist_subset():
    x, y = load_mnist(MNIST_DIR, num_samples=300, seed=0)
    x = x.double()
    g = one_layer_graph(784, 10, hidden=8)
    post = fit_structure_posterior(g, x, y, num_steps=60, lr=0.05, temperature=0.5, seed=0, progress=False,
                                   num_elbo_particles=8, num_gamma_samples=100)
    net = StructureNetwork(g).double()
    with torch.no_grad():
        for n, p in net.named_parameters():
            p.copy_(post.weights[n])
        acc = (net(x, post.posterior_mean_gamma).argmax(-1) == y).double().mean()
    assert acc > 0.5, (acc, post)
