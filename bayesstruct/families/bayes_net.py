"""Linear-Gaussian Bayesian networks: the structure is a directed acyclic graph.

The lecture's topic 4, "Bayesian networks -- structure = graph" (Mansinghka, Kemp,
Tenenbaum & Griffiths, *Structured priors for structure learning*, UAI 2006,
arXiv:1206.6852). On ``d`` observed variables ``x = (x_0, ..., x_{d-1})`` a structure is a
DAG ``G``, written as the parent set ``pa(j)`` of every node ``j``. Given ``G``, each
node is a Bayesian linear regression on its parents,

    w_j ~ N(0, α⁻¹ I),   x_{nj} | x_{n,pa(j)}, w_j ~ N(w_jᵀ [1, x_{n,pa(j)}], σ²),

with a known noise scale ``σ`` (``noise="known"``) or, per node, the conjugate unknown
noise ``τ_j ~ Gamma(a₀, b₀)``, ``w_j | τ_j ~ N(0, (λ τ_j)⁻¹ I)``, ``x_j ~ N(·, τ_j⁻¹)``
(``noise="normal-gamma"``). The log joint is quadratic in the weights, the parameters of
different nodes are a priori independent and every column is observed, so the evidence
*decomposes* into one closed-form term per node (PRML eq. 3.86; the Student-t marginal
for ``normal-gamma``):

    log p(D | G) = Σ_j log p(x_j | x_pa(j)).

Pyro sites (public names), for node ``j`` in topological order: ``"w_{j}"`` (weights,
shape ``(1 + |pa(j)|,)``: the intercept, then one weight per parent in increasing index
order), ``"tau_{j}"`` (noise precision, ``noise="normal-gamma"`` only) and ``"x_{j}"``
(column ``j`` of the data, observed, in plate ``"data"`` of size ``N``).

This prior on the weights is not *score equivalent* (Heckerman, Geiger & Chickering 1995,
*Learning Bayesian networks: the combination of knowledge and statistical data*): two
Markov-equivalent DAGs (same skeleton and v-structures; Verma & Pearl 1990) get unequal
evidence, so the posterior within an equivalence class reflects the model's assumptions
rather than the data's independences. With ``noise="normal-gamma"`` the gaps are small (about
a nat: at most 1.8 over the 185 classes of 4 variables in the README's example); with known
noise a root node is scored against its raw variance, so equivalent DAGs differ by tens of
nats (at most 171 there) and an edge's direction follows the assumed ``noise_scale``:
standardise the columns, or use ``"normal-gamma"``, where directions matter. A v-structure ``0 → 2 ← 1`` is alone in its
class, so the data can single it out.

Structures are enumerated for ``d ≤ 5`` (1, 3, 25, 543, 29281 DAGs; OEIS A003024); for
larger ``d`` :class:`StructureMCMC` samples DAGs (Madigan & York 1995).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import weakref
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pyro
import pyro.distributions as dist
import torch

from bayesstruct._validation import as_tensor, check_positive, check_positive_int, check_seed
from bayesstruct.evidence.exact import LinearGaussian, NormalGamma
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.families._tempering import check_temperatures, propose_exchange
from bayesstruct.families.base import StructureFamily

__all__ = [
    "DAG",
    "NoiseModel",
    "DecomposableEvidence",
    "enumerate_dags",
    "markov_equivalent",
    "bayes_net_model",
    "simulate_linear_gaussian",
    "BayesianNetworkFamily",
    "DAGPriorKind",
    "DAGPrior",
    "dag_prior",
    "edge_posterior",
    "StructureMCMC",
    "DAGSamples",
]

#: the largest number of variables whose DAGs :func:`enumerate_dags` lists (29281 at d = 5)
MAX_ENUMERATED_VARIABLES = 5
_NUM_DAGS = {1: 1, 2: 3, 3: 25, 4: 543, 5: 29281, 6: 3781503}  # OEIS A003024


# ----------------------------------------------------------------------------- DAGs
def _bits(mask: int) -> list[int]:
    out, i = [], 0
    while mask:
        if mask & 1:
            out.append(i)
        mask >>= 1
        i += 1
    return out


def _find_cycle(parents: Sequence[Sequence[int]]) -> list[int] | None:
    """A directed cycle ``[a, b, ..., a]`` of the graph, or None if it is acyclic."""
    d = len(parents)
    state = [0] * d  # 0 new, 1 on the stack, 2 done
    stack_path: list[int] = []

    def visit(v: int) -> list[int] | None:
        state[v] = 1
        stack_path.append(v)
        for p in parents[v]:  # walk edges backwards: v <- p
            if state[p] == 1:
                cyc = stack_path[stack_path.index(p):] + [p]
                return cyc[::-1]  # forward direction p -> ... -> v -> p
            if state[p] == 0:
                found = visit(p)
                if found:
                    return found
        stack_path.pop()
        state[v] = 2
        return None

    for v in range(d):
        if state[v] == 0:
            found = visit(v)
            if found:
                return found
    return None


_EDGE_RE = re.compile(r"^\s*(\d+)\s*->\s*(\d+)\s*$")
_EDGE_SET_TIP = ". To give edges, pass a set of (i, j) pairs with num_variables"


class DAG(tuple):
    """A directed acyclic graph on nodes ``0..d-1``, stored as the parents of each node.

    A ``DAG`` *is* a tuple of ``d`` sorted parent tuples -- ``DAG(((), (), (0, 1)))`` is
    ``0 → 2 ← 1`` and equals the plain tuple ``((), (), (0, 1))`` -- so it hashes, pickles
    and compares like one. ``str(dag)`` is its label, ``"0->2, 1->2"`` (``"empty"`` for no
    edges), which is also what the comparison table prints.

    Parameters
    ----------
    value : sequence of d sequences of int, set of (i, j) pairs, str, or DAG
        Parent lists (``value[j]`` = parents of node ``j``); or a ``set``/``frozenset`` of
        directed edges ``(i, j)`` meaning ``i → j``; or a label ``"0->2, 1->2"``.
    num_variables : int, optional
        ``d``; required for an edge set or a label, checked otherwise.

    Raises
    ------
    InvalidArgumentError
        A node index out of range, a self-loop, a repeated parent (or a repeated edge in
        a label, e.g. ``"0->1, 0->1"``), a directed cycle (the message shows it), or
        ``num_variables`` disagreeing with ``value``. A list or tuple is always read as
        parent lists; when it is a list of ``(i, j)`` pairs that are not valid parent lists,
        the message shows the edge-set and label forms of the same pairs.

    Examples
    --------
    >>> g = DAG({(0, 2), (1, 2)}, num_variables=3)
    >>> g
    DAG('0->2, 1->2', num_variables=3)
    >>> tuple(g), g.edges, g == DAG("0->2, 1->2", num_variables=3)
    (((), (), (0, 1)), ((0, 2), (1, 2)), True)
    """

    def __new__(cls, value: Any, num_variables: int | None = None) -> "DAG":
        if num_variables is not None:
            num_variables = check_positive_int(num_variables, "num_variables")
        if type(value) is cls and num_variables in (None, len(value)):
            return value  # already checked, and immutable
        if isinstance(value, DAG):
            parents = tuple(value)
        elif isinstance(value, str):
            parents = cls._parse(value, num_variables)
        elif isinstance(value, (set, frozenset)):
            parents = cls._from_edge_set(value, num_variables)
        elif isinstance(value, Sequence):
            try:
                parents = cls._from_parent_lists(value)
                cls._check_num_variables(parents, num_variables)
                cls._check_acyclic(parents)
            except InvalidArgumentError as exc:
                hint = cls._edge_list_hint(value, num_variables)
                if hint is None:
                    raise
                msg = str(exc).replace(_EDGE_SET_TIP, "")  # the hint says it, with the user's pairs
                raise InvalidArgumentError(f"{msg}. {hint}") from None
            return tuple.__new__(cls, parents)
        else:
            raise InvalidArgumentError(
                f"`dag` must be parent lists like ((), (), (0, 1)), a set of edges like {{(0, 2), (1, 2)}}, or a "
                f"label like '0->2, 1->2'; got {type(value).__name__}"
            )
        cls._check_num_variables(parents, num_variables)
        cls._check_acyclic(parents)
        return tuple.__new__(cls, parents)

    @staticmethod
    def _check_num_variables(parents: tuple, num_variables: int | None) -> None:
        if num_variables is not None and len(parents) != num_variables:
            raise InvalidArgumentError(
                f"`dag` has {len(parents)} nodes but num_variables={num_variables}; give one parent list per variable"
            )

    @staticmethod
    def _check_acyclic(parents: tuple) -> None:
        cycle = _find_cycle(parents)
        if cycle is not None:
            raise InvalidArgumentError(
                f"`dag` has a directed cycle {' -> '.join(map(str, cycle))}; a Bayesian network's graph must be acyclic"
            )

    @staticmethod
    def _edge_list_hint(value: Sequence, num_variables: int | None) -> str | None:
        """For a list of (i, j) int pairs (ambiguous: parent lists or edges), how to give edges.

        None when ``value`` is not such a list. (A list of pairs is never a valid DAG as
        parent lists: some node comes first in a topological order and has no parents.)
        """
        pairs = []
        for e in value:
            if isinstance(e, (str, bytes)) or not isinstance(e, Sequence) or len(e) != 2:
                return None
            if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in e):
                return None
            pairs.append((int(e[0]), int(e[1])))
        if not pairs:
            return None
        unique = list(dict.fromkeys(pairs))  # a label must not repeat an edge
        d = "d" if num_variables is None else str(num_variables)
        edge_set = "{" + ", ".join(f"({i}, {j})" for i, j in unique) + "}"
        label = ", ".join(f"{i}->{j}" for i, j in unique)
        repeated = "" if len(unique) == len(pairs) else " (give each edge once: the list repeats a pair)"
        return (f"A list or tuple is read as parent lists (dag[j] = the parents of node j); to give the "
                f"edges i -> j, pass a set, DAG({edge_set}, num_variables={d}), or a label, "
                f"DAG({label!r}, num_variables={d}){repeated}")

    @classmethod
    def _trusted(cls, parents: tuple) -> "DAG":
        """No checks: for parent tuples built by this module."""
        return tuple.__new__(cls, parents)

    def __reduce__(self):
        # checked when made: unpickling skips the cycle check (the family of the 29281 DAGs on
        # 5 variables unpickles in 0.2 s instead of 0.5 s, once per worker task of ``compare``)
        return (DAG._trusted, (tuple(self),))

    @staticmethod
    def _from_parent_lists(value: Sequence) -> tuple:
        d = len(value)
        if d == 0:
            raise InvalidArgumentError("`dag` has no nodes; give one parent list per variable, e.g. ((), (0,))")
        parents = []
        for j, pa in enumerate(value):
            if isinstance(pa, (str, bytes)) or not isinstance(pa, Iterable):
                raise InvalidArgumentError(f"`dag[{j}]` must be the parents of node {j} (a tuple of ints); got {pa!r}"
                                           + _EDGE_SET_TIP)
            items = list(pa)
            for p in items:
                if isinstance(p, bool) or not isinstance(p, (int, np.integer)):
                    raise InvalidArgumentError(f"`dag[{j}]` lists parent {p!r}; parents are node indices 0..{d - 1}")
                if not 0 <= int(p) < d:
                    raise InvalidArgumentError(
                        f"`dag[{j}]` lists parent {int(p)}, outside the node indices 0..{d - 1}" + _EDGE_SET_TIP
                    )
                if int(p) == j:
                    raise InvalidArgumentError(f"`dag[{j}]` lists node {j} as its own parent (a self-loop)")
            if len(set(map(int, items))) != len(items):
                raise InvalidArgumentError(f"`dag[{j}]` repeats a parent: {items}")
            parents.append(tuple(sorted(map(int, items))))
        return tuple(parents)

    @staticmethod
    def _from_edge_set(edges: Iterable, num_variables: int | None) -> tuple:
        if num_variables is None:
            raise InvalidArgumentError("`num_variables` is needed with a set of edges (isolated nodes have none)")
        parents: list[list[int]] = [[] for _ in range(num_variables)]
        for e in edges:
            if not (isinstance(e, Sequence) and len(e) == 2):
                raise InvalidArgumentError(f"`dag` edges must be pairs (i, j) meaning i -> j; got {e!r}")
            i, j = e
            for v in (i, j):
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= int(v) < num_variables:
                    raise InvalidArgumentError(
                        f"`dag` edge {tuple(e)} names node {v!r}, outside the node indices 0..{num_variables - 1}"
                    )
            if i == j:
                raise InvalidArgumentError(f"`dag` edge {tuple(e)} is a self-loop")
            if int(i) in parents[int(j)]:
                raise InvalidArgumentError(f"`dag` repeats the edge {int(i)}->{int(j)}; give each edge once")
            parents[int(j)].append(int(i))
        return tuple(tuple(sorted(p)) for p in parents)

    @classmethod
    def _parse(cls, text: str, num_variables: int | None) -> tuple:
        if num_variables is None:
            raise InvalidArgumentError(f"`num_variables` is needed to read the label {text!r}")
        text = text.strip()
        if text in ("", "empty"):
            return tuple(() for _ in range(num_variables))
        edges = []  # a list, not a set: a repeated edge is refused by _from_edge_set
        for part in text.split(","):
            m = _EDGE_RE.match(part)
            if not m:
                raise InvalidArgumentError(f"`dag` label {text!r}: cannot read {part.strip()!r}; write edges as '0->2, 1->2'")
            edges.append((int(m.group(1)), int(m.group(2))))
        return cls._from_edge_set(edges, num_variables)

    # ------------------------------------------------------------------ views
    @property
    def num_variables(self) -> int:
        return len(self)

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """Directed edges ``(i, j)`` (``i → j``), sorted."""
        return tuple(sorted((i, j) for j, pa in enumerate(self) for i in pa))

    @property
    def num_edges(self) -> int:
        return sum(len(pa) for pa in self)

    def parent_masks(self) -> tuple[int, ...]:
        """Bit mask of each node's parents (bit ``i`` set when ``i → j``)."""
        return tuple(sum(1 << i for i in pa) for pa in self)

    def adjacency(self) -> torch.Tensor:
        """``(d, d)`` bool tensor ``A`` with ``A[i, j]`` true iff ``i → j``."""
        A = torch.zeros(len(self), len(self), dtype=torch.bool)
        for i, j in self.edges:
            A[i, j] = True
        return A

    def topological_order(self) -> tuple[int, ...]:
        """Nodes with every parent before its children (ties by index)."""
        done: list[int] = []
        left = set(range(len(self)))
        while left:
            ready = min(v for v in left if all(p in done for p in self[v]))
            done.append(ready)
            left.remove(ready)
        return tuple(done)

    def skeleton(self) -> frozenset[frozenset[int]]:
        """Undirected edges ``{i, j}``."""
        return frozenset(frozenset(e) for e in self.edges)

    def v_structures(self) -> frozenset[tuple[int, int, int]]:
        """Triples ``(a, c, b)``, ``a < b``, with ``a → c ← b`` and ``a``, ``b`` non-adjacent."""
        skel = self.skeleton()
        return frozenset((a, c, b) for c, pa in enumerate(self) for a, b in itertools.combinations(pa, 2)
                         if frozenset((a, b)) not in skel)

    def __str__(self) -> str:
        edges = self.edges
        return ", ".join(f"{i}->{j}" for i, j in edges) if edges else "empty"

    def __repr__(self) -> str:
        return f"DAG({str(self)!r}, num_variables={len(self)})"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def markov_equivalent(a: Any, b: Any) -> bool:
    """Whether two DAGs encode the same conditional independences.

    True iff they have the same skeleton and the same v-structures (Verma & Pearl 1990,
    *Equivalence and synthesis of causal models*).

    >>> markov_equivalent(DAG("0->1", num_variables=2), DAG("1->0", num_variables=2))
    True
    """
    a, b = DAG(a), DAG(b)
    if len(a) != len(b):
        raise InvalidArgumentError(f"`a` and `b` must have the same number of nodes; got {len(a)} and {len(b)}")
    return a.skeleton() == b.skeleton() and a.v_structures() == b.v_structures()


