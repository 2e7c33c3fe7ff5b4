"""Bad input to the structure families gets an error naming the argument (no deep torch traceback)."""

import pytest
import torch

from bayesstruct.exceptions import BayesStructError, InvalidArgumentError
from bayesstruct.families import (CIBPSampler, PolynomialFamily, StructureFamily, conv_graph,
                                  fit_type2_ml, polynomial_design, polynomial_model)
from bayesstruct.families.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from bayesstruct.nn import StructureGraph

X = torch.linspace(0, 1, 8, dtype=torch.float64)
Y = torch.sin(6 * X)
PHI = polynomial_design(X, 2)


@pytest.mark.parametrize("kwargs, match", [
    (dict(degrees=[1, 2, 1]), "degrees"),
    (dict(standardize="no"), "standardize"),
    (dict(alpah=1.0), "alpah"),
    (dict(hyper="prior", alpha_prior=(-1.0, 1.0)), "alpha_prior"),
    (dict(hyper="prior", beta_prior=(1.0, 1.0, 1.0)), "beta_prior"),
    (dict(hyper="normal-gamma", tau_prior=(0.0, 1.0)), "tau_prior"),
    (dict(hyper="normal-gamma", lam=-1.0), "lam"),
    (dict(x_scale=0.0), "x_scale"),
])
def test_polynomial_family_options(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        PolynomialFamily(**kwargs)


@pytest.mark.parametrize("call, match", [
    (lambda: polynomial_design(X, 2, x_scale=0.0), "x_scale"),
    (lambda: polynomial_design(X, 2, x_loc=float("nan")), "x_loc"),
    (lambda: polynomial_model(X, Y, degree=1, hyper="foo"), "hyper"),
    (lambda: polynomial_model(X, Y, degree=1, alpha=-1.0), "alpha"),
    (lambda: polynomial_model(X, Y, degree=1, hyper="normal-gamma", tau_prior=(-1.0, 1.0)), "tau_prior"),
    (lambda: polynomial_model.conjugate_form(X, Y, degree=1, hyper="prior", alpha_prior=(1.0,)), "alpha_prior"),
    (lambda: fit_type2_ml(PHI, Y, alpha=-1.0), "alpha"),
    (lambda: fit_type2_ml(PHI, Y, max_iter=0), "max_iter"),
])
def test_polynomial_functions(call, match):
    with pytest.raises(InvalidArgumentError, match=match):
        call()


def test_structure_family_rejects_repeated_values():
    with pytest.raises(InvalidArgumentError, match=r"space\['order'\]"):
        StructureFamily(lambda x, y=None, *, order: None, {"order": [1, 2, 2]})


def test_a_graph_with_repeated_primitives_is_refused_before_any_family():
    with pytest.raises(InvalidArgumentError, match=r"edge \(0, 1\).*repeats 'linear_tanh'"):
        StructureGraph(3, {(0, 1): ["linear_tanh", "linear_tanh"], (1, 2): "linear"},
                       input_shape=(2,), vertex_shapes={1: (2,), 2: (1,)})


@pytest.mark.parametrize("y, match", [(torch.zeros(5), "y"), (torch.zeros(6, 1), "y"),
                                      (torch.full((6,), float("nan")), "y")])
def test_network_model_regression_targets(y, match):
    import pyro

    from bayesstruct.families import network_model, one_layer_graph

    g = one_layer_graph(3, 1, hidden=2)
    with pytest.raises(InvalidArgumentError, match=match):
        pyro.poutine.trace(network_model).get_trace(torch.randn(6, 3), y, graph=g, task="regression", gamma={})


def test_conv_graph_channels_with_pooling_names_channels():
    with pytest.raises(InvalidArgumentError, match="channels"):
        conv_graph((1, 8, 8), channels=3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(seed="a"), "seed"), (dict(seed=-1), "seed"),
    (dict(move_probs=[0.5, 0.5]), "move_probs"), (dict(move_probs={"flip": "a"}), "move_probs"),
    (dict(init=torch.ones(3, 0)), "init"), (dict(log_likelihood=lambda z: "a"), "log_likelihood"),
])
def test_cibp_sampler(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        CIBPSampler(1.0, 1.0, 3, **kwargs)


def test_checkpoint_path_must_be_a_path(tmp_path):
    with pytest.raises(InvalidArgumentError, match="path"):
        save_checkpoint(None, {"a": 1})
    with pytest.raises(CheckpointError, match="path"):
        load_checkpoint(None)
    assert issubclass(CheckpointError, BayesStructError)
