import re

import pytest
import torch

from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError
from bayesstruct.nn import DiscreteStructureNetwork, StructureGraph, StructureNetwork
from bayesstruct.priors import structure_prior


def lecture_graph():
    # f(x) = softmax(w^T (gamma_0 sigma(W0 x) + gamma_1 tanh(W1 x))) (the lecture's two sigmoid layers would
    # repeat a primitive on one edge, which StructureGraph refuses: gamma would not be identifiable)
    return StructureGraph(
        3,
        edges={(0, 1): ["linear_sigmoid", "linear_tanh"], (1, 2): ["linear_softmax"]},
        input_shape=(4,),
        vertex_shapes={1: (5,), 2: (3,)},
    )


def cell_graph():
    # a DARTS-like image cell: 0 -> 1 -> 3, 0 -> 2 -> 3, 0 -> 3, with zero options
    ops = ["conv3x3", "maxpool3x3", "zero", "identity"]
    return StructureGraph(
        4,
        edges={(0, 1): ops, (0, 2): ["conv1x1", "zero"], (1, 3): ops, (2, 3): ["avgpool3x3", "zero"], (0, 3): ["zero", "identity"]},
        aggregation={1: "sum", 2: "sum", 3: "mean"},
        input_shape=(2, 5, 5),
        vertex_shapes=(2, 5, 5),
    )


def test_lecture_one_layer_example_matches_hand_computation():
    net = StructureNetwork(lecture_graph())
    x = torch.randn(6, 4)
    gamma = {(0, 1): torch.tensor([0.3, 0.7])}
    (g0, g1), (out,) = net.ops["e0_1"], net.ops["e1_2"]
    W0, b0 = g0.linear.weight.detach().clone(), g0.linear.bias.detach().clone()
    W1, b1 = g1.linear.weight.detach().clone(), g1.linear.bias.detach().clone()
    w, b = out.linear.weight.detach().clone(), out.linear.bias.detach().clone()
    f1 = 0.3 * torch.sigmoid(x @ W0.T + b0) + 0.7 * torch.tanh(x @ W1.T + b1)
    expected = torch.softmax(f1 @ w.T + b, dim=-1)
    torch.testing.assert_close(net(x, gamma), expected)
    # default gamma: one-hot of the first primitive
    torch.testing.assert_close(net(x), torch.softmax(torch.sigmoid(x @ W0.T + b0) @ w.T + b, dim=-1))


def test_gamma_batch_broadcasts_and_gradients_flow():
    net = StructureNetwork(lecture_graph())
    x = torch.randn(6, 4)
    gammas = structure_prior("simplex_interior", [0.5, 0.5], temperature=0.5).sample((7,))  # (7, 2)
    y = net(x, {(0, 1): gammas})
    assert y.shape == (7, 6, 3)
    for s in (0, 6):
        torch.testing.assert_close(y[s], net(x, {(0, 1): gammas[s]}))
    g = torch.tensor([0.4, 0.6], requires_grad=True)
    net(x, {(0, 1): g}).sum().backward()  # softmax rows sum to 1: grad ~ 0 but defined
    assert g.grad is not None and g.grad.shape == (2,)


def test_image_cell_mean_aggregation_and_discretize():
    graph = cell_graph()
    net = StructureNetwork(graph)
    x = torch.randn(3, 2, 5, 5)
    gamma = {
        (0, 1): torch.tensor([0.1, 0.6, 0.2, 0.1]),  # maxpool
        (0, 2): torch.tensor([0.2, 0.8]),  # zero -> dropped
        (1, 3): torch.tensor([0.7, 0.1, 0.1, 0.1]),  # conv3x3
        (2, 3): torch.tensor([0.9, 0.1]),  # avgpool of an all-zero vertex 2
        (0, 3): torch.tensor([0.4, 0.6]),  # identity
    }
    assert net(x, gamma).shape == (3, 2, 5, 5)
    d = net.discretize(gamma)
    assert isinstance(d, DiscreteStructureNetwork)
    assert d.choice == {(0, 1): "maxpool3x3", (0, 2): "zero", (1, 3): "conv3x3", (2, 3): "avgpool3x3", (0, 3): "identity"}
    assert set(d.ops.keys()) == {"e0_1", "e1_3", "e2_3", "e0_3"}
    assert {k: type(m).name for k, m in d.ops.items()} == {
        "e0_1": "maxpool3x3", "e1_3": "conv3x3", "e2_3": "avgpool3x3", "e0_3": "identity"}
    assert sum(p.numel() for p in d.parameters()) == 2 * 2 * 9 + 2  # one conv3x3
    one_hot = {e: torch.nn.functional.one_hot(t.argmax(), t.numel()).double() for e, t in gamma.items()}
    torch.testing.assert_close(d(x), net(x, one_hot))
    # hand computation: mean over the three in-edges of vertex 3
    pool = torch.nn.functional.max_pool2d(x, 3, 1, 1)
    conv = net.ops["e1_3"][0].conv
    torch.testing.assert_close(d(x), (conv(pool) + 0 + x) / 3)


