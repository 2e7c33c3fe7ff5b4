r"""Bayesian structure-graph networks: a Pyro family over the primitives on the edges.

The lecture's model (§"structure as a graph") with priors on everything:

.. math::

    w \sim \mathcal N(0, \alpha^{-1} I), \qquad
    \Gamma^{j,k} \sim \mathrm{GS}(s = 1/K, \lambda_{temp}) \ \text{per edge}, \qquad
    y_n \mid x_n, w, \Gamma \sim \mathrm{Cat}(\mathrm{softmax}\, f(x_n; w, \Gamma))
    \ \text{or}\ \mathcal N(f(x_n; w, \Gamma), \sigma^2),

where :math:`f` is the :class:`~bayesstruct.nn.StructureNetwork` of the graph and
:math:`\alpha` is ``weight_precision``: fixed, learned (type-II ML) or latent with
:math:`\alpha \sim \mathrm{Gamma}(a, b)`. Fixing :math:`\Gamma` to a one-hot value (``gamma=``)
gives the model of one discrete structure; :class:`NetworkFamily` enumerates those.

Pyro sites (public names)
-------------------------
* ``"<param name>"`` for every parameter of the ``StructureNetwork``, named as
  ``net.named_parameters()`` names it (the naming :class:`pyro.nn.PyroModule` uses), e.g.
  ``"ops.e0_1.0.linear.weight"`` (shape ``(out, in)``) and ``"ops.e0_1.0.linear.bias"``
  (``(out,)``). Prior ``Normal(0, weight_precision ** -0.5)``, all dims event dims.
  With ``gamma`` fixed, primitives whose ``gamma`` coordinate is exactly 0 get no site.
  With ``pack_weights=True`` these sites are replaced by the single site below.
* ``"weights"`` (:data:`PACKED_WEIGHTS_SITE`), only with ``pack_weights=True``: every weight
  of the sites above in one vector of shape ``(D,)``, ``D`` the number of weights that get a
  site: the parameters in ``named_parameters()`` order, each flattened row-major and
  concatenated (:func:`pack_weight_values` / :func:`unpack_weight_values` convert). Prior
  ``Normal(0, weight_precision ** -0.5)``, one event dim: the same prior and likelihood as the
  per-parameter sites (the log joint is equal for equal weight values), in one site, so model
  and guide run a few tensor operations where they ran a few per parameter tensor -- a large
  part of an SVI step of a small network (``benchmarks/structure.py``). Absent when ``D == 0``.
* ``"gamma_{j}_{k}"`` for every edge ``(j, k)`` (shape ``(K,)``), only when ``gamma`` is
  not given: ``structure_prior(restriction, uniform, temperature, kind=prior_kind)``. On
  the simplex an edge with a single primitive has no site (its :math:`\Gamma` is ``[1]``).
* ``"weight_precision"``: :math:`\alpha` -- absent when fixed (a number), a ``pyro.param``
  (positive) with ``weight_precision="learn"``, a latent sample site (shape ``()``) when
  ``weight_precision`` is a ``pyro.distributions.Gamma`` prior.
* ``"y"``: observed, in ``pyro.plate("data", N)``.

The model is vectorisable: sites may carry batch dims from outer plates (e.g. the
particle plate of :class:`~bayesstruct.evidence.ModelDensity` or
``Trace_ELBO(vectorize_particles=True)``); the network is evaluated per particle with
:func:`torch.func.vmap` over :func:`torch.func.functional_call`, so any primitive works.
"""

from __future__ import annotations

import contextlib
import functools
import math
import statistics
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from torch.distributions import constraints
from pyro.infer.util import is_validation_enabled
from torch.func import functional_call, vmap

from bayesstruct import _json
from bayesstruct._validation import check_positive, check_positive_int
from bayesstruct.exceptions import ApproximationWarning, InvalidArgumentError, UnknownNameError
from bayesstruct.families.base import BoundModel, StructureFamily
from bayesstruct.nn.graph import DiscreteStructureNetwork, StructureGraph, StructureNetwork
from bayesstruct.priors.relaxed import Restriction, _resolve_restriction, structure_prior

__all__ = [
    "TASKS",
    "rotation_symmetric_vertices",
    "WEIGHT_PRECISION_SITE",
    "weight_precision_mode",
    "network_model",
    "gamma_site_name",
    "weight_site_names",
    "PACKED_WEIGHTS_SITE",
    "pack_weight_values",
    "unpack_weight_values",
    "StructurePosterior",
    "fit_structure_posterior",
    "refit_discrete",
    "sample_gamma_posterior",
    "TemperatureSweepRow",
    "elbo_temperature_sweep",
    "NetworkFamily",
]

#: likelihoods of :func:`network_model`
TASKS = ("classification", "regression")

_TEMPLATES: dict[int, tuple[StructureGraph, StructureNetwork, tuple]] = {}


def _template_entry(graph: StructureGraph) -> tuple[StructureGraph, StructureNetwork, tuple]:
    """Cached ``(graph, template network, parameter specs)`` of a graph.

    The specs ``((name, shape, (edge key, primitive index)), ...)`` are plain Python values
    (``torch.Size``, str, int), so the model never touches the template's tensors: a
    ``torch.jit`` trace of the model (``JitTrace_ELBO``) must not capture them as constants.
    """
    if not isinstance(graph, StructureGraph):
        raise InvalidArgumentError(f"`graph` must be a bayesstruct.nn.StructureGraph; got {type(graph).__name__}")
    hit = _TEMPLATES.get(id(graph))
    if hit is None or hit[0] is not graph:
        net = StructureNetwork(graph)
        specs = tuple((n, torch.Size(p.shape), _param_edge_index(n)) for n, p in net.named_parameters())
        hit = (graph, net, specs)
        _TEMPLATES[id(graph)] = hit
    return hit


def _template(graph: StructureGraph) -> StructureNetwork:
    """One (weight-free in meaning) StructureNetwork per graph, used as a functional template."""
    return _template_entry(graph)[1]


