r"""Neural architecture search with a reinforcement-learning controller (Zoph & Le, ICLR 2017).

A recurrent controller emits the structure one decision at a time -- the primitive of each
searched edge, in the graph's topological edge order -- each decision conditioned on the
previous ones. Every sampled structure is trained in full (the lecture: "in the loop over
structures the model parameters are optimised completely"), its validation accuracy
:math:`R` is the reward, and the controller's parameters :math:`\theta_c` follow the
REINFORCE estimate with a baseline (Williams 1992; Zoph & Le, eq. 2),

.. math::

    \nabla_{\theta_c} J \approx \frac{1}{m} \sum_{k=1}^m \sum_{t=1}^T
    \nabla_{\theta_c} \log P(a_t \mid a_{1:t-1}; \theta_c)\, (R_k - b),

:math:`b` an exponential moving average of earlier rewards. Zoph & Le's controller, a
two-layer LSTM of 35 units trained by Adam at 6e-4 over 12,800 child networks, found a
CIFAR-10 network with 3.65 % test error.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, Callable, Mapping

import torch
from torch import nn

from bayesstruct._validation import check_nonnegative, check_positive, check_positive_int
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.nn.graph import StructureGraph
from bayesstruct.search.base import (Search, SearchData, SearchResult, check_diverged, register_search, searchable_edges,
                                     seeded, structure_name, train_discrete)

__all__ = ["Controller", "RandomSearch", "Reinforce", "REWARDS", "entropy_surrogate", "policy_loss", "structure_name"]

#: the built-in rewards of a structure (see :class:`Reinforce`)
REWARDS = ("accuracy", "log-likelihood", "evidence")


class Controller(nn.Module):
    r"""An autoregressive policy over the structures of a graph: an LSTM cell, one step per searched edge.

    Step :math:`t` feeds the embedding of the previous decision (a learned start token at
    :math:`t = 1`) to the cell and reads the logits of edge :math:`t`'s :math:`K_t`
    primitives from its own linear head.

    Parameters
    ----------
    graph : StructureGraph
    hidden : int
        Units of the LSTM cell.
    """

    def __init__(self, graph: StructureGraph, hidden: int = 35) -> None:
        super().__init__()
        self.edges = searchable_edges(graph)
        if not self.edges:
            raise InvalidArgumentError("`graph` has nothing to search: every edge carries one primitive")
        self.sizes = [graph.num_primitives(e) for e in self.edges]
        hidden = check_positive_int(hidden, "hidden")
        self.cell = nn.LSTMCell(hidden, hidden)
        self.embed = nn.Embedding(1 + sum(self.sizes), hidden)  # start token, then every edge's choices
        self.heads = nn.ModuleList([nn.Linear(hidden, k) for k in self.sizes])
        self.offsets = [1 + sum(self.sizes[:t]) for t in range(len(self.sizes))]

    def forward(self, num_samples: int = 1, actions: torch.Tensor | None = None,
                greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample (or score given ``actions``) structures.

        Returns ``(actions (n, T) long, log_prob (n,), entropy (n,))``: the index of the chosen
        primitive per searched edge, :math:`\\sum_t \\log P(a_t \\mid a_{<t})` and the sum of
        the per-step entropies. ``greedy=True`` takes the most likely primitive at every step.
        """
        if actions is None:
            n = check_positive_int(num_samples, "num_samples")
        else:
            actions = self._check_actions(actions, 2)
            n = actions.shape[0]
        dtype = self.heads[0].weight.dtype
        inp = self.embed(torch.zeros(n, dtype=torch.long))
        h = c = torch.zeros(n, self.cell.hidden_size, dtype=dtype)
        chosen, logp, ent = [], torch.zeros(n, dtype=dtype), torch.zeros(n, dtype=dtype)
        for t, head in enumerate(self.heads):
            h, c = self.cell(inp, (h, c))
            d = torch.distributions.Categorical(logits=head(h))
            if actions is not None:
                a = actions[:, t]
            elif greedy:
                a = d.probs.argmax(-1)
            else:
                a = d.sample()
            chosen.append(a)
            logp = logp + d.log_prob(a)
            ent = ent + d.entropy()
            inp = self.embed(a + self.offsets[t])
        return torch.stack(chosen, -1), logp, ent

    def _check_actions(self, actions: Any, ndim: int) -> torch.Tensor:
        """``actions`` as a long tensor ``(n, T)`` (``ndim=2``) or ``(T,)`` of primitive indices in range."""
        T = len(self.sizes)
        want = f"(n, {T})" if ndim == 2 else f"({T},)"
        try:
            a = torch.as_tensor(actions)
        except (TypeError, ValueError, RuntimeError):
            raise InvalidArgumentError(f"`actions` must be an integer tensor {want}; got {type(actions).__name__}") from None
        if a.dim() != ndim or a.shape[-1] != T or (ndim == 2 and a.shape[0] == 0):
            raise InvalidArgumentError(f"`actions` must have shape {want}, one index per searched edge; got {tuple(a.shape)}")
        if a.is_floating_point() or a.is_complex() or a.dtype == torch.bool:
            raise InvalidArgumentError(f"`actions` must hold integer primitive indices; got dtype {a.dtype}")
        sizes = torch.tensor(self.sizes)
        if (a < 0).any() or (a >= sizes).any():
            raise InvalidArgumentError(f"`actions` must index the primitives of each edge, in [0, K) with K = {self.sizes}; "
                                       f"got {a.tolist()}")
        return a.long()

    def choice(self, actions: torch.Tensor, graph: StructureGraph) -> dict:
        """``{edge: primitive name}`` of one row of actions ``(T,)``."""
        actions = self._check_actions(actions, 1)
        return {e: graph.edges[e][int(a)] for e, a in zip(self.edges, actions)}


