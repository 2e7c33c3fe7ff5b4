r"""Structure graphs and the network they define (the lecture's eq. (1)).

A :class:`StructureGraph` is an acyclic graph :math:`(V, E)` with a vector of primitives
:math:`g^{j,k}` on every edge and an aggregation :math:`\mathrm{agg}_v` at every vertex.
Vertex 0 is the input :math:`x`, vertex :math:`|V| - 1` the output. The
:class:`StructureNetwork` built from it computes, in topological order,

.. math::

    f_0(x) = x, \qquad
    f_k(x) = \mathrm{agg}_k\big(\{\langle \gamma^{j,k}, g^{j,k}(f_j(x)) \rangle : (j, k) \in E\}\big),
    \qquad f = f_{|V|-1},

with :math:`\langle \gamma, g \rangle = \sum_i \gamma_i g_i` for any
:math:`\gamma^{j,k} \in [0, 1]^{K^{j,k}}` (no normalisation is applied: pass a point of the
simplex or the cube from :func:`bayesstruct.priors.structure_prior`).

>>> import torch
>>> from bayesstruct.nn import StructureGraph, StructureNetwork
>>> graph = StructureGraph(3, edges={(0, 1): ["linear_sigmoid", "linear_tanh"], (1, 2): "linear_softmax"},
...                        input_shape=(4,), vertex_shapes={1: (5,), 2: (3,)})
>>> net = StructureNetwork(graph)
>>> gamma = {(0, 1): torch.tensor([0.3, 0.7])}
>>> tuple(net(torch.randn(10, 4), gamma).shape)
(10, 3)
>>> discrete = net.discretize(gamma)            # keeps linear_tanh on (0, 1)
>>> discrete.choice[(0, 1)]
'linear_tanh'
"""

from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError
from bayesstruct.nn.primitives import PrimitiveModule, as_shape, get_primitive

__all__ = [
    "AGGREGATIONS",
    "StructureGraph",
    "StructureNetwork",
    "DiscreteStructureNetwork",
]

Edge = tuple  # (j, k)

#: aggregation names: ``"sum"`` adds the incoming edges' outputs, ``"mean"`` divides the
#: sum by the vertex's in-degree in the graph.
AGGREGATIONS = ("mean", "sum")


def _edge_key(edge: Edge) -> str:
    return f"e{edge[0]}_{edge[1]}"


def _fmt_path(vertices: Sequence[int]) -> str:
    return " -> ".join(str(v) for v in vertices)


def _edges_to_output(graph: "StructureGraph", edges: Sequence[Edge]) -> list[Edge]:
    """The edges of ``edges`` on a path of ``edges`` to the output vertex, in ``graph.edge_list`` order.

    An edge :math:`j \to k` whose head :math:`k` has no such path (every edge out of it is
    ``zero``, or leads to such vertices) cannot change :math:`f`, whatever its primitive computes.
    """
    kept = set(edges)
    live = {graph.output_vertex}
    for v in reversed(graph.topological_order):
        if v in live:
            live.update(j for (j, k) in kept if k == v)
    return [e for e in graph.edge_list if e in kept and e[1] in live]


