"""The shared parts of bayesstruct.search: registry, data split, the structure KL, the result."""

import json

import pytest
import torch

from bayesstruct.exceptions import ConstantStructureWarning, InvalidArgumentError, UnknownNameError
from bayesstruct.search import SearchResult, get_search, list_searches, search, structure_kl
from bayesstruct.nn import StructureGraph
from bayesstruct.search import prepare_data


def test_registry_lists_the_searches_and_names_a_miss():
    assert {"darts", "fbnet", "reinforce"} <= set(list_searches())
    assert get_search("DARTS", order=2).order == 2
    with pytest.raises(UnknownNameError, match="darts.*fbnet.*reinforce"):
        get_search("evolution")
    with pytest.raises(InvalidArgumentError, match="bad option"):
        get_search("darts", temperature=1.0)


def test_structure_kl_is_the_sum_of_categorical_kls_over_edges():
    gen = torch.Generator().manual_seed(0)
    p = {(0, 1): torch.softmax(torch.randn(3, generator=gen), -1), (1, 2): torch.softmax(torch.randn(2, generator=gen), -1)}
    q = {(0, 1): torch.softmax(torch.randn(3, generator=gen), -1), (1, 2): torch.softmax(torch.randn(2, generator=gen), -1)}
    ref = sum(torch.distributions.kl_divergence(torch.distributions.Categorical(probs=p[e]),
                                                torch.distributions.Categorical(probs=q[e])) for e in p)
    assert float(structure_kl(p, q)) == pytest.approx(float(ref), rel=1e-12)
    assert float(structure_kl(p, p)) == pytest.approx(0.0, abs=1e-15)
    # a vertex p (0 log 0 = 0) against a one-hot q elsewhere stays finite: -log(1e-12)
    assert float(structure_kl({(0, 1): torch.tensor([1.0, 0.0])}, {(0, 1): torch.tensor([0.0, 1.0])})) == \
        pytest.approx(-torch.log(torch.tensor(1e-12)).item())
    # what is not a point of the simplex is refused, naming the entry, never a NaN or a wrong number
    for bad_p, match in [("ab", r"`p\[\(0, 1\)\]` must be probabilities"), ([-0.5, 1.5], r"`p\[\(0, 1\)\]` must be a point"),
                         ([2.0, 2.0], "simplex"), ([float("nan"), 1.0], "simplex"), ([[0.5, 0.5]], r"vector \(K,\)")]:
        with pytest.raises(InvalidArgumentError, match=match):
            structure_kl({(0, 1): bad_p}, {(0, 1): [0.5, 0.5]})
    with pytest.raises(InvalidArgumentError, match=r"`q\[\(0, 1\)\]`"):
        structure_kl({(0, 1): [0.5, 0.5]}, {(0, 1): [1.0, 1.0]})


def test_split_is_seeded_disjoint_and_validated(xor):
    graph, x, y = xor
    d = prepare_data(graph, x, y, val_fraction=0.25, seed=3)
    assert (len(d.x_train), len(d.x_val)) == (225, 75)
    rows = {tuple(r.tolist()) for r in torch.cat([d.x_train, d.x_val])}
    assert len(rows) == 300
    assert torch.equal(prepare_data(graph, x, y, val_fraction=0.25, seed=3).x_val, d.x_val)
    assert not torch.equal(prepare_data(graph, x, y, val_fraction=0.25, seed=4).x_val, d.x_val)
    given = prepare_data(graph, x, y, val_data=(x[:10], y[:10]))
    assert len(given.x_train) == 300 and len(given.x_val) == 10
    with pytest.raises(InvalidArgumentError, match="val_fraction"):  # checked with val_data too, not ignored
        prepare_data(graph, x, y, val_data=(x[:10], y[:10]), val_fraction=7)
    for kwargs, match in [(dict(val_fraction=1.0), "val_fraction"), (dict(val_fraction=0.001), "val_fraction"),
                          (dict(val_data=(x[:5],)), "val_data"), (dict(task="ranking"), "task")]:
        with pytest.raises((InvalidArgumentError, UnknownNameError), match=match):
            prepare_data(graph, x, y, **kwargs)
    with pytest.raises(InvalidArgumentError, match=r"`y` must hold class labels in \[0, 2\)"):
        prepare_data(graph, x, y + 5)
    with pytest.raises(InvalidArgumentError, match=r"`y` must have shape \(300,\)"):
        prepare_data(graph, x, y[:-1])
    with pytest.raises(InvalidArgumentError, match="`x` must have shape"):
        prepare_data(graph, torch.randn(300, 3), y)


