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


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("temperature", [1e-50, 1e39])
def test_temperature_that_is_not_representable_in_the_dtype_of_s(cls, temperature):
    # 1e-50 is 0 and 1e39 is inf in float32: named, not a NaN sample or torch's concentration error
    with pytest.raises(InvalidArgumentError, match=r"`temperature` = 1e[-+]?\d+ is (0\.0|inf) in torch\.float32"):
        cls(S.float(), temperature)
    cls(S.double(), temperature)  # representable in float64


SIMPLEX_TEXT = r"`value` must lie in the 2-simplex \(K=3: coordinates >= 0 summing to 1"
CUBE_TEXT = r"`value` must lie in the cube \[0, 1\]\^2 \(K=2: every coordinate in \[0, 1\]\)"


@pytest.mark.parametrize("restriction, kind, s, value, match", [
    ("simplex_interior", "gumbel-softmax", [0.2, 0.3, 0.5], [0.5, 0.6, 0.2], SIMPLEX_TEXT + r".*\(sum 1\.3"),
    ("simplex_interior", "dirichlet", [0.2, 0.3, 0.5], [-0.1, 0.6, 0.5], SIMPLEX_TEXT + r".*-0\.1"),
    ("cube_interior", "relaxed-bernoulli", [0.7, 0.4], [0.5, 1.2], CUBE_TEXT + r".*1\.2"),
    ("cube_interior", "beta", [0.7, 0.4], [[0.5, 0.5], [-0.5, 0.5], [2.0, 0.5]], CUBE_TEXT + r".*2 of 3 point"),
])
def test_log_prob_of_a_value_outside_the_support_names_value_and_the_support(restriction, kind, s, value, match):
    # conftest switches validation on; the error is ours (a ValueError, as torch's was)
    from bayesstruct.priors import structure_prior

    d = structure_prior(restriction, torch.tensor(s), 0.5, kind=kind)
    with pytest.raises(InvalidArgumentError, match=match):
        d.log_prob(torch.tensor(value))
    with pytest.raises(InvalidArgumentError, match=r"`value` must have shape \(\.\.\., " + str(len(s)) + r"\)"):
        d.log_prob(torch.full((len(s) + 1,), 0.25))
    with pytest.raises(InvalidArgumentError, match="`value` of shape .* does not broadcast"):
        d.expand((5,)).log_prob(torch.full((4, len(s)), 1.0 / len(s)))
    with pytest.raises(InvalidArgumentError, match="`value` must be a Tensor; got list"):
        d.log_prob([1.0 / len(s)] * len(s))
    # without validation the value is scored as given
    structure_prior(restriction, torch.tensor(s), 0.5, kind=kind, validate_args=False).log_prob(torch.tensor(value))


@pytest.mark.parametrize("shape", [(-1,), "a"])
def test_ibp_sample_shape(shape):
    with pytest.raises(InvalidArgumentError, match="sample_shape"):
        IndianBuffetProcess(1.0, num_rows=2).sample(shape)
