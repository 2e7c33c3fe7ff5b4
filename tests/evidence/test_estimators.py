"""Every estimator against analytic references: a tolerance table, not a smoke test.

References
----------
* Polynomial family, known noise (``hyper="fixed"``): PRML eq. 3.86 via ``method="exact"``
  (itself checked against the marginal Gaussian of y in test_exact.py).
* Polynomial family, unknown noise (``hyper="normal-gamma"``): the multivariate
  Student-t marginal, again via ``method="exact"``.
* A user's own Beta-Bernoulli model: ``log B(a+k, b+n-k) - log B(a, b)``.

All estimators run with their default options and fixed seeds, so each number below is
deterministic; the tolerances are sized from what each method can achieve (comments).
"""

import functools
import json
import math
import warnings

import pyro
import pyro.distributions as dist
import pytest
import torch

from bayesstruct.datasets import sinusoid
from bayesstruct.evidence import ELBO, SMC, EvidenceEstimator, EvidenceResult, get_estimator, log_evidence
from bayesstruct.evidence import base as evidence_base
from bayesstruct.evidence import register_estimator
from bayesstruct.exceptions import ApproximationWarning, EstimatorNotApplicableError, InvalidArgumentError, UnknownNameError
from bayesstruct.families import PolynomialFamily
from bayesstruct.families.polynomial import polynomial_model

X, Y = sinusoid(n=20, noise=0.3, seed=0)
FIXED_DEGREES = [0, 3, 9]
NG_DEGREES = [1, 3]


@functools.lru_cache(maxsize=None)
def estimate(hyper: str, degree: int, method: str, **options) -> EvidenceResult:
    """One deterministic estimate (estimators seed themselves), cached across tests."""
    family = PolynomialFamily(range(10), hyper=hyper)
    return family.log_evidence(X, Y, {"degree": degree}, method=get_estimator(method, **options))


def exact(hyper: str, degree: int) -> float:
    return estimate(hyper, degree, "exact").log_evidence


# --------------------------------------------------------------------------- known noise
@pytest.mark.parametrize("degree", FIXED_DEGREES)
def test_laplace_is_exact_for_gaussian_posterior(degree):
    # the log joint is quadratic in w, so Laplace's method is exact; 1e-6 allows for the
    # Newton stopping rule (decrement < 1e-9) and the conditioning of the raw power basis at degree 9
    assert estimate("fixed", degree, "laplace").log_evidence == pytest.approx(exact("fixed", degree), abs=1e-6)


@pytest.mark.parametrize("degree", FIXED_DEGREES)
def test_full_rank_elbo_is_tight_for_gaussian_posterior(degree):
    # the posterior is Gaussian and in the full-rank family, so KL(q || p) -> 0 and the ELBO
    # reaches the evidence up to Monte Carlo error (stderr ~1e-9 here); 0.05 nats is 1/20 of the
    # resolution at which model comparisons are read (|Δ log Z| ~ 1)
    r = estimate("fixed", degree, "elbo")
    ref = exact("fixed", degree)
    assert r.log_evidence == pytest.approx(ref, abs=0.05)
    assert r.log_evidence <= ref + 3 * r.stderr + 1e-9  # a lower bound, up to its Monte Carlo error


@pytest.mark.parametrize("degree", FIXED_DEGREES)
def test_iwae_matches_exact(degree):
    # 16384 importance samples from a Student-t (df 10) around the fitted guide, which is the
    # exact posterior here: stderr ~0.001-0.003 nats; 0.05 nats is > 10 standard errors
    r = estimate("fixed", degree, "iwae")
    assert r.log_evidence == pytest.approx(exact("fixed", degree), abs=0.05)
    assert r.diagnostics["pareto_k"] < 0.7


@pytest.mark.parametrize("degree", FIXED_DEGREES)
def test_smc_matches_exact(degree):
    # default SMC (4096 particles, 8 islands, Student-t reference around the fitted guide)
    # reports stderr <= 0.01 nats here and measured errors <= 0.02; 0.1 nats is the goal
    r = estimate("fixed", degree, "smc")
    assert r.log_evidence == pytest.approx(exact("fixed", degree), abs=0.1)
    assert r.stderr is not None and 0 < r.stderr < 0.15


