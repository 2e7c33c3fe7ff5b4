r"""What every structure search shares: the registry, the data split, the loss, the result.

The lecture's neural architecture search problem (Zoph & Le 2017; Liu, Simonyan & Yang
2019) is bilevel,

.. math::

    \Gamma^* = \arg\max_\Gamma Q(w^*(\Gamma), \Gamma), \qquad
    w^*(\Gamma) = \arg\max_w L(w, \Gamma),

with :math:`L` the fit on the training split and :math:`Q` the quality on a held-out
validation split. A :class:`Search` solves it over the structures of a
:class:`~bayesstruct.nn.StructureGraph` (one primitive per edge) and returns a
:class:`SearchResult`. Searches are resolved by name (``search(graph, x, y,
method="darts")``) through a registry filled by :func:`register_search`.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
from torch.nn import functional as F

from bayesstruct import _json
from bayesstruct._registry import Registry
from bayesstruct._validation import check_nonnegative, check_positive, check_seed
from bayesstruct.exceptions import ConstantStructureWarning, InvalidArgumentError
from bayesstruct.families.network import _as_input, _check_task, _edge_str, refit_discrete
from bayesstruct.nn.graph import DiscreteStructureNetwork, StructureGraph, StructureNetwork, _edges_to_output

__all__ = [
    "Search",
    "SearchResult",
    "SearchData",
    "register_search",
    "list_searches",
    "get_search",
    "search",
    "searchable_edges",
    "input_reaches_output",
    "structure_name",
    "prepare_data",
    "structure_kl",
    "train_discrete",
]

Edge = tuple


@dataclass(frozen=True)
class SearchData:
    """The training and validation splits of a search, as tensors of the graph's input shape.

    ``x_train``: ``(N_train, *input_shape)``; ``y_train``: ``(N_train,)`` (class labels,
    ``long``, or regression targets); the same for the validation split.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    task: str
    noise_scale: float

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        r"""Mean negative log-likelihood per example of the network output ``out``.

        Classification: cross-entropy of the logits ``(N, C)``. Regression: the Gaussian
        :math:`\tfrac{1}{2}((f - y)/\sigma)^2` with :math:`\sigma` = ``noise_scale`` (constants dropped).
        """
        if self.task == "classification":
            return F.cross_entropy(out, y)
        f = out[..., 0] if out.dim() == y.dim() + 1 and out.shape[-1] == 1 else out
        return 0.5 * ((f - y) / self.noise_scale).pow(2).mean()

    def score(self, net: Callable[[torch.Tensor], torch.Tensor], split: str = "val") -> tuple[float, float | None]:
        """``(loss, accuracy)`` of ``net`` on a split (``"train"`` or ``"val"``); accuracy is ``None`` for regression."""
        x, y = (self.x_val, self.y_val) if split == "val" else (self.x_train, self.y_train)
        with torch.no_grad():
            out = net(x)
            loss = float(self.loss(out, y))
            acc = float((out.argmax(-1) == y).double().mean()) if self.task == "classification" else None
        return loss, acc

    def batches(self, batch_size: int | None, generator: torch.Generator) -> Iterator[tuple[tuple, tuple]]:
        """One epoch of ``((x_train, y_train), (x_val, y_val))`` minibatch pairs, shuffled.

        The epoch has ``ceil(N_train / batch_size)`` pairs; the validation split is cycled
        (reshuffled) when it is shorter. ``batch_size=None``: one full-batch pair.
        """
        n, m = len(self.x_train), len(self.x_val)
        if batch_size is None or batch_size >= max(n, m):
            yield (self.x_train, self.y_train), (self.x_val, self.y_val)
            return
        train = torch.randperm(n, generator=generator)
        val = torch.randperm(m, generator=generator)
        pos = 0
        for start in range(0, n, batch_size):
            if pos + batch_size > m:
                val, pos = torch.randperm(m, generator=generator), 0
            ti, vi = train[start:start + batch_size], val[pos:pos + batch_size]
            pos += batch_size
            yield (self.x_train[ti], self.y_train[ti]), (self.x_val[vi], self.y_val[vi])