def test_discretize_lecture_example_holds_only_chosen():
    net = StructureNetwork(lecture_graph())
    x = torch.randn(6, 4)
    d = net.discretize({(0, 1): torch.tensor([0.2, 0.8])})
    assert d.choice[(0, 1)] == "linear_tanh"
    assert len(list(d.modules())) == 1 + 1 + 2 * 2  # self, ModuleDict, 2 x (primitive, nn.Linear)
    assert sum(p.numel() for p in d.parameters()) == (4 * 5 + 5) + (5 * 3 + 3)
    torch.testing.assert_close(d(x), net(x, {(0, 1): torch.tensor([0.0, 1.0])}))
    # deep copies: training the discrete network does not touch the mixture network
    assert d.ops["e0_1"].linear.weight is not net.ops["e0_1"][1].linear.weight
    torch.testing.assert_close(d.ops["e0_1"].linear.weight, net.ops["e0_1"][1].linear.weight)


def test_all_zero_edges_give_zero_vertex():
    graph = StructureGraph(3, {(0, 1): ["zero", "linear"], (1, 2): "linear"}, input_shape=(4,), vertex_shapes={1: (2,), 2: (1,)})
    net = StructureNetwork(graph)
    d = net.discretize()
    x = torch.randn(5, 4)
    torch.testing.assert_close(d(x), net(x))
    torch.testing.assert_close(d(x), net.ops["e1_2"][0].linear.bias.expand(5, 1))


# ----------------------------------------------------------------------------- validation


def test_cycle_names_its_vertices():
    with pytest.raises(InvalidArgumentError, match=re.escape("the edges form a cycle 1 -> 2 -> 3 -> 1")):
        StructureGraph(5, {(0, 1): "linear", (1, 2): "linear", (2, 3): "linear", (3, 1): "linear", (3, 4): "linear"},
                       input_shape=(2,), vertex_shapes=(2,))
    with pytest.raises(InvalidArgumentError, match=re.escape("cycle 1 -> 1")):
        StructureGraph(3, {(0, 1): "linear", (1, 1): "linear", (1, 2): "linear"}, input_shape=(2,), vertex_shapes=(2,))


def test_output_unreachable():
    with pytest.raises(InvalidArgumentError, match=r"the output vertex 3 is unreachable from the input vertex 0 \(reachable: \[0, 1\]\)"):
        StructureGraph(4, {(0, 1): "linear", (2, 3): "linear"}, input_shape=(2,), vertex_shapes=(2,))
    with pytest.raises(InvalidArgumentError, match=r"vertices \[2\] are unreachable"):
        StructureGraph(4, {(0, 1): "linear", (1, 3): "linear", (2, 3): "linear"}, input_shape=(2,), vertex_shapes=(2,))


def test_edge_primitives_disagree_on_shape():
    msg = ("edge (0, 1): its primitives disagree on the output shape (conv3x3 -> (16, 8, 8), maxpool3x3 -> (3, 8, 8)) "
           "for input shape (3, 8, 8)")
    with pytest.raises(InvalidArgumentError, match=re.escape(msg)):
        StructureGraph(2, {(0, 1): ["conv3x3", "maxpool3x3"]}, input_shape=(3, 8, 8), vertex_shapes={1: (16, 8, 8)})
    with pytest.raises(InvalidArgumentError, match=re.escape("edge (0, 1): primitives ['maxpool3x3'] give shape (3, 8, 8) but vertex 1 has shape (16, 8, 8)")):
        StructureGraph(2, {(0, 1): ["maxpool3x3"]}, input_shape=(3, 8, 8), vertex_shapes={1: (16, 8, 8)})
    with pytest.raises(InvalidArgumentError, match=re.escape("edge (0, 1) from vertex shape (4,): primitive 'conv3x3' takes inputs")):
        StructureGraph(2, {(0, 1): ["conv3x3"]}, input_shape=(4,), vertex_shapes={1: (4,)})