@pytest.mark.parametrize("degree", FIXED_DEGREES)
def test_smc_from_the_prior_matches_exact(degree):
    # tempering all the way from the prior (posterior ~10^3-10^6 times narrower at degree 9)
    # is the harder path: stderr ~0.04-0.08 nats; 0.3 nats is ~3.5 standard errors
    r = estimate("fixed", degree, "smc", reference="prior")
    assert r.log_evidence == pytest.approx(exact("fixed", degree), abs=0.3)


@pytest.mark.parametrize("degree", [3, 9])
def test_mean_field_elbo_has_a_gap_for_correlated_posterior(degree):
    # the raw power basis makes the posterior over w strongly correlated; a diagonal Gaussian
    # cannot represent it, so the bound stays well below the evidence (several nats)
    r = estimate("fixed", degree, "elbo", guide="mean_field")
    assert r.log_evidence < exact("fixed", degree) - 3 * r.stderr - 0.5


def test_mean_field_equals_full_rank_in_one_dimension():
    # degree 0 has one weight: mean field and full rank are the same family
    r = estimate("fixed", 0, "elbo", guide="mean_field")
    assert r.log_evidence == pytest.approx(exact("fixed", 0), abs=1e-6)


# ------------------------------------------------------------------------- unknown noise
@pytest.mark.parametrize("degree", NG_DEGREES)
def test_iwae_matches_student_t_evidence(degree):
    # the posterior over (log tau, w) is not Gaussian (log-gamma skew in log tau), but a heavy-
    # tailed proposal around the fitted guide with 16384 samples has stderr ~0.003 nats;
    # 0.1 nats leaves room for the skew the proposal does not capture
    r = estimate("normal-gamma", degree, "iwae")
    assert r.log_evidence == pytest.approx(exact("normal-gamma", degree), abs=0.1)
    assert r.diagnostics["pareto_k"] < 0.7


@pytest.mark.parametrize("degree", NG_DEGREES)
def test_elbo_is_a_lower_bound_with_small_gap(degree):
    # the ELBO's gap is KL(q || posterior) > 0 for a non-Gaussian posterior (~0.05-0.1 nats here);
    # 0.5 nats bounds how loose a Gaussian guide may be on a 2-5 dimensional posterior
    r = estimate("normal-gamma", degree, "elbo")
    ref = exact("normal-gamma", degree)
    assert ref - 0.5 < r.log_evidence < ref


@pytest.mark.parametrize("degree", NG_DEGREES)
def test_smc_matches_student_t_evidence(degree):
    # stderr ~0.003-0.01 nats with the defaults, ~0.04-0.08 from the prior; 0.2 nats is
    # ~3 standard errors of the prior path, which the default must not be worse than
    assert estimate("normal-gamma", degree, "smc").log_evidence == pytest.approx(exact("normal-gamma", degree), abs=0.2)
    r = estimate("normal-gamma", degree, "smc", reference="prior")
    assert r.log_evidence == pytest.approx(exact("normal-gamma", degree), abs=0.3)


# ------------------------------------------------------------------------ reproducibility
def _fixed_model_and_args():
    family = PolynomialFamily(range(10))
    return family.bind({"degree": 3}), (X, Y)


@pytest.mark.parametrize("estimator_cls", [SMC, ELBO])
def test_same_seed_gives_identical_value(estimator_cls):
    model, args = _fixed_model_and_args()
    first = estimator_cls(seed=7)(model, *args).log_evidence
    torch.rand(100)  # disturb the global RNG: the estimator must not depend on it
    pyro.set_rng_seed(123)
    second = estimator_cls(seed=7)(model, *args).log_evidence
    assert first == second


def test_different_seed_gives_different_smc_value():
    model, args = _fixed_model_and_args()
    a = SMC(seed=1)(model, *args)
    b = SMC(seed=2)(model, *args)
    assert a.log_evidence != b.log_evidence
    # ... but both are estimates of the same number
    assert abs(a.log_evidence - b.log_evidence) < 4 * math.hypot(a.stderr, b.stderr)


