"""Laplace's method: the MAP point and the Hessian of the log joint there.

    log p(D) ≈ log p(D, z*) + (D/2) log 2π − ½ log det H,   H = −∇² log p(D, z)|_{z*}

(MacKay 1992; Bishop, PRML §4.4). It is exact when the posterior in the
unconstrained coordinates is Gaussian -- e.g. a linear-Gaussian model with fixed
hyperparameters -- which makes it a sanity anchor for the other estimators. The MAP
point and Cholesky factor also seed the variational and SMC estimators.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from bayesstruct.evidence.base import EvidenceEstimator, register_estimator
from bayesstruct.evidence.density import ModelDensity
from bayesstruct.exceptions import BayesStructError, warn_not_converged

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


def _value_grad(f: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor) -> tuple[float, torch.Tensor]:
    z = z.detach().requires_grad_(True)
    val = f(z)
    (g,) = torch.autograd.grad(val, z)
    return val.item(), g


def laplace_fit(density: ModelDensity, *, init: torch.Tensor | None = None, max_iter: int = 500, tol: float = 1e-9) -> LaplaceFit:
    """Find the MAP point of ``density`` and the Hessian there.

    L-BFGS (strong-Wolfe line search) from the prior median, then damped Newton steps
    until the Newton decrement ``g^T H^{-1} g`` falls below ``tol`` -- one Newton step
    is exact for a quadratic log joint, so Gaussian posteriors end at machine precision.
    """
    neg = lambda z: -density(z.unsqueeze(0))[0]  # noqa: E731
    z = (density.initial_point() if init is None else init).detach().clone()
    if density.dim == 0:
        raise BayesStructError("the model has no latent variables: its evidence is its likelihood")
    # L-BFGS phase
    z.requires_grad_(True)
    opt = torch.optim.LBFGS([z], lr=1.0, max_iter=max_iter, tolerance_grad=1e-10, tolerance_change=1e-14,
                            history_size=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = neg(z)
        loss.backward()
        return loss

    if not torch.isfinite(neg(z.detach())):
        raise BayesStructError("the log joint is not finite at the prior median; check the model's supports")
    opt.step(closure)
    lbfgs_iters = opt.state[opt._params[0]].get("n_iter", 0)
    z = z.detach()
    # Newton polish with Levenberg damping when H is not positive definite
    converged = False
    iterations = 0
    value, g = _value_grad(neg, z)
    for iterations in range(1, 51):
        H = torch.autograd.functional.hessian(neg, z)
        H = 0.5 * (H + H.T)
        damping = 0.0
        while True:
            L, info = torch.linalg.cholesky_ex(H + damping * torch.eye(len(z), dtype=z.dtype))
            if info == 0:
                break
            damping = max(1e-8, 10 * damping)
        step = torch.cholesky_solve(g.unsqueeze(-1), L).squeeze(-1)
        decrement = float(g @ step)
        if decrement < tol and damping == 0.0:
            converged = True
            break
        t = 1.0
        while t > 1e-10:
            new_value, new_g = _value_grad(neg, z - t * step)
            if math.isfinite(new_value) and new_value <= value + 1e-4 * t * (-decrement):
                break
            t *= 0.5
        z = z - t * step
        value, g = new_value, new_g
    H = torch.autograd.functional.hessian(neg, z)
    H = 0.5 * (H + H.T)
    L, info = torch.linalg.cholesky_ex(H)
    if info != 0:
        raise BayesStructError(
            "the Hessian of -log p(D, z) at the mode is not positive definite: the posterior is improper "
            "or the mode was not found; Laplace's method does not apply"
        )
    value, g = _value_grad(neg, z)
    return LaplaceFit(z, -value, H.detach(), L.detach(), float(g.norm()), int(lbfgs_iters) + iterations, converged)


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
        self.num_samples = num_samples

    def estimate(self, model: Callable, args: tuple, kwargs: dict) -> dict[str, Any]:
        density = ModelDensity(model, *args, **kwargs)
        fit = laplace_fit(density)
        if not fit.converged:
            warn_not_converged(f"laplace: Newton iterations stopped with gradient norm {fit.grad_norm:.2e}")
        u = torch.randn(self.num_samples, density.dim)
        z = fit.z_map + u @ fit.covariance_factor.T
        return {
            "log_evidence": fit.log_evidence,
            "stderr": None,
            "diagnostics": {"grad_norm": fit.grad_norm, "iterations": fit.iterations, "converged": fit.converged,
                            "log_joint_at_map": fit.log_joint},
            **self._posterior_outputs(density, z, 1),
        }
