"""The lecture's reference family: polynomial regression with the degree as structure.

    y_n = Σ_{m=0}^{M} w_m x_n^m + ε_n,   ε_n ~ N(0, β⁻¹),   w ~ N(0, α⁻¹ I)

(Bishop, PRML §3.4–3.5, fig. 3.14). The basis is the raw power basis of ``x`` as
given -- no silent rescaling; ``standardize=True`` maps ``x`` to zero mean and unit
variance (training-set statistics) before taking powers.

Pyro sites (public names): ``"w"`` (weights, shape ``(M+1,)``), ``"y"`` (observed,
in plate ``"data"``), and depending on ``hyper``: ``"alpha"`` and ``"beta"``
(``hyper="prior"``), ``"tau"`` (``hyper="normal-gamma"``).
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any, Iterable, Mapping

import numpy as np
import pyro
import pyro.distributions as dist
import torch

from bayesstruct._validation import as_tensor, check_gamma_pair, check_positive, check_positive_int
from bayesstruct.evidence.exact import GammaPrecisions, LinearGaussian, NormalGamma
from bayesstruct.exceptions import InvalidArgumentError, warn_not_converged
from bayesstruct.families.base import StructureFamily

__all__ = ["Hyper", "polynomial_design", "polynomial_model", "PolynomialFamily", "fit_type2_ml"]

DEFAULT_ALPHA = 5e-3
DEFAULT_BETA = 1.0 / 0.3**2


class Hyper(str, Enum):
    """How the hyperparameters ``h = (α, β)`` of the polynomial family are treated."""

    FIXED = "fixed"
    """α and β are given numbers."""
    LEARN = "learn"
    """α and β maximise the evidence p(D | α, β) per degree (type-II maximum likelihood, PRML §3.5)."""
    PRIOR = "prior"
    """α ~ Gamma, β ~ Gamma are Pyro latent sites integrated out with the weights (``exact``: 2-D quadrature)."""
    NORMAL_GAMMA = "normal-gamma"
    """Conjugate unknown noise: τ ~ Gamma(a0, b0), w | τ ~ N(0, (λτ)⁻¹ I); exact evidence is Student-t."""


def _check_finite(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v):
        raise InvalidArgumentError(f"`{name}` must be a finite number; got {value!r}")
    return v


def polynomial_design(x: torch.Tensor, degree: int, *, x_loc: float = 0.0, x_scale: float = 1.0) -> torch.Tensor:
    """Design matrix ``Φ`` of shape ``(N, degree + 1)`` with ``Φ[n, m] = ((x_n − x_loc)/x_scale)^m``.

    Parameters
    ----------
    x : Tensor, array or list ``(N,)``
    degree : int
    x_loc, x_scale : float

    Returns
    -------
    Tensor ``(N, degree + 1)``, of dtype ``torch.promote_types(x.dtype, torch.get_default_dtype())``
    for a floating ``x`` (a float64 ``x`` stays float64 whatever the default dtype; a
    float32 ``x`` follows the default) and of the default dtype for an integer ``x`` or a list.
    """
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or degree < 0:
        raise InvalidArgumentError(f"`degree` must be a non-negative integer; got {degree!r}")
    degree = int(degree)
    x = torch.as_tensor(x)
    dtype = torch.get_default_dtype()
    x = x.to(torch.promote_types(x.dtype, dtype) if x.is_floating_point() else dtype)
    if x.dim() != 1:
        raise InvalidArgumentError(f"`x` must be 1-D for the polynomial family; got shape {tuple(x.shape)}")
    if not torch.is_tensor(x_loc):
        _check_finite(x_loc, "x_loc")
    if not torch.is_tensor(x_scale):
        check_positive(x_scale, "x_scale")
    u = (x - x_loc) / x_scale
    return u.unsqueeze(-1) ** torch.arange(degree + 1, dtype=u.dtype)


#: options of :func:`polynomial_model` beyond the data, ``degree`` and ``hyper``
_MODEL_OPTIONS = ("alpha", "beta", "x_loc", "x_scale", "alpha_prior", "beta_prior", "tau_prior", "lam")


def _check_hyper(hyper: Any) -> Hyper:
    try:
        return Hyper(hyper)
    except ValueError:
        raise InvalidArgumentError(f"`hyper` must be one of {[h.value for h in Hyper]}; got {hyper!r}") from None


#: the options that only one treatment of the hyperparameters reads (any other ignores them)
_OPTIONS_OF = {"alpha_prior": Hyper.PRIOR, "beta_prior": Hyper.PRIOR, "tau_prior": Hyper.NORMAL_GAMMA,
               "lam": Hyper.NORMAL_GAMMA}


def _check_model_options(hyper: Hyper, options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the keyword options of :func:`polynomial_model`; each error names the option.

    An option the chosen ``hyper`` does not read is refused rather than silently ignored.
    """
    unknown = sorted(set(options) - set(_MODEL_OPTIONS))
    if unknown:
        raise InvalidArgumentError(
            f"unknown option(s) {unknown} of the polynomial family; valid options are {list(_MODEL_OPTIONS)}"
        )
    for name, owner in _OPTIONS_OF.items():
        if name in options and hyper is not owner:
            raise InvalidArgumentError(f"`{name}` applies to hyper={owner.value!r} only; with hyper={hyper.value!r} "
                                       "it would be ignored")
    out = dict(options)
    for name in ("alpha", "beta"):
        if name in out and not torch.is_tensor(out[name]):
            out[name] = check_positive(out[name], name)
    if "x_scale" in out:
        out["x_scale"] = check_positive(out["x_scale"], "x_scale")
    if "x_loc" in out:
        out["x_loc"] = _check_finite(out["x_loc"], "x_loc")
    for name in ("alpha_prior", "beta_prior", "tau_prior"):
        if name in out:
            out[name] = check_gamma_pair(out[name], name)
    if out.get("lam") is not None:
        out["lam"] = check_positive(out["lam"], "lam")
    return out


