"""compare() and its table reject bad arguments early, naming them."""

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

from bayesstruct import PolynomialFamily, StructureFamily, compare
from bayesstruct.datasets import sinusoid
from bayesstruct.exceptions import InvalidArgumentError

X, Y = sinusoid(10)
FAM = PolynomialFamily(range(3))
KW = dict(workers=1, progress=False)


@pytest.mark.parametrize("kwargs, match", [
    (dict(methods=5), "methods"),  # None is the family's default_methods
    (dict(methods=[3]), "methods"),
    (dict(options=3), "options"),
    (dict(methods="laplace", options={"laplace": 5}), "options"),
    (dict(methods="laplace", options={"laplace": {"seed": 3}}), "seed"),
    (dict(methods="laplace", options={"laplace": {"num_samples": 0}}), "num_samples"),
    (dict(structures=[{"degree": 1}, {"degree": 1}]), "structures"),
    (dict(structures={"degree": 1}), "structures"),
    (dict(structure_prior=lambda s: "x"), "structure_prior"),
    (dict(structure_prior=np.ones((3, 1))), "structure_prior"),
    (dict(executor=3), "executor"),
    (dict(seed="a"), "seed"),
    (dict(seed=-1), "seed"),
])
def test_compare_arguments(kwargs, match):
    kwargs.setdefault("methods", "exact")
    with pytest.raises(InvalidArgumentError, match=match):
        compare(FAM, X, Y, **kwargs, **KW)


def test_structure_prior_as_an_array_and_option_names_case_insensitive():
    for prior in (np.array([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 3.0])):
        t = compare(FAM, X, Y, methods="exact", structure_prior=prior, **KW)
        assert sorted(round(r.log_prior, 6) for r in t.rows) == sorted(round(float(np.log(w / 6)), 6) for w in (1, 2, 3))
    t = compare(FAM, X, Y, methods="laplace", options={"Laplace": {"num_samples": 10}}, **KW)
    assert t.rows[0].estimates["laplace"].samples["w"].shape == (1, 10, t.rows[0].structure["degree"] + 1)


@pytest.fixture(scope="module")
def table():
    return compare(PolynomialFamily(range(2)), X, Y, methods="exact,laplace", **KW)


@pytest.mark.parametrize("kwargs, match", [(dict(num_samples=0), "num_samples"), (dict(num_samples=2.5), "num_samples"),
                                           (dict(seed="a"), "seed")])
def test_posterior_predictive_arguments(table, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        table.posterior_predictive(X, **kwargs)


def test_band_level_must_be_a_number(table):
    with pytest.raises(InvalidArgumentError, match="level"):
        table.posterior_predictive(X, num_samples=10).band(torch.randn(5, 3), "a")


@pytest.mark.parametrize("x_new, match", [
    (torch.zeros(5, 2), r"`x_new` must have the shape of the training `x` \(10,\) except its length, \(M,\); "
                        r"got shape \(5, 2\)"),
    (torch.zeros(5, 1), r"\(M,\); got shape \(5, 1\).*x_new.reshape\(-1\)"),
    (3.0, r"\(M,\); got shape \(\).*\[x_new\] for one point"),
    (torch.zeros(0), "`x_new` is empty"),
    ([0.5, float("nan")], "`x_new` contains 1 NaN"),
    (["a", "b"], "`x_new` must be an array of numbers"),
    ({"x": 1}, "`x_new` must be an array of numbers"),
])
def test_posterior_predictive_checks_x_new_against_the_training_x(table, x_new, match):
    with pytest.raises(InvalidArgumentError, match=match):
        table.posterior_predictive(x_new, num_samples=10)


def plane(x, y=None, *, scale):
    w = pyro.sample("w", dist.Normal(torch.zeros(2), scale).to_event(1))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("y", dist.Normal((w * x).sum(-1), 0.5), obs=y)


def test_posterior_predictive_on_two_dimensional_inputs():
    x2 = torch.stack([X, X ** 2], -1)
    t = compare(StructureFamily(plane, {"scale": [1.0]}), x2, Y, methods="laplace", **KW)
    assert t.posterior_predictive(x2[:3], num_samples=10).best.shape == (10, 3)
    assert t.posterior_predictive(x2[:3].tolist(), num_samples=10).average.shape == (10, 3)  # a nested list is data
    with pytest.raises(InvalidArgumentError, match=r"training `x` \(10, 2\) except its length, \(M, 2\); got shape "
                                                   r"\(3, 3\): pass the M new inputs as rows of 2 value\(s\)"):
        t.posterior_predictive(torch.zeros(3, 3))
    with pytest.raises(InvalidArgumentError, match=r"got shape \(2,\): for one new point use x_new.reshape\(1, -1\)"):
        t.posterior_predictive(torch.zeros(2))
    with pytest.raises(InvalidArgumentError, match=r"\(M, 2\); got shape \(5,\)"):
        t.posterior_predictive(torch.zeros(5))


def test_structure_prior_weights_are_normalised_in_log_space():
    # finite weights whose sum overflows a float (the sum was inf and every log prior -inf or a crash)
    t = compare(FAM, X, Y, methods="exact", structure_prior=[1e308, 1e308, 1e308], **KW)
    assert [r.log_prior for r in t.rows] == pytest.approx([-np.log(3.0)] * 3, abs=1e-12)
    with pytest.raises(InvalidArgumentError, match="structure_prior"):  # an int too large for a float
        compare(FAM, X, Y, methods="exact", structure_prior=lambda s: 10 ** (400 + s["degree"]), **KW)


def test_evidence_that_overflows_for_every_structure_is_an_error_not_a_nan_table():
    from bayesstruct.exceptions import BayesStructError

    with pytest.raises(BayesStructError, match="not finite.*rescale y"):  # y * 1e155: the exact evidence is -inf
        compare(FAM, X, Y * 1e155, methods="exact", **KW)


@pytest.mark.parametrize("kwargs, match", [
    (dict(hyper="fixed", lam=3.0), "`lam` applies to hyper='normal-gamma' only"),
    (dict(hyper="fixed", tau_prior=(1.0, 1.0)), "`tau_prior` applies"),
    (dict(hyper="normal-gamma", alpha_prior=(5.0, 5.0)), "`alpha_prior` applies to hyper='prior' only"),
    (dict(hyper="prior", alpha=1.0), "`alpha` is integrated out"),
    (dict(hyper="prior", beta=100.0), "`beta` is integrated out"),
])
def test_polynomial_options_the_hyper_setting_ignores_are_refused(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        PolynomialFamily(range(3), **kwargs)
