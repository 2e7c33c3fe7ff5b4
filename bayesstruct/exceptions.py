"""Exceptions raised by bayesstruct.

Every error a user can cause derives from :class:`BayesStructError`, so
``except BayesStructError`` catches all of them; each subclass also derives from
the builtin a Python user would expect (``ValueError``, ``KeyError``, ...).
"""

from __future__ import annotations

import warnings

__all__ = [
    "BayesStructError",
    "InvalidArgumentError",
    "UnknownNameError",
    "ModelSpecError",
    "EstimatorNotApplicableError",
    "ConstantStructureWarning",
    "ConvergenceWarning",
    "ApproximationWarning",
]


class BayesStructError(Exception):
    """Base class of every bayesstruct error."""


class InvalidArgumentError(BayesStructError, ValueError):
    """An argument has the wrong value, shape or type (the message names it)."""


class UnknownNameError(BayesStructError, KeyError):
    """A name looked up in a registry (method, family, column) does not exist."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class ModelSpecError(BayesStructError, ValueError):
    """A Pyro model cannot be used as asked (e.g. it has no observed site)."""


class EstimatorNotApplicableError(BayesStructError, TypeError):
    """An evidence estimator cannot handle this model (e.g. ``exact`` on a non-conjugate model)."""


class ConvergenceWarning(UserWarning):
    """An optimiser or sampler stopped before its convergence criterion held."""


class ApproximationWarning(UserWarning):
    """A model breaks an assumption of the approximation about to be used (e.g. an isolated posterior mode)."""


class ConstantStructureWarning(UserWarning):
    """A structure search returned a structure whose output does not depend on the input
    (no path of non-``zero`` edges from the input vertex to the output)."""


def warn_not_converged(message: str) -> None:
    """Emit a :class:`ConvergenceWarning` pointing at the caller of the estimator."""
    warnings.warn(message, ConvergenceWarning, stacklevel=3)
