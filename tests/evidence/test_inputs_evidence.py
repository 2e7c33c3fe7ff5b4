"""Bad input to the evidence estimators gets an error naming the argument, never a hang or a deep traceback."""

import pyro
import pyro.distributions as dist
import pytest
import torch

from bayesstruct.evidence import (SMC, GammaPrecisions, LinearGaussian, ModelDensity, get_estimator, laplace_fit,
                                  fit_gaussian_guide, log_evidence)
from bayesstruct.exceptions import InvalidArgumentError, ModelSpecError

Y = torch.tensor([0.5, -0.5])


def model(y=None):
    mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    with pyro.plate("data", 2):
        pyro.sample("y", dist.Normal(mu, 1.0), obs=y)


@pytest.mark.parametrize("method, options, match", [
    ("laplace", dict(num_samples=0), "num_samples"),
    ("laplace", dict(num_samples=2.5), "num_samples"),
    ("laplace", dict(seed=-1), "seed"),
    ("exact", dict(seed=2**32), "seed"),
    ("smc", dict(target_ess="x"), "target_ess"),
    ("smc", dict(hmc_below="x"), "hmc_below"),
])
def test_estimator_options(method, options, match):
    with pytest.raises(InvalidArgumentError, match=match):
        get_estimator(method, **options)


