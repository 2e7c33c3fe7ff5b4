"""Seeds of the structure samplers and a constant input under standardisation: errors name the argument."""

import numpy as np
import pytest
import torch

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.families import PolynomialFamily
from bayesstruct.families.bayes_net import BayesianNetworkFamily, StructureMCMC
from bayesstruct.families.belief_net import BeliefNetSampler

X3 = torch.randn(30, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, "1", True])
def test_structure_mcmc_seed(seed):
    with pytest.raises(InvalidArgumentError, match="`seed` must be an integer in"):
        StructureMCMC(BayesianNetworkFamily(3), X3, seed=seed)


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_belief_net_sampler_seeds(seed):
    with pytest.raises(InvalidArgumentError, match="`seed` must be an integer in"):
        BeliefNetSampler(np.random.default_rng(0).random((10, 4)), seed=seed)
    sampler = BeliefNetSampler(np.random.default_rng(0).random((10, 4)), seed=0)
    with pytest.raises(InvalidArgumentError, match="`seed` must be an integer in"):
        sampler.fantasies(2, seed=seed)


def test_standardize_refuses_a_constant_x():
    family = PolynomialFamily(degrees=range(3), standardize=True)
    with pytest.raises(InvalidArgumentError, match="`x` is constant"):
        family.check_data(torch.ones(5, dtype=torch.float64), torch.arange(5.0, dtype=torch.float64))
    x, _ = PolynomialFamily(degrees=range(3)).check_data(torch.ones(5, dtype=torch.float64),
                                                         torch.arange(5.0, dtype=torch.float64))
    assert torch.equal(x, torch.ones(5, dtype=torch.float64))  # without standardisation it is a valid (if uninformative) input
