"""Bad input to the public API of bayesstruct.search: an error naming the argument, raised before any training."""

import math

import numpy as np
import pytest
import torch

from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError
from bayesstruct.nn import StructureGraph
from bayesstruct.search import (DARTS, Controller, FBNet, RandomSearch, Reinforce, enumerate_structures, latency_table,
                                prepare_data, register_search, search, searchable_edges, structure_kl,
                                structure_latency, train_discrete)


def _graph(out=2, primitives=("linear", "linear_tanh", "zero")):
    return StructureGraph(3, {(0, 1): list(primitives), (1, 2): "linear"}, input_shape=(2,),
                          vertex_shapes={1: (4,), 2: (out,)})


G = _graph()
G1 = _graph(out=1)
X = torch.randn(20, 2, generator=torch.Generator().manual_seed(0))
Y = (X[:, 0] * X[:, 1] > 0).long()
YR = X[:, 0].clone()
LAT = {(0, 1): [10.0, 20.0, 1.0], (1, 2): [10.0]}
TINY = dict(num_epochs=1, batch_size=None, refit_steps=1, progress=False)


def _with(t, index, value):
    t = t.clone().double()
    t[index] = value
    return t


# (prepare_data keyword arguments, the argument the message must name)
DATA_CASES = [
    (dict(graph=None), "graph"),
    (dict(x=[["a", "b"]] * 20), "`x`"),
    (dict(x=None), "`x`"),
    (dict(x=X.to(torch.complex64)), "`x`"),
    (dict(x=_with(X, (0, 0), math.nan)), "`x`"),
    (dict(x=X[:0], y=Y[:0]), "`x` is empty"),
    (dict(y=["a"] * 20), "`y`"),
    (dict(y=None), "`y`"),
    (dict(y=Y[:-1]), "`y`"),
    (dict(y=_with(Y, 0, math.nan)), "`y`"),
    (dict(y=Y + 5), "`y`"),
    (dict(y=Y - 1), "`y`"),
    (dict(graph=G1, y=_with(YR, 0, math.nan), task="regression"), "`y`"),
    (dict(graph=G1, y=_with(YR, 0, math.inf), task="regression"), "`y`"),
    (dict(y=YR, task="regression"), "task"),  # two outputs for y of shape (N,)
    (dict(graph=G1, y=Y * 0), "task"),  # one logit: a classification that cannot be wrong
    (dict(val_data=(X, Y + 5)), r"val_data\[1\]"),
    (dict(val_data=(X, Y[:3])), r"val_data\[1\]"),
    (dict(graph=G1, y=YR, val_data=(X, _with(YR, 1, math.nan)), task="regression"), r"val_data\[1\]"),
    (dict(val_data=(_with(X, (0, 0), math.nan), Y)), r"val_data\[0\]"),
    (dict(val_data=(X[:, :1], Y)), r"val_data\[0\]"),
    (dict(val_data=(None, Y)), r"val_data\[0\]"),
    (dict(val_data=(X[:0], Y[:0])), "`val_data` is empty"),
    (dict(val_data={"x": X}), "val_data"),
    (dict(val_data=(X,)), r"`val_data` must be the pair \(x_val, y_val\); got a tuple of length 1"),
    (dict(val_fraction=0.0), "val_fraction"),
    (dict(val_fraction=1.0), "val_fraction"),
    (dict(val_fraction=-0.1), "val_fraction"),
    (dict(val_fraction=math.nan), "val_fraction"),
    (dict(val_fraction="half"), "val_fraction"),
    (dict(val_fraction=0.01), "val_fraction"),  # 0 validation rows of 20
    (dict(graph=G1, y=YR, task="regression", noise_scale=-1.0), "noise_scale"),
    (dict(seed=-1), "seed"),
    (dict(seed=2 ** 70), "seed"),
]


@pytest.mark.parametrize("kwargs, match", DATA_CASES)
def test_bad_data_is_refused_by_prepare_data_and_search(kwargs, match):
    kw = {"graph": G, "x": X, "y": Y, **kwargs}
    graph, x, y = kw.pop("graph"), kw.pop("x"), kw.pop("y")
    with pytest.raises(InvalidArgumentError, match=match):
        prepare_data(graph, x, y, **kw)
    with pytest.raises(InvalidArgumentError, match=match):  # search() refuses it before training
        search(graph, x, y, "darts", **kw, **TINY)


