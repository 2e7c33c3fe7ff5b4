"""Laplace's method: the MAP point and the Hessian of the log joint there.

    log p(D) ≈ log p(D, z*) + (D/2) log 2π − ½ log det H,   H = −∇² log p(D, z)|_{z*}

(MacKay 1992; Bishop, PRML §4.4). It is exact when the posterior in the
unconstrained coordinates is Gaussian -- e.g. a linear-Gaussian model with fixed
hyperparameters -- which makes it a sanity anchor for the other estimators. The MAP
point and Cholesky factor also seed the variational and SMC estimators.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch

from bayesstruct.evidence._optim import minimize_lbfgs, value_and_grad
from bayesstruct.evidence.base import EvidenceEstimator, register_estimator
from bayesstruct.evidence.density import ModelDensity
from bayesstruct._validation import check_positive, check_positive_int
from bayesstruct.exceptions import (ApproximationWarning, BayesStructError, EstimatorNotApplicableError,
                                    InvalidArgumentError, warn_not_converged)

__all__ = ["LaplaceFit", "laplace_fit", "Laplace"]


@dataclass(frozen=True)
class LaplaceFit:
    """MAP point ``z_map`` ``(D,)``, ``log p(D, z_map)``, Hessian ``(D, D)`` of −log p and its Cholesky factor."""

    z_map: torch.Tensor
    log_joint: float
    hessian: torch.Tensor
    cholesky: torch.Tensor  # lower L with H = L L^T
    grad_norm: float
    iterations: int
    converged: bool

    @property
    def log_evidence(self) -> float:
        d = self.z_map.shape[0]
        return self.log_joint + 0.5 * d * math.log(2 * math.pi) - torch.log(torch.diagonal(self.cholesky)).sum().item()

    @property
    def covariance_factor(self) -> torch.Tensor:
        """``W = L^{-T}``: ``z_map + W u`` with ``u ~ N(0, I)`` has covariance ``H^{-1}``."""
        eye = torch.eye(self.cholesky.shape[0], dtype=self.cholesky.dtype)
        return torch.linalg.solve_triangular(self.cholesky.T, eye, upper=True)


def _hessian(f: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor) -> torch.Tensor:
    try:  # one batched backward pass (vmap); some models' ops do not support it
        H = torch.autograd.functional.hessian(f, z.detach(), vectorize=True)
    except (RuntimeError, NotImplementedError):
        H = torch.autograd.functional.hessian(f, z.detach())
    return 0.5 * (H + H.T)


#: damped Newton steps at a stationary point before a Hessian that is not positive definite is reported
_MAX_STALLED = 5


def equilibrated_condition(H: torch.Tensor) -> float:
    """``cond(D H D)`` with ``D = diag(H)^(-1/2)``: the condition number of the unit-diagonal scaling of ``H``.

    It, not ``cond(H)``, governs the accuracy of a Cholesky factorisation (van der Sluis 1969),
    so ``equilibrated_condition(H) · eps`` bounds the round-off in ``½ log det H``, in nats,
    up to a small factor.
    """
    d = H.diagonal().clamp_min(torch.finfo(H.dtype).tiny).rsqrt()
    return float(torch.linalg.cond(d[:, None] * H * d[None, :]))


def _leave_saddle(neg: Callable, z: torch.Tensor, value: float, H: torch.Tensor):
    """From a stationary point with a clearly negative curvature ``lam < 0`` along ``v``, a point
    ``z ± s v`` that lowers ``neg``: ``s`` from ``1/sqrt|lam|``, halved until it does, then doubled
    while it keeps doing so (the next mode may be many such lengths away); ``None`` if none does."""
    evals, evecs = torch.linalg.eigh(0.5 * (H + H.T))
    lam = float(evals[0])
    if not lam < -1e-8 * float(evals.abs().max()):
        return None
    v = evecs[:, 0]
    for sign in (1.0, -1.0):
        s = 1.0 / math.sqrt(-lam)
        for _ in range(40):
            new_value, new_g = value_and_grad(neg, z + sign * s * v)
            if math.isfinite(new_value) and new_value < value + 0.25 * lam * s * s:  # half the predicted drop
                best = (z + sign * s * v, new_value, new_g)
                for _ in range(40):
                    s *= 2.0
                    further, further_g = value_and_grad(neg, z + sign * s * v)
                    if not (math.isfinite(further) and further < best[1]):
                        break
                    best = (z + sign * s * v, further, further_g)
                return best
            s *= 0.5
    return None


def laplace_fit(density: ModelDensity, *, init: torch.Tensor | None = None, max_iter: int = 500, tol: float = 1e-10,
                newton_dim: int = 64) -> LaplaceFit:
    """Find the MAP point of ``density`` and the Hessian of ``-log p(D, z)`` there.

    Damped Newton (Levenberg-style damping wherever the Hessian is not positive
    definite, Armijo backtracking; a saddle point is left along its most negative
    curvature) from the prior median, stopping when the Newton
    decrement ``gᵀH⁻¹g`` falls below ``tol``. One Newton step is exact for a quadratic
    log joint, so Gaussian posteriors end at machine precision. Above ``newton_dim``
    coordinates an L-BFGS phase runs first and Newton only polishes. A stationary point whose
    Hessian is still not positive definite after ``_MAX_STALLED`` damped steps (the flat
    directions of a symmetric model) is reported at once rather than after 100 D-by-D Hessians
    (``fit network --smoke --restriction simplex_vertices``: 3.6 min to 13 s to that error).
    """
    if density.dim == 0:
        raise BayesStructError("the model has no latent variables: its evidence is its likelihood")
    max_iter = check_positive_int(max_iter, "max_iter")
    tol = check_positive(tol, "tol")
    if init is not None and (not torch.is_tensor(init) or tuple(init.shape) != (density.dim,)):
        got = tuple(init.shape) if torch.is_tensor(init) else type(init).__name__
        raise InvalidArgumentError(f"`init` must be a tensor of shape ({density.dim},) (one unconstrained point); got {got}")
    neg = lambda z: -density(z.unsqueeze(0))[0]  # noqa: E731
    z = (density.initial_point() if init is None else init).detach().clone()
    value, g = value_and_grad(neg, z)
    if not math.isfinite(value):
        where = "the prior median" if init is None else "`init`"
        raise BayesStructError(f"the log joint is not finite at {where}; check the model's supports")
    iterations = 0
    if density.dim > newton_dim:  # Newton's D-by-D Hessians get dear: L-BFGS first
        z, value, g, iterations, _ = minimize_lbfgs(neg, z, max_iter=max_iter, gtol=1e-8)
    converged, stalled = False, 0
    eye = torch.eye(density.dim, dtype=z.dtype)
    for _ in range(100):
        iterations += 1
        H = _hessian(neg, z)
        if not bool(torch.isfinite(H).all()):
            raise BayesStructError(
                "the Hessian of -log p(D, z) is not finite at the current point (NaN or inf in the model's "
                "log density); check the data and the model's supports"
            )
        damping = 0.0
        while True:
            L, info = torch.linalg.cholesky_ex(H + damping * eye)
            if info == 0:
                break
            # the floor keeps a zero-diagonal Hessian from looping forever at damping 0
            damping = max(1e-6 * float(H.diagonal().abs().max()), 10 * damping, 1e-12)
        step = torch.cholesky_solve(g.unsqueeze(-1), L).squeeze(-1)
        decrement = float(g @ step)
        if damping == 0.0 and decrement < tol:
            converged = True
            break
        if decrement < tol:
            # stationary, but the Hessian is not positive definite: at a saddle (e.g. between two
            # mirror-image modes) leave along the most negative curvature; flat directions (a
            # continuous symmetry of the model) rarely turn positive definite under more damped steps
            moved = _leave_saddle(neg, z, value, H)
            if moved is not None:
                z, value, g = moved
                continue
            stalled += 1
            if stalled == _MAX_STALLED:
                break
        t = 1.0
        while t > 1e-12:
            new_value, new_g = value_and_grad(neg, z - t * step)
            if math.isfinite(new_value) and new_value <= value - 1e-4 * t * decrement:
                break
            t *= 0.5
        else:
            break
        z, value, g = z - t * step, new_value, new_g
    H = _hessian(neg, z)
    L, info = torch.linalg.cholesky_ex(H)
    if info != 0:
        raise BayesStructError(
            "the Hessian of -log p(D, z) at the mode is not positive definite: the posterior is improper "
            "or the mode was not found; Laplace's method does not apply"
        )
    return LaplaceFit(z, -value, H.detach(), L.detach(), float(g.norm()), iterations, converged)


@register_estimator("laplace")
class Laplace(EvidenceEstimator):
    """Laplace approximation of the evidence at the MAP point (exact for Gaussian posteriors).

    Parameters
    ----------
    num_samples : int
        Draws from ``N(z*, H^{-1})`` kept as posterior samples for plots.
    seed : int
        Seed for those draws.
    """

    accuracy_rank = 1

    def __init__(self, *, num_samples: int = 1000, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.num_samples = check_positive_int(num_samples, "num_samples")

    def estimate(self, model: Callable, args: tuple, kwargs: dict) -> dict[str, Any]:
        density = ModelDensity(model, *args, **kwargs)
        if density.dim == 0:
            return self._likelihood_only(density)
        from bayesstruct.evidence.exact import _COND_WARN

        fit = laplace_fit(density)
        if not fit.converged:
            eig = torch.linalg.eigvalsh(fit.hessian)
            if float(eig[0]) <= float(eig[-1]) * torch.finfo(fit.hessian.dtype).eps:
                # no mode was found, and the curvature where Newton stopped spans more than the dtype
                # resolves: there is no Gaussian to integrate (the fit still starts the elbo and smc)
                raise EstimatorNotApplicableError(
                    f"laplace: Newton's method did not converge (log joint {fit.log_joint:.4g} where it stopped) and the "
                    f"Hessian there is numerically singular (eigenvalues {float(eig[0]):.2g} to {float(eig[-1]):.2g}), "
                    "so there is no Gaussian approximation to integrate. The log joint may be unbounded (a noise scale "
                    "that constant or exactly fitted data drive to 0; the funnel of a centred hierarchical model) or "
                    "not smooth at its maximum; use method='smc'"
                )
            warn_not_converged(f"laplace: Newton iterations stopped with gradient norm {fit.grad_norm:.2e}")
        cond = equilibrated_condition(fit.hessian)
        if cond * torch.finfo(torch.float64).eps > _COND_WARN:
            warnings.warn(
                f"laplace: the Hessian at the mode is ill-conditioned (equilibrated cond = {cond:.2g}), so round-off in "
                f"the mode and in log det H may move the estimate by ~{cond * torch.finfo(torch.float64).eps:.2g} nats "
                "or more. Standardise x (e.g. PolynomialFamily(..., standardize=True))", ApproximationWarning, stacklevel=3)
        u = torch.randn(self.num_samples, density.dim)
        z = fit.z_map + u @ fit.covariance_factor.T
        return {
            "log_evidence": fit.log_evidence,
            "stderr": None,
            "diagnostics": {"grad_norm": fit.grad_norm, "iterations": fit.iterations, "converged": fit.converged,
                            "log_joint_at_map": fit.log_joint, "hessian_condition": cond},
            **self._posterior_outputs(density, z, 1),
        }