def _check_max_parents(max_parents: Any, num_variables: int) -> int:
    if max_parents is None:
        return max(num_variables - 1, 0)
    return min(check_positive_int(max_parents, "max_parents", minimum=0), max(num_variables - 1, 0))


def enumerate_dags(num_variables: int, max_parents: int | None = None) -> list[DAG]:
    """Every DAG on ``num_variables`` labelled nodes, fewest edges first.

    Each DAG is built once from its unique layering: the sources, then the sources of
    what remains, and so on; a node of layer ``k ≥ 1`` has at least one parent in layer
    ``k − 1`` and none later. The counts for d = 1..5 are 1, 3, 25, 543, 29281 (Robinson
    1973; OEIS A003024).

    Parameters
    ----------
    num_variables : int
        ``d``, from 1 to 5 (3.8 million DAGs at d = 6; use :class:`StructureMCMC` there).
    max_parents : int, optional
        Keep only DAGs whose nodes have at most this many parents.

    Returns
    -------
    list of DAG
        Sorted by number of edges, then by their edge lists.

    >>> [len(enumerate_dags(d)) for d in (1, 2, 3)]
    [1, 3, 25]
    """
    if isinstance(num_variables, bool) or not isinstance(num_variables, (int, np.integer)) or \
            not 1 <= num_variables <= MAX_ENUMERATED_VARIABLES:
        raise InvalidArgumentError(
            f"`num_variables` must be an integer from 1 to {MAX_ENUMERATED_VARIABLES} to enumerate DAGs "
            f"({_NUM_DAGS[5]} at 5, {_NUM_DAGS[6]} at 6); got {num_variables!r}. For more variables sample DAGs "
            "with StructureMCMC"
        )
    d = int(num_variables)
    k_max = _check_max_parents(max_parents, d)
    full = (1 << d) - 1
    found: list[tuple[int, ...]] = []
    parents = [0] * d

    def submasks(mask: int) -> list[int]:
        out, sub = [], mask
        while True:
            out.append(sub)
            if sub == 0:
                return out
            sub = (sub - 1) & mask

    def layers(remaining: int, placed: int, previous: int) -> None:
        if remaining == 0:
            found.append(tuple(parents))
            return
        if previous == 0:
            options = [0]
        else:
            options = [m for m in submasks(placed) if m & previous and bin(m).count("1") <= k_max]
        if not options:
            return
        layer = remaining
        while layer:
            nodes = _bits(layer)
            for combo in itertools.product(options, repeat=len(nodes)):
                for v, m in zip(nodes, combo):
                    parents[v] = m
                layers(remaining & ~layer, placed | layer, layer)
            for v in nodes:
                parents[v] = 0
            layer = (layer - 1) & remaining

    layers(full, 0, 0)
    dags = [DAG._trusted(tuple(tuple(_bits(m)) for m in masks)) for masks in found]
    dags.sort(key=lambda g: (g.num_edges, g.edges))
    return dags