def polynomial_model(x: torch.Tensor, y: torch.Tensor | None = None, *, degree: int, hyper: str = "fixed",
                     alpha: float = DEFAULT_ALPHA, beta: float = DEFAULT_BETA, x_loc: float = 0.0, x_scale: float = 1.0,
                     alpha_prior: tuple[float, float] = (1.0, 1.0), beta_prior: tuple[float, float] = (2.0, 0.2),
                     tau_prior: tuple[float, float] = (2.0, 0.2), lam: float | None = None) -> torch.Tensor:
    """Pyro model of a degree-``degree`` polynomial regression (vectorisable over particles).

    Parameters
    ----------
    x : Tensor ``(N,)``; y : Tensor ``(N,)`` or None
    degree : int
        The structure ``M``.
    hyper : {"fixed", "learn", "prior", "normal-gamma"}
        See :class:`Hyper`. ``"learn"`` behaves as ``"fixed"`` here; the family fits α, β.
    alpha, beta : float
        Weight and noise precisions (``fixed``/``learn``).
    alpha_prior, beta_prior : (shape, rate)
        Gamma priors of α and β for ``hyper="prior"``.
    tau_prior : (shape, rate); lam : float
        ``τ ~ Gamma(*tau_prior)``, ``w | τ ~ N(0, (lam τ)⁻¹ I)`` for ``"normal-gamma"``;
        ``lam`` defaults to ``alpha / beta`` so the prior matches the fixed one at τ = β.
    """
    hyper = _check_hyper(hyper)
    if hyper is Hyper.PRIOR:
        alpha_prior, beta_prior = check_gamma_pair(alpha_prior, "alpha_prior"), check_gamma_pair(beta_prior, "beta_prior")
    elif hyper is Hyper.NORMAL_GAMMA:
        tau_prior = check_gamma_pair(tau_prior, "tau_prior")
        lam = None if lam is None else check_positive(lam, "lam")
    if hyper is not Hyper.PRIOR:
        for value, name in ((alpha, "alpha"), (beta, "beta")):
            if not torch.is_tensor(value):
                check_positive(value, name)
    Phi = polynomial_design(x, degree, x_loc=x_loc, x_scale=x_scale)
    M = degree + 1
    zeros = Phi.new_zeros(M)
    if hyper is Hyper.PRIOR:
        alpha = pyro.sample("alpha", dist.Gamma(*(Phi.new_tensor(v) for v in alpha_prior)))
        beta = pyro.sample("beta", dist.Gamma(*(Phi.new_tensor(v) for v in beta_prior)))
        w_scale = alpha.unsqueeze(-1).rsqrt()
        noise_scale = beta.rsqrt()
    elif hyper is Hyper.NORMAL_GAMMA:
        tau = pyro.sample("tau", dist.Gamma(*(Phi.new_tensor(v) for v in tau_prior)))
        lam_value = alpha / beta if lam is None else lam
        w_scale = (lam_value * tau.unsqueeze(-1)).rsqrt()
        noise_scale = tau.rsqrt()
    else:
        w_scale = Phi.new_tensor(alpha).rsqrt()
        noise_scale = Phi.new_tensor(beta).rsqrt()
    w = pyro.sample("w", dist.Normal(zeros, w_scale).to_event(1))
    mean = (w * Phi).sum(-1)
    with pyro.plate("data", Phi.shape[0]):
        return pyro.sample("y", dist.Normal(mean, noise_scale), obs=y)


