"""Enumerating structures with KL penalties against the ones found before (the lecture's lambda_struct)."""

import pytest
import torch

from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError
from bayesstruct.search import enumerate_structures, search


def test_penalties_enumerate_distinct_structures_and_the_first_is_the_plain_search(xor, fast):
    graph, x, y = xor
    found = enumerate_structures(graph, x, y, 3, penalty=1.0, progress=False, **fast)
    choices = [r.choice()[(0, 1)] for r in found]
    assert len(set(choices)) == 3, choices
    plain = search(graph, x, y, "darts", progress=False, **fast)
    assert torch.equal(found[0].gamma[(0, 1)], plain.gamma[(0, 1)])
    assert choices[0] == "linear_tanh"
    # each later structure is far (in KL) from the earlier ones: its gamma has moved off theirs
    for k in (1, 2):
        assert int(torch.argmax(found[k].gamma[(0, 1)])) not in [int(torch.argmax(r.gamma[(0, 1)])) for r in found[:k]]


def test_zero_penalty_repeats_the_same_search(xor, fast):
    graph, x, y = xor
    found = enumerate_structures(graph, x, y, 2, penalty=0.0, progress=False, **fast)
    assert torch.equal(found[0].gamma[(0, 1)], found[1].gamma[(0, 1)])


def test_enumeration_needs_a_differentiable_search(xor):
    graph, x, y = xor
    with pytest.raises(InvalidArgumentError, match="differentiable search"):
        enumerate_structures(graph, x, y, 2, method="reinforce")
    with pytest.raises(UnknownNameError, match="registered search methods"):
        enumerate_structures(graph, x, y, 2, method="bayesopt")
    with pytest.raises(InvalidArgumentError, match="`penalty`"):
        enumerate_structures(graph, x, y, 2, penalty=-1)
    with pytest.raises(InvalidArgumentError, match="`repel` is set by enumerate_structures"):
        enumerate_structures(graph, x, y, 2, repel=[])
    with pytest.raises(InvalidArgumentError, match="bad option"):
        enumerate_structures(graph, x, y, 2, num_updates=3)
