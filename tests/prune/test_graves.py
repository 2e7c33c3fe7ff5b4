"""Graves (2011) variational MDL fit and pruning by relative density, on a tiny 4-8-2 tanh
MLP classifying a linearly separable synthetic task (float64, seeded, 200 SVI steps)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.distributions import Normal, kl_divergence, transform_to

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.prune import get_masks
from bayesstruct.prune.graves import (
    SweepRow,
    VariationalFit,
    fit_variational,
    prune_by_relative_density,
    relative_density,
    threshold_sweep,
    weight_kl_bits,
)

LN2 = math.log(2.0)


def make_data(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return x, y


def make_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)).double()


_FIT = {}


def the_fit():
    """One cached fit (the param store and seed are reset per test, the fit is isolated from both)."""
    if "fit" not in _FIT:
        _FIT["fit"] = fit_variational(
            make_net(), make_data(), num_steps=200, lr=0.03, prior_scale=1.0, seed=0, progress=False
        )
    return _FIT["fit"]


def accuracy(net, data):
    with torch.no_grad():
        return float((net(data[0]).argmax(1) == data[1]).double().mean())


def test_fit_shapes_and_seeded():
    fit, net = the_fit(), make_net()
    assert isinstance(fit, VariationalFit)
    assert fit.layers == ("0", "2")
    for name, mod in [("0", net[0]), ("2", net[2])]:
        assert fit.loc[name].shape == mod.weight.shape == fit.scale[name].shape
        assert (fit.scale[name] > 0).all()
    assert set(fit.point_params) == {"0.bias", "2.bias"}
    assert len(fit.history) == 200
    again = fit_variational(make_net(), make_data(), num_steps=200, lr=0.03, prior_scale=1.0, seed=0, progress=False)
    assert again.total_bits == fit.total_bits
    assert torch.equal(again.loc["0"], fit.loc["0"]) and torch.equal(again.scale["2"], fit.scale["2"])
    assert fit_variational(make_net(), make_data(), num_steps=1, progress=False).num_steps == 1
    assert '"model_bits"' in fit.to_json()


def test_relative_density_closed_form_from_guide_params():
    fit = the_fit()
    state = fit.param_state
    lam = relative_density(fit)
    for name in fit.layers:
        # the guide's own parameters, read from Pyro's param store state (unconstrained -> constrained)
        mu = state["params"][f"AutoNormal.locs.{name}.weight"].detach()
        key = f"AutoNormal.scales.{name}.weight"
        sigma = transform_to(state["constraints"][key])(state["params"][key]).detach()
        assert torch.allclose(mu, fit.loc[name]) and torch.allclose(sigma, fit.scale[name])
        by_hand = torch.exp(-(mu**2) / (2 * sigma**2))
        assert torch.allclose(lam[name], by_hand, rtol=1e-12, atol=0)
        q = Normal(mu, sigma)
        ratio = torch.exp(q.log_prob(torch.zeros_like(mu)) - q.log_prob(mu))
        assert torch.allclose(lam[name], ratio, rtol=1e-10, atol=1e-300)
        assert ((lam[name] > 0) & (lam[name] <= 1)).all()


@settings(max_examples=200, deadline=None)
@given(
    mu=st.floats(-10, 10, allow_nan=False).filter(lambda v: abs(v) > 1e-3),
    log_sigma=st.floats(-5, 3),
    t=st.floats(1e-6, 1 - 1e-6),
)
def test_sparse_vd_equivalence(mu, log_sigma, t):
    sigma = math.exp(log_sigma)
    lam = math.exp(-(mu**2) / (2 * sigma**2))
    log_alpha = math.log(sigma**2 / mu**2)
    cut = -math.log(-2 * math.log(t))
    if abs(log_alpha - cut) > 1e-9:  # away from the boundary, where rounding could flip either side
        assert (lam > t) == (log_alpha > cut)


def test_mdl_terms_are_analytic_kl_and_sum():
    fit = the_fit()
    kl = 0.0
    for name in fit.layers:
        mu, sigma, sp = fit.loc[name], fit.scale[name], fit.prior_scale
        closed = torch.log(sp / sigma) + (sigma**2 + mu**2) / (2 * sp**2) - 0.5
        kl += float(closed.sum())
        ref = kl_divergence(Normal(mu, sigma), Normal(torch.zeros_like(mu), sp * torch.ones_like(mu)))
        assert torch.allclose(closed, ref)
    assert fit.model_bits == pytest.approx(kl / LN2, rel=1e-10)
    assert fit.prior == "fixed"
    assert sum(float(v.sum()) for v in weight_kl_bits(fit).values()) == pytest.approx(fit.model_bits, rel=1e-10)
    assert fit.total_bits == pytest.approx(fit.data_bits + fit.model_bits, rel=1e-12)
    assert fit.data_bits > 0  # a categorical code length


def test_training_reduces_mdl():
    fit = the_fit()
    assert fit.total_bits < 0.5 * fit.initial_total_bits
    early = sum(fit.history[:10]) / 10
    late = sum(fit.history[-10:]) / 10
    assert late < early


@pytest.mark.parametrize("threshold", [0.9, 0.5, 0.05])
def test_prune_removes_exactly_lambda_above_threshold_and_masks_hold(threshold):
    fit, net, data = the_fit(), make_net(), make_data()
    lam = relative_density(fit)
    res = prune_by_relative_density(net, fit, threshold)
    masks = get_masks(net)
    expected_removed = 0
    for name, mod in [("0", net[0]), ("2", net[2])]:
        keep = lam[name] <= threshold
        assert torch.equal(masks[name].bool(), keep)
        assert torch.equal(mod.weight.detach(), torch.where(keep, fit.loc[name], torch.zeros_like(fit.loc[name])))
        expected_removed += int((~keep).sum())
    assert res.num_removed == expected_removed
    assert res.num_nonzero == res.num_weights - expected_removed
    assert torch.equal(net[0].bias.detach(), fit.point_params["0.bias"])
    # masks never revive under Adam on the plain model
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(net(data[0]), data[1]).backward()
        opt.step()
    for name, mod in [("0", net[0]), ("2", net[2])]:
        assert (mod.weight.detach()[masks[name] == 0] == 0).all()
    # cumulative: a looser threshold afterwards never revives a removed weight
    prune_by_relative_density(net, fit, 0.999)
    for name in fit.layers:
        assert (get_masks(net)[name] <= masks[name]).all()


def test_threshold_sweep_monotone():
    fit, net, data = the_fit(), make_net(), make_data()
    ts = [0.99, 0.9, 0.5, 0.2, 0.05, 0.01, 1e-4]
    rows = threshold_sweep(net, fit, ts, lambda m: accuracy(m, data))
    assert [r.threshold for r in rows] == ts and all(isinstance(r, SweepRow) for r in rows)
    kept = [r.fraction_kept for r in rows]
    # thresholds decrease along the list: the fraction kept must not increase
    assert all(a >= b for a, b in zip(kept, kept[1:]))
    assert kept[0] > kept[-1]
    lam = torch.cat([v.flatten() for v in relative_density(fit).values()])
    assert kept[2] == pytest.approx(float((lam <= 0.5).double().mean()))
    assert rows[0].value >= 0.9  # the posterior mean net with few weights removed still classifies
    assert get_masks(net)["0"].all()  # the model itself is untouched


def test_bad_input_names_the_argument():
    fit, data = the_fit(), make_data()
    for bad in [0.0, 1.0, -0.1, 1.5, float("nan"), True]:
        with pytest.raises(InvalidArgumentError, match="`threshold`"):
            prune_by_relative_density(make_net(), fit, bad)
    with pytest.raises(InvalidArgumentError, match="`thresholds`"):
        threshold_sweep(make_net(), fit, [0.5, 1.0], lambda m: 0.0)
    with pytest.raises(InvalidArgumentError, match="no prunable layers"):
        fit_variational(nn.Sequential(nn.Tanh()), data, num_steps=5, progress=False)
    with pytest.raises(InvalidArgumentError, match="no prunable layers"):
        prune_by_relative_density(nn.Sequential(nn.Tanh()), fit, 0.5)
    for bad in [0, -3, 2.5]:
        with pytest.raises(InvalidArgumentError, match="`num_steps`"):
            fit_variational(make_net(), data, num_steps=bad, progress=False)
    with pytest.raises(InvalidArgumentError, match="`prior_scale`"):
        fit_variational(make_net(), data, num_steps=5, prior_scale=0.0, progress=False)
    with pytest.raises(InvalidArgumentError, match="`likelihood`"):
        fit_variational(make_net(), data, num_steps=5, likelihood="poisson", progress=False)
    with pytest.raises(InvalidArgumentError, match="`data`"):
        fit_variational(make_net(), (data[0], data[1].double()), num_steps=5, progress=False)
    with pytest.raises(InvalidArgumentError, match="`data`: the model fails on x of shape"):
        fit_variational(make_net(), (data[0][:, :-1], data[1]), num_steps=5, progress=False)
    with pytest.raises(InvalidArgumentError, match="`data`: labels must be class indices"):
        fit_variational(make_net(), (data[0], data[1] + 100), num_steps=5, progress=False)
    other = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    with pytest.raises(InvalidArgumentError, match="shape"):
        prune_by_relative_density(other, fit, 0.5)
    pruned = make_net()
    prune_by_relative_density(pruned, fit, 0.5)
    with pytest.raises(InvalidArgumentError, match="remove_pruning"):
        fit_variational(pruned, data, num_steps=5, progress=False)


def test_regression_likelihood_runs():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 4, generator=g, dtype=torch.float64)
    y = x[:, :1] * 0.5
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    fit = fit_variational(net, (x, y), num_steps=50, lr=0.03, likelihood="normal", noise_scale=0.5, seed=1, progress=False)
    assert fit.total_bits < fit.initial_total_bits
    assert fit.total_bits == pytest.approx(fit.data_bits + fit.model_bits)


def test_log_relative_density_ranks_where_lambda_underflows():
    from bayesstruct.prune.graves import VariationalFit, log_relative_density

    # mu/sigma = 100 and 1000: lambda = exp(-5e3), exp(-5e5) are 0 even in float64; log lambda keeps them apart
    loc = {"0": torch.tensor([[1.0, 10.0, 0.1]], dtype=torch.float32)}
    scale = {"0": torch.tensor([[0.01, 0.01, 1.0]], dtype=torch.float32)}
    fit = VariationalFit(layers=("0",), loc=loc, scale=scale, point_params={}, prior_scale=1.0, data_bits=0.0, model_bits=0.0,
                         initial_total_bits=0.0, history=(), likelihood="categorical", num_steps=1, lr=0.1, seed=0, param_state={})
    log_lam = log_relative_density(fit)["0"]
    assert log_lam.dtype == torch.float64
    assert torch.allclose(log_lam, torch.tensor([[-5e3, -5e5, -0.005]], dtype=torch.float64), rtol=1e-6)
    assert relative_density(fit)["0"][0, 0] == 0.0  # the underflow log space avoids
    net = nn.Sequential(nn.Linear(3, 1, bias=False))
    res = prune_by_relative_density(net, fit, log_threshold=-1e4)  # lambda > exp(-1e4): only the first and last go
    assert get_masks(net)["0"].tolist() == [[0.0, 1.0, 0.0]] and res.diagnostics["log_threshold"] == -1e4
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        prune_by_relative_density(net, fit, 0.5, log_threshold=-1.0)
    with pytest.raises(InvalidArgumentError, match="log_threshold"):
        prune_by_relative_density(net, fit, log_threshold=0.0)


# ----------------------------------------------------------------------------- minibatch SVI, local reparameterisation


def _loss_setup(local_reparam, init_scale=0.3):
    """The model, a guide at the net's weights with scale ``init_scale``, and the fit's loss function."""
    import pyro
    from pyro.infer.autoguide import AutoNormal
    from pyro.infer.autoguide.initialization import init_to_value

    from bayesstruct.prune.graves import _bayesian_copy, _make_loss, _make_model
    from bayesstruct.prune.saliency import _check_layers

    net = make_net()
    layers = _check_layers(net)
    pnet = _bayesian_copy(net, layers, 1.0)
    model = _make_model(pnet, "categorical", 1.0)
    init = {f"{n}.weight": m.weight.detach().clone() for n, m in layers}
    guide = AutoNormal(model, init_loc_fn=init_to_value(values=init), init_scale=init_scale)
    return model, guide, _make_loss(pnet, ["0", "2"], {"0": 1.0, "2": 1.0}, local_reparam), pyro


@pytest.mark.parametrize("local_reparam", [False, True])
def test_minibatch_loss_is_unbiased_for_the_full_batch_loss(local_reparam):
    model, guide, loss, pyro = _loss_setup(local_reparam)
    x, y = make_data(n=64)
    with pyro.get_param_store().scope():
        pyro.set_rng_seed(3)
        guide(x, y)
        with torch.no_grad():
            full = torch.stack([loss(model, guide, x, y, None) for _ in range(500)])
            mini = torch.stack([loss(model, guide, x, y, 8) for _ in range(500)])
    # both estimate E_q[-log p(D|w)] + KL; the minibatch one (64/8 times the likelihood of 8
    # rows drawn without replacement) is unbiased for it: the means agree within 4 standard
    # errors of their difference (seeded, so deterministic; a biased scale, e.g. no 64/8
    # factor, is off by ~7/8 of the data term, hundreds of standard errors)
    se = math.sqrt(full.var() / len(full) + mini.var() / len(mini))
    assert abs(float(full.mean() - mini.mean())) < 4 * se
    assert float(mini.var()) > float(full.var())  # subsampling adds variance: the scale did act


def test_local_reparameterisation_matches_weight_sampling_moments():
    from bayesstruct.prune.graves import _noise_hooks

    torch.manual_seed(0)
    layer = nn.Linear(5, 3).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    mu, sigma = torch.randn(3, 5, dtype=torch.float64), torch.rand(3, 5, dtype=torch.float64) + 0.2
    n = 20000
    with torch.no_grad():
        layer.weight.copy_(mu)
        handles = _noise_hooks(layer, [""], {"": sigma})
        local = torch.stack([layer(x) for _ in range(n)])
        for h in handles:
            h.remove()
        w = mu + sigma * torch.randn(n, 3, 5, dtype=torch.float64)
        sampled = torch.einsum("bi,noi->nbo", x, w) + layer.bias
    mean = x @ mu.T + layer.bias  # closed form: b + x mu
    var = (x**2) @ (sigma**2).T  # closed form: x^2 sigma^2
    sd = var.sqrt()
    for draws in (local, sampled):
        # n = 20000 draws: the standard error of a mean is sd / 141, of a variance ~var * sqrt(2 / n) = 1%
        assert ((draws.mean(0) - mean).abs() < 5 * sd / math.sqrt(n)).all()
        assert torch.allclose(draws.var(0), var, rtol=0.06)
    assert torch.equal(layer(x), mean)  # hooks removed: the plain layer again


def test_minibatch_local_reparam_fit_learns_and_separate_scale_lr():
    net, data = make_net(), make_data()
    fit = fit_variational(net, data, num_steps=150, lr=0.03, batch_size=16, local_reparam=True, init_scale=0.05,
                          scale_lr=1e-9, fit_prior_scale=True, seed=0, progress=False)
    assert fit.batch_size == 16 and len(fit.history) == 150
    assert fit.total_bits < fit.initial_total_bits
    # the means moved (the guide's parameters are trained), the scales, at lr 1e-9, did not
    assert (fit.loc["0"] - net[0].weight.detach()).abs().max() > 0.05
    for name in fit.layers:
        assert torch.allclose(fit.scale[name], torch.full_like(fit.scale[name], 0.05), atol=1e-6)
    # fitted prior scales: Graves's closed-form optimum sigma_p^2 = mean(mu^2 + sigma^2), and model_bits use them
    kl = 0.0
    for name in fit.layers:
        mu, sigma = fit.loc[name], fit.scale[name]
        sp = float((mu**2 + sigma**2).mean().sqrt())
        assert fit.prior_scales[name] == pytest.approx(sp, rel=1e-9)
        kl += float(kl_divergence(Normal(mu, sigma), Normal(torch.zeros_like(mu), sp)).sum())
    assert fit.model_bits == pytest.approx(kl / LN2, rel=1e-9)
    assert fit.prior == "layer"
    assert sum(float(v.sum()) for v in weight_kl_bits(fit).values()) == pytest.approx(fit.model_bits, rel=1e-9)
    again = fit_variational(make_net(), data, num_steps=150, lr=0.03, batch_size=16, local_reparam=True, init_scale=0.05,
                            scale_lr=1e-9, fit_prior_scale=True, seed=0, progress=False)
    assert again.total_bits == fit.total_bits  # seeded


def test_new_options_bad_input():
    data = make_data()
    for bad in [0, -1, 2.5]:
        with pytest.raises(InvalidArgumentError, match="`batch_size`"):
            fit_variational(make_net(), data, num_steps=2, batch_size=bad, progress=False)
    with pytest.raises(InvalidArgumentError, match="`scale_lr`"):
        fit_variational(make_net(), data, num_steps=2, scale_lr=0.0, progress=False)
    with pytest.raises(InvalidArgumentError, match="`local_reparam`"):
        fit_variational(make_net(), data, num_steps=2, local_reparam="yes", progress=False)
    with pytest.raises(InvalidArgumentError, match="`fit_prior_scale`"):
        fit_variational(make_net(), data, num_steps=2, fit_prior_scale=1, progress=False)


def test_per_weight_prior_scale_is_the_minimal_kl():
    data = make_data()
    fit = fit_variational(make_net(), data, num_steps=60, lr=0.03, batch_size=32, local_reparam=True,
                          fit_prior_scale="weight", seed=0, progress=False)
    assert fit.prior_scales == {}
    kl = 0.0
    for name in fit.layers:
        mu, sigma = fit.loc[name], fit.scale[name]
        # KL to N(0, s^2) with the optimal s^2 = mu^2 + sigma^2 (torch's own KL), and no s does better
        best = kl_divergence(Normal(mu, sigma), Normal(torch.zeros_like(mu), (mu**2 + sigma**2).sqrt()))
        for factor in (0.8, 1.25):
            other = kl_divergence(Normal(mu, sigma), Normal(torch.zeros_like(mu), factor * (mu**2 + sigma**2).sqrt()))
            assert (other > best).all()
        assert torch.allclose(best, 0.5 * torch.log1p(mu**2 / sigma**2))  # = 1/2 log(1 + 1/alpha)
        kl += float(best.sum())
    assert fit.model_bits == pytest.approx(kl / LN2, rel=1e-9)
    assert fit.total_bits < fit.initial_total_bits
    assert fit.prior == "weight"
    assert sum(float(v.sum()) for v in weight_kl_bits(fit, scale_bits=0).values()) == pytest.approx(fit.model_bits, rel=1e-9)
    # the per-weight prior scales are part of the message: a float32 each by default
    num_weights = sum(fit.loc[n].numel() for n in fit.layers)
    assert sum(float(v.sum()) for v in weight_kl_bits(fit).values()) == pytest.approx(fit.model_bits + 32 * num_weights, rel=1e-9)
    with pytest.raises(InvalidArgumentError, match="scale_bits"):
        weight_kl_bits(fit, scale_bits=-1)
