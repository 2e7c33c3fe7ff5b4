r"""Priors over a structure vector :math:`\gamma` restricted to the simplex or the cube.

A structure parameter :math:`\gamma \in [0, 1]^K` (one per edge of a structure graph)
is restricted to one of four sets (the lecture's "structure restrictions"):

=====================  ==========================================  ==============================
restriction            set                                          prior
=====================  ==========================================  ==============================
``simplex_vertices``   one-hot vectors :math:`e_1, \dots, e_K`      :class:`OneHotCategorical`
``simplex_interior``   :math:`\{\gamma \ge 0, \sum_k \gamma_k = 1\}` :class:`GumbelSoftmax`,
                                                                    :class:`TemperedDirichlet`
``cube_vertices``      :math:`\{0, 1\}^K`                           independent Bernoulli
``cube_interior``      :math:`[0, 1]^K`                             :class:`RelaxedBernoulliCube`,
                                                                    :class:`TemperedBetaCube`
=====================  ==========================================  ==============================

The interior priors are parameterised, as in the lecture, by a location ``s`` and a
temperature :math:`\lambda_{temp} > 0`. In every family here :math:`\lambda_{temp} \to 0`
concentrates the samples on the vertices (the relaxation becomes the discrete prior)
and a large :math:`\lambda_{temp}` moves them into the interior.

Use :func:`structure_prior` to build one by name::

    >>> import pyro
    >>> from bayesstruct.priors import structure_prior
    >>> prior = structure_prior("simplex_interior", [0.5, 0.3, 0.2], temperature=0.3)
    >>> gamma = pyro.sample("gamma", prior)  # (3,), a point of the 2-simplex
    >>> tuple(gamma.shape)
    (3,)
"""

from __future__ import annotations

import contextvars
import math
from enum import Enum
from typing import Any

import pyro.distributions as dist
import torch
from torch.distributions.utils import clamp_probs

from bayesstruct._validation import check_positive
from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError

__all__ = [
    "Restriction",
    "GumbelSoftmax",
    "TemperedDirichlet",
    "RelaxedBernoulliCube",
    "TemperedBetaCube",
    "structure_prior",
]


class Restriction(str, Enum):
    """The set a structure vector :math:`\\gamma \\in [0, 1]^K` is restricted to."""

    SIMPLEX_VERTICES = "simplex_vertices"
    """One-hot vectors: exactly one of the K options is on (a Categorical choice)."""

    SIMPLEX_INTERIOR = "simplex_interior"
    """Points of the (K-1)-simplex: a soft mixture of the K options (Dirichlet, Gumbel-softmax)."""

    CUBE_VERTICES = "cube_vertices"
    """Binary vectors in {0, 1}^K: each option independently on or off (Bernoulli)."""

    CUBE_INTERIOR = "cube_interior"
    """Points of [0, 1]^K: each option independently weighted (relaxed Bernoulli, Beta)."""


# --------------------------------------------------------------------------------------
# distributions
# --------------------------------------------------------------------------------------


#: set while ``expand`` rebuilds a prior from an already validated ``(s, temperature)``
_VALIDATED = contextvars.ContextVar("bayesstruct_relaxed_validated", default=False)