class _Sampling(Search):
    """Searches that train every structure they sample (the controller, random search): the reward and its cache."""

    def __init__(self, *, child_steps: int, child_lr: float, weight_decay: float,
                 reward: str | Callable[[Mapping[tuple, str]], float], evidence: Mapping[str, Any] | None) -> None:
        self.child_steps = check_positive_int(child_steps, "child_steps", minimum=0)
        self.child_lr = check_positive(child_lr, "child_lr")
        self.weight_decay = check_nonnegative(weight_decay, "weight_decay")
        if not callable(reward) and reward not in REWARDS:
            raise InvalidArgumentError(
                f"`reward` must be one of {', '.join(map(repr, REWARDS))} or a callable reward(choice) -> float; "
                f"got {reward!r}"
            )
        self.reward = reward
        if evidence is not None and not isinstance(evidence, Mapping):
            raise InvalidArgumentError(f"`evidence` must be a dict of options; got {type(evidence).__name__}")
        self.evidence = dict(evidence or {})
        unknown = set(self.evidence) - {"method", "weight_precision"}
        if unknown:
            raise InvalidArgumentError(f"`evidence` takes the keys 'method' and 'weight_precision'; got {sorted(unknown)}")
        if self.evidence and reward != "evidence":
            raise InvalidArgumentError(f"`evidence` only applies to reward='evidence'; got reward={reward!r}")
        if "method" in self.evidence:
            from bayesstruct.evidence import EvidenceEstimator
            from bayesstruct.evidence.base import _REGISTRY as _ESTIMATORS

            if not isinstance(self.evidence["method"], EvidenceEstimator):
                if not isinstance(self.evidence["method"], str):
                    raise InvalidArgumentError(
                        f"`evidence['method']` must name an evidence estimator; got {self.evidence['method']!r}"
                    )
                _ESTIMATORS.lookup(self.evidence["method"])  # UnknownNameError listing the estimators
        if "weight_precision" in self.evidence:
            from bayesstruct.families.network import weight_precision_mode

            try:
                weight_precision_mode(self.evidence["weight_precision"])
            except InvalidArgumentError as exc:
                raise InvalidArgumentError(str(exc).replace("`weight_precision`", "`evidence['weight_precision']`", 1)) from None

    def _reward_kind(self, data: SearchData) -> str:
        if callable(self.reward):
            return "custom"
        if self.reward == "evidence":
            return "evidence"
        return "accuracy" if self.reward == "accuracy" and data.task == "classification" else "log-likelihood"

    def _log_evidence(self, graph: StructureGraph, data: SearchData, choice: dict) -> float:
        from bayesstruct.evidence import log_evidence
        from bayesstruct.families.network import NetworkFamily, _edge_key

        family = NetworkFamily(graph, task=data.task, noise_scale=data.noise_scale,
                               weight_precision=self.evidence.get("weight_precision", 1.0))
        structure = {_edge_key(e): choice.get(e, graph.edges[e][0]) for e in graph.edges}
        return log_evidence(family.bind(structure), data.x_train, data.y_train,
                            method=self.evidence.get("method", "laplace")).log_evidence

    def _train(self, graph: StructureGraph, data: SearchData, choice: dict, seed: int):
        return train_discrete(graph, choice, data, num_steps=self.child_steps, lr=self.child_lr,
                              weight_decay=self.weight_decay, seed=seed)

    def _evaluate(self, graph: StructureGraph, data: SearchData, choice: dict, seed: int):
        """``(reward, trained network or None)`` of one structure."""
        if callable(self.reward):
            r = self.reward(dict(choice))
            try:
                if isinstance(r, (str, bytes)):
                    raise TypeError
                r = float(r)
            except (TypeError, ValueError):
                raise InvalidArgumentError(f"`reward` must return a number; got {type(r).__name__}") from None
            if r != r or abs(r) == float("inf"):
                raise InvalidArgumentError(f"`reward` returned {r} for {choice}; it must be finite")
            return r, None
        if self.reward == "evidence":
            r = self._log_evidence(graph, data, choice)
            if not math.isfinite(r):
                raise InvalidArgumentError(
                    f"`reward`='evidence' gave a log evidence of {r} for {choice}; try another `evidence['method']`"
                )
            return r, None
        net = self._train(graph, data, choice, seed)
        loss, acc = data.score(net)
        check_diverged(loss, f"the validation loss of the child {choice}", "child_lr", self.child_lr)
        return (acc if self._reward_kind(data) == "accuracy" else -loss), net

    def _result(self, graph, data, seen: dict, best_key: tuple, choice_of, gamma, history, start, seed,
                diagnostics) -> SearchResult:
        net = seen[best_key][1]
        if net is None:  # a custom or evidence reward: train the best structure once for the result
            net = self._train(graph, data, choice_of(best_key), seed)
        loss, acc = data.score(net)
        check_diverged(loss, "the validation loss of the best structure's network", "child_lr", self.child_lr)
        diagnostics = {"reward": self._reward_kind(data), "best_reward": seen[best_key][0],
                       "num_evaluated": len(seen),
                       "rewards": {structure_name(choice_of(k)): v[0] for k, v in seen.items()}, **diagnostics}
        return SearchResult(self.name, graph, gamma, net, loss, acc, tuple(history), time.perf_counter() - start,
                            diagnostics)