# ------------------------------------------------------------------------------ registry
def test_unknown_method_lists_registered_ones():
    with pytest.raises(UnknownNameError) as info:
        get_estimator("nope")
    message = str(info.value)
    assert "'nope'" in message and "exact" in message and "smc" in message
    assert isinstance(info.value, KeyError)


def test_bad_option_names_the_method():
    with pytest.raises(InvalidArgumentError, match="smc"):
        get_estimator("smc", no_such_option=1)


@pytest.fixture
def private_registry(monkeypatch):
    """Register test estimators into a copy so the global registry is left as it was."""
    monkeypatch.setattr(evidence_base._REGISTRY, "_classes", dict(evidence_base._REGISTRY._classes))


def _normal_mean_model(y):
    mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def test_registered_estimator_is_usable_by_name(private_registry):
    @register_estimator("constant-test")
    class Constant(EvidenceEstimator):
        def __init__(self, *, value: float = -1.5, seed: int = 0):
            super().__init__(seed=seed)
            self.value = value

        def estimate(self, model, args, kwargs):
            return {"log_evidence": self.value, "diagnostics": {"nargs": len(args)}}

    r = log_evidence(_normal_mean_model, torch.zeros(3), method="constant-test")
    assert r.method == "constant-test"
    assert r.log_evidence == -1.5
    assert r.diagnostics == {"nargs": 1}
    assert get_estimator("constant-test", value=2.0).value == 2.0
    assert "constant-test" in evidence_base.list_estimators()


def test_registered_name_with_capitals_is_usable(private_registry):
    @register_estimator("MyMethod")
    class Constant(EvidenceEstimator):
        def estimate(self, model, args, kwargs):
            return {"log_evidence": 0.0}

    assert log_evidence(_normal_mean_model, torch.zeros(3), method="MyMethod").log_evidence == 0.0


@pytest.mark.parametrize(
    "method",
    [
        "exact",
        "laplace",
        "elbo",
        "iwae",
        "smc",
        SMC(reference="prior"),
    ],
    ids=["exact", "laplace", "elbo", "iwae", "smc", "smc-prior"],
)
def test_a_model_without_latents_has_its_likelihood_as_evidence(method):
    # p(D) = p(D | no parameters): every estimator returns the closed-form likelihood, exactly,
    # so such a structure (a network whose only edge is `zero`) can be compared with the others
    def likelihood_only(y):
        with pyro.plate("data", len(y)):
            pyro.sample("y", dist.Normal(0.5, 2.0), obs=y)

    y = torch.tensor([0.0, 1.0, -3.0])
    result = log_evidence(likelihood_only, y, method=method)
    expected = sum(-0.5 * ((v - 0.5) / 2.0) ** 2 - math.log(2.0) - 0.5 * math.log(2 * math.pi) for v in y.tolist())
    assert result.log_evidence == pytest.approx(expected, abs=1e-12)
    assert result.stderr is None and result.diagnostics == {"no_latent_variables": True}
    assert result.samples == {} and result.pointwise_log_likelihood["y"].shape == (1, 1, 3)


def test_compare_ranks_a_structure_without_latents():
    from bayesstruct import compare
    from bayesstruct.families import NetworkFamily
    from bayesstruct.nn import StructureGraph

    X = torch.randn(40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = X @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    graph = StructureGraph(2, {(0, 1): ["linear", "zero"]}, input_shape=(3,), vertex_shapes={1: (1,)})
    table = compare(NetworkFamily(graph, task="regression", noise_scale=0.5, weight_precision=2.0), X, y,
                    methods="laplace,smc", workers=1, progress=False)
    zero = table.row({"edge_0_1": "zero"})
    expected = float(torch.distributions.Normal(0.0, 0.5).log_prob(y).sum())
    assert zero.log_evidence("laplace") == pytest.approx(expected, abs=1e-9)
    assert zero.log_evidence("smc") == pytest.approx(expected, abs=1e-9)
    assert table.best == {"edge_0_1": "linear"}


# -------------------------------------------------------------- a user's own Pyro model
BB_A, BB_B = 2.0, 3.0
BB_Y = torch.tensor([1.0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1, 1])


def beta_bernoulli(y):
    p = pyro.sample("p", dist.Beta(BB_A, BB_B))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Bernoulli(p), obs=y)


