"""Saliencies (magnitude, OBD, OBS) and masks that keep pruned weights removed.

A *saliency* ranks the weights of a trained network by how much the training loss
would grow if each were set to zero:

* ``"magnitude"`` -- ``s_i = |theta_i|`` (Han et al., NIPS 2015);
* ``"obd"`` -- Optimal Brain Damage, ``s_i = 1/2 h_ii theta_i^2`` with ``h_ii`` the
  diagonal of the Hessian of the training loss (LeCun, Denker & Solla, NIPS 1989);
* ``"obs"`` -- Optimal Brain Surgeon, ``s_q = theta_q^2 / (2 [H^-1]_qq)``, removing one
  weight at a time and moving the survivors by ``delta = -theta_q / [H^-1]_qq * H^-1 e_q``
  (Hassibi & Stork, NIPS 1992).

:func:`prune` resolves the method through a registry (:func:`register_saliency`), and
removes weights with masks applied through :mod:`torch.nn.utils.parametrize`: the
layer's ``weight`` becomes ``original * mask`` in every forward pass, so a pruned weight
is exactly zero after any number of optimizer steps (Adam, weight decay, ...), and the
gradient reaching a pruned entry of ``original`` from the loss is zero. Pruning is
cumulative: calling :func:`prune` again only ranks the survivors.

Prunable parameters are the ``weight`` of every :class:`torch.nn.Linear` and
:class:`torch.nn.Conv2d`; biases are never pruned (but take part in the loss).

Note that a pruned layer's state-dict keys change to
``<layer>.parametrizations.weight.original`` and ``<layer>.parametrizations.weight.0.mask``;
:func:`remove_pruning` bakes the masks in and restores plain ``weight`` parameters.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, ClassVar, Mapping

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils import parametrize

from bayesstruct._registry import Registry
from bayesstruct.exceptions import InvalidArgumentError

__all__ = [
    "Scope",
    "HessianMode",
    "LayerCount",
    "PruneResult",
    "Saliency",
    "Magnitude",
    "OBD",
    "OBS",
    "register_saliency",
    "get_saliency",
    "list_saliencies",
    "prunable_layers",
    "get_masks",
    "hessian_diagonal",
    "compute_saliency",
    "prune",
    "remove_pruning",
]

#: above this many prunable weights, ``hessian="auto"`` stops using the exact diagonal
#: and OBS stops using one Hessian block for all layers
MAX_EXACT = 5000


class Scope(str, Enum):
    """Where the removal threshold is set."""

    GLOBAL = "global"
    """One ranking of all prunable weights of the model (layers may lose different fractions)."""
    LAYER = "layer"
    """A separate ranking per layer: each layer loses ``amount`` of its own survivors."""


class HessianMode(str, Enum):
    """How OBD obtains the Hessian diagonal ``h_ii``."""

    EXACT = "exact"
    """The exact diagonal, one Hessian-vector product per weight (in chunks)."""
    FISHER = "fisher"
    """Empirical Fisher ``1/N sum_n g_{n,i}^2`` from per-example gradients (a Gauss-Newton
    approximation, good for log-likelihood losses near a fit; always >= 0)."""
    HUTCHINSON = "hutchinson"
    """Hutchinson's unbiased estimator ``E[z * Hz]``, Rademacher ``z``, seeded (``num_samples`` draws)."""
    AUTO = "auto"
    """``exact`` up to :data:`MAX_EXACT` prunable weights, ``hutchinson`` above."""


def _enum(enum: type[Enum], value: Any, name: str) -> Any:
    try:
        return enum(value.value if isinstance(value, Enum) else str(value).strip().lower())
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum)
        raise InvalidArgumentError(f"`{name}` must be one of {allowed}; got {value!r}") from None


# ----------------------------------------------------------------------------- masks


