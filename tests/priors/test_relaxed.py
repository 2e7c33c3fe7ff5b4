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
        # strictly inside at every temperature: the samplers clamp coordinates to >= finfo.tiny
        assert (x > 0).all()
        assert torch.allclose(x.sum(-1), torch.ones(64, dtype=torch.float64), atol=1e-6, rtol=0)
    else:
        assert ((x > 0) & (x < 1)).all()


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
    # Measured (seed 0): GS .414 .666 .875 .978; Dir .528 .642 .784 .943;
    # relaxed Bernoulli .573 .764 .911 .984; Beta .681 .779 .879 .972. The steps are
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


# ----------------------------------------------------------------------------- low temperature

DTYPES = [torch.float32, torch.float64]
N_LOW = 4000


def _assert_matches_closed_form(lp, ref, scale):
    """float64: ``lp`` equals the closed form to 1e-6 relative (measured <= 2e-10). float32: to 32 units of
    float32 rounding of the summed terms, ``scale = 1 + sum |log x|`` (the log-density adds terms of that size;
    measured <= 3.5e-7 * scale, i.e. 3 units)."""
    assert torch.isfinite(lp).all()
    if lp.dtype == torch.float64:
        torch.testing.assert_close(lp, ref, rtol=1e-6, atol=0)
    else:
        err = (lp.double() - ref).abs()
        assert (err <= 32 * torch.finfo(torch.float32).eps * scale).all(), float((err / scale).max())


@pytest.mark.parametrize("dtype,lam", [(torch.float32, 1e-6), (torch.float64, 1e-6),
                                       (torch.float32, 1e-40), (torch.float64, 1e-310)])
def test_tempered_dirichlet_small_temperature_lands_on_vertex_k_with_probability_s_k(dtype, lam):
    # Dir(alpha), alpha = K lam s: as alpha -> 0 the draw is the vertex e_k with probability
    # alpha_k / sum(alpha) = s_k (correction O(alpha) ~ 1e-6). Over 4000 draws the argmax frequencies lie
    # within 4 binomial standard errors sqrt(s(1-s)/N) <= 0.0079 of s. Off the vertices: the share of draws
    # whose largest coordinate is below 1 - d is ~ K lam sum_k s_k(1-s_k) 2 log(1/d) = 1.7e-5 for d = 0.01,
    # i.e. 0.07 of 4000 expected; allow 3. Before the log-space sampler every Gamma variate underflowed and
    # 99.85% of the draws sat exactly at the barycentre at lam = 1e-6 (argmax frequencies 0.999, 0.0005,
    # 0.0008). lam = 1e-40 (float32) and 1e-310 (float64) are subnormal: every E/alpha overflows and the
    # sampler takes the vertex of the smallest one.
    s = torch.tensor([0.2, 0.3, 0.5], dtype=dtype)
    x = structure_prior("simplex_interior", s, lam, kind="dirichlet").sample((N_LOW,))
    assert x.dtype == dtype and torch.isfinite(x).all() and (x > 0).all()
    assert torch.allclose(x.sum(-1), torch.ones(N_LOW, dtype=dtype), atol=1e-6, rtol=0)
    freq = torch.bincount(x.argmax(-1), minlength=3).to(torch.float64) / N_LOW
    s64 = s.double()
    se = (s64 * (1 - s64) / N_LOW).sqrt()
    assert ((freq - s64).abs() <= 4 * se).all(), freq
    assert int(((x - 1 / 3).abs().amax(-1) < 1e-3).sum()) == 0  # nothing at the barycentre
    assert int((x.amax(-1) < 0.99).sum()) <= 3


@pytest.mark.parametrize("dtype,lam", [(torch.float32, 1e-6), (torch.float64, 1e-6),
                                       (torch.float32, 1e-40), (torch.float64, 1e-310)])
