"""Practical variational inference for neural networks, and pruning by relative density.

Graves (NIPS 2011) trains a network by minimising its *description length* in bits,

    L(D, q) = L(D | w) + L(w)
            = E_q[-log2 p(D | w)]  +  KL(q(w) || p(w)) / ln 2,

with a Gaussian mean-field posterior ``q(w) = prod_i N(mu_i, sigma_i^2)`` and a Gaussian
prior ``p(w) = prod_i N(0, sigma_p^2)``. That is the negative ELBO divided by ``ln 2``
(the ``EvidenceResult.mdl_bits`` convention: bits = nats / ln 2).

:func:`fit_variational` makes a Bayesian copy of a plain ``nn.Module`` with Pyro: the copy
becomes a :class:`pyro.nn.PyroModule` (``to_pyro_module_``) whose ``nn.Linear`` and
``nn.Conv2d`` weights are :class:`pyro.nn.PyroSample` sites ``"<layer>.weight"`` with the
prior ``N(0, prior_scale^2)``; the guide is an :class:`~pyro.infer.autoguide.AutoNormal`
(mean-field, started at the network's current weights with ``init_scale``); training is
:class:`~pyro.infer.SVI` with the one-sample negative ELBO with analytic KL (as
:class:`~pyro.infer.TraceMeanField_ELBO`) and
Adam on the full batch (by default). Biases and any other parameters stay point estimates (trained by
SVI, not coded: they are not part of ``L(w)``). The prior scale ``sigma_p`` is *fixed*
(``prior_scale``) unless ``fit_prior_scale=True``, which refits one per layer after every
step to Graves's closed-form optimum ``sigma_p^2 = mean(mu^2 + sigma^2)`` (``"weight"``: one
per weight, the KL becoming ``1/2 log(1 + mu^2 / sigma^2)``, see :func:`fit_variational`). Minibatch SVI
(``batch_size``, likelihood scaled by ``N / B``) and the local reparameterisation trick
(``local_reparam``, Kingma, Salimans & Welling 2015) make large data sets practical. For a regression likelihood the data bits are the code length of
the *density* (differential, relative to a unit quantisation of ``y``), so they may be
negative.

Pruning by relative density. Graves removes weight ``i`` when the posterior puts almost as
much density at zero as at its mean,

    lambda_i = q_i(0) / q_i(mu_i) = exp(-mu_i^2 / (2 sigma_i^2))  in (0, 1],

is *large*: :func:`prune_by_relative_density` removes every weight with
``lambda_i > threshold`` (and keeps the rest at ``mu_i``). With ``alpha_i = sigma_i^2 /
mu_i^2`` this is ``lambda_i = exp(-1 / (2 alpha_i))``, i.e. the ``log alpha`` rule of
Sparse Variational Dropout (Molchanov, Ashukha & Vetrov, ICML 2017): pruning at
``lambda > t`` is pruning at ``log alpha > -log(-2 log t)``. A *smaller* threshold removes
more weights, so the fraction kept is non-decreasing in the threshold
(:func:`threshold_sweep`).

Masks are the ones of :mod:`bayesstruct.prune.saliency` (``torch.nn.utils.parametrize``):
a removed weight stays exactly zero under further training, and pruning never revives a
weight that an earlier call removed.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from functools import reduce
from typing import Any, Callable, Iterable

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI
from pyro.infer.autoguide import AutoNormal
from pyro.infer.autoguide.initialization import init_to_value
from pyro.nn import PyroSample
from pyro.nn.module import to_pyro_module_
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from bayesstruct import _json
from bayesstruct._modes import eval_mode
from bayesstruct._validation import check_positive, check_positive_int, check_seed
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.prune.saliency import (
    PruneResult,
    _check_finite_weights,
    _check_layers,
    _check_model_takes,
    _is_real,
    _mask_module,
    _result,
    _set_layer,
    get_masks,
)

__all__ = [
    "VariationalFit",
    "SweepRow",
    "fit_variational",
    "relative_density",
    "log_relative_density",
    "weight_kl_bits",
    "prune_by_relative_density",
    "threshold_sweep",
]

LN2 = math.log(2.0)
LIKELIHOODS = ("categorical", "normal")


@dataclass(frozen=True)
class VariationalFit:
    """A Gaussian mean-field posterior over the prunable weights, and its description length.

    Attributes
    ----------
    layers : tuple of str
        Prunable layer names (``named_modules`` order); the Pyro sample site of layer
        ``name`` is ``"<name>.weight"`` (``"weight"`` for a bare layer).
    loc, scale : dict of str to Tensor
        Posterior means ``mu`` and standard deviations ``sigma`` per layer, each shaped
        like the layer's weight.
    point_params : dict of str to Tensor
        The other trained parameters (biases, ...) by ``named_parameters`` name.
    prior_scale : float
        The prior standard deviation ``sigma_p`` given to the fit (the starting value when
        the scales are refitted).
    data_bits : float
        ``L(D | w) = E_q[-log2 p(D | w)]``, a Monte Carlo estimate (``num_eval_samples`` draws).
    model_bits : float
        ``L(w) = KL(q || p) / ln 2``, exact (closed form for diagonal Gaussians).
    initial_total_bits : float
        ``data_bits + model_bits`` of the guide before training (same estimator).
    history : tuple of float
        The SVI loss in bits at every step (one-sample estimate of the total).
    param_state : dict
        Pyro's param-store state of the fit (``AutoNormal.locs.*``, ``AutoNormal.scales.*``, ...).
    prior_scales : dict of str to float
        The prior standard deviation per layer used for ``model_bits`` (all ``prior_scale``
        unless ``fit_prior_scale``; empty with ``fit_prior_scale="weight"``).
    batch_size : int or None
        The minibatch size of the fit (``None``: full batch).
    prior : {"fixed", "layer", "weight"}
        The prior scale: ``prior_scale`` throughout, fitted per layer (``prior_scales``), or
        fitted per weight (``fit_prior_scale`` of :func:`fit_variational`).
    """

    layers: tuple[str, ...]
    loc: dict[str, torch.Tensor] = field(repr=False)
    scale: dict[str, torch.Tensor] = field(repr=False)
    point_params: dict[str, torch.Tensor] = field(repr=False)
    prior_scale: float
    data_bits: float
    model_bits: float
    initial_total_bits: float
    history: tuple[float, ...] = field(repr=False)
    likelihood: str = "categorical"
    num_steps: int = 0
    lr: float = 0.0
    seed: int = 0
    param_state: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    prior_scales: dict[str, float] = field(default_factory=dict)
    batch_size: int | None = None
    prior: str = "fixed"

    @property
    def total_bits(self) -> float:
        """``L(D | w) + L(w)``, Graves's description length."""
        return self.data_bits + self.model_bits

    @property
    def num_weights(self) -> int:
        return sum(int(v.numel()) for v in self.loc.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": list(self.layers),
            "num_weights": self.num_weights,
            "prior_scale": self.prior_scale,
            "prior_scales": dict(self.prior_scales),
            "batch_size": self.batch_size,
            "prior": self.prior,
            "likelihood": self.likelihood,
            "data_bits": self.data_bits,
            "model_bits": self.model_bits,
            "total_bits": self.total_bits,
            "initial_total_bits": self.initial_total_bits,
            "num_steps": self.num_steps,
            "lr": self.lr,
            "seed": self.seed,
            "history": list(self.history),
        }

    def to_json(self, **kwargs: Any) -> str:
        return _json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        return (
            f"Graves VI ({self.num_weights} weights, sigma_p={self.prior_scale:g}): "
            f"{self.total_bits:.1f} bits = {self.data_bits:.1f} data + {self.model_bits:.1f} model "
            f"(initially {self.initial_total_bits:.1f})"
        )