class _WeightMask(nn.Module):
    """Parametrization ``weight = original * mask``; ``mask`` is a 0/1 buffer of the weight's shape."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return original * self.mask


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` pairs whose ``weight`` can be pruned: ``nn.Linear`` and ``nn.Conv2d``."""
    if not isinstance(model, nn.Module):
        raise InvalidArgumentError(f"`model` must be a torch.nn.Module; got {type(model).__name__}")
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def _mask_module(module: nn.Module) -> _WeightMask | None:
    if parametrize.is_parametrized(module, "weight"):
        for p in module.parametrizations.weight:
            if isinstance(p, _WeightMask):
                return p
    return None


def _raw_name(module: nn.Module) -> str:
    return "parametrizations.weight.original" if parametrize.is_parametrized(module, "weight") else "weight"


def _raw_weight(module: nn.Module) -> torch.Tensor:
    return module.parametrizations.weight.original if parametrize.is_parametrized(module, "weight") else module.weight


def get_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """The current 0/1 mask of every prunable layer (all ones where nothing was pruned), by layer name."""
    out = {}
    for name, mod in prunable_layers(model):
        m = _mask_module(mod)
        out[name] = m.mask.clone() if m is not None else torch.ones_like(mod.weight)
    return out


def _set_layer(module: nn.Module, mask: torch.Tensor, weight: torch.Tensor) -> None:
    """Install ``mask`` (registering the parametrization once) and write ``weight * mask`` into the raw weight."""
    m = _mask_module(module)
    if m is None:
        parametrize.register_parametrization(module, "weight", _WeightMask(torch.ones_like(module.weight)))
        m = _mask_module(module)
    with torch.no_grad():
        m.mask.copy_(mask)
        _raw_weight(module).copy_(weight * mask)


def remove_pruning(model: nn.Module) -> nn.Module:
    """Bake the masks into plain ``weight`` parameters (pruned entries stay 0, but may train again)."""
    for _, mod in prunable_layers(model):
        if _mask_module(mod) is not None:
            parametrize.remove_parametrizations(mod, "weight", leave_parametrized=True)
    return model


# ----------------------------------------------------------------------------- loss and Hessian


def _batches(data: Any) -> list[tuple[Any, Any]]:
    if data is None:
        raise InvalidArgumentError("`data` is required for this saliency: pass an (x, y) tuple or an iterable of (x, y) batches")
    if isinstance(data, (tuple, list)) and len(data) == 2 and torch.is_tensor(data[0]):
        return [(data[0], data[1])]
    try:
        batches = [tuple(b) for b in data]
    except TypeError:
        raise InvalidArgumentError(f"`data` must be an (x, y) tuple or an iterable of (x, y) batches; got {type(data).__name__}") from None
    if not batches or any(len(b) != 2 for b in batches):
        raise InvalidArgumentError("`data` must hold at least one (x, y) batch, each a pair")
    return batches