class StructureGraph:
    r"""An acyclic graph with primitives on its edges and aggregations at its vertices.

    Parameters
    ----------
    num_vertices : int
        :math:`|V| \ge 2`; vertex 0 is the input, vertex ``num_vertices - 1`` the output.
    edges : dict of (int, int) to list of str
        ``{(j, k): ["linear", "linear_sigmoid"], ...}``: the registered primitive names
        :math:`g^{j,k}_0, \dots, g^{j,k}_{K-1}` on edge :math:`j \to k` (a single name is
        one primitive). The order fixes the order of :math:`\gamma^{j,k}`.
    aggregation : str or dict of int to str, default "sum"
        :math:`\mathrm{agg}_k` for every vertex ``k >= 1``: one name for all vertices, or a
        dict (missing vertices get ``"sum"``). See :data:`AGGREGATIONS`.
    input_shape : tuple of int
        Per-sample shape of :math:`x` (vertex 0): ``(D,)`` or ``(C, H, W)``.
    vertex_shapes : dict of int to tuple, or tuple
        Per-sample shape of every vertex ``k >= 1`` (one tuple: the same for all). Each
        primitive on an edge :math:`j \to k` is built as ``make(shape_j, shape_k[0])``, so
        ``shape_k[0]`` is its output features/channels, and it must give ``shape_k``.

    Raises
    ------
    InvalidArgumentError
        Malformed arguments, a primitive listed twice on one edge (a mixture of identical
        functions leaves :math:`\gamma^{j,k}` non-identifiable), a cycle (the message names
        its vertices), a vertex that the input does not reach (the output in particular), a
        vertex that does not reach the output (a dead end: nothing it computes enters
        :math:`f`, yet its edges would be trained, searched and counted by
        :func:`~bayesstruct.nn.operational_criteria`), an edge whose primitives disagree on
        the output shape or do not give the vertex's shape.
    UnknownNameError
        An unknown primitive or aggregation name (the message lists the valid ones).
    """

    def __init__(
        self,
        num_vertices: int,
        edges: Mapping[Edge, Sequence[str] | str],
        aggregation: str | Mapping[int, str] = "sum",
        *,
        input_shape: Sequence[int],
        vertex_shapes: Mapping[int, Sequence[int]] | Sequence[int],
    ) -> None:
        if isinstance(num_vertices, bool) or not isinstance(num_vertices, int) or num_vertices < 2:
            raise InvalidArgumentError(
                f"`num_vertices` must be an int >= 2 (vertex 0 is the input, the last the output); got {num_vertices!r}"
            )
        self.num_vertices = V = num_vertices
        self.output_vertex = V - 1
        self.edges: dict[Edge, tuple[str, ...]] = self._check_edges(edges)
        self.aggregation: dict[int, str] = self._check_aggregation(aggregation)
        self.topological_order: list[int] = self._toposort()
        self._check_reachable()
        self.input_shape = as_shape(input_shape, "input_shape")
        self.vertex_shapes: dict[int, tuple[int, ...]] = self._check_vertex_shapes(vertex_shapes)
        self._check_edge_shapes()
        rank = {v: i for i, v in enumerate(self.topological_order)}
        #: edges sorted by the topological position of their head, then tail
        self.edge_list: list[Edge] = sorted(self.edges, key=lambda e: (rank[e[1]], rank[e[0]]))
        self.in_edges: dict[int, list[Edge]] = {k: [e for e in self.edge_list if e[1] == k] for k in range(V)}

    # -- validation ------------------------------------------------------------------
    def _check_edges(self, edges: Any) -> dict[Edge, tuple[str, ...]]:
        if not isinstance(edges, Mapping) or not edges:
            raise InvalidArgumentError(
                f"`edges` must be a non-empty dict {{(j, k): [primitive names]}}; got {type(edges).__name__}"
            )
        V = self.num_vertices
        out: dict[Edge, tuple[str, ...]] = {}
        for edge, names in edges.items():
            if (
                not isinstance(edge, tuple)
                or len(edge) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < V for v in edge)
            ):
                raise InvalidArgumentError(
                    f"edge {edge!r}: an edge is a pair (j, k) of vertex indices in 0..{V - 1}"
                )
            if edge[1] == 0:
                raise InvalidArgumentError(
                    f"edge {edge}: vertex 0 is the input x and cannot have incoming edges"
                )
            if isinstance(names, str):
                names = [names]
            try:
                names = list(names)
            except TypeError:
                raise InvalidArgumentError(
                    f"edge {edge}: give a primitive name or a list of primitive names; got {names!r}"
                ) from None
            if not names:
                raise InvalidArgumentError(f"edge {edge}: give at least one primitive name")
            canon = []
            for name in names:
                try:
                    canon.append(get_primitive(name).name)
                except UnknownNameError as exc:
                    raise UnknownNameError(f"edge {edge}: {exc}") from None
            repeated = sorted({n for n in canon if canon.count(n) > 1})
            if repeated:
                counts = ", ".join(f"{n!r} {canon.count(n)} times" for n in repeated)
                raise InvalidArgumentError(
                    f"edge {edge}: the primitive list {list(names)} repeats {counts}; a mixture of identical "
                    "primitives has a non-identifiable gamma (swapping the copies' weights and their gamma entries "
                    "gives the same f), so list each primitive once"
                )
            out[(int(edge[0]), int(edge[1]))] = tuple(canon)
        return out

    def _check_aggregation(self, aggregation: Any) -> dict[int, str]:
        V = self.num_vertices
        if isinstance(aggregation, str):
            spec = {k: aggregation for k in range(1, V)}
        elif isinstance(aggregation, Mapping):
            bad = [k for k in aggregation if isinstance(k, bool) or not (isinstance(k, int) and 1 <= k < V)]
            if bad:
                raise InvalidArgumentError(
                    f"`aggregation` keys must be vertices 1..{V - 1} (vertex 0 is the input); got {bad}"
                )
            spec = {k: aggregation.get(k, "sum") for k in range(1, V)}
        else:
            raise InvalidArgumentError(
                f"`aggregation` must be a name or a dict {{vertex: name}}; got {type(aggregation).__name__}"
            )
        out = {}
        for k, name in spec.items():
            key = name.strip().lower() if isinstance(name, str) else name
            if key not in AGGREGATIONS:
                raise UnknownNameError(
                    f"vertex {k}: unknown aggregation {name!r}; valid aggregations: {', '.join(AGGREGATIONS)}"
                )
            out[k] = key
        return out

    def _toposort(self) -> list[int]:
        V = self.num_vertices
        succ: dict[int, list[int]] = {v: [] for v in range(V)}
        indeg = {v: 0 for v in range(V)}
        for j, k in self.edges:
            succ[j].append(k)
            indeg[k] += 1
        ready = sorted(v for v in range(V) if indeg[v] == 0)
        order: list[int] = []
        while ready:
            v = ready.pop(0)
            order.append(v)
            for w in sorted(succ[v]):
                indeg[w] -= 1
                if indeg[w] == 0:
                    ready.append(w)
        if len(order) < V:
            cycle = self._find_cycle(succ, set(range(V)) - set(order))
            raise InvalidArgumentError(
                f"the edges form a cycle {_fmt_path(cycle)}; a structure graph must be acyclic "
                "(remove one of these edges)"
            )
        return order

    @staticmethod
    def _find_cycle(succ: dict[int, list[int]], candidates: set[int]) -> list[int]:
        # every vertex left by Kahn's algorithm has a predecessor among them: walk backwards
        pred = {v: [u for u in candidates if v in succ[u]] for v in candidates}
        v = min(candidates)
        seen: list[int] = []
        while v not in seen:
            seen.append(v)
            v = min(pred[v])
        cycle = seen[seen.index(v):][::-1]  # forwards along the edges
        i = cycle.index(min(cycle))
        cycle = cycle[i:] + cycle[:i]
        return cycle + [cycle[0]]

    def _check_reachable(self) -> None:
        reach = {0}
        for v in self.topological_order:
            if v in reach:
                reach.update(k for (j, k) in self.edges if j == v)
        out = self.output_vertex
        if out not in reach:
            raise InvalidArgumentError(
                f"the output vertex {out} is unreachable from the input vertex 0 "
                f"(reachable: {sorted(reach)}); add a path of edges from 0 to {out}"
            )
        missing = sorted(set(range(self.num_vertices)) - reach)
        if missing:
            raise InvalidArgumentError(
                f"vertices {missing} are unreachable from the input vertex 0, so f_v is undefined there; "
                "add incoming edges or remove the vertices"
            )
        # backwards from the output: a vertex that reaches no path to it cannot affect f
        reaches_out = {out}
        for v in reversed(self.topological_order):
            if v in reaches_out:
                reaches_out.update(j for (j, k) in self.edges if k == v)
        dead = sorted(set(range(self.num_vertices)) - reaches_out)
        if dead:
            dead_edges = sorted(e for e in self.edges if e[1] in dead)
            raise InvalidArgumentError(
                f"vertices {dead} cannot reach the output vertex {out}, so they cannot affect f = f_{out}: the "
                f"edges {dead_edges} into them would be trained, counted and searched for nothing; add a path "
                f"of edges from each of them to {out}, or remove them and their edges"
            )

    def _check_vertex_shapes(self, vertex_shapes: Any) -> dict[int, tuple[int, ...]]:
        V = self.num_vertices
        shapes = {0: self.input_shape}
        if isinstance(vertex_shapes, (tuple, list, torch.Size)) and all(isinstance(s, int) for s in vertex_shapes):
            one = as_shape(tuple(vertex_shapes), "vertex_shapes")
            shapes.update({k: one for k in range(1, V)})
            return shapes
        if not isinstance(vertex_shapes, Mapping):
            raise InvalidArgumentError(
                f"`vertex_shapes` must be a dict {{vertex: shape}} for vertices 1..{V - 1} or one shape; "
                f"got {type(vertex_shapes).__name__}"
            )
        missing = [k for k in range(1, V) if k not in vertex_shapes]
        if missing:
            raise InvalidArgumentError(f"`vertex_shapes` lacks the shape of vertices {missing}")
        extra = [k for k in vertex_shapes if k not in range(1, V)]
        if extra:
            raise InvalidArgumentError(
                f"`vertex_shapes` has keys {extra} that are not vertices 1..{V - 1} (vertex 0's shape is `input_shape`)"
            )
        for k in range(1, V):
            shapes[k] = as_shape(vertex_shapes[k], f"vertex_shapes[{k}]")
        return shapes

    def _check_edge_shapes(self) -> None:
        for (j, k), names in self.edges.items():
            in_shape, want = self.vertex_shapes[j], self.vertex_shapes[k]
            got = {}
            for name in names:
                try:
                    got[name] = get_primitive(name).infer_shape(in_shape, want[0])
                except InvalidArgumentError as exc:
                    raise InvalidArgumentError(f"edge {(j, k)} from vertex shape {in_shape}: {exc}") from None
            if len(set(got.values())) > 1:
                listing = ", ".join(f"{n} -> {s}" for n, s in got.items())
                raise InvalidArgumentError(
                    f"edge {(j, k)}: its primitives disagree on the output shape ({listing}) for input shape "
                    f"{in_shape}; every primitive on an edge must give vertex {k}'s shape {want}"
                )
            (shape,) = set(got.values())
            if shape != want:
                raise InvalidArgumentError(
                    f"edge {(j, k)}: primitives {list(names)} give shape {shape} but vertex {k} has shape {want}; "
                    f"change vertex_shapes[{k}] or the primitives"
                )

    # -- helpers ---------------------------------------------------------------------
    def num_primitives(self, edge: Edge) -> int:
        """:math:`K^{j,k}`, the length of :math:`\\gamma^{j,k}`."""
        return len(self.edges[edge])

    def default_gamma(self) -> dict[Edge, torch.Tensor]:
        """One-hot :math:`\\gamma^{j,k}` of the first primitive on every edge, each ``(K,)``."""
        return {e: nn.functional.one_hot(torch.tensor(0), len(p)).to(torch.get_default_dtype())
                for e, p in self.edges.items()}

    def __repr__(self) -> str:
        edges = ", ".join(f"{e}: {list(p)}" for e, p in self.edges.items())
        return (f"StructureGraph(num_vertices={self.num_vertices}, edges={{{edges}}}, "
                f"input_shape={self.input_shape})")