def check_diverged(value: float, what: str, arg: str, got: Any) -> float:
    """``value`` if finite, else an error that the training behind ``what`` diverged, naming the step size ``arg``."""
    if not math.isfinite(value):
        raise InvalidArgumentError(f"{what} is {value}: the training diverged; lower `{arg}` (got {got!r})")
    return value


def check_graph(graph: Any) -> StructureGraph:
    if not isinstance(graph, StructureGraph):
        raise InvalidArgumentError(f"`graph` must be a StructureGraph; got {type(graph).__name__}")
    return graph


def _features(x: Any, graph: StructureGraph, name: str) -> torch.Tensor:
    """``x`` as ``(N, *input_shape)`` floats, finite; errors name ``name`` (``x`` or ``val_data[0]``)."""
    if not torch.is_tensor(x):
        try:
            x = torch.as_tensor(x, dtype=torch.get_default_dtype())
        except (TypeError, ValueError, RuntimeError) as exc:
            raise InvalidArgumentError(
                f"`{name}` must be an array of numbers, shape (N, {', '.join(map(str, graph.input_shape))}); "
                f"got {type(x).__name__} ({exc})"
            ) from None
    if x.is_complex():
        raise InvalidArgumentError(f"`{name}` must hold real numbers; got dtype {x.dtype}")
    try:
        x = _as_input(x, graph)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(str(exc).replace("`x`", f"`{name}`", 1)) from None
    if x.numel() and not torch.isfinite(x).all():  # also when Pyro's validation is off
        raise InvalidArgumentError(
            f"`{name}` contains {int((~torch.isfinite(x)).sum())} NaN or infinite value(s); remove or impute them first"
        )
    return x


def _labels(y: Any, n: int, task: str, dtype: torch.dtype, name: str) -> torch.Tensor:
    try:
        t = torch.as_tensor(y)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidArgumentError(f"`{name}` must be an array of numbers, shape ({n},); got {type(y).__name__} ({exc})") from None
    if t.dim() != 1 or t.shape[0] != n:
        raise InvalidArgumentError(f"`{name}` must have shape ({n},), one entry per row of x; got {tuple(t.shape)}")
    if t.is_complex():
        raise InvalidArgumentError(f"`{name}` must hold real numbers; got dtype {t.dtype}")
    if t.is_floating_point() and not torch.isfinite(t).all():
        raise InvalidArgumentError(
            f"`{name}` contains {int((~torch.isfinite(t)).sum())} NaN or infinite value(s); remove or impute them first"
        )
    if task == "classification":
        if t.is_floating_point() and not torch.equal(t, t.round()):
            raise InvalidArgumentError(f"`{name}` must hold integer class labels for task='classification'")
        return t.long()
    return t.to(dtype)


def _check_classes(y: torch.Tensor, c: int, name: str) -> None:
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= c):
        raise InvalidArgumentError(
            f"`{name}` must hold class labels in [0, {c}) (the output vertex has {c} logits); "
            f"got labels from {int(y.min())} to {int(y.max())}"
        )


def _check_output(graph: StructureGraph, task: str) -> int | None:
    """The number of classes (classification) after checking that the output vertex fits ``task``."""
    shape = tuple(graph.vertex_shapes[graph.output_vertex])
    if task == "classification":
        if len(shape) != 1 or shape[0] < 2:
            raise InvalidArgumentError(
                f"`task`='classification' needs the output vertex to give C >= 2 logits, shape (C,); the graph's "
                f"output vertex {graph.output_vertex} has shape {shape} (for real targets pass task='regression')"
            )
        return shape[0]
    if shape not in ((), (1,)):
        raise InvalidArgumentError(
            f"`task`='regression' with y of shape (N,) needs the output vertex to have shape (1,); the graph's "
            f"output vertex {graph.output_vertex} has shape {shape}"
        )
    return None