def test_tempered_beta_cube_small_temperature_lands_on_the_cube_vertices(dtype, lam):
    # Beta(2 lam s, 2 lam (1-s)) -> Bernoulli(s): P(gamma_k > 1/2) = s_k within 4 binomial standard errors
    # (<= 0.0079 at 4000 draws). P(d < gamma_k < 1 - d) ~ 2 lam s(1-s) 2 log(1/d): 0.03 of the 8000
    # coordinates expected for d = 0.01; allow 3. Before: 99.8% of the draws were exactly 1/2 at 1e-6.
    s = torch.tensor([0.7, 0.4], dtype=dtype)
    x = structure_prior("cube_interior", s, lam, kind="beta").sample((N_LOW,))
    assert x.dtype == dtype and ((x > 0) & (x < 1)).all()
    above = (x > 0.5).to(torch.float64).mean(0)
    s64 = s.double()
    assert ((above - s64).abs() <= 4 * (s64 * (1 - s64) / N_LOW).sqrt()).all(), above
    assert int((x == 0.5).sum()) == 0
    assert int(((x > 0.01) & (x < 0.99)).sum()) <= 3


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lam", [1e-3, 1e-6])
@pytest.mark.parametrize("restriction,kind,family", INTERIOR)
def test_rsample_gradients_stay_finite_at_small_temperature(restriction, kind, family, lam, dtype):
    s = (S3 if restriction.startswith("simplex") else S2).to(dtype).requires_grad_(True)
    x = structure_prior(restriction, s, lam, kind=kind).rsample((1000,))
    w = torch.arange(1, s.shape[-1] + 1, dtype=dtype)
    (g,) = torch.autograd.grad((x * w).sum(), s)
    assert torch.isfinite(g).all(), g


@pytest.mark.parametrize("lam", [0.3, 1.0])
@pytest.mark.parametrize("restriction,kind", [("simplex_interior", "dirichlet"), ("cube_interior", "beta")])
def test_dirichlet_and_beta_rsample_gradients_are_unbiased(restriction, kind, lam):
    # E[gamma] = s / sum(s) at every lam, so at sum(s) = 1 the exact gradient of E[w . gamma] is
    # w - (w . s) on the simplex and w on the cube. The pathwise gradient, averaged over 20 batches of 5000
    # draws, must lie within 5 standard errors of its batch mean (t with 19 df: P(|t| > 5) < 1e-4;
    # measured |t| <= 1.9); the standard errors are ~0.01, so this resolves a 5% bias.
    simplex = restriction.startswith("simplex")
    s0 = S3 if simplex else S2
    w = torch.tensor([1.0, 2.0, 4.0])[: s0.shape[-1]]
    exact = w - (w * s0).sum() if simplex else w
    grads = []
    for _ in range(20):
        s = s0.clone().requires_grad_(True)
        x = structure_prior(restriction, s, lam, kind=kind).rsample((5000,))
        grads.append(torch.autograd.grad((x * w).sum(-1).mean(), s)[0])
    g = torch.stack(grads)
    se = g.std(0) / math.sqrt(g.shape[0])
    assert (se < 0.05).all(), se
    assert ((g.mean(0) - exact).abs() <= 5 * se).all(), (g.mean(0), exact, se)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lam", [1e-3, 1e-2, 1e-1, 0.3, 5.0])
