"""The structure priors, built directly, validate their location and temperature (errors name them)."""

import pytest
import torch

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.priors import (GumbelSoftmax, IndianBuffetProcess, RelaxedBernoulliCube, TemperedBetaCube,
                                TemperedDirichlet)

CLASSES = [GumbelSoftmax, TemperedDirichlet, RelaxedBernoulliCube, TemperedBetaCube]
S = torch.tensor([0.4, 0.6])


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), "a", torch.tensor([1.0, 2.0])])
def test_temperature(cls, temperature):
    with pytest.raises(InvalidArgumentError, match="temperature"):
        cls(S, temperature)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("s", [torch.tensor([-0.5, 1.5]), torch.tensor([float("nan"), 1.0]), torch.tensor(0.5), "ab"])
def test_location(cls, s):
    with pytest.raises(InvalidArgumentError, match="`s`"):
        cls(s, 1.0)


@pytest.mark.parametrize("cls, s", [(TemperedDirichlet, [0.0, 1.0]), (TemperedBetaCube, [0.0, 0.5]),
                                    (RelaxedBernoulliCube, [0.5, 1.5])])
def test_location_boundaries(cls, s):
    with pytest.raises(InvalidArgumentError, match="`s`"):
        cls(torch.tensor(s), 1.0)


@pytest.mark.parametrize("cls", CLASSES)
def test_valid_priors_still_work(cls):
    lam = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    d = cls(S.double(), lam)
    x = d.rsample((3,))
    assert x.shape == (3, 2) and d.expand((4,)).batch_shape == (4,)
    d.log_prob(x.detach().clamp(1e-6, 1 - 1e-6)).sum().backward()
    assert cls([1, 1] if cls in (GumbelSoftmax, TemperedDirichlet) else [0.5, 0.5], 1.0).sample().shape == (2,)


@pytest.mark.parametrize("shape", [(-1,), "a"])
def test_ibp_sample_shape(shape):
    with pytest.raises(InvalidArgumentError, match="sample_shape"):
        IndianBuffetProcess(1.0, num_rows=2).sample(shape)
