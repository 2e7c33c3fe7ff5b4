"""Evidence estimators behind one interface.

``log_evidence(model, *args, method=..., **kwargs)`` resolves ``method`` through a
registry (:func:`register_estimator`); every estimator returns an
:class:`EvidenceResult` (log evidence, standard error, wall time, diagnostics, MDL bits).

=========  ==============================================================  =========
name       what                                                             exact for
=========  ==============================================================  =========
exact      closed form, conjugate Gaussian linear models (PRML eq. 3.86)    by definition
laplace    MAP + Hessian                                                    Gaussian posteriors
elbo       Gaussian guide fitted in Laplace-whitened coordinates            (a lower bound)
iwae       importance-weighted bound from the fitted guide                  (a lower bound)
smc        tempered sequential Monte Carlo, fitted guide → posterior        consistent
=========  ==============================================================  =========
"""

from bayesstruct.evidence.base import (
    EvidenceEstimator,
    EvidenceResult,
    get_estimator,
    list_estimators,
    log_evidence,
    register_estimator,
)
from bayesstruct.evidence.density import ModelDensity
from bayesstruct.evidence.exact import Exact, GammaPrecisions, LinearGaussian, NormalGamma
from bayesstruct.evidence.laplace import Laplace, LaplaceFit, laplace_fit
from bayesstruct.evidence.smc import SMC
from bayesstruct.evidence.variational import ELBO, IWAE, Guide, fit_gaussian_guide

__all__ = [
    "EvidenceEstimator",
    "EvidenceResult",
    "get_estimator",
    "list_estimators",
    "log_evidence",
    "register_estimator",
    "ModelDensity",
    "Exact",
    "LinearGaussian",
    "NormalGamma",
    "GammaPrecisions",
    "Laplace",
    "LaplaceFit",
    "laplace_fit",
    "SMC",
    "ELBO",
    "IWAE",
    "Guide",
    "fit_gaussian_guide",
]