def _log_beta(a, b):
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


BB_EXACT = _log_beta(BB_A + float(BB_Y.sum()), BB_B + len(BB_Y) - float(BB_Y.sum())) - _log_beta(BB_A, BB_B)


@pytest.mark.parametrize(
    "method,tol",
    [
        # consistent estimator; stderr ~0.002 nats with the defaults
        ("smc", 0.1),
        # ... and ~0.015 nats when tempering from the prior
        (SMC(reference="prior"), 0.1),
        # Student-t proposal in logit space, 16384 samples; stderr ~0.001 nats
        ("iwae", 0.1),
        # Laplace in logit space is only approximate: the posterior of logit(p) is a skewed
        # log-Beta density, not a Gaussian (observed error ~0.02 nats for n=12)
        ("laplace", 0.5),
    ],
    ids=["smc", "smc-prior", "iwae", "laplace"],
)
def test_beta_bernoulli_evidence(method, tol):
    r = log_evidence(beta_bernoulli, BB_Y, method=method)
    assert r.log_evidence == pytest.approx(BB_EXACT, abs=tol)
    # the result carries posterior draws in (chain, draw, ...) and a pointwise log-likelihood (chain, draw, N)
    assert r.samples["p"].dim() == 2 and ((r.samples["p"] > 0) & (r.samples["p"] < 1)).all()
    assert r.pointwise_log_likelihood["y"].shape == r.samples["p"].shape + (len(BB_Y),)
    if r.method == "iwae":
        assert r.diagnostics["pareto_k"] < 0.7  # the heavy-tailed proposal bounds the weights


# --------------------------------------------------------------------------- the result
def test_result_mdl_bits_and_json():
    r = estimate("fixed", 3, "smc")
    assert r.mdl_bits == pytest.approx(-r.log_evidence / math.log(2), rel=1e-15)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["method"] == "smc"
    assert d["log_evidence"] == r.log_evidence
    assert d["mdl_bits"] == pytest.approx(r.mdl_bits)
    assert d["stderr"] == r.stderr
    assert json.loads(r.to_json()) == d


@pytest.mark.parametrize("method", ["exact", "laplace", "elbo", "iwae"])
def test_every_method_result_is_json_serialisable(method):
    r = estimate("fixed", 3, method)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["method"] == method
    assert d["mdl_bits"] == pytest.approx(-r.log_evidence / math.log(2))


# ---------------------------------------------------------------------------
# hyper="prior": alpha ~ Gamma(1, 1), beta ~ Gamma(2, 0.2) integrated with the weights.
# No closed form; the reference is 2-D quadrature over (log alpha, log beta) of the exact
# conditional evidence p(D | alpha, beta) (PRML eq. 3.86) times the priors.


def _prior_mode_quadrature(x, y, degree, n=1200):
    from bayesstruct.families.polynomial import polynomial_design

    phi = polynomial_design(x, degree)
    lam, V = torch.linalg.eigh(phi.T @ phi)
    c = V.T @ (phi.T @ y)
    N, M = phi.shape
    la, lb = torch.linspace(-30.0, 10.0, n), torch.linspace(-8.0, 10.0, n)
    a = la.exp()[:, None, None]
    b = lb.exp()[None, :, None]
    denom = a + b * lam
    m = b * c / denom
    resid = y @ y - 2 * (m * c).sum(-1) + (lam * m * m).sum(-1)
    a, b = a[..., 0], b[..., 0]
    log_ev = (0.5 * M * a.log() + 0.5 * N * b.log() - 0.5 * b * resid - 0.5 * a * (m * m).sum(-1)
              - 0.5 * denom.log().sum(-1) - 0.5 * N * math.log(2 * math.pi))
    gamma = torch.distributions.Gamma
    log_prior = (gamma(1.0, 1.0).log_prob(la.exp()) + la)[:, None] + (gamma(2.0, 0.2).log_prob(lb.exp()) + lb)[None, :]
    cell = math.log(float(la[1] - la[0])) + math.log(float(lb[1] - lb[0]))
    return float(torch.logsumexp((log_ev + log_prior).reshape(-1), 0)) + cell