class _GraphModule(nn.Module):
    """Shared forward plumbing of :class:`StructureNetwork` and :class:`DiscreteStructureNetwork`."""

    graph: StructureGraph

    def _check_x(self, x: torch.Tensor) -> int:
        shape = self.graph.input_shape
        if not torch.is_tensor(x) or x.dim() < len(shape) or tuple(x.shape[x.dim() - len(shape):]) != shape:
            got = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise InvalidArgumentError(
                f"`x` must have shape (..., {', '.join(map(str, shape))}) (the graph's input_shape); got {got}"
            )
        if not x.is_floating_point():
            raise InvalidArgumentError(f"`x` must be a floating-point tensor; got dtype {x.dtype} (use x.float())")
        # PyTorch modules do not cast their input: say so here rather than let a matmul deep inside fail
        param = next((p for p in self.parameters() if p.is_floating_point()), None)
        if param is not None and x.dtype != param.dtype:
            name = str(param.dtype).replace("torch.", "")
            method = {torch.float64: "double", torch.float32: "float", torch.float16: "half",
                      torch.bfloat16: "bfloat16"}
            to_net = f"x.{method[param.dtype]}()" if param.dtype in method else f"x.to(torch.{name})"
            to_x = f"net.{method[x.dtype]}()" if x.dtype in method else f"net.to({x.dtype})"
            raise InvalidArgumentError(
                f"`x` is {str(x.dtype).replace('torch.', '')} but the network's parameters are {name}: "
                f"call `{to_x}` or pass `{to_net}`"
            )
        if param is not None and x.device != param.device:
            raise InvalidArgumentError(
                f"`x` is on {x.device} but the network's parameters are on {param.device}: "
                f"call `net.to('{x.device}')` or pass `x.to('{param.device}')`"
            )
        return x.dim() - len(shape)

    def _aggregate(self, k: int, terms: list[torch.Tensor], lead: torch.Size, ref: torch.Tensor) -> torch.Tensor:
        g = self.graph
        if not terms:
            return ref.new_zeros(tuple(lead) + g.vertex_shapes[k])
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        if g.aggregation[k] == "mean":
            total = total / len(g.in_edges[k])
        return total


