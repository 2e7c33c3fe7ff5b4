r"""DARTS: differentiable architecture search (Liu, Simonyan & Yang, ICLR 2019).

Every edge :math:`(j, k)` of the graph mixes its primitives with the softmax of
architecture parameters :math:`\alpha^{j,k}` (the lecture's
:math:`f_v = \langle \gamma, [g^e(x)] \rangle` with :math:`\gamma = \mathrm{softmax}(\alpha)`),
and the bilevel problem

.. math::

    \min_\alpha L_{val}(w^*(\alpha), \alpha) \quad\text{s.t.}\quad
    w^*(\alpha) = \arg\min_w L_{train}(w, \alpha)

is solved by alternating one gradient step on :math:`\alpha` and one on :math:`w`
(Algorithm 1). The architecture gradient uses the one-step unrolled weights
:math:`w' = w - \xi (\nabla_w L_{train}(w, \alpha) + \lambda_{wd} w)` (eq. 6 with the
weight decay :math:`\lambda_{wd}` of the weights' SGD step; without its momentum, as in the
paper's equation),

.. math::

    \nabla_\alpha L_{val}(w', \alpha)
    = \nabla_\alpha L_{val}(w', \alpha)\big|_{w'} - \xi\, \nabla^2_{\alpha, w} L_{train}(w, \alpha)\,
      \nabla_{w'} L_{val}(w', \alpha),

which is "second order" (``order=2``; computed here exactly by differentiating through the
step, where the paper uses a finite difference, eq. 8) and "first order" for
:math:`\xi = 0` (``order=1``: :math:`\nabla_\alpha L_{val}(w, \alpha)`). The lecture writes this
greedy step as :math:`\nabla_\Gamma Q(w', \Gamma) = \lambda_L \nabla_{\Gamma, w} L(w, \Gamma)
\nabla_w Q(\Gamma, w')`. The paper's numbers on CIFAR-10: 3.00 % test error for the first
order (0.4 GPU-days of search), 2.76 % for the second order (1 GPU-day).

The derived structure keeps the argmax primitive per edge (``zero`` included: here it means
"drop the edge", a legitimate structure, while the paper's cells exclude it).
"""

from __future__ import annotations

import math
import time
from typing import Any, Mapping, Sequence

import torch
from torch.func import functional_call

from bayesstruct._validation import check_nonnegative, check_positive, check_positive_int
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.nn.graph import StructureGraph, StructureNetwork
from bayesstruct.search.base import (Search, SearchData, SearchResult, check_diverged, register_search,
                                     searchable_edges, seeded, structure_kl, train_discrete)

__all__ = ["DARTS"]


def check_repel(repel: Any) -> tuple[tuple[float, dict], ...]:
    """``repel`` as ``((lambda_k, gamma_k), ...)``: weights >= 0 and ``{edge: (K,)}`` points of the simplex."""
    if repel is None:
        return ()
    try:
        pairs = list(repel)
    except TypeError:
        raise InvalidArgumentError(f"`repel` must be a list of (weight, gamma) pairs; got {type(repel).__name__}") from None
    out = []
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and isinstance(pair[1], Mapping)):
            raise InvalidArgumentError(f"`repel[{i}]` must be a pair (weight, {{edge: gamma (K,)}}); got {pair!r}")
        try:
            lam = float(pair[0])
        except (TypeError, ValueError):
            lam = math.nan
        if not math.isfinite(lam) or lam < 0:
            raise InvalidArgumentError(f"`repel[{i}]`'s weight must be a finite number >= 0; got {pair[0]!r}")
        gamma = {}
        for e, g in pair[1].items():
            try:
                gamma[e] = torch.as_tensor(g, dtype=torch.float64)
            except (TypeError, ValueError, RuntimeError):
                raise InvalidArgumentError(
                    f"`repel[{i}]`'s gamma of edge {e!r} must be an array of probabilities (K,); got {g!r}"
                ) from None
        out.append((lam, gamma))
    return tuple(out)


def check_repel_edges(repel: Sequence[tuple[float, dict]], graph: StructureGraph) -> None:
    for i, (_, gamma) in enumerate(repel):
        for e in searchable_edges(graph):
            g = gamma.get(e)
            K = graph.num_primitives(e)
            if g is None or g.shape != (K,) or not torch.isfinite(g).all() or (g < 0).any() \
                    or abs(float(g.sum()) - 1.0) > 1e-6:
                raise InvalidArgumentError(
                    f"`repel[{i}]` must give every searched edge a point of the simplex; edge {e} needs shape "
                    f"({K},) summing to 1, got {None if g is None else g.tolist()}"
                )