# ----------------------------------------------------------------------------- model
class NoiseModel(str, Enum):
    """How the noise of each node's regression is treated."""

    KNOWN = "known"
    """``x_j ~ N(w_jᵀ[1, x_pa(j)], σ²)`` with the given ``noise_scale`` σ."""
    NORMAL_GAMMA = "normal-gamma"
    """Per node ``τ_j ~ Gamma(a₀, b₀)``, ``w_j | τ_j ~ N(0, (λτ_j)⁻¹ I)``, ``x_j ~ N(·, τ_j⁻¹)``; Student-t evidence."""


def _noise(noise: Any) -> NoiseModel:
    try:
        return NoiseModel(noise)
    except ValueError:
        raise InvalidArgumentError(f"`noise` must be one of {[n.value for n in NoiseModel]}; got {noise!r}") from None


def _design(x: torch.Tensor, parents: Sequence[int]) -> torch.Tensor:
    """``[1, x_pa]`` of shape ``(N, 1 + |pa|)``."""
    ones = x.new_ones(x.shape[0], 1)
    return torch.cat([ones, x[:, list(parents)]], dim=-1)


def _check_x(x: Any, num_variables: int, name: str = "x") -> torch.Tensor:
    xt = as_tensor(x, name)
    if xt.dim() != 2 or xt.shape[1] != num_variables:
        raise InvalidArgumentError(
            f"`{name}` must have shape (N, {num_variables}): one row per observation, one column per variable; "
            f"got shape {tuple(xt.shape)}"
        )
    if xt.shape[0] == 0:
        raise InvalidArgumentError(f"`{name}` is empty; at least one observation is needed")
    return xt