def test_quadrature_reference_is_converged():
    # the reference itself: halving the grid spacing changes it by < 1e-4 nats
    assert abs(_prior_mode_quadrature(X, Y, 3, n=600) - _prior_mode_quadrature(X, Y, 3, n=1200)) < 1e-4


@pytest.mark.parametrize("degree", [0, 3, 9])
def test_exact_gamma_precisions_matches_independent_quadrature(degree):
    # the package's GammaPrecisions grid vs this file's own grid (other ranges and spacing)
    exact_value = PolynomialFamily([degree], hyper="prior").log_evidence(X, Y, {"degree": degree}, method="exact")
    assert exact_value.log_evidence == pytest.approx(_prior_mode_quadrature(X, Y, degree), abs=2e-4)


@pytest.mark.parametrize("degree", [1, 4])
def test_prior_hyperparameters_against_quadrature(degree):
    truth = _prior_mode_quadrature(X, Y, degree)
    family = PolynomialFamily([degree], hyper="prior")
    smc = family.log_evidence(X, Y, {"degree": degree}, method=SMC(seed=0))
    iwae = family.log_evidence(X, Y, {"degree": degree}, method="iwae")
    # 0.1 nats: the accuracy goal for the sampling estimators; measured ~0.03
    assert abs(smc.log_evidence - truth) < 0.1
    assert abs(iwae.log_evidence - truth) < 0.1
    # the ELBO is a lower bound (3 standard errors of slack for its Monte Carlo estimate)
    elbo = family.log_evidence(X, Y, {"degree": degree}, method="elbo")
    assert elbo.log_evidence < truth + 3 * elbo.stderr


@pytest.mark.xfail(strict=True, reason="known limitation: at degree 3 the joint MAP and the fitted guide sit in the "
                   "'noise' region (alpha ~ 2, beta ~ 2.5) of a funnel-shaped posterior while most of the mass lies "
                   "at alpha ~ 0.003, beta ~ 15; no move bridges the two, so smc is ~2.7 nats low (see BENCHMARKS.md)")
def test_prior_hyperparameters_degree_3_funnel():
    truth = _prior_mode_quadrature(X, Y, 3)
    smc = PolynomialFamily([3], hyper="prior").log_evidence(X, Y, {"degree": 3}, method=SMC(seed=0))
    assert abs(smc.log_evidence - truth) < 0.1


def _ridge_model(y):
    # y_i ~ N(a + b^2, 0.3): a curved ridge a = 1 - b^2 with two maxima at b ~ +-0.7
    a = pyro.sample("a", dist.Normal(torch.tensor(0.0, dtype=torch.float64), 2.0))
    b = pyro.sample("b", dist.Normal(torch.tensor(0.0, dtype=torch.float64), 2.0))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(a + b**2, 0.3), obs=y)


def _ridge_grid_evidence(y, n=1601):
    # 2-D quadrature on a grid holding all the mass (a in [-12, 4], b in [-4, 4]; the edges carry < e^-20)
    a, b = torch.linspace(-12.0, 4.0, n, dtype=torch.float64), torch.linspace(-4.0, 4.0, n, dtype=torch.float64)
    m = a[:, None] + b[None, :] ** 2
    prior = dist.Normal(0.0, 2.0)
    loglik = -0.5 * ((y**2).sum() - 2 * m * y.sum() + len(y) * m**2) / 0.09 - len(y) * math.log(0.3 * math.sqrt(2 * math.pi))
    joint = prior.log_prob(a)[:, None] + prior.log_prob(b)[None, :] + loglik
    return float(torch.logsumexp(joint.reshape(-1), 0)) + math.log(float(a[1] - a[0])) + math.log(float(b[1] - b[0]))