class _Differentiable(Search):
    """The loop shared by the gradient-based searches (DARTS, FBNet).

    Every step on a (training, validation) minibatch pair takes one Adam step on the
    architecture logits (after ``warmup_epochs``) and one SGD step on the weights; a subclass
    gives the two losses (:meth:`_arch_loss`, :meth:`_weight_loss`).
    """

    description = "search"  # the progress bar's label

    def __init__(self, *, num_epochs: int, warmup_epochs: int, batch_size: int | None, lr: float, momentum: float,
                 weight_decay: float, arch_lr: float, arch_weight_decay: float, repel: Any,
                 refit_steps: int, refit_lr: float) -> None:
        self.num_epochs = check_positive_int(num_epochs, "num_epochs")
        self.warmup_epochs = check_positive_int(warmup_epochs, "warmup_epochs", minimum=0)
        self.batch_size = None if batch_size is None else check_positive_int(batch_size, "batch_size")
        self.lr = check_positive(lr, "lr")
        self.momentum = check_nonnegative(momentum, "momentum")
        if self.momentum >= 1:
            raise InvalidArgumentError(f"`momentum` must be in [0, 1) (SGD diverges from 1 on); got {momentum!r}")
        self.weight_decay = check_nonnegative(weight_decay, "weight_decay")
        self.arch_lr = check_positive(arch_lr, "arch_lr")
        self.arch_weight_decay = check_nonnegative(arch_weight_decay, "arch_weight_decay")
        self.repel = check_repel(repel)
        self.refit_steps = check_positive_int(refit_steps, "refit_steps", minimum=0)
        self.refit_lr = check_positive(refit_lr, "refit_lr")

    # -- hooks -------------------------------------------------------------------------
    def _start(self, graph: StructureGraph, data: SearchData) -> dict:
        """Per-run state (FBNet: the latency table and the temperature)."""
        return {}

    def _arch_loss(self, net, probs, train, val, data, state, w_lr) -> torch.Tensor:
        raise NotImplementedError

    def _weight_loss(self, net, probs, train, data, state) -> torch.Tensor:
        raise NotImplementedError

    def _end_epoch(self, state: dict, searching: bool) -> None:
        pass

    def _record(self, probs: dict, state: dict) -> dict:
        return {}

    def _diagnostics(self, graph: StructureGraph, gamma: dict, state: dict) -> dict:
        return {}

    # -- the loop ----------------------------------------------------------------------
    def _repulsion(self, probs: dict) -> torch.Tensor | float:
        r""":math:`\sum_k \lambda_k \mathrm{KL}(\Gamma \| \Gamma_k)`, subtracted from the architecture loss."""
        return sum(lam * structure_kl(probs, gamma) for lam, gamma in self.repel) if self.repel else 0.0

    def _run(self, graph: StructureGraph, data: SearchData, *, seed: int, progress: bool) -> SearchResult:
        from tqdm.auto import tqdm

        start = time.perf_counter()
        check_repel_edges(self.repel, graph)
        state = self._start(graph, data)
        dtype = data.x_train.dtype
        with seeded(seed):
            net = StructureNetwork(graph).to(dtype)
        if next(net.parameters(), None) is None:
            raise InvalidArgumentError(
                f"`graph`: {self.description} trains the supernet's weights, but every primitive of this graph is "
                f"weightless ({sorted({n for names in graph.edges.values() for n in names})}); add trainable "
                "primitives (linear, conv) or use method='random' or 'reinforce'"
            )
        logits = {e: torch.zeros(graph.num_primitives(e), dtype=dtype, requires_grad=True) for e in searchable_edges(graph)}
        w_opt = torch.optim.SGD(net.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, T_max=self.num_epochs, eta_min=self.lr / 25)
        a_opt = torch.optim.Adam(list(logits.values()), lr=self.arch_lr, betas=(0.5, 0.999),
                                 weight_decay=self.arch_weight_decay)
        gen = torch.Generator().manual_seed(seed)
        history = []
        bar = tqdm(range(self.warmup_epochs + self.num_epochs), desc=self.description, disable=not progress,
                   unit="epoch")
        with seeded(seed, stream=1):  # random draws inside the losses (FBNet's Gumbel noise), not the init's
            for epoch in bar:
                searching = epoch >= self.warmup_epochs
                losses = []
                for train, val in data.batches(self.batch_size, gen):
                    if searching:
                        probs = {e: torch.softmax(a, -1) for e, a in logits.items()}
                        arch = self._arch_loss(net, probs, train, val, data, state, w_opt.param_groups[0]["lr"])
                        grads = torch.autograd.grad(arch - self._repulsion(probs), list(logits.values()))
                        for a, g in zip(logits.values(), grads):
                            a.grad = g
                        a_opt.step()
                    w_opt.zero_grad(set_to_none=True)
                    probs = {e: torch.softmax(a.detach(), -1) for e, a in logits.items()}
                    loss = self._weight_loss(net, probs, train, data, state)
                    loss.backward()
                    w_opt.step()
                    losses.append(float(loss.detach()))
                if searching:
                    schedule.step()
                probs = {e: torch.softmax(a.detach(), -1) for e, a in logits.items()}
                val_loss, val_acc = data.score(lambda x: net(x, probs))
                check_diverged(sum(losses) / len(losses) + val_loss, f"the supernet's loss at epoch {epoch + 1}",
                               "lr", self.lr)
                history.append({"epoch": epoch + 1, "searching": searching, "train_loss": sum(losses) / len(losses),
                                "val_loss": val_loss, "val_accuracy": val_acc, **self._record(probs, state),
                                "gamma": {e: p.clone() for e, p in probs.items()}})
                self._end_epoch(state, searching)
                bar.set_postfix(val_loss=f"{val_loss:.4f}")
        gamma = history[-1]["gamma"]
        choice = {e: graph.edges[e][int(torch.argmax(g))] for e, g in gamma.items()}
        final = train_discrete(graph, choice, data, num_steps=self.refit_steps, lr=self.refit_lr,
                               weight_decay=self.weight_decay, seed=seed, init=net)
        loss, acc = data.score(final)
        check_diverged(loss, "the refit network's validation loss", "refit_lr", self.refit_lr)
        return SearchResult(self.name, graph, gamma, final, loss, acc, tuple(history), time.perf_counter() - start,
                            self._diagnostics(graph, gamma, state))