def test_unknown_names_list_valid_ones():
    with pytest.raises(UnknownNameError, match=r"edge \(0, 1\): unknown primitive 'conv7'; registered primitives: .*conv1x1, conv3x3"):
        StructureGraph(2, {(0, 1): ["linear", "conv7"]}, input_shape=(2,), vertex_shapes=(2,))
    with pytest.raises(UnknownNameError, match=r"vertex 1: unknown aggregation 'max'; valid aggregations: mean, sum"):
        StructureGraph(2, {(0, 1): "linear"}, aggregation="max", input_shape=(2,), vertex_shapes=(2,))


def test_malformed_arguments():
    ok = dict(input_shape=(2,), vertex_shapes=(2,))
    with pytest.raises(InvalidArgumentError, match="`num_vertices` must be an int >= 2"):
        StructureGraph(1, {(0, 0): "linear"}, **ok)
    with pytest.raises(InvalidArgumentError, match=r"edge \(0, 5\): an edge is a pair"):
        StructureGraph(2, {(0, 5): "linear"}, **ok)
    with pytest.raises(InvalidArgumentError, match="vertex 0 is the input"):
        StructureGraph(2, {(0, 1): "linear", (1, 0): "linear"}, **ok)
    with pytest.raises(InvalidArgumentError, match=r"`vertex_shapes` lacks the shape of vertices \[2\]"):
        StructureGraph(3, {(0, 1): "linear", (1, 2): "linear"}, input_shape=(2,), vertex_shapes={1: (2,)})


def test_forward_argument_errors():
    net = StructureNetwork(lecture_graph())
    with pytest.raises(InvalidArgumentError, match=r"`x` must have shape \(\.\.\., 4\)"):
        net(torch.randn(6, 5))
    with pytest.raises(InvalidArgumentError, match=r"`gamma\[\(0, 1\)\]` must have shape \(\.\.\., 2\)"):
        net(torch.randn(6, 4), {(0, 1): torch.ones(3)})
    with pytest.raises(InvalidArgumentError, match=r"`gamma` has key \(0, 2\), which is not an edge"):
        net(torch.randn(6, 4), {(0, 2): torch.ones(2)})
    with pytest.raises(InvalidArgumentError, match="must be one structure"):
        net.discretize({(0, 1): torch.ones(3, 2)})


def test_vertices_that_cannot_reach_the_output_are_refused():
    # the user's report: vertices 1 and 2 are a dead end, only (0, 3) reaches the output
    edges = {(0, 1): "linear", (0, 3): "linear", (1, 2): ["linear", "linear_tanh"]}
    with pytest.raises(InvalidArgumentError,
                       match=r"vertices \[1, 2\] cannot reach the output vertex 3.*edges \[\(0, 1\), \(1, 2\)\]"):
        StructureGraph(4, edges, input_shape=(4,), vertex_shapes=(4,))
    # one dead vertex hanging off a valid path 0 -> 1 -> 3
    with pytest.raises(InvalidArgumentError, match=r"vertices \[2\] cannot reach the output vertex 3"):
        StructureGraph(4, {(0, 1): "linear", (1, 3): "linear", (1, 2): "linear"}, input_shape=(2,), vertex_shapes=(2,))
    # the input-side check still comes first for a vertex that is both unreachable and a dead end
    with pytest.raises(InvalidArgumentError, match="unreachable from the input"):
        StructureGraph(4, {(0, 3): "linear", (1, 2): "linear"}, input_shape=(2,), vertex_shapes=(2,))
    # once every vertex lies on a path 0 -> ... -> 3, the same edges are accepted and all of them count
    g = StructureGraph(4, {**edges, (2, 3): "linear"}, input_shape=(4,), vertex_shapes=(4,))
    assert StructureNetwork(g).discretize().edges_in_use() == [(0, 1), (1, 2), (0, 3), (2, 3)]