def prepare_data(graph: StructureGraph, x: Any, y: Any, *, val_data: tuple[Any, Any] | None = None,
                 val_fraction: float = 0.5, task: str = "classification", noise_scale: float = 1.0,
                 seed: int = 0) -> SearchData:
    """Validate ``(x, y)`` and split off the validation set (or take ``val_data``).

    Without ``val_data`` a seeded random ``val_fraction`` of the rows is held out, as DARTS
    holds out half of the CIFAR-10 training set (Liu et al. 2019, sec. 3.1).
    """
    check_graph(graph)
    task = _check_task(task)
    sigma = check_positive(noise_scale, "noise_scale")
    seed = check_seed(seed)
    c = _check_output(graph, task)
    x = _features(x, graph, "x")
    if len(x) == 0:
        raise InvalidArgumentError("`x` is empty; the search needs training rows")
    y = _labels(y, len(x), task, x.dtype, "y")
    if c is not None:
        _check_classes(y, c, "y")
    try:
        frac = float(val_fraction)
    except (TypeError, ValueError):
        frac = math.nan
    if not 0.0 < frac < 1.0:
        raise InvalidArgumentError(f"`val_fraction` must be in (0, 1); got {val_fraction!r}")
    if val_data is not None:
        if not (isinstance(val_data, (tuple, list)) and len(val_data) == 2):
            got = f"a {type(val_data).__name__} of length {len(val_data)}" if isinstance(val_data, (tuple, list)) \
                else type(val_data).__name__
            raise InvalidArgumentError(f"`val_data` must be the pair (x_val, y_val); got {got}")
        xv = _features(val_data[0], graph, "val_data[0]").to(x.dtype)
        if len(xv) == 0:
            raise InvalidArgumentError("`val_data` is empty; the validation split needs at least one row")
        yv = _labels(val_data[1], len(xv), task, x.dtype, "val_data[1]")
        if c is not None:
            _check_classes(yv, c, "val_data[1]")
        xt, yt = x, y
    else:
        n_val = int(round(frac * len(x)))
        if n_val < 1 or n_val > len(x) - 1:
            raise InvalidArgumentError(
                f"`val_fraction`={frac} of {len(x)} rows leaves an empty training or validation split; "
                "pass more data or `val_data=(x_val, y_val)`"
            )
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
        xv, yv, xt, yt = x[perm[:n_val]], y[perm[:n_val]], x[perm[n_val:]], y[perm[n_val:]]
    return SearchData(xt, yt, xv, yv, task, sigma)


def searchable_edges(graph: StructureGraph) -> list[Edge]:
    """The edges with a choice (``K > 1`` primitives), in the graph's topological edge order."""
    check_graph(graph)
    return [e for e in graph.edge_list if graph.num_primitives(e) > 1]


def one_hot_gamma(graph: StructureGraph, choice: Mapping[Edge, str], dtype: torch.dtype = torch.float64) -> dict:
    """``{edge: one-hot (K,)}`` of a choice ``{edge: primitive name}`` (edges left out: their first primitive)."""
    if not isinstance(choice, Mapping):
        raise InvalidArgumentError(f"`choice` must be a dict {{edge: primitive name}}; got {type(choice).__name__}")
    out = {}
    for e, name in choice.items():
        if e not in graph.edges:
            raise InvalidArgumentError(f"`choice` names edge {e!r}, which the graph does not have; its edges: {list(graph.edges)}")
        names = graph.edges[e]
        if not isinstance(name, str) or name not in names:
            raise InvalidArgumentError(f"`choice[{e}]` must be one of {list(names)}; got {name!r}")
        out[e] = F.one_hot(torch.tensor(names.index(name)), len(names)).to(dtype)
    return out


def _simplex_point(value: Any, name: str) -> torch.Tensor:
    """``value`` as a floating tensor (K,) of probabilities; InvalidArgumentError naming ``name`` otherwise."""
    try:
        t = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidArgumentError(f"`{name}` must be probabilities (K,), a tensor or a list of floats; "
                                   f"got {type(value).__name__}") from exc
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    v = t.detach()
    if v.ndim != 1 or len(v) == 0:
        raise InvalidArgumentError(f"`{name}` must be a vector (K,) of probabilities; got shape {tuple(v.shape)}")
    if not (torch.isfinite(v).all() and (v >= 0).all() and abs(float(v.sum()) - 1.0) <= 1e-5):
        raise InvalidArgumentError(f"`{name}` must be a point of the simplex (entries >= 0 summing to 1); "
                                   f"got {v.tolist()}")
    return t