def _polynomial_conjugate_form(x: torch.Tensor, y: torch.Tensor | None, *, degree: int, hyper: str = "fixed",
                               alpha: float = DEFAULT_ALPHA, beta: float = DEFAULT_BETA, x_loc: float = 0.0,
                               x_scale: float = 1.0, tau_prior: tuple[float, float] = (2.0, 0.2),
                               alpha_prior: tuple[float, float] = (1.0, 1.0), beta_prior: tuple[float, float] = (2.0, 0.2),
                               lam: float | None = None) -> LinearGaussian | NormalGamma | None:
    hyper = _check_hyper(hyper)
    if y is None:
        return None
    if hyper is Hyper.PRIOR:
        alpha_prior, beta_prior = check_gamma_pair(alpha_prior, "alpha_prior"), check_gamma_pair(beta_prior, "beta_prior")
    elif hyper is Hyper.NORMAL_GAMMA:
        tau_prior = check_gamma_pair(tau_prior, "tau_prior")
        lam = None if lam is None else check_positive(lam, "lam")
    as_tensor(x, "x"), as_tensor(y, "y")  # NaN/inf named as the user passed them, not as the design
    Phi = polynomial_design(x, degree, x_loc=x_loc, x_scale=x_scale)
    if not bool(torch.isfinite(Phi).all()):
        raise InvalidArgumentError(
            f"the power basis of `x` overflows at degree {degree} (max |x| = {float(torch.as_tensor(x).abs().max()):.3g}); "
            "standardise x (standardize=True, or x_loc/x_scale) or lower the degree"
        )
    if hyper is Hyper.PRIOR:
        return GammaPrecisions(Phi, y, tuple(alpha_prior), tuple(beta_prior))
    if hyper is Hyper.NORMAL_GAMMA:
        return NormalGamma(Phi, y, alpha / beta if lam is None else lam, *tau_prior)
    return LinearGaussian(Phi, y, alpha, beta)


polynomial_model.conjugate_form = _polynomial_conjugate_form


def _check_type2_ml_identifiable(Phi: torch.Tensor, y: torch.Tensor) -> None:
    """Refuse data on which ``p(y | α, β)`` has no maximum (type-II ML would diverge).

    With ``r = rank(Φ)`` (column-scaled SVD, round-off tolerance), the evidence is
    unbounded as ``β → ∞`` exactly when ``r < N`` and ``y`` lies in the span of ``Φ``
    (``y = 0``, constant ``y``, ``N`` points fitted exactly): then ``y ~ N(0, β⁻¹I + α⁻¹ΦΦᵀ)``
    concentrates on that span and its density at ``y`` grows without bound. One data
    point gives one number for two precisions: the maximum is a whole curve
    ``β⁻¹ + α⁻¹‖φ‖² = y²`` (or, for ``y = 0``, again unbounded).
    """
    N, M = Phi.shape
    fix = "use hyper='fixed' (given α, β) or hyper='prior' (Gamma priors on α, β) instead of hyper='learn'"
    if N == 1:
        raise InvalidArgumentError(
            f"`y` has a single data point: type-II ML (hyper='learn') cannot determine the two precisions α and β "
            f"from one number -- the evidence has no unique maximum; {fix}"
        )
    y_norm = float(y.norm())
    if y_norm == 0:
        raise InvalidArgumentError(
            f"`y` is zero everywhere: the evidence p(y | α, β) grows without bound as α, β → ∞, so type-II ML "
            f"(hyper='learn') has no maximum; {fix}"
        )
    d = Phi.norm(dim=0)
    U, s, _ = torch.linalg.svd(Phi / torch.where(d > 0, d, torch.ones_like(d)), full_matrices=False)
    eps = torch.finfo(torch.float64).eps
    rank = int((s > s.max() * max(N, M) * eps).sum()) if float(s.max()) > 0 else 0
    if rank >= N:
        return
    Ur = U[:, :rank]
    resid = float((y - Ur @ (Ur.T @ y)).norm())
    if resid <= 1e3 * max(N, M) * eps * y_norm:
        cause = ("`y` is constant" if float((y - y.mean()).abs().max()) <= 1e3 * N * eps * y_norm
                 else f"`y` is fitted exactly by the {M}-column basis (rank {rank} < N = {N})")
        raise InvalidArgumentError(
            f"{cause}: the noise precision β → ∞ makes the evidence p(y | α, β) grow without bound, so type-II "
            f"ML (hyper='learn') has no maximum; {fix}"
        )


