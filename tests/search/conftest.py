"""A search space with a known answer: XOR-like labels that only a nonlinear hidden edge can fit."""

import pytest
import torch

from bayesstruct.nn import StructureGraph


def _xor_graph(primitives=("linear", "linear_tanh", "zero"), hidden=8):
    return StructureGraph(3, {(0, 1): list(primitives), (1, 2): "linear"}, input_shape=(2,),
                          vertex_shapes={1: (hidden,), 2: (2,)})


def _xor_data(n=300, seed=0):
    """y = 1 where x1 x2 > 0: no linear function of x separates it (a linear or zero hidden edge is at chance)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=gen)
    return x, (x[:, 0] * x[:, 1] > 0).long()


@pytest.fixture
def xor_graph():
    """Factory: the graph 0 -> 1 (the searched primitives, 8 units) -> 2 (linear, 2 logits)."""
    return _xor_graph


@pytest.fixture
def xor():
    """``(graph, x, y)``: 300 XOR rows on the graph with linear, linear_tanh and zero on 0 -> 1."""
    return (_xor_graph(), *_xor_data())


@pytest.fixture
def fast():
    """Search settings for the 150-row training split: 10 weight-only epochs, then 20 searching."""
    return dict(num_epochs=20, warmup_epochs=10, batch_size=16, lr=0.1, arch_lr=0.01)