def test_smc_warns_when_its_fitted_reference_misses_posterior_mass_and_the_prior_reference_does_not():
    g = torch.Generator().manual_seed(2)
    y = 1.0 + 0.3 * torch.randn(30, generator=g, dtype=torch.float64)
    truth = _ridge_grid_evidence(y)
    assert abs(truth - _ridge_grid_evidence(y, n=801)) < 1e-3  # the grid is converged
    with pytest.warns(ApproximationWarning, match="reference misses part of the posterior"):
        fitted = get_estimator("smc", seed=0)(_ridge_model, y)
    assert fitted.diagnostics["reference_pareto_k"] > 0.7
    # the guide-started run is ~1 nat low with a stderr of ~0.04 (audited over 10 seeds): the warning is what tells
    assert truth - fitted.log_evidence > 10 * fitted.stderr
    prior = get_estimator("smc", reference="prior", seed=0)(_ridge_model, y)
    assert prior.diagnostics["reference_pareto_k"] is None and prior.diagnostics["stderr_dof"] == 7
    assert abs(prior.log_evidence - truth) < max(0.1, 4 * prior.stderr)


def test_smc_that_runs_out_of_temperatures_raises_instead_of_returning_a_partial_normaliser():
    # three steps from the prior reach beta ~ 4e-4 on this model: the product of the weights so far is
    # ~10 nats above the evidence, no estimate of it
    with pytest.raises(EstimatorNotApplicableError, match=r"max_temperatures`=3.*beta="):
        estimate("fixed", 2, "smc", reference="prior", max_temperatures=3)


def test_laplace_warns_on_an_ill_conditioned_hessian_where_exact_refuses():
    # raw power basis on x in [0, 10]: at degree 11 the exact route refuses (cond * eps > 1e-2) and Laplace's
    # estimate is off by ~0.02 nats against an 80-digit reference (audited); it must say so
    g = torch.Generator().manual_seed(0)
    x = torch.linspace(0.0, 10.0, 25, dtype=torch.float64)
    y = torch.sin(x) + 0.3 * torch.randn(25, generator=g, dtype=torch.float64)
    with pytest.raises(EstimatorNotApplicableError, match="ill-conditioned"):
        get_estimator("exact")(lambda x, y: polynomial_model(x, y, degree=11, hyper="fixed"), x, y)
    with pytest.warns(ApproximationWarning, match="laplace: the Hessian at the mode is ill-conditioned"):
        bad = get_estimator("laplace")(lambda x, y: polynomial_model(x, y, degree=11, hyper="fixed"), x, y)
    assert bad.diagnostics["hessian_condition"] * torch.finfo(torch.float64).eps > 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("error", ApproximationWarning)
        good = get_estimator("laplace")(lambda x, y: polynomial_model(x, y, degree=3, hyper="fixed"), x / 10, y)
    assert good.diagnostics["hessian_condition"] * torch.finfo(torch.float64).eps < 1e-6


def _mirror_model(y):
    # y_i ~ N(theta^2, 0.5): modes at theta ~ +-2, a saddle at theta = 0 where the gradient vanishes
    theta = pyro.sample("theta", dist.Normal(torch.tensor(0.0, dtype=torch.float64), 3.0))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(theta**2, 0.5), obs=y)


def test_laplace_leaves_a_saddle_and_does_not_depend_on_the_seed():
    from bayesstruct.evidence import ModelDensity
    from bayesstruct.evidence.laplace import laplace_fit

    g = torch.Generator().manual_seed(1)
    y = 4.0 + 0.5 * torch.randn(20, generator=g, dtype=torch.float64)
    density = ModelDensity(_mirror_model, y)
    # started exactly at the saddle, Newton used to stop there and call the posterior improper
    fit = laplace_fit(density, init=torch.zeros(1, dtype=torch.float64))
    assert fit.converged and abs(abs(float(fit.z_map[0])) - 2.0) < 0.1
    assert float(fit.hessian[0, 0]) > 0
    # the start is the prior median under a private seed: the same estimate for every estimator seed
    values = {get_estimator("laplace", seed=s)(_mirror_model, y).log_evidence for s in range(4)}
    assert len(values) == 1
