"""FBNet (Wu et al. 2019): the latency table, and the accuracy-latency trade-off it searches."""

import math

import pytest
import torch

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.search import FBNet, latency_table, search, structure_latency


def test_latency_table_measures_every_primitive_of_every_edge(xor):
    graph, _, _ = xor
    table = latency_table(graph, repeats=5, warmup=1)
    assert set(table) == {(0, 1), (1, 2)}
    assert table[(0, 1)].shape == (3,) and table[(1, 2)].shape == (1,)
    assert (torch.cat(list(table.values())) > 0).all()  # microseconds of a real forward pass


EQUAL = {(0, 1): [2.0, 2.0, 2.0], (1, 2): [10.0]}
TANH_DEAR = {(0, 1): [2.0, 200.0, 2.0], (1, 2): [10.0]}


@pytest.mark.parametrize("seed", [0, 1])
def test_a_latency_blind_or_mild_search_finds_the_nonlinear_edge(xor, fast, seed):
    graph, x, y = xor
    for kwargs in (dict(latency=EQUAL), dict(latency=TANH_DEAR, latency_exponent=0.0), dict(latency=TANH_DEAR)):
        r = search(graph, x, y, "fbnet", seed=seed, progress=False, **kwargs, **fast)
        assert r.choice() == {(0, 1): "linear_tanh"}, (kwargs, r)
        assert r.val_accuracy > 0.85


@pytest.mark.parametrize("seed", [0, 1])
def test_a_dear_primitive_loses_to_a_cheap_one_under_latency_pressure(xor, fast, seed):
    # LAT = 210 with tanh against 12 without, log(LAT) 5.35 against 2.48: at the exponent 2 the
    # latency factor is 4.6x larger with tanh, more than the cross-entropy it gains (chance,
    # log 2 = 0.69, against about 0.2 x 4.6 = 0.93). At the paper's 0.6 the factor is 1.59 and
    # tanh wins (0.2 x 1.59 < 0.69): the test above.
    graph, x, y = xor
    r = search(graph, x, y, "fbnet", latency=TANH_DEAR, latency_exponent=2.0, seed=seed, progress=False, **fast)
    assert r.choice()[(0, 1)] != "linear_tanh", r
    assert r.diagnostics["latency"] == pytest.approx(12.0)
    lat = [h["expected_latency"] for h in r.history]
    assert lat[9] == pytest.approx(204 / 3 + 10)  # the uniform gamma at the end of the warmup
    assert lat[-1] < 0.3 * lat[9]


def test_temperature_anneals_from_the_papers_start(xor):
    graph, x, y = xor
    r = search(graph, x, y, "fbnet", latency=EQUAL, num_epochs=4, warmup_epochs=2, progress=False, refit_steps=0)
    temps = [h["temperature"] for h in r.history]  # the temperature each epoch sampled at
    assert temps[:3] == [5.0, 5.0, 5.0]  # the warmup does not anneal
    assert temps[3:] == pytest.approx([5.0 * math.exp(-0.045 * k) for k in (1, 2, 3)])
    assert r.diagnostics["temperature"] == temps[-1]  # the last one sampled at, not the next epoch's


@pytest.mark.parametrize("latency, match", [
    ({(0, 1): [1.0, 1.0, 1.0]}, r"no entry for edge \(1, 2\)"),
    ({(0, 1): [1.0, 1.0], (1, 2): [10.0]}, r"`latency\[\(0, 1\)\]` must be 3 finite numbers"),
    ({(0, 1): [1.0, -1.0, 1.0], (1, 2): [10.0]}, r"`latency\[\(0, 1\)\]`"),
    ({(0, 1): [0.1, 0.1, 0.1], (1, 2): [0.5]}, "smaller unit"),
])
def test_a_bad_latency_table_is_refused(xor, latency, match):
    graph, x, y = xor
    with pytest.raises(InvalidArgumentError, match=match):
        search(graph, x, y, "fbnet", latency=latency, num_epochs=1, progress=False)


