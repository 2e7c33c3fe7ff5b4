r"""FBNet: latency-aware differentiable search (Wu et al., CVPR 2019).

Every searched edge :math:`(j, k)` draws a relaxed one-hot mask from the Gumbel-softmax
with logits :math:`\theta^{j,k}` and temperature :math:`\tau` (eq. 5; the lecture's
:class:`~bayesstruct.priors.GumbelSoftmax` structure prior at location
:math:`\mathrm{softmax}(\theta)`), the supernet mixes the primitives with it, and the loss
multiplies the cross-entropy by the latency of the sampled structure (eq. 2):

.. math::

    \mathcal L(\Gamma, w) = \mathrm{CE}(\Gamma, w) \cdot \lambda_1 \log(\mathrm{LAT}(\Gamma))^{\lambda_2},
    \qquad \mathrm{LAT}(\Gamma) = \sum_{(j,k)} \sum_i \gamma^{j,k}_i\, \mathrm{LAT}^{j,k}_i,

with :math:`\mathrm{LAT}^{j,k}_i` the latency of primitive :math:`i` on edge :math:`(j, k)`,
read from a table measured on the target hardware (:func:`latency_table` measures it on the
running machine). The paper uses :math:`\lambda_1 = 0.2`, :math:`\lambda_2 = 0.6`, an initial
temperature of 5 annealed by :math:`e^{-0.045}` per epoch, and trains :math:`w` (SGD) and
:math:`\theta` (Adam, learning rate 0.01, weight decay 5e-4) in turn each epoch on 80 % / 20 %
of the training set. Its FBNet-B reaches 74.1 % top-1 on ImageNet at 295 M FLOPs and 23.1 ms
on a Samsung S8.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from bayesstruct._validation import check_nonnegative, check_positive, check_positive_int
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.nn.criteria import operational_criteria
from bayesstruct.nn.graph import StructureGraph, StructureNetwork, _edge_key
from bayesstruct.priors.relaxed import GumbelSoftmax
from bayesstruct.search.base import check_graph, register_search, seeded
from bayesstruct.search.darts import _Differentiable

__all__ = ["FBNet", "latency_table", "structure_latency"]


def latency_table(graph: StructureGraph, *, repeats: int = 50, warmup: int = 5,
                  dtype: torch.dtype | None = None) -> dict[tuple[int, int], torch.Tensor]:
    r"""FBNet's latency lookup table, measured on this machine, in **microseconds**.

    For every edge :math:`(j, k)` and primitive :math:`i`, the median wall time of the
    primitive's forward pass on one example of vertex :math:`j`'s shape
    (:func:`~bayesstruct.nn.operational_criteria`: batch of one, ``torch.no_grad``,
    ``repeats`` timed runs after ``warmup``). Edges with one primitive are measured too:
    they are part of every structure's latency.

    Returns
    -------
    dict of (j, k) to Tensor ``(K,)``
    """
    check_graph(graph)
    repeats = check_positive_int(repeats, "repeats")
    warmup = check_positive_int(warmup, "warmup", minimum=0)
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise InvalidArgumentError(f"`dtype` must be None or a floating torch.dtype (e.g. torch.float32); got {dtype!r}")
    out = {}
    with seeded(0):  # the weights and the timing inputs; the caller's global RNG does not move
        net = StructureNetwork(graph)
        if dtype is not None:
            net = net.to(dtype)
        for e in graph.edge_list:
            shape = graph.vertex_shapes[e[0]] if e[0] else graph.input_shape
            times = [operational_criteria(op, shape, repeats=repeats, warmup=warmup).latency_ms * 1e3
                     for op in net.ops[_edge_key(e)]]
            out[e] = torch.tensor(times, dtype=torch.float64)
    return out


def structure_latency(graph: StructureGraph, latency: Mapping, choice: Mapping[tuple[int, int], str]) -> float:
    r""":math:`\mathrm{LAT}` of one structure: the sum over edges of the chosen primitive's latency.

    ``latency``: a table ``{(j, k): (K,)}`` as :func:`latency_table` returns; ``choice``:
    ``{edge: primitive name}`` (edges left out take their first primitive).
    """
    check_graph(graph)
    table = _check_latency(latency, graph, floor=False)
    if not isinstance(choice, Mapping):
        raise InvalidArgumentError(f"`choice` must be a dict {{edge: primitive name}}; got {type(choice).__name__}")
    unknown = [e for e in choice if e not in graph.edges]
    if unknown:
        raise InvalidArgumentError(
            f"`choice` names edge(s) {unknown} that the graph does not have; its edges: {list(graph.edges)}"
        )
    total = 0.0
    for e, t in table.items():
        name = choice.get(e, graph.edges[e][0])
        if name not in graph.edges[e]:
            raise InvalidArgumentError(f"`choice[{e}]` must be one of {list(graph.edges[e])}; got {name!r}")
        total += float(t[graph.edges[e].index(name)])
    return total


def _fmt_edge(e: tuple[int, int]) -> str:
    return f"{e[0]}->{e[1]}"


def _check_latency(latency: Any, graph: StructureGraph, *, floor: bool = True) -> dict:
    if not isinstance(latency, Mapping):
        raise InvalidArgumentError(
            "`latency` must be 'measure' or a dict {(j, k): [latency of each primitive]} covering every edge; "
            f"got {type(latency).__name__}"
        )
    # the JSON form of a result (SearchResult.to_dict) writes edge (j, k) as "j->k": take it back as well
    named = {f"{e[0]}->{e[1]}": e for e in graph.edge_list}
    keyed = {}
    for key, value in latency.items():
        e = named.get(key.replace(" ", ""), key) if isinstance(key, str) else key
        if e not in graph.edges:
            raise InvalidArgumentError(
                f"`latency` has key {key!r}, which is not an edge of the graph; its edges: {list(graph.edge_list)} "
                "(as (j, k) tuples or 'j->k' strings)"
            )
        if e in keyed:
            raise InvalidArgumentError(f"`latency` gives edge {e} twice (as {e} and as {_fmt_edge(e)!r})")
        keyed[e] = value
    latency = keyed
    table = {}
    for e in graph.edge_list:
        if e not in latency:
            raise InvalidArgumentError(f"`latency` has no entry for edge {e} (primitives {list(graph.edges[e])})")
        K = graph.num_primitives(e)
        try:
            t = torch.as_tensor(latency[e], dtype=torch.float64).reshape(-1)
        except (TypeError, ValueError, RuntimeError):
            raise InvalidArgumentError(
                f"`latency[{e}]` must be {K} finite numbers >= 0 (one per primitive {list(graph.edges[e])}); "
                f"got {latency[e]!r}"
            ) from None
        if t.shape != (K,) or not torch.isfinite(t).all() or (t < 0).any():
            raise InvalidArgumentError(
                f"`latency[{e}]` must be {K} finite numbers >= 0 (one per primitive {list(graph.edges[e])}); got {t.tolist()}"
            )
        table[e] = t
    cheapest = sum(float(t.min()) for t in table.values())
    if floor and cheapest <= 1.0:
        raise InvalidArgumentError(
            f"`latency`: the cheapest structure's latency is {cheapest:g}, but log(LAT) must stay > 0 for "
            "log(LAT)^lambda2; give the table in a smaller unit (e.g. microseconds instead of milliseconds)"
        )
    return table


@register_search("fbnet")
class FBNet(_Differentiable):
    r"""Latency-aware search with Gumbel-softmax structure samples (Wu et al. 2019).

    Parameters
    ----------
    latency : "measure" or dict of (j, k) to sequence of float
        :math:`\mathrm{LAT}^{j,k}_i` for every edge and primitive (edges with one primitive
        included), in a unit where the cheapest structure's latency exceeds 1; keys are
        ``(j, k)`` tuples or ``"j->k"`` strings (the JSON form of :meth:`SearchResult.to_dict`).
        ``"measure"`` (default): :func:`latency_table` on this machine, microseconds, timed
        afresh on every run (see *Reproducibility* below).
    latency_weight, latency_exponent : float
        :math:`\lambda_1` and :math:`\lambda_2` of the loss (the paper: 0.2 and 0.6).
        ``latency_exponent=0`` is a latency-blind search. :math:`\lambda_1` only scales the
        loss, to which Adam's steps are nearly invariant: :math:`\lambda_2` sets the trade-off.
    temperature, temperature_decay : float
        Initial :math:`\tau` and its factor per epoch (the paper: 5.0 and :math:`e^{-0.045}`).
    warmup_epochs : int
        Epochs that train only :math:`w` (:math:`\theta` frozen at uniform) before the search.
    num_epochs, batch_size, lr, momentum, weight_decay
        As :class:`~bayesstruct.search.DARTS` (SGD on :math:`w`, cosine-annealed).
    arch_lr, arch_weight_decay : float
        Adam on :math:`\theta` (the paper: 0.01, 5e-4).
    repel, refit_steps, refit_lr
        As :class:`~bayesstruct.search.DARTS`.

    Each step draws one mask per edge for the architecture step, which minimises
    :math:`\mathcal L` on a validation minibatch, and one for the weight step, which minimises
    the cross-entropy on a training minibatch: the latency factor is a constant in :math:`w`, so
    this is the same minimiser as :math:`\mathcal L`'s, and ``lr`` means what it means in DARTS.
    ``gamma`` is :math:`\mathrm{softmax}(\theta)`, the structure is its argmax.
    ``history``: per epoch ``epoch``, ``searching``, ``temperature`` (the τ it sampled at), ``train_loss``, ``val_loss`` and
    ``val_accuracy`` of the supernet at :math:`\gamma` = softmax(θ), ``expected_latency``
    (:math:`\sum \gamma_i \mathrm{LAT}_i`) and ``gamma``. ``diagnostics["latency"]`` is the
    chosen structure's latency from the table, ``diagnostics["latency_table"]`` the table the
    search used (``{(j, k): float64 tensor (K,)}``, microseconds when measured) and
    ``diagnostics["temperature"]`` the τ of the last epoch (the one it last sampled at).

    **Reproducibility.** A fixed ``seed`` fixes the data split, the initial weights, the
    minibatches and the Gumbel noise, but the default ``latency="measure"`` times the
    primitives anew on every run (FBNet is latency-aware *on the machine it runs on*), and
    wall-clock timings differ between runs by a fraction of a percent. That moves the loss
    factor :math:`\log(\mathrm{LAT})^{\lambda_2}`, hence every architecture step: two seeded
    runs agree only approximately (on the XOR graph of the tests, two runs with ``seed=0`` ended
    at an ``expected_latency`` of 18.58 and 18.04 µs, with :math:`\gamma` 3e-4 apart). A seeded run is reproducible bit for bit only
    with a fixed table: measure it once (``table = latency_table(graph)``), save it, and pass
    ``latency=table``; or pass back ``result.diagnostics["latency_table"]`` of an earlier run
    (also as the ``{"j->k": [...]}`` lists of ``result.to_dict()``) to rerun it exactly.
    """

    def __init__(self, latency: Any = "measure", *, latency_weight: float = 0.2, latency_exponent: float = 0.6,
                 temperature: float = 5.0, temperature_decay: float = math.exp(-0.045), warmup_epochs: int = 0,
                 num_epochs: int = 50, batch_size: int | None = 64, lr: float = 0.025, momentum: float = 0.9,
                 weight_decay: float = 3e-4, arch_lr: float = 0.01, arch_weight_decay: float = 5e-4,
                 repel: Any = None, refit_steps: int = 200, refit_lr: float = 0.02) -> None:
        if not (isinstance(latency, str) and latency == "measure") and not isinstance(latency, Mapping):
            raise InvalidArgumentError(
                f"`latency` must be 'measure' or a dict {{(j, k): [latency of each primitive]}}; got {latency!r}"
            )
        self.latency = latency
        self.latency_weight = check_positive(latency_weight, "latency_weight")
        self.latency_exponent = check_nonnegative(latency_exponent, "latency_exponent")
        self.temperature = check_positive(temperature, "temperature")
        self.temperature_decay = check_positive(temperature_decay, "temperature_decay")
        self.description = "FBNet"
        super().__init__(num_epochs=num_epochs, warmup_epochs=warmup_epochs, batch_size=batch_size, lr=lr,
                         momentum=momentum, weight_decay=weight_decay, arch_lr=arch_lr,
                         arch_weight_decay=arch_weight_decay, repel=repel, refit_steps=refit_steps, refit_lr=refit_lr)

    def _check_schedule(self, dtype: torch.dtype) -> None:
        """The temperatures the search samples at, ``temperature * temperature_decay**k`` for ``k < num_epochs``,
        must stay representable in ``dtype`` (an underflow to 0 gives NaN masks, an overflow inf)."""
        info = torch.finfo(dtype)
        low, high = info.tiny ** 0.5, info.max ** 0.5
        if not low <= self.temperature <= high:
            raise InvalidArgumentError(f"`temperature` must be in [{low:.3g}, {high:.3g}] for {dtype}; got {self.temperature!r}")
        try:
            last = self.temperature * self.temperature_decay ** (self.num_epochs - 1)
        except OverflowError:
            last = math.inf
        if not low <= last <= high:
            raise InvalidArgumentError(
                f"`temperature_decay`={self.temperature_decay!r} over num_epochs={self.num_epochs} takes the temperature "
                f"from {self.temperature:g} to {last:g}, outside [{low:.3g}, {high:.3g}] where {dtype} keeps the "
                "Gumbel-softmax samples finite; use a decay closer to 1 or fewer epochs"
            )

    def _start(self, graph, data):
        self._check_schedule(data.x_train.dtype)
        table = _check_latency(latency_table(graph) if isinstance(self.latency, str) else self.latency, graph,
                               floor=self.latency_exponent > 0)  # log(LAT)^0 = 1 needs no LAT > 1
        return {"table": {e: t.to(data.x_train.dtype) for e, t in table.items()},
                "used_table": {e: t.clone() for e, t in table.items()},  # float64, as measured or given
                "temperature": self.temperature}

    @staticmethod
    def _latency(gamma: dict, table: dict) -> torch.Tensor:
        r""":math:`\mathrm{LAT}(\Gamma)`; an edge without a choice adds its one primitive's latency."""
        return sum((gamma[e] * t).sum() if e in gamma else t[0] for e, t in table.items())

    @staticmethod
    def _mask(probs, state):
        return {e: GumbelSoftmax(p, state["temperature"]).rsample() for e, p in probs.items()}

    def _weight_loss(self, net, probs, train, data, state):
        return data.loss(net(train[0], self._mask(probs, state)), train[1])

    def _arch_loss(self, net, probs, train, val, data, state, w_lr):
        mask = self._mask(probs, state)
        ce = data.loss(net(val[0], mask), val[1])
        return ce * self.latency_weight * torch.log(self._latency(mask, state["table"])) ** self.latency_exponent

    def _end_epoch(self, state, searching):
        if searching:
            state["last_temperature"] = state["temperature"]  # the one this epoch sampled at
            state["temperature"] *= self.temperature_decay

    def _record(self, probs, state):
        return {"temperature": state["temperature"], "expected_latency": float(self._latency(probs, state["table"]))}

    def _diagnostics(self, graph, gamma, state):
        choice = {e: graph.edges[e][int(g.argmax())] for e, g in gamma.items()}
        return {"latency": structure_latency(graph, state["used_table"], choice), "latency_table": state["used_table"],
                "temperature": state.get("last_temperature", state["temperature"])}