def fit_type2_ml(design: torch.Tensor, y: torch.Tensor, *, alpha: float = DEFAULT_ALPHA, beta: float = DEFAULT_BETA,
                 max_iter: int = 200) -> tuple[float, float]:
    """Type-II maximum likelihood: ``(α, β) = argmax log p(y | Φ, α, β)`` (PRML §3.5.2).

    Maximises the closed-form evidence (eq. 3.86, :class:`LinearGaussian`) over ``log α``
    and ``log β`` with L-BFGS from ``(alpha, beta)``, each step at most 2 in either
    coordinate (the evidence is flat as ``α → ∞``, a plateau a long step could land on);
    the fixed point of MacKay's re-estimation equations (3.92, 3.95) is the same point.
    A trial point where the evidence is not finite (e.g. ``β`` overflowing) makes the
    line search back off.

    Parameters
    ----------
    design : Tensor ``(N, M)``
        Φ.
    y : Tensor ``(N,)``
    alpha, beta : float
        Starting point.
    max_iter : int
        L-BFGS iterations.

    Returns
    -------
    (alpha, beta) : floats

    Raises
    ------
    InvalidArgumentError
        When no maximum exists: a single data point, ``y`` zero or constant, or ``y`` in
        the span of ``Φ`` with fewer columns than points (the evidence is unbounded in β).

    Warns
    -----
    ConvergenceWarning
        When L-BFGS stops before its gradient tolerance holds (the last iterate is returned).
    """
    from bayesstruct.evidence._optim import minimize_lbfgs
    from bayesstruct.evidence.exact import _check_design

    alpha, beta = check_positive(alpha, "alpha"), check_positive(beta, "beta")
    max_iter = check_positive_int(max_iter, "max_iter")
    design, y = _check_design(design, y)
    _check_type2_ml_identifiable(design, y)
    log_h0 = torch.tensor([float(alpha), float(beta)], dtype=torch.float64).log()

    def objective(log_h: torch.Tensor) -> torch.Tensor:
        if not bool(torch.isfinite(log_h).all()) or float(log_h.detach().abs().max()) > 700.0:
            return log_h.sum() * math.nan  # exp() would overflow: not finite, so the line search backs off
        return -LinearGaussian(design, y, log_h[0].exp(), log_h[1].exp()).log_evidence(check=False)

    # the raw power basis limits the attainable gradient to ~1e-7 (round-off); ask for 1e-6
    log_h, f_min, grad, iterations, converged = minimize_lbfgs(objective, log_h0, max_iter=max_iter, gtol=1e-6,
                                                              max_step=2.0)
    a, b = log_h.detach().exp().tolist()
    if not converged:
        warn_not_converged(
            f"type-II ML (hyper='learn') did not converge in {iterations} L-BFGS iterations (max |gradient| "
            f"{float(grad.abs().max()):.2g} in log α, log β; α = {a:.4g}, β = {b:.4g}); the last iterate is used. "
            "Increase `max_iter` or standardise x (standardize=True)."
        )
    return a, b


