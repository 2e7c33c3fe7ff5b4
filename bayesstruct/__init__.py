"""bayesstruct: Bayesian selection of model structure with Pyro.

Concepts, one module each: :mod:`bayesstruct.families` (structure families as Pyro
models), :mod:`bayesstruct.evidence` (evidence estimators behind one registry),
:func:`bayesstruct.compare` (an evidence table over a family's structures),
:mod:`bayesstruct.priors` (structure priors: tempered Dirichlet/Gumbel-softmax, the
cascading Indian buffet process), :mod:`bayesstruct.nn` (networks as DAGs of primitive
functions, operational criteria), :mod:`bayesstruct.search` (DARTS, FBNet, the RL
controller, random search, KL enumeration), :mod:`bayesstruct.prune` (OBD/OBS, magnitude,
Deep Compression, Graves' MDL), :mod:`bayesstruct.plots` (figures) and
:mod:`bayesstruct.io` (JSON, ArviZ netCDF).
"""

from bayesstruct.compare import ComparisonTable, compare
from bayesstruct.evidence import EvidenceResult, get_estimator, list_estimators, log_evidence, register_estimator
from bayesstruct.exceptions import BayesStructError
from bayesstruct.families import PolynomialFamily, StructureFamily, structure_family

__version__ = "0.1.0"

__all__ = [
    "BayesStructError",
    "ComparisonTable",
    "EvidenceResult",
    "PolynomialFamily",
    "StructureFamily",
    "compare",
    "get_estimator",
    "list_estimators",
    "log_evidence",
    "register_estimator",
    "structure_family",
]