def bayes_net_model(x: torch.Tensor | None, y: None = None, *, dag: Any, alpha: float = 1.0, noise_scale: float = 1.0,
                    noise: str = "known", tau_prior: tuple[float, float] = (2.0, 2.0), lam: float | None = None,
                    num_data: int | None = None) -> torch.Tensor:
    """Pyro model of a linear-Gaussian Bayesian network with graph ``dag`` (vectorisable).

    For each node ``j`` in topological order: ``w_j ~ N(0, α⁻¹ I)`` over ``[1, x_pa(j)]``,
    then ``x_j ~ N(w_jᵀ [1, x_pa(j)], σ²)`` in plate ``"data"``.

    Parameters
    ----------
    x : Tensor ``(N, d)`` or None
        The data, every column observed. ``None`` samples the columns from the model
        (needs ``num_data``), e.g. for a prior predictive check.
    y : None
        Unused (kept for the family interface ``model(x, y)``); must be None.
    dag : DAG or anything :class:`DAG` accepts
        The structure.
    alpha : float
        Prior precision of every weight and intercept (``noise="known"``).
    noise_scale : float
        σ, the noise standard deviation of every node (``noise="known"``).
    noise : {"known", "normal-gamma"}
        See :class:`NoiseModel`.
    tau_prior : (shape, rate); lam : float, optional
        ``τ_j ~ Gamma(*tau_prior)`` and ``w_j | τ_j ~ N(0, (lam τ_j)⁻¹ I)`` for
        ``"normal-gamma"``; ``lam`` defaults to ``alpha σ²`` (the known-noise prior at τ = σ⁻²).
    num_data : int, optional
        ``N`` when ``x`` is None.

    Returns
    -------
    Tensor ``(N, d)``
        The columns ``x_0 .. x_{d-1}`` stacked (observed or sampled).

    Sites
    -----
    ``"w_{j}"`` ``(1 + |pa(j)|,)``, ``"tau_{j}"`` (normal-gamma only), ``"x_{j}"`` ``(N,)`` observed.
    """
    if y is not None:
        raise InvalidArgumentError("`y` must be None for a Bayesian network: every variable is a column of `x`")
    dag = DAG(dag)
    noise = _noise(noise)
    d = len(dag)
    if x is None:
        if num_data is None:
            raise InvalidArgumentError("`num_data` is needed to sample the data when `x` is None")
        N = check_positive_int(num_data, "num_data")
        like = torch.zeros(())
    else:
        if not torch.is_tensor(x) or x.dim() != 2 or x.shape[1] != d:
            raise InvalidArgumentError(f"`x` must be a tensor of shape (N, {d}); got {getattr(x, 'shape', type(x))}")
        N = x.shape[0]
        like = x
    cols: dict[int, torch.Tensor] = {}
    data = pyro.plate("data", N, dim=-1)
    for j in dag.topological_order():
        pa = dag[j]
        parts = [like.new_ones(N)] + [cols[p] for p in pa]
        Phi = torch.stack(torch.broadcast_tensors(*parts), dim=-1)  # (..., N, M)
        M = 1 + len(pa)
        if noise is NoiseModel.NORMAL_GAMMA:
            lam_value = alpha * noise_scale**2 if lam is None else lam
            tau = pyro.sample(f"tau_{j}", dist.Gamma(*(like.new_tensor(float(v)) for v in tau_prior)))
            w_scale = (lam_value * tau.unsqueeze(-1)).rsqrt()
            scale = tau.rsqrt()
        else:
            w_scale = like.new_tensor(float(alpha)).rsqrt()
            scale = like.new_tensor(float(noise_scale))
        w = pyro.sample(f"w_{j}", dist.Normal(like.new_zeros(M), w_scale).to_event(1))
        mean = (w * Phi).sum(-1)  # (M,) or (B, 1, M) particles times (..., N, M)
        with data:
            cols[j] = pyro.sample(f"x_{j}", dist.Normal(mean, scale), obs=None if x is None else x[:, j])
    return torch.stack(torch.broadcast_tensors(*(cols[j] for j in range(d))), dim=-1)


@dataclass(frozen=True)
class DecomposableEvidence:
    """The evidence of a DAG as a sum of per-node conjugate terms.

    ``log p(D | G) = Σ_j log p(x_j | x_pa(j))``; ``forms[j]`` is the
    :class:`~bayesstruct.evidence.LinearGaussian` (known noise) or
    :class:`~bayesstruct.evidence.NormalGamma` regression of node ``j`` on ``[1, x_pa(j)]``.
    The ``exact`` estimator calls :meth:`log_evidence`. ``values``, when given, are the
    terms already computed (a family's cache; :class:`BayesianNetworkFamily` fills it).
    """

    forms: tuple
    values: tuple | None = field(default=None, repr=False, compare=False)

    def local_log_evidence(self) -> list[float]:
        """``log p(x_j | x_pa(j))`` per node ``j``."""
        if self.values is not None:
            return list(self.values)
        return [float(f.log_evidence()) for f in self.forms]

    def log_evidence(self) -> torch.Tensor:
        if self.values is not None:
            return torch.tensor(math.fsum(self.values), dtype=torch.float64)
        return sum((f.log_evidence() for f in self.forms), torch.zeros((), dtype=torch.float64))


def _local_form(x: torch.Tensor, j: int, parents: Sequence[int], *, alpha: float, noise_scale: float, noise: NoiseModel,
                tau_prior: tuple[float, float], lam: float | None):
    Phi = _design(x, parents)
    if noise is NoiseModel.NORMAL_GAMMA:
        return NormalGamma(Phi, x[:, j], alpha * noise_scale**2 if lam is None else lam, *tau_prior)
    return LinearGaussian(Phi, x[:, j], alpha, 1.0 / noise_scale**2)


class _LocalCache:
    """``(node, parents, hyperparameters) -> (form, log evidence)`` for the last data tensor seen.

    The evidence of a DAG decomposes over nodes, so the 29281 DAGs on 5 variables share
    5 · 2⁴ = 80 terms; ``compare`` (in one process) and the samplers look them up here instead
    of solving each node's regression again. The cache forgets everything when it sees
    another tensor, or the same one modified in place (``x._version``), and does not travel
    with a pickled family (a worker process starts empty).
    """

    def __init__(self) -> None:
        self._data: tuple | None = None  # (weak reference to x, x._version, {key: (form, value)})

    def __reduce__(self):
        return (_LocalCache, ())

    def lookup(self, x: torch.Tensor, j: int, parents: tuple, kw: dict) -> tuple[Any, float]:
        data = self._data
        if data is None or data[0]() is not x or data[1] != x._version:
            data = self._data = (weakref.ref(x), x._version, {})
        items = data[2]  # this x's terms, even if another thread moves the cache on to other data
        key = (j, parents, *kw.values())
        if key not in items:
            form = _local_form(x, j, parents, **kw)
            items[key] = (form, float(form.log_evidence()))
        return items[key]


def _bayes_net_conjugate_form(x: torch.Tensor | None, y: None = None, *, dag: Any, alpha: float = 1.0,
                              noise_scale: float = 1.0, noise: str = "known", tau_prior: tuple[float, float] = (2.0, 2.0),
                              lam: float | None = None, cache: _LocalCache | None = None,
                              **_: Any) -> DecomposableEvidence | None:
    if x is None or y is not None:
        return None
    dag = DAG(dag)
    x = torch.as_tensor(x, dtype=torch.float64)
    kw = dict(alpha=alpha, noise_scale=noise_scale, noise=_noise(noise), tau_prior=tuple(tau_prior), lam=lam)
    if cache is not None and not any(torch.is_tensor(v) for v in kw.values()):  # a tensor may carry a gradient
        forms, values = zip(*(cache.lookup(x, j, pa, kw) for j, pa in enumerate(dag)))
        return DecomposableEvidence(forms, values)
    return DecomposableEvidence(tuple(_local_form(x, j, pa, **kw) for j, pa in enumerate(dag)))


