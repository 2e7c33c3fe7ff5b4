"""Closed-form evidence of conjugate Gaussian linear models.

Two conjugate forms cover the lecture's polynomial example and any linear-in-the-
weights model ``y = Φ w + ε``:

* :class:`LinearGaussian` -- known noise precision β, prior ``w ~ N(0, α⁻¹ I)``:

      log p(y) = (M/2) log α + (N/2) log β − E(m_N) − ½ log|A| − (N/2) log 2π,
      A = α I + β ΦᵀΦ,  m_N = β A⁻¹ Φᵀ y,  E(m) = (β/2)‖y − Φm‖² + (α/2) mᵀm

  (Bishop, PRML eq. 3.86).
* :class:`NormalGamma` -- unknown noise: ``τ ~ Gamma(a₀, b₀)`` (rate b₀),
  ``w | τ ~ N(0, (λτ)⁻¹ I)``, ``y | w, τ ~ N(Φw, τ⁻¹ I)``. The marginal of ``y`` is a
  multivariate Student-t with 2a₀ degrees of freedom; with ``A = λI + ΦᵀΦ``,
  ``m = A⁻¹Φᵀy``, ``a_N = a₀ + N/2``, ``b_N = b₀ + ½(yᵀy − mᵀA m)``:

      log p(y) = −(N/2) log 2π + (M/2) log λ − ½ log|A| + a₀ log b₀ − a_N log b_N
                 + log Γ(a_N) − log Γ(a₀)

  (e.g. Murphy, *Conjugate Bayesian analysis of the Gaussian distribution*, 2007, §9).

The ``exact`` estimator applies to a model that declares one of these forms through a
``conjugate_form(*args, **kwargs)`` attribute (the polynomial family does), and to any
other Pyro model whose log joint is verified to be *quadratic* in its latent variables
(every linear-Gaussian model with fixed hyperparameters): then

    log p(D) = c + ½ bᵀH⁻¹b + (D/2) log 2π − ½ log|H|,   log p(D, z) = c + bᵀz − ½ zᵀHz,

the Gaussian integral in closed form, with ``c``, ``b``, ``H`` read off at ``z = 0`` and the
quadratic form checked at random points, against a round-off tolerance, before it is trusted.

Both conjugate forms are evaluated by a Householder QR of the column-scaled stacked matrix
``[√β Φ; √α I]`` (never forming ``ΦᵀΦ``), so raw power bases with ``cond(A)`` up to ~1e25
stay accurate to ~1e-9 nats; a design too ill-conditioned for float64 warns or raises
:class:`~bayesstruct.exceptions.EstimatorNotApplicableError` instead of returning a wrong
number.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch

from bayesstruct._validation import check_gamma_pair, check_positive, check_positive_int
from bayesstruct.evidence.base import EvidenceEstimator, register_estimator
from bayesstruct.evidence.density import ModelDensity
from bayesstruct.exceptions import ApproximationWarning, EstimatorNotApplicableError, InvalidArgumentError

__all__ = ["LinearGaussian", "NormalGamma", "GammaPrecisions", "Exact", "gaussian_integral"]


def _check_design(design: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    design = torch.as_tensor(design, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    if design.dim() != 2 or y.dim() != 1 or design.shape[0] != y.shape[0]:
        raise InvalidArgumentError(
            f"`design` must be (N, M) and `y` (N,); got {tuple(design.shape)} and {tuple(y.shape)}"
        )
    for t, name in ((design, "design"), (y, "y")):
        if not bool(torch.isfinite(t).all()):
            raise InvalidArgumentError(
                f"`{name}` contains {int((~torch.isfinite(t)).sum())} NaN or infinite value(s); remove or impute them first"
            )
    return design, y


def _check_precision(value: Any, name: str) -> Any:
    """A precision > 0; a tensor that carries a gradient (type-II ML's iterate) passes unchecked."""
    if torch.is_tensor(value) and value.requires_grad:
        return value
    if torch.is_tensor(value) and value.numel() != 1:
        raise InvalidArgumentError(f"`{name}` must be a single number > 0; got a tensor of shape {tuple(value.shape)}")
    return check_positive(value, name)


#: round-off bound of the QR route below: ``cond(R̃) · eps`` above these warns / refuses
_COND_WARN = 1e-6
_COND_REFUSE = 1e-2


def _ridge(Phi: torch.Tensor, y: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, *,
           check: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(m_N, E(m_N), log|A|, R̃, d)`` for ``A = αI + βΦᵀΦ`` without forming ``ΦᵀΦ``.

    With the column norms ``d_j = ‖Φ_{:,j}‖`` and ``D = diag(d)``, the stacked matrix
    ``B̃ = [√β Φ D⁻¹; √α D⁻¹]`` ``(N+M, M)`` has ``B̃ᵀB̃ = D⁻¹ A D⁻¹``; its Householder
    QR ``B̃ = Q R̃`` gives ``log|A| = 2 Σ log|R̃_jj| + 2 Σ log d_j``, the ridge solution
    ``m_N = D⁻¹ R̃⁻¹ Qᵀ [√β y; 0]`` and ``2E(m_N) = ‖[√β y; 0] − B̃ D m_N‖²``. Householder
    QR is column-wise backward stable, so the error is governed by ``cond(R̃)`` (the
    square root of the column-equilibrated ``cond(A)``), not by ``cond(A)`` itself;
    ``cond(R̃) · eps`` bounds the error in nats up to a small factor (measured against
    80-digit references on raw power bases). ``check=True`` warns above
    ``_COND_WARN`` and raises above ``_COND_REFUSE``.
    """
    N, M = Phi.shape
    d = Phi.norm(dim=0)
    d = torch.where(d > 0, d, torch.ones_like(d))
    B = torch.cat([beta.sqrt() * (Phi / d), torch.diag(alpha.sqrt() / d)], 0)
    r = torch.cat([beta.sqrt() * y, y.new_zeros(M)])
    Q, R = torch.linalg.qr(B)
    v = torch.linalg.solve_triangular(R, (Q.T @ r).unsqueeze(-1), upper=True).squeeze(-1)
    E = 0.5 * (r - B @ v).pow(2).sum()
    logdet = 2 * torch.log(torch.diagonal(R).abs()).sum() + 2 * torch.log(d).sum()
    if check:
        with torch.no_grad():
            cond = float(torch.linalg.cond(R.detach()))
        bound = cond * torch.finfo(torch.float64).eps
        if not bound <= _COND_REFUSE:
            raise EstimatorNotApplicableError(
                f"the design is too ill-conditioned for a closed-form evidence in float64: the column-scaled "
                f"A = αI + βΦᵀΦ has cond(R̃) = {cond:.2g}, so round-off may move log p(y) by ~{bound:.2g} nats. "
                "Standardise x (e.g. PolynomialFamily(..., standardize=True)) or lower the degree."
            )
        if bound > _COND_WARN:
            warnings.warn(
                f"the design is ill-conditioned (column-scaled cond(R̃) = {cond:.2g}): the closed-form evidence "
                f"may be off by ~{bound:.2g} nats of round-off. Standardise x (standardize=True) to avoid it.",
                ApproximationWarning, stacklevel=4,
            )
    return v / d, E, logdet, R, d


@dataclass(frozen=True)
class LinearGaussian:
    """``y ~ N(Φw, β⁻¹I)``, ``w ~ N(0, α⁻¹I)``; ``design`` Φ is ``(N, M)``, ``y`` is ``(N,)``.

    The evidence is PRML eq. 3.86,

        log p(y) = (M/2) log α + (N/2) log β − E(m_N) − ½ log|A| − (N/2) log 2π,

    computed by a QR factorisation of the column-scaled ``[√β Φ; √α I]`` (never forming
    ``ΦᵀΦ``, whose condition number is the square of the design's): accurate to ~1e-9
    nats on raw power bases up to ``cond(A) ≈ 1e25`` (x ∈ [0, 10], degree 11, against an
    80-digit reference). A design whose round-off bound exceeds 1e-6 nats warns
    (:class:`~bayesstruct.exceptions.ApproximationWarning`); beyond 1e-2 nats it raises
    :class:`~bayesstruct.exceptions.EstimatorNotApplicableError`.
    """

    design: torch.Tensor
    y: torch.Tensor
    alpha: float | torch.Tensor
    beta: float | torch.Tensor

    def log_evidence(self, *, check: bool = True) -> torch.Tensor:
        """PRML eq. 3.86 (differentiable in ``alpha`` and ``beta`` when they are tensors).

        ``check=False`` skips the conditioning check (type-II ML's inner iterations).
        """
        Phi, y = _check_design(self.design, self.y)
        N, M = Phi.shape
        alpha = torch.as_tensor(_check_precision(self.alpha, "alpha"), dtype=torch.float64)
        beta = torch.as_tensor(_check_precision(self.beta, "beta"), dtype=torch.float64)
        _, E, logdet, _, _ = _ridge(Phi, y, alpha, beta, check=check)
        return 0.5 * M * torch.log(alpha) + 0.5 * N * torch.log(beta) - E - 0.5 * logdet - 0.5 * N * math.log(2 * math.pi)

    def posterior(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean ``m_N`` ``(M,)`` and covariance ``S_N = A⁻¹`` ``(M, M)`` (PRML 3.53–3.54).

        ``S_N = D⁻¹ R̃⁻¹ R̃⁻ᵀ D⁻¹`` from the same QR as :meth:`log_evidence`.
        """
        Phi, y = _check_design(self.design, self.y)
        alpha = torch.as_tensor(_check_precision(self.alpha, "alpha"), dtype=torch.float64)
        beta = torch.as_tensor(_check_precision(self.beta, "beta"), dtype=torch.float64)
        m, _, _, R, d = _ridge(Phi, y, alpha, beta)
        Rinv = torch.linalg.solve_triangular(R, torch.eye(R.shape[0], dtype=torch.float64), upper=True) / d.unsqueeze(-1)
        return m, Rinv @ Rinv.T


@dataclass(frozen=True)
class NormalGamma:
    """``τ ~ Gamma(a0, b0)``, ``w | τ ~ N(0, (lam τ)⁻¹ I)``, ``y ~ N(Φw, τ⁻¹ I)``.

    The Student-t marginal of the module docstring, with ``b_N = b₀ + ½(yᵀy − mᵀAm)``
    computed as ``b₀ + ½(‖y − Φm‖² + λ‖m‖²)`` (no cancellation) and ``log|A|`` from the
    same column-scaled QR as :class:`LinearGaussian` (with ``α = λ``, ``β = 1``).
    """

    design: torch.Tensor
    y: torch.Tensor
    lam: float
    a0: float
    b0: float

    def log_evidence(self) -> torch.Tensor:
        Phi, y = _check_design(self.design, self.y)
        N, M = Phi.shape
        lam, a0, b0 = (check_positive(v, n) for v, n in ((self.lam, "lam"), (self.a0, "a0"), (self.b0, "b0")))
        one = torch.ones((), dtype=torch.float64)
        _, E, logdet, _, _ = _ridge(Phi, y, lam * one, one)
        aN = a0 + 0.5 * N
        bN = b0 + E
        return (
            -0.5 * N * math.log(2 * math.pi) + 0.5 * M * math.log(lam) - 0.5 * logdet
            + a0 * math.log(b0) - aN * torch.log(bN) + math.lgamma(aN) - math.lgamma(a0)
        )


def _gamma_log_quantiles(shape: float, rate: float, p: float) -> tuple[float, float]:
    """``log`` of the ``p`` and ``1 − p`` quantiles of ``Gamma(shape, rate)``.

    Bisection (80 halvings) on the regularised incomplete gamma functions in ``t = log x``;
    a quantile below ``e^-745`` (shape ≲ 0.04 at p = 1e-12) is returned as ``-745 − log rate``.
    """
    k = torch.tensor(float(shape), dtype=torch.float64)

    def solve(fn: Callable[[float], float], lo: float, hi: float) -> float:  # fn increasing in t, root in [lo, hi]
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if fn(mid) < 0 else (lo, mid)
        return 0.5 * (lo + hi)

    x = lambda t: torch.tensor(math.exp(t), dtype=torch.float64)  # noqa: E731
    lower = solve(lambda t: float(torch.special.gammainc(k, x(t))) - p, -745.0, math.log(shape) + 10.0)
    upper = solve(lambda t: p - float(torch.special.gammaincc(k, x(t))), math.log(shape) - 10.0,
                  math.log(shape + 60.0 + 60.0 * math.sqrt(shape)) + 1.0)
    return lower - math.log(rate), upper - math.log(rate)


@dataclass(frozen=True)
class GammaPrecisions:
    """``α ~ Gamma(*alpha_prior)``, ``β ~ Gamma(*beta_prior)`` (shape, rate), then :class:`LinearGaussian`.

    No closed form; the evidence is the 2-D integral over ``(u, v) = (log α, log β)``

        p(y) = ∫∫ p(y | α = e^u, β = e^v) p_α(e^u) e^u p_β(e^v) e^v du dv

    of the exact conditional evidence (PRML eq. 3.86), approximated by the sum over a
    ``num_points``² grid times the cell area (the trapezoid rule, as the edges are
    verified to carry < 1e-12 of the mass; for a smooth integrand it converges
    exponentially in the spacing). With the thin SVD ``Φ = U diag(s) Vᵀ`` (``r = min(N, M)``
    singular values), ``z = Uᵀy`` and ``‖y_⊥‖² = ‖y − Uz‖²``, each grid point costs
    O(r) and has no cancellation:

        yᵀC⁻¹y = β‖y_⊥‖² + Σ_i z_i² / (β⁻¹ + s_i²/α),   log|A| = Σ_i log(α + βs_i²) + (M − r) log α.

    The grid is placed as follows (``g`` the log integrand, ``T = 46`` nats):

    1. a starting box, the union of each prior's 1e-12 and 1 − 1e-12 log-quantiles and
       the likelihood's scales (log β from ``N/‖y‖²`` to ``N/‖y_⊥‖²``, log α around
       ``M/‖Φ⁺y‖²``, each widened by 10), clipped to [−700, 700];
    2. a coarse 193² pass that doubles any side whose edge is within ``T`` of the coarse
       maximum, then zooms to the bounding box of ``{g > max g − T}`` (two coarse
       cells of margin) until the box stops shrinking by half;
    3. the fine grid on that box, which is *verified*: the integrand's mass on the grid's
       edge must be below 1e-12 of the total (else the offending sides are widened, up to
       four times), and the sum over every other point (twice the spacing) must agree with
       the full sum to 1e-6 nats.

    A box that cannot be closed within [−700, 700], an edge mass that stays above
    1e-12, or a failed resolution check raises
    :class:`~bayesstruct.exceptions.EstimatorNotApplicableError` -- never a silently
    truncated value. The SVD carries an absolute round-off of ``eps · max s``, so on raw
    power bases far outside [−1, 1] this form is less accurate than :class:`LinearGaussian`'s
    QR (standardise x there).

    Parameters
    ----------
    design : Tensor ``(N, M)``; y : Tensor ``(N,)``
    alpha_prior, beta_prior : (shape, rate)
    num_points : int
        Points per axis of the fine grid (at least 16; default 1200).
    """

    design: torch.Tensor
    y: torch.Tensor
    alpha_prior: tuple[float, float]
    beta_prior: tuple[float, float]
    num_points: int = 1200

    _T = 46.0  # nats: a cell below max g − T holds < e^-46 ≈ 1e-20 of the peak cell
    _COARSE = 193
    _CAP = 700.0
    _EDGE_TOL = math.log(1e-12)
    _RES_TOL = 1e-6

    def log_evidence(self) -> torch.Tensor:
        Phi, y = _check_design(self.design, self.y)
        N, M = Phi.shape
        alpha_prior, beta_prior = check_gamma_pair(self.alpha_prior, "alpha_prior"), check_gamma_pair(self.beta_prior, "beta_prior")
        num_points = check_positive_int(self.num_points, "num_points", minimum=16)
        U, s, _ = torch.linalg.svd(Phi, full_matrices=False)
        z = U.T @ y
        stats = (s.pow(2), z.pow(2), float((y - U @ z).pow(2).sum()), N, M)
        g = lambda u, v: self._log_integrand(u, v, stats, alpha_prior, beta_prior)  # noqa: E731
        box = self._start_box(s, z, y, stats[2], M, alpha_prior, beta_prior)
        box = self._coarse_box(g, box)
        edge_mass = None
        for _ in range(5):
            u = torch.linspace(box[0], box[1], num_points, dtype=torch.float64)
            v = torch.linspace(box[2], box[3], num_points, dtype=torch.float64)
            G = g(u, v)
            total = torch.logsumexp(G.reshape(-1), 0)
            edges = [G[0], G[-1], G[:, 0], G[:, -1]]  # u low, u high, v low, v high
            edge_mass = [float(torch.logsumexp(e, 0) - total) for e in edges]
            if max(edge_mass) < self._EDGE_TOL:
                break
            wu, wv = box[1] - box[0], box[3] - box[2]
            box = [box[0] - 0.25 * wu * (edge_mass[0] >= self._EDGE_TOL), box[1] + 0.25 * wu * (edge_mass[1] >= self._EDGE_TOL),
                   box[2] - 0.25 * wv * (edge_mass[2] >= self._EDGE_TOL), box[3] + 0.25 * wv * (edge_mass[3] >= self._EDGE_TOL)]
            box = self._clip(box)
        else:
            raise EstimatorNotApplicableError(
                f"GammaPrecisions: the quadrature grid over (log α, log β) could not be closed: a fraction "
                f"{math.exp(max(edge_mass)):.2g} of the integrand's mass stays on its edge. Check `alpha_prior`, "
                f"`beta_prior` and the scale of y (rescale y), or use method='smc'."
            )
        du, dv = float(u[1] - u[0]), float(v[1] - v[0])
        value = total + math.log(du) + math.log(dv)
        half = torch.logsumexp(G[::2, ::2].reshape(-1), 0) + math.log(2 * du) + math.log(2 * dv)
        if not abs(float(half - value)) <= self._RES_TOL:
            raise EstimatorNotApplicableError(
                f"GammaPrecisions: the quadrature over (log α, log β) is not resolved: doubling the spacing moves "
                f"it by {abs(float(half - value)):.2g} nats (tolerance {self._RES_TOL:g}). Increase `num_points` "
                f"(now {num_points}) or use method='smc'."
            )
        return value

    @classmethod
    def _clip(cls, box) -> list[float]:
        """``box`` (u low, u high, v low, v high) clipped to ``[−_CAP, _CAP]``, where ``exp`` stays finite."""
        return [max(min(float(b), cls._CAP), -cls._CAP) for b in box]

    @staticmethod
    def _log_integrand(u: torch.Tensor, v: torch.Tensor, stats: tuple, alpha_prior: tuple[float, float],
                       beta_prior: tuple[float, float]) -> torch.Tensor:
        """``g(u, v) = log p(y | e^u, e^v) + log p_α(e^u) + u + log p_β(e^v) + v``, ``(len(u), len(v))``."""
        s2, z2, yperp2, N, M = stats
        r = s2.shape[0]
        log_s2 = s2.log()  # −inf for a zero singular value: log(α + β·0) = log α below
        (ka, ra), (kb, rb) = alpha_prior, beta_prior
        prior_u = ka * u - ra * u.exp() + ka * math.log(ra) - math.lgamma(ka)
        prior_v = kb * v - rb * v.exp() + kb * math.log(rb) - math.lgamma(kb)
        rows = []
        step = max(1, 4_000_000 // (len(v) * max(r, 1)))  # bounded memory: (step, len(v), r)
        for start in range(0, len(u), step):
            uc = u[start:start + step]
            uu, vv = uc[:, None, None], v[None, :, None]
            # z_i² / (β⁻¹ + s_i²/α) and log(α + βs_i²), both without overflow or cancellation
            quad = yperp2 * v.exp()[None, :] + (z2 / ((-vv).exp() + s2 * (-uu).exp())).sum(-1)
            logdet = torch.logaddexp(uu, vv + log_s2).sum(-1) + (M - r) * uc[:, None]
            log_ev = (0.5 * M * uc[:, None] + 0.5 * N * v[None, :] - 0.5 * quad - 0.5 * logdet
                      - 0.5 * N * math.log(2 * math.pi))
            rows.append(log_ev + prior_u[start:start + step, None] + prior_v[None, :])
        G = torch.cat(rows, 0)
        return torch.where(torch.isnan(G), torch.full_like(G, -math.inf), G)

    def _start_box(self, s: torch.Tensor, z: torch.Tensor, y: torch.Tensor, yperp2: float, M: int,
                   alpha_prior: tuple[float, float], beta_prior: tuple[float, float]) -> list[float]:
        """Step 1: the priors' 1e-12 … 1 − 1e-12 log-quantiles united with the likelihood's scales."""
        N = len(y)
        ua, ub = _gamma_log_quantiles(*alpha_prior, 1e-12)
        va, vb = _gamma_log_quantiles(*beta_prior, 1e-12)
        yy = float(y @ y)
        if yy > 0:
            yperp2 = max(yperp2, 1e-24 * yy)  # y in the span of Φ: β's scale comes from the prior
            va, vb = min(va, math.log(N / yy) - 10.0), max(vb, math.log(N / yperp2) + 10.0)
            keep = s > s.max() * max(N, M) * torch.finfo(torch.float64).eps
            wn2 = float((z[keep] / s[keep]).pow(2).sum()) if bool(keep.any()) else 0.0
            if wn2 > 0:
                ua, ub = min(ua, math.log(1.0 / wn2) - 10.0), max(ub, math.log(M / wn2) + 10.0)
        return self._clip((ua, ub, va, vb))

    def _coarse_box(self, g: Callable, box: list[float]) -> list[float]:
        """Step 2: widen until the coarse edges are negligible, then zoom to ``{g > max g − T}``."""
        n, T = self._COARSE, self._T

        def grid(b):
            u = torch.linspace(b[0], b[1], n, dtype=torch.float64)
            v = torch.linspace(b[2], b[3], n, dtype=torch.float64)
            G = g(u, v)
            gmax = float(G.max())
            if not math.isfinite(gmax):
                raise EstimatorNotApplicableError(
                    "GammaPrecisions: the integrand over (log α, log β) is not finite anywhere on the grid "
                    f"{[round(x, 1) for x in b]}; check the scale of y and `alpha_prior`/`beta_prior`"
                )
            return u, v, G, gmax

        for _ in range(40):
            u, v, G, gmax = grid(box)
            live = [float(e.max()) > gmax - T for e in (G[0], G[-1], G[:, 0], G[:, -1])]
            if not any(live):
                break
            wu, wv = box[1] - box[0], box[3] - box[2]
            new = [box[0] - wu * live[0], box[1] + wu * live[1], box[2] - wv * live[2], box[3] + wv * live[3]]
            new = self._clip(new)
            if new == box:
                raise EstimatorNotApplicableError(
                    "GammaPrecisions: the integrand over (log α, log β) does not decay within [−700, 700]² "
                    f"(the coarse grid {[round(x, 1) for x in box]} has mass on its edge); check `alpha_prior`, "
                    "`beta_prior` and the scale of y, or use method='smc'"
                )
            box = new
        for _ in range(20):
            iu, iv = torch.nonzero(G > gmax - T, as_tuple=True)
            du, dv = float(u[1] - u[0]), float(v[1] - v[0])
            new = [float(u[int(iu.min())]) - 2 * du, float(u[int(iu.max())]) + 2 * du,
                   float(v[int(iv.min())]) - 2 * dv, float(v[int(iv.max())]) + 2 * dv]
            new = self._clip(new)
            shrunk = (new[1] - new[0]) < 0.5 * (box[1] - box[0]) or (new[3] - new[2]) < 0.5 * (box[3] - box[2])
            box = new
            if not shrunk:
                break
            u, v, G, gmax = grid(box)
        return box


@register_estimator("exact")
class Exact(EvidenceEstimator):
    """Closed-form evidence of conjugate Gaussian linear models.

    Uses ``model.conjugate_form(*args, **kwargs)`` when the model declares it
    (a :class:`LinearGaussian`, :class:`NormalGamma` or :class:`GammaPrecisions`;
    the polynomial family does),
    otherwise the Gaussian integral of a log joint verified to be quadratic in the
    latents (:func:`gaussian_integral`). Other models raise
    :class:`~bayesstruct.exceptions.EstimatorNotApplicableError`.
    """

    accuracy_rank = 4

    def estimate(self, model: Callable, args: tuple, kwargs: dict) -> dict[str, Any]:
        form_fn = getattr(model, "conjugate_form", None)
        form = form_fn(*args, **kwargs) if callable(form_fn) else None
        if form is not None:
            return {"log_evidence": float(form.log_evidence()), "stderr": None,
                    "diagnostics": {"form": type(form).__name__}}
        density = ModelDensity(model, *args, **kwargs)
        if density.dim == 0:
            return self._likelihood_only(density)
        log_z = gaussian_integral(density)
        if log_z is None:
            raise EstimatorNotApplicableError(
                f"method 'exact' needs a conjugate Gaussian linear model; {getattr(model, '__name__', model)!r} "
                "declares no `conjugate_form` and its log joint is not quadratic in its latent variables. "
                "Use method='smc' instead (reference='prior' where the posterior may have several modes)."
            )
        return {"log_evidence": log_z, "stderr": None, "diagnostics": {"form": "quadratic log joint"}}


def _ill_conditioned(detail: str) -> EstimatorNotApplicableError:
    return EstimatorNotApplicableError(
        f"method 'exact': the log joint looks quadratic in the latent variables, but {detail}, so the Gaussian "
        "integral cannot be trusted in float64 -- the design may be ill-conditioned (e.g. a raw power basis of "
        "an x far from [-1, 1]). Standardise x (zero mean, unit variance; PolynomialFamily(..., standardize=True)) "
        "or use method='laplace' or 'smc'."
    )


def gaussian_integral(density: ModelDensity, *, num_checks: int = 4, rtol: float = 1e-9,
                      roundoff_factor: float = 100.0) -> float | None:
    """``log ∫ exp(log p(D, z)) dz`` if the log joint is quadratic in ``z``, else ``None``.

    The quadratic ``q(z) = c + bᵀz − ½ zᵀHz`` is read off at ``z = 0`` (value, gradient,
    Hessian) and checked at ``num_checks`` points ``z_k = H⁻¹b + 3 L⁻ᵀ ε_k`` (``H = LLᵀ``,
    ``ε_k ~ N(0, I)``, three posterior standard deviations out). It is accepted when

        |log p(D, z_k) − q(z_k)| ≤ rtol (|c| + 1) + roundoff_factor · eps · S_k,
        S_k = |c| + |b|ᵀ|z_k| + ½ |z_k|ᵀ|H||z_k| + |log p(D, z_k)|,

    ``S_k`` being the size of the terms that cancel when the log joint and ``q`` are
    evaluated in float64 (for an exactly quadratic model the discrepancy is below
    ``0.5 eps S_k`` on raw power bases up to degree 11 on x ∈ [0, 10]; a Student-t
    likelihood misses by ≥ 1e4 eps S_k). Then

        log p(D) = c + ½ bᵀH⁻¹b + (D/2) log 2π − ½ log|H|.

    Returns ``None`` (not quadratic) when the check fails by more than ten times its
    tolerance, when ``H`` is not positive definite beyond round-off, or when the log
    joint is not finite at 0.

    Raises
    ------
    EstimatorNotApplicableError
        When the check fails only marginally (within ten times its tolerance), ``H`` is
        positive semi-definite only up to round-off, or the column-equilibrated
        ``cond(H) · eps`` exceeds 1e-2 (warns, :class:`ApproximationWarning`, above 1e-6):
        the model may be quadratic but too ill-conditioned for float64.
    """
    from bayesstruct.evidence._optim import value_and_grad
    from bayesstruct.evidence.laplace import _hessian, equilibrated_condition

    if density.dim == 0:
        return None
    eps = torch.finfo(torch.float64).eps
    f = lambda z: density(z.unsqueeze(0))[0]  # noqa: E731
    z0 = torch.zeros(density.dim)
    c, b = value_and_grad(f, z0)
    if not math.isfinite(c):
        return None
    H = -_hessian(f, z0)
    if not bool(torch.isfinite(H).all()) or not bool(torch.isfinite(b).all()):
        return None
    h = H.diagonal()
    if not bool((h > 0).all()):
        return None
    D = h.rsqrt()
    H_eq = D[:, None] * H * D[None, :]  # unit diagonal; Cholesky's accuracy depends on cond(H_eq)
    L, info = torch.linalg.cholesky_ex(H)
    if info != 0:
        if float(torch.linalg.eigvalsh(H_eq).min()) > -1e3 * density.dim * eps:
            raise _ill_conditioned("its Hessian is positive definite only up to round-off")
        return None
    mean = torch.cholesky_solve(b.unsqueeze(-1), L).squeeze(-1)
    scale = torch.linalg.solve_triangular(L.T, torch.eye(density.dim), upper=True)
    gen = torch.Generator().manual_seed(12345)
    pts = mean + 3.0 * torch.randn(num_checks, density.dim, generator=gen) @ scale.T
    with torch.no_grad():
        actual = density(pts)
    if not bool(torch.isfinite(actual).all()):
        return None
    predicted = c + pts @ b - 0.5 * ((pts @ H) * pts).sum(-1)
    size = abs(c) + pts.abs() @ b.abs() + 0.5 * ((pts.abs() @ H.abs()) * pts.abs()).sum(-1) + actual.abs()
    tol = rtol * (abs(c) + 1.0) + roundoff_factor * eps * size
    miss = float(((actual - predicted).abs() / tol).max())
    if miss > 10.0:
        return None
    if miss > 1.0:
        raise _ill_conditioned(f"its quadratic expansion misses the log joint by {miss:.3g}× the round-off "
                               "tolerance at points three posterior standard deviations out")
    bound = equilibrated_condition(H) * eps
    if not bound <= _COND_REFUSE:
        raise _ill_conditioned(f"the equilibrated Hessian has cond · eps = {bound:.2g}")
    if bound > _COND_WARN:
        warnings.warn(f"method 'exact': the Hessian of the log joint is ill-conditioned (equilibrated cond · eps "
                      f"= {bound:.2g}); the Gaussian integral may be off by that many nats. Standardise x to avoid it.",
                      ApproximationWarning, stacklevel=3)
    logdet = 2 * torch.log(torch.diagonal(L)).sum()
    return float(c + 0.5 * b @ mean + 0.5 * density.dim * math.log(2 * math.pi) - 0.5 * logdet)
