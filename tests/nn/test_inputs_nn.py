"""Bad graphs, inputs and structure vectors of bayesstruct.nn give errors naming the argument."""

import pytest
import torch
from torch import nn

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.nn import StructureGraph, StructureNetwork, make_primitive, operational_criteria


def graph(edges=None, **kw):
    kw.setdefault("input_shape", (4,))
    kw.setdefault("vertex_shapes", {1: (3,), 2: (2,)})
    return StructureGraph(3, edges or {(0, 1): ["linear_relu", "zero"], (1, 2): "linear"}, **kw)


@pytest.mark.parametrize("edges, kw, match", [
    ({(0, 1): None, (1, 2): "linear"}, {}, r"edge \(0, 1\)"),
    (None, {"vertex_shapes": {1: (3,), 2: (2,), 5: (2,)}}, "vertex_shapes"),
])
def test_graph(edges, kw, match):
    with pytest.raises(InvalidArgumentError, match=match):
        graph(edges, **kw)


NET = StructureNetwork(graph())


@pytest.mark.parametrize("x, gamma, match", [
    (torch.ones(5, 4, dtype=torch.long), None, "`x`"),
    (torch.randn(5, 4), {(0, 1): "ab"}, r"gamma\[\(0, 1\)\]"),
    (torch.randn(5, 4), {(0, 1): torch.ones(3, 2), (1, 2): torch.ones(4, 1)}, "gamma"),
])
def test_network_forward(x, gamma, match):
    with pytest.raises(InvalidArgumentError, match=match):
        NET(x, gamma)


@pytest.mark.parametrize("name, in_shape, out, x", [
    ("linear", (2,), 3, torch.randn(4, 5)),
    ("flatten", (2, 3), None, torch.randn(4, 5)),
    ("conv3x3", (1, 4, 4), 3, torch.randn(2, 2, 4, 4)),
    # wrong per-sample shapes that the op itself would run on without complaint
    ("conv3x3", (3, 5, 5), 4, torch.randn(2, 3, 6, 6)),
    ("flatten", (3, 4), None, torch.randn(2, 4, 3)),
    ("zero", (4,), 5, torch.randn(10, 7)),
    ("identity", (4,), None, torch.randn(10, 7)),
    ("maxpool3x3", (2, 4, 4), None, torch.randn(3, 2, 5, 5)),
])
def test_primitive_input_shape(name, in_shape, out, x):
    with pytest.raises(InvalidArgumentError, match=f"primitive '{name}' expects inputs"):
        make_primitive(name, in_shape, out)(x)


def test_criteria_of_a_plain_module_with_a_wrong_input_shape():
    with pytest.raises(InvalidArgumentError, match="input_shape"):
        operational_criteria(nn.Linear(2, 3), (5,), repeats=1, warmup=0)


@pytest.mark.parametrize("name, in_shape", [("linear", (3,)), ("conv1x1", (2, 3, 3))])
def test_primitive_input_dtype_is_named(name, in_shape):
    op = make_primitive(name, in_shape, 2).to(torch.float32)
    with pytest.raises(InvalidArgumentError, match=rf"primitive '{name}' has torch.float32 weights; got an input of dtype torch.float64"):
        op(torch.randn((2,) + in_shape, dtype=torch.float64))