@pytest.mark.parametrize("method", ["laplace", "elbo", "smc"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_observed_data_is_refused_not_looped_on(method, bad):
    with pytest.raises(InvalidArgumentError, match="'y'.*NaN or infinite"):
        log_evidence(model, y=torch.tensor([bad, 0.0]), method=method)


def test_observed_data_outside_the_support():
    def gamma_model(y=None):
        rate = pyro.sample("rate", dist.Gamma(2.0, 1.0))
        with pyro.plate("data", 2):
            pyro.sample("y", dist.Exponential(rate), obs=y)

    with pytest.raises(InvalidArgumentError, match="'y'.*support"):
        log_evidence(gamma_model, y=torch.tensor([1.0, -1.0]))


def test_masked_non_finite_data_is_refused_too():
    # a NaN under poutine.mask still makes the gradient NaN: the Laplace evidence came out 0.3 nats off
    def masked(y=None):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        with pyro.plate("data", 2), pyro.poutine.mask(mask=torch.tensor([True, False])):
            pyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    with pytest.raises(InvalidArgumentError, match="'y'.*masked entries too"):
        log_evidence(masked, y=torch.tensor([0.3, float("nan")]))


def test_density_and_laplace_fit_arguments():
    d = ModelDensity(model, y=Y)
    with pytest.raises(InvalidArgumentError, match="`z`"):
        d(torch.zeros(3))
    with pytest.raises(InvalidArgumentError, match="init"):
        laplace_fit(d, init=torch.zeros(5))
    with pytest.raises(InvalidArgumentError, match="guide"):
        fit_gaussian_guide(d, "foo")
    with pytest.raises(InvalidArgumentError, match="num_base_draws"):
        fit_gaussian_guide(d, num_base_draws=0)


def test_density_keeps_minus_infinity():
    def hard(y=None):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        pyro.factor("wall", torch.where(mu > 0, torch.tensor(0.0), torch.tensor(float("-inf"))))
        with pyro.plate("data", 2):
            pyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    d = ModelDensity(hard, y=Y)
    assert d(torch.tensor([[-1.0]])).item() == float("-inf")  # not the finite -1.8e308


PHI = torch.randn(5, 2, dtype=torch.float64)
YY = torch.randn(5, dtype=torch.float64)


@pytest.mark.parametrize("form, match", [
    (lambda: LinearGaussian(PHI, YY, -1.0, 1.0), "alpha"),
    (lambda: LinearGaussian(PHI, YY, 1.0, 0.0), "beta"),
    (lambda: LinearGaussian(PHI * float("nan"), YY, 1.0, 1.0), "design"),
    (lambda: LinearGaussian(PHI, YY * float("inf"), 1.0, 1.0), "`y`"),
    (lambda: GammaPrecisions(PHI, YY, (-1.0, 1.0), (1.0, 1.0)), "alpha_prior"),
    (lambda: GammaPrecisions(PHI, YY, (1.0, 1.0), (1.0,)), "beta_prior"),
    (lambda: GammaPrecisions(PHI, YY, (1.0, 1.0), (1.0, 1.0), num_points=1), "num_points"),
])
def test_conjugate_forms(form, match):
    with pytest.raises(InvalidArgumentError, match=match):
        form().log_evidence()


def test_linear_gaussian_posterior_checks_precisions():
    with pytest.raises(InvalidArgumentError, match="alpha"):
        LinearGaussian(PHI, YY, -1.0, 1.0).posterior()


X3 = torch.linspace(0, 1, 6, dtype=torch.float64)
Y3 = torch.sin(3 * X3)


def matmul_model(x, y=None, *, degree):
    # `features @ w`: right for one draw of w (D,), wrong for a batch (B, 1, D) of particles
    features = x.unsqueeze(-1) ** torch.arange(degree + 1, dtype=x.dtype)
    w = pyro.sample("w", dist.Normal(0.0, 1.0).expand([degree + 1]).to_event(1))
    with pyro.plate("data", len(x)):
        pyro.sample("y", dist.Normal(features @ w, 0.3), obs=y)


@pytest.mark.parametrize("degree, cause", [
    (0, ValueError),  # (N, 1) @ (B, 1, 1) is (B, N, 1): pyro's plate mismatch at the particle dim
    (2, RuntimeError),  # (N, 3) @ (B, 1, 3) does not multiply: torch's shape error
])
@pytest.mark.parametrize("method", ["laplace", "iwae"])
def test_a_model_that_does_not_broadcast_over_particles_is_told_how_to_fix_it(degree, cause, method):
    with pytest.raises(ModelSpecError, match="must broadcast over a leading batch of particles") as info:
        log_evidence(matmul_model, X3, Y3, degree=degree, method=method)
    message = str(info.value)
    assert "'matmul_model'" in message and "`(w * X).sum(-1)` rather than `X @ w`" in message
    assert "vectorize_particles=True" in message
    assert ("site 'y'" if degree == 0 else "after site 'w'") in message  # where it failed
    assert "Trace Shapes" not in message  # pyro's shape table stays in the chained cause
    assert isinstance(info.value.__cause__, cause)
    if degree == 0:
        assert "_bayesstruct_particles" in str(info.value.__cause__)


@pytest.mark.parametrize("error", [ValueError, RuntimeError])
def test_other_errors_of_a_batched_run_are_not_relabelled(error):
    def fussy(y=None):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        if mu.dim() > 0:  # only under the particle plate, as a broadcast failure would be
            raise error("the model's own complaint")
        with pyro.plate("data", 2):
            pyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    with pytest.raises(error, match="the model's own complaint") as info:
        log_evidence(fussy, y=Y)
    assert not isinstance(info.value, ModelSpecError)


@pytest.mark.parametrize("method, options, call", [
    ("smc", dict(seed=1), "SMC(seed=1)"),
    ("laplace", dict(num_samples=0), "Laplace(num_samples=0)"),
    (SMC(num_particles=64), dict(num_islands=4), "SMC(num_islands=4)"),
])
def test_an_estimator_option_given_to_the_model_says_where_it_goes(method, options, call):
    with pytest.raises(InvalidArgumentError, match="is an option of the estimator, not of the model") as info:
        log_evidence(model, y=Y, method=method, **options)
    name = next(iter(options))
    assert str(info.value).startswith(f"`{name}` is an option")
    assert f"log_evidence(model, ..., method={call})" in str(info.value)
    assert isinstance(info.value.__cause__, (TypeError, ModelSpecError))


def test_an_option_of_another_estimator_names_it():
    with pytest.raises(InvalidArgumentError, match=r"`num_particles` is an option of the SMC \('smc'\) estimator "
                                                   r"\(not of Laplace\)") as info:
        log_evidence(model, y=Y, method="laplace", num_particles=64)
    assert "method=SMC(num_particles=64)" in str(info.value)


def test_model_keywords_stay_the_model_s():
    with pytest.raises(ModelSpecError, match="unexpected keyword argument 'foo'"):  # no estimator has `foo`
        log_evidence(model, y=Y, foo=1)

    def seeded(y=None, *, seed):  # a model may take a keyword that an estimator also has
        mu = pyro.sample("mu", dist.Normal(float(seed), 1.0))
        with pyro.plate("data", 2):
            pyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    assert log_evidence(seeded, y=Y, seed=0).log_evidence == pytest.approx(log_evidence(model, y=Y).log_evidence)


@pytest.mark.parametrize("method", ["laplace", "smc"])
def test_float32_data_is_cast_to_float64(method):
    from bayesstruct.families import NetworkFamily
    from bayesstruct.nn import StructureGraph

    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(0))  # float32, as torch.randn and load_digits give
    y = (x[:, 0] * x[:, 1] > 0).long()
    graph = StructureGraph(3, {(0, 1): "linear_tanh", (1, 2): "linear"}, input_shape=(2,), vertex_shapes={1: (3,), 2: (2,)})
    family = NetworkFamily(graph)
    model = family.bind(family.structures()[0])
    options = {"num_particles": 256, "num_islands": 2} if method == "smc" else {}
    estimator = get_estimator(method, **options)
    assert estimator(model, x, y).log_evidence == estimator(model, x.double(), y).log_evidence
