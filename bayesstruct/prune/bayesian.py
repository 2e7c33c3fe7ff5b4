"""Pruning a Bayesian network: PyroModule layers whose weights are ``PyroSample`` latents.

In a Bayesian neural network built the Pyro way (``PyroModule[nn.Linear]`` with
``layer.weight = PyroSample(prior)``) a weight is not a parameter but a sample site
``"<layer>.weight"``; the trained object is the guide ``q(w)``. Pruning therefore has two
parts:

1. **choosing** what to remove from the guide (:func:`prune_bayesian`, also reached by
   :func:`bayesstruct.prune.prune` with ``guide=...``): by the posterior mean's magnitude
   ``|mu_i|`` (``method="magnitude"``) or by the relative density ``lambda_i = q_i(0) /
   q_i(mu_i) = exp(-mu_i^2 / (2 sigma_i^2))`` (``method="relative_density"``, Graves 2011;
   the largest ``lambda`` goes first). The masks are stored on the layers as buffers
   ``weight_mask`` (cumulative: a removed weight is never revived);
2. **applying** the masks with the effect handler :func:`mask_weights`: at every masked
   site the distribution ``d`` -- the prior in the model, ``q`` in the guide -- becomes
   :class:`MaskedWeight`, whose samples are exactly ``0`` at pruned entries and whose
   density covers the kept entries only,

       log p_masked(w) = sum_{i kept} log p_i(w_i),   KL(q_masked || p_masked) = sum_{i kept} KL(q_i || p_i).

   A pruned weight is then a point mass at zero: it costs nothing in the ELBO (or in bits),
   and SVI, ``Predictive`` and ``poutine.trace`` all see the pruned network::

       prune(bnn, "magnitude", amount=0.9, guide=guide)
       svi = SVI(mask_weights(model, bnn), mask_weights(guide, bnn), Adam({"lr": 1e-2}), TraceMeanField_ELBO())
       Predictive(mask_weights(model, bnn), guide=mask_weights(guide, bnn), num_samples=100)(x)

The site's distribution must be an ``Independent`` of an elementwise distribution of the
weight's shape (what ``PyroSample(dist.Normal(0, 1).expand(shape).to_event(2))`` is). Pyro
1.9's ``AutoNormal`` samples each weight as an auxiliary ``"<site>_unconstrained"``
``Normal(loc, scale).to_event(2)`` followed by a ``Delta`` at ``"<site>"``: the handler masks
the auxiliary site the same way and zeroes the ``Delta``'s value. Guides that draw all
weights jointly (every :class:`~pyro.infer.autoguide.AutoContinuous`: ``AutoDiagonalNormal``,
``AutoMultivariateNormal``, ``AutoLowRankMultivariateNormal``, ``AutoLaplaceApproximation``,
``AutoIAFNormal``, ...; and ``AutoStructured``) are not supported: they sample a joint
auxiliary latent (one flat vector, or per-site latents with dependencies between sites) and
only then turn it into per-site ``Delta`` values, so the handler could zero a pruned weight's
value but not remove its entries from ``q``'s density -- the ELBO would keep an entropy term for
every pruned weight, unopposed by the (masked) prior, and SVI would inflate their scales
without bound. :func:`prune_bayesian` (so ``prune(..., guide=...)``) and :func:`mask_weights`
therefore raise :class:`~bayesstruct.exceptions.InvalidArgumentError` for such a guide, and the
handler refuses a masked ``Delta`` site drawn from a joint auxiliary latent at run time. Fit
the model with an ``AutoNormal`` (one ``Normal`` per weight) to prune it.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch
from pyro.distributions import Delta, TorchDistribution
from pyro.infer.autoguide import AutoContinuous, AutoGuideList, AutoStructured
from pyro.nn import PyroModule
from pyro.poutine.messenger import Messenger
from torch import nn
from torch.distributions import Independent, constraints, kl_divergence, register_kl

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.prune.graves import _check_threshold
from bayesstruct.prune.saliency import LayerCount, PruneResult, Scope, _check_request, _enum, _lowest

__all__ = [
    "MaskedWeight",
    "MaskWeightsMessenger",
    "mask_weights",
    "bayesian_layers",
    "bayesian_masks",
    "prune_bayesian",
]

BAYESIAN_METHODS = ("magnitude", "relative_density")
_JOINT_GUIDES = (AutoContinuous, AutoStructured)  # guides whose weight sites are Deltas of a joint auxiliary latent
_AUX = "_unconstrained"


class MaskedWeight(TorchDistribution):
    """``d`` with the entries where ``mask == 0`` fixed at exactly zero.

    Parameters
    ----------
    base : Independent distribution
        Event shape ``S`` (the weight's shape), an elementwise distribution underneath.
    mask : Tensor of shape ``S``
        ``1`` keeps an entry, ``0`` prunes it.

    ``sample``/``rsample`` return ``base.sample() * mask``; ``log_prob(w)`` is
    ``sum_{i: mask_i = 1} log p_i(w_i)`` (a pruned entry is a point mass at ``0``, which
    contributes ``0``).
    """

    arg_constraints: dict = {}
    support = constraints.real

    def __init__(self, base: Independent, mask: torch.Tensor, validate_args: bool | None = None) -> None:
        if not isinstance(base, Independent):
            raise InvalidArgumentError(
                f"a masked weight site needs an Independent distribution over the weight (e.g. Normal(...).to_event(2)); "
                f"got {type(base).__name__}"
            )
        if tuple(mask.shape) != tuple(base.event_shape):
            raise InvalidArgumentError(f"mask shape {tuple(mask.shape)} != the site's event shape {tuple(base.event_shape)}")
        self.base, self.mask = base, mask.to(dtype=base.mean.dtype) if hasattr(base, "mean") else mask
        super().__init__(base.batch_shape, base.event_shape, validate_args=False)

    @property
    def has_rsample(self) -> bool:
        return self.base.has_rsample

    def expand(self, batch_shape, _instance=None):
        return MaskedWeight(self.base.expand(batch_shape), self.mask)

    def sample(self, sample_shape=torch.Size()):
        return self.base.sample(sample_shape) * self.mask

    def rsample(self, sample_shape=torch.Size()):
        return self.base.rsample(sample_shape) * self.mask

    def log_prob(self, value):
        n = self.base.reinterpreted_batch_ndims
        lp = self.base.base_dist.log_prob(value)
        elementwise = torch.where(self.mask > 0, lp, torch.zeros_like(lp))  # 0 (not 0 * -inf) at pruned entries
        return elementwise.sum(tuple(range(-n, 0))) if n else elementwise

    @property
    def mean(self):
        return self.base.mean * self.mask

    @property
    def variance(self):
        return self.base.variance * self.mask


@register_kl(MaskedWeight, MaskedWeight)
def _kl_masked(q: MaskedWeight, p: MaskedWeight) -> torch.Tensor:
    n = q.base.reinterpreted_batch_ndims
    if not torch.equal(q.mask, p.mask):
        raise InvalidArgumentError("KL between masked weights needs the same mask on both (apply mask_weights to model and guide)")
    kl = kl_divergence(q.base.base_dist, p.base.base_dist)
    kl = torch.where(q.mask > 0, kl, torch.zeros_like(kl))
    return kl.sum(tuple(range(-n, 0))) if n else kl


def _joint_guide_error(guide: Any, sites: Any, name: str = "guide") -> InvalidArgumentError | None:
    """The error for a guide that draws any of the weight ``sites`` jointly, else ``None``.

    Joint guides are ``AutoContinuous`` (one flat latent for all sites) and ``AutoStructured``
    (an auxiliary latent per site with dependencies between sites). One inside an
    ``AutoGuideList`` counts only when its prototype trace holds one of ``sites`` (or when it
    has not run yet, so that its sites are unknown).
    """
    parts = [guide]
    while parts:
        part = parts.pop()
        if isinstance(part, AutoGuideList):
            parts.extend(part)
            continue
        if not isinstance(part, _JOINT_GUIDES):
            continue
        proto = getattr(part, "prototype_trace", None)
        covered = None if proto is None else set(proto.nodes)  # site names (AutoStructured's nodes carry no "type")
        hit = sorted(set(sites)) if covered is None else sorted(covered & set(sites))
        if not hit:
            continue
        what = type(part).__name__ if part is guide else f"an AutoGuideList with the part {type(part).__name__}"
        return InvalidArgumentError(
            f"`{name}` is {what}, which draws the weights {hit} from a joint auxiliary latent: pruning cannot remove "
            "a pruned weight from its density (mask_weights could only zero the value, and SVI would still reward "
            "the pruned weights' entropy). Fit the model with pyro.infer.autoguide.AutoNormal (one Normal per weight "
            "site), e.g. guide = AutoNormal(model), and prune from that guide"
        )
    return None


class MaskWeightsMessenger(Messenger):
    """Replace the distribution of every masked sample site by :class:`MaskedWeight` (see :func:`mask_weights`).

    Raises :class:`~bayesstruct.exceptions.InvalidArgumentError` at a masked ``Delta`` site
    that no masked ``"<site>_unconstrained"`` preceded while an auxiliary latent did: the
    value then comes from a joint latent (an ``AutoContinuous`` or ``AutoStructured``
    guide), whose density the mask cannot reach.
    """

    def __init__(self, masks: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        self.masks = dict(masks)
        self._masked_aux: set[str] = set()
        self._other_aux: list[str] = []

    def __enter__(self):
        self._masked_aux, self._other_aux = set(), []
        return super().__enter__()

    def _pyro_sample(self, msg: Any) -> None:
        name = msg["name"]
        mask = self.masks.get(name)
        if mask is None and name.endswith(_AUX):  # AutoNormal's auxiliary site of the same weight
            mask = self.masks.get(name[: -len(_AUX)])
            if mask is not None:
                self._masked_aux.add(name[: -len(_AUX)])
        fn = msg["fn"]
        if mask is None and (msg.get("infer") or {}).get("is_auxiliary"):
            self._other_aux.append(name)
        if mask is None or isinstance(fn, MaskedWeight):
            return
        if isinstance(fn, Delta):  # AutoNormal's deterministic site: its value is the (masked) auxiliary sample
            if name not in self._masked_aux and self._other_aux:
                raise InvalidArgumentError(
                    f"mask_weights: the guide's weight site {name!r} is a Delta drawn from the joint auxiliary latent "
                    f"{self._other_aux[-1]!r} (as AutoDiagonalNormal, AutoMultivariateNormal or AutoStructured draw it), "
                    "whose density the mask cannot reach. Fit the model with pyro.infer.autoguide.AutoNormal (one Normal per weight site) "
                    "and prune from that guide"
                )
            msg["fn"] = Delta(fn.v * mask.to(fn.v.dtype), log_density=fn.log_density, event_dim=fn.event_dim)
            return
        msg["fn"] = MaskedWeight(fn, mask)


def mask_weights(fn: Callable | None = None, masks: Mapping[str, torch.Tensor] | nn.Module | None = None):
    """Effect handler applying pruning masks to the weight sites of a Bayesian network.

    Usable as ``mask_weights(fn, masks)`` (a wrapped callable), or as a context manager
    ``with mask_weights(masks=masks): ...``.

    Parameters
    ----------
    fn : callable, optional
        A model or guide. The guide must draw each weight site on its own (``AutoNormal``,
        ``AutoDelta`` or a hand-written per-site guide).
    masks : mapping of site name to 0/1 Tensor, or the PyroModule pruned by :func:`prune_bayesian`
        (its layers' ``weight_mask`` buffers are read).

    Raises
    ------
    InvalidArgumentError
        If ``fn`` is an ``AutoContinuous`` guide (``AutoDiagonalNormal``,
        ``AutoMultivariateNormal``, ...) that draws a masked weight jointly with others:
        the mask could zero its value but not remove it from ``q``'s density (see the
        module docstring). Use ``AutoNormal``.
    """
    if fn is not None and not callable(fn):
        raise InvalidArgumentError(f"`fn` must be a callable model or guide (or None for a context manager); got {type(fn).__name__}")
    if isinstance(masks, nn.Module):
        masks = bayesian_masks(masks)
    if not isinstance(masks, Mapping):
        raise InvalidArgumentError(f"`masks` must be a mapping site name -> mask or a pruned PyroModule; got {type(masks).__name__}")
    for site, mask in masks.items():
        if not isinstance(site, str):
            raise InvalidArgumentError(f"`masks` keys must be sample-site names (str); got {site!r}")
        if not torch.is_tensor(mask):
            raise InvalidArgumentError(f"`masks[{site!r}]` must be a 0/1 tensor of the weight's shape; got {type(mask).__name__}")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise InvalidArgumentError(f"`masks[{site!r}]` must hold only 0 and 1")
    if fn is not None:
        error = _joint_guide_error(fn, masks, "fn")
        if error is not None:
            raise error
    messenger = MaskWeightsMessenger(masks)
    return messenger(fn) if fn is not None else messenger


def bayesian_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(site name, layer)`` of every ``nn.Linear``/``nn.Conv2d`` PyroModule whose ``weight`` is a ``PyroSample``."""
    if not isinstance(model, nn.Module):
        raise InvalidArgumentError(f"`model` must be a torch.nn.Module; got {type(model).__name__}")
    out = []
    for _, mod in model.named_modules():
        if isinstance(mod, PyroModule) and isinstance(mod, (nn.Linear, nn.Conv2d)):
            if "weight" in mod.__dict__.get("_pyro_samples", {}):
                # the site name Pyro gives the weight (PyroModule._pyro_get_fullname, which asserts that the module has run)
                prefix = mod.__dict__.get("_pyro_name", "")
                out.append((f"{prefix}.weight" if prefix else "weight", mod))
    return out


def bayesian_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """The ``weight_mask`` buffers of :func:`bayesian_layers` (layers never pruned are left out)."""
    return {site: mod.weight_mask for site, mod in bayesian_layers(model) if getattr(mod, "weight_mask", None) is not None}


def _weight_shape(mod: nn.Module) -> tuple[int, ...]:
    if isinstance(mod, nn.Linear):
        return (mod.out_features, mod.in_features)
    return (mod.out_channels, mod.in_channels // mod.groups, *mod.kernel_size)


def _loc_scale(guide: Any, site: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    getter = getattr(guide, "_get_loc_and_scale", None)
    if callable(getter):
        try:
            loc, scale = getter(site)
            return loc.detach(), scale.detach()
        except (AttributeError, KeyError, NotImplementedError):
            pass
    median = getattr(guide, "median", None)
    if callable(median):
        try:
            values = median()
        except Exception as exc:  # the guide may need its model's arguments first
            raise InvalidArgumentError(f"`guide`: cannot read its posterior median ({exc}); run it once (e.g. one SVI step) first") from None
        if site in values:
            return values[site].detach(), None
    raise InvalidArgumentError(
        f"`guide` has no posterior location for site {site!r}: use an autoguide over the model (e.g. AutoNormal) and run it once"
    )


def prune_bayesian(
    model: nn.Module,
    guide: Any,
    amount: float | None = None,
    threshold: float | None = None,
    *,
    method: str = "magnitude",
    scope: str | Scope = "global",
) -> PruneResult:
    """Choose weights of a Bayesian PyroModule to prune from its guide; store the masks on its layers.

    The saliency of weight ``i`` is ``|mu_i|`` (``"magnitude"``) or ``-lambda_i`` with
    ``lambda_i = exp(-mu_i^2 / (2 sigma_i^2))`` (``"relative_density"``, needs a guide with
    ``_get_loc_and_scale`` such as ``AutoNormal``); the lowest go first, exactly as in
    :func:`bayesstruct.prune.prune` (``amount`` of the survivors, or a ``threshold``; ``scope``
    global or per layer). Apply the masks with :func:`mask_weights`.

    ``threshold`` is read on the scale of the method: ``"magnitude"`` removes ``|mu_i| <
    threshold``; ``"relative_density"`` removes ``lambda_i > threshold`` with ``threshold`` in
    ``(0, 1)``, the rule of :func:`bayesstruct.prune.prune_by_relative_density` (Graves 2011;
    with ``alpha = sigma^2 / mu^2`` it is Sparse VD's ``log alpha`` rule, Molchanov 2017).
    Either may be a mapping layer site -> threshold.

    Parameters
    ----------
    model : PyroModule
        Its ``nn.Linear``/``nn.Conv2d`` PyroModule layers with ``PyroSample`` weights are pruned.
    guide : AutoNormal (or a guide drawing each weight site on its own)
        The trained guide, run at least once.
    amount, threshold, method, scope
        As above.

    Returns
    -------
    PruneResult
        ``method`` is ``"bayesian_<method>"``; ``diagnostics["sites"]`` lists the site names.

    Raises
    ------
    InvalidArgumentError
        If ``guide`` draws the weights jointly (an ``AutoContinuous`` such as
        ``AutoDiagonalNormal`` or ``AutoMultivariateNormal``): :func:`mask_weights` cannot
        apply masks to such a guide (see the module docstring). Fit an ``AutoNormal``.
    """
    layers = bayesian_layers(model)
    if not layers:
        raise InvalidArgumentError(
            f"`model` ({type(model).__name__}) has no PyroModule Linear/Conv2d layer whose weight is a PyroSample"
        )
    key = str(method).strip().lower()
    if key not in BAYESIAN_METHODS:
        raise InvalidArgumentError(f"`method` for a Bayesian network must be one of {BAYESIAN_METHODS}; got {method!r}")
    error = _joint_guide_error(guide, [site for site, _ in layers])
    if error is not None:
        raise error
    if key == "relative_density" and threshold is not None:
        # the scores are -log lambda, so "lambda above t" is "score below -log t"
        if isinstance(threshold, Mapping):
            threshold = {n: -math.log(_check_threshold(t, f"threshold[{n!r}]")) for n, t in threshold.items()}
        else:
            threshold = -math.log(_check_threshold(threshold))
    request = _check_request(amount, threshold, scope, layers)
    masks, scores = {}, {}
    for site, mod in layers:
        loc, scale = _loc_scale(guide, site)
        shape = _weight_shape(mod)
        if tuple(loc.shape) != shape:
            raise InvalidArgumentError(f"`guide` site {site!r} has shape {tuple(loc.shape)}, the layer's weight {shape}")
        old = getattr(mod, "weight_mask", None)
        masks[site] = old.clone() if old is not None else torch.ones_like(loc)
        if key == "magnitude":
            scores[site] = loc.abs()
        else:
            if scale is None:
                raise InvalidArgumentError("method='relative_density' needs a guide with a scale per weight (e.g. AutoNormal)")
            scores[site] = loc.double() ** 2 / (2 * scale.double() ** 2)  # = -log lambda: small -> remove first
    remove = _lowest(scores, masks, request)
    removed = 0
    counts = []
    for site, mod in layers:
        new = masks[site] * (~remove[site]).to(masks[site].dtype)
        removed += int(masks[site].sum() - new.sum())
        if getattr(mod, "weight_mask", None) is None:
            mod.register_buffer("weight_mask", new)
        else:
            mod.weight_mask.copy_(new)
        counts.append(LayerCount(site, int(new.numel()), int(new.sum())))
    return PruneResult(method=f"bayesian_{key}", layers=tuple(counts), num_removed=removed,
                       diagnostics={"sites": [s for s, _ in layers], "scope": _enum(Scope, scope, "scope").value})