class StructureNetwork(_GraphModule):
    r"""The network :math:`f(x; w, \gamma)` of a :class:`StructureGraph` (an ``nn.Module``).

    Holds one primitive module per (edge, primitive) in ``self.ops["e{j}_{k}"][i]``.

    ``forward(x, gamma=None)``

    * ``x``: ``(..., *input_shape)``;
    * ``gamma``: dict ``{(j, k): tensor (*B, K^{j,k})}``; missing edges get the one-hot of
      their first primitive. A batch shape ``B`` (e.g. a Pyro plate of structure samples)
      broadcasts: the output is ``(*B, ..., *output_shape)``; the ``B`` of different edges
      must broadcast together;
    * returns :math:`f_{|V|-1}`.

    Every primitive is evaluated, whatever :math:`\gamma` is (a mixture network, as in
    DARTS); use :meth:`discretize` for the network of one structure.
    """

    def __init__(self, graph: StructureGraph) -> None:
        super().__init__()
        if not isinstance(graph, StructureGraph):
            raise InvalidArgumentError(f"`graph` must be a StructureGraph; got {type(graph).__name__}")
        self.graph = graph
        self.ops = nn.ModuleDict({
            _edge_key(e): nn.ModuleList(
                [get_primitive(n).make(graph.vertex_shapes[e[0]], graph.vertex_shapes[e[1]][0]) for n in names]
            )
            for e, names in graph.edges.items()
        })

    def check_gamma(self, gamma: Mapping[Edge, Any] | None) -> dict[Edge, torch.Tensor]:
        """Validate ``gamma`` and fill in the default one-hot for missing edges."""
        g = self.graph
        full = g.default_gamma()
        if gamma is None:
            return full
        if not isinstance(gamma, Mapping):
            raise InvalidArgumentError(f"`gamma` must be a dict {{(j, k): tensor (..., K)}}; got {type(gamma).__name__}")
        for e, value in gamma.items():
            if e not in g.edges:
                raise InvalidArgumentError(f"`gamma` has key {e!r}, which is not an edge; edges: {list(g.edges)}")
            try:
                t = value if torch.is_tensor(value) else torch.as_tensor(value, dtype=torch.get_default_dtype())
            except (TypeError, ValueError, RuntimeError):
                raise InvalidArgumentError(
                    f"`gamma[{e}]` must be a tensor of weights, one per primitive {list(g.edges[e])}; got {value!r}"
                ) from None
            K = g.num_primitives(e)
            if t.dim() < 1 or t.shape[-1] != K:
                raise InvalidArgumentError(
                    f"`gamma[{e}]` must have shape (..., {K}) (one weight per primitive {list(g.edges[e])}); "
                    f"got {tuple(t.shape)}"
                )
            full[e] = t
        try:
            torch.broadcast_shapes(*(t.shape[:-1] for t in full.values()))
        except RuntimeError:
            shapes = {e: tuple(t.shape[:-1]) for e, t in full.items() if t.dim() > 1}
            raise InvalidArgumentError(
                f"the batch shapes of `gamma` must broadcast together; got {shapes} (batch shape per edge)"
            ) from None
        return full

    def forward(self, x: torch.Tensor, gamma: Mapping[Edge, Any] | None = None) -> torch.Tensor:
        g = self.graph
        n_lead = self._check_x(x)
        lead = x.shape[:n_lead]
        gamma = self.check_gamma(gamma)
        f: dict[int, torch.Tensor] = {0: x}
        for k in g.topological_order[1:]:
            terms = []
            for e in g.in_edges[k]:
                ge = gamma[e].to(dtype=x.dtype, device=x.device)
                ones = (1,) * (n_lead + len(g.vertex_shapes[k]))
                mix = None
                for i, op in enumerate(self.ops[_edge_key(e)]):
                    w = ge[..., i].reshape(ge.shape[:-1] + ones)
                    term = w * op(f[e[0]])
                    if not ge.requires_grad:
                        # a primitive with weight 0 contributes exactly 0, even where its output
                        # overflows (0 * inf is NaN); with a gamma that needs gradients the product
                        # stays, since d mix / d gamma_i = op(x)
                        term = torch.where(w == 0, term.new_zeros(()), term)
                    mix = term if mix is None else mix + term
                terms.append(mix)
            f[k] = self._aggregate(k, terms, lead, x)
        return f[g.output_vertex]

    def choice(self, gamma: Mapping[Edge, Any] | None = None) -> dict[Edge, str]:
        """The argmax primitive name per edge (ties: the first); ``gamma`` without batch dims."""
        return {e: self.graph.edges[e][i] for e, i in self._argmax(gamma).items()}

    def _argmax(self, gamma: Mapping[Edge, Any] | None) -> dict[Edge, int]:
        gamma = self.check_gamma(gamma)
        out = {}
        for e, t in gamma.items():
            if t.dim() != 1:
                raise InvalidArgumentError(
                    f"`gamma[{e}]` must be one structure, shape ({self.graph.num_primitives(e)},); got {tuple(t.shape)}"
                )
            if not bool(torch.isfinite(t).all()):
                raise InvalidArgumentError(f"`gamma[{e}]` must be finite weights (torch.argmax reads NaN as the maximum); got {t.tolist()}")
            out[e] = int(torch.argmax(t))  # first maximum on ties
        return out

    def discretize(self, gamma: Mapping[Edge, Any] | None = None) -> "DiscreteStructureNetwork":
        """The network of one structure: the argmax primitive per edge, ``zero`` edges dropped.

        Returns a :class:`DiscreteStructureNetwork` holding deep copies of the chosen
        primitives of the edges in use only (:meth:`edges_in_use`: an edge whose head reaches
        the output only through ``zero`` edges is dropped too); its output equals
        ``self(x, one_hot(argmax gamma))``.
        """
        index = self._argmax(gamma)
        choice = {e: self.graph.edges[e][i] for e, i in index.items()}
        chosen = {
            e: copy.deepcopy(self.ops[_edge_key(e)][i])
            for e, i in index.items()
            if choice[e] != "zero"
        }
        return DiscreteStructureNetwork(self.graph, choice, chosen)

    def edges_in_use(self, gamma: Mapping[Edge, Any] | None = None) -> list[Edge]:
        """Edges that can change :math:`f`: a non-``zero`` primitive on a path of such edges to the output.

        All edges with a non-``zero`` primitive if ``gamma`` is None, else the argmax primitive
        of ``gamma``; an edge into a vertex whose every way to the output is ``zero`` is not in use.
        """
        if gamma is None:
            return _edges_to_output(self.graph, [e for e in self.graph.edge_list
                                                 if any(n != "zero" for n in self.graph.edges[e])])
        choice = self.choice(gamma)
        return _edges_to_output(self.graph, [e for e in self.graph.edge_list if choice[e] != "zero"])


