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
    with pytest.warns(UserWarning, match=r"2 searches found 1 distinct structure.*`penalty`=0 repeats the same search"):
        found = enumerate_structures(graph, x, y, 2, penalty=0.0, progress=False, distinct=False, **fast)
    assert torch.equal(found[0].gamma[(0, 1)], found[1].gamma[(0, 1)])


def test_a_penalty_too_weak_to_move_the_argmax_warns_and_repeats_are_dropped(xor, fast):
    # at arch_lr=1e-3 the first search ends near the uniform gamma (about [0.32, 0.40, 0.28]); the KL to it is
    # flat there (zero gradient at Gamma = Gamma_1), so at penalty 0.1 the second search ends at nearly the same
    # gamma and picks linear_tanh again
    graph, x, y = xor
    opts = dict(fast, arch_lr=1e-3, penalty=0.1)
    with pytest.warns(UserWarning, match=r"2 searches found 1 distinct structure\(s\) \(search 2 repeated search 1\); "
                                         r"all searches are returned"):
        every = enumerate_structures(graph, x, y, 2, progress=False, distinct=False, **opts)
    assert [r.choice() for r in every] == [{(0, 1): "linear_tanh"}] * 2
    assert not torch.equal(every[0].gamma[(0, 1)], every[1].gamma[(0, 1)])  # the penalty acted, too weakly
    with pytest.warns(UserWarning, match=r"found 1 distinct structure.*only these are returned.*raise `penalty`"):
        distinct = enumerate_structures(graph, x, y, 2, progress=False, **opts)
    assert len(distinct) == 1 and distinct[0].diagnostics["search_index"] == 0
    assert torch.equal(distinct[0].gamma[(0, 1)], every[0].gamma[(0, 1)])
    with pytest.raises(InvalidArgumentError, match="`distinct`"):
        enumerate_structures(graph, x, y, 2, distinct="yes", progress=False, **opts)


def test_distinct_structures_come_without_a_warning(xor, fast):
    import warnings

    graph, x, y = xor
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        found = enumerate_structures(graph, x, y, 2, penalty=1.0, progress=False, **fast)
    assert len({tuple(r.choice().items()) for r in found}) == 2
    assert [r.diagnostics["search_index"] for r in found] == [0, 1]


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
