"""Seeds of the structure samplers, a constant input under standardisation, bad class labels: errors name the argument."""

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


def test_fit_structure_posterior_names_bad_labels_before_tracing():
    from bayesstruct.families import fit_structure_posterior, one_layer_graph

    x = torch.randn(12, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    graph = one_layer_graph(5, 3, hidden=2)
    with pytest.raises(InvalidArgumentError, match=r"class labels in 0\.\.2 .*got values in 3\.\.4$") as info:
        fit_structure_posterior(graph, x, torch.arange(12) % 2 + 3, num_steps=1)
    assert "Trace Shapes" not in str(info.value)
    with pytest.raises(InvalidArgumentError, match=r"\(12,\) class labels, one per row"):
        fit_structure_posterior(graph, x, torch.zeros(11, dtype=torch.long), num_steps=1)
