"""compare() and its table reject bad arguments early, naming them."""

import numpy as np
import pytest
import torch

from bayesstruct import PolynomialFamily, compare
from bayesstruct.datasets import sinusoid
from bayesstruct.exceptions import InvalidArgumentError

X, Y = sinusoid(10)
FAM = PolynomialFamily(range(3))
KW = dict(workers=1, progress=False)


@pytest.mark.parametrize("kwargs, match", [
    (dict(methods=None), "methods"),
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