@register_search("random")
class RandomSearch(_Sampling):
    r"""Random search: train ``num_samples`` distinct structures drawn uniformly, keep the best.

    A graph with fewer structures than ``num_samples`` has each trained once (with a warning).

    The baseline every NAS method should beat at equal cost (Li & Talwalkar, UAI 2019, found
    it competitive with DARTS and ENAS on PTB and CIFAR-10). Options as :class:`Reinforce`'s
    ``child_steps``, ``child_lr``, ``weight_decay``, ``reward`` and ``evidence``; ``gamma`` is the share of
    each primitive among the structures trained, ``history`` one dict per structure
    (``sample``, ``reward``, ``best_reward``), ``diagnostics`` as :class:`Reinforce`'s (without
    ``controller_choice``) plus ``num_structures``, the size of the search space.
    """

    def __init__(self, *, num_samples: int = 16, child_steps: int = 200, child_lr: float = 0.02,
                 weight_decay: float = 3e-4, reward: str | Callable[[Mapping[tuple, str]], float] = "accuracy",
                 evidence: Mapping[str, Any] | None = None) -> None:
        self.num_samples = check_positive_int(num_samples, "num_samples")
        super().__init__(child_steps=child_steps, child_lr=child_lr, weight_decay=weight_decay, reward=reward,
                         evidence=evidence)

    def _run(self, graph: StructureGraph, data: SearchData, *, seed: int, progress: bool) -> SearchResult:
        import itertools

        from tqdm.auto import tqdm

        start = time.perf_counter()
        edges = searchable_edges(graph)
        sizes = [graph.num_primitives(e) for e in edges]
        total = math.prod(sizes)
        gen = torch.Generator().manual_seed(seed)
        if self.num_samples > total:
            warnings.warn(f"random search: `num_samples` = {self.num_samples} exceeds the {total} structures of the "
                          f"graph; all {total} are trained once", UserWarning, stacklevel=3)
        if total <= max(4 * self.num_samples, 10_000):  # small space: a random order of all of it
            space = list(itertools.product(*(range(k) for k in sizes)))
            keys = [space[int(i)] for i in torch.randperm(total, generator=gen)[: self.num_samples]]
        else:  # draw until num_samples distinct ones (fewer than a quarter of the space: few repeats)
            keys, drawn = [], set()
            while len(keys) < self.num_samples:
                key = tuple(int(torch.randint(k, (), generator=gen)) for k in sizes)
                if key not in drawn:
                    drawn.add(key)
                    keys.append(key)

        def choice_of(key):
            return {e: graph.edges[e][i] for e, i in zip(edges, key)}

        seen, history, best = {}, [], None
        for n, key in enumerate(tqdm(keys, desc="random search", disable=not progress, unit="structure")):
            seen[key] = self._evaluate(graph, data, choice_of(key), seed)
            if best is None or seen[key][0] > seen[best][0]:
                best = key
            history.append({"sample": n + 1, "reward": seen[key][0], "best_reward": seen[best][0]})
        gamma = {e: torch.bincount(torch.tensor([k[t] for k in keys]), minlength=graph.num_primitives(e)).double()
                 / len(keys) for t, e in enumerate(edges)}
        return self._result(graph, data, seen, best, choice_of, gamma, history, start, seed,
                            {"num_structures": total})