def test_gumbel_softmax_scores_its_own_samples_at_every_temperature(dtype, lam):
    # Before: a softmax that underflowed to exact zeros gave NaN log-densities (float64: 9 and 3608 of 4000
    # at lam = 1e-2 and 1e-3), and in float32 torch's sample (exp of an ExpRelaxedCategorical draw) missed
    # the simplex check's 1e-6 on the sum. Validation is on (conftest), so log_prob checks the samples.
    d = structure_prior("simplex_interior", S3.to(dtype), lam)
    for x in (d.sample((N_LOW,)), d.rsample((N_LOW,))):
        assert x.dtype == dtype and (x > 0).all()
        x64 = x.double()
        _assert_matches_closed_form(d.log_prob(x), concrete_log_density(x64, S3, lam), 1 + x64.log().abs().sum(-1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lam", [1e-6, 1e-3, 1e-2, 1e-1, 0.3, 5.0])
def test_relaxed_bernoulli_cube_scores_its_own_samples_at_every_temperature(dtype, lam):
    d = structure_prior("cube_interior", S2.to(dtype), lam)
    x = d.sample((N_LOW,))
    assert x.dtype == dtype and ((x > 0) & (x < 1)).all()
    x64 = x.double()
    scale = 1 + (x64.log().abs() + (-x64).log1p().abs()).sum(-1)
    _assert_matches_closed_form(d.log_prob(x), binary_concrete_log_density(x64, S2, lam), scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lam", [1e-6, 1e-3])
@pytest.mark.parametrize("restriction,kind", [("simplex_interior", "dirichlet"), ("cube_interior", "beta")])
def test_dirichlet_and_beta_score_their_own_samples_at_low_temperature(restriction, kind, lam, dtype):
    s = (S3 if restriction.startswith("simplex") else S2).to(dtype)
    d = structure_prior(restriction, s, lam, kind=kind)
    assert torch.isfinite(d.log_prob(d.sample((N_LOW,)))).all()


@pytest.mark.parametrize("dtype,lam", [(torch.float32, 1e-6), (torch.float64, 1e-6),
                                       (torch.float32, 1e-40), (torch.float64, 1e-310)])
def test_concrete_priors_keep_the_location_down_to_subnormal_temperatures(dtype, lam):
    # Gumbel-max: P(argmax GS = k) = s_k and P(relaxed Bernoulli_k > 1/2) = s_k at every lam; 4 binomial
    # standard errors (<= 0.0079 at 4000 draws). At a subnormal lam the perturbed logits divided by lam
    # overflowed to inf and the softmax gave NaN before they were shifted by their maximum.
    s3 = torch.tensor([0.2, 0.3, 0.5], dtype=dtype)
    d = structure_prior("simplex_interior", s3, lam)
    x = d.sample((N_LOW,))
    assert torch.isfinite(x).all() and (x > 0).all() and torch.isfinite(d.log_prob(x)).all()
    freq = torch.bincount(x.argmax(-1), minlength=3).to(torch.float64) / N_LOW
    s64 = s3.double()
    assert ((freq - s64).abs() <= 4 * (s64 * (1 - s64) / N_LOW).sqrt()).all(), freq
    c = structure_prior("cube_interior", S2.to(dtype), lam)
    y = c.sample((N_LOW,))
    assert ((y > 0) & (y < 1)).all() and torch.isfinite(c.log_prob(y)).all()
    above = (y > 0.5).to(torch.float64).mean(0)
    assert ((above - S2).abs() <= 4 * (S2 * (1 - S2) / N_LOW).sqrt()).all(), above


def test_float32_gumbel_softmax_draws_over_thousands_of_options_pass_its_own_simplex_check():
    # a float32 softmax over 5000 options sums to 1 only within ~2e-6 (13% of draws at lambda 0.5 failed the 1e-6
    # simplex check, so log_prob refused the prior's own draws); renormalised draws lie on it
    torch.manual_seed(0)
    s = torch.rand(5000, dtype=torch.float32) + 0.1
    d = GumbelSoftmax(s / s.sum(), 0.5, validate_args=True)
    draws = d.sample((200,))
    assert draws.dtype == torch.float32 and bool(d.support.check(draws).all())
    assert torch.isfinite(d.log_prob(draws)).all()


def test_unvalidated_integer_location_keeps_the_temperature():
    # validate_args=False skips checks, it must not change numbers: an int s cast 2.7 to 2 and 0.5 to 0
    from bayesstruct.priors import GumbelSoftmax, TemperedDirichlet

    for validate in (None, False):
        d = TemperedDirichlet(torch.tensor([1, 2, 3]), 0.5, validate_args=validate)
        assert d.concentration.tolist() == pytest.approx([0.25, 0.5, 0.75])  # K λ s
        assert float(GumbelSoftmax([1, 2, 3], 2.7, validate_args=validate).temperature) == pytest.approx(2.7)


@pytest.mark.parametrize("restriction, kind", [("simplex_interior", None), ("simplex_interior", "dirichlet"),
                                               ("cube_interior", None), ("cube_interior", "beta")])
def test_structure_prior_keeps_the_gradient_of_a_tensor_temperature(restriction, kind):
    from bayesstruct.priors import structure_prior

    lam = torch.tensor(0.7, requires_grad=True)
    prior = structure_prior(restriction, torch.tensor([0.2, 0.3, 0.5]), temperature=lam, kind=kind)
    (grad,) = torch.autograd.grad(prior.log_prob(torch.tensor([0.1, 0.3, 0.6])), lam)
    assert torch.isfinite(grad) and float(grad) != 0.0  # it was detached: requires_grad False
