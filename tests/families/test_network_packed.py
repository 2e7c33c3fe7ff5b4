"""Tests of ``pack_weights=True`` in bayesstruct.families.network: all weights in the one site "weights"."""

import pyro
import pyro.distributions as dist
import pytest
import torch

from bayesstruct.evidence.density import ModelDensity
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.families.network import (
    PACKED_WEIGHTS_SITE,
    NetworkFamily,
    fit_structure_posterior,
    network_model,
    pack_weight_values,
    unpack_weight_values,
    weight_site_names,
)
from bayesstruct.nn import StructureGraph, StructureNetwork

from test_network import exact_log_evidence_grid, linear_regression_data

PRECISIONS = {"fixed": 2.0, "learn": "learn", "prior": dist.Gamma(2.0, 1.0)}


def two_edge_graph():
    # both primitives of edge 0 -> 1 carry weights, so a zero coordinate of a fixed gamma drops some
    return StructureGraph(3, {(0, 1): ["linear_sigmoid", "linear"], (1, 2): "linear"},
                          input_shape=(3,), vertex_shapes={1: (4,), 2: (2,)})


def data(n=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=gen, dtype=torch.float64), torch.randint(0, 2, (n,), generator=gen)


def sample_sites(trace):
    """The latent sites' values (conditioned ones included), without the data plate and ``y``."""
    return {n: s["value"] for n, s in trace.nodes.items() if s["type"] == "sample" and n not in ("data", "y")}