def policy_loss(rewards: torch.Tensor, log_prob: torch.Tensor, baseline: float | None) -> torch.Tensor:
    r"""The REINFORCE surrogate whose gradient estimates :math:`-\nabla_\theta J`
    (Williams 1992; Zoph & Le 2017, eq. 2):

    .. math::

        -\frac{1}{m} \sum_{k=1}^m (R_k - b_k)\, \log P(a_k; \theta).

    ``baseline`` is the moving average of earlier updates' rewards (:math:`b_k = b`); for the
    first update (``None``) :math:`b_k` is the mean of the other :math:`m - 1` rewards of the
    batch (0 when :math:`m = 1`), so that, like the moving average, it does not depend on
    draw k and the estimate stays unbiased. (The batch mean including :math:`R_k` would
    scale the expected gradient by :math:`(m - 1)/m`, and make it 0 for :math:`m = 1`.)
    """
    if not (torch.is_tensor(rewards) and torch.is_tensor(log_prob) and rewards.ndim == 1 and len(rewards) > 0
            and log_prob.shape == rewards.shape):
        raise InvalidArgumentError("`rewards` and `log_prob` must be tensors of the same shape (m,), m >= 1; got "
                                   f"{getattr(rewards, 'shape', type(rewards).__name__)} and "
                                   f"{getattr(log_prob, 'shape', type(log_prob).__name__)}")
    if baseline is not None:
        b = baseline
    elif len(rewards) > 1:
        b = (rewards.sum() - rewards) / (len(rewards) - 1)
    else:
        b = torch.zeros_like(rewards)
    return -((rewards - b) * log_prob).mean()