def _check_labels(y: torch.Tensor, num_data: int, num_classes: int) -> None:
    """Class labels ``y``: shape ``(num_data,)``, integers in ``0..num_classes - 1``."""
    if tuple(y.shape) != (num_data,):
        raise InvalidArgumentError(f"`y` must be ({num_data},) class labels, one per row of `x`; got shape {tuple(y.shape)}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise InvalidArgumentError(f"`y` must hold class labels in 0..{num_classes - 1} (the output vertex has "
                                   f"{num_classes} units); got values in {int(y.min())}..{int(y.max())}")


def gamma_site_name(edge: tuple[int, int]) -> str:
    """Pyro site name of :math:`\\Gamma^{j,k}`: ``"gamma_{j}_{k}"``."""
    return f"gamma_{edge[0]}_{edge[1]}"


def weight_site_names(graph: StructureGraph) -> list[str]:
    """Pyro site names of the weights, in trace order (``StructureNetwork.named_parameters()``)."""
    return [n for n, _, _ in _template_entry(graph)[2]]


#: name of the one weight site of ``pack_weights=True``
PACKED_WEIGHTS_SITE = "weights"


def _check_pack_weights(pack_weights: Any) -> bool:
    if not isinstance(pack_weights, bool):
        raise InvalidArgumentError(f"`pack_weights` must be True or False; got {pack_weights!r}")
    return pack_weights


def _zero_primitives(gamma: Mapping[tuple[int, int], torch.Tensor] | None) -> set[tuple[str, int]]:
    """``(edge key, primitive index)`` of the coordinates of a fixed ``gamma`` that are exactly 0 (no weight site)."""
    if gamma is None:
        return set()
    return {(f"e{e[0]}_{e[1]}", i) for e, v in gamma.items() if v.dim() == 1
            for i in range(v.shape[-1]) if float(v[i]) == 0.0}


def _packed_specs(specs: tuple, fixed_zero: set) -> list[tuple[str, torch.Size]]:
    """``(name, shape)`` of the parameters that get a weight site, in packing order."""
    return [(name, shape) for name, shape, where in specs if where not in fixed_zero]


def _split_packed(value: torch.Tensor, packed: Sequence[tuple[str, torch.Size]]) -> dict[str, torch.Tensor]:
    """``(*batch, D)`` -> ``{name: (*batch, *shape)}`` (``torch.split``: one ``cat`` in the backward pass)."""
    batch = value.shape[:-1]
    parts = torch.split(value, [shape.numel() for _, shape in packed], dim=-1)
    return {name: part.reshape(batch + shape) for (name, shape), part in zip(packed, parts)}


def _packed_layout(graph: StructureGraph, gamma: Mapping[tuple[int, int], Any] | None) -> list[tuple[str, torch.Size]]:
    _, net, specs = _template_entry(graph)
    fixed = None if gamma is None else {e: torch.as_tensor(v) for e, v in net.check_gamma(gamma).items()}
    return _packed_specs(specs, _zero_primitives(fixed))


def pack_weight_values(graph: StructureGraph, weights: Mapping[str, Any], *,
                       gamma: Mapping[tuple[int, int], Any] | None = None) -> torch.Tensor:
    """The value of the ``"weights"`` site (``pack_weights=True``) holding per-parameter ``weights``.

    Parameters
    ----------
    graph : StructureGraph
    weights : dict of str to Tensor
        Per-parameter values (the names of :func:`weight_site_names`), each of shape
        ``(*batch, *param shape)`` with a common ``batch``.
    gamma : dict, optional
        The fixed ``gamma`` of the model, if any: parameters of primitives whose coordinate is
        exactly 0 have no site and are left out.

    Returns
    -------
    Tensor ``(*batch, D)``
        The flattened values concatenated in ``named_parameters()`` order.
    """
    layout = _packed_layout(graph, gamma)
    if not isinstance(weights, Mapping):
        raise InvalidArgumentError(f"`weights` must be a dict of parameter name to tensor; got {type(weights).__name__}")
    missing = [name for name, _ in layout if name not in weights]
    if missing:
        raise InvalidArgumentError(f"`weights` lacks {missing}; it needs every name of {[n for n, _ in layout]}")
    parts = []
    for name, shape in layout:
        v = torch.as_tensor(weights[name])
        if tuple(v.shape[v.dim() - len(shape):]) != tuple(shape) or v.dim() < len(shape):
            raise InvalidArgumentError(f"`weights[{name!r}]` must have shape (..., {', '.join(map(str, shape))}); "
                                       f"got {tuple(v.shape)}")
        parts.append(v.reshape(v.shape[: v.dim() - len(shape)] + (shape.numel(),)))
    if not parts:
        return torch.zeros(0)
    batch = torch.broadcast_shapes(*(p.shape[:-1] for p in parts))
    return torch.cat([p.expand(batch + p.shape[-1:]) for p in parts], dim=-1)


def unpack_weight_values(graph: StructureGraph, value: torch.Tensor, *,
                         gamma: Mapping[tuple[int, int], Any] | None = None) -> dict[str, torch.Tensor]:
    """Per-parameter views ``{name: (*batch, *shape)}`` of a ``"weights"`` site value ``(*batch, D)``.

    The inverse of :func:`pack_weight_values` (same ``gamma``).
    """
    layout = _packed_layout(graph, gamma)
    if not torch.is_tensor(value):
        value = torch.as_tensor(value, dtype=torch.get_default_dtype())
    D = sum(shape.numel() for _, shape in layout)
    if value.dim() < 1 or value.shape[-1] != D:
        raise InvalidArgumentError(f"`value` must have shape (..., {D}) (the packed weights of the graph); "
                                   f"got {tuple(value.shape)}")
    return _split_packed(value, layout)


def _param_edge_index(name: str) -> tuple[str, int]:
    # "ops.e0_1.0.linear.weight" -> ("e0_1", 0)
    parts = name.split(".")
    return parts[1], int(parts[2])


def _check_task(task: Any) -> str:
    if task not in TASKS:
        raise UnknownNameError(f"unknown `task` {task!r}; valid tasks are {', '.join(map(repr, TASKS))}")
    return task


def _check_temperature(temperature: Any) -> float:
    return check_positive(temperature, "temperature")


#: name of the weight-precision param (``"learn"``) or latent sample site (Gamma prior)
WEIGHT_PRECISION_SITE = "weight_precision"


def weight_precision_mode(weight_precision: Any) -> str:
    """How :math:`\alpha` is treated: ``"fixed"`` (a number), ``"learn"`` or ``"prior"`` (a ``Gamma``).

    Raises :class:`~bayesstruct.exceptions.InvalidArgumentError` naming ``weight_precision``
    for anything else (a non-positive number, another string or distribution).
    """
    if isinstance(weight_precision, str):
        if weight_precision.strip().lower() == "learn":
            return "learn"
        raise InvalidArgumentError(
            f"`weight_precision` must be a positive number, 'learn' (type-II ML) or a "
            f"pyro.distributions.Gamma prior; got {weight_precision!r}"
        )
    if isinstance(weight_precision, torch.distributions.Distribution):
        if not isinstance(weight_precision, torch.distributions.Gamma) or weight_precision.batch_shape != ():
            raise InvalidArgumentError(
                f"`weight_precision` as a prior must be a scalar Gamma(concentration, rate); got {weight_precision!r}"
            )
        return "prior"
    check_positive(weight_precision, "weight_precision")
    return "fixed"


#: primitives that multiply their input by a weight matrix first (a rotation of the input's units passes into W)
_WEIGHTED = frozenset({"linear", "linear_sigmoid", "linear_relu", "linear_tanh", "linear_softmax"})


def rotation_symmetric_vertices(graph: StructureGraph, choice: Mapping[tuple[int, int], str]) -> list[int]:
    r"""Hidden vertices of a discrete structure whose units can be rotated without changing the model.

    A hidden vertex :math:`k` with :math:`h \ge 2` units whose incoming edges are all ``linear``
    (or ``zero``, at least one ``linear``) and whose outgoing edges all start with a weight
    matrix (``linear``, ``linear_*`` or ``zero``, at least one of them) computes
    :math:`f_k = \sum W_{in} f + b`, used only as :math:`W_{out} f_k`: replacing
    :math:`W_{in}, b \to Q W_{in}, Q b` and :math:`W_{out} \to W_{out} Q^\top` for any orthogonal
    :math:`Q` leaves the outputs and the isotropic Gaussian weight prior unchanged, an
    :math:`h(h-1)/2`-dimensional continuous symmetry of the posterior (deep linear networks;
    cf. Saxe, McClelland & Ganguli 2014). ``choice``: ``{edge: primitive name}`` for every edge.
    """
    out = []
    for k in graph.topological_order:
        shape = graph.vertex_shapes.get(k)
        if k in (0, graph.output_vertex) or shape is None or len(shape) != 1 or shape[0] < 2:
            continue
        incoming = [choice[e] for e in graph.in_edges[k]]
        outgoing = [choice[e] for e in graph.edge_list if e[0] == k]
        if ("linear" in incoming and set(incoming) <= {"linear", "zero"}
                and any(n in _WEIGHTED for n in outgoing) and set(outgoing) <= _WEIGHTED | {"zero"}):
            out.append(k)
    return out


def _as_input(x: Any, graph: StructureGraph) -> torch.Tensor:
    """``x`` as ``(N, *input_shape)``: flat rows ``(N, prod(input_shape))`` are reshaped (images from a CSV)."""
    if not torch.is_tensor(x):
        x = torch.as_tensor(x, dtype=torch.get_default_dtype())
    shape = graph.input_shape
    if x.dim() == 2 and len(shape) > 1 and x.shape[1] == math.prod(shape):
        x = x.reshape((x.shape[0],) + shape)
    if x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != shape:
        flat = f" or (N, {math.prod(shape)})" if len(shape) > 1 else ""
        raise InvalidArgumentError(
            f"`x` must have shape (N, {', '.join(map(str, shape))}){flat}; got {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    # like Pyro's own checks, skipped when validation is off (fit_structure_posterior's later steps)
    if is_validation_enabled() and not torch.isfinite(x).all():
        raise InvalidArgumentError(f"`x` contains {int((~torch.isfinite(x)).sum())} NaN or infinite value(s)")
    return x


@functools.lru_cache(maxsize=256)
def _gamma_prior(restriction: Restriction, K: int, lam: float | None, kind: str | None, dtype: torch.dtype,
                 device: torch.device) -> dist.TorchDistribution:
    """The prior of one edge's :math:`\\Gamma`: ``structure_prior`` at the uniform location (the centre).

    Built once per (restriction, K, temperature, kind, dtype, device): the distribution holds no
    state a call could change (``pyro.sample`` under a plate expands a copy), and under a jit trace
    its tensors are then constants instead of a dozen small operations re-run at every step.
    """
    on_simplex = restriction in (Restriction.SIMPLEX_INTERIOR, Restriction.SIMPLEX_VERTICES)
    s = torch.full((K,), 1.0 / K if on_simplex else 0.5, dtype=dtype, device=device)
    if lam is None:
        return structure_prior(restriction, s)
    return structure_prior(restriction, s, lam, kind=kind)


def network_model(x: torch.Tensor, y: torch.Tensor | None = None, *, graph: StructureGraph,
                  gamma: Mapping[tuple[int, int], Any] | None = None, restriction: str | Restriction = "simplex_interior",
                  prior_kind: str | None = "gumbel-softmax", temperature: float = 1.0,
                  weight_precision: float | str | dist.Gamma = 1.0, task: str = "classification",
                  noise_scale: float = 1.0, weight_precision_init: float = 1.0,
                  pack_weights: bool = False) -> torch.Tensor:
    r"""Pyro model of a Bayesian :class:`~bayesstruct.nn.StructureNetwork` (site names: module docstring).

    Parameters
    ----------
    x : Tensor ``(N, *graph.input_shape)``
    y : Tensor ``(N,)`` or None
        Class labels in ``0..C-1`` (``task="classification"``, ``C`` = output vertex size) or
        real targets (``task="regression"``; output vertex shape ``(1,)`` gives ``y`` of shape ``(N,)``,
        otherwise ``y`` is ``(N, *output_shape)``).
    graph : StructureGraph
    gamma : dict of (j, k) to Tensor ``(K,)``, optional
        Fix the structure: no ``gamma_*`` sites are sampled (one-hot: one discrete structure).
        Edges missing from the dict are fixed to the one-hot of their first primitive.
    restriction, prior_kind, temperature
        The prior of :math:`\Gamma` when ``gamma`` is None:
        ``structure_prior(restriction, s=uniform, temperature, kind=prior_kind)`` (the vertex
        restrictions take no temperature/kind and are discrete: fine for sampling, not for
        continuous inference).
    weight_precision : float, "learn" or pyro.distributions.Gamma
        :math:`\alpha`, the prior precision of every weight (:func:`weight_precision_mode`):

        * a number: fixed;
        * ``"learn"``: a hyperparameter, the ``pyro.param("weight_precision")`` (positive,
          initialised at ``weight_precision_init``); SVI maximises the ELBO over it, a
          type-II maximum-likelihood point estimate (MacKay, 1992);
        * a ``Gamma(concentration, rate)``: latent, the sample site ``"weight_precision"``
          with that prior, integrated out with the weights.
    task : {"classification", "regression"}
    noise_scale : float
        :math:`\sigma` of the regression likelihood.
    weight_precision_init : float
        Initial value of the ``"learn"`` parameter.
    pack_weights : bool
        ``False`` (default): one sample site per parameter tensor, named as
        ``named_parameters()`` names it. ``True``: all of them in the single site
        ``"weights"`` of shape ``(D,)`` (module docstring; :func:`unpack_weight_values` gives
        the per-parameter views): the same prior and log joint, fewer operations per step.

    Returns
    -------
    Tensor
        The sampled or observed ``y``.

    Examples
    --------
    >>> import torch, pyro
    >>> from bayesstruct.nn import StructureGraph
    >>> g = StructureGraph(3, {(0, 1): ["linear_sigmoid", "zero"], (1, 2): "linear"},
    ...                    input_shape=(3,), vertex_shapes={1: (4,), 2: (2,)})
    >>> tr = pyro.poutine.trace(network_model).get_trace(torch.randn(5, 3), graph=g)
    >>> tuple(tr.nodes["gamma_0_1"]["value"].shape), tuple(tr.nodes["y"]["value"].shape)
    ((2,), (5,))
    """
    _, net, specs = _template_entry(graph)
    task = _check_task(task)
    mode = weight_precision_mode(weight_precision)
    pack = _check_pack_weights(pack_weights)
    x = _as_input(x, graph)
    N = x.shape[0]
    out_shape = graph.vertex_shapes[graph.output_vertex]

    # -- structure ---------------------------------------------------------------
    if gamma is None:
        restriction = _resolve_restriction(restriction)
        interior = restriction in (Restriction.SIMPLEX_INTERIOR, Restriction.CUBE_INTERIOR)
        on_simplex = restriction in (Restriction.SIMPLEX_INTERIOR, Restriction.SIMPLEX_VERTICES)
        lam = _check_temperature(temperature) if interior else None
        gam = {}
        for e in graph.edge_list:
            K = graph.num_primitives(e)
            if on_simplex and K == 1:  # the 0-simplex is one point: no choice, no site
                gam[e] = x.new_ones(1)
                continue
            try:
                args = (restriction, K, lam, prior_kind if interior else None, x.dtype, x.device)
                try:
                    prior = _gamma_prior(*args)
                except TypeError:  # an unhashable `prior_kind`: build it uncached (structure_prior names the error)
                    prior = _gamma_prior.__wrapped__(*args)
            except UnknownNameError as exc:
                raise UnknownNameError(f"`prior_kind`: {exc.args[0]}") from None
            gam[e] = pyro.sample(gamma_site_name(e), prior)
        fixed_zero: set[tuple[str, int]] = set()
    else:
        gam = {e: (v if torch.is_tensor(v) else torch.as_tensor(v)).to(x.dtype) for e, v in net.check_gamma(gamma).items()}
        fixed_zero = _zero_primitives(gam)

    # -- weights -----------------------------------------------------------------
    if mode == "fixed":
        alpha = x.new_tensor(float(weight_precision))
    elif mode == "learn":
        init = check_positive(weight_precision_init, "weight_precision_init")
        alpha = pyro.param(WEIGHT_PRECISION_SITE, lambda: x.new_tensor(init), constraint=constraints.positive)
    else:
        prior = dist.Gamma(weight_precision.concentration.to(x), weight_precision.rate.to(x))
        alpha = pyro.sample(WEIGHT_PRECISION_SITE, prior)  # (*batch) from outer plates
    scale = alpha.rsqrt()
    sampled: dict[str, torch.Tensor] = {}
    fixed = {name: x.new_zeros(shape) for name, shape, where in specs if where in fixed_zero}
    if pack:
        packed = _packed_specs(specs, fixed_zero)
        D = sum(shape.numel() for _, shape in packed)
        if D:
            prior = dist.Normal(x.new_zeros(D), scale.reshape(scale.shape + (1,))).to_event(1)
            sampled = _split_packed(pyro.sample(PACKED_WEIGHTS_SITE, prior), packed)
    else:
        for name, shape, where in specs:
            if where in fixed_zero:
                continue
            prior = dist.Normal(x.new_zeros(shape), scale.reshape(scale.shape + (1,) * len(shape))).to_event(len(shape))
            sampled[name] = pyro.sample(name, prior)

    f = _forward(net, specs, x, sampled, fixed, gam)  # (*batch, N, *out_shape)

    # -- likelihood --------------------------------------------------------------
    with pyro.plate("data", N):
        if task == "classification":
            if len(out_shape) != 1:
                raise InvalidArgumentError(
                    f"classification needs an output vertex of shape (C,); got {out_shape}"
                )
            if y is not None:
                if not torch.is_tensor(y):
                    y = torch.as_tensor(y)
                if y.is_floating_point():
                    if not torch.equal(y, y.round()):
                        raise InvalidArgumentError("`y` must hold integer class labels for task='classification'")
                    y = y.long()
                _check_labels(y, N, out_shape[0])
            return pyro.sample("y", _SoftmaxCategorical(f), obs=y)
        sigma = check_positive(noise_scale, "noise_scale")
        if y is not None:
            if not torch.is_tensor(y):
                y = torch.as_tensor(y, dtype=x.dtype)
            want = (N,) if out_shape == (1,) else (N,) + tuple(out_shape)
            if tuple(y.shape) != want:
                raise InvalidArgumentError(
                    f"`y` must have shape {want} for task='regression' (one target per row of `x`"
                    f"{'' if out_shape == (1,) else ', of the output shape'}); got {tuple(y.shape)}"
                )
            if is_validation_enabled() and not bool(torch.isfinite(y).all()):
                raise InvalidArgumentError(f"`y` contains {int((~torch.isfinite(y)).sum())} NaN or infinite value(s)")
        if out_shape == (1,):
            return pyro.sample("y", dist.Normal(f[..., 0], sigma), obs=y)
        return pyro.sample("y", dist.Normal(f, sigma).to_event(len(out_shape)), obs=y)


class _SoftmaxCategorical(dist.Categorical):
    r"""``Categorical(logits=f)`` scored by one fused log-softmax + NLL (``torch.nn.functional.cross_entropy``).

    The same distribution -- ``probs``, ``logits``, ``sample`` and
    :math:`\log p(y) = f_y - \log \sum_c e^{f_c}` -- as ``pyro.distributions.Categorical(logits=f)``,
    whose ``log_prob`` normalises the logits, broadcasts and gathers in separate passes (about
    three times the forward + backward time of ``cross_entropy`` for ``(1797, 10)`` logits,
    measured on CPU); ``cross_entropy`` is also what a plain PyTorch classifier uses.
    """

    def __init__(self, logits: torch.Tensor, validate_args: bool | None = None) -> None:
        super().__init__(logits=logits, validate_args=validate_args)
        self._unnormalised = logits

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(_SoftmaxCategorical, _instance)
        new = super().expand(batch_shape, _instance=new)
        new._unnormalised = self._unnormalised.expand(torch.Size(batch_shape) + self._unnormalised.shape[-1:])
        return new

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if getattr(value, "_pyro_categorical_support", None) == id(self):  # enumeration: Pyro's reshape path
            return super().log_prob(value)
        if self._validate_args:
            self._validate_sample(value)
        logits, value = self._unnormalised, value.long()
        if logits.dim() == 2 and value.shape == logits.shape[:1]:  # (N, C) and (N,): the usual case, no reshapes
            return -nn.functional.cross_entropy(logits, value, reduction="none")
        C = logits.shape[-1]
        shape = torch.broadcast_shapes(value.shape, logits.shape[:-1])
        nll = nn.functional.cross_entropy(logits.expand(shape + (C,)).reshape(-1, C),
                                          value.expand(shape).reshape(-1), reduction="none")
        return -nll.reshape(shape)


@contextlib.contextmanager
def _swapped_parameters(net: nn.Module, values: Mapping[str, torch.Tensor]):
    """Temporarily make ``net``'s parameters the given tensors (what ``functional_call`` does, jit-traceable)."""
    saved = []
    try:
        for name, value in values.items():
            owner, _, leaf = name.rpartition(".")
            module = net.get_submodule(owner)
            saved.append((module, leaf, module._parameters[leaf]))
            module._parameters[leaf] = value
        yield
    finally:
        for module, leaf, old in reversed(saved):
            module._parameters[leaf] = old


def _forward(net: StructureNetwork, specs: tuple, x: torch.Tensor, sampled: Mapping[str, torch.Tensor],
             fixed: Mapping[str, torch.Tensor], gamma: Mapping[tuple, torch.Tensor]) -> torch.Tensor:
    """``f(x; w, gamma)`` with batched weights/gamma: ``(*B, 1, ...)`` from outer plates -> ``(*B, N, *out)``."""
    shapes = {n: shape for n, shape, _ in specs}
    batches = [v.shape[: v.dim() - len(shapes[n])] for n, v in sampled.items()]
    batches += [g.shape[:-1] for g in gamma.values()]
    batch = torch.broadcast_shapes(*batches) if batches else torch.Size()
    if len(batch) == 0:
        if torch.jit.is_tracing():  # JitTrace_ELBO: torch.func refuses to run under a jit trace
            with _swapped_parameters(net, {**sampled, **fixed}):
                return net(x, dict(gamma))
        return functional_call(net, {**sampled, **fixed}, (x, dict(gamma)))
    if batch[-1] != 1:
        raise InvalidArgumentError(
            f"batched sites must have a size-1 dimension for the 'data' plate on their right; got batch shape {tuple(batch)}"
        )
    flat = int(math.prod(batch))
    pb = {n: v.expand(batch + shapes[n]).reshape((flat,) + tuple(shapes[n])) for n, v in sampled.items()}
    gb = {e: g.expand(batch + g.shape[-1:]).reshape(flat, g.shape[-1]) for e, g in gamma.items()}

    def one(params: dict, gam: dict) -> torch.Tensor:
        return functional_call(net, {**params, **fixed}, (x, gam))

    out = vmap(one)(pb, gb)  # (flat, N, *out)
    return out.reshape(tuple(batch[:-1]) + tuple(out.shape[1:]))


# --------------------------------------------------------------------------------------
# posterior over the relaxed structure
# --------------------------------------------------------------------------------------


def _edge_str(e: tuple[int, int]) -> str:
    return f"{e[0]}->{e[1]}"


@dataclass(frozen=True)
class StructurePosterior:
    """Result of :func:`fit_structure_posterior` (an ``AutoNormal`` fit of weights and :math:`\\Gamma`).

    Attributes
    ----------
    graph : StructureGraph
    elbo : float
        Final ELBO (nats), a lower bound of :math:`\\log p(y \\mid x)` under the relaxed family
        (all weights and :math:`\\Gamma` integrated), estimated with ``num_elbo_particles`` particles.
    posterior_mean_gamma : dict of (j, k) to Tensor ``(K,)``
        :math:`\\mathbb E_q[\\Gamma^{j,k}]`, the mean of guide samples.
    weights : dict of str to Tensor
        The guide's posterior means of the weight sites (site name to value).
    temperature : float
    losses : tuple of float
        The SVI loss (negative ELBO estimate) per step.
    weight_precision : float
        :math:`\\alpha`: the fixed value, the type-II ML point estimate (``"learn"``), or the
        posterior mean :math:`\\mathbb E_q[\\alpha]` (Gamma prior).
    weight_precision_mode : {"fixed", "learn", "prior"}
    gamma_samples : dict of (j, k) to Tensor ``(S, K)``
        The ``S = num_gamma_samples`` draws :math:`\\Gamma^{j,k} \\sim q` behind
        ``posterior_mean_gamma`` (an edge without a site: ``S`` rows of its constant ``[1]``).
    task : {"classification", "regression"}; noise_scale : float
        The likelihood of the fit (used by :meth:`discretize` to refit the weights).
    """

    graph: StructureGraph
    elbo: float
    posterior_mean_gamma: dict
    weights: dict
    temperature: float
    losses: tuple = field(repr=False)
    weight_precision: float | None = None
    weight_precision_mode: str = "fixed"
    gamma_samples: dict | None = field(default=None, repr=False)
    task: str = "classification"
    noise_scale: float = 1.0

    def choice(self) -> dict[tuple[int, int], str]:
        """The primitive per edge with the largest posterior-mean :math:`\\Gamma` coordinate.

        On the simplex this is the MAP primitive of each edge's relaxed posterior. On the cube,
        where each coordinate is its own on/off weight, it is the argmax of the means, not the
        MAP vertex: a coordinate below 0.5 (off at the vertex) can still be chosen, and an edge
        with one primitive is always kept, with :meth:`discretize` setting its weight to 1.
        """
        return {e: self.graph.edges[e][int(torch.argmax(g))] for e, g in self.posterior_mean_gamma.items()}

    def discretize(self, refit: tuple[Any, Any] | None = None, *, refit_steps: int = 200, lr: float = 0.02,
                   progress: bool = False) -> DiscreteStructureNetwork:
        """The MAP discrete structure as a plain ``nn.Module``, weights at their posterior means.

        The relaxed fit trains the primitives of an edge as a *mixture*
        :math:`\\sum_i \\gamma_i g_i`; dropping all but the argmax primitive can lose most of
        the fit (one-layer digits: mixture 0.92 training accuracy, discretised 0.12). Pass
        ``refit=(x, y)`` to refit the chosen network's weights by MAP from the posterior
        means (:func:`refit_discrete`, with this fit's likelihood and
        :math:`\\alpha` = ``weight_precision``).

        Parameters
        ----------
        refit : (x, y), optional
            Data of the MAP refit; ``None``: no refit.
        refit_steps, lr, progress
            Passed to :func:`refit_discrete`.
        """
        net = StructureNetwork(self.graph)
        if self.weights:  # in the fit's dtype: a float64 fit gives a float64 network
            net = net.to(next(iter(self.weights.values())).dtype)
        with torch.no_grad():
            for name, p in net.named_parameters():
                p.copy_(self.weights[name].to(p.dtype))
        net = net.discretize(self.posterior_mean_gamma)
        if refit is not None:
            if not (isinstance(refit, (tuple, list)) and len(refit) == 2):
                raise InvalidArgumentError(f"`refit` must be the pair (x, y) of the refit's data; got {type(refit).__name__}")
            alpha = self.weight_precision if self.weight_precision is not None else 1.0
            refit_discrete(net, refit[0], refit[1], num_steps=refit_steps, lr=lr, task=self.task,
                           noise_scale=self.noise_scale, weight_precision=alpha, progress=progress)
        return net

    def to_dict(self) -> dict[str, Any]:
        return {
            "elbo": self.elbo,
            "temperature": self.temperature,
            "posterior_mean_gamma": {_edge_str(e): g.tolist() for e, g in self.posterior_mean_gamma.items()},
            "choice": {_edge_str(e): n for e, n in self.choice().items()},
            "num_steps": len(self.losses),
            "weight_precision": self.weight_precision,
            "weight_precision_mode": self.weight_precision_mode,
        }

    def to_json(self, **kwargs: Any) -> str:
        return _json.dumps(self.to_dict(), **kwargs)

    def __repr__(self) -> str:
        gam = ", ".join(
            f"{_edge_str(e)}: " + "[" + ", ".join(f"{n}={v:.3f}" for n, v in zip(self.graph.edges[e], g.tolist())) + "]"
            for e, g in self.posterior_mean_gamma.items()
        )
        alpha = "" if self.weight_precision is None else f", weight_precision={self.weight_precision:.4g}"
        return f"StructurePosterior(elbo={self.elbo:.3f}, temperature={self.temperature:g}{alpha}, gamma={{{gam}}})"


def refit_discrete(net: DiscreteStructureNetwork, x: Any, y: Any, *, num_steps: int = 200, lr: float = 0.02,
                   task: str = "classification", noise_scale: float = 1.0, weight_precision: float = 1.0,
                   progress: bool = False) -> list[float]:
    r"""MAP refit of a discrete structure's weights, in place: Adam on the negative log joint.

    Minimises, full batch, over the weights :math:`w` of the chosen primitives,

    .. math::

        -\log p(y \mid x, w) + \tfrac{\alpha}{2} \lVert w \rVert^2,

    the negative log posterior of :func:`network_model` at a fixed one-hot :math:`\Gamma` (up
    to a constant), starting from ``net``'s weights (e.g. the relaxed fit's posterior means,
    :meth:`StructurePosterior.discretize`).

    Parameters
    ----------
    net : DiscreteStructureNetwork
        From ``StructureNetwork.discretize`` or :meth:`StructurePosterior.discretize`.
    x : ``(N, *input_shape)`` or flat ``(N, prod(input_shape))``; y : ``(N,)``
    num_steps : int
        Adam steps (0: leave ``net`` as it is).
    lr : float
    task, noise_scale
        The likelihood, as in :func:`network_model`.
    weight_precision : float
        :math:`\alpha` of the Gaussian weight prior.
    progress : bool
        A tqdm bar over the steps.

    Returns
    -------
    list of float
        The objective per step.
    """
    from tqdm.auto import tqdm

    if not isinstance(net, DiscreteStructureNetwork):
        raise InvalidArgumentError(
            f"`net` must be a DiscreteStructureNetwork (StructurePosterior.discretize()); got {type(net).__name__}"
        )
    num_steps = check_positive_int(num_steps, "num_steps", minimum=0)
    lr = check_positive(lr, "lr")
    task = _check_task(task)
    sigma = check_positive(noise_scale, "noise_scale")
    alpha = check_positive(weight_precision, "weight_precision")
    params = list(net.parameters())
    dtype = params[0].dtype if params else torch.get_default_dtype()
    x = _as_input(x, net.graph).to(dtype)
    y = torch.as_tensor(y)
    if y.shape[:1] != x.shape[:1]:
        raise InvalidArgumentError(f"`y` must have one entry per row of `x` ({x.shape[0]}); got shape {tuple(y.shape)}")
    out_shape = net.graph.vertex_shapes[net.graph.output_vertex]
    if task == "classification":
        if y.is_floating_point() and not bool((torch.isfinite(y) & (y == y.round())).all()):
            raise InvalidArgumentError(f"`y` must be integer class labels; got {y.dtype} values that are not integers")
        y = y.long()
        _check_labels(y, x.shape[0], math.prod(out_shape))
    else:
        y = y.to(dtype)
        if not bool(torch.isfinite(y).all()):
            raise InvalidArgumentError("`y` must be finite (remove or impute the NaN/inf targets)")
        if y.dim() > 1 and tuple(y.shape[1:]) != tuple(out_shape):
            raise InvalidArgumentError(f"`y` must have shape ({x.shape[0]},) or ({x.shape[0]}, *{tuple(out_shape)}) "
                                       f"(the network's output); got {tuple(y.shape)}")
    losses: list[float] = []
    if not params or num_steps == 0:
        return losses
    opt = torch.optim.Adam(params, lr=lr)
    with torch.enable_grad():
        for _ in tqdm(range(num_steps), desc="MAP refit", disable=not progress, unit="step"):
            opt.zero_grad(set_to_none=True)
            out = net(x)
            if task == "classification":
                nll = torch.nn.functional.cross_entropy(out, y, reduction="sum")
            else:
                f = out[..., 0] if out.shape[1:] == (1,) and y.dim() == 1 else out
                nll = 0.5 * ((f - y) / sigma).pow(2).sum()
            loss = nll + 0.5 * alpha * sum(p.pow(2).sum() for p in params)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    return losses


def _init_loc_fn(graph: StructureGraph):
    """AutoNormal init: weights at a fresh network's default init, other sites via ``init_to_median``/feasible."""
    from pyro.infer.autoguide.initialization import init_to_feasible, init_to_median

    init = {n: p.detach().to(torch.get_default_dtype()) for n, p in StructureNetwork(graph).named_parameters()}
    init[PACKED_WEIGHTS_SITE] = pack_weight_values(graph, init)  # pack_weights=True (gamma not fixed: every weight)

    def fn(site):
        if site["name"] in init:
            fn_ = site["fn"]
            return init[site["name"]].to(fn_.mean.dtype).expand(fn_.shape()).clone()
        if site["name"] == WEIGHT_PRECISION_SITE:
            return init_to_median(site)
        return init_to_feasible(site)

    return fn


def _normal_weights_guide_class():
    r""":class:`AutoNormal` whose real-valued sites are plain ``Normal`` sample sites (built lazily: Pyro import).

    ``AutoNormal`` samples every site through an auxiliary ``*_unconstrained`` Normal and a
    ``Delta`` at the transformed value (carrying the log-Jacobian). Under ``TraceMeanField_ELBO``
    that is wrong twice: Pyro registers ``KL(Delta || p) = -log p(v)``, which drops the
    Delta's log-Jacobian (for :math:`\Gamma` and a latent :math:`\alpha` the estimate is then no
    longer a bound), and ``KL(Delta || Normal)`` gives the weights no analytic term. This
    subclass samples each site as ``Normal(loc, scale)`` pushed through ``biject_to(support)``
    -- a plain ``Normal`` for the weights (real support), so
    :math:`\mathrm{KL}(q(w) \,\|\, p(w \mid \alpha))` is analytic, and a
    ``TransformedDistribution`` (cached transform, exact ``log_prob``) for :math:`\alpha` and a
    :math:`\Gamma` on the cube -- on the simplex :class:`_StickBreakingNormal`, the same
    distribution in fewer tensor operations -- which have no registered KL against their priors,
    so those terms are Monte Carlo with the Jacobian. Same draws (``loc + scale * eps``) and
    parameter names (``AutoNormal.locs.*``/``AutoNormal.scales.*``) as ``AutoNormal``.
    """
    global _NormalWeightsGuide
    if _NormalWeightsGuide is not None:
        return _NormalWeightsGuide
    from pyro.infer.autoguide import AutoNormal
    from torch.distributions import biject_to
    from torch.distributions.transforms import ComposeTransform, IndependentTransform, StickBreakingTransform

    class NormalWeightsAutoNormal(AutoNormal):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pyro_name = "AutoNormal"  # the param names every consumer of the fit reads

        def forward(self, *args, **kwargs):
            if self.prototype_trace is None:
                self._setup_prototype(*args, **kwargs)
            plates = self._create_plates(*args, **kwargs)
            result = {}
            for name, site in self.prototype_trace.iter_stochastic_nodes():
                transform = base = biject_to(site["fn"].support)
                while isinstance(base, IndependentTransform):
                    base = base.base_transform
                with contextlib.ExitStack() as stack:
                    for frame in site["cond_indep_stack"]:
                        if frame.vectorized:
                            stack.enter_context(plates[frame.name])
                    loc, scale = self._get_loc_and_scale(name)
                    if isinstance(transform, StickBreakingTransform):  # Γ on the simplex: same law, fewer ops
                        q = _StickBreakingNormal(loc, scale)
                    else:
                        q = _GuideNormal(loc, scale).to_event(self._event_dims[name])
                        if not (isinstance(base, ComposeTransform) and not base.parts):  # not the identity
                            q = dist.TransformedDistribution(q, transform.with_cache())
                    result[name] = pyro.sample(name, q)
            return result

    _NormalWeightsGuide = NormalWeightsAutoNormal
    return _NormalWeightsGuide


_NormalWeightsGuide = None


class _StickBreaking(torch.distributions.transforms.StickBreakingTransform):
    r"""torch's stick-breaking bijection :math:`\mathbb R^{K-1} \to \Delta^{K-1}` in fewer tensor operations.

    The same map as ``biject_to(constraints.simplex)`` (so the same variational family, the same
    initial point and the same :func:`sample_gamma_posterior`): with the offsets
    :math:`o_k = \log(K - k)` (from the size alone; torch derives them from a cumulative sum),
    :math:`z_k = \sigma(x_k - o_k)` and :math:`\gamma_k = z_k \prod_{j<k} (1 - z_j)`,
    :math:`\gamma_K = \prod_{j<K} (1 - z_j)`; its log-Jacobian is
    :math:`\sum_{k<K} [\log \sigma(o_k - x_k) + \log \gamma_k]` (torch's
    :math:`-x + \log\sigma(x)` written as one ``logsigmoid``). For the two-option edges of the
    one-layer families the offset is 0 and the cumulative product is skipped. Used by the
    ``elbo="meanfield"`` guide, whose step is dominated by such per-site operations.
    """

    @staticmethod
    def _offset(x: torch.Tensor) -> torch.Tensor | None:
        n = x.shape[-1]
        if n == 1:
            return None
        return torch.log(torch.arange(n, 0, -1, dtype=x.dtype, device=x.device))

    def _call(self, x):
        offset = self._offset(x)
        z = torch.sigmoid(x if offset is None else x - offset)
        finfo = torch.finfo(z.dtype)  # torch's clipping of the sigmoid away from 0 and 1
        z = z.clamp(min=finfo.tiny, max=1.0 - finfo.eps)
        rest = 1 - z
        if x.shape[-1] == 1:
            return torch.cat([z, rest], -1)
        return torch.nn.functional.pad(z, [0, 1], value=1) * torch.nn.functional.pad(rest.cumprod(-1), [1, 0], value=1)

    def log_abs_det_jacobian(self, x, y):
        return self.log_det_terms(x, y).sum(-1)

    def log_det_terms(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The K-1 summands :math:`\\log\\sigma(o_k - x_k) + \\log \\gamma_k` of the log-Jacobian."""
        offset = self._offset(x)
        return torch.nn.functional.logsigmoid(-x if offset is None else offset - x) + y[..., :-1].log()


class _GuideNormal(dist.Normal):
    """``Normal(loc, scale)`` whose reparameterised draw :math:`\\mu + \\sigma\\epsilon` is ``randn`` + one ``addcmul``.

    The same distribution, draws and (registered) KL as ``pyro.distributions.Normal``; torch's
    ``rsample`` draws :math:`\\epsilon` as ``normal(zeros, ones)`` under a jit trace (three
    operations on a tensor the size of every weight) and adds the product in two more.
    """

    def rsample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        return torch.addcmul(self.loc, torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device), self.scale)

    def expand(self, batch_shape, _instance=None):
        return super().expand(batch_shape, self._get_checked_instance(_GuideNormal, _instance))


class _StickBreakingNormal(dist.TorchDistribution):
    r"""The guide of :math:`\Gamma` on the simplex: ``Normal(loc, scale)`` in :math:`\mathbb R^{K-1}`, pushed through :class:`_StickBreaking`.

    The distribution of ``TransformedDistribution(Normal(loc, scale).to_event(1),
    biject_to(simplex))`` -- the same draws :math:`\gamma = T(\mu + \sigma\epsilon)` and the
    same density

    .. math::

        \log q(\gamma) = \sum_{k<K} \Big[-\tfrac12 \epsilon_k^2 - \log\sigma_k - \tfrac12\log 2\pi\Big]
                      - \log|\det J_T(\mu + \sigma\epsilon)|

    -- in fewer tensor operations, which is what an SVI step of a small network pays for: the
    log-density of its own last draw reuses the draw's :math:`\epsilon` and pre-sigmoid values
    (the same function of :math:`(\mu, \sigma)` at fixed :math:`\epsilon`, so the same
    reparameterised gradient), and nothing is broadcast or re-validated. Any other value is
    mapped back through the transform's inverse.
    """

    arg_constraints = {"loc": constraints.real_vector, "scale": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, validate_args: bool | None = None):
        self.loc, self.scale = loc, scale
        self._transform = _StickBreaking()
        self._cached: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        super().__init__(loc.shape[:-1], torch.Size([int(loc.shape[-1]) + 1]),
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(_StickBreakingNormal, _instance)
        batch_shape = torch.Size(batch_shape)
        shape = batch_shape + self.loc.shape[-1:]
        new.loc, new.scale = self.loc.expand(shape), self.scale.expand(shape)
        new._transform, new._cached = self._transform, None
        super(_StickBreakingNormal, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def rsample(self, sample_shape=torch.Size()):
        shape = torch.Size(sample_shape) + self.loc.shape
        eps = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        x = torch.addcmul(self.loc, eps, self.scale)  # loc + eps * scale in one op
        value = self._transform(x)
        self._cached = (value, x, eps)
        return value

    def log_prob(self, value):
        if self._cached is not None and value is self._cached[0]:
            _, x, eps = self._cached
        else:
            if self._validate_args:
                self._validate_sample(value)
            x = self._transform.inv(value)
            eps = (x - self.loc) / self.scale
        # the Normal's log-density minus the transform's log-Jacobian, in one sum over the K-1 coordinates:
        # -sum_k [log sigma_k + log-Jacobian_k + eps_k^2 / 2] - (K-1) log sqrt(2 pi)
        terms = torch.addcmul(self._transform.log_det_terms(x, value) + self.scale.log(), eps, eps, value=0.5)
        return -int(x.shape[-1]) * _HALF_LOG_2PI - terms.sum(-1)


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _adam(params: Sequence[torch.Tensor], lr: float) -> torch.optim.Adam:
    """One ``torch.optim.Adam`` over ``params``: the fused kernel (one call for every tensor) where torch has it.

    The same update rule as the default (multi-tensor) Adam; for the four tensors of the packed
    one-layer digits guide its step took 0.16 ms against 0.45 ms (one CPU thread). Falls back to the
    multi-tensor step where ``fused=True`` is not supported (device or dtype).
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


def _converged(losses: list[float], window: int, tol: float) -> bool:
    """Relative change of the ``window``-step mean loss between the last two windows is below ``tol``."""
    n = len(losses)
    if n < 2 * window or n % window:
        return False
    last = sum(losses[-window:]) / window
    prev = sum(losses[-2 * window:-window]) / window
    return abs(last - prev) <= tol * abs(prev)


def fit_structure_posterior(graph: StructureGraph, x: torch.Tensor, y: torch.Tensor, *, num_steps: int = 1000,
                            lr: float = 0.02, temperature: float = 1.0, seed: int = 0, progress: bool = True,
                            restriction: str | Restriction = "simplex_interior", prior_kind: str = "gumbel-softmax",
                            weight_precision: float | str | dist.Gamma = 1.0, task: str = "classification",
                            noise_scale: float = 1.0, num_particles: int = 1, num_elbo_particles: int = 256,
                            num_gamma_samples: int = 2000, weight_precision_init: float = 1.0,
                            init_scale: float = 0.05, jit: bool = False, convergence_tol: float | None = None,
                            convergence_window: int = 100, elbo: str = "trace",
                            pack_weights: bool = False) -> StructurePosterior:
    r"""Variational posterior over weights and the relaxed structure :math:`\Gamma` by SVI.

    The guide is one :class:`pyro.infer.autoguide.AutoNormal` over every latent site: a
    mean-field Normal on the weights and, on :math:`\Gamma^{j,k}`, a Normal in the
    unconstrained coordinates of the simplex (``biject_to(simplex)``, stick-breaking), so
    :math:`q(\Gamma)` is a proper density and the ELBO is a true lower bound of the
    (relaxed) family's evidence. Optimiser: one fused ``torch.optim.Adam(lr)`` over every
    parameter, on ``Trace_ELBO``'s ``differentiable_loss`` (``JitTrace_ELBO`` with ``jit=True``).

    The weight precision :math:`\alpha` is fixed, learned or latent (``weight_precision``
    below). Learned, SVI maximises the ELBO jointly over the guide and :math:`\alpha`
    (variational type-II maximum likelihood; at the optimum
    :math:`\alpha = d / \mathbb E_q \lVert w \rVert^2`, the variational form of MacKay's
    update), and the reported ELBO bounds :math:`\log p(y \mid x, \hat\alpha)`. With a Gamma
    prior the guide gets a LogNormal factor for :math:`\alpha` and the ELBO bounds
    :math:`\log p(y \mid x) = \log \int p(y \mid x, \alpha) p(\alpha) d\alpha`.

    Parameters
    ----------
    graph : StructureGraph; x : ``(N, *input_shape)``; y : ``(N,)``
    num_steps : int; lr : float
    temperature : float
        :math:`\lambda_{temp}` of the Gumbel-softmax prior; small values favour vertices.
    seed : int
        Seeds Pyro/torch before the fit (the param store is cleared).
    progress : bool
        Show a tqdm progress bar with the running loss.
    restriction, prior_kind, weight_precision, task, noise_scale, weight_precision_init
        As in :func:`network_model` (the restriction must be an interior one);
        ``weight_precision`` is a number, ``"learn"`` or a ``pyro.distributions.Gamma``.
    num_particles : int
        ELBO particles per step (vectorised).
    num_elbo_particles, num_gamma_samples : int
        Particles of the final ELBO estimate and guide samples behind ``posterior_mean_gamma``.
    init_scale : float
        Initial standard deviation of the ``AutoNormal`` guide. Its means start at PyTorch's
        default initialisation of each primitive (drawn after seeding; all-zero weights would
        be a saddle point where hidden units cannot break symmetry), :math:`\Gamma` at the
        centre of its restriction set and :math:`\alpha` at its prior median.
    jit : bool
        Compile the ELBO with :class:`pyro.infer.JitTrace_ELBO` (``torch.jit.trace`` of model
        and guide, once): the same estimator without Pyro's per-site Python work, about twice
        as fast per step for small networks (``benchmarks/structure.py``). Needs
        ``num_particles == 1``. The first step still runs uncompiled, under the caller's
        validation setting, so bad data are reported as without ``jit``.
    convergence_tol : float, optional
        Stop before ``num_steps`` once the mean loss of the last ``convergence_window`` steps
        differs from that of the window before it by less than ``convergence_tol`` times its
        absolute value (checked every ``convergence_window`` steps); ``len(result.losses)``
        is then the number of steps run. ``None``: always run ``num_steps``.
    convergence_window : int
        Window of that moving average.
    elbo : {"trace", "meanfield"}
        The ELBO estimator. ``"trace"``: :class:`pyro.infer.Trace_ELBO`, Monte Carlo for every
        term. ``"meanfield"``: :class:`pyro.infer.TraceMeanField_ELBO` (``JitTraceMeanField_ELBO``
        with ``jit``) and a guide whose weights are plain Normal sites, so the weights' term
        :math:`\mathbb E_q[\log p(w \mid \alpha) - \log q(w)] = -\mathrm{KL}(q(w) \,\|\, p(w \mid \alpha))`
        is computed in closed form (Normal vs Normal), while :math:`\Gamma` (no registered KL for
        the relaxed prior) and a latent :math:`\alpha` stay Monte Carlo. The same ELBO (an
        unbiased estimate of the same bound) with a lower variance -- about 6x smaller standard
        deviation for the one-layer digits network at initialisation -- at about the same cost
        per step (``benchmarks/structure.py``); also used for the final ELBO estimate.
    pack_weights : bool
        Put every weight in the single sample site ``"weights"`` of shape ``(D,)``
        (:func:`network_model`): the same model, prior and ELBO, and the same guide family
        (a mean-field Normal over each weight), with one guide site and two parameter tensors
        (``AutoNormal.locs.weights``, ``AutoNormal.scales.weights``) instead of two per
        parameter tensor. Cheaper steps for small networks, where the per-site operations
        dominate (``benchmarks/structure.py``; with ``jit=True, elbo="meanfield"`` the fastest
        combination). ``StructurePosterior.weights`` keeps the per-parameter names.
    """
    from pyro.infer import JitTrace_ELBO, JitTraceMeanField_ELBO, Trace_ELBO, TraceMeanField_ELBO
    from pyro.infer.autoguide import AutoNormal

    temperature = _check_temperature(temperature)
    num_steps = check_positive_int(num_steps, "num_steps")
    lr = check_positive(lr, "lr")
    num_particles = check_positive_int(num_particles, "num_particles")
    num_elbo_particles = check_positive_int(num_elbo_particles, "num_elbo_particles")
    num_gamma_samples = check_positive_int(num_gamma_samples, "num_gamma_samples")
    if jit and num_particles != 1:
        raise InvalidArgumentError(
            f"`jit=True` needs `num_particles=1` (the vectorised particle path uses torch.func, which a jit "
            f"trace cannot hold); got num_particles={num_particles}"
        )
    if elbo not in ("trace", "meanfield"):
        raise UnknownNameError(f"`elbo` must be 'trace' or 'meanfield'; got {elbo!r}")
    tol = None if convergence_tol is None else check_positive(convergence_tol, "convergence_tol")
    window = check_positive_int(convergence_window, "convergence_window")
    r = _resolve_restriction(restriction)
    if r not in (Restriction.SIMPLEX_INTERIOR, Restriction.CUBE_INTERIOR):
        raise InvalidArgumentError(
            f"`restriction` must be an interior restriction ('simplex_interior' or 'cube_interior') for "
            f"continuous inference over the structure; got {r.value!r}. Compare discrete structures with NetworkFamily."
        )
    _check_task(task)
    _template(graph)
    mode = weight_precision_mode(weight_precision)
    pack = _check_pack_weights(pack_weights)
    x = _as_input(x, graph)
    if task == "classification" and y is not None:  # here, not inside the model's trace (Pyro appends its shapes)
        labels = torch.as_tensor(y)
        if labels.is_floating_point() and bool(torch.equal(labels, labels.round())):
            labels = labels.long()
        if not labels.is_floating_point():
            _check_labels(labels, x.shape[0], math.prod(graph.vertex_shapes[graph.output_vertex]))
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    kwargs = dict(graph=graph, restriction=r, prior_kind=prior_kind, temperature=temperature,
                  weight_precision=weight_precision, task=task, noise_scale=noise_scale,
                  weight_precision_init=weight_precision_init, pack_weights=pack)

    def model(x, y=None):
        return network_model(x, y, **kwargs)

    from tqdm.auto import tqdm

    meanfield = elbo == "meanfield"
    guide_cls = _normal_weights_guide_class() if meanfield else AutoNormal
    guide = guide_cls(model, init_loc_fn=_init_loc_fn(graph), init_scale=check_positive(init_scale, "init_scale"))
    plain_cls, jit_cls = (TraceMeanField_ELBO, JitTraceMeanField_ELBO) if meanfield else (Trace_ELBO, JitTrace_ELBO)
    plain = plain_cls(num_particles=num_particles, vectorize_particles=num_particles > 1, max_plate_nesting=1)
    fast = jit_cls(max_plate_nesting=1, ignore_jit_warnings=True) if jit else plain
    # one torch.optim.Adam over every parameter (Pyro's documented `differentiable_loss` route):
    # its multi-tensor step costs one call, where pyro.optim.Adam steps one optimiser per parameter
    optimizer = None
    validate = is_validation_enabled()
    losses: list[float] = []
    with tqdm(range(num_steps), desc="SVI structure posterior", disable=not progress, unit="step") as bar:
        for step in bar:
            # the first step runs uncompiled with the caller's validation setting (it checks the
            # data and every site's support); later ones skip Pyro's per-site checks (~30 % of a step)
            with pyro.validation_enabled(validate and step == 0), warnings.catch_warnings():
                if jit and step == 1:  # the compiling step: torch 2.x deprecates torch.jit.trace (still supported)
                    warnings.filterwarnings("ignore", message=".*torch.jit.trace.*", category=DeprecationWarning)
                loss = (plain if step == 0 else fast).differentiable_loss(model, guide, x, y)
                if meanfield and jit and step == 1:
                    # pyro 1.9.2's JitTraceMeanField_ELBO tests `_loss_and_surrogate_loss` but stores the compiled
                    # loss as `_differentiable_loss`, so it would re-trace on every call (~20x slower): mark it built
                    fast._loss_and_surrogate_loss = getattr(fast, "_differentiable_loss", None)
            if optimizer is None:  # the guide's parameters exist after its first call
                params = [p for _, p in pyro.get_param_store().named_parameters()]
                optimizer = _adam(params, lr)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            if (step + 1) % max(1, num_steps // 100) == 0:
                bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
            if tol is not None and _converged(losses, window, tol):
                break
    with torch.no_grad():
        elbo_est = plain_cls(num_particles=num_elbo_particles, vectorize_particles=True, max_plate_nesting=1)
        elbo = -float(elbo_est.loss(model, guide, x, y))
        names = [gamma_site_name(e) for e in graph.edge_list]
        sampled_edges = [e for e in graph.edge_list if gamma_site_name(e) in guide.prototype_trace.nodes]
        with pyro.plate("_gamma_samples", num_gamma_samples, dim=-2):
            draws = guide(x, y)
        gamma_samples = {e: draws[gamma_site_name(e)].reshape(num_gamma_samples, -1).detach().clone()
                         if e in sampled_edges else x.new_ones(num_gamma_samples, 1) for e in graph.edge_list}
        mean_gamma = {e: g.mean(0) if e in sampled_edges else x.new_ones(1) for e, g in gamma_samples.items()}
        medians = guide.median(x, y)
        if pack:
            packed = medians.get(PACKED_WEIGHTS_SITE, x.new_zeros(0))  # absent: a graph without weights
            weights = {k: v.detach().clone() for k, v in unpack_weight_values(graph, packed).items()}
        else:
            weights = {k: v.detach().clone() for k, v in medians.items()
                       if k not in names and k != WEIGHT_PRECISION_SITE}
        if mode == "learn":
            alpha = float(pyro.param(WEIGHT_PRECISION_SITE))
        elif mode == "prior":
            alpha = float(draws[WEIGHT_PRECISION_SITE].mean())
        else:
            alpha = float(weight_precision)
    return StructurePosterior(graph=graph, elbo=elbo, posterior_mean_gamma=mean_gamma, weights=weights,
                              temperature=temperature, losses=tuple(losses), weight_precision=alpha,
                              weight_precision_mode=mode, gamma_samples=gamma_samples, task=task,
                              noise_scale=float(noise_scale))


def sample_gamma_posterior(posterior: StructurePosterior, num_samples: int | None = None, *, seed: int = 0,
                           check: bool = True,
                           num_reference_samples: int | None = None) -> dict[tuple[int, int], torch.Tensor]:
    r"""Draws :math:`\Gamma^{j,k} \sim q(\Gamma^{j,k})` of a fitted structure posterior.

    :func:`fit_structure_posterior` keeps the guide's draws it averages into
    ``posterior_mean_gamma`` (``posterior.gamma_samples``, ``num_gamma_samples`` of them);
    this returns those -- all of them, or a seeded random subset of ``num_samples``.

    Only when more draws are asked for than the posterior holds (or it holds none) are fresh
    ones made from the guide: :func:`fit_structure_posterior` fits an
    :class:`~pyro.infer.autoguide.AutoNormal`, so on each edge :math:`\Gamma^{j,k} = T(z)`
    with :math:`z \sim \mathcal N(\mu, \mathrm{diag}\,\sigma^2)` in unconstrained coordinates
    and :math:`T` = ``biject_to(support)`` -- stick-breaking onto the simplex
    (:math:`z \in \mathbb R^{K-1}`), the sigmoid per coordinate onto the cube
    (:math:`z \in \mathbb R^{K}`). :math:`\mu, \sigma` are read from Pyro's param store
    (``"AutoNormal.locs.gamma_{j}_{k}"``, ``"AutoNormal.scales.gamma_{j}_{k}"``), where the fit
    leaves them: that route works right after the fit only, before another fit clears the store.

    Parameters
    ----------
    posterior : StructurePosterior
    num_samples : int, optional
        Default: every stored draw.
    seed : int
        Seeds the subset or the fresh draws (torch's global generator is left untouched).
    check : bool
        Fresh draws only: compare their mean with ``posterior.posterior_mean_gamma`` and raise
        if a coordinate differs by more than 6 Monte Carlo standard errors of the difference
        (plus 1e-4) -- the store then holds another fit's guide.
    num_reference_samples : int, optional
        The number of draws behind ``posterior_mean_gamma`` (default: the stored count, else 2,000).

    Returns
    -------
    dict of (j, k) to Tensor ``(num_samples, K)``
        For every edge; an edge without a :math:`\Gamma` site (one primitive on the simplex)
        gets its constant value.

    Raises
    ------
    InvalidArgumentError
        ``posterior`` is not a StructurePosterior; or fresh draws are needed and the param
        store lacks its guide parameters or (``check``) holds another fit's.
    """
    if not isinstance(posterior, StructurePosterior):
        raise InvalidArgumentError(
            f"`posterior` must be a StructurePosterior (from fit_structure_posterior); got {type(posterior).__name__}"
        )
    graph = posterior.graph
    stored = posterior.gamma_samples or {}
    num_stored = min((int(stored[e].shape[0]) for e in graph.edge_list), default=0) if stored else 0
    num_samples = num_stored if num_samples is None else check_positive_int(num_samples, "num_samples")
    if num_samples == 0:
        raise InvalidArgumentError("`posterior` holds no Γ draws; give `num_samples` to draw from the guide")
    gen = torch.Generator().manual_seed(int(seed))
    if num_samples <= num_stored:
        index = torch.arange(num_stored) if num_samples == num_stored else torch.randperm(num_stored, generator=gen)[:num_samples]
        return {e: stored[e][index] for e in graph.edge_list}
    ref_n = check_positive_int(num_reference_samples or num_stored or 2000, "num_reference_samples")
    store = pyro.get_param_store()
    out: dict[tuple[int, int], torch.Tensor] = {}
    for e in graph.edge_list:
        K = graph.num_primitives(e)
        mean = torch.as_tensor(posterior.posterior_mean_gamma[e])
        site = gamma_site_name(e)
        loc_name, scale_name = f"AutoNormal.locs.{site}", f"AutoNormal.scales.{site}"
        if loc_name not in store or scale_name not in store:
            if K == 1:  # no site: Gamma is the constant [1]
                out[e] = mean.reshape(1, 1).expand(num_samples, 1).clone()
                continue
            raise InvalidArgumentError(
                f"`num_samples` {num_samples} exceeds the {num_stored} Γ draws the posterior holds, and Pyro's param "
                f"store has no guide parameters {loc_name!r} to draw more: ask for at most {num_stored}, fit with a "
                "larger `num_gamma_samples`, or call this right after the fit (before another fit or "
                "pyro.clear_param_store())"
            )
        with torch.no_grad():
            loc, scale = store[loc_name].detach(), store[scale_name].detach()
            if loc.shape == (K - 1,):
                support = constraints.simplex
            elif loc.shape == (K,):
                support = constraints.independent(constraints.unit_interval, 1)
            else:
                raise InvalidArgumentError(
                    f"guide parameter {loc_name!r} has shape {tuple(loc.shape)}, which fits neither the simplex "
                    f"({K - 1},) nor the cube ({K},) of edge {e}; it belongs to another graph"
                )
            z = loc + scale * torch.randn((num_samples,) + tuple(loc.shape), generator=gen, dtype=loc.dtype)
            draws = torch.distributions.biject_to(support)(z)
        if check:
            se = torch.sqrt(draws.var(0) * (1.0 / num_samples + 1.0 / ref_n))
            gap = (draws.mean(0) - mean.to(draws.dtype)).abs()
            if (gap > 6 * se + 1e-4).any():
                raise InvalidArgumentError(
                    f"the guide in Pyro's param store does not match `posterior` on edge {e} (mean of draws "
                    f"{draws.mean(0).tolist()} vs posterior_mean_gamma {mean.tolist()}): another fit has replaced "
                    "it; call sample_gamma_posterior right after this posterior's fit"
                )
        out[e] = draws
    return out


# --------------------------------------------------------------------------------------
# the ELBO against the prior temperature
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemperatureSweepRow:
    r"""One temperature of :func:`elbo_temperature_sweep`.

    Attributes
    ----------
    temperature : float
        :math:`\lambda_{temp}` of the structure prior.
    elbo : float
        Mean over the seeds of the final ELBO of each fit (nats).
    elbo_stderr : float or None
        Standard error of that mean over the seeds (``None`` with one seed).
    posterior_mean_gamma : dict of (j, k) to Tensor ``(K,)``
        :math:`\mathbb E_q[\Gamma]`, averaged over the seeds.
    elbos : tuple of float
        The ELBO of each seed's fit.
    """

    temperature: float
    elbo: float
    elbo_stderr: float | None
    posterior_mean_gamma: dict
    elbos: tuple

    def to_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "elbo": self.elbo,
            "elbo_stderr": self.elbo_stderr,
            "elbos": list(self.elbos),
            "posterior_mean_gamma": {f"{e[0]}->{e[1]}": g.tolist() for e, g in self.posterior_mean_gamma.items()},
        }

    def to_json(self, **kwargs: Any) -> str:
        return _json.dumps(self.to_dict(), **kwargs)

    def __repr__(self) -> str:
        se = "" if self.elbo_stderr is None else f" ± {self.elbo_stderr:.3f}"
        gam = ", ".join(f"{e[0]}->{e[1]}: {[round(v, 3) for v in g.tolist()]}"
                        for e, g in self.posterior_mean_gamma.items() if g.numel() > 1)
        return f"TemperatureSweepRow(temperature={self.temperature:g}, elbo={self.elbo:.3f}{se}, gamma={{{gam}}})"


def elbo_temperature_sweep(graph: StructureGraph, x: torch.Tensor, y: torch.Tensor, temperatures: Sequence[float],
                           *, seeds: Sequence[int] = (0,), progress: bool = True,
                           **fit_kwargs: Any) -> list[TemperatureSweepRow]:
    r"""Fit the structure posterior at each prior temperature and collect ELBO and :math:`\mathbb E[\Gamma]`.

    The ELBO of :func:`fit_structure_posterior` at temperature
    :math:`\lambda_{temp}` bounds :math:`\log p(y \mid x, \lambda_{temp})`, the evidence of the
    hyperparameter :math:`\lambda_{temp}` with weights and :math:`\Gamma` integrated out; so
    the curve over :math:`\lambda_{temp}` compares temperatures as type-II maximum likelihood
    would (up to the bound's gap, which itself depends on :math:`\lambda_{temp}`). Every
    temperature is fitted once per seed; the spread over seeds (initialisation and SVI
    noise) gives the standard error.

    Parameters
    ----------
    graph : StructureGraph; x : ``(N, *input_shape)``; y : ``(N,)``
    temperatures : sequence of float > 0
        Fitted in the given order.
    seeds : sequence of int
        One fit per seed and temperature (``seed=`` of ``fit_structure_posterior``).
    progress : bool
        A tqdm bar over the fits (the fits' own printing is switched off).
    **fit_kwargs
        Passed to ``fit_structure_posterior`` (``num_steps``, ``lr``, ``prior_kind``, ...).

    Returns
    -------
    list of TemperatureSweepRow
        One per temperature, in the order given.
    """
    from tqdm.auto import tqdm

    for bad in ("temperature", "seed", "progress"):
        if bad in fit_kwargs:
            raise InvalidArgumentError(
                f"`{bad}` is set by elbo_temperature_sweep; use `temperatures`/`seeds`/`progress`"
            )
    if isinstance(temperatures, (str, bytes)) or not hasattr(temperatures, "__iter__"):
        raise InvalidArgumentError(f"`temperatures` must be a sequence of positive numbers; got {temperatures!r}")
    temps = [check_positive(t, "temperatures") for t in temperatures]
    if not temps:
        raise InvalidArgumentError("`temperatures` is empty; give at least one positive temperature")
    seeds = [int(check_positive_int(s, "seeds", minimum=0)) for s in seeds]
    if not seeds:
        raise InvalidArgumentError("`seeds` is empty; give at least one seed")
    rows = []
    with tqdm(total=len(temps) * len(seeds), desc="ELBO vs temperature", disable=not progress, unit="fit") as bar:
        for lam in temps:
            fits = []
            for s in seeds:
                fits.append(fit_structure_posterior(graph, x, y, temperature=lam, seed=s, progress=False, **fit_kwargs))
                bar.set_postfix(temperature=f"{lam:g}", elbo=f"{fits[-1].elbo:.1f}")
                bar.update()
            elbos = [float(f.elbo) for f in fits]
            stderr = statistics.stdev(elbos) / math.sqrt(len(elbos)) if len(elbos) > 1 else None
            mean_gamma = {e: torch.stack([f.posterior_mean_gamma[e] for f in fits]).mean(0) for e in graph.edge_list}
            rows.append(TemperatureSweepRow(temperature=lam, elbo=statistics.fmean(elbos), elbo_stderr=stderr,
                                            posterior_mean_gamma=mean_gamma, elbos=tuple(elbos)))
    return rows


# --------------------------------------------------------------------------------------
# the family of discrete structures
# --------------------------------------------------------------------------------------


def _edge_key(e: tuple[int, int]) -> str:
    return f"edge_{e[0]}_{e[1]}"


class NetworkFamily(StructureFamily):
    """The discrete structures of a :class:`StructureGraph`: one primitive per edge.

    The structure space is ``{"edge_{j}_{k}": [primitive names of edge (j, k)], ...}``; a
    structure binds :func:`network_model` with the matching one-hot ``gamma`` (fixed, so the
    model has only the weights -- and :math:`\\alpha` under a Gamma prior -- as latents).
    ``laplace``, ``elbo``, ``iwae`` and ``smc`` apply to every structure; ``exact`` only to a
    network linear in its weights (one linear edge from input to output, Gaussian likelihood,
    :math:`\\alpha` fixed) and refuses the others, so ``compare`` runs ``laplace`` and ``smc`` on
    a network family unless given ``methods`` (``default_methods``).

    Parameters
    ----------
    graph : StructureGraph
    weight_precision : float, "learn" or pyro.distributions.Gamma
        :math:`\\alpha` of the weight prior :math:`\\mathcal N(0, \\alpha^{-1} I)`. A number is
        fixed. ``"learn"`` fits it per structure by type-II maximum likelihood on the Laplace
        evidence (MacKay, 1992, "A practical Bayesian framework for backpropagation
        networks"): at the MAP weights :math:`w^*` with Hessian :math:`H` of
        :math:`-\\log p(y, w \\mid \\alpha)`, iterate
        :math:`\\gamma_{eff} = d - \\alpha\\,\\mathrm{tr}(H^{-1})`,
        :math:`\\alpha \\leftarrow \\gamma_{eff} / \\lVert w^* \\rVert^2` to a fixed point (for a
        linear-Gaussian model this is the exact evidence maximiser, PRML eq. 3.92). A
        ``Gamma`` makes :math:`\\alpha` the latent site ``"weight_precision"``, integrated out.
    task : {"classification", "regression"}; noise_scale : float
        Passed to :func:`network_model`.
    weight_precision_init : float
        Starting point of ``"learn"``.
    pack_weights : bool
        Passed to :func:`network_model`: all weights of a structure in the one site
        ``"weights"`` (the same model; the evidence estimators see one latent vector either way).

    Notes
    -----
    ``x`` may be given flat, ``(N, prod(input_shape))``, for image graphs: :func:`network_model`
    reshapes it, so :func:`bayesstruct.compare` (which takes 2-D ``x``) applies to conv graphs.

    Examples
    --------
    >>> from bayesstruct.nn import StructureGraph
    >>> g = StructureGraph(3, {(0, 1): ["linear_sigmoid", "zero"], (1, 2): "linear"},
    ...                    input_shape=(3,), vertex_shapes={1: (4,), 2: (2,)})
    >>> NetworkFamily(g).structures()
    [{'edge_0_1': 'linear_sigmoid', 'edge_1_2': 'linear'}, {'edge_0_1': 'zero', 'edge_1_2': 'linear'}]
    """

    #: ``exact`` refuses a network that is not linear in its weights, which is most of them
    default_methods = ("laplace", "smc")

    def __init__(self, graph: StructureGraph, *, weight_precision: float | str | dist.Gamma = 1.0,
                 task: str = "classification", noise_scale: float = 1.0, weight_precision_init: float = 1.0,
                 pack_weights: bool = False) -> None:
        _template(graph)
        self.graph = graph
        self.weight_precision_mode = weight_precision_mode(weight_precision)
        if self.weight_precision_mode == "fixed":
            weight_precision = float(weight_precision)
        self.weight_precision_init = check_positive(weight_precision_init, "weight_precision_init")
        space = {_edge_key(e): list(graph.edges[e]) for e in graph.edge_list}  # StructureGraph refuses repeats
        model_kwargs = dict(graph=graph, weight_precision=weight_precision, task=_check_task(task),
                            noise_scale=check_positive(noise_scale, "noise_scale"))
        if _check_pack_weights(pack_weights):  # only when set: the default's hyperparameters() stay as they were
            model_kwargs["pack_weights"] = True
        super().__init__(network_model, space, name="network", model_kwargs=model_kwargs)

    def gamma(self, structure: Mapping[str, Any]) -> dict[tuple[int, int], torch.Tensor]:
        """The one-hot :math:`\\Gamma` of a structure, ``{(j, k): (K,)}``."""
        structure = self.validate_structure(structure)
        out = {}
        for e in self.graph.edge_list:
            names = list(self.graph.edges[e])
            choice = structure[_edge_key(e)]
            if choice not in names:
                raise InvalidArgumentError(f"`structure[{_edge_key(e)!r}]` must be one of {names}; got {choice!r}")
            out[e] = nn.functional.one_hot(torch.tensor(names.index(choice)), len(names)).to(torch.get_default_dtype())
        return out

    def bind(self, structure: Mapping[str, Any], **kwargs: Any) -> BoundModel:
        """``network_model`` with the structure's one-hot ``gamma`` and the hyperparameters fixed.

        Warns (:class:`~bayesstruct.exceptions.ApproximationWarning`) when the structure has a
        hidden vertex whose units can be rotated without changing the model
        (:func:`rotation_symmetric_vertices`): its posterior then has flat directions, and
        Laplace's method -- and the estimators that start from its fit -- do not apply.
        """
        gamma = self.gamma(structure)
        symmetric = rotation_symmetric_vertices(self.graph, {e: self.graph.edges[e][int(g.argmax())]
                                                             for e, g in gamma.items()})
        if symmetric:
            widths = ", ".join(f"{k} ({self.graph.vertex_shapes[k][0]} units)" for k in symmetric)
            warnings.warn(
                f"structure {dict(structure)}: hidden vertex {widths} is a linear layer feeding weight matrices, so the "
                "model and its isotropic weight prior are invariant under rotations of its units (W_in -> Q W_in, "
                "W_out -> W_out Q^T): the posterior has flat directions, and the Laplace evidence (and the estimators "
                "started from the Laplace fit) is unreliable for it; use smc with reference='prior', or a "
                "nonlinear primitive", ApproximationWarning, stacklevel=2)
        bound = BoundModel(network_model, {**self.model_kwargs, **kwargs, "gamma": gamma})
        bound.__name__ = "network_model"
        return bound

    def resolve(self, x: torch.Tensor, y: torch.Tensor, structure: Mapping[str, Any]) -> dict[str, Any]:
        if self.weight_precision_mode != "learn":
            return {}
        return {"weight_precision": self.fit_weight_precision(x, y, structure)}

    def fit_weight_precision(self, x: torch.Tensor, y: torch.Tensor, structure: Mapping[str, Any], *,
                             max_iter: int = 50, rtol: float = 1e-5) -> float:
        """Type-II ML :math:`\\hat\\alpha` of one structure by MacKay's fixed point on the Laplace evidence."""
        from bayesstruct.evidence.density import ModelDensity
        from bayesstruct.evidence.laplace import laplace_fit

        alpha, z = self.weight_precision_init, None
        for _ in range(max_iter):
            density = ModelDensity(self.bind(structure, weight_precision=alpha), x, y)
            fit = laplace_fit(density, init=z)
            z = fit.z_map
            d = z.shape[0]
            trace_cov = float(torch.cholesky_inverse(fit.cholesky).diagonal().sum())
            gamma_eff = max(d - alpha * trace_cov, 1e-8)
            new = gamma_eff / max(float(z.pow(2).sum()), 1e-300)
            done = abs(new - alpha) <= rtol * alpha
            alpha = new
            if done:
                break
        return float(alpha)

    def hyperparameters(self, resolved: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in {**self.model_kwargs, **resolved}.items() if k != "graph"}
        wp = out["weight_precision"]
        if isinstance(wp, torch.distributions.Gamma):
            out["weight_precision"] = f"Gamma({float(wp.concentration):g}, {float(wp.rate):g})"
        out["weight_precision_mode"] = self.weight_precision_mode
        return out
