"""A small L-BFGS for deterministic objectives in float64.

``torch.optim`` imports ``torch._dynamo`` on first use (about 3 s per process on the
2-core reference machine), which dominates short fits run in fresh worker processes;
this minimiser has no such cost. Two-loop recursion (Nocedal & Wright, *Numerical
Optimization*, alg. 7.4) with a backtracking Armijo line search.
"""

from __future__ import annotations

import math
from typing import Callable

import torch


def value_and_grad(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> tuple[float, torch.Tensor]:
    x = x.detach().requires_grad_(True)
    val = f(x)
    (g,) = torch.autograd.grad(val, x)
    return float(val.detach()), g.detach()


def minimize_lbfgs(f: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, *, max_iter: int = 500,
                   gtol: float = 1e-8, history: int = 20,
                   max_step: float = math.inf) -> tuple[torch.Tensor, float, torch.Tensor, int, bool]:
    """Minimise ``f`` from ``x0``; returns ``(x, f(x), grad, iterations, converged)``.

    ``max_step`` caps the max-norm of each step (a trust region for objectives with
    flat plateaus that a long quasi-Newton step could jump onto, e.g. the evidence as
    ``log α → ∞``).

    Converged means the gradient max-norm fell below ``gtol`` (or no descent was
    possible at machine precision and it is below ``√gtol``). A trial point of the line
    search where ``f`` or its gradient is not finite, or where evaluating ``f`` raises
    :class:`torch.linalg.LinAlgError` or :class:`FloatingPointError`, counts as a
    failed trial: the step is halved.
    """
    x = x0.detach().clone()
    fx, g = value_and_grad(f, x)
    if not math.isfinite(fx):
        raise FloatingPointError("objective is not finite at the starting point")
    s_hist: list[torch.Tensor] = []
    y_hist: list[torch.Tensor] = []
    for it in range(1, max_iter + 1):
        if float(g.abs().max()) < gtol:
            return x, fx, g, it - 1, True
        # two-loop recursion
        q = g.clone()
        alphas = []
        for s, y in zip(reversed(s_hist), reversed(y_hist)):
            rho = 1.0 / float(y @ s)
            a = rho * float(s @ q)
            alphas.append((a, rho))
            q -= a * y
        if s_hist:
            q *= float(s_hist[-1] @ y_hist[-1]) / float(y_hist[-1] @ y_hist[-1])
        else:
            q *= min(1.0, 1.0 / float(g.abs().sum()))
        for (a, rho), s, y in zip(reversed(alphas), s_hist, y_hist):
            b = rho * float(y @ q)
            q += (a - b) * s
        direction = -q
        slope = float(g @ direction)
        if slope >= 0:  # not a descent direction: restart from steepest descent
            s_hist.clear()
            y_hist.clear()
            direction = -g / max(1.0, float(g.abs().sum()))
            slope = float(g @ direction)
        t = min(1.0, max_step / max(float(direction.abs().max()), 1e-300))
        while True:
            x_new = x + t * direction
            try:
                f_new, g_new = value_and_grad(f, x_new)
            except (torch.linalg.LinAlgError, FloatingPointError):
                f_new, g_new = math.inf, None
            if (math.isfinite(f_new) and bool(torch.isfinite(g_new).all())
                    and f_new <= fx + 1e-4 * t * slope):
                break
            t *= 0.5
            if t < 1e-20:
                return x, fx, g, it, float(g.abs().max()) < math.sqrt(gtol)
        s, y = x_new - x, g_new - g
        if float(s @ y) > 1e-12 * float(s @ s):
            s_hist.append(s)
            y_hist.append(y)
            if len(s_hist) > history:
                s_hist.pop(0)
                y_hist.pop(0)
        x, fx, g = x_new, f_new, g_new
    return x, fx, g, max_iter, float(g.abs().max()) < gtol