@pytest.mark.parametrize("kwargs, match", [
    (dict(latency="estimate"), "`latency`"), (dict(latency_weight=0), "`latency_weight`"),
    (dict(latency_exponent=-1), "`latency_exponent`"), (dict(temperature=0), "`temperature`"),
])
def test_bad_options_name_the_argument(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        FBNet(**kwargs)


def test_structure_latency_sums_the_chosen_primitives(xor):
    graph, _, _ = xor
    assert structure_latency(graph, TANH_DEAR, {(0, 1): "linear_tanh"}) == 210.0
    assert structure_latency(graph, TANH_DEAR, {}) == 12.0  # edges left out: their first primitive
    with pytest.raises(InvalidArgumentError, match=r"`choice\[\(0, 1\)\]` must be one of"):
        structure_latency(graph, TANH_DEAR, {(0, 1): "linear_relu"})
    with pytest.raises(InvalidArgumentError, match="no entry for edge"):
        structure_latency(graph, {(0, 1): [1.0, 1.0, 1.0]}, {})


def test_a_live_run_records_its_latency_table_and_passing_it_back_reruns_it_bit_for_bit(xor, fast):
    import json

    graph, x, y = xor
    live = search(graph, x, y, "fbnet", progress=False, **fast)  # latency="measure": timed on this machine
    table = live.diagnostics["latency_table"]
    assert set(table) == {(0, 1), (1, 2)} and all(t.dtype == torch.float64 for t in table.values())
    assert live.diagnostics["latency"] == pytest.approx(structure_latency(graph, table, live.choice()))

    def same(a, b):
        assert torch.equal(a.gamma[(0, 1)], b.gamma[(0, 1)])
        assert [h["expected_latency"] for h in a.history] == [h["expected_latency"] for h in b.history]
        assert len(a.history) == len(b.history)
        for ha, hb in zip(a.history, b.history):
            assert all(torch.equal(ha["gamma"][e], hb["gamma"][e]) for e in ha["gamma"]) and ha["train_loss"] == hb["train_loss"]
        assert (a.val_loss, a.val_accuracy, a.choice()) == (b.val_loss, b.val_accuracy, b.choice())

    same(live, search(graph, x, y, "fbnet", latency=table, progress=False, **fast))
    # the JSON form of the result ("j->k" keys, lists) works as well
    saved = json.loads(live.to_json())["diagnostics"]["latency_table"]
    assert set(saved) == {"0->1", "1->2"}
    same(live, search(graph, x, y, "fbnet", latency=saved, progress=False, **fast))
    # a fixed table: two seeded runs agree exactly (live timing only agrees approximately)
    a, b = (search(graph, x, y, "fbnet", latency=TANH_DEAR, seed=3, progress=False, **fast) for _ in range(2))
    same(a, b)
    with pytest.raises(InvalidArgumentError, match=r"`latency` has key '0->2', which is not an edge"):
        search(graph, x, y, "fbnet", latency={**saved, "0->2": [1.0]}, num_epochs=1, progress=False)
    with pytest.raises(InvalidArgumentError, match=r"gives edge \(0, 1\) twice"):
        search(graph, x, y, "fbnet", latency={**TANH_DEAR, "0->1": [1.0, 1.0, 1.0]}, num_epochs=1, progress=False)


def test_a_latency_blind_search_takes_a_table_in_any_unit(xor):
    # log(LAT)^0 = 1: the LAT > 1 floor of the latency term does not apply
    graph, x, y = xor
    ms = {(0, 1): [0.1, 0.1, 0.1], (1, 2): [0.5]}
    r = search(graph, x, y, "fbnet", latency=ms, latency_exponent=0, num_epochs=1, refit_steps=2, progress=False)
    assert math.isfinite(r.val_loss)
    assert all(torch.isfinite(g).all() for g in r.gamma.values())