class _LocationTemperature:
    """Mixin of the tempered priors: ``expand`` rebuilds the prior from ``(s, temperature)``."""

    #: the set ``s`` must lie in (used to validate it; see :func:`_check_location`)
    _restriction: Restriction

    @classmethod
    def _location(cls, s: Any, temperature: Any, *, normalize: bool,
                  validate_args: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``s`` as a tensor (normalised over the last dim on the simplex) and the temperature in its dtype.

        Both are validated (errors name ``s`` / ``temperature``) unless ``validate_args=False`` or the
        call comes from :meth:`expand`.
        """
        validate = validate_args is not False and not _VALIDATED.get()
        if validate:
            s = _check_location(s, cls._restriction, cls.__name__)
            _check_temperature(temperature)
        else:  # unchecked, but converted as the checked path does: integer weights in the default float dtype
            s = s if torch.is_tensor(s) and s.is_floating_point() else torch.as_tensor(s, dtype=torch.get_default_dtype())
        lam = torch.as_tensor(temperature, dtype=s.dtype, device=s.device)
        if validate:
            d = lam.detach()
            if not bool(torch.isfinite(d).all() and (d > 0).all()):
                raise InvalidArgumentError(
                    f"{cls.__name__}: `temperature` = {_as_float(temperature)!r} is "
                    f"{float(d)!r} in {s.dtype} (the dtype of `s`); pass a temperature representable there, "
                    f"or `s` in a wider dtype"
                )
        return (s / s.sum(-1, keepdim=True) if normalize else s), lam

    def _support_text(self) -> str:
        """The support in words, for the error of :meth:`_validate_sample`."""
        K = int(self.event_shape[-1])
        if self._restriction is Restriction.SIMPLEX_INTERIOR:
            return f"the {K - 1}-simplex (K={K}: coordinates >= 0 summing to 1 to within 1e-6)"
        return f"the cube [0, 1]^{K} (K={K}: every coordinate in [0, 1])"

    def _validate_sample(self, value: Any) -> None:
        """Torch's checks of a scored ``value`` (a tensor, shape ``(..., K)`` broadcasting with the batch
        shape, inside ``support``), raising :class:`InvalidArgumentError` that names ``value`` and the support."""
        name = f"{type(self).__name__}.log_prob"
        if not torch.is_tensor(value):
            raise InvalidArgumentError(f"{name}: `value` must be a Tensor; got {type(value).__name__}")
        event, batch = tuple(self.event_shape), tuple(self.batch_shape)
        if tuple(value.shape[value.dim() - len(event):]) != event:
            raise InvalidArgumentError(
                f"{name}: `value` must have shape (..., {', '.join(map(str, event))}) (event shape {event}); "
                f"got shape {tuple(value.shape)}"
            )
        expected = batch + event
        if any(i != 1 and j != 1 and i != j for i, j in zip(reversed(value.shape), reversed(expected))):
            raise InvalidArgumentError(
                f"{name}: `value` of shape {tuple(value.shape)} does not broadcast with the batch and event "
                f"shape {expected}"
            )
        valid = self.support.check(value)
        if not bool(valid.all()):
            bad = value[~valid]
            first = bad[0]
            where = f" (sum {float(first.sum()):.9g})" if self._restriction is Restriction.SIMPLEX_INTERIOR else ""
            raise InvalidArgumentError(
                f"{name}: `value` must lie in {self._support_text()}; got {bad.shape[0]} of "
                f"{valid.numel()} point(s) outside it, e.g. {[float(v) for v in first]}{where}"
            )

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        token = _VALIDATED.set(True)
        try:
            return type(self)(self.s.expand(batch_shape + self.event_shape), self.temperature,
                              validate_args=self._validate_args)
        finally:
            _VALIDATED.reset(token)


def _as_float(x: Any) -> float:
    """A validated scalar (number or one-element tensor) as a Python float, for a message."""
    return float(x.detach()) if torch.is_tensor(x) else float(x)


def _check_location(s: Any, restriction: Restriction, owner: str) -> torch.Tensor:
    """``s`` for a prior class constructed directly: numbers of shape ``(..., K)`` inside ``restriction``'s set.

    A zero weight is allowed on the simplex of the Gumbel-softmax, not for the Dirichlet, whose
    concentration must be > 0. It is clamped to the dtype's smallest probability (as
    ``torch.distributions`` clamps probabilities): that option is drawn with probability about
    eps, its coordinate in a draw is of order eps^(1/λ) rather than 0 (about 1e-16 at λ = 1 in
    float64, but 1e-3 at λ = 5), and ``log_prob`` is the
    K-dimensional density of that near-degenerate distribution, not a density on the face.
    """
    try:
        t = s if torch.is_tensor(s) and s.is_floating_point() else torch.as_tensor(s, dtype=torch.get_default_dtype())
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidArgumentError(f"{owner}: `s` must be an array of numbers; got {type(s).__name__} ({exc})") from None
    if t.dim() == 0 or t.shape[-1] < 1:
        raise InvalidArgumentError(f"{owner}: `s` must have shape (..., K) with K >= 1; got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise InvalidArgumentError(f"{owner}: `s` contains NaN or infinite values")
    if restriction is Restriction.SIMPLEX_INTERIOR:
        zero_ok = owner == "GumbelSoftmax"
        if bool((t < 0).any()) or (not zero_ok and bool((t == 0).any())) or bool((t.sum(-1) <= 0).any()):
            want = "non-negative weights with a positive sum" if zero_ok else "strictly positive weights"
            raise InvalidArgumentError(
                f"{owner}: `s` must be {want} along the last dimension (a point of the simplex, or weights to "
                f"normalise); got {s!r}"
            )
    else:
        closed = owner == "RelaxedBernoulliCube"
        outside = (t < 0) | (t > 1) if closed else (t <= 0) | (t >= 1)
        if bool(outside.any()):
            interval = "[0, 1]" if closed else "the open interval (0, 1)"
            raise InvalidArgumentError(f"{owner}: `s` must be probabilities in {interval}; got {s!r}")
    return t


def _open_unit_bounds(dtype: torch.dtype) -> tuple[float, float]:
    """The smallest positive normal number and the largest number below 1 in ``dtype``."""
    finfo = torch.finfo(dtype)
    return finfo.tiny, 1.0 - finfo.eps / 2


def _dirichlet_rsample(concentration: torch.Tensor) -> torch.Tensor:
    r"""One reparameterised ``Dirichlet(concentration)`` draw per row, stable for any concentration > 0.

    The naive :math:`x = G / \sum_k G_k` with :math:`G_k \sim \mathrm{Gamma}(\alpha_k, 1)` breaks
    down for small :math:`\alpha`: :math:`P(G_k < \text{tiny}) \approx \text{tiny}^{\alpha_k}`
    is near 1, every :math:`G_k` underflows to the same floor and the draw lands on the barycentre
    instead of a vertex. Here the variates are drawn in log space with the boosting identity
    (Marsaglia and Tsang 2000): for independent :math:`G' \sim \mathrm{Gamma}(\alpha + 1, 1)` and
    :math:`U \sim \mathrm{Uniform}(0, 1)`, :math:`G' U^{1/\alpha} \sim \mathrm{Gamma}(\alpha, 1)`, so

    .. math::

        \log G_k = \log G'_k - E_k / \alpha_k, \qquad E_k = -\log U_k \sim \mathrm{Exp}(1),

    and :math:`x = \mathrm{softmax}(\log G)`, which needs no :math:`G_k` to be representable.
    :math:`G'` is torch's reparameterised Gamma draw (shape :math:`\ge 1`, so it never underflows)
    and :math:`E/\alpha` is an explicit function of :math:`\alpha`, so the draw is differentiable in
    the concentration. :math:`E_k/\alpha_k` is computed as :math:`\exp(\log E_k - \log \alpha_k)`,
    capped at :math:`e^{-1}` times the largest float, so its gradient stays finite; a row whose every
    :math:`E_k/\alpha_k` passes the cap (every :math:`\alpha_k` below about 1e-38 in float32 or
    1e-308 in float64) is set to the vertex of :math:`\arg\min_k E_k/\alpha_k`, where the exact
    softmax is anyway (its entries differ by more than 1e38).
    As :math:`\alpha \to 0` the draw is vertex :math:`k` with probability
    :math:`\alpha_k / \sum_i \alpha_i` (:math:`E_k/\alpha_k` are exponentials with rates
    :math:`\alpha_k`, and the smallest one wins). Coordinates are clamped to at least the smallest
    positive normal number (as torch's ``clamp_probs`` does), so a draw stays strictly inside the
    simplex; the clamp adds at most K times that number to the sum.
    """
    dtype, device = concentration.dtype, concentration.device
    tiny = torch.finfo(dtype).tiny
    cap = math.log(torch.finfo(dtype).max) - 1.0
    boosted = torch.distributions.Gamma(concentration + 1.0, torch.ones((), dtype=dtype, device=device),
                                        validate_args=False).rsample()
    u = torch.rand(concentration.shape, dtype=dtype, device=device).clamp(min=tiny)
    log_ratio = (-u.log()).log() - concentration.log()  # log(E / alpha)
    log_gamma = boosted.log() - log_ratio.clamp(max=cap).exp()
    # a row where every E/alpha overflows is the vertex of the smallest one (no branch: no device sync)
    dead = (log_ratio > cap).all(-1, keepdim=True)
    winner = log_ratio == log_ratio.amin(-1, keepdim=True)
    vertex = torch.zeros((), dtype=dtype, device=device).expand(winner.shape).masked_fill(~winner, -math.inf)
    log_gamma = torch.where(dead, vertex, log_gamma)
    return torch.softmax(log_gamma, -1).clamp(min=tiny)


class GumbelSoftmax(_LocationTemperature, dist.RelaxedOneHotCategorical):
    r"""Gumbel-softmax (Concrete) distribution :math:`GS(s, \lambda_{temp})` on the simplex.

    A sample is :math:`\gamma = \mathrm{softmax}((\log s + g) / \lambda)` with i.i.d.
    standard Gumbel :math:`g_k`; its density on the (K-1)-simplex is (Jang et al. 2016;
    Maddison et al. 2016)

    .. math::

        p(\gamma \mid s, \lambda) = (K-1)!\, \lambda^{K-1}
            \prod_{k=1}^K \frac{s_k \gamma_k^{-\lambda-1}}{\sum_{i=1}^K s_i \gamma_i^{-\lambda}} .

    This is Pyro's ``RelaxedOneHotCategorical(temperature, probs=s)`` with the lecture's
    argument order. For every :math:`\lambda`, :math:`P(\arg\max_k \gamma_k = j) = s_j`
    (up to λ ≈ 1e5 in float32 and 1e12 in float64: beyond, draws round to the barycentre and
    ``argmax`` breaks the ties towards index 0);
    :math:`\lambda \to 0` puts the samples on the vertices (one-hot, ``Categorical(s)``),
    :math:`\lambda \to \infty` collapses them onto the barycentre :math:`(1/K, \dots, 1/K)`.
    Reparameterised (``rsample``).

    Parameters
    ----------
    s : Tensor, ``(..., K)``
        Location: positive class probabilities, normalised along the last dimension.
    temperature : float or 0-d Tensor
        :math:`\lambda_{temp} > 0`.

    References
    ----------
    Jang, Gu, Poole. Categorical reparameterization with Gumbel-softmax. arXiv:1611.01144.
    Maddison, Mnih, Teh. The Concrete distribution. arXiv:1611.00712.
    """

    _restriction = Restriction.SIMPLEX_INTERIOR

    def __init__(self, s: torch.Tensor, temperature: Any, validate_args: bool | None = None):
        self.s, temperature = self._location(s, temperature, normalize=True, validate_args=validate_args)
        super().__init__(temperature, probs=self.s, validate_args=validate_args)
        K = int(self.s.shape[-1])  # a Python int (under a jit trace, sizes are traced tensors)
        if temperature.numel() == 1 and not temperature.requires_grad:  # a constant: fold the log-normaliser
            lam = float(temperature)
            self._log_normalizer: Any = math.lgamma(K) + (K - 1) * math.log(lam)
            self._lam: Any = lam
        else:
            self._log_normalizer = math.lgamma(K) + (K - 1) * temperature.log()
            self._lam = temperature

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        r"""Closed-form Concrete log-density on the simplex (the formula above).

        .. math::

            \log p(\gamma) = \log (K-1)! + (K-1) \log\lambda
                + \sum_k (\log s_k - (\lambda+1) \log\gamma_k)
                - K \log \sum_k s_k \gamma_k^{-\lambda}

        The value of Pyro's ``RelaxedOneHotCategorical.log_prob`` (an ``ExpRelaxedCategorical``
        pushed through ``exp``, with the transform's log-Jacobian) to rounding, in 6 tensor
        operations instead of about 20 -- what an SVI step of a small network pays for. As the
        sum of a ``log_softmax``: :math:`\sum_k \log\mathrm{softmax}(\log s - \lambda \log\gamma)_k
        - \sum_k \log\gamma_k` plus the constant.
        """
        if self._validate_args:
            self._validate_sample(value)
        log_value = value.log()
        # sum_k score_k - K logsumexp(score) = sum_k log_softmax(score)_k: one fused kernel
        logits = self.base_dist.logits
        score = (torch.sub(logits, log_value, alpha=self._lam) if isinstance(self._lam, float)  # one op
                 else logits - self._lam * log_value)
        score = torch.log_softmax(score, -1)
        return (score - log_value).sum(-1) + self._log_normalizer

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        r""":math:`\mathrm{softmax}((\log s + g) / \lambda)` with standard Gumbel :math:`g` (the same draws as Pyro's).

        Each coordinate is then clamped to at least the smallest positive normal number of the dtype
        (``torch.finfo(dtype).tiny``, as torch's ``clamp_probs`` keeps draws off the boundary): at a
        small :math:`\lambda` the softmax underflows to exact zeros, where the density is not finite
        (``log_prob`` was NaN); the draw is then divided by its sum, so that it lies on the simplex
        to the rounding of one division also in float32 with thousands of options. The
        perturbed logits are shifted by their maximum before the division by :math:`\lambda` (the
        softmax is unchanged), so that no temperature overflows them.
        """
        shape = self._extended_shape(sample_shape)
        logits = self.base_dist.logits
        u = clamp_probs(torch.rand(shape, dtype=logits.dtype, device=logits.device))
        z = logits - (-u.log()).log()
        # shifted by the row maximum first, so that a tiny temperature cannot overflow (z/lam = inf -> NaN)
        x = torch.softmax((z - z.amax(-1, keepdim=True)) / self._lam, -1).clamp(min=torch.finfo(z.dtype).tiny)
        # renormalised: in float32 a softmax over thousands of options sums to 1 only within ~2e-6,
        # outside the 1e-6 of the simplex check, so log_prob refused the prior's own draws
        return x / x.sum(-1, keepdim=True)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        """:meth:`rsample` without the graph (torch's ``sample`` would exponentiate an
        ``ExpRelaxedCategorical`` draw: exact zeros, and in float32 sums off 1 by more than the
        1e-6 the simplex check allows)."""
        with torch.no_grad():
            return self.rsample(sample_shape)


class TemperedDirichlet(_LocationTemperature, dist.Dirichlet):
    r"""Dirichlet prior :math:`\mathrm{Dir}(s, \lambda_{temp})` with location and temperature.

    :math:`\mathrm{Dir}(s, \lambda) = \mathrm{Dirichlet}(\alpha)` with concentration
    :math:`\alpha = K \lambda s`, so the mean is :math:`s` and

    .. math::

        \mathrm{Var}\,\gamma_k = \frac{s_k (1 - s_k)}{K\lambda + 1}.

    :math:`\lambda \to 0` (so :math:`\alpha \to 0`) puts the mass on the vertices, vertex
    :math:`e_k` with probability :math:`s_k`; :math:`\lambda \to \infty` concentrates it at
    :math:`s`; with the uniform location :math:`s = (1/K, \dots, 1/K)`, :math:`\lambda = 1` is
    the flat Dirichlet (uniform on the simplex). (The naive choice :math:`\alpha = s/\lambda`
    has the opposite limits.) Reparameterised (``rsample``).

    Parameters
    ----------
    s : Tensor, ``(..., K)``
        Location: positive weights, normalised along the last dimension (the mean).
    temperature : float or 0-d Tensor
        :math:`\lambda_{temp} > 0`.
    """

    _restriction = Restriction.SIMPLEX_INTERIOR

    def __init__(self, s: torch.Tensor, temperature: Any, validate_args: bool | None = None):
        self.s, self.temperature = self._location(s, temperature, normalize=True, validate_args=validate_args)
        super().__init__(self.s.shape[-1] * self.temperature * self.s, validate_args=validate_args)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        r"""A reparameterised draw, correct at every :math:`\lambda > 0` (log-space Gamma variates).

        See :func:`_dirichlet_rsample`: :math:`\log G_k = \log G'_k - E_k/\alpha_k` with
        :math:`G'_k \sim \mathrm{Gamma}(\alpha_k + 1, 1)`, :math:`E_k \sim \mathrm{Exp}(1)`, then
        :math:`\gamma = \mathrm{softmax}(\log G)`, clamped to at least ``finfo.tiny``. (Torch's
        sampler normalises :math:`G` itself: at small :math:`\alpha_k` the variates underflow to a
        common floor and it returned the barycentre -- for :math:`s = (.2, .3, .5)`, 12% of the draws
        at :math:`\lambda = 10^{-3}`, 81% at :math:`10^{-4}`, all at :math:`10^{-8}`.)
        """
        return _dirichlet_rsample(self.concentration.expand(self._extended_shape(sample_shape)))



class RelaxedBernoulliCube(_LocationTemperature, dist.Independent):
    r"""Independent relaxed Bernoulli (binary Concrete) coordinates on the cube :math:`[0, 1]^K`.

    Coordinate :math:`k` is :math:`\sigma((\mathrm{logit}\, s_k + l_k) / \lambda)` with
    standard logistic :math:`l_k`; its density is (Maddison et al. 2016)

    .. math::

        p(\gamma_k) = \frac{\lambda\, a_k\, \gamma_k^{-\lambda-1} (1-\gamma_k)^{-\lambda-1}}
                           {\left(a_k \gamma_k^{-\lambda} + (1-\gamma_k)^{-\lambda}\right)^2},
        \qquad a_k = \frac{s_k}{1 - s_k},

    and ``log_prob`` sums over the K coordinates (event shape ``(K,)``). For every
    :math:`\lambda`, :math:`P(\gamma_k > 1/2) = s_k` (in floating point up to λ ≈ 1e5 in float32
    and 1e12 in float64; beyond, draws round to exactly 1/2); :math:`\lambda \to 0` gives independent
    ``Bernoulli(s)`` (the cube's vertices), :math:`\lambda \to \infty` collapses each
    coordinate onto 1/2. Reparameterised (``rsample``).

    Parameters
    ----------
    s : Tensor, ``(..., K)``
        Location: probabilities in [0, 1] (0 and 1 are clamped, as torch's ``clamp_probs``
        does; :func:`structure_prior` with ``"cube_interior"`` asks for the open interval).
    temperature : float or 0-d Tensor
        :math:`\lambda_{temp} > 0`.
    """

    _restriction = Restriction.CUBE_INTERIOR

    def __init__(self, s: torch.Tensor, temperature: Any, validate_args: bool | None = None):
        self.s, self.temperature = self._location(s, temperature, normalize=False, validate_args=validate_args)
        base = dist.RelaxedBernoulli(self.temperature, probs=self.s, validate_args=validate_args)
        super().__init__(base, 1, validate_args=validate_args)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The binary Concrete log-density above, summed over the K coordinates (torch's), after
        checking ``value`` (an error naming it and the cube) when validation is on.

        Own samples score finitely at every temperature: torch's sigmoid clamps a draw to
        ``[finfo.tiny, 1 - finfo.eps]``."""
        if self._validate_args:
            self._validate_sample(value)
        return super().log_prob(value)


class TemperedBetaCube(_LocationTemperature, dist.Independent):
    r"""Independent Beta coordinates on the cube with location :math:`s` and temperature.

    :math:`\gamma_k \sim \mathrm{Beta}(2\lambda s_k,\; 2\lambda (1 - s_k))`, independently,
    i.e. the two-option :class:`TemperedDirichlet` of :math:`(s_k, 1 - s_k)` per coordinate:
    mean :math:`s_k`, variance :math:`s_k (1 - s_k) / (2\lambda + 1)`. :math:`\lambda \to 0`
    gives independent ``Bernoulli(s)`` (the vertices), :math:`\lambda \to \infty` concentrates
    at :math:`s`, and :math:`s = 1/2, \lambda = 1` is uniform on the cube. ``log_prob`` sums
    over the K coordinates (event shape ``(K,)``). Reparameterised (``rsample``).

    Parameters
    ----------
    s : Tensor, ``(..., K)``
        Location: probabilities in the open interval (0, 1).
    temperature : float or 0-d Tensor
        :math:`\lambda_{temp} > 0`.
    """

    _restriction = Restriction.CUBE_INTERIOR

    def __init__(self, s: torch.Tensor, temperature: Any, validate_args: bool | None = None):
        self.s, self.temperature = self._location(s, temperature, normalize=False, validate_args=validate_args)
        two_lam = 2.0 * self.temperature
        base = dist.Beta(two_lam * self.s, two_lam * (1.0 - self.s), validate_args=validate_args)
        super().__init__(base, 1, validate_args=validate_args)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        r"""A reparameterised draw, correct at every :math:`\lambda > 0`.

        :math:`\gamma_k` is the first coordinate of a two-option Dirichlet draw
        :math:`\mathrm{Dir}(2\lambda s_k, 2\lambda(1 - s_k))` made with log-space Gamma variates
        (:func:`_dirichlet_rsample`), i.e. :math:`\gamma_k = \sigma(\log G_{k,1} - \log G_{k,2})`,
        clamped into ``[finfo.tiny, 1 - finfo.eps / 2]`` so that it stays strictly inside the cube.
        (Torch's Beta sampler returned 1/2 once both Gamma variates underflowed: for
        :math:`s = (.7, .4)`, 87% of the coordinates at :math:`\lambda = 10^{-4}`.)
        """
        shape = self._extended_shape(sample_shape)
        base = self.base_dist
        alpha = torch.stack([base.concentration1.expand(shape), base.concentration0.expand(shape)], -1)
        lo, hi = _open_unit_bounds(alpha.dtype)
        return _dirichlet_rsample(alpha)[..., 0].clamp(lo, hi)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        """:meth:`rsample` without the graph (``Independent.sample`` would call torch's Beta sampler)."""
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Sum over the K coordinates of the Beta log-densities (torch's), after checking ``value``
        (an error naming it and the cube) when validation is on."""
        if self._validate_args:
            self._validate_sample(value)
        return super().log_prob(value)



# --------------------------------------------------------------------------------------
# factory
# --------------------------------------------------------------------------------------

# kind name -> (family for the simplex, family for the cube). The two-option names are
# aliases: the binary Concrete *is* the K=2 Gumbel-softmax, and Beta the K=2 Dirichlet.
_SIMPLEX_KINDS = {"gumbel-softmax": GumbelSoftmax, "concrete": GumbelSoftmax, "dirichlet": TemperedDirichlet}
_CUBE_KINDS = {
    "relaxed-bernoulli": RelaxedBernoulliCube,
    "gumbel-softmax": RelaxedBernoulliCube,
    "concrete": RelaxedBernoulliCube,
    "beta": TemperedBetaCube,
    "dirichlet": TemperedBetaCube,
}


def _resolve_restriction(restriction: Any) -> Restriction:
    if isinstance(restriction, Restriction):
        return restriction
    valid = ", ".join(repr(r.value) for r in Restriction)
    if not isinstance(restriction, str):
        raise InvalidArgumentError(
            f"`restriction` must be a Restriction or one of {valid}; got {type(restriction).__name__}"
        )
    key = restriction.strip().lower().replace("-", "_").replace(" ", "_")
    try:
        return Restriction(key)
    except ValueError:
        raise UnknownNameError(f"unknown restriction {restriction!r}; valid restrictions are {valid}") from None


def _location(s: Any, restriction: Restriction) -> torch.Tensor:
    """Validate the location ``s`` for ``restriction`` (keeps a floating tensor's dtype)."""
    try:
        if torch.is_tensor(s) and s.is_floating_point():
            t = s
        else:
            t = torch.as_tensor(s, dtype=torch.get_default_dtype())
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidArgumentError(f"`s` must be an array of numbers; got {type(s).__name__} ({exc})") from None
    if t.dim() == 0 or t.shape[-1] < 1:
        raise InvalidArgumentError(f"`s` must have shape (..., K) with K >= 1; got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise InvalidArgumentError("`s` contains NaN or infinite values")
    vertices = restriction in (Restriction.SIMPLEX_VERTICES, Restriction.CUBE_VERTICES)
    if restriction in (Restriction.SIMPLEX_VERTICES, Restriction.SIMPLEX_INTERIOR):
        if t.shape[-1] < 2:
            raise InvalidArgumentError(f"`s` must have K >= 2 options on the simplex; got shape {tuple(t.shape)}")
        if vertices:
            if (t < 0).any() or (t.sum(-1) <= 0).any():
                raise InvalidArgumentError(
                    "`s` must be non-negative weights with a positive sum along the last dimension "
                    f"(a point of the simplex, or weights to normalise); got {s!r}"
                )
        elif (t <= 0).any():
            raise InvalidArgumentError(
                "`s` must be strictly positive weights (a point inside the simplex, or weights to "
                f"normalise) for a simplex_interior prior; got {s!r}. Clip zeros to a small value."
            )
        return t / t.sum(-1, keepdim=True)
    if vertices:
        if ((t < 0) | (t > 1)).any():
            raise InvalidArgumentError(f"`s` must be probabilities in [0, 1] for cube_vertices; got {s!r}")
    elif ((t <= 0) | (t >= 1)).any():
        raise InvalidArgumentError(
            f"`s` must be probabilities in the open interval (0, 1) for cube_interior; got {s!r}. "
            "Clip it away from 0 and 1."
        )
    return t


def _temperature(temperature: Any) -> float:
    if temperature is None:
        raise InvalidArgumentError(
            "`temperature` is required for an interior restriction; pass a number > 0 "
            "(small values put the samples near the vertices)"
        )
    return _check_temperature(temperature)


def _check_temperature(temperature: Any) -> float:
    """A single finite number > 0 (a 0-d or one-element tensor too, which may carry a gradient)."""
    if torch.is_tensor(temperature) and temperature.numel() != 1:
        raise InvalidArgumentError(f"`temperature` must be a single positive number; got shape {tuple(temperature.shape)}")
    if torch.is_tensor(temperature):
        temperature = temperature.detach()
    return check_positive(temperature, "temperature")


def structure_prior(
    restriction: str | Restriction,
    s: Any,
    temperature: float | None = None,
    *,
    kind: str | None = None,
    validate_args: bool | None = None,
) -> dist.TorchDistribution:
    r"""A Pyro prior over a structure vector :math:`\gamma` in the given restriction set.

    ====================  ============================  =================================
    restriction           ``kind``                      distribution
    ====================  ============================  =================================
    ``simplex_vertices``  --                            ``OneHotCategorical(probs=s)``
    ``simplex_interior``  ``"gumbel-softmax"`` (def.)   :class:`GumbelSoftmax`
    ``simplex_interior``  ``"dirichlet"``               :class:`TemperedDirichlet`
    ``cube_vertices``     --                            ``Bernoulli(s).to_event(1)``
    ``cube_interior``     ``"relaxed-bernoulli"`` (def.) :class:`RelaxedBernoulliCube`
    ``cube_interior``     ``"beta"``                    :class:`TemperedBetaCube`
    ====================  ============================  =================================

    ``"concrete"`` is an alias of the Gumbel-softmax family; on the cube
    ``"gumbel-softmax"`` means the relaxed Bernoulli (the two-option Gumbel-softmax) and
    ``"dirichlet"`` the Beta (the two-option Dirichlet). All have event shape ``(K,)`` and
    batch shape ``s.shape[:-1]``; the interior ones are reparameterised.

    Parameters
    ----------
    restriction : str or Restriction
        ``"simplex_vertices"``, ``"simplex_interior"``, ``"cube_vertices"`` or ``"cube_interior"``.
    s : array_like, ``(..., K)``
        Location. On the simplex: non-negative weights, normalised along the last dimension
        (so a point of the simplex is used as is; strictly positive for the interior). On the
        cube: per-coordinate probabilities, in ``[0, 1]`` for the vertices and ``(0, 1)`` for the
        interior. A floating tensor keeps its dtype, anything else becomes the default dtype.
    temperature : float or 0-d Tensor, optional
        :math:`\lambda_{temp} > 0`, required for the interior restrictions and not accepted
        for the vertices (a tensor that requires grad keeps its gradient: a learnable temperature). :math:`\lambda_{temp} \to 0` puts the samples on the vertices.
    kind : str, optional
        The family for an interior restriction (table above).
    validate_args : bool, optional
        Passed to the distribution.

    Returns
    -------
    pyro.distributions.TorchDistribution

    Raises
    ------
    UnknownNameError
        ``restriction`` or ``kind`` is not a known name (the message lists the valid ones).
    InvalidArgumentError
        ``s`` or ``temperature`` is out of range (the message names it).

    Examples
    --------
    >>> import torch
    >>> d = structure_prior("cube_interior", torch.tensor([0.7, 0.4]), 0.5, kind="beta")
    >>> d.sample((5,)).shape
    torch.Size([5, 2])
    """
    r = _resolve_restriction(restriction)
    loc = _location(s, r)
    if r in (Restriction.SIMPLEX_VERTICES, Restriction.CUBE_VERTICES):
        if temperature is not None:
            raise InvalidArgumentError(
                f"`temperature` has no meaning for {r.value!r} (a discrete prior); got {temperature!r}. "
                "Drop it, or use the matching *_interior restriction for a relaxed prior."
            )
        if kind is not None:
            raise InvalidArgumentError(f"`kind` has no meaning for {r.value!r}; got {kind!r}. Drop it.")
        if r is Restriction.SIMPLEX_VERTICES:
            return dist.OneHotCategorical(probs=loc, validate_args=validate_args)
        return dist.Bernoulli(probs=loc, validate_args=validate_args).to_event(1)
    kinds = _SIMPLEX_KINDS if r is Restriction.SIMPLEX_INTERIOR else _CUBE_KINDS
    name = "gumbel-softmax" if kind is None else kind
    if not isinstance(name, str) or name.strip().lower().replace("_", "-") not in kinds:
        valid = ", ".join(repr(k) for k in kinds)
        raise UnknownNameError(f"unknown `kind` {kind!r} for {r.value!r}; valid kinds are {valid}")
    _temperature(temperature)  # checked here; passed on as given, so a tensor keeps its gradient
    family = kinds[name.strip().lower().replace("_", "-")]
    return family(loc, temperature, validate_args=validate_args)