@register_search("darts")
class DARTS(_Differentiable):
    r"""Differentiable architecture search (Liu, Simonyan & Yang 2019, Algorithm 1).

    Parameters
    ----------
    order : {1, 2}
        1: first-order gradient :math:`\nabla_\alpha L_{val}(w, \alpha)`; 2: through the
        one-step unrolled weights :math:`w - \xi (\nabla_w L_{train} + \lambda_{wd} w)`
        (exact autograd; ``weight_decay`` is :math:`\lambda_{wd}`).
    num_epochs : int
        Passes over the training split that update :math:`\alpha` (the paper: 50).
    warmup_epochs : int
        Passes before those that train only the weights, :math:`\alpha` held at 0 (uniform
        :math:`\gamma`): a common remedy for DARTS's drift towards parameter-free primitives
        while the supernet's weights are still untrained (Zela et al., ICLR 2020). The
        learning-rate schedule starts after them.
    batch_size : int or None
        Minibatch size of both splits (the paper: 64); ``None`` is full batch.
    lr, momentum, weight_decay : float
        SGD on the weights, the learning rate cosine-annealed to ``lr / 25`` over the epochs
        (the paper: 0.025, 0.9, 3e-4, annealed to 0.001).
    xi : float, optional
        :math:`\xi` of the unrolled step (second order); default the current weight learning
        rate, as in the paper.
    arch_lr, arch_weight_decay : float
        Adam on :math:`\alpha`, betas (0.5, 0.999) (the paper: 3e-4, 1e-3). :math:`\alpha` starts at 0
        (uniform :math:`\gamma`).
    repel : list of (float, dict), optional
        :math:`[(\lambda_1, \Gamma_1), \dots]`: maximise the KL from earlier structures,
        i.e. add :math:`-\sum_k \lambda_k \mathrm{KL}(\Gamma \| \Gamma_k)` to the architecture
        loss (the lecture's enumeration of structures; see
        :func:`~bayesstruct.search.enumerate_structures`).
    refit_steps, refit_lr : int, float
        Full-batch Adam steps that train the derived network from the supernet's weights
        (:func:`~bayesstruct.families.network.refit_discrete`); 0 keeps the shared weights.

    ``history`` has one dict per epoch: ``epoch``, ``searching`` (False during the warmup),
    ``train_loss`` (mean over the epoch's steps), ``val_loss`` and ``val_accuracy`` of the
    supernet at the current :math:`\gamma`, and ``gamma``.
    """

    def __init__(self, order: int = 1, *, num_epochs: int = 50, warmup_epochs: int = 0, batch_size: int | None = 64,
                 lr: float = 0.025, momentum: float = 0.9, weight_decay: float = 3e-4, xi: float | None = None,
                 arch_lr: float = 3e-4, arch_weight_decay: float = 1e-3, repel: Any = None, refit_steps: int = 200,
                 refit_lr: float = 0.02) -> None:
        if order not in (1, 2) or isinstance(order, bool):
            raise InvalidArgumentError(f"`order` must be 1 (first-order DARTS) or 2 (second order); got {order!r}")
        self.order = order
        self.xi = None if xi is None else check_nonnegative(xi, "xi")
        self.description = f"DARTS ({'first' if order == 1 else 'second'} order)"
        super().__init__(num_epochs=num_epochs, warmup_epochs=warmup_epochs, batch_size=batch_size, lr=lr,
                         momentum=momentum, weight_decay=weight_decay, arch_lr=arch_lr,
                         arch_weight_decay=arch_weight_decay, repel=repel, refit_steps=refit_steps, refit_lr=refit_lr)

    def _weight_loss(self, net, probs, train, data, state):
        return data.loss(net(train[0], probs), train[1])

    def _arch_loss(self, net, probs, train, val, data, state, w_lr):
        xi = w_lr if self.xi is None else self.xi
        if self.order == 1 or xi == 0.0:
            return data.loss(net(val[0], probs), val[1])
        names, params = zip(*net.named_parameters())
        grads = torch.autograd.grad(self._weight_loss(net, probs, train, data, state), params, create_graph=True)
        unrolled = {n: p - xi * (g + self.weight_decay * p) for n, p, g in zip(names, params, grads)}
        return data.loss(functional_call(net, unrolled, (val[0], probs)), val[1])

    def _diagnostics(self, graph, gamma, state):
        return {"order": self.order}
