"""Closed-form evidences against independent references (the marginal density of y)."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from bayesstruct.evidence import LinearGaussian, NormalGamma, log_evidence
from bayesstruct.exceptions import EstimatorNotApplicableError, InvalidArgumentError


def _data(n=15, m=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.linspace(-1.0, 1.5, n, dtype=torch.float64)
    Phi = x.unsqueeze(-1) ** torch.arange(m, dtype=torch.float64)
    y = torch.sin(3 * x) + 0.2 * torch.randn(n, generator=g, dtype=torch.float64)
    return Phi, y


def student_t_logpdf(y, df, shape_matrix):
    """log density of a zero-mean multivariate Student-t (df, shape matrix Σ)."""
    n = y.shape[0]
    _, logdet = torch.linalg.slogdet(shape_matrix)
    maha = y @ torch.linalg.solve(shape_matrix, y)
    return (math.lgamma((df + n) / 2) - math.lgamma(df / 2) - 0.5 * n * math.log(df * math.pi)
            - 0.5 * logdet - 0.5 * (df + n) * torch.log1p(maha / df))


@pytest.mark.parametrize("alpha,beta", [(5e-3, 1 / 0.09), (2.0, 0.5), (0.3, 40.0)])
@pytest.mark.parametrize("m", [1, 4])
def test_linear_gaussian_equals_marginal_normal(alpha, beta, m):
    Phi, y = _data(m=m)
    n = y.shape[0]
    cov = torch.eye(n) / beta + Phi @ Phi.T / alpha
    reference = torch.distributions.MultivariateNormal(torch.zeros(n), covariance_matrix=cov).log_prob(y)
    value = LinearGaussian(Phi, y, alpha, beta).log_evidence()
    assert value.item() == pytest.approx(reference.item(), abs=1e-9)


def test_linear_gaussian_is_differentiable_in_hyperparameters():
    Phi, y = _data()
    log_h = torch.tensor([0.1, 1.0], requires_grad=True)
    value = LinearGaussian(Phi, y, log_h[0].exp(), log_h[1].exp()).log_evidence()
    (grad,) = torch.autograd.grad(value, log_h)
    assert torch.isfinite(grad).all()


def test_linear_gaussian_posterior_matches_conditional_gaussian():
    # reference: Gaussian conditioning of the joint (w, y), w ~ N(0, I/α), y | w ~ N(Φw, I/β)
    Phi, y = _data()
    alpha, beta = 0.7, 9.0
    m = Phi.shape[1]
    S_w, S_yy = torch.eye(m) / alpha, torch.eye(y.shape[0]) / beta + Phi @ Phi.T / alpha
    S_wy = Phi.T / alpha
    mean_ref = S_wy @ torch.linalg.solve(S_yy, y)
    cov_ref = S_w - S_wy @ torch.linalg.solve(S_yy, S_wy.T)
    mean, cov = LinearGaussian(Phi, y, alpha, beta).posterior()
    torch.testing.assert_close(mean, mean_ref, atol=1e-9, rtol=1e-8)
    torch.testing.assert_close(cov, cov_ref, atol=1e-9, rtol=1e-8)


@pytest.mark.parametrize("lam,a0,b0", [(5e-3 * 0.09, 2.0, 0.2), (1.0, 3.5, 1.0), (0.1, 0.7, 4.0)])
@pytest.mark.parametrize("m", [1, 4])
def test_normal_gamma_equals_multivariate_student_t(lam, a0, b0, m):
    Phi, y = _data(m=m)
    n = y.shape[0]
    shape_matrix = (b0 / a0) * (torch.eye(n) + Phi @ Phi.T / lam)
    reference = student_t_logpdf(y, 2 * a0, shape_matrix)
    value = NormalGamma(Phi, y, lam, a0, b0).log_evidence()
    assert float(value) == pytest.approx(reference.item(), abs=1e-9)


def test_student_t_reference_agrees_with_scipy():
    # guards the hand-written reference itself
    stats = pytest.importorskip("scipy.stats")
    Phi, y = _data()
    shape_matrix = 0.4 * (torch.eye(y.shape[0]) + Phi @ Phi.T / 0.3)
    ours = student_t_logpdf(y, 5.0, shape_matrix).item()
    theirs = stats.multivariate_t(loc=[0.0] * y.shape[0], shape=shape_matrix.numpy(), df=5.0).logpdf(y.numpy())
    assert ours == pytest.approx(float(theirs), abs=1e-9)


def test_design_shape_mismatch_is_rejected():
    Phi, y = _data()
    with pytest.raises(InvalidArgumentError, match="design"):
        LinearGaussian(Phi, y[:-1], 1.0, 1.0).log_evidence()


@pytest.mark.parametrize("bad", ["lam", "a0", "b0"])
def test_normal_gamma_rejects_non_positive_hyperparameters(bad):
    Phi, y = _data()
    kwargs = {"lam": 1.0, "a0": 2.0, "b0": 1.0, bad: 0.0}
    with pytest.raises(InvalidArgumentError, match=bad):
        NormalGamma(Phi, y, **kwargs).log_evidence()


def test_exact_on_a_gaussian_model_without_conjugate_form():
    # a Gaussian model declaring no conjugate_form: mu ~ N(0, 1.5²), y_n ~ N(mu, 0.7²), so that
    # y ~ N(0, 0.7² I + 1.5² 11ᵀ)
    def model(y):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.5))
        with pyro.plate("data", len(y)):
            pyro.sample("y", dist.Normal(mu, 0.7), obs=y)

    y = torch.tensor([0.3, -1.2, 2.0, 0.8])
    cov = 0.7**2 * torch.eye(4) + 1.5**2 * torch.ones(4, 4)
    reference = torch.distributions.MultivariateNormal(torch.zeros(4), covariance_matrix=cov).log_prob(y)
    assert log_evidence(model, y, method="exact").log_evidence == pytest.approx(reference.item(), abs=1e-9)


def test_exact_without_conjugate_form_is_not_applicable():
    # Beta-Bernoulli: no conjugate_form and a log joint that is not quadratic in logit(p)
    def model(y):
        p = pyro.sample("p", dist.Beta(2.0, 3.0))
        with pyro.plate("data", len(y)):
            pyro.sample("y", dist.Bernoulli(p), obs=y)

    with pytest.raises(EstimatorNotApplicableError, match="conjugate"):
        log_evidence(model, torch.tensor([1.0, 0.0, 1.0]), method="exact")