class _Objective:
    """The training loss as a function of the flat vector of prunable weights ``(P,)``.

    ``loss(w) = sum_b n_b loss_fn(model(x_b), y_b) / sum_b n_b`` (the mean over ``data`` when
    ``loss_fn`` averages over its batch); biases and other parameters are held fixed.
    """

    def __init__(self, model: nn.Module, layers: list[tuple[str, nn.Module]], loss_fn: Callable | None, data: Any) -> None:
        if loss_fn is None or not callable(loss_fn):
            raise InvalidArgumentError(f"`loss_fn` must be a callable loss_fn(model(x), y) -> scalar for this saliency; got {loss_fn!r}")
        self.model, self.loss_fn = model, loss_fn
        self.batches = _batches(data)
        self.sizes = [int(x.shape[0]) if torch.is_tensor(x) and x.dim() else 1 for x, _ in self.batches]
        self.keys = [(f"{n}." if n else "") + _raw_name(m) for n, m in layers]
        self.shapes = [m.weight.shape for _, m in layers]
        self.numels = [m.weight.numel() for _, m in layers]
        with torch.no_grad():
            self.w0 = torch.cat([m.weight.detach().reshape(-1) for _, m in layers])

    def params(self, w: torch.Tensor) -> dict[str, torch.Tensor]:
        chunks = torch.split(w, self.numels)
        return {k: c.view(s) for k, c, s in zip(self.keys, chunks, self.shapes)}

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        params = self.params(w)
        n = sum(self.sizes)
        total = 0.0
        for (x, y), nb in zip(self.batches, self.sizes):
            total = total + self.loss_fn(functional_call(self.model, params, (x,)), y) * (nb / n)
        return total

    def grad_graph(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.w0.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(self(w), w, create_graph=True)
        return w, g

    def hessian_rows(self, idx: torch.Tensor, chunk: int = 128) -> torch.Tensor:
        """Rows ``H[idx, :]`` ``(len(idx), P)`` by Hessian-vector products with unit vectors."""
        w, g = self.grad_graph()
        rows = []
        for start in range(0, len(idx), chunk):
            sub = idx[start : start + chunk]
            v = torch.zeros(len(sub), w.numel(), dtype=w.dtype)
            v[torch.arange(len(sub)), sub] = 1.0
            try:
                (r,) = torch.autograd.grad(g, w, grad_outputs=v, retain_graph=True, is_grads_batched=True)
            except RuntimeError:  # an op without a batching rule: one product at a time
                r = torch.stack([torch.autograd.grad(g, w, grad_outputs=vi, retain_graph=True)[0] for vi in v])
            rows.append(r.detach())
        return torch.cat(rows) if rows else torch.zeros(0, w.numel(), dtype=w.dtype)

    def diag_exact(self) -> torch.Tensor:
        idx = torch.arange(self.w0.numel())
        diag = torch.empty_like(self.w0)
        for start in range(0, len(idx), 128):
            sub = idx[start : start + 128]
            diag[sub] = self._rows_diag(sub)
        return diag

    def _rows_diag(self, sub: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "_graph"):
            self._graph = self.grad_graph()
        w, g = self._graph
        v = torch.zeros(len(sub), w.numel(), dtype=w.dtype)
        v[torch.arange(len(sub)), sub] = 1.0
        try:
            (r,) = torch.autograd.grad(g, w, grad_outputs=v, retain_graph=True, is_grads_batched=True)
        except RuntimeError:
            r = torch.stack([torch.autograd.grad(g, w, grad_outputs=vi, retain_graph=True)[0] for vi in v])
        return r[torch.arange(len(sub)), sub].detach()

    def diag_hutchinson(self, num_samples: int, seed: int) -> torch.Tensor:
        w, g = self.grad_graph()
        gen = torch.Generator().manual_seed(seed)
        z = torch.randint(0, 2, (num_samples, w.numel()), generator=gen).to(w.dtype) * 2 - 1
        (hz,) = torch.autograd.grad(g, w, grad_outputs=z, retain_graph=True, is_grads_batched=True)
        return (z * hz).mean(0).detach()

    def diag_fisher(self) -> torch.Tensor:
        w = self.w0.clone().requires_grad_(True)
        total = torch.zeros_like(self.w0)
        count = 0
        for x, y in self.batches:
            for i in range(int(x.shape[0])):
                loss = self.loss_fn(functional_call(self.model, self.params(w), (x[i : i + 1],)), y[i : i + 1])
                (gi,) = torch.autograd.grad(loss, w)
                total += gi.detach() ** 2
                count += 1
        return total / count


def _split(flat: torch.Tensor, layers: list[tuple[str, nn.Module]]) -> dict[str, torch.Tensor]:
    chunks = torch.split(flat, [m.weight.numel() for _, m in layers])
    return {n: c.reshape(m.weight.shape).clone() for (n, m), c in zip(layers, chunks)}


def _check_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    layers = prunable_layers(model)
    if not layers:
        raise InvalidArgumentError(
            f"`model` ({type(model).__name__}) has no prunable layers: only the weights of nn.Linear and nn.Conv2d are pruned"
        )
    return layers


def hessian_diagonal(
    model: nn.Module,
    loss_fn: Callable,
    data: Any,
    *,
    hessian: str | HessianMode = "auto",
    num_samples: int = 100,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Diagonal ``h_ii`` of the Hessian of the training loss w.r.t. each prunable weight.

    Parameters
    ----------
    model : nn.Module
    loss_fn : callable
        ``loss_fn(model(x), y)`` -> scalar; averaged over ``data`` weighted by batch size.
    data : (x, y) tuple or iterable of (x, y) batches
    hessian : {"auto", "exact", "fisher", "hutchinson"}
        See :class:`HessianMode`.
    num_samples, seed : int
        Rademacher draws and their seed for ``"hutchinson"``.

    Returns
    -------
    dict of str to Tensor
        Per layer name, a tensor of the weight's shape.
    """
    layers = _check_layers(model)
    mode = _enum(HessianMode, hessian, "hessian")
    obj = _Objective(model, layers, loss_fn, data)
    if mode is HessianMode.AUTO:
        mode = HessianMode.EXACT if obj.w0.numel() <= MAX_EXACT else HessianMode.HUTCHINSON
    if mode is HessianMode.EXACT:
        diag = obj.diag_exact()
    elif mode is HessianMode.FISHER:
        diag = obj.diag_fisher()
    else:
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise InvalidArgumentError(f"`num_samples` must be an integer >= 1; got {num_samples!r}")
        diag = obj.diag_hutchinson(num_samples, seed)
    return _split(diag, layers)


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class LayerCount:
    """Weights of one prunable layer: ``num_weights`` in total, ``num_nonzero`` not zero."""

    name: str
    num_weights: int
    num_nonzero: int

    @property
    def density(self) -> float:
        return self.num_nonzero / self.num_weights if self.num_weights else 0.0


@dataclass(frozen=True)
class PruneResult:
    """What one call of :func:`prune` left.

    Attributes
    ----------
    method : str
        Registry name of the saliency.
    layers : tuple of LayerCount
        Per prunable layer (in ``named_modules`` order), its weight and non-zero counts.
    num_removed : int
        Weights this call removed (masked).
    diagnostics : dict
        Method-specific numbers (Hessian mode, OBS damping actually used, ...).
    """

    method: str
    layers: tuple[LayerCount, ...]
    num_removed: int = 0
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def num_weights(self) -> int:
        return sum(layer.num_weights for layer in self.layers)

    @property
    def num_nonzero(self) -> int:
        return sum(layer.num_nonzero for layer in self.layers)

    @property
    def sparsity(self) -> float:
        """Fraction of prunable weights that are zero."""
        return 1.0 - self.num_nonzero / self.num_weights if self.num_weights else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "num_weights": self.num_weights,
            "num_nonzero": self.num_nonzero,
            "num_removed": self.num_removed,
            "sparsity": self.sparsity,
            "layers": [
                {"name": la.name, "num_weights": la.num_weights, "num_nonzero": la.num_nonzero} for la in self.layers
            ],
            "diagnostics": {k: (v.tolist() if torch.is_tensor(v) else v) for k, v in self.diagnostics.items()},
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        lines = [f"{self.method}: {self.num_nonzero}/{self.num_weights} weights non-zero (sparsity {self.sparsity:.1%})"]
        lines += [f"  {la.name or '<model>'}: {la.num_nonzero}/{la.num_weights}" for la in self.layers]
        return "\n".join(lines)


def _result(method: str, layers: list[tuple[str, nn.Module]], removed: int, diagnostics: dict) -> PruneResult:
    counts = tuple(
        LayerCount(n, int(m.weight.numel()), int(torch.count_nonzero(m.weight.detach()))) for n, m in layers
    )
    return PruneResult(method=method, layers=counts, num_removed=removed, diagnostics=diagnostics)


# ----------------------------------------------------------------------------- saliency registry


@dataclass
class _Request:
    """What to remove: ``amount`` of the survivors or saliency below ``threshold``, per ``scope``."""

    scope: Scope
    amount: float | None
    threshold: float | Mapping[str, float] | None

    def threshold_for(self, name: str) -> float:
        if isinstance(self.threshold, Mapping):
            return float(self.threshold[name])
        return float(self.threshold)


class Saliency:
    """Base class: ranks surviving weights; lower saliency is removed first.

    Subclasses either implement :meth:`scores` (one tensor per layer, the weight's shape;
    the base :meth:`select` then removes the lowest), or override :meth:`select` entirely
    (OBS, which also moves the survivors). Register with :func:`register_saliency`.
    """

    name: ClassVar[str] = ""
    needs_data: ClassVar[bool] = False

    def __init__(self) -> None:
        self.diagnostics: dict[str, Any] = {}

    def options(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "diagnostics" and not k.startswith("_")}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.options().items())})"

    def scores(self, model, layers, loss_fn, data) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def select(self, model, layers, request: _Request, loss_fn, data) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Return ``(new_masks, new_weights)`` per layer name."""
        masks = get_masks(model)
        scores = {n: s.detach() for n, s in self.scores(model, layers, loss_fn, data).items()}
        weights = {n: m.weight.detach().clone() for n, m in layers}
        remove = _lowest(scores, masks, request)
        return {n: masks[n] * (~remove[n]).to(masks[n].dtype) for n in masks}, weights


def _lowest(scores: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], request: _Request) -> dict[str, torch.Tensor]:
    """Boolean tensors marking the surviving weights to remove."""
    remove = {n: torch.zeros_like(m, dtype=torch.bool) for n, m in masks.items()}
    alive = {n: masks[n] > 0 for n in masks}
    groups = [[n] for n in masks] if request.scope is Scope.LAYER else [list(masks)]
    for group in groups:
        flat_s = torch.cat([scores[n].reshape(-1) for n in group])
        flat_a = torch.cat([alive[n].reshape(-1) for n in group])
        idx = torch.nonzero(flat_a).reshape(-1)
        if request.amount is not None:
            k = int(round(request.amount * len(idx)))
            order = torch.argsort(flat_s[idx], stable=True)
            chosen = idx[order[:k]]
        else:
            thr = torch.cat([torch.full((masks[n].numel(),), request.threshold_for(n)) for n in group]) if isinstance(
                request.threshold, Mapping
            ) else torch.full_like(flat_s, float(request.threshold))
            chosen = idx[flat_s[idx] < thr[idx]]
        flat_r = torch.zeros_like(flat_a)
        flat_r[chosen] = True
        for n, part in zip(group, torch.split(flat_r, [masks[n].numel() for n in group])):
            remove[n] = part.reshape(masks[n].shape)
    return remove


_REGISTRY = Registry(Saliency, "saliency method", "bayesstruct.prune.register_saliency")


def register_saliency(name: str) -> Callable[[type[Saliency]], type[Saliency]]:
    """Class decorator adding a :class:`Saliency` subclass to the registry under ``name`` (case-insensitive).

    >>> @register_saliency("random")               # doctest: +SKIP
    ... class Random(Saliency):
    ...     def scores(self, model, layers, loss_fn, data):
    ...         return {n: torch.rand_like(m.weight) for n, m in layers}
    """
    return _REGISTRY.register(name)


def list_saliencies() -> list[str]:
    """Names of the registered saliencies."""
    return _REGISTRY.names()


def get_saliency(method: str | Saliency, **options: Any) -> Saliency:
    """Resolve ``method`` (a registered name or a :class:`Saliency` instance) to a saliency."""
    return _REGISTRY.create(method, **options)


@register_saliency("magnitude")
class Magnitude(Saliency):
    """``s_i = |theta_i|`` (Han, Pool, Tran & Dally, NIPS 2015). Needs no data."""

    def scores(self, model, layers, loss_fn, data):
        return {n: m.weight.detach().abs() for n, m in layers}


@register_saliency("obd")
class OBD(Saliency):
    """Optimal Brain Damage: ``s_i = 1/2 h_ii theta_i^2`` (LeCun, Denker & Solla, NIPS 1989).

    ``h_ii`` is the diagonal of the Hessian of the training loss (:func:`hessian_diagonal`):
    exact up to :data:`MAX_EXACT` prunable weights with ``hessian="auto"``, Hutchinson's
    estimate above; ``"fisher"`` picks the empirical Fisher instead.

    Parameters
    ----------
    hessian : {"auto", "exact", "fisher", "hutchinson"}
    num_samples, seed : int
        For ``"hutchinson"``.
    """

    needs_data = True

    def __init__(self, hessian: str | HessianMode = "auto", num_samples: int = 100, seed: int = 0) -> None:
        super().__init__()
        self.hessian = _enum(HessianMode, hessian, "hessian").value
        self.num_samples, self.seed = num_samples, seed

    def scores(self, model, layers, loss_fn, data):
        diag = hessian_diagonal(model, loss_fn, data, hessian=self.hessian, num_samples=self.num_samples, seed=self.seed)
        self.diagnostics["hessian"] = self.hessian
        return {n: 0.5 * diag[n] * m.weight.detach() ** 2 for n, m in layers}


@register_saliency("obs")
class OBS(Saliency):
    """Optimal Brain Surgeon (Hassibi & Stork, NIPS 1992), one weight at a time.

    With ``H`` the Hessian of the training loss over the surviving prunable weights
    (biases held fixed), damped to ``H + lambda I`` with ``lambda = damping * mean|h_ii|``
    (``damping`` is doubled until ``H + lambda I`` is positive definite -- the Hessian of a
    net not exactly at a minimum can be indefinite), each step removes
    ``q = argmin theta_q^2 / (2 [H^-1]_qq)``, moves the survivors by
    ``delta = -theta_q / [H^-1]_qq * H^-1 e_q`` and downdates
    ``H^-1 <- H^-1 - H^-1 e_q e_q^T H^-1 / [H^-1]_qq`` (the inverse of ``H`` restricted to
    the remaining weights). The Hessian is computed once per call, at the current weights.

    Blocks: one Hessian over all layers (``block="full"``) or one per layer, ignoring the
    cross-layer terms (``block="layer"``, an approximation). ``"auto"`` uses ``"full"`` up to
    :data:`MAX_EXACT` prunable weights and with ``scope="global"``; ``scope="layer"`` always
    uses per-layer blocks.

    Parameters
    ----------
    damping : float
        Relative damping (default ``1e-4``).
    block : {"auto", "full", "layer"}
    """

    needs_data = True

    def __init__(self, damping: float = 1e-4, block: str = "auto") -> None:
        super().__init__()
        if isinstance(damping, bool) or not isinstance(damping, (int, float)) or not math.isfinite(damping) or damping < 0:
            raise InvalidArgumentError(f"`damping` must be a finite number >= 0; got {damping!r}")
        if block not in ("auto", "full", "layer"):
            raise InvalidArgumentError(f"`block` must be 'auto', 'full' or 'layer'; got {block!r}")
        self.damping, self.block = float(damping), block

    def _inverse(self, h: torch.Tensor) -> tuple[torch.Tensor, float]:
        h = 0.5 * (h + h.T)
        scale = float(h.diagonal().abs().mean()) if h.numel() else 1.0
        scale = scale if scale > 0 else 1.0
        rel = self.damping if self.damping > 0 else 1e-12
        eye = torch.eye(h.shape[0], dtype=h.dtype)
        for _ in range(60):
            lam = rel * scale if self.damping > 0 or rel > 1e-12 else 0.0
            chol, info = torch.linalg.cholesky_ex(h + lam * eye)
            if int(info) == 0:
                return torch.cholesky_inverse(chol), lam
            rel *= 2.0
        raise InvalidArgumentError("OBS: the damped Hessian is not positive definite; raise `damping`")  # pragma: no cover

    def select(self, model, layers, request, loss_fn, data):
        masks = get_masks(model)
        obj = _Objective(model, layers, loss_fn, data)
        names = [n for n, _ in layers]
        offsets = torch.cumsum(torch.tensor([0] + obj.numels), 0).tolist()
        alive_flat = torch.cat([masks[n].reshape(-1) > 0 for n in names])
        w = obj.w0.clone()
        full = request.scope is Scope.GLOBAL and (
            self.block == "full" or (self.block == "auto" and w.numel() <= MAX_EXACT)
        )
        if full:
            groups = [torch.nonzero(alive_flat).reshape(-1)]
            owners = [None]
        else:
            groups = [
                offsets[i] + torch.nonzero(alive_flat[offsets[i] : offsets[i + 1]]).reshape(-1) for i in range(len(names))
            ]
            owners = names
        all_idx = torch.cat(groups)
        rows = obj.hessian_rows(all_idx)  # (A, P)
        blocks, lams, pos = [], [], 0
        for g in groups:
            h = rows[pos : pos + len(g)][:, g]
            pos += len(g)
            hinv, lam = self._inverse(h) if len(g) else (torch.zeros(0, 0, dtype=w.dtype), 0.0)
            blocks.append({"idx": g, "hinv": hinv, "removed": torch.zeros(len(g), dtype=torch.bool)})
            lams.append(lam)
        owner_of = torch.empty(w.numel(), dtype=torch.long)
        for i in range(len(names)):
            owner_of[offsets[i] : offsets[i + 1]] = i
        # quotas: per block under scope="layer", else one global count
        quota, global_quota = None, None
        if request.amount is not None:
            if request.scope is Scope.LAYER:
                quota = [int(round(request.amount * len(g))) for g in groups]
            else:
                global_quota = int(round(request.amount * len(all_idx)))
        removed_total = 0
        while True:
            best = None
            for b, blk in enumerate(blocks):
                if len(blk["idx"]) == 0 or bool(blk["removed"].all()):
                    continue
                if quota is not None and quota[b] <= 0:
                    continue
                d = blk["hinv"].diagonal()
                s = w[blk["idx"]] ** 2 / (2 * d)
                s = torch.where(blk["removed"], torch.full_like(s, math.inf), s)
                j = int(torch.argmin(s))
                sj = float(s[j])
                if request.amount is None:
                    q = int(blk["idx"][j])
                    if not sj < request.threshold_for(names[int(owner_of[q])]):
                        # under a per-layer threshold other weights of a full block may still qualify
                        if isinstance(request.threshold, Mapping) and owners[b] is None:
                            thr = torch.tensor([request.threshold_for(names[int(owner_of[int(i)])]) for i in blk["idx"]])
                            ok = (s < thr) & ~blk["removed"]
                            if not bool(ok.any()):
                                continue
                            j = int(torch.argmin(torch.where(ok, s, torch.full_like(s, math.inf))))
                            sj = float(s[j])
                        else:
                            continue
                if best is None or sj < best[0]:
                    best = (sj, b, j)
            if best is None or (global_quota is not None and removed_total >= global_quota):
                break
            _, b, j = best
            blk = blocks[b]
            hinv, idx = blk["hinv"], blk["idx"]
            c = hinv[:, j].clone()
            dq = c[j]
            w[idx] = w[idx] - (w[idx[j]] / dq) * c
            w[idx[j]] = 0.0
            hinv.addr_(c, c, alpha=-1.0 / float(dq))  # rank-one downdate in place (no n-by-n allocation)
            blk["removed"][j] = True
            removed_total += 1
            if quota is not None:
                quota[b] -= 1
        self.diagnostics.update({"damping": lams if len(lams) > 1 else (lams[0] if lams else 0.0), "block": "full" if full else "layer"})
        new_alive = alive_flat.clone()
        for blk in blocks:
            new_alive[blk["idx"][blk["removed"]]] = False
        new_masks = {n: new_alive[offsets[i] : offsets[i + 1]].reshape(obj.shapes[i]).to(masks[n].dtype) for i, n in enumerate(names)}
        new_w = _split(w, layers)
        return new_masks, new_w


# ----------------------------------------------------------------------------- public entry points


def _check_request(amount: Any, threshold: Any, scope: Any, layers) -> _Request:
    sc = _enum(Scope, scope, "scope")
    if (amount is None) == (threshold is None):
        raise InvalidArgumentError(
            "pass exactly one of `amount` (fraction of surviving weights to remove, in [0, 1)) "
            f"and `threshold` (remove weights with saliency below it); got amount={amount!r}, threshold={threshold!r}"
        )
    if amount is not None:
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not (0.0 <= float(amount) < 1.0):
            raise InvalidArgumentError(f"`amount` must be a number in [0, 1), the fraction of surviving weights to remove; got {amount!r}")
        return _Request(sc, float(amount), None)
    names = [n for n, _ in layers]
    if isinstance(threshold, Mapping):
        missing = [n for n in names if n not in threshold]
        if missing:
            raise InvalidArgumentError(f"`threshold` as a mapping must name every prunable layer; missing {missing}")
        vals = list(threshold.values())
    else:
        vals = [threshold]
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InvalidArgumentError(f"`threshold` must be a finite number (or a mapping layer name -> number); got {threshold!r}")
    return _Request(sc, None, threshold if isinstance(threshold, Mapping) else float(threshold))


def compute_saliency(
    model: nn.Module, method: str | Saliency = "magnitude", *, loss_fn: Callable | None = None, data: Any = None, **options: Any
) -> dict[str, torch.Tensor]:
    """Saliency of every prunable weight, per layer name (tensors of the weight's shape).

    Only for score-based methods (``"magnitude"``, ``"obd"``); OBS's saliency depends on the
    order of removal, use :func:`prune`. Already-pruned weights have saliency 0.
    """
    layers = _check_layers(model)
    sal = get_saliency(method, **options)
    if type(sal).scores is Saliency.scores:
        raise InvalidArgumentError(f"saliency {sal.name!r} has no per-weight scores; use prune(model, method={sal.name!r}, ...)")
    return {n: s.detach() for n, s in sal.scores(model, layers, loss_fn, data).items()}


def prune(
    model: nn.Module,
    method: str | Saliency = "magnitude",
    amount: float | None = None,
    threshold: float | Mapping[str, float] | None = None,
    *,
    scope: str | Scope = "global",
    loss_fn: Callable | None = None,
    data: Any = None,
    **options: Any,
) -> PruneResult:
    """Remove the least salient surviving weights of ``model`` in place, by masks.

    Parameters
    ----------
    model : nn.Module
        Its ``nn.Linear`` and ``nn.Conv2d`` weights are pruned (biases are not).
    method : str or Saliency
        ``"magnitude"``, ``"obd"``, ``"obs"`` or any name added with :func:`register_saliency`.
    amount : float in [0, 1), optional
        Fraction of the *surviving* prunable weights to remove (``round(amount * n_alive)``,
        over the whole model or per layer, see ``scope``).
    threshold : float or mapping of layer name to float, optional
        Instead of ``amount``: remove survivors whose saliency is below it.
    scope : {"global", "layer"}
        One ranking over all layers, or one per layer (:class:`Scope`).
    loss_fn : callable, optional
        ``loss_fn(model(x), y)`` -> scalar training loss; required by OBD and OBS.
    data : (x, y) tuple or iterable of (x, y) batches, optional
        The training data the loss is averaged over; required by OBD and OBS.
    **options
        Passed to the saliency's constructor (e.g. ``hessian="fisher"`` for OBD,
        ``damping=1e-3`` for OBS).

    Returns
    -------
    PruneResult

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    >>> prune(net, "magnitude", amount=0.5).num_nonzero
    24
    >>> prune(net, "magnitude", amount=0.5).num_nonzero  # cumulative: half of the survivors
    12
    """
    layers = _check_layers(model)
    request = _check_request(amount, threshold, scope, layers)
    sal = get_saliency(method, **options)
    if sal.needs_data:
        if loss_fn is None:
            raise InvalidArgumentError(f"method {sal.name!r} needs `loss_fn` (loss_fn(model(x), y) -> scalar) and `data`")
        if data is None:
            raise InvalidArgumentError(f"method {sal.name!r} needs `data`: an (x, y) tuple or an iterable of (x, y) batches")
    before = {n: m.sum() for n, m in get_masks(model).items()}
    sal.diagnostics = {}
    new_masks, new_weights = sal.select(model, layers, request, loss_fn, data)
    removed = 0
    for n, mod in layers:
        mask = new_masks[n] * get_masks(model)[n]  # never revive
        removed += int(before[n] - mask.sum())
        _set_layer(mod, mask, new_weights[n])
    return _result(sal.name, layers, removed, dict(sal.diagnostics))
