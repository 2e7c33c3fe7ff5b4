"""The polynomial family and the structure-family machinery."""

import math
import pickle

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bayesstruct.datasets import sinusoid
from bayesstruct.evidence import LinearGaussian, log_evidence
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.families import PolynomialFamily, StructureFamily, fit_type2_ml, polynomial_design, structure_family

X, Y = sinusoid(n=20, noise=0.3, seed=0)
ALPHA, BETA = 5e-3, 1 / 0.09

def _degrees(fast, slow):
    # degrees where round-off in the raw power basis caps the attainable gradient (~1e-7)
    return [*fast, *slow]


def exact(family, degree, x=X, y=Y):
    return family.log_evidence(x, y, {"degree": degree}, method="exact").log_evidence


# ----------------------------------------------------------------------------- the basis
def test_design_is_raw_power_basis():
    x = torch.tensor([-2.0, 0.5, 3.0, 10.0])
    Phi = polynomial_design(x, 4)
    assert Phi.shape == (4, 5)
    for m in range(5):
        torch.testing.assert_close(Phi[:, m], x**m, rtol=0, atol=0)


def test_design_with_location_and_scale():
    x = torch.tensor([-2.0, 0.5, 3.0])
    Phi = polynomial_design(x, 3, x_loc=1.0, x_scale=2.0)
    for m in range(4):
        torch.testing.assert_close(Phi[:, m], ((x - 1.0) / 2.0) ** m)


def test_standardize_uses_training_mean_and_std():
    x = 3.0 + 5.0 * X  # far from [0, 1] so that standardisation matters
    family = PolynomialFamily(range(4), standardize=True)
    kwargs = family.resolve(x, Y, {"degree": 3})
    assert kwargs["x_loc"] == pytest.approx(float(x.mean()))
    assert kwargs["x_scale"] == pytest.approx(float(x.std()))
    u = (x - x.mean()) / x.std()
    reference = LinearGaussian(u.unsqueeze(-1) ** torch.arange(4.0), Y, ALPHA, BETA).log_evidence()
    assert exact(family, 3, x=x) == pytest.approx(float(reference), abs=1e-9)
    # and the Pyro model sees the same basis as the closed form
    laplace = family.log_evidence(x, Y, {"degree": 3}, method="laplace").log_evidence
    assert laplace == pytest.approx(float(reference), abs=1e-6)


@settings(max_examples=20, deadline=None, database=None)
@given(shift=st.floats(-50, 50), log_scale=st.floats(-3, 3), flip=st.booleans())
def test_standardized_evidence_is_invariant_to_affine_x(shift, log_scale, flip):
    # x -> a x + b (a != 0) leaves the standardised basis unchanged up to the sign of odd
    # powers, and the prior w ~ N(0, I/α) is symmetric, so the evidence cannot change
    family = PolynomialFamily(range(4), standardize=True)
    a = (-1 if flip else 1) * math.exp(log_scale)
    assert exact(family, 3, x=a * X + shift) == pytest.approx(exact(family, 3), abs=1e-7)


# -------------------------------------------------------------------- type-II max. lik.
@pytest.mark.parametrize("degree", _degrees([1, 3, 7], [6]))
def test_type2_ml_is_a_stationary_point_of_the_evidence(degree):
    Phi = polynomial_design(X, degree)
    a, b = fit_type2_ml(Phi, Y, alpha=ALPHA, beta=BETA)
    log_h = torch.tensor([a, b]).log().requires_grad_(True)
    value = LinearGaussian(Phi, Y, log_h[0].exp(), log_h[1].exp()).log_evidence()
    (grad,) = torch.autograd.grad(value, log_h)
    assert grad.abs().max() < 1e-4
    assert value.item() > LinearGaussian(Phi, Y, ALPHA, BETA).log_evidence().item()


