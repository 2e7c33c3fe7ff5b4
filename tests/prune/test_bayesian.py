"""Pruning a Bayesian PyroModule from its AutoNormal guide; the mask_weights handler in SVI and Predictive."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Predictive, Trace_ELBO, TraceMeanField_ELBO
from pyro.infer.autoguide import AutoDiagonalNormal, AutoGuideList, AutoMultivariateNormal, AutoNormal
from pyro.nn import PyroModule, PyroSample
from torch import nn

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.prune import MaskedWeight, bayesian_masks, mask_weights, prune, prune_bayesian


class BNN(PyroModule):
    def __init__(self):
        super().__init__()
        self.fc1 = PyroModule[nn.Linear](3, 6)
        self.fc1.weight = PyroSample(dist.Normal(0.0, 1.0).expand([6, 3]).to_event(2))
        self.fc2 = PyroModule[nn.Linear](6, 2)
        self.fc2.weight = PyroSample(dist.Normal(0.0, 1.0).expand([2, 6]).to_event(2))

    def forward(self, x, y=None):
        logits = self.fc2(torch.tanh(self.fc1(x)))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("obs", dist.Categorical(logits=logits), obs=y)
        return logits


def fitted(num_steps=60, make_guide=AutoNormal):
    pyro.set_rng_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = (x[:, 0] > 0).long()
    bnn = BNN().double()
    guide = make_guide(bnn)
    svi = SVI(bnn, guide, pyro.optim.Adam({"lr": 0.05}), Trace_ELBO())
    for _ in range(num_steps):
        svi.step(x, y)
    return bnn, guide, x, y


def test_prune_ranks_by_the_guide_loc_and_masks_hold_in_svi_and_predictive():
    bnn, guide, x, y = fitted()
    locs = {s: guide._get_loc_and_scale(s)[0].detach() for s in ("fc1.weight", "fc2.weight")}
    res = prune(bnn, "magnitude", amount=0.5, guide=guide)
    assert res.num_removed == 15 and res.num_nonzero == 15
    masks = bayesian_masks(bnn)
    # exactly the 15 smallest |loc| over both layers are removed (global scope)
    flat = torch.cat([locs[s].abs().flatten() for s in masks])
    kept = torch.cat([masks[s].flatten() for s in masks]).bool()
    assert float(flat[kept].min()) >= float(flat[~kept].max())
    model, q = mask_weights(bnn, bnn), mask_weights(guide, bnn)
    tr = pyro.poutine.trace(q).get_trace(x, y)
    model_tr = pyro.poutine.trace(pyro.poutine.replay(model, trace=tr)).get_trace(x, y)
    for s, m in masks.items():
        aux = tr.nodes[s + "_unconstrained"]  # AutoNormal's Normal(loc, scale) draw of the weight
        assert isinstance(aux["fn"], MaskedWeight) and isinstance(model_tr.nodes[s]["fn"], MaskedWeight)
        w = tr.nodes[s]["value"]
        assert (w[m == 0] == 0).all() and (w[m == 1] != 0).all() and torch.equal(model_tr.nodes[s]["value"], w)
        # the masked densities cover the kept entries only: sums of the elementwise Normal log-densities
        loc, scale = guide._get_loc_and_scale(s)
        assert torch.allclose(aux["fn"].log_prob(w), (dist.Normal(loc, scale).log_prob(w) * m).sum())
        assert torch.allclose(model_tr.nodes[s]["fn"].log_prob(w), (dist.Normal(0.0, 1.0).log_prob(w) * m).sum())
    # SVI with the analytic KL of the kept entries keeps pruned weights at exactly zero
    svi = SVI(model, q, pyro.optim.Adam({"lr": 0.05}), TraceMeanField_ELBO())
    losses = [svi.step(x, y) for _ in range(30)]
    assert all(math.isfinite(v) for v in losses)
    samples = Predictive(model, guide=q, num_samples=20, return_sites=list(masks))(x)
    for s, m in masks.items():
        assert (samples[s].reshape(20, *m.shape)[:, m == 0] == 0).all()
    # cumulative: pruning again never revives
    prune(bnn, "relative_density", amount=0.5, guide=guide)
    for s, m in bayesian_masks(bnn).items():
        assert (m <= masks[s]).all() and int(m.sum()) < int(masks[s].sum()) + 1


def test_masked_kl_is_the_sum_over_kept_entries():
    q = dist.Normal(torch.tensor([[1.0, 2.0]]), torch.ones(1, 2)).to_event(2)
    p = dist.Normal(torch.zeros(1, 2), torch.ones(1, 2)).to_event(2)
    mask = torch.tensor([[0.0, 1.0]])
    kl = torch.distributions.kl_divergence(MaskedWeight(q, mask), MaskedWeight(p, mask))
    assert float(kl) == pytest.approx(2.0)  # KL(N(2, 1) || N(0, 1)) = 2^2 / 2; the pruned entry costs nothing


def test_bad_input():
    bnn, guide, x, y = fitted(num_steps=1)
    with pytest.raises(InvalidArgumentError, match="guide"):
        prune(bnn, "magnitude", amount=0.5)
    with pytest.raises(InvalidArgumentError, match="method"):
        prune(bnn, "obd", amount=0.5, guide=guide)
    with pytest.raises(InvalidArgumentError, match="PyroSample"):
        prune(nn.Sequential(nn.Linear(2, 2)), "magnitude", amount=0.5, guide=guide)
    with pytest.raises(InvalidArgumentError, match="amount"):
        prune(bnn, "magnitude", amount=1.0, guide=guide)
    with pytest.raises(InvalidArgumentError, match="Independent"):
        MaskedWeight(dist.Normal(0.0, 1.0), torch.ones(()))


def _diagonal_fc2_only(bnn):
    """An AutoGuideList: AutoNormal for fc1.weight, AutoDiagonalNormal for fc2.weight."""
    guide = AutoGuideList(bnn)
    guide.append(AutoNormal(pyro.poutine.block(bnn, expose=["fc1.weight"])))
    guide.append(AutoDiagonalNormal(pyro.poutine.block(bnn, hide=["fc1.weight"])))
    return guide


@pytest.mark.parametrize(
    "make_guide, named, sites",
    [
        (AutoDiagonalNormal, "AutoDiagonalNormal", "'fc1.weight', 'fc2.weight'"),
        (AutoMultivariateNormal, "AutoMultivariateNormal", "'fc1.weight', 'fc2.weight'"),
        (_diagonal_fc2_only, "an AutoGuideList with the part AutoDiagonalNormal", "'fc2.weight'"),
    ],
)
def test_a_guide_drawing_the_weights_jointly_is_refused_not_silently_mispruned(make_guide, named, sites):
    # Before: prune() ranked by the joint guide's median and mask_weights() only zeroed the Delta values; the
    # joint latent kept the pruned weights in q's density, so SVI grew their scales without bound.
    bnn, joint, x, y = fitted(num_steps=2, make_guide=make_guide)
    for call in (lambda: prune(bnn, "magnitude", amount=0.5, guide=joint),
                 lambda: prune_bayesian(bnn, joint, amount=0.5, method="magnitude")):
        with pytest.raises(InvalidArgumentError, match=rf"`guide` is {named}, which draws the weights \[{sites}\].*AutoNormal"):
            call()
    assert bayesian_masks(bnn) == {}  # refused before any mask was stored
    pruned, normal, _, _ = fitted(num_steps=2)
    prune(pruned, "magnitude", amount=0.5, guide=normal)
    with pytest.raises(InvalidArgumentError, match=rf"`fn` is {named}.*AutoNormal"):
        mask_weights(joint, pruned)
    # a wrapped guide hides its type: the handler refuses the masked Delta drawn from the joint latent at run time
    wrapped = mask_weights(lambda *args: joint(*args), pruned)
    with pytest.raises(InvalidArgumentError, match=r"weight site 'fc\d.weight' is a Delta drawn from the joint auxiliary latent.*AutoNormal"):
        pyro.poutine.trace(wrapped).get_trace(x, y)
    # the supported guide still passes the run-time check
    pyro.poutine.trace(mask_weights(lambda *args: normal(*args), pruned)).get_trace(x, y)


@pytest.mark.parametrize("per_layer", [False, True])
def test_relative_density_threshold_removes_lambda_above_it(per_layer):
    # the rule of prune_by_relative_density: remove lambda_i = exp(-mu^2 / (2 sigma^2)) > t
    bnn, guide, x, y = fitted()
    lam = {}
    for s in ("fc1.weight", "fc2.weight"):
        loc, scale = (t.detach() for t in guide._get_loc_and_scale(s))
        lam[s] = torch.exp(-(loc**2) / (2 * scale**2))
    flat = torch.cat([v.flatten() for v in lam.values()]).sort().values
    t = float(flat[14] + flat[15]) / 2  # between two densities, away from rounding at the boundary
    threshold = {s: t for s in lam} if per_layer else t
    prune_bayesian(bnn, guide, threshold=threshold, method="relative_density")
    for s, m in bayesian_masks(bnn).items():
        assert torch.equal(m.bool(), lam[s] <= t)
    assert sum(int(m.sum()) for m in bayesian_masks(bnn).values()) == 15


def test_relative_density_threshold_outside_the_unit_interval_is_refused():
    bnn, guide, x, y = fitted(num_steps=1)
    for bad in (0.0, 1.0, 2.5, -1.0, "0.5"):
        with pytest.raises(InvalidArgumentError, match="threshold.*open interval"):
            prune_bayesian(bnn, guide, threshold=bad, method="relative_density")
    with pytest.raises(InvalidArgumentError, match=r"threshold\['fc1.weight'\]"):
        prune_bayesian(bnn, guide, threshold={"fc1.weight": 1.5, "fc2.weight": 0.5}, method="relative_density")
