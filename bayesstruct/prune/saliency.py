"""Saliencies (magnitude, OBD, OBS) and masks that keep pruned weights removed.

A *saliency* ranks the weights of a trained network by how much the training loss
would grow if each were set to zero:

* ``"magnitude"`` -- ``s_i = |theta_i|`` (Han et al., NIPS 2015);
* ``"obd"`` -- Optimal Brain Damage, ``s_i = 1/2 h_ii theta_i^2`` with ``h_ii`` the
  diagonal of the Hessian of the training loss (LeCun, Denker & Solla, NIPS 1989);
* ``"obs"`` -- Optimal Brain Surgeon, ``s_q = theta_q^2 / (2 [H^-1]_qq)``, removing one
  weight at a time and moving the survivors by ``delta = -theta_q / [H^-1]_qq * H^-1 e_q``
  (Hassibi & Stork, NIPS 1992); for networks too large for one Hessian, ``block="row"``
  uses the layer-wise OBS of Dong, Chen & Pan (NeurIPS 2017), whose Hessian
  ``2/N X^T X`` (``X`` the layer's inputs) is shared by every output row of a layer
  (:func:`layerwise_hessians`).

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
To load such a state dict into a fresh model (to resume retraining, say), install the masks
first: ``apply_masks(fresh, masks)`` then ``fresh.load_state_dict(state)``.
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.func import functional_call, grad, hessian, jacrev, vmap
from torch.nn.utils import parametrize
from torch.nn.utils import prune as torch_prune
from tqdm.auto import tqdm

from bayesstruct import _json
from bayesstruct._modes import eval_mode
from bayesstruct._registry import Registry
from bayesstruct._validation import check_seed
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
    "ObsBlock",
    "layerwise_hessians",
    "eval_mode",
    "register_saliency",
    "get_saliency",
    "list_saliencies",
    "prunable_layers",
    "get_masks",
    "apply_masks",
    "hessian_diagonal",
    "compute_saliency",
    "prune",
    "remove_pruning",
]

#: above this many prunable weights, ``hessian="auto"`` stops using the exact diagonal
#: and OBS stops using one Hessian block for all layers
MAX_EXACT = 5000

#: OBS refuses to build more Hessian entries than this (rows of surviving weights x all prunable weights)
MAX_OBS_ENTRIES = 64_000_000


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
    """Empirical Fisher ``1/N sum_n g_{n,i}^2`` from per-example gradients at the observed labels
    (always >= 0; unlike ``"gauss-newton"`` it vanishes for examples the net already fits, so it
    is a poor curvature estimate at a well-fitted optimum -- Kunstner, Hennig & Balles 2019)."""
    GAUSS_NEWTON = "gauss-newton"
    """The exact diagonal of the generalised Gauss-Newton matrix
    ``G = 1/N sum_n J_n^T H_n J_n`` (``J_n`` the Jacobian of the model's output for example
    ``n`` w.r.t. the weights, ``H_n`` the Hessian of the loss w.r.t. that output, its negative
    eigenvalues clipped to 0) -- the Levenberg-Marquardt approximation LeCun, Denker & Solla
    (1989) used for OBD: the Hessian without the terms in the second derivatives of the
    network. Always >= 0; equal to the Hessian for a model linear in its weights, and its
    *diagonal* equals the exact diagonal for a ReLU network (almost everywhere: the output is
    piecewise linear in any single weight, so the dropped term ``sum_k dL/df_k d^2f_k/dtheta_i^2``
    vanishes; not for tanh or sigmoid units, LeCun's own). For
    ``cross_entropy`` it is the true (not the empirical) Fisher information,
    ``H_n = diag(p_n) - p_n p_n^T``. Cost: one batched backward pass per output dimension
    (per-example Jacobians where a prunable layer is called more than once per forward pass);
    about 1 s for LeNet-300-100 on 4,096 MNIST images."""
    HUTCHINSON = "hutchinson"
    """Hutchinson's unbiased estimator ``E[z * Hz]``, Rademacher ``z``, seeded (``num_samples`` draws)."""
    LAYERWISE = "layerwise"
    """The diagonal of each layer's reconstruction Hessian ``2/M X^T X`` (:func:`layerwise_hessians`,
    Dong, Chen & Pan 2017): ``h_(r,q) = 2/M sum_m x_(m,q)^2`` for every output row r, so
    ``s = theta^2 ||x_q||^2 / M`` -- within a layer the ranking of Wanda's ``|theta| ||x_q||``
    (Sun et al. 2023). Forward passes only; ``loss_fn`` is not used."""
    AUTO = "auto"
    """``exact`` up to :data:`MAX_EXACT` prunable weights, ``gauss-newton`` above."""


class ObsBlock(str, Enum):
    """Which Hessian blocks OBS inverts."""

    FULL = "full"
    """One Hessian of the training loss over all prunable weights (exact OBS; small nets)."""
    LAYER = "layer"
    """One Hessian block of the training loss per layer, cross-layer terms ignored."""
    ROW = "row"
    """Layer-wise OBS (Dong, Chen & Pan 2017): per output row, the Hessian ``2/N X^T X`` of the
    layer's squared reconstruction error; one ``d_in x d_in`` matrix per layer, any net size."""
    AUTO = "auto"
    """``full`` up to :data:`MAX_EXACT` weights under ``scope="global"``; else ``layer`` while its
    Hessian rows fit in :data:`MAX_OBS_ENTRIES`; else ``row``."""


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


def _has_sampled_weights(model: nn.Module) -> bool:
    """Whether some Linear/Conv2d ``weight`` of ``model`` is a Pyro ``PyroSample`` site (a Bayesian layer)."""
    return any(
        isinstance(m, (nn.Linear, nn.Conv2d)) and "weight" in m.__dict__.get("_pyro_samples", {}) for m in model.modules()
    ) if isinstance(model, nn.Module) else False


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


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """Install given 0/1 masks on ``model``'s prunable layers, in place (the counterpart of :func:`get_masks`).

    Each named layer's weight becomes ``original * mask`` as after :func:`prune`, so that the
    masked entries stay exactly zero through any retraining. A mask is combined with the
    layer's current one (``new = current * mask``): a pruned weight never comes back. Layers
    not named in ``masks`` are left as they are.

    Typical uses: resuming a pruned model from its saved state dict,
    ``apply_masks(fresh, masks); fresh.load_state_dict(state)`` (with ``masks`` from
    :func:`get_masks`, or read from the state dict's ``...parametrizations.weight.0.mask``
    entries); or keeping the zeros of a model restored by
    :func:`bayesstruct.prune.decompress` pruned while fine-tuning it,
    ``apply_masks(net, {n: m.weight != 0 for n, m in prunable_layers(net)})``.

    Parameters
    ----------
    model : nn.Module
        The model whose ``nn.Linear`` / ``nn.Conv2d`` weights are masked.
    masks : mapping of layer name to Tensor
        Layer names as in :func:`prunable_layers` / :func:`get_masks`; each mask has the
        weight's shape and holds only 0 and 1 (``bool`` or any numeric dtype).

    Returns
    -------
    nn.Module
        ``model`` itself.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    >>> _ = apply_masks(net, {"0": torch.tensor([[1, 0], [0, 1]])})
    >>> (net[0].weight == 0).tolist()
    [[False, True], [True, False]]
    """
    if _has_sampled_weights(model):
        raise InvalidArgumentError(
            "`model` is a Bayesian PyroModule (its weights are PyroSample sites): apply masks to it and its guide "
            "with bayesstruct.prune.mask_weights"
        )
    layers = dict(_check_layers(model))
    if not isinstance(masks, Mapping):
        raise InvalidArgumentError(f"`masks` must be a mapping of layer name -> 0/1 tensor; got {type(masks).__name__}")
    checked = {}
    for name, mask in masks.items():
        if name not in layers:
            raise InvalidArgumentError(f"`masks` names {name!r}, which is not a prunable layer of `model`; its prunable layers are {list(layers)}")
        weight = layers[name].weight
        if not torch.is_tensor(mask) or tuple(mask.shape) != tuple(weight.shape):
            got = tuple(mask.shape) if torch.is_tensor(mask) else type(mask).__name__
            raise InvalidArgumentError(f"`masks[{name!r}]` must be a tensor of the weight's shape {tuple(weight.shape)}; got {got}")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise InvalidArgumentError(f"`masks[{name!r}]` must hold only 0 and 1")
        checked[name] = mask.to(device=weight.device, dtype=weight.dtype)
    current = get_masks(model)
    for name, mask in checked.items():
        module = layers[name]
        _set_layer(module, current[name] * mask, _raw_weight(module).detach().clone())
    return model


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


def _batches(data: Any, name: str = "data") -> list[tuple[Any, Any]]:
    if data is None:
        raise InvalidArgumentError(f"`{name}` is required for this saliency: pass an (x, y) tuple or an iterable of (x, y) batches")
    if isinstance(data, (tuple, list)) and len(data) == 2 and torch.is_tensor(data[0]):
        return [(data[0], data[1])]
    if torch.is_tensor(data):
        raise InvalidArgumentError(f"`{name}` must be an (x, y) tuple or an iterable of (x, y) batches; got a single tensor")
    if isinstance(data, (tuple, list)) and len(data) == 2 and hasattr(data[0], "__array__"):
        raise InvalidArgumentError(
            f"`{name}`: x and y must be torch tensors (convert with torch.as_tensor); got {type(data[0]).__name__}"
        )
    try:
        batches = [tuple(b) for b in data]
    except TypeError:
        raise InvalidArgumentError(f"`{name}` must be an (x, y) tuple or an iterable of (x, y) batches; got {type(data).__name__}") from None
    if not batches or any(len(b) != 2 for b in batches):
        raise InvalidArgumentError(f"`{name}` must hold at least one (x, y) batch, each a pair")
    return batches


def _check_batches(batches: list[tuple[Any, Any]], name: str = "data", *, need_y: bool = True) -> None:
    """Every batch: ``x`` a non-empty tensor ``(n, ...)`` (finite if floating), ``y`` a tensor of ``n`` rows.

    With ``need_y=False`` (only the inputs are used) ``y`` may be anything, but a tensor ``y``
    must still have ``n`` rows.
    """
    for i, (x, y) in enumerate(batches):
        where = f"`{name}`" if len(batches) == 1 else f"`{name}` batch {i}"
        if not torch.is_tensor(x):
            raise InvalidArgumentError(f"{where}: x must be a torch tensor; got {type(x).__name__}")
        if x.dim() < 1 or x.shape[0] < 1:
            raise InvalidArgumentError(f"{where}: x must be (n, ...) with n >= 1 examples; got shape {tuple(x.shape)}")
        if x.is_floating_point() and not torch.isfinite(x).all():
            bad = int((~torch.isfinite(x)).sum())
            raise InvalidArgumentError(f"{where}: x contains {bad} NaN or infinite value(s)")
        if not torch.is_tensor(y):
            if need_y:
                raise InvalidArgumentError(f"{where}: y must be a torch tensor; got {type(y).__name__}")
            continue
        if y.dim() < 1 or y.shape[0] != x.shape[0]:
            raise InvalidArgumentError(
                f"{where}: x and y must have the same number of rows; got x {tuple(x.shape)} and y {tuple(y.shape)}"
            )
        if y.is_floating_point() and not torch.isfinite(y).all():
            raise InvalidArgumentError(f"{where}: y contains NaN or infinite values")


def _check_finite_weights(layers: list[tuple[str, nn.Module]], name: str = "model") -> None:
    """NaN or infinite weights would be ranked (and pruned) silently wrong: refuse them."""
    for n, m in layers:
        w = m.weight.detach()
        if not torch.isfinite(w).all():
            bad = int((~torch.isfinite(w)).sum())
            raise InvalidArgumentError(f"`{name}`: layer {n!r} has {bad} NaN or infinite weight(s); fix or retrain it first")


def _is_real(v: Any) -> bool:
    """A real number (Python or NumPy), not a bool."""
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _check_model_takes(model: nn.Module, x: Any, y: Any = None, loss_fn: Callable | None = None, name: str = "data") -> None:
    """Try ``model`` (and ``loss_fn``) on the first two examples of ``x``, so that bad data is named.

    A shape mismatch deep inside torch becomes an :class:`InvalidArgumentError` that names
    ``name``. With ``loss_fn=torch.nn.functional.cross_entropy`` the output must be logits
    ``(n, C)`` and *every* label of ``y`` a class in ``0..C-1``; with another ``loss_fn``,
    ``loss_fn(model(x[:2]), y[:2])`` must evaluate (so only callers that evaluate the loss per
    example pass a custom one: OBD and OBS; minibatch training passes none). The model runs in
    evaluation mode (batch-norm statistics are not updated) and without gradients; its mode is
    restored.
    """
    if not torch.is_tensor(x) or x.dim() < 1 or x.shape[0] < 1:
        return  # the callers' own checks name other kinds of input
    loss = None
    try:
        with eval_mode(model), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the real run warns again, once
            out = model(x[:2])
            if loss_fn is not None and loss_fn is not F.cross_entropy and y is not None:
                loss = loss_fn(out, y[:2])
    except (RuntimeError, ValueError, IndexError, TypeError) as err:
        what = "the model" if loss_fn is None or loss_fn is F.cross_entropy else "loss_fn(model(x), y)"
        raise InvalidArgumentError(f"`{name}`: {what} fails on x of shape {tuple(x.shape)}: {err}") from err
    if loss is not None and not (torch.is_tensor(loss) and loss.numel() == 1 and loss.is_floating_point()):
        got = f"a tensor of shape {tuple(loss.shape)}" if torch.is_tensor(loss) else type(loss).__name__
        raise InvalidArgumentError(
            f"`loss_fn` must return the mean loss over a batch, a scalar float tensor (e.g. reduction='mean'); "
            f"on x[:2] it returned {got}"
        )
    if loss_fn is F.cross_entropy and torch.is_tensor(y):
        if not torch.is_tensor(out) or out.dim() != 2 or out.shape[0] != min(2, x.shape[0]):
            got = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
            raise InvalidArgumentError(f"`model` must map x to logits (n, C); on x[:2] it returned {got}")
        if y.is_floating_point():
            if y.dim() != 2 or y.shape[1] != out.shape[1]:
                raise InvalidArgumentError(
                    f"`{name}`: with cross_entropy, y must hold integer class labels (n,) or class probabilities "
                    f"(n, {out.shape[1]}); got dtype {y.dtype}, shape {tuple(y.shape)}"
                )
            return
        if y.dtype == torch.bool or y.is_complex() or y.dim() != 1:
            raise InvalidArgumentError(
                f"`{name}`: with cross_entropy, y must hold integer class labels (n,); got dtype {y.dtype}, shape {tuple(y.shape)}"
            )
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= out.shape[1]):
            raise InvalidArgumentError(
                f"`{name}`: labels must be class indices 0..{out.shape[1] - 1} of the model's {out.shape[1]} logits; "
                f"got labels {int(y.min())}..{int(y.max())}"
            )


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
        _check_batches(self.batches)
        for x, y in self.batches:
            _check_model_takes(model, x, y, loss_fn)
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

    def _example_loss(self, w: torch.Tensor, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(functional_call(self.model, self.params(w), (xi.unsqueeze(0),)), yi.unsqueeze(0))

    def diag_fisher(self, chunk: int = 64) -> torch.Tensor:
        """``1/N sum_n g_n^2``; per-example gradients by ``vmap(grad(.))`` in chunks (one at a time as a fallback)."""
        w = self.w0.detach()
        per_example = vmap(grad(self._example_loss), in_dims=(None, 0, 0))
        total = torch.zeros_like(w)
        count = 0
        for x, y in self.batches:
            for start in range(0, int(x.shape[0]), chunk):
                xs, ys = x[start : start + chunk], y[start : start + chunk]
                try:
                    g = per_example(w, xs, ys)
                except RuntimeError:  # an op without a batching rule
                    g = torch.stack([grad(self._example_loss)(w, xi, yi) for xi, yi in zip(xs, ys)])
                total += (g.detach() ** 2).sum(0)
                count += int(xs.shape[0])
        return total / count


    def _example_output(self, w: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        out = functional_call(self.model, self.params(w), (xi.unsqueeze(0),))
        self.out_shape = tuple(out.shape[1:])
        return out.reshape(-1)

    def output_factors(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``V_n`` ``(B, C, K)`` with ``V_n V_n^T`` the Hessian of the loss of example ``n`` w.r.t. its flat output ``z_n``
        (eigenvectors scaled by the square roots of the eigenvalues, negative ones clipped to 0; zero columns dropped)."""

        def example_loss(zi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
            return self.loss_fn(zi.reshape((1,) + self.out_shape), yi.unsqueeze(0))

        try:
            h_out = vmap(hessian(example_loss))(z, y)  # (B, C, C)
        except RuntimeError:  # a loss vmap cannot batch (F.one_hot, .item(), data-dependent branches): one by one
            h_out = torch.stack([hessian(example_loss)(zi, yi) for zi, yi in zip(z, y)])
        evals, evecs = torch.linalg.eigh(0.5 * (h_out + h_out.transpose(-1, -2)))
        factors = evecs * evals.clamp_min(0).sqrt().unsqueeze(-2)
        return factors[..., factors.abs().amax((0, 1)) > 0]

    def diag_gauss_newton(self, layers: list[tuple[str, nn.Module]], chunk: int = 512) -> torch.Tensor:
        """``1/N sum_n sum_k (v_nk^T J_n)^2`` (:meth:`output_factors`). For each prunable layer called
        once per forward pass, the per-example gradient of ``v_nk^T z_n`` is the outer product of the
        back-propagated ``v_nk`` at the layer's output and the layer's input (im2col patches for a
        Conv2d), from one batched backward pass per ``k``; otherwise per-example Jacobians by
        ``vmap(jacrev(.))``."""
        fast = _gauss_newton_by_layers(self, layers, chunk)
        return fast if fast is not None else self._gauss_newton_by_jacobians()

    def _gauss_newton_by_jacobians(self, max_entries: int = 20_000_000) -> torch.Tensor:
        w = self.w0.detach()
        outputs = vmap(self._example_output, in_dims=(None, 0))
        jacobians = vmap(jacrev(self._example_output), in_dims=(None, 0))
        total = torch.zeros_like(w)
        count = 0
        for x, y in self.batches:
            with torch.no_grad():
                z = outputs(w, x[:1])
            chunk = max(1, max_entries // (z.shape[-1] * w.numel()))
            for start in range(0, int(x.shape[0]), chunk):
                xs, ys = x[start : start + chunk], y[start : start + chunk]
                factors = self.output_factors(outputs(w, xs).detach(), ys)
                jac = jacobians(w, xs).detach()  # (B, C, P)
                total += torch.einsum("bck,bcp->bkp", factors, jac).pow(2).sum((0, 1))
                count += int(xs.shape[0])
        return total / count


def _squared_weight_grads(module: nn.Module, inputs: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor | None:
    """``sum_n g_n^2`` (weight-shaped) with ``g_n`` the gradient of ``<grad_out_n, module(inputs)_n>`` w.r.t. the weight."""
    if isinstance(module, nn.Linear) and inputs.dim() == 2:  # g_n = d_n a_n^T, so g_n^2 = d_n^2 (a_n^2)^T
        return grad_out.pow(2).T @ inputs.pow(2)
    per_example = _per_example_weight_grads(module, inputs, grad_out)
    return None if per_example is None else per_example.pow(2).sum(0)


def _per_example_weight_grads(module: nn.Module, inputs: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor | None:
    """``(B, *weight.shape)``: the gradient of ``<grad_out_n, module(inputs)_n>`` w.r.t. the weight, per example."""
    if isinstance(module, nn.Linear):
        a = inputs.reshape(inputs.shape[0], -1, inputs.shape[-1])
        d = grad_out.reshape(grad_out.shape[0], -1, grad_out.shape[-1])
        return torch.einsum("blo,bli->boi", d, a)
    if module.groups != 1 or module.padding_mode != "zeros" or isinstance(module.padding, str):
        return None
    cols = nn.functional.unfold(inputs, module.kernel_size, dilation=module.dilation, padding=module.padding, stride=module.stride)
    d = grad_out.reshape(grad_out.shape[0], grad_out.shape[1], -1)
    return torch.bmm(d, cols.transpose(1, 2)).reshape((inputs.shape[0],) + module.weight.shape)


def _gauss_newton_by_layers(obj: _Objective, layers: list[tuple[str, nn.Module]], chunk: int) -> torch.Tensor | None:
    """The Gauss-Newton diagonal from layer inputs and back-propagated output factors, or None where it does not apply."""
    seen: dict[str, list] = {}

    def hook(name):
        def fn(mod, inputs, output):
            seen[name].append((inputs[0].detach(), output))

        return fn

    total = {n: torch.zeros_like(m.weight) for n, m in layers}
    count = 0
    handles = [m.register_forward_hook(hook(n)) for n, m in layers]
    try:
        for x, y in obj.batches:
            for start in range(0, int(x.shape[0]), chunk):
                xs, ys = x[start : start + chunk], y[start : start + chunk]
                seen.clear()
                seen.update({n: [] for n, _ in layers})
                with torch.enable_grad():
                    z = obj.model(xs)
                    if any(len(v) != 1 or not v[0][1].requires_grad for v in seen.values()):
                        return None
                    obj.out_shape = tuple(z.shape[1:])
                    factors = obj.output_factors(z.detach().reshape(z.shape[0], -1), ys)
                    outs = [seen[n][0][1] for n, _ in layers]
                    for k in range(factors.shape[-1]):
                        grads = torch.autograd.grad(z, outs, grad_outputs=factors[..., k].reshape(z.shape), retain_graph=True)
                        for (n, m), g in zip(layers, grads):
                            squares = _squared_weight_grads(m, seen[n][0][0], g.detach())
                            if squares is None:
                                return None
                            total[n] += squares
                count += int(xs.shape[0])
    finally:
        for h in handles:
            h.remove()
    for n, m in layers:
        wm = _mask_module(m)
        if wm is not None:  # the derivative w.r.t. a masked weight is 0, as in the other estimators
            total[n] = total[n] * (wm.mask != 0)
    return torch.cat([(total[n] / count).reshape(-1) for n, _ in layers]).to(obj.w0.dtype)


def _split(flat: torch.Tensor, layers: list[tuple[str, nn.Module]]) -> dict[str, torch.Tensor]:
    chunks = torch.split(flat, [m.weight.numel() for _, m in layers])
    return {n: c.reshape(m.weight.shape).clone() for (n, m), c in zip(layers, chunks)}


def _check_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The prunable layers of ``model``, refusing what the masks cannot handle honestly.

    Refused: no prunable layer; a layer pruned by ``torch.nn.utils.prune`` (its ``weight`` is
    recomputed from ``weight_orig`` by a hook, which a second mask would fight); a lazy layer
    not run yet (no weight to rank); two layers sharing one weight tensor (tied weights: one
    mask per layer would prune the tensor twice and count it twice). Warned: other
    convolutions (``Conv1d``, ``Conv3d``, transposed), which are left dense.
    """
    layers = prunable_layers(model)
    if not layers:
        raise InvalidArgumentError(
            f"`model` ({type(model).__name__}) has no prunable layers: only the weights of nn.Linear and nn.Conv2d are pruned"
        )
    owner: dict[int, str] = {}
    for n, m in layers:
        if any(isinstance(h, torch_prune.BasePruningMethod) for h in m._forward_pre_hooks.values()):
            raise InvalidArgumentError(
                f"`model`: layer {n!r} was pruned with torch.nn.utils.prune (it has `weight_orig` and `weight_mask`): "
                f"make it permanent with torch.nn.utils.prune.remove(module, 'weight') first, or start from the unpruned model "
                f"and pass its mask to bayesstruct.prune.apply_masks"
            )
        if any(isinstance(p, nn.parameter.UninitializedParameter) for p in m.parameters(recurse=False)):
            raise InvalidArgumentError(
                f"`model`: layer {n!r} ({type(m).__name__}) has uninitialised (lazy) parameters: run the model once on a batch "
                "(model(x)) so that their shapes are known, then prune"
            )
        key = id(_raw_weight(m))
        if key in owner:
            raise InvalidArgumentError(
                f"`model`: layers {owner[key]!r} and {n!r} share one weight tensor (tied weights); a mask per layer would "
                "prune and count it twice. Prune a model whose prunable layers own their weights"
            )
        owner[key] = n
    skipped = [f"{n} ({type(m).__name__})" for n, m in model.named_modules()
               if isinstance(m, nn.modules.conv._ConvNd) and not isinstance(m, nn.Conv2d)]
    if skipped:
        warnings.warn(f"layers {skipped} are not pruned: only the weights of nn.Linear and nn.Conv2d are", UserWarning, stacklevel=3)
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
    hessian : {"auto", "exact", "gauss-newton", "fisher", "hutchinson", "layerwise"}
        See :class:`HessianMode`.
    num_samples, seed : int
        Rademacher draws and their seed for ``"hutchinson"``.

    Returns
    -------
    dict of str to Tensor
        Per layer name, a tensor of the weight's shape. Computed in evaluation mode
        (:func:`eval_mode`).
    """
    with eval_mode(model):
        return _hessian_diagonal(model, loss_fn, data, hessian, num_samples, seed)


def _hessian_diagonal(model, loss_fn, data, hessian, num_samples, seed) -> dict[str, torch.Tensor]:
    layers = _check_layers(model)
    _check_finite_weights(layers)
    mode = _enum(HessianMode, hessian, "hessian")
    if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral) or num_samples < 1:
        raise InvalidArgumentError(f"`num_samples` must be an integer >= 1; got {num_samples!r}")
    seed = check_seed(seed)
    if mode is HessianMode.LAYERWISE:
        hess = layerwise_hessians(model, data)
        out = {}
        for n, m in layers:
            rows = m.weight.reshape(m.weight.shape[0], -1)
            h = hess[n].diagonal()[: rows.shape[1]].to(m.weight.dtype)
            out[n] = h.expand_as(rows).reshape(m.weight.shape).clone()
        return out
    obj = _Objective(model, layers, loss_fn, data)
    if mode is HessianMode.AUTO:
        mode = HessianMode.EXACT if obj.w0.numel() <= MAX_EXACT else HessianMode.GAUSS_NEWTON
    if mode is HessianMode.EXACT:
        diag = obj.diag_exact()
    elif mode is HessianMode.FISHER:
        diag = obj.diag_fisher()
    elif mode is HessianMode.GAUSS_NEWTON:
        diag = obj.diag_gauss_newton(layers)
    else:
        diag = obj.diag_hutchinson(int(num_samples), seed)
    return _split(diag, layers)


def _layer_inputs(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The rows ``(M, d)`` that multiply ``module``'s weight ``(out, d)``, with a column of ones if it has a bias.

    Linear: the input flattened to ``(N..., in)``. Conv2d (``groups=1``, zero padding): the
    im2col patches ``(N * L, C * kh * kw)`` (:func:`torch.nn.functional.unfold`), ordered like
    ``weight.reshape(out, -1)``.
    """
    if isinstance(module, nn.Conv2d):
        if module.groups != 1 or module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise InvalidArgumentError(
                f"the layer-wise Hessian (OBS block='row', OBD hessian='layerwise') handles Conv2d with groups=1, zero padding "
                f"and numeric `padding`; layer {module} has groups={module.groups}, padding_mode={module.padding_mode!r}, "
                f"padding={module.padding!r}. Use OBS block='layer', or OBD with hessian='gauss-newton' or 'fisher'"
            )
        cols = nn.functional.unfold(x, module.kernel_size, dilation=module.dilation, padding=module.padding, stride=module.stride)
        rows = cols.transpose(1, 2).reshape(-1, cols.shape[1])
    else:
        rows = x.reshape(-1, x.shape[-1])
    rows = rows.detach().to(torch.float64)
    if module.bias is not None:
        rows = torch.cat([rows, torch.ones(rows.shape[0], 1, dtype=rows.dtype)], 1)
    return rows


def layerwise_hessians(model: nn.Module, data: Any) -> dict[str, torch.Tensor]:
    """Per prunable layer, the Hessian ``H = 2/M X^T X`` of its layer-wise reconstruction error.

    For one output row ``w`` of a layer with inputs ``X`` ``(M, d)`` (collected by forward
    hooks over ``data``; for Conv2d the ``M = N * L`` im2col patches) the layer-wise error
    ``E(w') = 1/M ||X w' - X w||^2`` has Hessian ``2/M X^T X``, the same for every row
    (Dong, Chen & Pan, NeurIPS 2017, eq. 4). When the layer has a bias, ``X`` carries a last
    column of ones, so ``H`` is ``(d + 1, d + 1)`` and the bias is the last coordinate.

    Parameters
    ----------
    model : nn.Module
    data : (x, y) tuple or iterable of (x, y) batches
        Only the inputs ``x`` are used.

    Returns
    -------
    dict of str to Tensor
        Per layer name, ``H`` in float64, ``(d, d)`` or ``(d + 1, d + 1)``. The inputs are
        collected in evaluation mode (:func:`eval_mode`).
    """
    layers = _check_layers(model)
    _check_finite_weights(layers)
    batches = _batches(data)
    _check_batches(batches, need_y=False)
    for x, _ in batches:
        _check_model_takes(model, x)
    gram: dict[str, torch.Tensor] = {}
    count = {n: 0 for n, _ in layers}

    def hook(name):
        def fn(mod, inputs, output):
            rows = _layer_inputs(mod, inputs[0])
            gram[name] = gram[name] + rows.T @ rows if name in gram else rows.T @ rows
            count[name] += rows.shape[0]

        return fn

    handles = [mod.register_forward_hook(hook(n)) for n, mod in layers]
    try:
        with torch.no_grad(), eval_mode(model):
            for x, _ in batches:
                model(x)
    finally:
        for h in handles:
            h.remove()
    missing = [n for n, _ in layers if count[n] == 0]
    if missing:
        raise InvalidArgumentError(f"layers {missing} were not called in model(x) for `data`; layer-wise OBS needs their inputs")
    return {n: 2.0 * gram[n] / count[n] for n, _ in layers}


def _row_solve(
    h: torch.Tensor, p: torch.Tensor, w0: torch.Tensor, keep: torch.Tensor, *, need_diag: bool = True, chunk: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact OBS for many rows sharing one damped Hessian ``h`` ``(d, d)`` (``p = h^-1``).

    For each row ``r`` (``w0``: ``(R, d)``, ``keep``: ``(R, d)`` bool) the minimiser of
    ``1/2 (w - w0)^T h (w - w0)`` with ``w_Q = 0`` off ``keep`` -- what removing ``Q`` one weight at
    a time by OBS steps reaches -- and ``[(h_KK)^-1]_qq`` on the kept set (the OBS saliency's
    denominator). Of the two forms below the one with fewer flops is used (rows padded to a common size):

    * ``w_K = w0_K + (h_KK)^-1 h_KQ w0_Q`` and ``diag (h_KK)^-1`` from the Cholesky factor of ``h_KK``;
    * or ``w = w0 - p_:Q (p_QQ)^-1 w0_Q`` (Hassibi & Stork's update for a set) and
      ``diag (h_KK)^-1 = diag p_KK - diag p_KQ (p_QQ)^-1 p_QK`` (Schur complement).

    Returns ``(w, dinv)``, both ``(R, d)``; ``w`` is 0 and ``dinv`` is ``inf`` off ``keep``
    (and everywhere unless ``need_diag``). Rows are batched in chunks of similar kept counts.
    """
    num_rows, d = w0.shape
    out_w, out_d = torch.zeros_like(w0), torch.full_like(w0, math.inf)
    nk = keep.sum(1)
    by_size = torch.argsort(nk, stable=True)
    for start in range(0, num_rows, chunk):
        sl = by_size[start : start + chunk]
        kp, w, n_keep = keep[sl], w0[sl], nk[sl]
        r = kp.shape[0]
        if bool(kp.all()):
            out_w[sl], out_d[sl] = w, p.diagonal().expand(r, d)
            continue
        mk, mq = int(n_keep.max()), int((d - n_keep).max())
        use_keep = mk**3 <= mq**2 * d + mq**3 / 3  # flops of the two factorisations below
        sel = kp if use_keep else ~kp
        m = int(sel.sum(1).max())
        if m == 0:  # nothing kept
            continue
        order = torch.argsort((~sel).to(torch.int8), dim=1, stable=True)[:, :m]  # selected indices first
        valid = torch.arange(m).expand(r, m) < sel.sum(1, keepdim=True)
        idx = order  # padding positions hold distinct unselected indices, so scatters below never collide
        pair = valid[:, :, None] & valid[:, None, :]
        eye = torch.eye(m, dtype=h.dtype).expand(r, m, m)
        src = h if use_keep else p
        block = torch.where(pair, src[idx[:, :, None], idx[:, None, :]], eye)
        chol = torch.linalg.cholesky(block)
        wq = torch.where(kp, torch.zeros_like(w), w)  # w0 on the removed set Q
        rows = torch.arange(r)[:, None]
        if use_keep:
            rhs = torch.where(valid, (wq @ h).gather(1, idx), torch.zeros_like(idx, dtype=h.dtype))  # (h_KQ w0_Q)
            u = torch.cholesky_solve(rhs[..., None], chol)[..., 0]
            dk = torch.cholesky_inverse(chol).diagonal(dim1=-2, dim2=-1) if need_diag else torch.ones_like(u)
            new_w = torch.zeros_like(w)
            new_w[rows, idx] = torch.where(valid, w.gather(1, idx) + u, torch.zeros_like(u))
            dinv = torch.full_like(w, math.inf)
            dinv[rows, idx] = torch.where(valid, dk, torch.full_like(dk, math.inf))
        else:
            wsel = torch.where(valid, w.gather(1, idx), torch.zeros_like(idx, dtype=h.dtype))
            c = torch.cholesky_solve(wsel[..., None], chol)[..., 0]  # (p_QQ)^-1 w0_Q
            pq = torch.where(valid[:, :, None], p[idx], torch.zeros(1, dtype=h.dtype))  # (r, m, d) = p_Q:
            new_w = w - torch.einsum("rm,rmd->rd", c, pq)
            if need_diag:
                z = torch.linalg.solve_triangular(chol, pq, upper=False)
                dinv = p.diagonal() - (z**2).sum(1)
            else:
                dinv = torch.ones_like(w)
        out_w[sl] = torch.where(kp, new_w, torch.zeros_like(new_w))
        out_d[sl] = torch.where(kp, dinv, torch.full_like(dinv, math.inf))
    return out_w, out_d


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
        return _json.dumps(self.to_dict(), **kwargs)

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
    """What to remove: ``amount`` of the survivors or saliency below ``threshold``, per ``scope``.

    Either may be a mapping layer name -> value (``amount`` only under ``Scope.LAYER``).
    """

    scope: Scope
    amount: float | Mapping[str, float] | None
    threshold: float | Mapping[str, float] | None

    def amount_for(self, name: str) -> float:
        if isinstance(self.amount, Mapping):
            return float(self.amount[name])
        return float(self.amount)

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

    @property
    def needs_loss(self) -> bool:
        """Whether :func:`prune` must be given ``loss_fn`` (by default: whenever it needs ``data``)."""
        return self.needs_data

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
            k = int(round(request.amount_for(group[0]) * len(idx)))
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
    exact up to :data:`MAX_EXACT` prunable weights with ``hessian="auto"``, above it the
    Gauss-Newton diagonal (``"gauss-newton"``, the approximation LeCun et al. used); also
    Hutchinson's estimate, the empirical Fisher, or each layer's reconstruction Hessian
    (:class:`HessianMode`).

    The diagonal is that of the net as it is when :func:`prune` is called. With
    ``num_stages > 1`` (and ``amount``) the removal is split into rounds, as OBS's: after
    round ``t`` a fraction ``1 - (1 - amount)^(t / num_stages)`` of the survivors is gone (the
    last round ends exactly at ``round(amount * n)`` per group), and the diagonal is
    recomputed at the pruned net before each round, still without retraining -- LeCun et al.'s
    "delete some low-saliency parameters, iterate" without the retraining step. On LeNet-300-100
    at a well-fitted optimum, 16 rounds of the Gauss-Newton diagonal halve the test error of
    one round at 10% kept (BENCHMARKS.md).

    When it can mislead: ``1/2 h_ii theta_i^2`` is the rise of a quadratic expanded at the
    optimum. With a softmax cross-entropy at a confident optimum most examples have
    ``p(1 - p) ~ 0``, so the curvature is small exactly where the loss turns linear once the
    margins shrink, and removing many weights at once costs far more than predicted. On the
    converged LeNet-300-100 the measured rise of OBD's input-layer mask is ~50x its
    prediction (magnitude's ~5x), and one-shot OBD loses to magnitude from 30% kept down
    (``benchmarks/obd_diagnosis.py``); :class:`OBS` with its compensating update does not.
    Trained on LeCun et al.'s own squared error instead, where the loss *is* quadratic in the
    logits, the same net's OBD mask still costs 3.8x magnitude's at 10% kept: the ReLU units it
    leaves with few inputs switch on or off (30% of the gates against 14%), a kink no Hessian at
    the optimum sees. Tanh units do not rescue it at 30% or 20% kept either.

    Parameters
    ----------
    hessian : {"auto", "exact", "gauss-newton", "fisher", "hutchinson", "layerwise"}
    num_samples, seed : int
        For ``"hutchinson"``.
    num_stages : int
        Removal rounds with the diagonal recomputed in between (default 1; only with ``amount``).
    """

    needs_data = True

    def __init__(self, hessian: str | HessianMode = "auto", num_samples: int = 100, seed: int = 0,
                 num_stages: int = 1) -> None:
        super().__init__()
        if isinstance(num_stages, bool) or not isinstance(num_stages, int) or num_stages < 1:
            raise InvalidArgumentError(f"`num_stages` must be an integer >= 1; got {num_stages!r}")
        if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral) or num_samples < 1:
            raise InvalidArgumentError(f"`num_samples` must be an integer >= 1; got {num_samples!r}")
        seed = check_seed(seed)
        self.hessian = _enum(HessianMode, hessian, "hessian").value
        self.num_samples, self.seed, self.num_stages = num_samples, seed, num_stages

    def select(self, model, layers, request: _Request, loss_fn, data):
        if self.num_stages == 1:
            return super().select(model, layers, request, loss_fn, data)
        if request.amount is None:
            raise InvalidArgumentError("OBD with `num_stages` > 1 needs `amount` (a threshold has no rounds)")
        work = copy.deepcopy(model)
        work_layers = dict(prunable_layers(work))
        masks = get_masks(work)
        groups = [[n] for n in masks] if request.scope is Scope.LAYER else [list(masks)]
        alive0 = [sum(int((masks[n] > 0).sum()) for n in g) for g in groups]
        for t in range(1, self.num_stages + 1):
            scores = {n: v.detach() for n, v in self.scores(work, list(work_layers.items()), loss_fn, data).items()}
            masks = get_masks(work)
            for g, n0 in zip(groups, alive0):
                a = request.amount_for(g[0])
                fraction = a if t == self.num_stages else 1 - (1 - a) ** (t / self.num_stages)
                alive = sum(int((masks[n] > 0).sum()) for n in g)
                step = int(round(fraction * n0)) - (n0 - alive)  # removed by the end of round t, less removed so far
                if step <= 0:
                    continue
                sub = _Request(Scope.GLOBAL, step / alive, None)
                remove = _lowest({n: scores[n] for n in g}, {n: masks[n] for n in g}, sub)
                for n in g:
                    mod = work_layers[n]
                    _set_layer(mod, masks[n] * (~remove[n]).to(masks[n].dtype), mod.weight.detach().clone())
        self.diagnostics["num_stages"] = self.num_stages
        return get_masks(work), {n: m.weight.detach().clone() for n, m in layers}

    @property
    def needs_loss(self) -> bool:
        return self.hessian != HessianMode.LAYERWISE.value

    def scores(self, model, layers, loss_fn, data):
        diag = hessian_diagonal(model, loss_fn, data, hessian=self.hessian, num_samples=self.num_samples, seed=self.seed)
        self.diagnostics["hessian"] = self.hessian
        return {n: 0.5 * diag[n] * m.weight.detach() ** 2 for n, m in layers}


@register_saliency("obs")
class OBS(Saliency):
    """Optimal Brain Surgeon (Hassibi & Stork, NIPS 1992), exact or layer-wise.

    With ``H`` the Hessian of the training loss over the surviving prunable weights
    (biases held fixed), damped to ``H + lambda I`` with ``lambda = damping * mean|h_ii|``
    (``damping`` is doubled until ``H + lambda I`` is positive definite -- the Hessian of a
    net not exactly at a minimum can be indefinite), each step removes
    ``q = argmin theta_q^2 / (2 [H^-1]_qq)``, moves the survivors by
    ``delta = -theta_q / [H^-1]_qq * H^-1 e_q`` and downdates
    ``H^-1 <- H^-1 - H^-1 e_q e_q^T H^-1 / [H^-1]_qq`` (the inverse of ``H`` restricted to
    the remaining weights). The Hessian is computed once per call, at the current weights.

    Blocks (:class:`ObsBlock`):

    * ``"full"``: one Hessian over all layers (``P^2`` entries; small nets);
    * ``"layer"``: one block per layer of the training-loss Hessian, cross-layer terms ignored;
    * ``"row"``: **layer-wise OBS** (Dong, Chen & Pan, NeurIPS 2017). Each layer is pruned to
      keep its own output: for output row ``r`` with weights ``w_r`` and layer inputs ``X``
      ``(M, d)`` (forward hooks over ``data``; Conv2d inputs unfolded to im2col patches), the
      error ``E_r = 1/M ||X (w_r' - w_r)||^2`` has Hessian ``H = 2/M X^T X`` (+ damping),
      the same ``d x d`` matrix for every row of the layer (:func:`layerwise_hessians`), so
      LeNet-300-100's largest inverse is ``785 x 785``. A bias is the coordinate of a column
      of ones in ``X``: never removed, but moved by the OBS update (it absorbs the mean
      of the removed inputs). Saliency of weight ``(r, q)``: ``w_rq^2 / (2 [H_KK^-1]_qq)``
      on row ``r``'s kept set ``K``. Removing a set ``Q`` from a row by sequential OBS steps
      lands on ``w_K' = w_K + H_KK^-1 H_KQ w_Q`` (the minimiser of ``E_r`` with ``w_Q = 0``,
      since ``E_r`` is exactly quadratic), which is computed directly. Weights are removed in
      ``num_stages`` rounds (kept fraction ``(1 - amount)^(t / num_stages)`` after round ``t``),
      each ranking all candidates by the saliency at the current kept sets and re-solving
      the compensated rows, a batched form of the sequential removal (``num_stages`` equal to
      the weights removed per row is Hassibi & Stork's one-at-a-time order; Frantar & Alistarh,
      NeurIPS 2022, "Optimal Brain Compression", discuss the same row-wise decomposition).
      Cost per round: one Cholesky factorisation per row of the smaller of ``H_KK`` and
      ``(H^-1)_QQ``. ``scope="global"`` ranks all layers' saliencies together; they are
      increases of different layers' mean squared output errors (units of each layer's
      output), so the split between layers depends on activation scales -- prefer
      ``scope="layer"`` (every layer loses ``amount``) unless the layers are comparable.

    ``"auto"`` uses ``"full"`` up to :data:`MAX_EXACT` prunable weights under
    ``scope="global"``, ``"layer"`` while its Hessian rows fit in :data:`MAX_OBS_ENTRIES`,
    and ``"row"`` above (e.g. LeNet-300-100).

    Parameters
    ----------
    damping : float
        Relative damping (default ``1e-4``).
    block : {"auto", "full", "layer", "row"}
    num_stages : int
        Removal rounds of ``block="row"`` (default 4).
    progress : bool
        A progress bar over the rounds of ``block="row"``.
    """

    needs_data = True

    def __init__(self, damping: float = 1e-4, block: str | ObsBlock = "auto", num_stages: int = 4, progress: bool = True) -> None:
        super().__init__()
        if isinstance(damping, bool) or not isinstance(damping, (int, float)) or not math.isfinite(damping) or damping < 0:
            raise InvalidArgumentError(f"`damping` must be a finite number >= 0; got {damping!r}")
        if isinstance(num_stages, bool) or not isinstance(num_stages, int) or num_stages < 1:
            raise InvalidArgumentError(f"`num_stages` must be an integer >= 1; got {num_stages!r}")
        self.damping, self.block, self.num_stages = float(damping), _enum(ObsBlock, block, "block").value, num_stages
        self.progress = bool(progress)

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

    def _select_rows(self, model, layers, request, data):
        """Layer-wise OBS (``block="row"``): see the class docstring."""
        masks = get_masks(model)
        hess = layerwise_hessians(model, data)
        state = []
        for n, mod in layers:
            w = mod.weight.detach().reshape(mod.weight.shape[0], -1).to(torch.float64)
            alive = masks[n].reshape(w.shape) > 0
            has_bias = mod.bias is not None
            if has_bias:
                w = torch.cat([w, mod.bias.detach().to(torch.float64)[:, None]], 1)
                alive = torch.cat([alive, torch.ones(w.shape[0], 1, dtype=torch.bool)], 1)
            p, lam = self._inverse(hess[n])
            h = 0.5 * (hess[n] + hess[n].T) + lam * torch.eye(hess[n].shape[0], dtype=torch.float64)
            removable = torch.ones_like(alive)
            if has_bias:
                removable[:, -1] = False
            state.append({"name": n, "mod": mod, "h": h, "p": p, "w0": w, "keep": alive, "removable": removable,
                          "lam": lam, "bias": has_bias})
        groups = [[s] for s in state] if request.scope is Scope.LAYER else [state]
        num_stages = self.num_stages
        bar = tqdm(total=len(groups) * num_stages, desc="layer-wise OBS", unit="round", disable=not self.progress, leave=False)
        for group in groups:
            n_alive = sum(int((s["keep"] & s["removable"]).sum()) for s in group)
            if request.amount is not None:
                a = request.amount_for(group[0]["name"])
                target = int(round(a * n_alive))
                # stage t keeps n_alive * (1 - amount)^(t / num_stages), the last exactly n_alive - target
                cum = [n_alive - int(round(n_alive * (1.0 - a) ** (t / num_stages))) for t in range(1, num_stages)]
                cum = [min(c, target) for c in cum] + [target]
            else:
                cum = [None] * num_stages
            done = 0
            for stage in range(num_stages):
                bar.update(1)
                sal = []
                for s in group:
                    w, dinv = _row_solve(s["h"], s["p"], s["w0"], s["keep"])
                    s["w"] = w
                    score = w**2 / (2 * dinv)
                    cand = s["keep"] & s["removable"]
                    if request.amount is None:
                        cand = cand & (score < request.threshold_for(s["name"]))
                    sal.append(torch.where(cand, score, torch.full_like(score, math.inf)))
                flat = torch.cat([x.reshape(-1) for x in sal])
                k = int((flat < math.inf).sum()) if cum[stage] is None else cum[stage] - done
                if k <= 0:
                    if cum[stage] is None:
                        break
                    continue
                chosen = torch.topk(flat, k, largest=False).indices
                drop = torch.zeros_like(flat, dtype=torch.bool)
                drop[chosen] = True
                for s, part in zip(group, torch.split(drop, [x.numel() for x in sal])):
                    s["keep"] = s["keep"] & ~part.reshape(s["keep"].shape)
                done += k
        bar.close()
        new_masks, new_w = {}, {}
        for s in state:
            w, _ = _row_solve(s["h"], s["p"], s["w0"], s["keep"], need_diag=False)  # compensated weights, final mask
            mod, n = s["mod"], s["name"]
            keep = s["keep"][:, :-1] if s["bias"] else s["keep"]
            if s["bias"]:
                with torch.no_grad():
                    mod.bias.copy_(w[:, -1].to(mod.bias.dtype))
                w = w[:, :-1]
            new_masks[n] = keep.reshape(mod.weight.shape).to(masks[n].dtype)
            new_w[n] = w.reshape(mod.weight.shape).to(mod.weight.dtype)
        self.diagnostics.update({"damping": [s["lam"] for s in state], "block": "row", "num_stages": num_stages})
        return new_masks, new_w

    def _resolve_block(self, layers, masks, request) -> str:
        if self.block != "auto":
            return self.block
        total = sum(m.weight.numel() for _, m in layers)
        if request.scope is Scope.GLOBAL and total <= MAX_EXACT:
            return "full"
        alive = sum(int((masks[n] > 0).sum()) for n, _ in layers)
        return "layer" if alive * total <= MAX_OBS_ENTRIES else "row"

    def select(self, model, layers, request, loss_fn, data):
        masks = get_masks(model)
        block = self._resolve_block(layers, masks, request)
        if block == "row":
            return self._select_rows(model, layers, request, data)
        obj = _Objective(model, layers, loss_fn, data)
        names = [n for n, _ in layers]
        offsets = torch.cumsum(torch.tensor([0] + obj.numels), 0).tolist()
        alive_flat = torch.cat([masks[n].reshape(-1) > 0 for n in names])
        w = obj.w0.clone()
        full = request.scope is Scope.GLOBAL and block == "full"
        if full:
            groups = [torch.nonzero(alive_flat).reshape(-1)]
            owners = [None]
        else:
            groups = [
                offsets[i] + torch.nonzero(alive_flat[offsets[i] : offsets[i + 1]]).reshape(-1) for i in range(len(names))
            ]
            owners = names
        all_idx = torch.cat(groups)
        if len(all_idx) * w.numel() > MAX_OBS_ENTRIES:
            raise InvalidArgumentError(
                f"OBS needs {len(all_idx)} Hessian rows of {w.numel()} entries ({len(all_idx) * w.numel() * w.element_size() / 2**30:.1f} GiB); "
                f"this implementation stops above {MAX_OBS_ENTRIES:.0e} entries (about {int(MAX_OBS_ENTRIES ** 0.5)} prunable weights). "
                "Use block='row' (layer-wise OBS, any size), method='obd' (a diagonal Hessian) or 'magnitude'"
            )
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
                quota = [int(round(request.amount_for(n) * len(g))) for n, g in zip(names, groups)]
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


def _check_names(mapping: Mapping, names: list[str], arg: str) -> None:
    missing = [n for n in names if n not in mapping]
    if missing:
        raise InvalidArgumentError(f"`{arg}` as a mapping must name every prunable layer; missing {missing}")
    unknown = [n for n in mapping if n not in names]
    if unknown:
        raise InvalidArgumentError(f"`{arg}` names {unknown}, which are not prunable layers of `model`; its prunable layers are {names}")


def _check_request(amount: Any, threshold: Any, scope: Any, layers) -> _Request:
    sc = _enum(Scope, scope, "scope")
    if (amount is None) == (threshold is None):
        raise InvalidArgumentError(
            "pass exactly one of `amount` (fraction of surviving weights to remove, in [0, 1)) "
            f"and `threshold` (remove weights with saliency below it); got amount={amount!r}, threshold={threshold!r}"
        )
    names = [n for n, _ in layers]
    if amount is not None:
        if isinstance(amount, Mapping):
            if sc is not Scope.LAYER:
                raise InvalidArgumentError("`amount` as a mapping (one fraction per layer) needs scope='layer'")
            _check_names(amount, names, "amount")
            vals = list(amount.values())
        else:
            vals = [amount]
        for v in vals:
            if not _is_real(v) or not (0.0 <= float(v) < 1.0):
                raise InvalidArgumentError(
                    "`amount` must be a number in [0, 1), the fraction of surviving weights to remove "
                    f"(or under scope='layer' a mapping layer name -> such a number); got {amount!r}"
                )
        return _Request(sc, {n: float(amount[n]) for n in names} if isinstance(amount, Mapping) else float(amount), None)
    if isinstance(threshold, Mapping):
        _check_names(threshold, names, "threshold")
        vals = list(threshold.values())
    else:
        vals = [threshold]
    for v in vals:
        if not _is_real(v) or not math.isfinite(v):
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
    _check_finite_weights(layers)
    sal = get_saliency(method, **options)
    if type(sal).scores is Saliency.scores:
        raise InvalidArgumentError(f"saliency {sal.name!r} has no per-weight scores; use prune(model, method={sal.name!r}, ...)")
    with eval_mode(model):
        return {n: s.detach() for n, s in sal.scores(model, layers, loss_fn, data).items()}


def prune(
    model: nn.Module,
    method: str | Saliency = "magnitude",
    amount: float | Mapping[str, float] | None = None,
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
    amount : float in [0, 1), or mapping of layer name to float, optional
        Fraction of the *surviving* prunable weights to remove (``round(amount * n_alive)``,
        over the whole model or per layer, see ``scope``); a mapping (one fraction per layer)
        needs ``scope="layer"``.
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
        ``damping=1e-3`` for OBS). For a Bayesian PyroModule (weights are ``PyroSample``
        sites) pass ``guide=`` instead: :func:`bayesstruct.prune.prune_bayesian` ranks by the
        guide (``method="magnitude"`` or ``"relative_density"``) and stores masks that
        :func:`bayesstruct.prune.mask_weights` applies to the model and the guide.

    Returns
    -------
    PruneResult

    Notes
    -----
    The saliency passes run in evaluation mode (:func:`eval_mode`: batch-norm running
    statistics used and left unchanged, dropout off); every module's mode is restored.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    >>> prune(net, "magnitude", amount=0.5).num_nonzero
    24
    >>> prune(net, "magnitude", amount=0.5).num_nonzero  # cumulative: half of the survivors
    12
    """
    if "guide" in options or _has_sampled_weights(model):
        from bayesstruct.prune.bayesian import prune_bayesian

        guide = options.pop("guide", None)
        if guide is None:
            raise InvalidArgumentError(
                "`model` is a Bayesian PyroModule (its weights are PyroSample sites): pass its trained `guide=` "
                "(e.g. an AutoNormal); the masks are applied with bayesstruct.prune.mask_weights"
            )
        if options or loss_fn is not None or data is not None:
            raise InvalidArgumentError("a Bayesian network is pruned from its guide alone: drop `loss_fn`, `data` and saliency options")
        name = method if isinstance(method, str) else getattr(method, "name", method)
        return prune_bayesian(model, guide, amount, threshold, method=name, scope=scope)
    layers = _check_layers(model)
    request = _check_request(amount, threshold, scope, layers)
    _check_finite_weights(layers)
    sal = get_saliency(method, **options)
    if sal.needs_data:
        if loss_fn is None and sal.needs_loss:
            raise InvalidArgumentError(f"method {sal.name!r} needs `loss_fn` (loss_fn(model(x), y) -> scalar) and `data`")
        if data is None:
            raise InvalidArgumentError(f"method {sal.name!r} needs `data`: an (x, y) tuple or an iterable of (x, y) batches")
    before = {n: m.sum() for n, m in get_masks(model).items()}
    sal.diagnostics = {}
    with eval_mode(model):
        new_masks, new_weights = sal.select(model, layers, request, loss_fn, data)
    removed = 0
    for n, mod in layers:
        mask = new_masks[n] * get_masks(model)[n]  # never revive
        removed += int(before[n] - mask.sum())
        _set_layer(mod, mask, new_weights[n])
    return _result(sal.name, layers, removed, dict(sal.diagnostics))