@pytest.mark.parametrize("degree", _degrees([1, 3, 7], [6]))
def test_type2_ml_satisfies_mackay_reestimation(degree):
    # independent check of the optimum: PRML eqs. 3.91-3.92 and 3.95 hold at the fixed point
    Phi = polynomial_design(X, degree)
    a, b = fit_type2_ml(Phi, Y, alpha=ALPHA, beta=BETA)
    lam = torch.linalg.eigvalsh(b * Phi.T @ Phi)
    gamma = float((lam / (a + lam)).sum())
    m_N, _ = LinearGaussian(Phi, Y, a, b).posterior()
    assert a == pytest.approx(gamma / float(m_N @ m_N), rel=1e-4)
    assert 1 / b == pytest.approx(float((Y - Phi @ m_N).pow(2).sum()) / (len(Y) - gamma), rel=1e-4)


@pytest.mark.parametrize("degree", _degrees([0, 1, 2, 3, 7, 9], [4, 5, 6, 8]))
def test_learned_hyperparameters_never_lower_the_evidence(degree):
    # type-II ML starts from the fixed (α, β) and only ascends the same closed-form evidence
    fixed = PolynomialFamily(range(10))
    learn = PolynomialFamily(range(10), hyper="learn")
    assert exact(learn, degree) >= exact(fixed, degree) - 1e-9


# ------------------------------------------------------------------ hyperparameter prior
@pytest.fixture(scope="module")
def prior_family_results():
    family = PolynomialFamily(range(4), hyper="prior")
    with torch.random.fork_rng():
        pyro.set_rng_seed(0)
        return {m: family.log_evidence(X, Y, {"degree": 2}, method=m) for m in ("laplace", "smc")}


@pytest.mark.parametrize("method", ["laplace", "smc"])
def test_hyper_prior_gives_finite_evidence(prior_family_results, method):
    r = prior_family_results[method]
    assert math.isfinite(r.log_evidence)
    assert (r.samples["alpha"] > 0).all() and (r.samples["beta"] > 0).all()


@pytest.mark.parametrize("method", ["laplace", "smc"])
def test_pointwise_log_likelihood_is_chain_draw_n(prior_family_results, method):
    # (chain, draw, N) -- the layout ArviZ's loo/waic expect; (draw, N) would be silently misread
    r = prior_family_results[method]
    chains, draws = r.samples["w"].shape[:2]
    assert r.samples["w"].shape == (chains, draws, 3)
    assert r.pointwise_log_likelihood["y"].shape == (chains, draws, len(Y))
    assert torch.isfinite(r.pointwise_log_likelihood["y"]).all()


def test_smc_and_laplace_agree_roughly_under_hyper_prior(prior_family_results):
    # no closed form here; Laplace in (log α, log β, w) is approximate, a nat of slack
    assert prior_family_results["laplace"].log_evidence == pytest.approx(
        prior_family_results["smc"].log_evidence, abs=1.0)


def test_exact_under_hyper_prior_is_quadrature_and_agrees_with_smc(prior_family_results):
    # exact = 2-D quadrature over (log alpha, log beta) of PRML eq. 3.86 (GammaPrecisions);
    # degree 2 is a benign case where smc's reported stderr (~0.02) is honest: 0.1 nats
    family = PolynomialFamily(range(4), hyper="prior")
    ref = family.log_evidence(X, Y, {"degree": 2}, method="exact")
    assert ref.diagnostics["form"] == "GammaPrecisions"
    assert prior_family_results["smc"].log_evidence == pytest.approx(ref.log_evidence, abs=0.1)


# --------------------------------------------------------------------------- bad input
def _nan_at(t, i):
    t = t.clone()
    t[i] = float("nan")
    return t


@pytest.mark.parametrize(
    "x,y,argument",
    [
        (_nan_at(X, 3), Y, "`x`"),
        (X, _nan_at(Y, 0), "`y`"),
        (X, Y[:-1], "same length"),
        (X[:0], Y[:0], "`x`"),
    ],
)
def test_bad_data_is_rejected_naming_the_argument(x, y, argument):
    family = PolynomialFamily(range(3))
    with pytest.raises(InvalidArgumentError, match=argument) as info:
        family.log_evidence(x, y, {"degree": 1}, method="exact")
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("degrees", [[], [-1], [1.5], [0, 2, -3], [True]])
def test_bad_degrees_are_rejected(degrees):
    with pytest.raises(InvalidArgumentError, match="degrees"):
        PolynomialFamily(degrees)


