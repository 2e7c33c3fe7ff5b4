"""Structure priors on the simplex and the cube: restriction sets, densities, moments,
the vertex limit of the temperature, and errors that name the argument.

All in float64 (conftest); the seed is fixed per test, so the statistical tolerances below
are checked once against a fixed draw -- each is still sized to the sampling error."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError
from bayesstruct.priors import (
    GumbelSoftmax,
    RelaxedBernoulliCube,
    Restriction,
    TemperedBetaCube,
    TemperedDirichlet,
    structure_prior,
)

S3 = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
S2 = torch.tensor([0.7, 0.4], dtype=torch.float64)
INTERIOR = [
    ("simplex_interior", "gumbel-softmax", GumbelSoftmax),
    ("simplex_interior", "dirichlet", TemperedDirichlet),
    ("cube_interior", "relaxed-bernoulli", RelaxedBernoulliCube),
    ("cube_interior", "beta", TemperedBetaCube),
]


# ----------------------------------------------------------------------------- property


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    weights=st.lists(st.floats(0.01, 1.0), min_size=2, max_size=6),
    temperature=st.floats(0.01, 10.0),
    restriction=st.sampled_from(list(Restriction)),
    kind_index=st.integers(0, 1),
)
def test_samples_lie_in_their_restriction_set(weights, temperature, restriction, kind_index):
    w = torch.tensor(weights, dtype=torch.float64)
    simplex = restriction.value.startswith("simplex")
    s = w if simplex else w.clamp(max=0.99)
    if restriction.value.endswith("vertices"):
        prior = structure_prior(restriction, s)
        kind = None
    else:
        kind = ["gumbel-softmax", "dirichlet"][kind_index] if simplex else ["relaxed-bernoulli", "beta"][kind_index]
        prior = structure_prior(restriction, s, temperature, kind=kind)
    x = prior.sample((64,))
    assert x.shape == (64, len(weights)) and x.dtype == torch.float64
    assert torch.isfinite(x).all()
    if restriction is Restriction.SIMPLEX_VERTICES:
        assert ((x == 0) | (x == 1)).all() and (x.sum(-1) == 1).all()
    elif restriction is Restriction.CUBE_VERTICES:
        assert ((x == 0) | (x == 1)).all()
    elif restriction is Restriction.SIMPLEX_INTERIOR:
        assert (x >= 0).all()
        assert torch.allclose(x.sum(-1), torch.ones(64, dtype=torch.float64), atol=1e-6, rtol=0)
        # Strictly inside where underflow to an exact 0 is impossible in float64: a Gamma(a)
        # draw is below 1e-308 with probability ~1e-308**a, a softmax coordinate underflows
        # only if a (log s + Gumbel) gap exceeds 745 * temperature.
        sn = s / s.sum()
        no_underflow = (kind == "dirichlet" and float((len(weights) * temperature * sn).min()) >= 0.1) or (
            kind == "gumbel-softmax" and temperature >= 0.5
        )
        if no_underflow:
            assert (x > 0).all()
    else:
        assert ((x >= 0) & (x <= 1)).all()


# ----------------------------------------------------------------------------- densities


def concrete_log_density(x, s, lam):
    """Jang et al. / Maddison et al.: (K-1)! lam^(K-1) prod_k [s_k x_k^(-lam-1) / sum_i s_i x_i^(-lam)]."""
    K = x.shape[-1]
    s = s / s.sum()
    log_norm = math.lgamma(K) + (K - 1) * math.log(lam)
    return (log_norm + (s.log() + (-lam - 1) * x.log()).sum(-1)
            - K * torch.logsumexp(s.log() - lam * x.log(), -1))


def binary_concrete_log_density(x, s, lam):
    """lam a x^(-lam-1) (1-x)^(-lam-1) / (a x^(-lam) + (1-x)^(-lam))^2, a = s/(1-s); summed over K."""
    a = s / (1 - s)
    num = math.log(lam) + a.log() + (-lam - 1) * (x.log() + (1 - x).log())
    den = 2 * torch.logaddexp(a.log() - lam * x.log(), -lam * (1 - x).log())
    return (num - den).sum(-1)


@pytest.mark.parametrize("lam", [0.3, 0.995, 5.0])
def test_gumbel_softmax_log_prob_is_the_concrete_density(lam):
    d = GumbelSoftmax(S3, lam)
    x = d.sample((200,))
    assert torch.allclose(d.log_prob(x), concrete_log_density(x, S3, lam), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("lam", [0.05, 0.995, 5.0])
def test_tempered_dirichlet_is_dirichlet_with_concentration_K_lambda_s(lam):
    d = structure_prior("simplex_interior", [5.0, 3.0, 2.0], lam, kind="dirichlet")  # weights normalised
    ref = torch.distributions.Dirichlet(3 * lam * S3)
    x = ref.sample((200,)).clamp(min=1e-300)
    x = x / x.sum(-1, keepdim=True)
    assert torch.allclose(d.concentration, 3 * lam * S3)
    assert torch.allclose(d.log_prob(x), ref.log_prob(x), rtol=1e-12)


@pytest.mark.parametrize("lam", [0.3, 0.995, 5.0])
def test_relaxed_bernoulli_cube_log_prob_is_the_binary_concrete_density(lam):
    d = RelaxedBernoulliCube(S2, lam)
    x = d.sample((200,))
    assert d.event_shape == (2,)
    assert torch.allclose(d.log_prob(x), binary_concrete_log_density(x, S2, lam), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("lam", [0.05, 0.995, 5.0])
def test_tempered_beta_cube_is_independent_beta(lam):
    d = TemperedBetaCube(S2, lam)
    x = d.sample((200,)).clamp(1e-300, 1 - 1e-16)
    ref = torch.distributions.Beta(2 * lam * S2, 2 * lam * (1 - S2))
    assert torch.allclose(d.log_prob(x), ref.log_prob(x).sum(-1), rtol=1e-12)


def test_vertex_priors_are_categorical_and_bernoulli():
    x = torch.eye(3)
    assert torch.allclose(structure_prior("simplex_vertices", S3).log_prob(x), S3.log())
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    lp = structure_prior(Restriction.CUBE_VERTICES, S2).log_prob(b)
    assert torch.allclose(lp, torch.tensor([math.log(0.7 * 0.6), math.log(0.3 * 0.4)]))


# ----------------------------------------------------------------------------- moments

N = 20000


@pytest.mark.parametrize("lam", [0.3, 1.0, 5.0])
def test_tempered_dirichlet_moments(lam):
    # Mean s, Var s(1-s)/(K lam + 1). With 20000 draws the relative standard error of a mean
    # is sd/(mean sqrt N) <= 0.9% here and of a variance ~sqrt((kurtosis - 1)/N) <= 2%, so
    # rtol 0.05 is >= 2.5 standard errors for every entry (fixed seed: checked once).
    x = TemperedDirichlet(S3, lam).sample((N,))
    var = S3 * (1 - S3) / (3 * lam + 1)
    assert torch.allclose(x.mean(0), S3, rtol=0.05)
    assert torch.allclose(x.var(0), var, rtol=0.05)


@pytest.mark.parametrize("lam", [0.3, 1.0, 5.0])
def test_tempered_beta_cube_moments(lam):
    x = TemperedBetaCube(S2, lam).sample((N,))
    assert torch.allclose(x.mean(0), S2, rtol=0.05)
    assert torch.allclose(x.var(0), S2 * (1 - S2) / (2 * lam + 1), rtol=0.05)


@pytest.mark.parametrize("lam", [0.05, 1.0, 5.0])
def test_argmax_of_relaxed_samples_keeps_the_location_at_every_temperature(lam):
    # Gumbel-max: P(argmax GS = k) = s_k and P(relaxed Bernoulli > 1/2) = s, whatever lam.
    # Binomial standard error sqrt(s(1-s)/N) <= 0.0036; atol 0.015 is > 4 of them.
    k = GumbelSoftmax(S3, lam).sample((N,)).argmax(-1)
    freq = torch.bincount(k, minlength=3).to(torch.float64) / N
    assert torch.allclose(freq, S3, atol=0.015)
    above = (RelaxedBernoulliCube(S2, lam).sample((N,)) > 0.5).to(torch.float64).mean(0)
    assert torch.allclose(above, S2, atol=0.015)


# ----------------------------------------------------------------------------- vertex limit

TEMPERATURES = [5.0, 0.995, 0.3, 0.05]


def _vertex_closeness(x, simplex):
    """Mean max-coordinate on the simplex; mean of max(x, 1-x) over coordinates on the cube."""
    return float(x.max(-1).values.mean()) if simplex else float(torch.maximum(x, 1 - x).mean())


@pytest.mark.parametrize("restriction,kind,family", INTERIOR)
def test_small_temperature_concentrates_on_the_vertices(restriction, kind, family):
    simplex = restriction.startswith("simplex")
    s = S3 if simplex else S2
    closeness = [_vertex_closeness(structure_prior(restriction, s, lam, kind=kind).sample((N,)), simplex)
                 for lam in TEMPERATURES]
    # Measured (seed 0): GS .414 .666 .875 .978; Dir .527 .645 .787 .943;
    # relaxed Bernoulli .573 .764 .911 .984; Beta .681 .778 .880 .972. The steps are
    # >= 0.06, standard errors <= 0.003: strict monotonicity is robust.
    assert all(a < b for a, b in zip(closeness, closeness[1:])), closeness
    lam = TEMPERATURES[-1]
    if kind == "dirichlet":
        # max_k x_k >= sum_k x_k^2, so E max >= sum_k [s_k(1-s_k)/(K lam+1) + s_k^2] = 0.919
        # for s = (.5,.3,.2), lam = .05 (measured 0.943); allow 3 standard errors (0.002 each).
        bound = float((S3 * (1 - S3) / (3 * lam + 1) + S3**2).sum())
        assert closeness[-1] > bound - 0.006
        assert closeness[-1] > 0.93
    elif kind == "beta":
        # max(x, 1-x) >= x^2 + (1-x)^2, so E >= 1 - 2 s(1-s) 2lam/(2lam+1), averaged: 0.959.
        bound = float((1 - 2 * S2 * (1 - S2) * 2 * lam / (2 * lam + 1)).mean())
        assert closeness[-1] > bound - 0.006
        assert closeness[-1] > 0.95
    else:
        # No closed form; measured 0.978 / 0.984 with standard error < 0.001.
        assert closeness[-1] > 0.95


# ----------------------------------------------------------------------------- Pyro use


@pytest.mark.parametrize("restriction,kind,family", INTERIOR)
def test_interior_priors_are_reparameterised_pyro_sites_that_broadcast(restriction, kind, family):
    s = (S3 if restriction.startswith("simplex") else S2).clone().requires_grad_(True)
    prior = structure_prior(restriction, s, 0.5, kind=kind)
    assert isinstance(prior, family) and prior.has_rsample

    def model():
        with pyro.plate("edges", 4):
            return pyro.sample("gamma", prior)

    trace = pyro.poutine.trace(model).get_trace()
    trace.compute_log_prob()
    site = trace.nodes["gamma"]
    assert site["value"].shape == (4, s.shape[-1]) and site["log_prob"].shape == (4,)
    site["value"].sum().backward()  # gradient flows to s through rsample
    assert s.grad is not None and torch.isfinite(s.grad).all()
    batched = structure_prior(restriction, s.detach().expand(5, -1), 0.5, kind=kind)
    assert batched.batch_shape == (5,) and batched.expand((2, 5)).batch_shape == (2, 5)


def test_vertex_priors_work_as_pyro_sites():
    def model():
        with pyro.plate("edges", 4):
            a = pyro.sample("a", structure_prior("simplex_vertices", S3))
            b = pyro.sample("b", structure_prior("cube_vertices", S2))
        return a, b

    a, b = model()
    assert a.shape == (4, 3) and b.shape == (4, 2)


def test_float32_location_keeps_its_dtype():
    x = structure_prior("simplex_interior", S3.float(), 0.5, kind="dirichlet").rsample((3,))
    assert x.dtype == torch.float32


# ----------------------------------------------------------------------------- errors


def test_unknown_restriction_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="simplex_vertices.*cube_interior"):
        structure_prior("hypercube", S2, 0.5)
    assert isinstance(structure_prior("Simplex-Interior", S3, 0.5), GumbelSoftmax)


def test_unknown_kind_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="`kind`.*'dirichlet'"):
        structure_prior("simplex_interior", S3, 0.5, kind="beta-binomial")


@pytest.mark.parametrize(
    "restriction,s,temperature,kwargs,match",
    [
        ("simplex_interior", [0.5, 0.5], None, {}, "`temperature`"),
        ("simplex_interior", [0.5, 0.5], 0.0, {}, "`temperature`"),
        ("cube_interior", [0.5, 0.5], -1.0, {}, "`temperature`"),
        ("cube_interior", [0.5, 0.5], float("nan"), {}, "`temperature`"),
        ("simplex_interior", [0.5, 0.5], [0.1, 0.2], {}, "`temperature`"),
        ("simplex_vertices", [0.5, 0.5], 0.3, {}, "`temperature`"),
        ("cube_vertices", [0.5, 0.5], None, {"kind": "beta"}, "`kind`"),
        ("simplex_interior", [0.5, 0.0, 0.5], 0.3, {}, "`s`"),
        ("simplex_interior", [1.0], 0.3, {}, "`s`"),
        ("simplex_vertices", [-0.5, 1.5], None, {}, "`s`"),
        ("simplex_interior", [0.5, float("inf")], 0.3, {}, "`s`"),
        ("cube_interior", [0.5, 1.0], 0.3, {}, "`s`"),
        ("cube_vertices", [0.5, 1.2], None, {}, "`s`"),
        ("cube_interior", 0.5, 0.3, {}, "`s`"),
        ("cube_interior", "abc", 0.3, {}, "`s`"),
    ],
)
def test_bad_arguments_raise_errors_naming_them(restriction, s, temperature, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        structure_prior(restriction, s, temperature, **kwargs)


def test_positive_weights_are_normalised_on_the_simplex():
    d = structure_prior("simplex_vertices", [2.0, 6.0])
    assert torch.allclose(d.probs, torch.tensor([0.25, 0.75]))
    assert isinstance(d, dist.OneHotCategorical)


# ----------------------------------------------------------------------------- closed form vs Pyro


@pytest.mark.parametrize("K", [2, 3, 6])
@pytest.mark.parametrize("lam", [0.1, 0.7, 4.0])
def test_gumbel_softmax_closed_form_matches_pyros_relaxed_one_hot_categorical(K, lam):
    # GumbelSoftmax.log_prob is the Concrete density in closed form; Pyro's RelaxedOneHotCategorical
    # (ExpRelaxedCategorical + ExpTransform with its log-Jacobian) is the reference: equal to float64
    # rounding (1e-10 on log-densities of size ~10) for batched locations, a sample shape on top,
    # a broadcast value, and a temperature given as a tensor that carries a gradient.
    gen = torch.Generator().manual_seed(K)
    s = torch.rand(4, K, generator=gen, dtype=torch.float64) + 0.05
    x = torch.distributions.Dirichlet(torch.full((K,), 0.7, dtype=torch.float64)).sample((3, 4))
    for temperature in (lam, torch.tensor(lam, dtype=torch.float64, requires_grad=True)):
        d = GumbelSoftmax(s, temperature)
        ref = dist.RelaxedOneHotCategorical(torch.as_tensor(lam, dtype=torch.float64), probs=s / s.sum(-1, keepdim=True))
        lp = d.log_prob(x)
        assert lp.shape == (3, 4) and d.batch_shape == (4,) and d.event_shape == (K,)
        torch.testing.assert_close(lp, ref.log_prob(x), rtol=0, atol=1e-10)
        torch.testing.assert_close(d.log_prob(x[0, 0]), ref.log_prob(x[0, 0]), rtol=0, atol=1e-10)  # broadcast
        e = d.expand((2, 4))
        assert isinstance(e, GumbelSoftmax) and e.batch_shape == (2, 4)
        torch.testing.assert_close(e.log_prob(x[:2]), ref.log_prob(x[:2]), rtol=0, atol=1e-10)
    lam_t = torch.tensor(lam, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(GumbelSoftmax(s, lam_t).log_prob(x).sum(), lam_t)
    lam_r = torch.tensor(lam, dtype=torch.float64, requires_grad=True)
    (g_ref,) = torch.autograd.grad(dist.RelaxedOneHotCategorical(lam_r, probs=s / s.sum(-1, keepdim=True))
                                   .log_prob(x).sum(), lam_r)
    torch.testing.assert_close(g, g_ref, rtol=1e-9, atol=1e-9)


def test_gumbel_softmax_rsample_draws_pyros_samples_with_their_gradient():
    # The cheap rsample (softmax of the Gumbel-perturbed logits over the temperature) takes the same
    # uniforms from the same generator as Pyro's, so with one seed the draws agree to rounding, and so do
    # their reparameterised gradients with respect to the location.
    s = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]], dtype=torch.float64, requires_grad=True)
    d = GumbelSoftmax(s, 0.4)
    ref = dist.RelaxedOneHotCategorical(torch.tensor(0.4, dtype=torch.float64), probs=s / s.sum(-1, keepdim=True))
    torch.manual_seed(3)
    a = d.rsample((5,))
    torch.manual_seed(3)
    b = ref.rsample((5,))
    assert a.shape == (5, 2, 3)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    w = torch.arange(3, dtype=torch.float64)
    (ga,) = torch.autograd.grad((a * w).sum(), s)
    (gb,) = torch.autograd.grad((b * w).sum(), s)
    torch.testing.assert_close(ga, gb, rtol=1e-9, atol=1e-12)


def test_gumbel_softmax_validates_the_value_it_scores():
    # conftest enables validation: a point off the simplex is rejected, not scored
    d = GumbelSoftmax(S3, 0.5)
    with pytest.raises(ValueError):
        d.log_prob(torch.tensor([0.5, 0.6, 0.2], dtype=torch.float64))
