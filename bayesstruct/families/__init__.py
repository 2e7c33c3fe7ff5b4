"""Structure families: Pyro model specs parameterised by a structure."""

from bayesstruct.families.base import BoundModel, StructureFamily, structure_family
from bayesstruct.families.bayes_net import (DAG, BayesianNetworkFamily, DAGSamples, StructureMCMC, bayes_net_model,
                                            dag_prior, edge_posterior, enumerate_dags, simulate_linear_gaussian)
from bayesstruct.families.belief_net import BeliefNetSampler, BeliefNetSamples
from bayesstruct.families.dbn import CIBPSampler, CIBPSamples
from bayesstruct.families.network import (PACKED_WEIGHTS_SITE, NetworkFamily, StructurePosterior,
                                          elbo_temperature_sweep, fit_structure_posterior, gamma_site_name,
                                          network_model, pack_weight_values, refit_discrete, sample_gamma_posterior,
                                          unpack_weight_values, weight_site_names)
from bayesstruct.families.examples import cell_graph, conv_family, conv_graph, one_layer_family, one_layer_graph
from bayesstruct.families.polynomial import Hyper, PolynomialFamily, fit_type2_ml, polynomial_design, polynomial_model
from bayesstruct.families.superposition import (ELEMENTARY_FUNCTIONS, ElementaryFunction, Superposition,
                                                SuperpositionFamily, SuperpositionGrammar, SuperpositionSamples,
                                                sample_superpositions, superposition_model)

__all__ = ["BoundModel", "StructureFamily", "structure_family", "Hyper", "PolynomialFamily", "fit_type2_ml",
           "polynomial_design", "polynomial_model", "NetworkFamily", "StructurePosterior", "fit_structure_posterior",
           "gamma_site_name", "network_model", "weight_site_names", "PACKED_WEIGHTS_SITE",
           "pack_weight_values", "unpack_weight_values", "refit_discrete", "sample_gamma_posterior",
           "elbo_temperature_sweep", "one_layer_graph", "conv_graph", "cell_graph",
           "one_layer_family", "conv_family", "CIBPSampler", "CIBPSamples",
           "BeliefNetSampler", "BeliefNetSamples", "ELEMENTARY_FUNCTIONS", "ElementaryFunction", "Superposition",
           "SuperpositionFamily", "SuperpositionGrammar", "SuperpositionSamples", "sample_superpositions",
           "superposition_model", "DAG", "BayesianNetworkFamily", "DAGSamples", "StructureMCMC", "bayes_net_model",
           "dag_prior", "edge_posterior", "enumerate_dags", "simulate_linear_gaussian"]