class PolynomialFamily(StructureFamily):
    """Polynomial regression with the degree as structure (the lecture's reference example).

    Parameters
    ----------
    degrees : iterable of int
        The structure space, e.g. ``range(10)``.
    hyper : {"fixed", "learn", "prior", "normal-gamma"}
        Treatment of the hyperparameters (:class:`Hyper`).
    alpha, beta : float, optional
        Weight and noise precisions (or the starting point of type-II ML); under
        ``"normal-gamma"`` they set the default ``lam = alpha / beta``. Defaults
        ``DEFAULT_ALPHA``, ``DEFAULT_BETA``; refused under ``"prior"``, which integrates them out.
    standardize : bool
        Standardise ``x`` with its training mean and standard deviation before the power basis.
    **model_kwargs
        Further options of :func:`polynomial_model` (``alpha_prior``, ``beta_prior``, ``tau_prior``, ``lam``).

    Examples
    --------
    >>> from bayesstruct.datasets import sinusoid
    >>> x, y = sinusoid(n=20, noise=0.3, seed=0)
    >>> fam = PolynomialFamily(range(4))
    >>> round(fam.log_evidence(x, y, {"degree": 3}, method="exact").log_evidence, 3)  # doctest: +SKIP
    """

    def __init__(self, degrees: Iterable[int] = range(10), *, hyper: str = "fixed", alpha: float | None = None,
                 beta: float | None = None, standardize: bool = False, **model_kwargs: Any) -> None:
        try:
            degrees = list(degrees)
        except TypeError:
            raise InvalidArgumentError(f"`degrees` must be an iterable of non-negative integers; got {degrees!r}") from None
        if not degrees:
            raise InvalidArgumentError("`degrees` is empty; give at least one degree, e.g. range(10)")
        for d in degrees:
            if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0:
                raise InvalidArgumentError(f"`degrees` must contain non-negative integers; got {d!r}")
        degrees = [int(d) for d in degrees]
        repeated = sorted({d for d in degrees if degrees.count(d) > 1})
        if repeated:
            raise InvalidArgumentError(f"`degrees` lists degree(s) {repeated} more than once; give each degree once")
        hyper = _check_hyper(hyper)
        for value, name in ((alpha, "alpha"), (beta, "beta")):
            if value is not None and hyper is Hyper.PRIOR:
                raise InvalidArgumentError(f"`{name}` is integrated out under hyper='prior' (its Gamma prior is "
                                           f"`{name}_prior`); drop `{name}`, or use hyper='fixed' or 'learn'")
        alpha = DEFAULT_ALPHA if alpha is None else check_positive(alpha, "alpha")
        beta = DEFAULT_BETA if beta is None else check_positive(beta, "beta")
        if not isinstance(standardize, (bool, np.bool_)):
            raise InvalidArgumentError(f"`standardize` must be True or False; got {standardize!r}")
        model_kwargs = _check_model_options(hyper, model_kwargs)
        self.hyper = hyper
        self.standardize = bool(standardize)
        super().__init__(polynomial_model, {"degree": degrees}, name="polynomial",
                         model_kwargs=dict(model_kwargs, hyper=hyper.value, alpha=alpha, beta=beta))

    def hyperparameters(self, resolved: Mapping[str, Any]) -> dict[str, Any]:
        keys = {Hyper.FIXED: ("alpha", "beta"), Hyper.LEARN: ("alpha", "beta"),
                Hyper.PRIOR: ("alpha_prior", "beta_prior"), Hyper.NORMAL_GAMMA: ("tau_prior", "lam")}[self.hyper]
        out = {"hyper": self.hyper.value}
        for k in keys:
            if k == "lam":
                out[k] = resolved.get("lam") or resolved["alpha"] / resolved["beta"]
            else:
                out[k] = resolved.get(k, polynomial_model.__kwdefaults__[k])
        return out

    def check_data(self, x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As the base family; with ``standardize=True`` a constant ``x`` is refused (no scale to divide by)."""
        x, y = super().check_data(x, y)
        if self.standardize and x.numel() > 1 and not float(x.std()) > 0:
            raise InvalidArgumentError(f"`x` is constant ({float(x.reshape(-1)[0]):g} everywhere): standardize=True "
                                       "divides by its standard deviation, and no degree can be told apart on it")
        return x, y

    def resolve(self, x: torch.Tensor, y: torch.Tensor, structure: Mapping[str, Any]) -> dict[str, Any]:
        kwargs = dict(self.model_kwargs)
        if self.standardize:
            x_scale = float(x.std()) if x.numel() > 1 else 1.0
            kwargs.update(x_loc=float(x.mean()), x_scale=x_scale if x_scale > 0 else 1.0)
        if self.hyper is Hyper.LEARN:
            Phi = polynomial_design(x, structure["degree"], x_loc=kwargs.get("x_loc", 0.0), x_scale=kwargs.get("x_scale", 1.0))
            kwargs["alpha"], kwargs["beta"] = fit_type2_ml(Phi, y, alpha=kwargs["alpha"], beta=kwargs["beta"])
        return kwargs