class DiscreteStructureNetwork(_GraphModule):
    """One structure of a :class:`StructureGraph`: one primitive per edge, ``zero`` edges dropped.

    ``forward(x)``: ``(..., *input_shape) -> (..., *output_shape)``. A ``"mean"`` vertex
    still divides by its in-degree in the graph (a dropped ``zero`` edge contributes 0), so
    the output equals the :class:`StructureNetwork` at the one-hot :math:`\\gamma`; a
    vertex left without edges outputs zeros. Only the edges in use are kept: a non-``zero``
    edge :math:`j \\to k` whose head :math:`k` reaches the output only through ``zero`` edges
    cannot change :math:`f`, so it is dropped as well (its parameters are not the structure's,
    and :func:`~bayesstruct.nn.operational_criteria` does not count them).

    Attributes
    ----------
    choice : dict of (int, int) to str
        The chosen primitive of every edge of the graph (``"zero"`` included).
    ops : nn.ModuleDict
        ``"e{j}_{k}"`` to the chosen primitive module, for the edges in use only
        (:meth:`edges_in_use`).
    """

    def __init__(self, graph: StructureGraph, choice: Mapping[Edge, str], ops: Mapping[Edge, PrimitiveModule]) -> None:
        super().__init__()
        self.graph = graph
        self.choice = dict(choice)
        self.edges_in_use_list: list[Edge] = _edges_to_output(graph, [e for e in graph.edge_list if e in ops])
        self.ops = nn.ModuleDict({_edge_key(e): ops[e] for e in self.edges_in_use_list})

    def edges_in_use(self) -> list[Edge]:
        """Edges kept: their primitive is not ``zero`` and they lie on a path of such edges to the output."""
        return list(self.edges_in_use_list)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.graph
        n_lead = self._check_x(x)
        lead = x.shape[:n_lead]
        f: dict[int, torch.Tensor] = {0: x}
        for k in g.topological_order[1:]:
            terms = [self.ops[_edge_key(e)](f[e[0]]) for e in g.in_edges[k] if _edge_key(e) in self.ops]
            f[k] = self._aggregate(k, terms, lead, x)
        return f[g.output_vertex]

    def extra_repr(self) -> str:
        return "choice={" + ", ".join(f"{e}: {n!r}" for e, n in self.choice.items()) + "}"