@pytest.mark.parametrize("names, repeated", [
    (["linear", "linear"], r"'linear' 2 times"),
    (["linear_tanh", "zero", "Linear_Tanh ", "linear_tanh"], r"'linear_tanh' 3 times"),  # the canonical names repeat
])
def test_a_primitive_listed_twice_on_one_edge_is_refused(names, repeated):
    with pytest.raises(InvalidArgumentError, match=r"edge \(0, 1\): .*repeats " + repeated + ".*non-identifiable"):
        StructureGraph(3, {(0, 1): names, (1, 2): "linear"}, input_shape=(2,), vertex_shapes=(2,))
    # the same primitive on two different edges is fine
    StructureGraph(3, {(0, 1): ["linear", "zero"], (1, 2): ["linear", "zero"], (0, 2): "linear"},
                   input_shape=(2,), vertex_shapes=(2,))


def test_an_input_of_another_dtype_is_refused_with_the_cast_to_make():
    net = StructureNetwork(lecture_graph()).float()  # float32 parameters (the test session's default is float64)
    x64 = torch.randn(7, 4, dtype=torch.float64)
    msg = r"`x` is float64 but the network's parameters are float32: call `net.double\(\)` or pass `x.float\(\)`"
    with pytest.raises(InvalidArgumentError, match=msg):
        net(x64)
    with pytest.raises(InvalidArgumentError, match=msg):
        net.discretize()(x64)
    with pytest.raises(InvalidArgumentError, match=r"`x` is float16 .* `net.half\(\)` or pass `x.float\(\)`"):
        net(x64.half())
    # either suggested fix works, and they agree
    out64 = net.double()(x64)
    assert out64.dtype == torch.float64
    torch.testing.assert_close(net.float()(x64.float()), out64.float())
    # a network without parameters takes any floating dtype (nothing to disagree with)
    pool = StructureNetwork(StructureGraph(2, {(0, 1): ["identity", "zero"]}, input_shape=(3,), vertex_shapes=(3,)))
    torch.testing.assert_close(pool(x64[:, :3]), x64[:, :3])


def test_a_primitive_with_weight_zero_contributes_zero_even_where_it_overflows():
    # 0 * inf is NaN: the mixture at a one-hot gamma must still equal the discretized network
    graph = StructureGraph(3, {(0, 1): ["linear", "zero"], (0, 2): "linear", (1, 2): "linear"},
                           input_shape=(2,), vertex_shapes={1: (3,), 2: (2,)})
    net = StructureNetwork(graph)
    with torch.no_grad():
        net.ops["e0_1"][0].linear.weight.fill_(1e300)  # the unchosen linear gives inf for this x
    x = torch.full((4, 2), 1e10)
    one_hot = {(0, 1): torch.tensor([0.0, 1.0])}
    assert not torch.isfinite(net.ops["e0_1"][0](x)).all()
    torch.testing.assert_close(net(x, one_hot), net.discretize(one_hot)(x), rtol=0, atol=0)
    # a gamma that needs gradients keeps the product, so d f / d gamma_i = op_i(x) is still there
    g = torch.tensor([0.0, 1.0], requires_grad=True)
    with torch.no_grad():
        net.ops["e0_1"][0].linear.weight.fill_(0.5)
    f = net(torch.randn(4, 2), {(0, 1): g}).sum()
    f.backward()
    assert g.grad is not None and g.grad[0] != 0


def test_a_nan_in_gamma_is_refused_where_argmax_would_read_it_as_the_maximum():
    net = StructureNetwork(lecture_graph())
    for method in (net.choice, net.discretize, net.edges_in_use):
        with pytest.raises(InvalidArgumentError, match=r"`gamma\[\(0, 1\)\]` must be finite"):
            method({(0, 1): torch.tensor([float("nan"), 1.0])})


def test_a_bool_aggregation_key_is_not_read_as_vertex_1():
    with pytest.raises(InvalidArgumentError, match="`aggregation` keys must be vertices"):
        StructureGraph(3, {(0, 1): "linear", (1, 2): "linear"}, aggregation={True: "mean"},
                       input_shape=(2,), vertex_shapes=(2,))