def test_a_graph_without_alternatives_is_refused(xor_graph):
    graph = xor_graph(primitives=["linear_tanh"])
    with pytest.raises(InvalidArgumentError, match="nothing to search"):
        search(graph, torch.randn(20, 2), torch.zeros(20).long(), "darts", progress=False)
    with pytest.raises(InvalidArgumentError, match="`graph` must be a StructureGraph"):
        search("0->1", torch.randn(20, 2), torch.zeros(20).long(), "darts")


def test_result_serialises_and_reads_well(xor, fast):
    graph, x, y = xor
    r = search(graph, x, y, "darts", progress=False, refit_steps=5, **fast)
    assert isinstance(r, SearchResult)
    d = json.loads(r.to_json())
    assert d["method"] == "darts" and d["choice"] == {"0->1": r.choice()[(0, 1)]}
    assert len(d["history"]) == 30 and d["gamma"]["0->1"] == pytest.approx(r.gamma[(0, 1)].tolist())
    assert "val_accuracy" in repr(r) and r.choice()[(0, 1)] in repr(r)


def test_docstring_examples_run():
    import doctest

    import bayesstruct.search.base as base

    failures, tried = doctest.testmod(base, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


@pytest.mark.parametrize("seed", [None, "a", 1.5, -1])
def test_train_discrete_names_a_bad_seed(xor, seed):
    from bayesstruct.search import train_discrete

    graph, x, y = xor
    with pytest.raises(InvalidArgumentError, match="`seed`"):
        train_discrete(graph, {(0, 1): "linear"}, prepare_data(graph, x, y), num_steps=1, lr=0.1, weight_decay=0.0,
                       seed=seed)


def test_a_structure_whose_output_ignores_the_input_is_flagged(xor):
    from bayesstruct.search.base import input_reaches_output

    graph, x, y = xor
    assert input_reaches_output(graph, {(0, 1): "linear_tanh"}) and not input_reaches_output(graph, {(0, 1): "zero"})
    for bad, match in [({(0, 1): "relu"}, r"`choice\[\(0, 1\)\]` must be one of"), ([("zero",)], "`choice` must be a dict"),
                       ({(5, 6): "zero"}, "edge")]:
        with pytest.raises(InvalidArgumentError, match=match):
            input_reaches_output(graph, bad)

    def reward(choice):  # prefers the constant predictor, as strong latency pressure can
        return float(choice[(0, 1)] == "zero")

    with pytest.warns(ConstantStructureWarning, match=r"random found, 0->1: zero, has no path of non-zero edges from"):
        r = search(graph, x, y, "random", num_samples=3, reward=reward, child_steps=0, progress=False)
    assert r.choice()[(0, 1)] == "zero"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a connected winner: no warning
        search(graph, x, y, "random", num_samples=3, reward=lambda c: float(c[(0, 1)] == "linear"), child_steps=0,
               progress=False)


@pytest.mark.parametrize("kwargs", [
    dict(method="darts", num_epochs=2, batch_size=16, refit_steps=2),
    dict(method="darts", order=2, num_epochs=2, batch_size=16, refit_steps=2),
    dict(method="fbnet", num_epochs=2, batch_size=16, refit_steps=2),  # latency="measure"
    dict(method="reinforce", num_updates=2, batch_size=2, child_steps=2),
    dict(method="random", num_samples=2, child_steps=2),
])
def test_a_search_never_moves_the_callers_global_rng(xor, kwargs):
    graph, x, y = xor
    torch.manual_seed(123)
    before = torch.get_rng_state().clone()
    search(graph, x, y, seed=5, progress=False, **kwargs)
    assert torch.equal(torch.get_rng_state(), before)


def test_the_search_loop_does_not_replay_the_random_numbers_of_the_initial_weights():
    from bayesstruct.search.base import seeded

    with seeded(7):
        init = torch.rand(5)
    with seeded(7, stream=1):
        loop = torch.rand(5)
    with seeded(7, stream=1):
        again = torch.rand(5)
    assert not torch.equal(init, loop) and torch.equal(loop, again)


def test_a_gradient_search_over_weightless_primitives_names_the_graph(xor):
    _, x, y = xor
    graph = StructureGraph(3, {(0, 1): ["identity", "zero"], (1, 2): ["identity", "zero"]}, input_shape=(2,),
                           vertex_shapes=(2,))
    for method in ("darts", "fbnet"):
        with pytest.raises(InvalidArgumentError, match="`graph`: .* every primitive of this graph is weightless"):
            search(graph, x, y, method, num_epochs=1, progress=False)