def entropy_surrogate(entropy: torch.Tensor, log_prob: torch.Tensor) -> torch.Tensor:
    r"""A surrogate whose gradient is an unbiased estimate of :math:`\nabla_\theta H(P_\theta)`.

    :math:`H` is the entropy of the controller's distribution over whole structures. For draws
    :math:`a_k \sim P` with :math:`h_k` the sum of the per-step entropies at the sampled prefix
    (``entropy``; :math:`\mathbb E[h] = H` by the chain rule of entropy),

    .. math::

        \nabla H = \mathbb E\big[\nabla h + h\, \nabla \log P(a)\big],

        \quad\text{so the surrogate is}\quad \frac{1}{m} \sum_k \big(h_k + \mathrm{sg}(h_k) \log P(a_k)\big)

    (sg: stop-gradient). The pathwise term alone (ENAS's regulariser) misses how the prefix
    distribution moves; on a 6-structure controller it was 21 % off :math:`\nabla H`.
    """
    if not (torch.is_tensor(entropy) and torch.is_tensor(log_prob) and entropy.ndim == 1 and len(entropy) > 0
            and log_prob.shape == entropy.shape):
        raise InvalidArgumentError("`entropy` and `log_prob` must be tensors of the same shape (m,), m >= 1; got "
                                   f"{getattr(entropy, 'shape', type(entropy).__name__)} and "
                                   f"{getattr(log_prob, 'shape', type(log_prob).__name__)}")
    return (entropy + entropy.detach() * log_prob).mean()


