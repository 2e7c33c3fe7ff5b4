"""Iterative pruning (Han et al. 2015): the schedule is met, masks never revive, L1 vs L2, histograms."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from bayesstruct.datasets import load_digits
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.prune import (
    IterativeResult,
    account,
    fraction_kept,
    get_masks,
    iterative_prune,
    prune,
    remove_pruning,
    train,
    weight_histogram,
)

_BASE = {}


def digits():
    x, y = load_digits(num_samples=400, seed=0)
    return x.double(), y


def trained():
    """A 64-32-10 MLP trained on 400 digits (cached state, fresh module)."""
    if "state" not in _BASE:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).double()
        train(net, digits(), epochs=10, lr=1e-2, batch_size=32, progress=False)
        _BASE["state"] = copy.deepcopy(net.state_dict())
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).double()
    net.load_state_dict(_BASE["state"])
    return net


def test_each_round_keeps_the_scheduled_fraction_and_reports_errors():
    net, data = trained(), digits()
    schedule = [0.5, 0.2, 0.07]
    res = iterative_prune(net, data, schedule=schedule, retrain_epochs=1, test_data=data, lr=1e-2, batch_size=32, progress=False)
    assert isinstance(res, IterativeResult) and len(res.rounds) == 4
    n = 64 * 32 + 32 * 10
    assert res.rounds[0].fraction_kept == 1.0 and res.rounds[0].num_nonzero == n
    for r, keep in zip(res.rounds[1:], schedule):
        # round(keep * N) weights survive: within one weight of the target
        assert r.num_nonzero == round(keep * n) and abs(r.fraction_kept - keep) <= 1 / n
        assert 0.0 <= r.train_error <= 1.0 and r.test_error is not None and r.test_error_before_retrain is not None
    assert fraction_kept(net) == res.rounds[-1].fraction_kept
    d = res.to_dict()
    assert [row["num_nonzero"] for row in d["rounds"]] == [r.num_nonzero for r in res.rounds]
    assert "round" in str(res)


def test_layer_scope_keeps_the_fraction_in_every_layer():
    net, data = trained(), digits()
    iterative_prune(net, data, amounts=0.5, rounds=3, scope="layer", retrain_epochs=0, progress=False)
    for name, mask in get_masks(net).items():
        assert int(mask.sum()) == pytest.approx(mask.numel() / 8, abs=2)  # three halvings, rounding each time


@pytest.mark.parametrize("method", ["magnitude", "obd"])
def test_layer_scope_meets_the_target_in_each_layer_of_an_unevenly_pruned_model(method):
    # after a global round the layers keep different fractions; a layer-scope round to 1/4 must leave
    # round(N_layer / 4) in every layer (one mean amount for all layers left 0.177 and 0.417)
    net, data = trained(), digits()
    prune(net, "magnitude", amount=0.5)
    kept = [float(m.mean()) for m in get_masks(net).values()]
    assert abs(kept[0] - kept[1]) > 0.05
    kw = {"loss_fn": nn.functional.cross_entropy} if method == "obd" else {}
    res = iterative_prune(net, data, schedule=[0.25], scope="layer", method=method, retrain_epochs=0, progress=False, **kw)
    masks = get_masks(net)
    for mask in masks.values():
        assert int(mask.sum()) == round(mask.numel() / 4)
    alive_before = res.rounds[0].num_nonzero
    assert res.rounds[1].amount == pytest.approx((alive_before - res.rounds[1].num_nonzero) / alive_before)


def test_amount_per_layer_needs_layer_scope_and_every_layer():
    net = trained()
    prune(net, "magnitude", amount={"0": 0.5, "2": 0.1}, scope="layer")
    assert [int(m.sum()) for m in get_masks(net).values()] == [1024, 288]
    with pytest.raises(InvalidArgumentError, match="scope='layer'"):
        prune(net, "magnitude", amount={"0": 0.5, "2": 0.1})
    with pytest.raises(InvalidArgumentError, match="missing"):
        prune(net, "magnitude", amount={"0": 0.5}, scope="layer")
    with pytest.raises(InvalidArgumentError, match=r"amount.*\[0, 1\)"):
        prune(net, "magnitude", amount={"0": 0.5, "2": 1.0}, scope="layer")


def test_amounts_count_from_the_survivors_of_an_already_pruned_model():
    net, data = trained(), digits()
    n = 64 * 32 + 32 * 10
    iterative_prune(net, data, schedule=[0.25], retrain_epochs=0, progress=False)
    res = iterative_prune(net, data, amounts=0.5, rounds=2, retrain_epochs=0, progress=False)
    # a second call removes half of the survivors each round: 1/4 -> 1/8 -> 1/16 of the weights
    assert [r.num_nonzero for r in res.rounds] == [round(n / 4), round(n / 8), round(n / 16)]


def test_masks_never_revive_and_retraining_starts_from_the_previous_optimum():
    net, data = trained(), digits()
    iterative_prune(net, data, schedule=[0.5], retrain_epochs=2, lr=1e-2, progress=False)
    masks1 = get_masks(net)
    weights1 = {n: m.weight.detach().clone() for n, m in (("0", net[0]), ("2", net[2]))}
    # retrain_epochs=0: the survivors keep exactly their retrained values (nothing re-initialised)
    iterative_prune(net, data, schedule=[0.25], retrain_epochs=0, progress=False)
    masks2 = get_masks(net)
    for n, m in (("0", net[0]), ("2", net[2])):
        assert (masks2[n] <= masks1[n]).all()
        keep = masks2[n] == 1
        assert torch.equal(m.weight.detach()[keep], weights1[n][keep])
    iterative_prune(net, data, amounts=[0.5], retrain_epochs=3, regularization="l1", strength=1e-3, lr=1e-2, progress=False)
    for n, m in (("0", net[0]), ("2", net[2])):
        dead = get_masks(net)[n] == 0
        assert (dead >= (masks2[n] == 0)).all() and (m.weight.detach()[dead] == 0).all()


def test_l1_drives_more_weights_towards_zero_than_l2_at_the_same_strength():
    # For |w| < 1 the L1 pull s*sign(w) is stronger than the L2 pull s*w: the same strength leaves the
    # L1-retrained survivors smaller. Measured here: median |w| 0.27 (L1) vs 0.40 (L2) at s = 3e-3.
    data = digits()
    out = {}
    for reg in ("l1", "l2"):
        net = trained()
        iterative_prune(net, data, amounts=0.5, rounds=2, retrain_epochs=5, regularization=reg, strength=3e-3, lr=1e-2,
                        batch_size=32, progress=False)
        w = torch.cat([net[0].weight.detach().flatten(), net[2].weight.detach().flatten()])
        out[reg] = w[w != 0].abs()
    assert float(out["l1"].median()) < 0.85 * float(out["l2"].median())
    assert int((out["l1"] < 0.05).sum()) > int((out["l2"] < 0.05).sum())


def test_histograms_before_and_after():
    net, data = trained(), digits()
    res = iterative_prune(net, data, schedule=[0.3, 0.1], retrain_epochs=2, lr=1e-2, batch_size=32, progress=False)
    before, after = res.histogram_before, res.histogram_after
    assert np.array_equal(before.edges, after.edges)  # one shared, symmetric range
    assert before.edges[0] == -before.edges[-1]
    assert before.counts.sum() == before.num_weights - before.num_zero
    assert after.counts.sum() == after.num_weights - after.num_zero == res.rounds[-1].num_nonzero
    # the pruned gap: the dense net has weights near 0, the pruned + retrained one has far fewer there
    centre = np.abs(0.5 * (before.edges[1:] + before.edges[:-1])) < 0.05 * before.edges[-1]
    assert after.counts[centre].sum() < 0.2 * before.counts[centre].sum()


def test_weight_histogram_by_hand():
    net = nn.Sequential(nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[-1.0, 0.0], [0.25, 1.0]]))
    h = weight_histogram(net, bins=4)  # range (-1, 1): bins [-1,-.5) [-.5,0) [0,.5) [.5,1]
    assert h.counts.tolist() == [1, 0, 1, 1] and h.num_zero == 1 and h.num_weights == 4
    assert weight_histogram(net, bins=4, nonzero_only=False).counts.tolist() == [1, 0, 2, 1]
    assert h.modes() == [-0.75, 0.25]  # bin 0; the plateau of bins 2-3 counts once (at its lower middle bin)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(), "exactly one of `schedule`"),
        (dict(schedule=[0.5], amounts=0.5, rounds=1), "exactly one of `schedule`"),
        (dict(schedule=[0.5, 0.7]), "schedule"),
        (dict(schedule=[0.0]), "schedule"),
        (dict(amounts=[1.0]), "amounts"),
        (dict(amounts=0.5), "rounds"),
        (dict(schedule=[0.5], rounds=2), "rounds"),
        (dict(schedule=[0.5], regularization="l3"), "regularization"),
        (dict(schedule=[0.5], strength=-1.0), "strength"),
        (dict(schedule=[0.5], retrain_epochs=-1), "retrain_epochs"),
    ],
)
def test_bad_input_names_the_argument(kwargs, needle):
    with pytest.raises(InvalidArgumentError, match=needle):
        iterative_prune(trained(), digits(), progress=False, **kwargs)


def test_fraction_kept_counts_non_zeros_like_account_also_after_remove_pruning():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 5), nn.ReLU(), nn.Linear(5, 3)).double()
    prune(net, "magnitude", amount=0.6)  # 0.6 of 55 weights: 33 masked, 22 kept
    data = (torch.randn(6, 8, dtype=torch.float64), torch.zeros(6, dtype=torch.long))
    assert fraction_kept(net) == 22 / 55 == account(net, data, method="masked").fraction_kept
    remove_pruning(net)  # masks baked in: the pruned weights are plain zeros now (the old code said 1.0)
    assert get_masks(net)["0"].all() and fraction_kept(net) == 22 / 55 == account(net, data, method="baked").fraction_kept
    # a kept weight that is exactly zero (e.g. quantised to a zero centroid) is not kept, as in account()
    with torch.no_grad():
        flat = net[2].weight.view(-1)
        flat[int(torch.nonzero(flat)[0])] = 0.0
    assert fraction_kept(net) == 21 / 55 == account(net, data, method="zeroed").fraction_kept


def test_weight_histogram_repr_is_one_short_line():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 32))
    with torch.no_grad():
        net[0].weight[:4] = 0.0
    h = weight_histogram(net)  # 81 bins of 2048 - 256 non-zero weights
    text = repr(h)
    assert "\n" not in text and "array" not in text and len(text) < 200, text
    assert text.startswith("WeightHistogram(num_weights=2048, num_zero=256, counted=1792, range=(-0.125, 0.125), bins=81, modes=[")
    assert "lower)])" in text  # a noisy 81-bin histogram has more than 4 local maxima: the 4 highest are shown
    small = nn.Sequential(nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        small[0].weight.copy_(torch.tensor([[-1.0, 0.0], [0.25, 1.0]]))
    assert repr(weight_histogram(small, bins=4)) == (
        "WeightHistogram(num_weights=4, num_zero=1, counted=3, range=(-1, 1), bins=4, modes=[-0.75, 0.25])")