def structure_kl(p: Mapping[Edge, torch.Tensor], q: Mapping[Edge, torch.Tensor]) -> torch.Tensor:
    r"""KL between two distributions over the discrete structures, independent over edges.

    .. math::

        \mathrm{KL}(\Gamma \,\|\, \Gamma') = \sum_{(j,k)} \sum_i \gamma^{j,k}_i
        \log\frac{\gamma^{j,k}_i}{\gamma'^{j,k}_i},

    for ``p``, ``q`` dicts ``{edge: (K,)}`` of points of the simplex (``q`` clamped at
    1e-12 so that a one-hot ``q`` stays finite). Sums over the edges of ``p``.
    """
    for arg, d in (("p", p), ("q", q)):
        if not isinstance(d, Mapping):
            raise InvalidArgumentError(f"`{arg}` must be a dict {{edge: probabilities (K,)}}; got {type(d).__name__}")
    total = None
    for e, pe in p.items():
        if e not in q:
            raise InvalidArgumentError(f"`q` has no entry for edge {e!r} of `p`")
        pe, qe = _simplex_point(pe, f"p[{e}]"), _simplex_point(q[e], f"q[{e}]")
        if pe.shape != qe.shape:
            raise InvalidArgumentError(
                f"`p[{e}]` and `q[{e}]` must have the same shape (K,); got {tuple(pe.shape)} and {tuple(qe.shape)}"
            )
        qe = qe.to(pe).clamp_min(1e-12)
        term = torch.special.xlogy(pe, pe).sum() - (pe * qe.log()).sum()
        total = term if total is None else total + term
    return total if total is not None else torch.zeros(())


def structure_name(choice: Mapping[tuple, str]) -> str:
    """A readable key of one structure ``{(j, k): primitive}``: ``"0->1: linear_tanh, 1->2: linear"``.

    The edges as :meth:`SearchResult.to_dict` writes them (``"j->k"``), in the order given (the
    searched edges' topological order), as the CLI prints a choice; ``diagnostics["rewards"]``
    of :class:`RandomSearch` and :class:`Reinforce` is keyed by it.
    """
    return ", ".join(f"{_edge_str(e)}: {name}" for e, name in choice.items())


def input_reaches_output(graph: StructureGraph, choice: Mapping[Edge, str]) -> bool:
    """Whether the discrete structure ``choice`` (``{edge: primitive}``, edges left out: their
    first primitive) has a path of non-``zero`` edges from the input vertex to the output, i.e.
    whether its output can depend on the input at all."""
    check_graph(graph)
    one_hot_gamma(graph, choice)  # validates `choice`
    chosen = {e: choice.get(e, graph.edges[e][0]) for e in graph.edge_list}
    in_use = _edges_to_output(graph, [e for e, name in chosen.items() if name != "zero"])
    return any(j == 0 for j, _ in in_use)