def test_an_unknown_task_is_an_unknown_name():
    with pytest.raises(UnknownNameError, match="task"):
        prepare_data(G, X, Y, task="ranking")


@pytest.mark.parametrize("cls, kwargs, match", [
    (DARTS, dict(order=3), "order"),
    (DARTS, dict(num_epochs=0), "num_epochs"),
    (DARTS, dict(momentum=1.0), "momentum"),
    (DARTS, dict(momentum=1.5), "momentum"),
    (FBNet, dict(momentum=-0.1), "momentum"),
    (DARTS, dict(repel=[(1.0, {(0, 1): ["a", "b", "c"]})]), r"repel\[0\]"),
    (FBNet, dict(temperature=-1.0), "temperature"),
    (FBNet, dict(temperature_decay=0.0), "temperature_decay"),
    (Reinforce, dict(evidence={"method": "laplace"}), "evidence"),  # reward is 'accuracy'
    (RandomSearch, dict(reward="evidence", evidence={"method": 3}), "evidence"),
    (RandomSearch, dict(reward="evidence", evidence={"weight_precision": -1}), r"evidence\['weight_precision'\]"),
    (Reinforce, dict(reward="evidence", evidence={"weight_precision": "lean"}), r"evidence\['weight_precision'\]"),
])
def test_bad_options_are_refused_by_the_constructor(cls, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        cls(**kwargs)


def test_an_unknown_evidence_method_is_refused_by_the_constructor():
    with pytest.raises(UnknownNameError, match="bogus"):
        RandomSearch(reward="evidence", evidence={"method": "bogus"})


NAN3 = [math.nan] * 3


@pytest.mark.parametrize("method, kwargs, match", [
    ("darts", dict(repel=[(1.0, {(0, 1): NAN3})]), r"repel\[0\]"),
    ("fbnet", dict(latency={(0, 1): ["a", "b", "c"], (1, 2): [10.0]}), r"latency\[\(0, 1\)\]"),
    ("fbnet", dict(latency={(0, 1): None, (1, 2): [10.0]}), r"latency\[\(0, 1\)\]"),
    ("fbnet", dict(latency={(0, 1): [10.0, 20.0, 1.0]}), "`latency` has no entry for edge"),
    ("fbnet", dict(latency=LAT, temperature=1e-300), "temperature"),
    ("fbnet", dict(latency=LAT, temperature_decay=1e-10, num_epochs=10), "temperature_decay"),
    ("fbnet", dict(latency=LAT, temperature_decay=1e10, num_epochs=10), "temperature_decay"),
])
def test_options_checked_against_the_graph_are_refused_before_training(method, kwargs, match):
    options = dict(TINY, **kwargs)
    with pytest.raises(InvalidArgumentError, match=match):
        search(G, X, Y, method, **options)


@pytest.mark.parametrize("reward, match", [
    (lambda c: "1.5", "`reward` must return a number"),
    (lambda c: torch.ones(2), "`reward` must return a number"),
    (lambda c: None, "`reward` must return a number"),
    (lambda c: math.inf, "`reward` returned inf"),
    (lambda c: math.nan, "`reward` returned nan"),
])
def test_a_bad_custom_reward_is_refused(reward, match):  # a custom reward trains nothing before it is called
    with pytest.raises(InvalidArgumentError, match=match):
        search(G, X, Y, "random", num_samples=1, child_steps=1, reward=reward, progress=False)


@pytest.mark.parametrize("method, kwargs, match", [
    ("darts", dict(lr=1e30, momentum=0.0), "`lr`"),
    ("darts", dict(refit_lr=1e30, refit_steps=5), "`refit_lr`"),
    ("random", dict(child_lr=1e30, child_steps=5, reward="log-likelihood", num_samples=1), "`child_lr`"),
])
def test_a_diverged_training_is_an_error_not_a_nan_result(method, kwargs, match):
    options = dict(num_epochs=1, batch_size=None, refit_steps=1) if method == "darts" else {}
    options.update(kwargs)
    with pytest.raises(InvalidArgumentError, match=match):
        search(G, X, Y, method, progress=False, **options)


@pytest.mark.parametrize("call, match", [
    (lambda: latency_table(G, repeats=1, warmup=0, dtype="float32"), "dtype"),
    (lambda: latency_table(G, repeats=1, warmup=0, dtype=torch.int64), "dtype"),
    (lambda: structure_latency(None, LAT, {}), "graph"),
    (lambda: structure_latency(G, LAT, None), "choice"),
    (lambda: structure_latency(G, LAT, ["zero"]), "choice"),
    (lambda: structure_latency(G, LAT, {(0, 2): "zero"}), "choice"),
    (lambda: structure_latency(G, LAT, {"0->1": "zero"}), "choice"),
    (lambda: structure_latency(G, {(0, 1): [1, 2, "x"], (1, 2): [1]}, {}), "latency"),
])
def test_latency_helpers_name_the_bad_argument(call, match):
    with pytest.raises(InvalidArgumentError, match=match):
        call()


@pytest.fixture(scope="module")
def controller():
    return Controller(G, hidden=4)


@pytest.mark.parametrize("call, match", [
    (lambda c: c(0), "num_samples"),
    (lambda c: c(-1), "num_samples"),
    (lambda c: c(1.5), "num_samples"),
    (lambda c: c(actions=torch.tensor([[5]])), "actions"),
    (lambda c: c(actions=torch.tensor([[0, 1]])), "actions"),
    (lambda c: c(actions=torch.tensor([0])), "actions"),
    (lambda c: c(actions=torch.tensor([[0.0]])), "actions"),
    (lambda c: c.choice(torch.tensor([0, 1]), G), "actions"),
    (lambda c: c.choice(torch.tensor([7]), G), "actions"),
    (lambda c: c.choice(torch.tensor([-1]), G), "actions"),
])
def test_the_controller_checks_its_inputs(controller, call, match):
    with pytest.raises(InvalidArgumentError, match=match):
        call(controller)


@pytest.mark.parametrize("graph", [None, _graph(primitives=["linear"])])
def test_the_controller_needs_a_graph_with_a_choice(graph):
    with pytest.raises(InvalidArgumentError, match="graph"):
        Controller(graph)


@pytest.fixture(scope="module")
def data():
    return prepare_data(G, X, Y)


@pytest.mark.parametrize("call, match", [
    (lambda d: searchable_edges(None), "graph"),
    (lambda d: structure_kl([1], {}), "`p`"),
    (lambda d: structure_kl({(0, 1): torch.ones(3) / 3}, {}), "`q`"),
    (lambda d: structure_kl({(0, 1): torch.ones(3) / 3}, {(0, 1): torch.ones(1)}), r"q\[\(0, 1\)\]"),
    (lambda d: train_discrete(G, {(0, 1): "relu"}, d, num_steps=1, lr=0.1, weight_decay=0.0, seed=0), "choice"),
    (lambda d: train_discrete(G, {(0, 2): "zero"}, d, num_steps=1, lr=0.1, weight_decay=0.0, seed=0), "choice"),
    (lambda d: train_discrete(G, {}, (X, Y), num_steps=1, lr=0.1, weight_decay=0.0, seed=0), "data"),
    (lambda d: train_discrete(G, {}, d, num_steps=1, lr=0.1, weight_decay=-1.0, seed=0), "weight_decay"),
    (lambda d: train_discrete(G, {}, d, num_steps=1, lr=0.1, weight_decay=0.0, seed=0, init=5), "init"),
    (lambda d: register_search(5), "name"),
    (lambda d: register_search("  "), "name"),
    (lambda d: enumerate_structures(None, X, Y, 1, **TINY), "graph"),
    (lambda d: enumerate_structures(G, X, Y + 5, 1, **TINY), "`y`"),
])
def test_the_helpers_name_the_bad_argument(data, call, match):
    with pytest.raises(InvalidArgumentError, match=match):
        call(data)


def test_valid_inputs_of_the_new_checks_still_pass(controller, data):
    np_x, np_y = X.numpy().astype(np.float64), Y.numpy()
    d = prepare_data(G, np_x, np_y, val_data=(np_x[:5].tolist(), np_y[:5].tolist()), seed=2 ** 63 - 1)
    assert (len(d.x_train), len(d.x_val)) == (20, 5)
    assert prepare_data(G1, X, YR, task="regression").task == "regression"
    actions, _, _ = controller(actions=[[0], [2]])
    assert controller.choice(actions[1], G) == {(0, 1): "zero"}
    assert structure_latency(G, LAT, {(0, 1): "zero"}) == 11.0
    assert float(structure_kl({(0, 1): torch.ones(3) / 3}, {(0, 1): torch.ones(3) / 3})) == pytest.approx(0.0)
    assert DARTS(momentum=0.0).momentum == 0.0
    assert RandomSearch(reward="evidence", evidence={"method": "laplace", "weight_precision": "learn"}).evidence
