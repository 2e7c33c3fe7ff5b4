r"""Bayesian structure-graph networks: a Pyro family over the primitives on the edges.

The lecture's model (§"structure as a graph") with priors on everything:

.. math::

    w \sim \mathcal N(0, \alpha^{-1} I), \qquad
    \Gamma^{j,k} \sim \mathrm{GS}(s = 1/K, \lambda_{temp}) \ \text{per edge}, \qquad
    y_n \mid x_n, w, \Gamma \sim \mathrm{Cat}(\mathrm{softmax}\, f(x_n; w, \Gamma))
    \ \text{or}\ \mathcal N(f(x_n; w, \Gamma), \sigma^2),

where :math:`f` is the :class:`~bayesstruct.nn.StructureNetwork` of the graph and
:math:`\alpha` is ``weight_precision``. Fixing :math:`\Gamma` to a one-hot value (``gamma=``)
gives the model of one discrete structure; :class:`NetworkFamily` enumerates those.

Pyro sites (public names)
-------------------------
* ``"<param name>"`` for every parameter of the ``StructureNetwork``, named as
  ``net.named_parameters()`` names it (the naming :class:`pyro.nn.PyroModule` uses), e.g.
  ``"ops.e0_1.0.linear.weight"`` (shape ``(out, in)``) and ``"ops.e0_1.0.linear.bias"``
  (``(out,)``). Prior ``Normal(0, weight_precision ** -0.5)``, all dims event dims.
  With ``gamma`` fixed, primitives whose ``gamma`` coordinate is exactly 0 get no site.
* ``"gamma_{j}_{k}"`` for every edge ``(j, k)`` (shape ``(K,)``), only when ``gamma`` is
  not given: ``structure_prior(restriction, uniform, temperature, kind=prior_kind)``. On
  the simplex an edge with a single primitive has no site (its :math:`\Gamma` is ``[1]``).
* ``"y"``: observed, in ``pyro.plate("data", N)``.

The model is vectorisable: sites may carry batch dims from outer plates (e.g. the
particle plate of :class:`~bayesstruct.evidence.ModelDensity` or
``Trace_ELBO(vectorize_particles=True)``); the network is evaluated per particle with
:func:`torch.func.vmap` over :func:`torch.func.functional_call`, so any primitive works.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from torch.func import functional_call, vmap

from bayesstruct._validation import check_positive, check_positive_int
from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError
from bayesstruct.families.base import BoundModel, StructureFamily
from bayesstruct.nn.graph import DiscreteStructureNetwork, StructureGraph, StructureNetwork
from bayesstruct.priors.relaxed import Restriction, _resolve_restriction, structure_prior

__all__ = [
    "TASKS",
    "network_model",
    "gamma_site_name",
    "weight_site_names",
    "StructurePosterior",
    "fit_structure_posterior",
    "NetworkFamily",
]

#: likelihoods of :func:`network_model`
TASKS = ("classification", "regression")

_TEMPLATES: dict[int, tuple[StructureGraph, StructureNetwork]] = {}


def _template(graph: StructureGraph) -> StructureNetwork:
    """One (weight-free in meaning) StructureNetwork per graph, used as a functional template."""
    if not isinstance(graph, StructureGraph):
        raise InvalidArgumentError(f"`graph` must be a bayesstruct.nn.StructureGraph; got {type(graph).__name__}")
    hit = _TEMPLATES.get(id(graph))
    if hit is None or hit[0] is not graph:
        hit = (graph, StructureNetwork(graph))
        _TEMPLATES[id(graph)] = hit
    return hit[1]


def gamma_site_name(edge: tuple[int, int]) -> str:
    """Pyro site name of :math:`\\Gamma^{j,k}`: ``"gamma_{j}_{k}"``."""
    return f"gamma_{edge[0]}_{edge[1]}"


def weight_site_names(graph: StructureGraph) -> list[str]:
    """Pyro site names of the weights, in trace order (``StructureNetwork.named_parameters()``)."""
    return [n for n, _ in _template(graph).named_parameters()]


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


def network_model(x: torch.Tensor, y: torch.Tensor | None = None, *, graph: StructureGraph,
                  gamma: Mapping[tuple[int, int], Any] | None = None, restriction: str | Restriction = "simplex_interior",
                  prior_kind: str | None = "gumbel-softmax", temperature: float = 1.0, weight_precision: float = 1.0,
                  task: str = "classification", noise_scale: float = 1.0) -> torch.Tensor:
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
    weight_precision : float
        :math:`\alpha`, the prior precision of every weight.
    task : {"classification", "regression"}
    noise_scale : float
        :math:`\sigma` of the regression likelihood.

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
    net = _template(graph)
    task = _check_task(task)
    alpha = check_positive(weight_precision, "weight_precision")
    if not torch.is_tensor(x):
        x = torch.as_tensor(x, dtype=torch.get_default_dtype())
    n_in = len(graph.input_shape)
    if x.dim() != n_in + 1 or tuple(x.shape[1:]) != graph.input_shape:
        raise InvalidArgumentError(
            f"`x` must have shape (N, {', '.join(map(str, graph.input_shape))}); got {tuple(x.shape)}"
        )
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
            s = x.new_full((K,), 1.0 / K) if on_simplex else x.new_full((K,), 0.5)
            try:
                prior = structure_prior(restriction, s, lam, kind=prior_kind) if interior else structure_prior(restriction, s)
            except UnknownNameError as exc:
                raise UnknownNameError(f"`prior_kind`: {exc.args[0]}") from None
            gam[e] = pyro.sample(gamma_site_name(e), prior)
        fixed_zero: set[tuple[str, int]] = set()
    else:
        gam = {e: (v if torch.is_tensor(v) else torch.as_tensor(v)).to(x.dtype) for e, v in net.check_gamma(gamma).items()}
        fixed_zero = {(f"e{e[0]}_{e[1]}", i) for e, v in gam.items() if v.dim() == 1
                      for i in range(v.shape[-1]) if float(v[i]) == 0.0}

    # -- weights -----------------------------------------------------------------
    scale = x.new_tensor(alpha).rsqrt()
    sampled: dict[str, torch.Tensor] = {}
    fixed: dict[str, torch.Tensor] = {}
    for name, p in net.named_parameters():
        if _param_edge_index(name) in fixed_zero:
            fixed[name] = x.new_zeros(p.shape)
            continue
        prior = dist.Normal(x.new_zeros(p.shape), scale).to_event(p.dim())
        sampled[name] = pyro.sample(name, prior)

    f = _forward(net, x, sampled, fixed, gam)  # (*batch, N, *out_shape)

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
                if y.shape != (N,) or (y < 0).any() or (y >= out_shape[0]).any():
                    raise InvalidArgumentError(
                        f"`y` must be ({N},) labels in 0..{out_shape[0] - 1}; got shape {tuple(y.shape)}"
                    )
            return pyro.sample("y", dist.Categorical(logits=f), obs=y)
        sigma = check_positive(noise_scale, "noise_scale")
        if out_shape == (1,):
            return pyro.sample("y", dist.Normal(f[..., 0], sigma), obs=y)
        return pyro.sample("y", dist.Normal(f, sigma).to_event(len(out_shape)), obs=y)


def _forward(net: StructureNetwork, x: torch.Tensor, sampled: Mapping[str, torch.Tensor],
             fixed: Mapping[str, torch.Tensor], gamma: Mapping[tuple, torch.Tensor]) -> torch.Tensor:
    """``f(x; w, gamma)`` with batched weights/gamma: ``(*B, 1, ...)`` from outer plates -> ``(*B, N, *out)``."""
    shapes = dict(net.named_parameters())
    batches = [v.shape[: v.dim() - shapes[n].dim()] for n, v in sampled.items()]
    batches += [g.shape[:-1] for g in gamma.values()]
    batch = torch.broadcast_shapes(*batches) if batches else torch.Size()
    if len(batch) == 0:
        return functional_call(net, {**sampled, **fixed}, (x, dict(gamma)))
    if batch[-1] != 1:
        raise InvalidArgumentError(
            f"batched sites must have a size-1 dimension for the 'data' plate on their right; got batch shape {tuple(batch)}"
        )
    flat = int(math.prod(batch))
    pb = {n: v.expand(batch + shapes[n].shape).reshape((flat,) + tuple(shapes[n].shape)) for n, v in sampled.items()}
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
    """

    graph: StructureGraph
    elbo: float
    posterior_mean_gamma: dict
    weights: dict
    temperature: float
    losses: tuple = field(repr=False)

    def choice(self) -> dict[tuple[int, int], str]:
        """The MAP primitive per edge: argmax of the posterior-mean :math:`\\Gamma`."""
        return {e: self.graph.edges[e][int(torch.argmax(g))] for e, g in self.posterior_mean_gamma.items()}

    def discretize(self) -> DiscreteStructureNetwork:
        """The MAP discrete structure as a plain ``nn.Module``, weights at their posterior means."""
        net = StructureNetwork(self.graph)
        with torch.no_grad():
            for name, p in net.named_parameters():
                p.copy_(self.weights[name].to(p.dtype))
        return net.discretize(self.posterior_mean_gamma)

    def to_dict(self) -> dict[str, Any]:
        return {
            "elbo": self.elbo,
            "temperature": self.temperature,
            "posterior_mean_gamma": {_edge_str(e): g.tolist() for e, g in self.posterior_mean_gamma.items()},
            "choice": {_edge_str(e): n for e, n in self.choice().items()},
            "num_steps": len(self.losses),
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def __repr__(self) -> str:
        gam = ", ".join(
            f"{_edge_str(e)}: " + "[" + ", ".join(f"{n}={v:.3f}" for n, v in zip(self.graph.edges[e], g.tolist())) + "]"
            for e, g in self.posterior_mean_gamma.items()
        )
        return f"StructurePosterior(elbo={self.elbo:.3f}, temperature={self.temperature:g}, gamma={{{gam}}})"


def fit_structure_posterior(graph: StructureGraph, x: torch.Tensor, y: torch.Tensor, *, num_steps: int = 1000,
                            lr: float = 0.02, temperature: float = 1.0, seed: int = 0, progress: bool = True,
                            restriction: str | Restriction = "simplex_interior", prior_kind: str = "gumbel-softmax",
                            weight_precision: float = 1.0, task: str = "classification", noise_scale: float = 1.0,
                            num_particles: int = 1, num_elbo_particles: int = 256,
                            num_gamma_samples: int = 2000) -> StructurePosterior:
    r"""Variational posterior over weights and the relaxed structure :math:`\Gamma` by SVI.

    The guide is one :class:`pyro.infer.autoguide.AutoNormal` over every latent site: a
    mean-field Normal on the weights and, on :math:`\Gamma^{j,k}`, a Normal in the
    unconstrained coordinates of the simplex (``biject_to(simplex)``, stick-breaking), so
    :math:`q(\Gamma)` is a proper density and the ELBO is a true lower bound of the
    (relaxed) family's evidence. Optimiser: Adam(``lr``), ``Trace_ELBO``.

    Parameters
    ----------
    graph : StructureGraph; x : ``(N, *input_shape)``; y : ``(N,)``
    num_steps : int; lr : float
    temperature : float
        :math:`\lambda_{temp}` of the Gumbel-softmax prior; small values favour vertices.
    seed : int
        Seeds Pyro/torch before the fit (the param store is cleared).
    progress : bool
        Print the loss every 10 % of the steps.
    restriction, prior_kind, weight_precision, task, noise_scale
        As in :func:`network_model` (the restriction must be an interior one).
    num_particles : int
        ELBO particles per step (vectorised).
    num_elbo_particles, num_gamma_samples : int
        Particles of the final ELBO estimate and guide samples behind ``posterior_mean_gamma``.
    """
    from pyro.infer import SVI, Trace_ELBO
    from pyro.infer.autoguide import AutoNormal
    from pyro.optim import Adam

    temperature = _check_temperature(temperature)
    num_steps = check_positive_int(num_steps, "num_steps")
    lr = check_positive(lr, "lr")
    r = _resolve_restriction(restriction)
    if r not in (Restriction.SIMPLEX_INTERIOR, Restriction.CUBE_INTERIOR):
        raise InvalidArgumentError(
            f"`restriction` must be an interior restriction ('simplex_interior' or 'cube_interior') for "
            f"continuous inference over the structure; got {r.value!r}. Compare discrete structures with NetworkFamily."
        )
    _check_task(task)
    _template(graph)
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    kwargs = dict(graph=graph, restriction=r, prior_kind=prior_kind, temperature=temperature,
                  weight_precision=weight_precision, task=task, noise_scale=noise_scale)

    def model(x, y=None):
        return network_model(x, y, **kwargs)

    guide = AutoNormal(model, init_scale=0.05)
    svi = SVI(model, guide, Adam({"lr": lr}),
              Trace_ELBO(num_particles=num_particles, vectorize_particles=num_particles > 1, max_plate_nesting=1))
    losses = []
    for step in range(num_steps):
        losses.append(float(svi.step(x, y)))
        if progress and (step + 1) % max(1, num_steps // 10) == 0:
            print(f"step {step + 1}/{num_steps}  loss {losses[-1]:.3f}")
    with torch.no_grad():
        elbo_est = Trace_ELBO(num_particles=num_elbo_particles, vectorize_particles=True, max_plate_nesting=1)
        elbo = -float(elbo_est.loss(model, guide, x, y))
        names = [gamma_site_name(e) for e in graph.edge_list]
        sampled_edges = [e for e in graph.edge_list if gamma_site_name(e) in guide.prototype_trace.nodes]
        with pyro.plate("_gamma_samples", num_gamma_samples, dim=-2):
            draws = guide(x, y)
        mean_gamma = {e: draws[gamma_site_name(e)].reshape(num_gamma_samples, -1).mean(0) if e in sampled_edges
                      else x.new_ones(1) for e in graph.edge_list}
        medians = guide.median(x, y)
        weights = {k: v.detach().clone() for k, v in medians.items() if k not in names}
    return StructurePosterior(graph=graph, elbo=elbo, posterior_mean_gamma=mean_gamma, weights=weights,
                              temperature=temperature, losses=tuple(losses))


# --------------------------------------------------------------------------------------
# the family of discrete structures
# --------------------------------------------------------------------------------------


def _edge_key(e: tuple[int, int]) -> str:
    return f"edge_{e[0]}_{e[1]}"


class NetworkFamily(StructureFamily):
    """The discrete structures of a :class:`StructureGraph`: one primitive per edge.

    The structure space is ``{"edge_{j}_{k}": [primitive names of edge (j, k)], ...}``; a
    structure binds :func:`network_model` with the matching one-hot ``gamma`` (fixed, so the
    model has only the weights as latents and every evidence estimator applies).

    Parameters
    ----------
    graph : StructureGraph
    weight_precision : float; task : {"classification", "regression"}; noise_scale : float
        Passed to :func:`network_model`.

    Examples
    --------
    >>> from bayesstruct.nn import StructureGraph
    >>> g = StructureGraph(3, {(0, 1): ["linear_sigmoid", "zero"], (1, 2): "linear"},
    ...                    input_shape=(3,), vertex_shapes={1: (4,), 2: (2,)})
    >>> NetworkFamily(g).structures()
    [{'edge_0_1': 'linear_sigmoid', 'edge_1_2': 'linear'}, {'edge_0_1': 'zero', 'edge_1_2': 'linear'}]
    """

    def __init__(self, graph: StructureGraph, *, weight_precision: float = 1.0, task: str = "classification",
                 noise_scale: float = 1.0) -> None:
        _template(graph)
        self.graph = graph
        space = {_edge_key(e): list(graph.edges[e]) for e in graph.edge_list}
        super().__init__(network_model, space, name="network",
                         model_kwargs=dict(graph=graph, weight_precision=check_positive(weight_precision, "weight_precision"),
                                           task=_check_task(task), noise_scale=check_positive(noise_scale, "noise_scale")))

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
        """``network_model`` with the structure's one-hot ``gamma`` and the hyperparameters fixed."""
        bound = BoundModel(network_model, {**self.model_kwargs, **kwargs, "gamma": self.gamma(structure)})
        bound.__name__ = "network_model"
        return bound

    def resolve(self, x: torch.Tensor, y: torch.Tensor, structure: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def hyperparameters(self, resolved: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in self.model_kwargs.items() if k != "graph"}