@pytest.mark.parametrize("degree", [-1, 1.5, True])
def test_bad_design_degree_is_rejected(degree):
    with pytest.raises(InvalidArgumentError, match="degree"):
        polynomial_design(X, degree)


def test_numpy_integer_degrees_are_accepted():
    family = PolynomialFamily(np.arange(3))
    assert math.isfinite(exact(family, family.structures()[-1]["degree"]))


@pytest.mark.parametrize("name", ["alpha", "beta"])
@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf"), "abc"])
def test_non_positive_precision_is_rejected(name, value):
    with pytest.raises(InvalidArgumentError, match=name) as info:
        PolynomialFamily(range(3), **{name: value})
    assert isinstance(info.value, ValueError)


def test_unknown_hyper_is_rejected():
    with pytest.raises(InvalidArgumentError, match="hyper"):
        PolynomialFamily(range(3), hyper="bogus")


def test_structure_with_wrong_keys_is_rejected():
    with pytest.raises(InvalidArgumentError, match="structure"):
        PolynomialFamily(range(3)).log_evidence(X, Y, {"order": 1}, method="exact")


# -------------------------------------------------------------------- structure_family
@structure_family({"degree": [0, 1, 2], "noise": [0.3, 1.0]}, prior_scale=2.0)
def toy_poly(x, y=None, *, degree, noise, prior_scale):
    w = pyro.sample("w", dist.Normal(0.0, prior_scale).expand([degree + 1]).to_event(1))
    Phi = x.unsqueeze(-1) ** torch.arange(degree + 1, dtype=x.dtype)
    with pyro.plate("data", x.shape[0]):
        return pyro.sample("y", dist.Normal((w * Phi).sum(-1), noise), obs=y)


def test_structure_family_is_the_cartesian_product():
    assert isinstance(toy_poly, StructureFamily)
    assert toy_poly.structures() == [{"degree": d, "noise": s} for d in (0, 1, 2) for s in (0.3, 1.0)]


def test_structure_family_passes_structure_and_model_kwargs():
    # the toy model is linear-Gaussian: its evidence is PRML 3.86 with α = 1/2², β = 1/noise²
    r = toy_poly.log_evidence(X, Y, {"degree": 2, "noise": 0.3}, method="laplace")
    reference = LinearGaussian(polynomial_design(X, 2), Y, 1 / 2.0**2, 1 / 0.3**2).log_evidence()
    assert r.log_evidence == pytest.approx(float(reference), abs=1e-6)


def test_structure_family_pickles_and_runs_after_unpickling():
    structure = {"degree": 1, "noise": 0.3}
    before = toy_poly.log_evidence(X, Y, structure, method="laplace").log_evidence
    clone = pickle.loads(pickle.dumps(toy_poly))
    assert clone.structures() == toy_poly.structures()
    assert clone.log_evidence(X, Y, structure, method="laplace").log_evidence == pytest.approx(before, abs=1e-10)
    bound = pickle.loads(pickle.dumps(toy_poly.bind(structure)))
    assert log_evidence(bound, X, Y, method="laplace").log_evidence == pytest.approx(before, abs=1e-10)


def test_polynomial_family_and_bound_model_pickle_with_conjugate_form():
    family = pickle.loads(pickle.dumps(PolynomialFamily(range(4))))
    assert exact(family, 2) == pytest.approx(exact(PolynomialFamily(range(4)), 2), abs=1e-12)
    bound = pickle.loads(pickle.dumps(family.bind({"degree": 2})))
    assert log_evidence(bound, X, Y, method="exact").log_evidence == pytest.approx(exact(family, 2), abs=1e-12)