@contextlib.contextmanager
def seeded(seed: int, stream: int = 0):
    """Run a block under ``torch.manual_seed`` without moving the caller's global RNG.

    ``stream`` 0 seeds with ``seed`` itself; another stream seeds with a number derived from
    ``(seed, stream)`` (:class:`numpy.random.SeedSequence`), so two blocks of one run -- the
    initial weights and the search loop's noise -- do not replay the same random numbers.
    """
    if stream:
        seed = int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0] >> np.uint64(1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def train_discrete(graph: StructureGraph, choice: Mapping[Edge, str], data: SearchData, *, num_steps: int,
                   lr: float, weight_decay: float, seed: int,
                   init: StructureNetwork | None = None) -> DiscreteStructureNetwork:
    r"""The network of one structure, trained on the training split (:func:`refit_discrete`).

    Weights start from ``init``'s primitives (a supernet's shared weights) or, without it,
    from a fresh initialisation under ``seed``; ``num_steps`` full-batch Adam steps then
    minimise :math:`-\log p(y \mid x, w) + \tfrac{\alpha}{2}\lVert w\rVert^2` with
    :math:`\alpha` = ``weight_decay`` (times the number of training rows: the same L2 weight per
    example as the searches' mean loss).
    """
    check_graph(graph)
    if not isinstance(data, SearchData):
        raise InvalidArgumentError(f"`data` must be a SearchData (from prepare_data); got {type(data).__name__}")
    weight_decay = check_nonnegative(weight_decay, "weight_decay")
    seed = check_seed(seed)
    if init is not None and not isinstance(init, StructureNetwork):
        raise InvalidArgumentError(f"`init` must be a StructureNetwork or None; got {type(init).__name__}")
    one_hot_gamma(graph, choice)  # validates `choice`
    dtype = data.x_train.dtype
    if init is None:
        with seeded(seed):
            init = StructureNetwork(graph).to(dtype)
    net = init.discretize(one_hot_gamma(graph, choice, dtype))
    refit_discrete(net, data.x_train, data.y_train, num_steps=num_steps, lr=lr, task=data.task,
                   noise_scale=data.noise_scale,
                   weight_precision=max(weight_decay, 1e-300) * len(data.x_train))  # refit_discrete needs alpha > 0
    return net


@dataclass(frozen=True)
class SearchResult:
    r"""What a structure search found.

    Attributes
    ----------
    method : str
        The registered name of the search (``"darts"``, ``"fbnet"``, ``"reinforce"``, ``"random"``).
    graph : StructureGraph
    gamma : dict of (j, k) to Tensor ``(K,)``
        The search's distribution over each searched edge's primitives: DARTS's
        :math:`\mathrm{softmax}(\alpha)`, FBNet's sampling probabilities
        :math:`\mathrm{softmax}(\theta)`, the RL controller's marginal choice frequencies,
        random search's share of each primitive among the structures it trained.
    network : DiscreteStructureNetwork
        The chosen structure (argmax of ``gamma``; for the controller and random search the
        best one they trained) with weights trained on the training split.
    val_loss, val_accuracy : float, float or None
        That network's mean validation NLL (:meth:`SearchData.loss`; for regression without
        the constant :math:`\tfrac12\log 2\pi\sigma^2` per example) and accuracy (``None`` for
        regression).
    history : tuple of dict
        One entry per epoch or controller update (see each search).
    seconds : float
        Wall time of the search.
    diagnostics : dict
        Method-specific numbers (latency of the choice, the final temperature, ...).
    """

    method: str
    graph: StructureGraph = field(repr=False)
    gamma: dict
    network: DiscreteStructureNetwork = field(repr=False)
    val_loss: float
    val_accuracy: float | None
    history: tuple = field(repr=False)
    seconds: float
    diagnostics: dict = field(default_factory=dict, repr=False)

    def choice(self) -> dict[Edge, str]:
        """The chosen primitive of every searched edge."""
        return {e: self.network.choice[e] for e in self.gamma}

    def to_dict(self) -> dict[str, Any]:
        def plain(v):
            if torch.is_tensor(v):
                return v.tolist()
            if isinstance(v, dict):
                return {(_edge_str(k) if isinstance(k, tuple) else k): plain(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            return v

        return {
            "method": self.method,
            "choice": {_edge_str(e): n for e, n in self.choice().items()},
            "gamma": plain(self.gamma),
            "val_loss": self.val_loss,
            "val_accuracy": self.val_accuracy,
            "seconds": self.seconds,
            "diagnostics": plain(self.diagnostics),
            "history": plain(list(self.history)),
        }

    def to_json(self, **kwargs: Any) -> str:
        return _json.dumps(self.to_dict(), **kwargs)

    def __repr__(self) -> str:
        gam = ", ".join(
            f"{_edge_str(e)}: [" + ", ".join(f"{n}={v:.3f}" for n, v in zip(self.graph.edges[e], g.tolist())) + "]"
            for e, g in self.gamma.items()
        )
        acc = "" if self.val_accuracy is None else f", val_accuracy={self.val_accuracy:.4f}"
        return (f"SearchResult(method={self.method!r}, choice={{{', '.join(f'{_edge_str(e)}: {n!r}' for e, n in self.choice().items())}}}, "
                f"val_loss={self.val_loss:.4f}{acc}, seconds={self.seconds:.1f}, gamma={{{gam}}})")


class Search:
    """Base class of the structure searches; subclass it and decorate with :func:`register_search`.

    Method options go to the constructor; the data and the run settings to :meth:`run`.
    """

    name: str = "search"

    def run(self, graph: StructureGraph, x: Any, y: Any, *, val_data: tuple[Any, Any] | None = None,
            val_fraction: float = 0.5, task: str = "classification", noise_scale: float = 1.0, seed: int = 0,
            progress: bool = True) -> SearchResult:
        """Search the structures of ``graph`` on ``(x, y)``.

        Parameters
        ----------
        graph : StructureGraph
            The search space: every edge with more than one primitive is searched.
        x : ``(N, *input_shape)`` or flat ``(N, prod(input_shape))``; y : ``(N,)``
            Training data; class labels for ``task="classification"`` (the output vertex
            gives the logits), targets for ``"regression"``.
        val_data : (x_val, y_val), optional
            The validation split of :math:`Q`; default: a seeded ``val_fraction`` of ``(x, y)``.
        task, noise_scale
            The likelihood (Gaussian noise scale for regression), as in :func:`~bayesstruct.families.network_model`.
        seed : int
            Seeds the split, the initial weights and every random draw of the search.
        progress : bool
            A tqdm bar.

        Warns
        -----
        ConstantStructureWarning
            If the structure found has no path of non-``zero`` edges from the input to the
            output (:func:`input_reaches_output`): a constant predictor, which strong latency
            pressure (FBNet) or a reward that ignores the data can select.
        """
        check_graph(graph)
        if not searchable_edges(graph):
            raise InvalidArgumentError(
                "`graph` has nothing to search: every edge carries one primitive; give an edge a list of "
                "alternatives, e.g. {(0, 1): ['linear_relu', 'linear_tanh', 'zero']}"
            )
        seed = check_seed(seed)
        data = prepare_data(graph, x, y, val_data=val_data, val_fraction=val_fraction, task=task,
                            noise_scale=noise_scale, seed=seed)
        result = self._run(graph, data, seed=seed, progress=bool(progress))
        choice = result.choice()
        if not input_reaches_output(graph, choice):
            hint = "; lower `latency_exponent` or `latency_weight`" if self.name == "fbnet" else ""
            warnings.warn(
                f"the structure {self.name} found, {structure_name(choice)}, "
                "has no path of non-zero edges from the input to the output: its output does not depend on x (a "
                f"constant predictor); see result.gamma for the runners-up{hint}", ConstantStructureWarning,
                stacklevel=2)
        return result

    def _run(self, graph: StructureGraph, data: SearchData, *, seed: int, progress: bool) -> SearchResult:
        raise NotImplementedError


_REGISTRY = Registry(Search, "search method", "bayesstruct.search.register_search")


def register_search(name: str) -> Callable[[type[Search]], type[Search]]:
    """Register a :class:`Search` subclass under ``name`` (case-insensitive)."""
    return _REGISTRY.register(name)


def list_searches() -> list[str]:
    """The registered search names."""
    return _REGISTRY.names()


def get_search(method: str | Search, **options: Any) -> Search:
    """A search instance: ``method`` itself, or the one registered as ``method`` built with ``options``."""
    return _REGISTRY.create(method, **options)


def search(graph: StructureGraph, x: Any, y: Any, method: str | Search = "darts", *,
           val_data: tuple[Any, Any] | None = None, val_fraction: float = 0.5, task: str = "classification",
           noise_scale: float = 1.0, seed: int = 0, progress: bool = True, **options: Any) -> SearchResult:
    """Search the structures of ``graph``: ``get_search(method, **options).run(graph, x, y, ...)``.

    >>> import torch
    >>> from bayesstruct.nn import StructureGraph
    >>> from bayesstruct.search import search
    >>> graph = StructureGraph(3, {(0, 1): ["linear_tanh", "zero"], (1, 2): "linear"},
    ...                        input_shape=(2,), vertex_shapes={1: (8,), 2: (2,)})
    >>> x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    >>> y = (x[:, 0] * x[:, 1] > 0).long()              # XOR: a linear or zero hidden edge is at chance
    >>> result = search(graph, x, y, "darts", num_epochs=20, warmup_epochs=10, batch_size=16, lr=0.1,
    ...                 arch_lr=0.01, progress=False)
    >>> result.choice()
    {(0, 1): 'linear_tanh'}
    """
    return get_search(method, **options).run(graph, x, y, val_data=val_data, val_fraction=val_fraction, task=task,
                                             noise_scale=noise_scale, seed=seed, progress=progress)