@register_search("reinforce")
class Reinforce(_Sampling):
    r"""NAS with an RL controller (Zoph & Le 2017): sample structures, train each, REINFORCE on the reward.

    Parameters
    ----------
    num_updates : int
        Controller updates.
    batch_size : int
        :math:`m`, structures sampled per update.
    lr : float
        Adam on the controller (Zoph & Le: 6e-4 over 12,800 children; the default suits the
        few hundred children of a CPU-size graph).
    hidden : int
        LSTM units (Zoph & Le: 35).
    baseline_decay : float
        :math:`b \leftarrow \beta b + (1 - \beta) \bar R` after every update, from earlier
        updates' rewards only. The first update has no earlier rewards: its baseline for draw
        k is the mean of the batch's other rewards (leave-one-out, so the gradient stays
        unbiased; 0 when :math:`m = 1`), and :math:`b` starts at that batch's mean.
    entropy_weight : float
        Adds :math:`\epsilon\, H` to the objective (exploration), :math:`H` the entropy of the
        controller's distribution over structures (its gradient by :func:`entropy_surrogate`).
    child_steps, child_lr, weight_decay
        Each child network is trained from a fresh, seeded initialisation by ``child_steps``
        full-batch Adam steps with L2 ``weight_decay`` per example
        (:func:`~bayesstruct.families.network.refit_discrete`).
    reward : "accuracy", "log-likelihood", "evidence" or callable
        The reward of a trained child: its validation accuracy (classification; Zoph & Le), or
        its mean validation log-likelihood (minus the NLL of :meth:`SearchData.loss`, for
        regression without the constant :math:`\tfrac12\log 2\pi\sigma^2`; the default for regression) -- a
        proper scoring rule, which separates structures whose accuracies tie. ``"evidence"``
        replaces the training of a child by the structure's log evidence
        :math:`\log p(y \mid x, \Gamma)` on the **training** split
        (:class:`~bayesstruct.families.NetworkFamily` with a :math:`\mathcal N(0, \alpha^{-1} I)`
        weight prior, :func:`~bayesstruct.log_evidence`): the Bayesian criterion, which needs no
        held-out data. Laplace's method assumes an isolated mode: a ``linear`` primitive followed
        by a linear map has a continuous symmetry (W1 -> Q W1, W2 -> W2 Q^T, Q orthogonal), its
        Hessian is nearly singular, and its Laplace evidence is unreliable (on 150 XOR points we
        measured -52 nats for a linear hidden layer at chance, against -77 for tanh at 97 %
        accuracy; :meth:`NetworkFamily.bind <bayesstruct.families.NetworkFamily.bind>` warns with an
        :class:`~bayesstruct.exceptions.ApproximationWarning`). A callable
        ``reward(choice) -> float`` for a structure ``{edge: primitive name}`` replaces it with
        anything else.
    evidence : dict, optional
        For ``reward="evidence"``: ``method`` (an evidence estimator, default ``"laplace"``) and
        ``weight_precision`` (:math:`\alpha`, a number, ``"learn"`` or a Gamma prior; default 1).

    Every child starts from the same seeded initialisation, so a structure's reward is a
    function of the structure alone: one sampled again reuses it instead of being retrained.
    ``history`` has one dict per update: ``update``, ``mean_reward``, ``best_reward`` (so far),
    ``baseline`` and ``num_evaluated`` (structures trained or scored so far). ``gamma`` holds the
    controller's marginal probability of every primitive (the frequency in 2,000 draws after the
    last update); the returned structure is the best one sampled.

    ``diagnostics``: ``reward`` (its kind: ``"accuracy"``, ``"log-likelihood"``, ``"evidence"`` or
    ``"custom"``), ``best_reward``, ``num_evaluated``, ``rewards`` -- the reward of every
    structure evaluated, keyed by :func:`structure_name` (``"0->1: linear_tanh, 1->2: linear"``)
    -- and ``controller_choice``, the controller's greedy structure ``{(j, k): name}`` (the form of
    ``result.choice()``, whatever the reward; ``result.to_dict()`` writes both with ``"j->k"`` edges).
    """

    def __init__(self, *, num_updates: int = 50, batch_size: int = 8, lr: float = 0.05, hidden: int = 35,
                 baseline_decay: float = 0.95, entropy_weight: float = 1e-3, child_steps: int = 200,
                 child_lr: float = 0.02, weight_decay: float = 3e-4,
                 reward: str | Callable[[Mapping[tuple, str]], float] = "accuracy",
                 evidence: Mapping[str, Any] | None = None) -> None:
        self.num_updates = check_positive_int(num_updates, "num_updates")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.lr = check_positive(lr, "lr")
        self.hidden = check_positive_int(hidden, "hidden")
        decay = check_nonnegative(baseline_decay, "baseline_decay")
        if decay >= 1:
            raise InvalidArgumentError(f"`baseline_decay` must be in [0, 1); got {baseline_decay!r}")
        self.baseline_decay = decay
        self.entropy_weight = check_nonnegative(entropy_weight, "entropy_weight")
        super().__init__(child_steps=child_steps, child_lr=child_lr, weight_decay=weight_decay, reward=reward,
                         evidence=evidence)

    def _run(self, graph: StructureGraph, data: SearchData, *, seed: int, progress: bool) -> SearchResult:
        from tqdm.auto import tqdm

        start = time.perf_counter()
        with seeded(seed):
            controller = Controller(graph, self.hidden).to(data.x_train.dtype)
        opt = torch.optim.Adam(controller.parameters(), lr=self.lr)
        seen: dict[tuple, tuple[float, Any]] = {}
        history, baseline, best = [], None, None
        bar = tqdm(range(self.num_updates), desc="NAS controller", disable=not progress, unit="update")
        with seeded(seed, stream=1):  # the controller's draws, not the stream its initialisation used
            for update in bar:
                actions, logp, ent = controller(self.batch_size)
                rewards = []
                for row in actions:
                    key = tuple(int(a) for a in row)
                    if key not in seen:
                        seen[key] = self._evaluate(graph, data, controller.choice(row, graph), seed)
                    r = seen[key][0]
                    rewards.append(r)
                    if best is None or r > best[0]:
                        best = (r, key)
                rewards_t = torch.tensor(rewards, dtype=logp.dtype)
                loss = policy_loss(rewards_t, logp, baseline) - self.entropy_weight * entropy_surrogate(ent, logp)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                mean = float(rewards_t.mean())
                baseline = mean if baseline is None else self.baseline_decay * baseline + (1 - self.baseline_decay) * mean
                history.append({"update": update + 1, "mean_reward": mean, "best_reward": best[0],
                                "baseline": baseline, "num_evaluated": len(seen)})
                bar.set_postfix(reward=f"{mean:.4f}", best=f"{best[0]:.4f}")
            with torch.no_grad():
                draws, _, _ = controller(2000)
        gamma = {e: torch.bincount(draws[:, t], minlength=k).to(torch.float64) / len(draws)
                 for t, (e, k) in enumerate(zip(controller.edges, controller.sizes))}
        with torch.no_grad():
            greedy, _, _ = controller(1, greedy=True)
        return self._result(graph, data, seen, best[1], lambda key: controller.choice(torch.tensor(key), graph), gamma,
                            history, start, seed, {"controller_choice": controller.choice(greedy[0], graph)})