bayes_net_model.conjugate_form = _bayes_net_conjugate_form


def simulate_linear_gaussian(dag: Any, num_data: int, *, weights: Any = None, intercepts: Any = None,
                             noise_scale: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Data ``(num_data, d)`` from a linear-Gaussian network with graph ``dag``.

    ``x_j = b_j + Σ_{i ∈ pa(j)} W[i, j] x_i + σ ε``, ``ε ~ N(0, 1)``, in topological order.

    Parameters
    ----------
    dag : DAG or anything :class:`DAG` accepts
    num_data : int
    weights : array-like ``(d, d)``, optional
        ``W[i, j]`` is the weight of edge ``i → j`` and must be 0 where there is no edge.
        Default: independent N(0, 1) draws on the edges.
    intercepts : array-like ``(d,)``, optional
        ``b``; default 0.
    noise_scale : float
        σ.
    seed : int
        Seed of the ``torch.Generator`` behind every draw.
    """
    dag = DAG(dag)
    d = len(dag)
    N = check_positive_int(num_data, "num_data")
    sigma = check_positive(noise_scale, "noise_scale")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidArgumentError(f"`seed` must be an integer; got {seed!r}")
    gen = torch.Generator().manual_seed(int(seed))
    adj = dag.adjacency()
    if weights is None:
        W = torch.randn(d, d, generator=gen, dtype=torch.float64) * adj
    else:
        W = as_tensor(weights, "weights", ndim=2)
        if W.shape != (d, d):
            raise InvalidArgumentError(f"`weights` must have shape ({d}, {d}); got {tuple(W.shape)}")
        stray = [(i, j) for i in range(d) for j in range(d) if W[i, j] != 0 and not adj[i, j]]
        if stray:
            raise InvalidArgumentError(f"`weights` is non-zero at {stray}, which are not edges of the DAG {dag}")
    b = torch.zeros(d, dtype=torch.float64) if intercepts is None else as_tensor(intercepts, "intercepts", ndim=1)
    if b.shape != (d,):
        raise InvalidArgumentError(f"`intercepts` must have shape ({d},); got {tuple(b.shape)}")
    x = torch.zeros(N, d, dtype=torch.float64)
    eps = torch.randn(N, d, generator=gen, dtype=torch.float64)
    for j in dag.topological_order():
        x[:, j] = b[j] + x @ W[:, j] + sigma * eps[:, j]
    return x


# ----------------------------------------------------------------------------- family
class BayesianNetworkFamily(StructureFamily):
    """Linear-Gaussian Bayesian networks on ``num_variables`` variables, one structure per DAG.

    Structures are dicts ``{"dag": DAG}``; :meth:`validate_structure` (and so ``compare``'s
    ``structures=``) also takes a bare :class:`DAG`, parent lists, an edge set or a label.
    The data are ``x`` of shape ``(N, d)`` with ``y=None``:
    ``bayesstruct.compare(family, x, None, methods="exact")``.

    Parameters
    ----------
    num_variables : int
        ``d``. Up to 5 the family enumerates every DAG (543 at d = 4); beyond, pass
        ``structures=`` to ``compare`` or sample with :class:`StructureMCMC`.
    alpha : float
        Prior precision of each weight and intercept.
    noise_scale : float
        σ, each node's noise standard deviation (``noise="known"``).
    noise : {"known", "normal-gamma"}
        See :class:`NoiseModel`.
    tau_prior : (shape, rate); lam : float, optional
        Hyperparameters of ``noise="normal-gamma"`` (see :func:`bayes_net_model`).
    max_parents : int, optional
        Keep only DAGs whose nodes have at most this many parents.

    Examples
    --------
    >>> import bayesstruct
    >>> x = simulate_linear_gaussian(DAG("0->1", num_variables=2), 200, weights=[[0, 1.0], [0, 0]])
    >>> table = bayesstruct.compare(BayesianNetworkFamily(2), x, None, methods="exact", workers=1, progress=False)
    >>> [str(r.structure["dag"]) for r in table.rows]  # doctest: +SKIP
    ['0->1', '1->0', 'empty']
    """

    def __init__(self, num_variables: int, *, alpha: float = 1.0, noise_scale: float = 1.0, noise: str = "known",
                 tau_prior: tuple[float, float] = (2.0, 2.0), lam: float | None = None,
                 max_parents: int | None = None) -> None:
        d = check_positive_int(num_variables, "num_variables")
        self.num_variables = d
        self.max_parents = _check_max_parents(max_parents, d)
        self.noise = _noise(noise)
        alpha = check_positive(alpha, "alpha")
        noise_scale = check_positive(noise_scale, "noise_scale")
        if not (isinstance(tau_prior, Sequence) and len(tau_prior) == 2):
            raise InvalidArgumentError(f"`tau_prior` must be a pair (shape, rate); got {tau_prior!r}")
        tau_prior = (check_positive(tau_prior[0], "tau_prior[0]"), check_positive(tau_prior[1], "tau_prior[1]"))
        lam = None if lam is None else check_positive(lam, "lam")
        self.enumerable = d <= MAX_ENUMERATED_VARIABLES
        self._cache = _LocalCache()
        self._local_kw = dict(alpha=alpha, noise_scale=noise_scale, noise=self.noise, tau_prior=tau_prior, lam=lam)
        dags = enumerate_dags(d, max_parents) if self.enumerable else [DAG._trusted(((),) * d)]
        super().__init__(bayes_net_model, {"dag": dags}, name=f"bayes-net(d={d})",
                         model_kwargs=dict(alpha=alpha, noise_scale=noise_scale, noise=self.noise.value,
                                           tau_prior=tau_prior, lam=lam))

    def structures(self) -> list[dict[str, Any]]:
        if not self.enumerable:
            raise InvalidArgumentError(
                f"a {self.num_variables}-variable network has too many DAGs to enumerate (> {_NUM_DAGS[6]}); pass "
                "`structures=[...]` to compare, or sample DAGs with StructureMCMC"
            )
        return super().structures()

    def validate_structure(self, structure: Any) -> dict[str, Any]:
        """``{"dag": DAG}`` from a dict with key ``"dag"`` or from anything :class:`DAG` accepts."""
        if isinstance(structure, Mapping):
            if set(structure) != {"dag"}:
                raise InvalidArgumentError(f"`structure` must have exactly the key 'dag'; got keys {sorted(structure)}")
            value = structure["dag"]
        else:
            value = structure
        dag = DAG(value, num_variables=self.num_variables)
        worst = max(len(pa) for pa in dag)
        if worst > self.max_parents:
            raise InvalidArgumentError(
                f"`structure` {dag} gives a node {worst} parents; this family allows at most max_parents={self.max_parents}"
            )
        return {"dag": dag}

    def check_data(self, x: Any, y: Any = None) -> tuple[torch.Tensor, None]:
        """``x`` as a float64 ``(N, d)`` tensor (finite); ``y`` must be None."""
        if y is not None:
            raise InvalidArgumentError("`y` must be None for a Bayesian network: every variable is a column of `x`")
        return _check_x(x, self.num_variables), None

    def resolve(self, x: torch.Tensor, y: Any, structure: Mapping[str, Any]) -> dict[str, Any]:
        self.check_data(x, y)
        return dict(self.model_kwargs)

    def log_evidence(self, x: Any, y: Any, structure: Any, method: Any = "exact"):
        """``log p(x | G)`` by ``method`` (default ``"exact"``, the closed form); ``y`` must be None."""
        from bayesstruct.evidence import log_evidence

        x, y = self.check_data(x, y)
        bound = self.bind(structure, **self.resolve(x, y, structure))
        return log_evidence(bound, x, y, method=method)

    def bind(self, structure: Any, **kwargs: Any):
        structure = self.validate_structure(structure)
        from bayesstruct.families.base import BoundModel

        return BoundModel(self.model, {**self.model_kwargs, **kwargs, **structure},
                          conjugate_form=functools.partial(_bayes_net_conjugate_form, cache=self._cache))

    def local_log_evidence(self, x: Any, node: int, parents: Iterable[int]) -> float:
        """``log p(x_node | x_parents)``, the closed-form term of one node (PRML eq. 3.86).

        ``x`` is checked here; the samplers call the unchecked version on checked data.
        """
        x = _check_x(x, self.num_variables)
        node = check_positive_int(node, "node", minimum=0)
        if node >= self.num_variables:
            raise InvalidArgumentError(f"`node` must be in 0..{self.num_variables - 1}; got {node}")
        parents = tuple(parents)
        g = [()] * self.num_variables
        g[node] = parents
        DAG(g)  # checks the indices
        return self._local(x, node, tuple(sorted(parents)))

    def _local(self, x: torch.Tensor, node: int, parents: tuple[int, ...]) -> float:
        return self._cache.lookup(x, node, parents, self._local_kw)[1]

    def hyperparameters(self, resolved: Mapping[str, Any]) -> dict[str, Any]:
        out = {"noise": self.noise.value, "alpha": resolved["alpha"]}
        if self.noise is NoiseModel.KNOWN:
            out["noise_scale"] = resolved["noise_scale"]
        else:
            out["tau_prior"] = resolved["tau_prior"]
            out["lam"] = resolved["lam"] if resolved["lam"] is not None else resolved["alpha"] * resolved["noise_scale"] ** 2
        return out

    def __repr__(self) -> str:
        return (f"BayesianNetworkFamily(num_variables={self.num_variables}, noise={self.noise.value!r}, "
                f"max_parents={self.max_parents}, {self.model_kwargs})")


# ----------------------------------------------------------------------------- structure priors
class DAGPriorKind(str, Enum):
    """Prior over DAGs."""

    UNIFORM = "uniform"
    """Every DAG equally likely."""
    SPARSITY = "sparsity"
    """``p(G) ∝ ρ^{|E|} (1 − ρ)^{E_max − |E|}``, ``E_max = d(d − 1)/2``: each edge kept with odds ρ/(1 − ρ)."""


@dataclass(frozen=True)
class DAGPrior:
    """A prior over DAGs, usable as ``compare(..., structure_prior=prior)`` and by :class:`StructureMCMC`.

    Calling it on a structure (``{"dag": G}`` or a DAG) gives its unnormalised weight;
    ``compare`` normalises over the structures compared. Mansinghka et al. (2006) place a
    hierarchical, class-based prior on the graph; the sparsity prior is its one-class case
    with a fixed edge parameter.

    Attributes
    ----------
    kind : DAGPriorKind
    rho : float
        Edge parameter of the sparsity prior, in (0, 1): each edge multiplies the prior by the
        odds ρ/(1−ρ). Acyclicity makes the marginal prior probability of an edge smaller than
        ρ (0.167, 0.164, 0.160 for ρ = 0.2 on 2, 3, 4 variables, by enumeration).
    """

    kind: DAGPriorKind = DAGPriorKind.UNIFORM
    rho: float = 0.5

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", DAGPriorKind(self.kind))
        except ValueError:
            raise InvalidArgumentError(f"`kind` must be one of {[k.value for k in DAGPriorKind]}; got {self.kind!r}") from None
        rho = check_positive(self.rho, "rho")
        if rho >= 1:
            raise InvalidArgumentError(f"`rho` must lie in (0, 1); got {self.rho!r}")
        object.__setattr__(self, "rho", rho)

    def log_prob(self, dag: Any) -> float:
        """Unnormalised ``log p(G)``."""
        if isinstance(dag, Mapping):
            dag = dag.get("dag")
        dag = DAG(dag)
        if self.kind is DAGPriorKind.UNIFORM:
            return 0.0
        d = len(dag)
        e_max = d * (d - 1) // 2
        return dag.num_edges * math.log(self.rho) + (e_max - dag.num_edges) * math.log1p(-self.rho)

    def __call__(self, structure: Any) -> float:
        return math.exp(self.log_prob(structure))


def dag_prior(kind: str = "uniform", *, rho: float = 0.5) -> DAGPrior:
    """A :class:`DAGPrior`: ``"uniform"`` or ``"sparsity"`` with edge parameter ``rho``
    (prior odds ρ/(1−ρ) per edge).

    >>> prior = dag_prior("sparsity", rho=0.2)
    >>> round(prior(DAG("0->1", num_variables=2)) / prior(DAG("empty", num_variables=2)), 3)
    0.25
    """
    return DAGPrior(kind, rho)


# ----------------------------------------------------------------------------- edge posterior
def edge_posterior(result: Any) -> torch.Tensor:
    """Posterior probability of each directed edge, ``P[i, j] = p(i → j | D)``.

    ``P[i, j] = Σ_G p(G | D) [i → j ∈ G]`` over the rows of a
    :class:`~bayesstruct.compare.ComparisonTable` of a :class:`BayesianNetworkFamily` (so
    conditional on the structures compared), or the frequency of the edge in the draws of
    a :class:`DAGSamples`.

    Parameters
    ----------
    result : ComparisonTable or DAGSamples

    Returns
    -------
    Tensor ``(d, d)``, float64, zero diagonal.
    """
    from bayesstruct.compare import ComparisonTable

    if isinstance(result, DAGSamples):
        return result.edge_posterior()
    if not isinstance(result, ComparisonTable):
        raise InvalidArgumentError(f"`result` must be a ComparisonTable or DAGSamples; got {type(result).__name__}")
    if not result.rows or "dag" not in result.rows[0].structure:
        raise InvalidArgumentError("`result` must compare DAGs (a BayesianNetworkFamily's table); its structures have "
                                   f"keys {sorted(result.rows[0].structure) if result.rows else []}")
    d = len(DAG(result.rows[0].structure["dag"]))
    P = torch.zeros(d, d, dtype=torch.float64)
    for r in result.rows:
        P += r.posterior_probability * DAG(r.structure["dag"]).adjacency().to(torch.float64)
    return P.clamp_(0.0, 1.0)  # a sum of normalised probabilities can pass 1 by rounding


# ----------------------------------------------------------------------------- structure MCMC
@dataclass(frozen=True)
class DAGSamples:
    """Draws of :meth:`StructureMCMC.run`.

    Attributes
    ----------
    dags : tuple of DAG ``(S,)``
        The recorded states.
    log_scores : np.ndarray ``(S,)``
        ``log p(D | G) + log p(G)`` (prior unnormalised) of each state.
    acceptance_rate : float
        Accepted proposals / proposals of the chain at temperature 1 over the recorded steps
        (after warm-up), as :class:`~bayesstruct.families.superposition.SuperpositionSamples`.
    num_variables : int
    swap_rate : float or None
        Accepted exchanges between neighbouring temperatures / exchanges proposed, after
        warm-up (None without tempering).
    """

    dags: tuple
    log_scores: np.ndarray = field(repr=False)
    acceptance_rate: float
    num_variables: int
    swap_rate: float | None = None

    def __repr__(self) -> str:  # as SuperpositionSamples': the three most visited, not every draw
        top = ", ".join(f"{g}: {p:.3f}" for g, p in list(self.posterior_probabilities().items())[:3])
        return (f"DAGSamples({len(self.dags)} draws on {self.num_variables} variables, acceptance "
                f"{self.acceptance_rate:.2f}; {top})")

    @property
    def num_edges(self) -> np.ndarray:
        return np.array([g.num_edges for g in self.dags], dtype=np.int64)

    @classmethod
    def concat(cls, chains: Sequence["DAGSamples"]) -> "DAGSamples":
        """Several chains (run with different seeds) pooled into one set of draws, chain after
        chain; the acceptance and swap rates are the chains' means."""
        chains = list(chains)
        if not chains or not all(isinstance(c, cls) for c in chains):
            raise InvalidArgumentError("`chains` must be a non-empty list of DAGSamples")
        if len({c.num_variables for c in chains}) != 1:
            raise InvalidArgumentError("the chains in `chains` are over different numbers of variables")
        rates = [c.swap_rate for c in chains]
        return cls(tuple(g for c in chains for g in c.dags), np.concatenate([c.log_scores for c in chains]),
                   float(np.mean([c.acceptance_rate for c in chains])), chains[0].num_variables,
                   None if None in rates else float(np.mean(rates)))

    def stats(self) -> dict[str, np.ndarray]:
        """Scalar statistics per draw, for trace plots and convergence diagnostics:
        ``log_score`` (log evidence + log prior) and ``num_edges``
        (see :func:`bayesstruct.io.structure_inference_data`)."""
        return {"log_score": np.asarray(self.log_scores, dtype=np.float64), "num_edges": self.num_edges}

    def edge_indicators(self) -> torch.Tensor:
        """``(S, d, d)`` float64: 1 where draw ``s`` has edge ``i → j``."""
        return torch.stack([g.adjacency() for g in self.dags]).to(torch.float64)

    def edge_posterior(self) -> torch.Tensor:
        """``(d, d)``: the fraction of draws with edge ``i → j``."""
        return self.edge_indicators().mean(0)

    def edge_posterior_stderr(self, num_batches: int = 20) -> torch.Tensor:
        """``(d, d)`` Monte Carlo standard error of :meth:`edge_posterior` by batch means.

        Approximate: on a sticky chain batch means understate the error (against exact edge
        marginals at d = 4 the standardised errors had an RMS of 1.1-1.3 instead of 1). For a
        calibrated error of a scalar statistic use several chains and ArviZ
        (:func:`bayesstruct.io.structure_inference_data`, then ``az.mcse``).
        """
        num_batches = check_positive_int(num_batches, "num_batches", minimum=2)
        ind = self.edge_indicators()
        S = ind.shape[0] // num_batches * num_batches
        if S == 0:
            raise InvalidArgumentError(f"`num_batches`={num_batches} exceeds the {ind.shape[0]} draws")
        means = ind[:S].reshape(num_batches, -1, *ind.shape[1:]).mean(1)
        return means.std(0, unbiased=True) / math.sqrt(num_batches)

    def posterior_probabilities(self) -> dict:
        """DAG -> fraction of draws, most frequent first."""
        counts: dict = {}
        for g in self.dags:
            counts[g] = counts.get(g, 0) + 1
        return {g: c / len(self.dags) for g, c in sorted(counts.items(), key=lambda kv: -kv[1])}

    def to_dict(self) -> dict:
        return {"num_variables": self.num_variables, "dags": [str(g) for g in self.dags],
                "log_scores": self.log_scores.tolist(), "acceptance_rate": float(self.acceptance_rate),
                "swap_rate": self.swap_rate}


class StructureMCMC:
    """Metropolis–Hastings over DAGs: structure MCMC (MC³; Madigan & York 1995).

    A proposal picks uniformly one of the valid single-edge changes of the current DAG
    ``G`` -- add an edge, delete one, or reverse one, keeping the graph acyclic and within
    ``max_parents`` -- and accepts ``G'`` with probability

        min(1, p(D | G') p(G') |nbd(G)| / (p(D | G) p(G) |nbd(G')|)),

    ``|nbd(G)|`` being the number of valid changes of ``G`` (Madigan & York 1995,
    *Bayesian graphical models for discrete data*; Giudici & Castelo 2003 for reversals).
    The evidence decomposes over nodes, so only the changed nodes' terms are computed,
    each once (cached by node and parent set).

    **Parallel tempering** (``temperatures``; Geyer 1991): replica k targets
    ``p(D | G)^β_k p(G)``, its evidence ratio raised to ``β_k``; after each round of moves a
    random pair of neighbouring replicas exchanges graphs with probability
    ``min(1, exp((β_k − β_{k+1})(log p(D | G_{k+1}) − log p(D | G_k))))``. Only replica 0
    (β = 1) is recorded. It is for posteriors whose modes are separated by graphs far worse
    than either, where one chain would stay in the mode it found first. On the random
    linear-Gaussian graphs of ``benchmarks/bayes_net.py`` (d = 5 against the enumeration,
    d = 10 with N = 10,000) single chains mixed (R-hat ≤ 1.006 across 4 chains from the
    empty and the complete graph), and one chain of 4S steps came closer to the exact
    posterior than 4 temperatures for S steps at the same cost; so the default is one
    temperature. Sharp posteriors need a finer ladder than ``2^-k``: at d = 15, N = 5,000
    (one data set) its neighbouring replicas swapped 6 % of the time, ``[1, 0.9, 0.8, 0.7]``
    35 %, yet 4 chains of either agreed less (R-hat 1.15, 1.18) than single chains of the
    same cost (1.012). Run several chains and check R-hat
    (:func:`bayesstruct.io.structure_inference_data`) before trusting either.

    Parameters
    ----------
    family : BayesianNetworkFamily
        Gives the per-node evidence and ``max_parents``.
    x : array-like ``(N, d)``
        The data.
    prior : DAGPrior, optional
        Default uniform.
    seed : int
        Seed of the sampler's ``numpy.random.Generator``.
    initial : DAG or anything DAG accepts, optional
        Starting graph of every replica (default: no edges).
    temperatures : int or sequence of float, optional
        Inverse temperatures ``1 = β_0 > β_1 > ... > 0``, or their number ``n`` for the ladder
        ``2^-k``, k < n. Default: one chain, no tempering.
    """

    def __init__(self, family: BayesianNetworkFamily, x: Any, *, prior: DAGPrior | None = None, seed: int = 0,
                 initial: Any = None, temperatures: Any = None) -> None:
        if not isinstance(family, BayesianNetworkFamily):
            raise InvalidArgumentError(f"`family` must be a BayesianNetworkFamily; got {type(family).__name__}")
        if prior is not None and not isinstance(prior, DAGPrior):
            raise InvalidArgumentError(f"`prior` must be a DAGPrior (see dag_prior) or None; got {type(prior).__name__}")
        seed = check_seed(seed)
        self.family = family
        self.x, _ = family.check_data(x)
        self.prior = prior or DAGPrior()
        self.betas = check_temperatures(temperatures)
        self.rng = np.random.default_rng(seed)
        self.d = family.num_variables
        start = DAG._trusted(((),) * self.d) if initial is None else family.validate_structure(initial)["dag"]
        self._cache: dict[tuple[int, int], float] = {}
        self._dags: dict[tuple[int, ...], DAG] = {}
        self.proposed = self.accepted = 0
        self.swaps_proposed = self.swaps_accepted = 0
        masks = list(start.parent_masks())
        # one [masks, log p(D | G), log p(G)] per temperature
        self._replicas = [[list(masks), self._log_lik(masks), self._log_prior(masks)] for _ in self.betas]

    @property
    def masks(self) -> list[int]:
        """Parent bit masks of the current state (the replica at temperature 1)."""
        return self._replicas[0][0]

    @property
    def log_score(self) -> float:
        """``log p(D | G) + log p(G)`` of the current state."""
        return self._replicas[0][1] + self._replicas[0][2]

    def _local(self, j: int, mask: int) -> float:
        key = (j, mask)
        if key not in self._cache:
            self._cache[key] = self.family._local(self.x, j, tuple(_bits(mask)))
        return self._cache[key]

    def _log_prior(self, masks: Sequence[int]) -> float:
        if self.prior.kind is DAGPriorKind.UNIFORM:
            return 0.0
        return self.prior.log_prob(self._dag(masks))

    def _log_lik(self, masks: Sequence[int]) -> float:
        return sum(self._local(j, m) for j, m in enumerate(masks))

    def _dag(self, masks: Sequence[int]) -> DAG:
        key = tuple(masks)
        if key not in self._dags:
            self._dags[key] = DAG._trusted(tuple(tuple(_bits(m)) for m in key))
        return self._dags[key]

    def _ancestors(self, masks: Sequence[int]) -> list[int]:
        anc: list[int | None] = [None] * self.d

        def get(v: int) -> int:
            if anc[v] is None:
                a = 0
                for p in _bits(masks[v]):
                    a |= (1 << p) | get(p)
                anc[v] = a
            return anc[v]

        return [get(v) for v in range(self.d)]

    def neighbours(self, masks: Sequence[int] | None = None) -> list[tuple[str, int, int]]:
        """Valid moves ``(kind, i, j)`` from a DAG (default the current one): add/delete/reverse ``i → j``."""
        masks = self.masks if masks is None else masks
        anc = self._ancestors(masks)
        k_max = self.family.max_parents
        moves = []
        for j in range(self.d):
            for i in range(self.d):
                if i == j:
                    continue
                if masks[j] >> i & 1:
                    moves.append(("delete", i, j))
                    other = masks[j] & ~(1 << i)
                    # reversing i -> j makes a cycle iff another directed path i ~> j exists
                    if bin(masks[i]).count("1") < k_max and not any(anc[p] >> i & 1 for p in _bits(other)):
                        moves.append(("reverse", i, j))
                elif not masks[i] >> j & 1:
                    if bin(masks[j]).count("1") < k_max and not anc[i] >> j & 1:
                        moves.append(("add", i, j))
        return moves

    @staticmethod
    def _apply(masks: Sequence[int], move: tuple[str, int, int]) -> list[int]:
        kind, i, j = move
        new = list(masks)
        if kind == "add":
            new[j] |= 1 << i
        elif kind == "delete":
            new[j] &= ~(1 << i)
        else:
            new[j] &= ~(1 << i)
            new[i] |= 1 << j
        return new

    def _move(self, replica: list, beta: float) -> bool:
        """One Metropolis–Hastings proposal for a replica ``[masks, log_lik, log_prior]``."""
        masks, log_lik, log_prior = replica
        moves = self.neighbours(masks)
        if not moves:
            return False
        move = moves[int(self.rng.integers(len(moves)))]
        new = self._apply(masks, move)
        new_lik = self._log_lik(new)  # cached terms: only the nodes whose parents changed are solved
        new_prior = self._log_prior(new)
        log_ratio = (beta * (new_lik - log_lik) + new_prior - log_prior
                     + math.log(len(moves)) - math.log(len(self.neighbours(new))))
        if log_ratio >= 0 or self.rng.random() < math.exp(log_ratio):
            replica[:] = [new, new_lik, new_prior]
            return True
        return False

    def step(self) -> bool:
        """One proposal per replica, then (with tempering) one proposed exchange of a random
        neighbouring pair; returns whether the temperature-1 chain's proposal was accepted."""
        accepted = False
        for k, (replica, beta) in enumerate(zip(self._replicas, self.betas)):
            moved = self._move(replica, beta)
            if k == 0:
                accepted = moved
        self.proposed += 1
        self.accepted += accepted
        if len(self.betas) > 1:
            self.swaps_proposed += 1
            k = propose_exchange(self.betas, [r[1] for r in self._replicas], self.rng)
            if k is not None:
                self._replicas[k], self._replicas[k + 1] = self._replicas[k + 1], self._replicas[k]
                self.swaps_accepted += 1
        return accepted

    @property
    def dag(self) -> DAG:
        """The current state."""
        return self._dag(self.masks)

    def run(self, num_samples: int, warmup: int = 0, thin: int = 1, progress: bool = True) -> DAGSamples:
        """``warmup`` steps, then ``num_samples`` states recorded every ``thin`` steps (tqdm bar)."""
        from tqdm.auto import tqdm

        num_samples = check_positive_int(num_samples, "num_samples")
        warmup = check_positive_int(warmup, "warmup", minimum=0)
        thin = check_positive_int(thin, "thin")
        dags, scores = [], np.zeros(num_samples)
        with tqdm(total=warmup + num_samples * thin, desc="structure MCMC", disable=not progress, unit="step") as bar:
            for _ in range(warmup):
                self.step()
            bar.update(warmup)
            start = (self.proposed, self.accepted, self.swaps_proposed, self.swaps_accepted)
            for s in range(num_samples):
                for _ in range(thin):
                    self.step()
                dags.append(self.dag)
                scores[s] = self.log_score
                if s % 100 == 99 or s == num_samples - 1:
                    bar.update(thin * (s % 100 + 1))
        proposed, accepted = self.proposed - start[0], self.accepted - start[1]
        swaps_proposed, swaps_accepted = self.swaps_proposed - start[2], self.swaps_accepted - start[3]
        rate = accepted / proposed if proposed else float("nan")
        swap_rate = swaps_accepted / swaps_proposed if swaps_proposed else None
        return DAGSamples(tuple(dags), scores, rate, self.d, swap_rate)

    def __repr__(self) -> str:
        return (f"StructureMCMC(d={self.d}, dag={self.dag}, proposed={self.proposed}, accepted={self.accepted}, "
                f"temperatures={len(self.betas)})")