@dataclass(frozen=True)
class SweepRow:
    """One threshold of :func:`threshold_sweep`: the fraction of prunable weights kept and ``eval_fn``'s value."""

    threshold: float
    fraction_kept: float
    value: Any

    def to_dict(self) -> dict[str, Any]:
        v = self.value.item() if torch.is_tensor(self.value) else self.value
        return {"threshold": self.threshold, "fraction_kept": self.fraction_kept, "value": v}


# ----------------------------------------------------------------------------- checks


def _site(layer: str) -> str:
    return f"{layer}.weight" if layer else "weight"


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool):  # check_positive would read True as 1.0
        raise InvalidArgumentError(f"`{name}` must be a finite number > 0; got {value!r}")
    return check_positive(value, name)


def _check_output_shape(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """With likelihood='normal', ``model(x)`` must have as many entries per row as ``y`` (it is reshaped to ``y``'s shape)."""
    with eval_mode(model), torch.no_grad():
        out = model(x[:2])
    per_row = int(torch.tensor(y.shape[1:]).prod()) if y.dim() > 1 else 1
    if not torch.is_tensor(out) or out.dim() < 1 or out.shape[0] != min(2, x.shape[0]) or out[0].numel() != per_row:
        got = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise InvalidArgumentError(
            f"`data`: with likelihood='normal', model(x) must give one prediction per entry of y, shape (n, *{tuple(y.shape[1:])}); "
            f"on x[:2] it returned {got}"
        )


def _check_threshold(threshold: Any, name: str = "threshold") -> float:
    if not _is_real(threshold) or not 0.0 < threshold < 1.0:
        raise InvalidArgumentError(
            f"`{name}` must be a number in the open interval (0, 1) (a relative density q(0)/q(mu)); got {threshold!r}"
        )
    return float(threshold)


def _check_data(data: Any, likelihood: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(data, (tuple, list)) and len(data) == 2 and all(torch.is_tensor(t) for t in data)):
        raise InvalidArgumentError(f"`data` must be an (x, y) pair of tensors (one full batch); got {type(data).__name__}")
    x, y = data
    if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0] or x.shape[0] < 1:
        raise InvalidArgumentError(
            f"`data`: x and y must have the same number of rows >= 1 (first dimension); got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise InvalidArgumentError("`data`: x contains NaN or inf")
    if likelihood == "categorical":
        if y.is_floating_point() or y.dtype == torch.bool or y.ndim != 1:
            raise InvalidArgumentError(
                f"`data`: with likelihood='categorical', y must be a 1-d tensor of integer class labels; got dtype {y.dtype}, shape {tuple(y.shape)}"
            )
    elif not y.is_floating_point() or not torch.isfinite(y).all():
        raise InvalidArgumentError("`data`: with likelihood='normal', y must be a finite floating-point tensor")
    return x, y


def _check_fit(model: nn.Module, fit: Any) -> list[tuple[str, nn.Module]]:
    layers = _check_layers(model)
    if not isinstance(fit, VariationalFit):
        raise InvalidArgumentError(f"`fit` must be a VariationalFit (from fit_variational); got {type(fit).__name__}")
    names = [n for n, _ in layers]
    if names != list(fit.layers):
        raise InvalidArgumentError(f"`fit` was made for layers {list(fit.layers)}, but `model` has prunable layers {names}")
    for n, m in layers:
        if tuple(m.weight.shape) != tuple(fit.loc[n].shape):
            raise InvalidArgumentError(
                f"layer {n!r}: `model` weight has shape {tuple(m.weight.shape)}, `fit` has {tuple(fit.loc[n].shape)}"
            )
    return layers


# ----------------------------------------------------------------------------- fitting


def _bayesian_copy(model: nn.Module, layers: list[tuple[str, nn.Module]], prior_scale: float) -> nn.Module:
    pnet = copy.deepcopy(model)
    to_pyro_module_(pnet)
    for name, _ in layers:
        mod = pnet.get_submodule(name) if name else pnet
        w = mod.weight.detach()
        prior = dist.Normal(torch.zeros((), dtype=w.dtype), torch.tensor(prior_scale, dtype=w.dtype))
        mod.weight = PyroSample(prior.expand(w.shape).to_event(w.dim()))
    return pnet


def _make_model(pnet: nn.Module, likelihood: str, noise_scale: float) -> Callable:
    def model(x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        n = x.shape[0]
        # the weights are sampled once per forward pass, outside the data plate; with
        # ``batch_size`` the plate draws ``batch_size`` of the ``n`` rows and scales the
        # likelihood by n / batch_size, so the ELBO stays unbiased for the full-data one
        data_plate = pyro.plate("data", n, subsample_size=batch_size if batch_size is not None and batch_size < n else None)
        with data_plate as idx:
            pass
        if idx.shape[0] < n:
            x, y = x[idx], y[idx]
        out = pnet(x)
        with data_plate:
            if likelihood == "categorical":
                pyro.sample("obs", dist.Categorical(logits=out), obs=y)
            else:
                out = out.reshape(y.shape)
                d = dist.Normal(out, torch.as_tensor(noise_scale, dtype=out.dtype))
                pyro.sample("obs", d.to_event(y.dim() - 1), obs=y)
        return out

    return model


def _noise_hooks(pnet: nn.Module, layers: list[str], scales: dict[str, torch.Tensor]) -> list:
    """Forward hooks adding ``sqrt(x^2 sigma^2) * eps`` to each layer's mean pre-activation ``x mu + b``.

    The local reparameterisation trick (Kingma, Salimans & Welling, 2015): with
    ``w ~ N(mu, sigma^2)`` independent, the pre-activation ``b + sum_j x_j w_ij`` is Gaussian
    with mean ``b + x mu`` and variance ``x^2 sigma^2``; sampling it directly (one ``eps`` per
    example and unit) has the same per-example marginal as sampling the weights, with less
    variance across a minibatch.
    """
    handles = []
    for name in layers:
        mod = pnet.get_submodule(name) if name else pnet
        var_w = scales[name] ** 2

        def hook(module, inputs, out, var_w=var_w):
            x = inputs[0]
            if isinstance(module, nn.Conv2d):
                var = module._conv_forward(x * x, var_w, None)
            else:
                var = nn.functional.linear(x * x, var_w)
            return out + var.clamp_min(1e-30).sqrt() * torch.randn_like(out)

        handles.append(mod.register_forward_hook(hook))
    return handles


def _make_loss(pnet: nn.Module, layers: list[str], prior_scales: dict[str, float | None], local_reparam: bool) -> Callable:
    """The negative ELBO (nats) for :class:`~pyro.infer.SVI`: ``-E_q[log p(D | w)] + KL(q || p)``.

    The KL term is the closed form (as :class:`~pyro.infer.TraceMeanField_ELBO`), but only the
    observed site's ``log_prob`` is evaluated (``TraceMeanField_ELBO`` also evaluates the prior
    ``log_prob`` of every weight, which it then discards). ``prior_scales`` is read at every
    call (it may be refitted between steps); ``None`` for a layer means one prior scale per
    weight at its optimum (:func:`_kl_optimal_prior`).
    """
    sites = {n: _site(n) for n in layers}

    def loss(model: Callable, guide: AutoNormal, *args: Any, **kwargs: Any) -> torch.Tensor:
        # run the guide (so that SVI sees its parameters) and read q's loc and scale off its
        # auxiliary Normal sites "<site>_unconstrained" (weights are unconstrained reals)
        guide_tr = pyro.poutine.trace(guide).get_trace(*args, **kwargs)
        locs, scales = {}, {}
        for n in layers:
            q = guide_tr.nodes[sites[n] + "_unconstrained"]["fn"].base_dist
            locs[n], scales[n] = q.loc, q.scale
        if local_reparam:
            handles = _noise_hooks(pnet, layers, scales)
            try:
                conditioned = pyro.poutine.condition(model, data={sites[n]: locs[n] for n in layers})
                tr = pyro.poutine.trace(conditioned).get_trace(*args, **kwargs)
            finally:
                for h in handles:
                    h.remove()
        else:
            tr = pyro.poutine.trace(pyro.poutine.replay(model, trace=guide_tr)).get_trace(*args, **kwargs)
        obs = tr.nodes["obs"]
        nll = -obs["fn"].log_prob(obs["value"]).sum() * obs["scale"]
        kl = sum(_kl_layer(locs[n], scales[n], prior_scales[n]).sum() for n in layers)
        return nll + kl

    return loss


def _terms(model: Callable, guide: AutoNormal, x: torch.Tensor, y: torch.Tensor, sites: list[str], prior_scales: list[float], num_samples: int):
    """(data bits, model bits) on the full data: MC expected NLL and the closed-form KL, both / ln 2."""
    with torch.no_grad():
        nll = 0.0
        for _ in range(num_samples):
            guide_tr = pyro.poutine.trace(guide).get_trace(x, y)
            model_tr = pyro.poutine.trace(pyro.poutine.replay(model, trace=guide_tr)).get_trace(x, y)
            nll -= float(model_tr.nodes["obs"]["fn"].log_prob(y).sum())
        nll /= num_samples
        kl = 0.0
        for s, ps in zip(sites, prior_scales):
            loc, scale = _loc_scale(guide, s)
            kl += float(_kl_layer(loc, scale, ps).sum())
    return nll / LN2, kl / LN2


def _kl_normal(loc: torch.Tensor, scale: torch.Tensor, prior_scale: float) -> torch.Tensor:
    """Elementwise ``KL(N(loc, scale^2) || N(0, prior_scale^2))`` in nats."""
    return math.log(prior_scale) - torch.log(scale) + (scale**2 + loc**2) / (2 * prior_scale**2) - 0.5


def _kl_optimal_prior(loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Elementwise ``min_{s} KL(N(loc, scale^2) || N(0, s^2)) = 1/2 log(1 + loc^2 / scale^2)`` in nats.

    The optimum is at ``s^2 = loc^2 + scale^2`` (one prior scale per weight, fitted: automatic
    relevance determination). In Sparse VD's terms it is ``1/2 log(1 + 1/alpha)``, the leading
    term of Molchanov et al.'s approximation of the KL to the log-uniform prior.
    """
    return 0.5 * torch.log1p(loc**2 / scale**2)


def _kl_layer(loc: torch.Tensor, scale: torch.Tensor, prior_scale: float | None) -> torch.Tensor:
    """The KL of one layer in nats: to ``N(0, prior_scale^2)``, or to the per-weight optimum when ``prior_scale`` is None."""
    return _kl_optimal_prior(loc, scale) if prior_scale is None else _kl_normal(loc, scale, prior_scale)


def _loc_scale(guide: AutoNormal, site: str) -> tuple[torch.Tensor, torch.Tensor]:
    parts = site.split(".")
    return reduce(getattr, parts, guide.locs), reduce(getattr, parts, guide.scales)


def fit_variational(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    num_steps: int = 1000,
    lr: float = 0.01,
    prior_scale: float = 1.0,
    seed: int = 0,
    likelihood: str = "categorical",
    noise_scale: float = 1.0,
    init_scale: float = 0.01,
    num_eval_samples: int = 16,
    progress: bool = True,
    batch_size: int | None = None,
    local_reparam: bool = False,
    scale_lr: float | None = None,
    fit_prior_scale: bool | str = False,
) -> VariationalFit:
    """Graves's variational MDL fit of the weights of a plain network, with Pyro SVI.

    Minimises ``E_q[-log p(D | w)] + KL(q || p)`` (nats; reported in bits) over a
    mean-field ``q(w) = prod_i N(mu_i, sigma_i^2)`` of every ``nn.Linear``/``nn.Conv2d``
    weight, with the prior ``N(0, prior_scale^2)`` (Graves, NIPS 2011). ``model`` itself is
    not changed; the means start at its weights (so a trained dense net is the natural start).

    The loss is the one-sample negative ELBO with the KL in closed form (as
    :class:`~pyro.infer.TraceMeanField_ELBO`, but without evaluating the prior density of
    the sampled weights, which that ELBO computes and discards); with ``batch_size`` it is
    the minibatch estimate ``(N / B) sum_{b in batch} -log p(y_b | x_b, w) + KL``. The
    reported ``data_bits`` and ``model_bits`` are always on the full data.

    After the fit, prune with :func:`prune_by_relative_density`: the relative density
    ``lambda_i = exp(-mu_i^2 / (2 sigma_i^2)) = exp(-1 / (2 alpha_i))`` with Sparse VD's
    ``log alpha_i = log sigma_i^2 / mu_i^2`` (Molchanov, Ashukha & Vetrov, ICML 2017).

    Parameters
    ----------
    model : nn.Module
        A plain (unpruned) network; ``model(x)`` gives logits ``(N, C)`` (categorical) or
        predictions of ``y``'s shape (normal).
    data : (x, y) tuple of Tensor
        The full training batch: ``x`` ``(N, ...)``; ``y`` ``(N,)`` class labels or ``(N, ...)`` targets.
    num_steps : int >= 1
        SVI steps (one-sample negative ELBO with closed-form KL, Adam); one step is one
        minibatch of ``batch_size`` rows (the full batch by default).
    lr : float > 0
        Adam learning rate.
    prior_scale : float > 0
        The prior standard deviation ``sigma_p`` (fixed, not fitted).
    seed : int
        ``pyro.set_rng_seed(seed)`` before training: the same seed gives the same fit.
    likelihood : {"categorical", "normal"}
        ``Categorical(logits=model(x))`` or ``Normal(model(x), noise_scale)``.
    noise_scale : float > 0
        The fixed observation noise of ``likelihood="normal"``.
    init_scale : float > 0
        Initial ``sigma_i`` of the guide; the means start at the network's current weights.
    num_eval_samples : int >= 1
        Draws of ``w`` for the reported ``data_bits``.
    progress : bool
        Show a tqdm progress bar.
    batch_size : int >= 1, optional
        Minibatch SVI: each step uses ``batch_size`` rows drawn without replacement by
        ``pyro.plate("data", N, subsample_size=batch_size)``, which scales the likelihood by
        ``N / batch_size``, so the loss is an unbiased estimate of the full-data negative
        ELBO (the KL term is always the full one). ``None`` (default) or ``>= N``: full batch,
        one step = one epoch.
    local_reparam : bool
        Sample the pre-activations of each layer instead of its weights (local
        reparameterisation, Kingma, Salimans & Welling 2015): for ``nn.Linear`` the
        pre-activation of unit ``i`` is ``N(b_i + x mu_i, sum_j x_j^2 sigma_ij^2)``
        (``nn.Conv2d`` likewise with the convolution of ``x^2`` with ``sigma^2``). Same
        expected loss, lower variance, and no weight sample per step.
    scale_lr : float > 0, optional
        Adam learning rate of the guide's scales (``AutoNormal.scales.*``); default ``lr``.
        The means and biases always use ``lr``.
    fit_prior_scale : {False, True, "layer", "weight"}
        ``True`` or ``"layer"``: refit one prior scale per layer after every step to its
        closed-form optimum ``sigma_p^2 = mean_i(mu_i^2 + sigma_i^2)`` (Graves 2011, section
        4), starting from ``prior_scale``; the reported ``model_bits`` use the final per-layer
        scales (``VariationalFit.prior_scales``; the few bits to code them are not counted).
        ``"weight"``: one prior scale per weight at its optimum ``s_i^2 = mu_i^2 + sigma_i^2``
        (automatic relevance determination), so the KL of weight ``i`` is
        ``1/2 log(1 + mu_i^2 / sigma_i^2) = 1/2 log(1 + 1/alpha_i)`` -- the leading term of
        Sparse VD's KL to the log-uniform prior (Molchanov et al. 2017), which drives
        unneeded weights to ``alpha_i -> inf``. ``model_bits`` is then that KL, the objective;
        the cost of coding the per-weight scales is not in it (a constant during the fit),
        but :func:`weight_kl_bits` and :func:`bayesstruct.prune.account` add it (a float32 per
        kept weight by default), so their L(model) is a full description length
        (``prior_scale`` is unused and ``prior_scales`` is empty).

    Returns
    -------
    VariationalFit

    Examples
    --------
    >>> import torch
    >>> x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    >>> fit = fit_variational(net, (x, y), num_steps=5, progress=False)
    >>> fit.loc["0"].shape, fit.total_bits == fit.data_bits + fit.model_bits
    (torch.Size([4, 3]), True)
    """
    layers = _check_layers(model)
    _check_finite_weights(layers)
    num_steps = check_positive_int(num_steps, "num_steps")
    num_eval_samples = check_positive_int(num_eval_samples, "num_eval_samples")
    lr = _positive(lr, "lr")
    prior_scale = _positive(prior_scale, "prior_scale")
    noise_scale = _positive(noise_scale, "noise_scale")
    init_scale = _positive(init_scale, "init_scale")
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    scale_lr = lr if scale_lr is None else _positive(scale_lr, "scale_lr")
    if not isinstance(local_reparam, bool):
        raise InvalidArgumentError(f"`local_reparam` must be a bool; got {local_reparam!r}")
    if fit_prior_scale is True:
        fit_prior_scale = "layer"
    if fit_prior_scale is not False and fit_prior_scale not in ("layer", "weight"):
        raise InvalidArgumentError(f"`fit_prior_scale` must be False, True, 'layer' or 'weight'; got {fit_prior_scale!r}")
    seed = check_seed(seed)
    if likelihood not in LIKELIHOODS:
        raise InvalidArgumentError(f"`likelihood` must be one of {LIKELIHOODS}; got {likelihood!r}")
    pruned = [n for n, m in layers if _mask_module(m) is not None]
    if pruned:
        raise InvalidArgumentError(
            f"`model` has pruned (masked) layers {pruned}; call bayesstruct.prune.remove_pruning(model) on a copy first"
        )
    x, y = _check_data(data, likelihood)
    _check_model_takes(model, x, y, F.cross_entropy if likelihood == "categorical" else None)
    if likelihood == "normal":
        _check_output_shape(model, x, y)

    names = [n for n, _ in layers]
    sites = [_site(n) for n in names]
    pnet = _bayesian_copy(model, layers, prior_scale)
    pyro_model = _make_model(pnet, likelihood, noise_scale)
    init_values = {_site(n): m.weight.detach().clone() for n, m in layers}
    prior_scales: dict[str, float | None] = {n: (None if fit_prior_scale == "weight" else prior_scale) for n in names}
    history: list[float] = []

    def optim_args(param_name: str) -> dict[str, float]:
        return {"lr": scale_lr if param_name.startswith("AutoNormal.scales.") else lr}

    with pyro.get_param_store().scope() as state:
        pyro.set_rng_seed(seed)
        guide = AutoNormal(pyro_model, init_loc_fn=init_to_value(values=init_values), init_scale=init_scale)
        guide(x, y)  # create the parameters
        initial = sum(_terms(pyro_model, guide, x, y, sites, [prior_scales[n] for n in names], num_eval_samples))
        loss = _make_loss(pnet, names, prior_scales, local_reparam)
        svi = SVI(pyro_model, guide, pyro.optim.Adam(optim_args), loss)
        bar = tqdm(range(num_steps), desc="Graves VI", unit="step", disable=not progress, leave=False)
        for step in bar:
            history.append(svi.step(x, y, batch_size) / LN2)
            if fit_prior_scale == "layer":
                with torch.no_grad():
                    for n, s in zip(names, sites):
                        mu, sigma = _loc_scale(guide, s)
                        prior_scales[n] = float((mu**2 + sigma**2).mean().sqrt())
            if step % 50 == 0 or step == num_steps - 1:
                bar.set_postfix(bits=f"{history[-1]:.1f}")
        bar.close()
        data_bits, model_bits = _terms(pyro_model, guide, x, y, sites, [prior_scales[n] for n in names], num_eval_samples)
        with torch.no_grad():
            loc, scale = {}, {}
            for n, s in zip(names, sites):
                mu, sigma = _loc_scale(guide, s)
                loc[n], scale[n] = mu.detach().clone(), sigma.detach().clone()
            weight_names = set(sites)
            point = {k: v.detach().clone() for k, v in pnet.named_parameters() if k not in weight_names}
    return VariationalFit(
        layers=tuple(n for n, _ in layers),
        loc=loc,
        scale=scale,
        point_params=point,
        prior_scale=prior_scale,
        data_bits=float(data_bits),
        model_bits=float(model_bits),
        initial_total_bits=float(initial),
        history=tuple(float(h) for h in history),
        likelihood=likelihood,
        num_steps=num_steps,
        lr=lr,
        seed=seed,
        param_state=state,
        prior_scales={} if fit_prior_scale == "weight" else dict(prior_scales),
        prior="fixed" if fit_prior_scale is False else fit_prior_scale,
        batch_size=batch_size,
    )


# ----------------------------------------------------------------------------- pruning


def weight_kl_bits(fit: VariationalFit, *, scale_bits: float = 32.0) -> dict[str, torch.Tensor]:
    """The model bits of each weight (weight-shaped, float64) under the fit's own prior.

    ``KL(q_i || p_i) / ln 2`` to ``N(0, prior_scale^2)`` or to the fitted per-layer scales
    (``fit.prior="layer"``; summed over all weights it is ``fit.model_bits``). With one prior
    scale per weight (``fit.prior="weight"``) the KL is ``1/2 log2(1 + mu_i^2 / sigma_i^2)``, but
    a receiver cannot decode weight ``i`` without its prior scale ``s_i``, so each weight also
    pays ``scale_bits`` for sending ``s_i`` (default 32: a float32; the KL alone, summed, is
    ``fit.model_bits`` with ``scale_bits=0``). Summed over the kept weights of a pruned net,
    this is its two-part L(model) (:func:`bayesstruct.prune.account` with ``fit=``).
    """
    if not isinstance(fit, VariationalFit):
        raise InvalidArgumentError(f"`fit` must be a VariationalFit (from fit_variational); got {type(fit).__name__}")
    if isinstance(scale_bits, bool) or not isinstance(scale_bits, (int, float)) or not 0 <= scale_bits < math.inf:
        raise InvalidArgumentError(f"`scale_bits` must be a finite number >= 0; got {scale_bits!r}")
    out = {}
    for n in fit.layers:
        ps = None if fit.prior == "weight" else fit.prior_scales.get(n, fit.prior_scale) if fit.prior == "layer" else fit.prior_scale
        out[n] = _kl_layer(fit.loc[n].double(), fit.scale[n].double(), ps) / LN2
        if fit.prior == "weight":
            out[n] = out[n] + float(scale_bits)
    return out


def log_relative_density(fit: VariationalFit) -> dict[str, torch.Tensor]:
    """``log lambda_i = -mu_i^2 / (2 sigma_i^2)`` per layer (weight-shaped, float64, <= 0).

    Computed in float64 and never exponentiated, so it stays informative where
    ``lambda_i`` itself underflows (``mu_i^2 / sigma_i^2 > ~1490`` in float64, ``> ~200`` in
    float32): a confident weight has a very negative ``log lambda_i``.
    """
    if not isinstance(fit, VariationalFit):
        raise InvalidArgumentError(f"`fit` must be a VariationalFit (from fit_variational); got {type(fit).__name__}")
    return {n: -fit.loc[n].double() ** 2 / (2 * fit.scale[n].double() ** 2) for n in fit.layers}


def relative_density(fit: VariationalFit) -> dict[str, torch.Tensor]:
    """``lambda_i = q_i(0) / q_i(mu_i) = exp(-mu_i^2 / (2 sigma_i^2))`` per layer (weight-shaped, float64, in [0, 1]).

    Large ``lambda_i`` (near 1) means the posterior barely distinguishes weight ``i`` from 0.
    ``lambda_i`` underflows to 0 for very confident weights; rank or threshold those with
    :func:`log_relative_density` (which :func:`prune_by_relative_density` uses).
    """
    return {n: torch.exp(v) for n, v in log_relative_density(fit).items()}


def prune_by_relative_density(
    model: nn.Module, fit: VariationalFit, threshold: float | None = None, *, log_threshold: float | None = None
) -> PruneResult:
    """Set ``model``'s prunable weights to the posterior means and mask those with ``lambda_i > threshold``.

    In place, with the masks of :mod:`bayesstruct.prune.saliency` (cumulative: a weight
    masked before stays masked). The other parameters (biases) are set to the fit's point
    estimates. The comparison is made in log space, ``log lambda_i > log threshold``
    (:func:`log_relative_density`), so it is exact where ``lambda_i`` underflows.

    Parameters
    ----------
    model : nn.Module
        The plain network ``fit`` was made from (same prunable layers and shapes).
    fit : VariationalFit
    threshold : float in (0, 1)
        Remove weights whose relative density exceeds it; equivalently
        ``log alpha_i > -log(-2 log threshold)`` (Sparse VD).
    log_threshold : float < 0, optional
        Instead of ``threshold``: its logarithm (for thresholds below float's range).

    Returns
    -------
    PruneResult
        ``method="relative_density"``, ``diagnostics={"threshold": ..., "log_threshold": ..., "log_alpha_threshold": ...}``.
    """
    layers = _check_fit(model, fit)
    if (threshold is None) == (log_threshold is None):
        raise InvalidArgumentError(
            f"pass exactly one of `threshold` (in (0, 1)) and `log_threshold` (< 0); got threshold={threshold!r}, log_threshold={log_threshold!r}"
        )
    if threshold is not None:
        threshold = _check_threshold(threshold)
        log_t = math.log(threshold)
    else:
        if not _is_real(log_threshold) or not -math.inf < log_threshold < 0:
            raise InvalidArgumentError(f"`log_threshold` must be a finite number < 0 (the log of a relative density); got {log_threshold!r}")
        log_t = float(log_threshold)
        threshold = math.exp(log_t)
    log_lam = log_relative_density(fit)
    before = get_masks(model)
    removed = 0
    for n, mod in layers:
        mask = (log_lam[n] <= log_t).to(before[n].dtype) * before[n]
        removed += int(before[n].sum() - mask.sum())
        _set_layer(mod, mask, fit.loc[n].to(before[n].dtype))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for k, v in fit.point_params.items():
            if k in params and params[k].shape == v.shape:
                params[k].copy_(v)
    diagnostics = {"threshold": threshold, "log_threshold": log_t, "log_alpha_threshold": -math.log(-2.0 * log_t)}
    return _result("relative_density", layers, removed, diagnostics)


def threshold_sweep(
    model: nn.Module, fit: VariationalFit, thresholds: Iterable[float], eval_fn: Callable[[nn.Module], Any]
) -> list[SweepRow]:
    """Prune a copy of ``model`` at each threshold and evaluate it.

    ``model`` is not changed. The fraction kept is non-decreasing in the threshold (a
    smaller threshold removes more weights). Rows come in the order of ``thresholds``.

    Parameters
    ----------
    model : nn.Module
    fit : VariationalFit
    thresholds : iterable of float in (0, 1)
    eval_fn : callable
        ``eval_fn(pruned_model)`` -> a number (e.g. test error), stored as ``SweepRow.value``.

    Returns
    -------
    list of SweepRow
    """
    _check_fit(model, fit)
    if torch.is_tensor(thresholds):
        thresholds = thresholds.tolist()
    if _is_real(thresholds) or isinstance(thresholds, (str, bytes)) or not hasattr(thresholds, "__iter__"):
        raise InvalidArgumentError(f"`thresholds` must be an iterable of numbers in (0, 1) (e.g. [0.5, 0.9]); got {thresholds!r}")
    ts = [_check_threshold(t, "thresholds") for t in thresholds]
    if not ts:
        raise InvalidArgumentError("`thresholds` must hold at least one number in (0, 1)")
    if not callable(eval_fn):
        raise InvalidArgumentError(f"`eval_fn` must be callable (pruned model -> number); got {type(eval_fn).__name__}")
    rows = []
    for t in ts:
        net = copy.deepcopy(model)
        prune_by_relative_density(net, fit, t)
        masks = get_masks(net)
        kept = float(sum(m.sum() for m in masks.values())) / sum(m.numel() for m in masks.values())
        rows.append(SweepRow(threshold=t, fraction_kept=kept, value=eval_fn(net)))
    return rows
