import json

import pytest
import torch
from torch import nn

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.nn import Criteria, StructureGraph, StructureNetwork, operational_criteria


def net():
    graph = StructureGraph(
        3,
        {(0, 1): ["conv3x3", "conv1x1", "zero"], (1, 2): ["maxpool3x3", "identity"], (0, 2): ["zero", "identity"]},
        input_shape=(2, 4, 4),
        vertex_shapes=(2, 4, 4),
    )
    return StructureNetwork(graph)


def crit(module, gamma=None):
    return operational_criteria(module, None, gamma=gamma, repeats=3, warmup=1)


def test_fields_are_positive():
    c = crit(net(), {(0, 1): torch.tensor([1.0, 0, 0])})
    assert isinstance(c, Criteria)
    for name in ("num_params", "num_vertices", "num_edges", "flops"):
        assert isinstance(getattr(c, name), int) and getattr(c, name) > 0
    assert isinstance(c.latency_ms, float) and c.latency_ms > 0
    assert json.loads(c.to_json()) == c.to_dict() and set(c.to_dict()) == {
        "num_params", "num_vertices", "num_edges", "flops", "latency_ms"}
    with pytest.raises(Exception):
        c.num_params = 3  # frozen


def test_counts_follow_the_chosen_primitive():
    n = net()
    conv3 = crit(n, {(0, 1): torch.tensor([1.0, 0, 0])})
    conv1 = crit(n, {(0, 1): torch.tensor([0, 1.0, 0])})
    zero = crit(n, {(0, 1): torch.tensor([0, 0, 1.0])})
    pool = 9 * 2 * 4 * 4  # maxpool3x3 on (1, 2), the default
    assert conv3.num_params == 2 * 2 * 9 + 2 and conv3.flops == 2 * 2 * 9 * 2 * 16 + pool
    assert conv1.num_params == 2 * 2 + 2 and conv1.flops == 2 * 2 * 2 * 16 + pool
    assert zero.num_params == 0 and zero.flops == pool
    assert (conv3.num_edges, conv3.num_vertices) == (2, 3)  # (0, 2) is zero by default
    assert (zero.num_edges, zero.num_vertices) == (1, 3)
    both = crit(n, {(0, 1): torch.tensor([0, 0, 1.0]), (0, 2): torch.tensor([0, 1.0])})
    assert both.num_edges == 2


def test_mixture_network_counts_every_primitive():
    c = crit(net())
    assert c.num_params == (2 * 2 * 9 + 2) + (2 * 2 + 2)
    assert c.flops == 2 * 2 * 9 * 2 * 16 + 2 * 2 * 2 * 16 + 9 * 2 * 16
    assert c.num_edges == 3 and c.num_vertices == 3


def test_plain_module():
    m = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Flatten(), nn.Linear(3 * 16, 5))
    c = operational_criteria(m, (2, 4, 4), repeats=2, warmup=0)
    assert c.num_params == sum(p.numel() for p in m.parameters())
    assert c.flops == 2 * 2 * 9 * 3 * 16 + 2 * 48 * 5
    assert (c.num_vertices, c.num_edges) == (0, 0)


def test_argument_errors():
    with pytest.raises(InvalidArgumentError, match="`gamma` applies to a StructureNetwork only"):
        operational_criteria(nn.Linear(2, 2), (2,), gamma={})
    with pytest.raises(InvalidArgumentError, match="`input_shape` is required"):
        operational_criteria(nn.Linear(2, 2))
    with pytest.raises(InvalidArgumentError, match="`repeats` must be an int >= 1"):
        operational_criteria(nn.Linear(2, 2), (2,), repeats=0)


def test_an_edge_cut_off_from_the_output_by_zero_edges_is_not_in_use_nor_counted():
    # 0 -> 1 -> 2 -> 3 and a skip 0 -> 3; with zero on 1 -> 2 the edge 0 -> 1 computes something nothing reads
    graph = StructureGraph(4, {(0, 1): "linear", (1, 2): ["linear_tanh", "zero"], (2, 3): "linear", (0, 3): "linear"},
                           input_shape=(4,), vertex_shapes=(4,))
    net = StructureNetwork(graph)
    cut = {(1, 2): torch.tensor([0.0, 1.0])}
    d = net.discretize(cut)
    assert d.choice == {(0, 1): "linear", (1, 2): "zero", (2, 3): "linear", (0, 3): "linear"}
    assert d.edges_in_use() == net.edges_in_use(cut) == [(0, 3), (2, 3)]  # 2 -> 3 reads the zero vertex 2: its bias
    assert set(d.ops) == {"e2_3", "e0_3"}
    x = torch.randn(5, 4)
    one_hot = {**graph.default_gamma(), **cut}
    torch.testing.assert_close(d(x), net(x, one_hot))  # dropping the dead edge leaves f unchanged
    c = crit(net, cut)
    assert (c.num_params, c.num_vertices, c.num_edges, c.flops) == (40, 3, 2, 64)  # not 60 params, 4 vertices, 3 edges
    full = crit(net, {(1, 2): torch.tensor([1.0, 0.0])})  # with tanh on 1 -> 2 every edge is in use
    assert (full.num_params, full.num_vertices, full.num_edges) == (80, 4, 4)
    assert net.edges_in_use() == graph.edge_list


def test_mixture_without_gamma_counts_only_the_parameters_of_edges_in_use():
    # 0 -> 1 -> 3 and 1 -> 2 -> 3 where 2 -> 3 can only be zero: edge (1, 2) cannot change f
    graph = StructureGraph(4, {(0, 1): "linear", (1, 2): "linear", (2, 3): "zero", (1, 3): "linear"},
                           input_shape=(3,), vertex_shapes={1: (4,), 2: (5,), 3: (2,)})
    net = StructureNetwork(graph)
    c = crit(net)
    in_use = net.edges_in_use()
    assert in_use == [(0, 1), (1, 3)] and c.num_edges == 2
    assert c.num_params == (3 * 4 + 4) + (4 * 2 + 2) == 26  # not 51: (1, 2)'s 25 weights are dead
    x = torch.randn(6, 3)
    before = net(x)
    with torch.no_grad():
        for p in net.ops["e1_2"].parameters():
            p.add_(1.0)
    torch.testing.assert_close(net(x), before, rtol=0, atol=0)  # the uncounted weights indeed cannot change f


def test_measuring_a_network_leaves_its_batch_norm_statistics_and_modes_alone():
    from bayesstruct.nn import count_flops

    m = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    m.train()
    m[2].eval()  # a module the user set apart: its own flag must come back
    state = {k: v.clone() for k, v in m.state_dict().items()}
    # a batch of one in training mode would raise in BatchNorm1d and, in any mode, move running_mean
    c = operational_criteria(m, (4,), repeats=2, warmup=1)
    assert c.flops == 2 * 4 * 3 + 2 * 3 * 2
    assert count_flops(m, torch.randn(1, 4)) == c.flops
    for k, v in m.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert [mod.training for mod in m] == [True, True, False] and m.training