@pytest.mark.parametrize("mode", list(PRECISIONS))
@pytest.mark.parametrize("fixed_gamma", [False, True])
def test_packed_site_has_the_same_log_joint_as_the_per_parameter_sites(mode, fixed_gamma):
    g = two_edge_graph()
    x, y = data()
    gamma = {(0, 1): torch.tensor([0.0, 1.0], dtype=torch.float64)} if fixed_gamma else None
    kw = dict(graph=g, gamma=gamma, temperature=0.5, weight_precision=PRECISIONS[mode], weight_precision_init=3.0)
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    unpacked = pyro.poutine.trace(network_model).get_trace(x, y, **kw)
    values = sample_sites(unpacked)
    names = [n for n in weight_site_names(g) if n in values]
    # a zero coordinate of a fixed gamma: its primitive's weights get no site, packed or not
    assert len(names) == (4 if fixed_gamma else 6)
    packed_value = pack_weight_values(g, {n: values[n] for n in names}, gamma=gamma)
    assert packed_value.shape == (sum(values[n].numel() for n in names),)
    cond = {k: v for k, v in values.items() if k not in names}
    cond[PACKED_WEIGHTS_SITE] = packed_value
    packed = pyro.poutine.trace(pyro.poutine.condition(network_model, cond)).get_trace(x, y, pack_weights=True, **kw)
    packed_sites = sample_sites(packed)
    assert set(packed_sites) == set(cond)  # "weights" replaces every per-parameter site, the rest is unchanged
    assert packed.nodes[PACKED_WEIGHTS_SITE]["fn"].event_shape == packed_value.shape
    # the same model: equal log joint (float64; only the summation order differs)
    torch.testing.assert_close(packed.log_prob_sum(), unpacked.log_prob_sum(), rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(packed.nodes["y"]["fn"].logits, unpacked.nodes["y"]["fn"].logits, rtol=1e-12, atol=0)
    back = unpack_weight_values(g, packed_value, gamma=gamma)
    assert list(back) == names
    for n in names:
        assert torch.equal(back[n], values[n])


def test_packed_density_equals_the_unpacked_one_and_vectorises_over_particles():
    # ModelDensity flattens the latent sites in trace order, so the packed vector is exactly the
    # concatenation of the per-parameter sites: both densities must agree at every z, per particle too.
    g = two_edge_graph()
    x, y = data(n=20)
    kw = dict(graph=g, temperature=0.5, weight_precision=dist.Gamma(2.0, 1.0))
    plain = ModelDensity(network_model, x, y, **kw)
    packed = ModelDensity(network_model, x, y, pack_weights=True, **kw)
    assert packed.dim == plain.dim
    assert PACKED_WEIGHTS_SITE in packed.latent_names and PACKED_WEIGHTS_SITE not in plain.latent_names
    z = torch.randn(4, plain.dim, dtype=torch.float64)
    batched = packed(z)
    torch.testing.assert_close(batched, plain(z), rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(batched, torch.stack([packed(z[i : i + 1])[0] for i in range(4)]))


def test_family_with_packed_weights_has_the_same_laplace_evidence():
    g, x, y, design = linear_regression_data(n=40)
    fams = [NetworkFamily(g, task="regression", noise_scale=0.5, pack_weights=p) for p in (False, True)]
    structure = fams[0].structures()[0]
    ev = [f.log_evidence(x, y, structure, method="laplace").log_evidence for f in fams]
    exact = float(exact_log_evidence_grid(design, y, 4.0, torch.zeros(1))[0])  # alpha = 1: the default
    assert ev[1] == pytest.approx(ev[0], abs=1e-6)
    assert ev[1] == pytest.approx(exact, abs=1e-4)  # linear-Gaussian: Laplace is exact
    assert "pack_weights" not in fams[0].hyperparameters({}) and fams[1].hyperparameters({})["pack_weights"] is True


def test_packed_fit_with_vectorised_particles_keeps_per_parameter_weights():
    g = two_edge_graph()
    x, y = data(n=40)
    post = fit_structure_posterior(g, x, y, num_steps=30, lr=0.05, seed=1, progress=False, num_particles=3,
                                   num_elbo_particles=8, num_gamma_samples=50, pack_weights=True,
                                   weight_precision=dist.Gamma(2.0, 1.0))
    template = dict(StructureNetwork(g).named_parameters())
    assert list(post.weights) == list(template)
    for n, p in template.items():
        assert post.weights[n].shape == p.shape
    # the per-parameter medians are the unpacked guide location
    loc = pyro.param(f"AutoNormal.locs.{PACKED_WEIGHTS_SITE}").detach()
    torch.testing.assert_close(torch.cat([post.weights[n].reshape(-1) for n in template]), loc)
    assert post.gamma_samples[(0, 1)].shape == (50, 2) and post.weight_precision > 0
    net = post.discretize()
    assert net(x).shape == (40, 2)


def test_pack_weights_bad_input_names_the_argument():
    g = two_edge_graph()
    x, y = data()
    for bad in ("yes", 1, None):
        with pytest.raises(InvalidArgumentError, match="pack_weights"):
            network_model(x, y, graph=g, pack_weights=bad)
        with pytest.raises(InvalidArgumentError, match="pack_weights"):
            fit_structure_posterior(g, x, y, num_steps=1, progress=False, pack_weights=bad)
        with pytest.raises(InvalidArgumentError, match="pack_weights"):
            NetworkFamily(g, pack_weights=bad)
    with pytest.raises(InvalidArgumentError, match=r"`value` must have shape \(\.\.\., 42\)"):
        unpack_weight_values(g, torch.zeros(45))
    weights = dict(StructureNetwork(g).named_parameters())
    with pytest.raises(InvalidArgumentError, match="lacks"):
        pack_weight_values(g, {k: v for k, v in list(weights.items())[1:]})
    with pytest.raises(InvalidArgumentError, match="ops.e0_1.0.linear.weight"):
        pack_weight_values(g, {**weights, "ops.e0_1.0.linear.weight": torch.zeros(3, 4)})


def test_cli_pack_weights_flag_reaches_the_fit(tmp_path):
    # `bayesstruct fit network --pack-weights` (bayesstruct/commands/network.py): the JSON records it and the
    # discrete structure keeps per-parameter weights (hidden 8: 64*8+8 + 8*10+10 parameters)
    import json

    from bayesstruct.cli import main

    out = tmp_path / "r.json"
    code = main(["fit", "network", "--dataset", "digits", "--smoke", "--hidden", "8", "--jit", "--elbo", "meanfield",
                 "--pack-weights", "--no-progress", "--json", str(out)])
    assert code == 0
    d = json.loads(out.read_text())
    assert d["pack_weights"] is True and d["elbo_estimator"] == "meanfield"
    assert d["criteria"]["num_params"] == 64 * 8 + 8 + 8 * 10 + 10
    assert d["elbo"] < 0


def test_classification_likelihood_is_the_categorical_log_probability():
    # the "y" site is scored with F.cross_entropy (one fused log-softmax + NLL); it must equal
    # torch's Categorical(logits).log_prob, also with batch dims from an outer (particle) plate
    g = two_edge_graph()
    x, y = data(n=15)
    tr = pyro.poutine.trace(network_model).get_trace(x, y, graph=g, temperature=0.5)
    fn = tr.nodes["y"]["fn"]
    assert isinstance(fn, dist.Categorical)
    torch.testing.assert_close(fn.log_prob(y), torch.distributions.Categorical(logits=fn.logits).log_prob(y),
                               rtol=1e-12, atol=1e-12)
    with pyro.plate("particles", 3, dim=-2):
        tr = pyro.poutine.trace(network_model).get_trace(x, y, graph=g, temperature=0.5, pack_weights=True)
    fn = tr.nodes["y"]["fn"]
    assert fn.batch_shape == (3, 15)
    torch.testing.assert_close(fn.log_prob(y), torch.distributions.Categorical(logits=fn.logits).log_prob(y),
                               rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- the Γ site's cheap guide


@pytest.mark.parametrize("K", [2, 3, 5])
def test_guide_stick_breaking_is_torchs_bijection_with_the_autograd_log_jacobian(K):
    # _StickBreaking recomputes torch's biject_to(simplex) in fewer ops: the same map and inverse, and a
    # log|det J| equal to slogdet of the autograd Jacobian of x -> gamma[:-1] (the density is taken w.r.t.
    # the first K-1 coordinates), to float64 rounding (1e-10).
    from torch.distributions import biject_to, constraints

    from bayesstruct.families.network import _StickBreaking

    t, ref = _StickBreaking(), biject_to(constraints.simplex)
    x = 3 * torch.randn(6, K - 1, generator=torch.Generator().manual_seed(K), dtype=torch.float64)
    y = t(x)
    torch.testing.assert_close(y, ref(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(t.inv(y), x, rtol=1e-8, atol=1e-8)
    ld = t.log_abs_det_jacobian(x, y)
    torch.testing.assert_close(ld, ref.log_abs_det_jacobian(x, y), rtol=0, atol=1e-10)
    for i in range(x.shape[0]):
        J = torch.autograd.functional.jacobian(lambda v: t(v)[:-1], x[i])
        assert float(torch.linalg.slogdet(J)[1]) == pytest.approx(float(ld[i]), abs=1e-10)


@pytest.mark.parametrize("K", [2, 4])
def test_gamma_guide_is_the_transformed_normal_with_the_same_draws_density_and_gradient(K):
    # The meanfield guide's Γ distribution against the TransformedDistribution it replaces: one seed gives the
    # same draw, the same log q (fast path: the draw's own eps) and the same gradient w.r.t. (loc, scale);
    # any other value (inverse path), a sample shape and an expanded batch score the same too. Float64
    # rounding tolerances.
    from torch.distributions import biject_to, constraints

    from bayesstruct.families.network import _StickBreakingNormal

    gen = torch.Generator().manual_seed(K)
    loc = torch.randn(K - 1, generator=gen, dtype=torch.float64).requires_grad_()
    scale = (torch.rand(K - 1, generator=gen, dtype=torch.float64) + 0.2).requires_grad_()
    q = _StickBreakingNormal(loc, scale)
    ref = dist.TransformedDistribution(dist.Normal(loc, scale).to_event(1), biject_to(constraints.simplex))
    assert q.event_shape == ref.event_shape == (K,) and q.batch_shape == ref.batch_shape == ()
    assert q.has_rsample and q.support is constraints.simplex
    torch.manual_seed(1)
    a = q.rsample()
    torch.manual_seed(1)
    b = ref.rsample()
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    lq, lr = q.log_prob(a), ref.log_prob(b)
    torch.testing.assert_close(lq, lr, rtol=0, atol=1e-10)
    for ga, gb in zip(torch.autograd.grad(lq, (loc, scale)), torch.autograd.grad(lr, (loc, scale))):
        torch.testing.assert_close(ga, gb, rtol=1e-9, atol=1e-10)
    other = torch.distributions.Dirichlet(torch.ones(K, dtype=torch.float64)).sample((7,))
    torch.testing.assert_close(q.log_prob(other), ref.log_prob(other), rtol=0, atol=1e-9)
    e = q.expand((3, 1))
    draws = e.rsample((2,))
    assert draws.shape == (2, 3, 1, K) and e.batch_shape == (3, 1)
    torch.testing.assert_close(e.log_prob(draws), ref.log_prob(draws), rtol=0, atol=1e-9)


def test_gamma_prior_is_built_once_and_the_relaxed_elbo_bounds_the_exact_evidence():
    # Edge 0 -> 1 with [linear, zero]: given gamma, f = gamma_0 (W x + b) is linear-Gaussian in the weights, so
    # log p(y) = log ∫ p(y | gamma_0) Concrete(gamma | 1/2, lambda) dgamma_0 is a 1-d integral (quadrature in
    # logit space, 4001 points: converged to < 1e-3). The packed meanfield jit fit, with the cheap Γ prior
    # and guide, must stay below it: ELBO <= log p(y) + 0.2 (3 Monte Carlo standard errors of the
    # 4000-particle estimate, as in the other bound tests); the gap is the mean-field and Normal-in-logit
    # restriction (q(gamma) q(w) cannot hold the gamma_0-W coupling), measured 2.25 nats, allowed 4.
    from bayesstruct.evidence.exact import LinearGaussian
    from bayesstruct.families.network import _gamma_prior
    from bayesstruct.priors import GumbelSoftmax, Restriction

    _, x, y, design = linear_regression_data()
    g = StructureGraph(2, {(0, 1): ["linear", "zero"]}, input_shape=(3,), vertex_shapes={1: (1,)})
    lam = 0.5
    t = torch.linspace(-25.0, 25.0, 4001, dtype=torch.float64)
    g0 = torch.sigmoid(t)
    log_lik = torch.stack([LinearGaussian(float(c) * design, y, 1.0, 4.0).log_evidence() for c in g0])
    log_prior = GumbelSoftmax(torch.tensor([0.5, 0.5]), lam).log_prob(torch.stack([g0, 1 - g0], -1))
    log_jac = torch.nn.functional.logsigmoid(t) + torch.nn.functional.logsigmoid(-t)
    exact = float(torch.logsumexp(log_lik + log_prior + log_jac, 0) + torch.log(t[1] - t[0]))
    post = fit_structure_posterior(g, x, y, task="regression", noise_scale=0.5, weight_precision=1.0,
                                   temperature=lam, num_steps=300, lr=0.1, seed=0, progress=False,
                                   num_elbo_particles=4000, num_gamma_samples=100, jit=True, elbo="meanfield",
                                   pack_weights=True)
    assert exact - 4.0 <= post.elbo <= exact + 0.2, (post.elbo, exact)
    key = (Restriction.SIMPLEX_INTERIOR, 2, lam, "gumbel-softmax", torch.float64, torch.device("cpu"))
    prior = _gamma_prior(*key)
    assert prior is _gamma_prior(*key)
    tr = pyro.poutine.trace(network_model).get_trace(x, y, graph=g, temperature=lam, task="regression")
    assert tr.nodes["gamma_0_1"]["fn"] is prior


def test_guide_normal_of_the_weights_is_pyros_normal_with_a_cheaper_draw():
    # The meanfield guide's weight sites: the same draws as pyro's Normal under one seed (randn is the same
    # stream as normal_), the same registered analytic KL to the Normal prior, and expand keeps the class.
    from torch.distributions import kl_divergence

    from bayesstruct.families.network import _GuideNormal

    loc, scale = torch.randn(6), torch.rand(6) + 0.1
    q, ref = _GuideNormal(loc, scale).to_event(1), dist.Normal(loc, scale).to_event(1)
    torch.manual_seed(2)
    a = q.rsample((3,))
    torch.manual_seed(2)
    torch.testing.assert_close(a, ref.rsample((3,)), rtol=0, atol=1e-12)
    prior = dist.Normal(torch.zeros(6), 0.7).to_event(1)
    torch.testing.assert_close(kl_divergence(q, prior), kl_divergence(ref, prior), rtol=0, atol=1e-12)
    e = q.expand((4,))
    assert isinstance(e.base_dist, _GuideNormal) and e.rsample().shape == (4, 6)
