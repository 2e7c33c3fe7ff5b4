r"""Figures of the structure :math:`\Gamma` as a Pyro latent (structure-graph networks).

The lecture's structure figures for a :class:`~bayesstruct.nn.StructureGraph` fitted with
:func:`~bayesstruct.families.network.fit_structure_posterior`:

=====================================  =====================================================
:func:`plot_gamma_simplex`             samples of :math:`\gamma^{j,k}` of an edge with three
                                       primitives on the 2-simplex (ternary plot), with prior
                                       samples underneath
:func:`plot_structure_graph`           the DAG, one curve per (edge, primitive), line width
                                       growing linearly with :math:`\mathbb E[\gamma]`
:func:`plot_elbo_temperature`          the ELBO (a bound on :math:`\log p(y \mid x,
                                       \lambda_{\mathrm{temp}})`) against the prior temperature
=====================================  =====================================================

Drawing conventions as in :mod:`bayesstruct.plots`: ``ax=None`` draws a new figure, every
function returns the Axes, nothing calls ``plt.show``, bad input raises
:class:`~bayesstruct.exceptions.InvalidArgumentError` naming the argument.

The computations that feed the figures live in :mod:`bayesstruct.families.network`
(:func:`~bayesstruct.families.network.sample_gamma_posterior`: the fit's draws of
:math:`\Gamma \sim q`; :func:`~bayesstruct.families.network.elbo_temperature_sweep`: refits at
several temperatures); they are re-exported here for convenience. The ternary
projection :func:`to_ternary` / :func:`draw_simplex` is shared with the prior figures of
``tutorials/02_structure_priors.py``.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.lines import Line2D

from bayesstruct._validation import check_positive, check_positive_int
from bayesstruct.exceptions import InvalidArgumentError
# computations, not drawings: they live with the family; re-exported for `from bayesstruct.plots import ...`
from bayesstruct.families.network import TemperatureSweepRow, elbo_temperature_sweep, sample_gamma_posterior
from bayesstruct.plots import style as _style

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from bayesstruct.families.network import StructurePosterior
    from bayesstruct.nn import StructureGraph

__all__ = [
    "SIMPLEX_CORNERS",
    "to_ternary",
    "draw_simplex",
    "sample_gamma_posterior",
    "plot_gamma_simplex",
    "plot_structure_graph",
    "TemperatureSweepRow",
    "elbo_temperature_sweep",
    "plot_elbo_temperature",
]

#: corners of the 2-simplex in the plane: vertex e_k (``gamma = one_hot(k)``) is row k
SIMPLEX_CORNERS = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])

#: label offsets (dx, dy, ha, va) of the three corners in :func:`draw_simplex`: outside the triangle
_CORNER_LABEL_OFFSETS = [(-0.03, 0.0, "right", "top"), (0.03, 0.0, "left", "top"), (0.0, 0.03, "center", "bottom")]

_POSTERIOR_COLOR = _style.color(0)   # Okabe-Ito blue
_PRIOR_COLOR = "0.4"                  # dark enough to see on the vertices and edges
_MEAN_COLOR = _style.color(3)        # vermillion
_BEST_COLOR = _style.color(3)
_SEED_COLOR = "0.25"
_SIMPLEX_ATOL = 1e-3  # float32 guide samples sum to 1 within ~1e-6; 1e-3 only rejects non-simplex input


# --------------------------------------------------------------------------------------
# ternary projection
# --------------------------------------------------------------------------------------


def to_ternary(gamma: Any) -> np.ndarray:
    r"""Points of the 2-simplex in barycentric coordinates, as points of the plane.

    :math:`(\gamma_1, \gamma_2, \gamma_3) \mapsto \sum_k \gamma_k c_k` with the corners
    :math:`c_k` of :data:`SIMPLEX_CORNERS` (an equilateral triangle with side 1), so the
    vertex :math:`e_k` maps to :math:`c_k` and the barycentre to the triangle's centre.

    Parameters
    ----------
    gamma : array-like ``(..., 3)``

    Returns
    -------
    ndarray ``(..., 2)``

    Examples
    --------
    >>> to_ternary([[1, 0, 0], [0, 0, 1]]).round(3).tolist()
    [[0.0, 0.0], [0.5, 0.866]]
    """
    g = _as_numpy(gamma, "gamma")
    if g.ndim < 1 or g.shape[-1] != 3:
        raise InvalidArgumentError(
            f"`gamma` must have shape (..., 3): the 2-simplex has three vertices; got shape {g.shape}"
        )
    return g @ SIMPLEX_CORNERS


def draw_simplex(ax: "Axes", labels: Sequence[str] = ("$e_1$", "$e_2$", "$e_3$"), *, fontsize: float = 11,
                 pad: float = 0.12) -> "Axes":
    """Draw the triangle of the 2-simplex into ``ax`` with a label at each vertex, axes off.

    ``labels[k]`` is written next to the corner ``SIMPLEX_CORNERS[k]`` (the point
    ``gamma = e_k``), outside the triangle; the Axes gets an equal aspect ratio and limits
    ``pad`` beyond the triangle on each side (widen it for long labels).
    """
    labels = [str(s) for s in labels]
    if len(labels) != 3:
        raise InvalidArgumentError(f"`labels` must name the three vertices of the 2-simplex; got {len(labels)}")
    ax.add_patch(plt.Polygon(SIMPLEX_CORNERS, fill=False, color="0.3", lw=1))
    for k, (dx, dy, ha, va) in enumerate(_CORNER_LABEL_OFFSETS):
        ax.text(SIMPLEX_CORNERS[k, 0] + dx, SIMPLEX_CORNERS[k, 1] + dy, labels[k], ha=ha, va=va, fontsize=fontsize)
    pad = check_positive(pad, "pad")
    ax.set_xlim(-pad, 1 + pad)
    ax.set_ylim(-0.17, 1.06)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def _as_numpy(value: Any, name: str) -> np.ndarray:
    if torch.is_tensor(value):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"`{name}` must be an array of numbers; got {type(value).__name__} ({exc})"
        ) from None
    if arr.size and not np.isfinite(arr).all():
        raise InvalidArgumentError(f"`{name}` contains NaN or infinite values")
    return arr


def _check_simplex_samples(samples: Any, name: str, num_primitives: int | None = None) -> np.ndarray:
    """``(S, K)`` samples on the (K-1)-simplex: finite, non-negative, rows summing to 1."""
    arr = _as_numpy(samples, name)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise InvalidArgumentError(f"`{name}` must be a non-empty array (num_samples, K); got shape {arr.shape}")
    if num_primitives is not None and arr.shape[1] != num_primitives:
        raise InvalidArgumentError(
            f"`{name}` must have {num_primitives} columns (one per primitive; the ternary plot shows an edge with "
            f"exactly 3 primitives on the 2-simplex); got {arr.shape[1]}"
        )
    if (arr < 0).any():
        raise InvalidArgumentError(f"`{name}` has negative entries (min {arr.min():.3g}); gamma must be >= 0")
    sums = arr.sum(-1)
    if np.abs(sums - 1).max() > _SIMPLEX_ATOL:
        raise InvalidArgumentError(
            f"`{name}` rows must sum to 1 (points of the simplex); got sums in [{sums.min():.4g}, {sums.max():.4g}]"
        )
    return arr


# --------------------------------------------------------------------------------------
# the posterior over Gamma on the simplex
# --------------------------------------------------------------------------------------


def _three_primitive_edge(graph: "StructureGraph", edge: Any) -> tuple[int, int]:
    if edge is None:
        edges = [e for e in graph.edge_list if graph.num_primitives(e) == 3]
        if len(edges) != 1:
            raise InvalidArgumentError(
                f"`edge`: the ternary plot shows one edge with 3 primitives; the graph has "
                f"{len(edges)} such edges ({edges}); pass edge=(j, k)"
            )
        return edges[0]
    edge = tuple(edge) if isinstance(edge, (tuple, list)) else edge
    if edge not in graph.edges:
        raise InvalidArgumentError(f"`edge` {edge!r} is not an edge of the graph; edges: {graph.edge_list}")
    K = graph.num_primitives(edge)
    if K != 3:
        raise InvalidArgumentError(
            f"`edge` {edge} has {K} primitives {list(graph.edges[edge])}; the 2-simplex shows exactly 3"
        )
    return edge


def plot_gamma_simplex(samples_or_posterior: Any, ax: "Axes | None" = None, *, edge: tuple[int, int] | None = None,
                       primitives: Sequence[str] | None = None, prior: Any = None, kind: str = "scatter",
                       num_samples: int | None = None, seed: int = 0, near_vertex: float = 0.9,
                       title: str | None = None) -> "Axes":
    r"""The distribution of :math:`\gamma^{j,k}` of an edge with three primitives on the 2-simplex.

    The lecture's ternary picture of a structure vector: :math:`\gamma` is drawn at
    :math:`\sum_k \gamma_k c_k` (:func:`to_ternary`), so the vertex :math:`c_k` is "only
    primitive :math:`k`" and the centre the uniform mixture. The vertices are labelled with
    the primitive names and the share of samples with :math:`\gamma_k >` ``near_vertex``,
    written ``P(γ_k > 0.9) = 96%`` (a scatter hides how many pile up in a corner); the sample
    mean :math:`\mathbb E[\gamma]` is a hollow vermillion diamond, so the draws under it stay
    visible, and the legend gives its value in the order of the vertices. Prior samples,
    when given, are drawn first in dark grey, so the figure shows how the data moved the
    mass. The legend's handles have a fixed size (not the samples' tiny dots).

    Parameters
    ----------
    samples_or_posterior : array-like ``(S, 3)`` or StructurePosterior
        Points of the 2-simplex (non-negative, rows summing to 1), e.g. posterior draws; or a
        fitted posterior, whose draws of :math:`\Gamma \sim q` (``posterior.gamma_samples``) come
        from :func:`~bayesstruct.families.network.sample_gamma_posterior` (``num_samples``, ``seed``).
    ax : matplotlib Axes, optional
    edge : (j, k), optional
        With a posterior: the edge to show (default: the graph's only edge with 3 primitives).
    primitives : sequence of 3 str, optional
        Vertex labels (default: the edge's primitive names, or ``e_1, e_2, e_3`` for bare samples).
    prior : array-like ``(M, 3)`` or distribution, optional
        Prior samples, or a distribution with ``.sample`` (e.g.
        ``structure_prior("simplex_interior", torch.ones(3) / 3, 0.1)``) to draw ``num_samples`` from.
    kind : {"scatter", "density"}
        ``"scatter"``: one point per sample; ``"density"``: a hexagonal histogram (log colour
        scale) of the posterior samples -- better when many samples sit in a corner.
    num_samples : int, optional
        Draws from a posterior (default: all it holds) or a prior distribution (default 2,000).
    seed : int
        Seeds the subset of posterior draws.
    near_vertex : float in (0, 1)
        Threshold of the per-vertex shares.
    title : str, optional

    Returns
    -------
    matplotlib Axes
        ``ax.collections``: the prior ``PathCollection`` (if any, ``label="prior"``), then the
        posterior's (``PathCollection`` with one point per sample, or a ``PolyCollection``
        for ``kind="density"``, ``label="posterior"``); the mean is the line labelled
        ``"E[gamma]"`` (its legend text reads ``E[γ] = (...)``); the three vertex labels are
        the first texts, ``"{primitive}\n$P(\gamma_k > 0.9)$ = 96%"``.
    """
    from bayesstruct.families.network import StructurePosterior

    if kind not in ("scatter", "density"):
        raise InvalidArgumentError(f"`kind` must be 'scatter' or 'density'; got {kind!r}")
    if not (isinstance(near_vertex, numbers.Real) and 0 < near_vertex < 1):
        raise InvalidArgumentError(f"`near_vertex` must be a number in (0, 1); got {near_vertex!r}")
    num_samples = None if num_samples is None else check_positive_int(num_samples, "num_samples")
    if isinstance(samples_or_posterior, StructurePosterior):
        edge = _three_primitive_edge(samples_or_posterior.graph, edge)
        draws = sample_gamma_posterior(samples_or_posterior, num_samples, seed=seed)[edge]
        names = list(samples_or_posterior.graph.edges[edge])
        samples = _check_simplex_samples(draws, "samples_or_posterior", 3)
        default_title = (f"posterior of $\\Gamma^{{{edge[0]},{edge[1]}}}$, "
                         f"$\\lambda_{{\\mathrm{{temp}}}} = {samples_or_posterior.temperature:g}$")
    else:
        if edge is not None:
            raise InvalidArgumentError(
                "`edge` selects an edge of a StructurePosterior; with bare samples leave it None"
            )
        samples = _check_simplex_samples(samples_or_posterior, "samples_or_posterior", 3)
        names = ["$e_1$", "$e_2$", "$e_3$"]
        default_title = "samples of $\\gamma$ on the 2-simplex"
    if primitives is not None:
        names = [str(p) for p in primitives]
        if len(names) != 3:
            raise InvalidArgumentError(f"`primitives` must name the 3 vertices; got {len(names)} names")
    prior_samples = None
    if prior is not None:
        if hasattr(prior, "sample") and callable(prior.sample):
            with torch.random.fork_rng():
                torch.manual_seed(int(seed))
                prior = prior.sample((2000 if num_samples is None else num_samples,))
        prior_samples = _check_simplex_samples(prior, "prior", 3)

    if ax is None:
        _, ax = plt.subplots(figsize=(5.6, 4.8), layout="constrained")
    share = (samples > near_vertex).mean(0)
    labels = [f"{n}\n$P(\\gamma_k > {near_vertex:g})$ = {100 * s:.0f}%" for n, s in zip(names, share)]
    draw_simplex(ax, labels, fontsize=9, pad=0.3)
    handles = []
    if prior_samples is not None:
        xy = to_ternary(prior_samples)
        ax.scatter(xy[:, 0], xy[:, 1], s=5, alpha=0.5, color=_PRIOR_COLOR, lw=0, label="prior", zorder=1)
        handles.append(Line2D([], [], ls="", marker="o", ms=5, color=_PRIOR_COLOR, label="prior samples"))
    xy = to_ternary(samples)
    if kind == "scatter":
        ax.scatter(xy[:, 0], xy[:, 1], s=5, alpha=0.4, color=_POSTERIOR_COLOR, lw=0, label="posterior", zorder=2)
        handles.append(Line2D([], [], ls="", marker="o", ms=5, color=_POSTERIOR_COLOR, label="posterior samples"))
    else:
        hb = ax.hexbin(xy[:, 0], xy[:, 1], gridsize=30, extent=(0, 1, 0, SIMPLEX_CORNERS[2, 1]), mincnt=1,
                       bins="log", cmap="Blues", zorder=2)
        hb.set_label("posterior")
        ax.figure.colorbar(hb, ax=ax, label="posterior samples per hexagon", shrink=0.7)
        handles.append(Line2D([], [], ls="", marker="h", ms=8, color=_POSTERIOR_COLOR,
                              label="posterior (count, log scale)"))
    mean = samples.mean(0)
    m = to_ternary(mean)
    (mean_line,) = ax.plot([m[0]], [m[1]], "D", mfc="none", mec=_MEAN_COLOR, ms=8, mew=1.6, zorder=3,
                           label="E[gamma]")
    handles.append(mean_line)
    # the legend names E[γ] in Greek, with its coordinates in the order of the vertices
    legend_labels = [h.get_label() for h in handles[:-1]]
    legend_labels.append("E[γ] = (" + ", ".join(f"{v:.2f}" for v in mean) + ")  for  (" + ", ".join(names) + ")")
    ax.legend(handles, legend_labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize="small",
              frameon=False, ncol=1)
    ax.set_title(default_title if title is None else title, fontsize=10)
    return ax


# --------------------------------------------------------------------------------------
# the structure graph
# --------------------------------------------------------------------------------------


def _check_gamma_means(graph: "StructureGraph", gamma: Any) -> dict[tuple[int, int], np.ndarray]:
    if not isinstance(gamma, Mapping):
        raise InvalidArgumentError(
            f"`posterior_mean_gamma` must be a dict {{(j, k): (K,) values}}; got {type(gamma).__name__}"
        )
    unknown = [e for e in gamma if e not in graph.edges]
    if unknown:
        raise InvalidArgumentError(
            f"`posterior_mean_gamma` has keys {unknown} that are not edges; edges: {graph.edge_list}"
        )
    out = {}
    for e in graph.edge_list:
        K = graph.num_primitives(e)
        if e not in gamma:
            if K == 1:
                out[e] = np.ones(1)
                continue
            raise InvalidArgumentError(f"`posterior_mean_gamma` lacks edge {e} (primitives {list(graph.edges[e])})")
        g = _as_numpy(gamma[e], f"posterior_mean_gamma[{e}]")
        if g.shape != (K,):
            raise InvalidArgumentError(
                f"`posterior_mean_gamma[{e}]` must have shape ({K},), one value per primitive "
                f"{list(graph.edges[e])}; got {g.shape}"
            )
        if (g < 0).any() or (g > 1 + _SIMPLEX_ATOL).any():
            raise InvalidArgumentError(f"`posterior_mean_gamma[{e}]` must lie in [0, 1]; got {g.tolist()}")
        out[e] = g
    return out


def _vertex_depths(graph: "StructureGraph") -> dict[int, int]:
    """Longest-path depth of every vertex from the input (0 at vertex 0)."""
    depth = {v: 0 for v in range(graph.num_vertices)}
    for v in graph.topological_order:
        for (j, k) in graph.edge_list:
            if j == v:
                depth[k] = max(depth[k], depth[v] + 1)
    return depth


def _layout(graph: "StructureGraph") -> dict[int, np.ndarray]:
    depth = _vertex_depths(graph)
    pos = {}
    for d in sorted(set(depth.values())):
        col = [v for v in graph.topological_order if depth[v] == d]
        for i, v in enumerate(col):
            pos[v] = np.array([float(d), (len(col) - 1) / 2 - i])
    return pos


def plot_structure_graph(graph: "StructureGraph | StructurePosterior", posterior_mean_gamma: Any = None,
                         ax: "Axes | None" = None, *, max_width: float = 8.0, min_width: float = 0.4,
                         show_labels: bool = True) -> "Axes":
    r"""The structure graph, one curve per (edge, primitive) with width growing with :math:`\mathbb E[\gamma]`.

    Vertices are placed by topological depth (the longest path from the input, left to
    right); the :math:`K^{j,k}` primitives of edge :math:`j \to k` are drawn as arcs
    fanned out between the two vertices, of width ``min_width + max_width * E[gamma_i]``
    points (affine in :math:`\mathbb E[\gamma]`, so a primitive with weight 0 stays visible
    as a hairline), coloured (Okabe-Ito) *and* line-styled by primitive name, so that the
    primitives read in greyscale. Each arc is labelled with its primitive and
    :math:`\mathbb E[\gamma_i]`. Each vertex shows its index and per-sample shape. The legend
    shows each primitive with a line of fixed width (not its arc's), so a hairline's entry
    stays readable. No graphviz needed.

    Parameters
    ----------
    graph : StructureGraph or StructurePosterior
        A posterior supplies both the graph and its ``posterior_mean_gamma``.
    posterior_mean_gamma : dict of (j, k) to array-like ``(K,)``, optional
        :math:`\mathbb E[\gamma^{j,k}]` in ``[0, 1]`` (edges with one primitive may be left
        out); default: every primitive drawn with the same width, labels without values.
    ax : matplotlib Axes, optional
    max_width, min_width : float
        Line width in points of :math:`\mathbb E[\gamma] = 1` (plus ``min_width``) and of 0.
    show_labels : bool
        Write the primitive names (and values) on the arcs.

    Returns
    -------
    matplotlib Axes
        One ``Line2D`` per (edge, primitive) with ``gid`` ``"{j}->{k}:{primitive}"``;
        vertex labels are texts ``"{v}"``.
    """
    from bayesstruct.families.network import StructurePosterior
    from bayesstruct.nn import StructureGraph

    if isinstance(graph, StructurePosterior):
        if posterior_mean_gamma is None:
            posterior_mean_gamma = graph.posterior_mean_gamma
        graph = graph.graph
    if not isinstance(graph, StructureGraph):
        raise InvalidArgumentError(
            f"`graph` must be a StructureGraph or a StructurePosterior; got {type(graph).__name__}"
        )
    max_width = check_positive(max_width, "max_width")
    if not (isinstance(min_width, numbers.Real) and min_width >= 0):
        raise InvalidArgumentError(f"`min_width` must be a number >= 0; got {min_width!r}")
    gamma = None if posterior_mean_gamma is None else _check_gamma_means(graph, posterior_mean_gamma)
    pos = _layout(graph)
    names = sorted({n for p in graph.edges.values() for n in p})
    colors = {n: _style.primitive_style(n)["color"] for n in names}  # keyed by name: as in the search figures
    styles = {n: _style.primitive_style(n)["linestyle"] for n in names}
    if ax is None:
        depth = max(int(p[0]) for p in pos.values())
        height = max(abs(p[1]) for p in pos.values())
        _, ax = plt.subplots(figsize=(3.2 + 3.0 * depth, 2.2 + 1.6 * height), layout="constrained")
    t = np.linspace(0.0, 1.0, 50)[:, None]
    seen: set[str] = set()
    for e in graph.edge_list:
        a, b = pos[e[0]], pos[e[1]]
        d = b - a
        normal = np.array([-d[1], d[0]]) / np.linalg.norm(d)
        K = graph.num_primitives(e)
        span = 0.45 * np.linalg.norm(d)
        for i, name in enumerate(graph.edges[e]):
            offset = (i - (K - 1) / 2) * (2 * span / max(K - 1, 1)) if K > 1 else 0.0
            ctrl = (a + b) / 2 + offset * normal
            curve = (1 - t) ** 2 * a + 2 * t * (1 - t) * ctrl + t ** 2 * b  # quadratic Bezier
            value = None if gamma is None else float(gamma[e][i])
            width = min_width + max_width * (0.25 if value is None else value)
            label = name if name not in seen else "_nolegend_"
            seen.add(name)
            (line,) = ax.plot(curve[:, 0], curve[:, 1], ls=styles[name], color=colors[name], lw=width, alpha=0.85,
                              solid_capstyle="butt", dash_capstyle="butt", zorder=1, label=label)
            line.set_gid(f"{e[0]}->{e[1]}:{name}")
            if show_labels:
                mid = curve[len(curve) // 2]
                text = name if value is None else f"{name}\n{value:.2f}"
                ax.text(mid[0], mid[1], text, ha="center", va="center", fontsize=8, zorder=3,
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    for v, p in pos.items():
        ax.scatter([p[0]], [p[1]], s=700, color="white", edgecolors="0.2", linewidths=1.5, zorder=4)
        ax.text(p[0], p[1], str(v), ha="center", va="center", fontsize=11, zorder=5)
        role = "x " if v == 0 else ("f " if v == graph.output_vertex else "")
        ax.text(p[0], p[1] - 0.22, f"{role}{graph.vertex_shapes[v]}", ha="center", va="top", fontsize=8,
                color="0.3", zorder=5)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 0.4, max(xs) + 0.4)
    ax.set_ylim(min(ys) - 0.45, max(ys) + 0.4)
    ax.axis("off")
    handles = [Line2D([], [], color=colors[n], ls=styles[n], lw=2.5, label=n) for n in names]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=min(len(names), 4),
              fontsize="small", frameon=False, handlelength=3.0)
    ax.set_title("structure graph: line width grows with E[γ] of each primitive" if gamma is not None
                 else "structure graph: primitives per edge", fontsize=10)
    return ax


# --------------------------------------------------------------------------------------
# the ELBO against the prior temperature
# --------------------------------------------------------------------------------------


def plot_elbo_temperature(temperatures: Any, elbos: Any = None, stderr: Any = None, ax: "Axes | None" = None, *,
                          num_stderr: float = 2.0, logx: bool = True, label: str | None = None,
                          show_seeds: bool = True, title: str | None = None) -> "Axes":
    r"""The ELBO against the prior temperature :math:`\lambda_{\mathrm{temp}}`, the highest mean marked.

    The star marks the temperature with the highest mean ELBO and is labelled "highest
    mean", not "best": with a few seeds the difference to the runner-up is often inside the
    error bars. With sweep rows that hold the ELBO of each seed (``row.elbos``) and
    ``show_seeds``, those values are drawn as small hollow grey circles beside the mean, so
    a reader can see how far the seeds disagree (a standard error from two seeds is itself
    unreliable).

    Parameters
    ----------
    temperatures : array-like ``(T,)``, or a list of TemperatureSweepRow / StructurePosterior
        With rows (from :func:`elbo_temperature_sweep`) or posteriors, ``elbos`` and
        ``stderr`` come from them and must be left None.
    elbos : array-like ``(T,)``
        ELBO (nats) per temperature.
    stderr : array-like ``(T,)``, optional
        Standard errors; drawn as error bars of ``num_stderr`` standard errors.
    ax : matplotlib Axes, optional
    num_stderr : float
    logx : bool
        Logarithmic temperature axis (temperatures usually span decades).
    label : str, optional
        Legend label of the curve.
    show_seeds : bool
        Draw each seed's ELBO (only with rows that carry ``elbos``).
    title : str, optional
        Axes title (e.g. to say how many SVI steps each fit ran).

    Returns
    -------
    matplotlib Axes
        One ``ErrorbarContainer`` (``ax.containers[0]``) with the points sorted by
        temperature, a star at the highest mean ELBO (the line whose label starts with
        ``"best"``, for backward compatibility; its legend text reads "highest mean") and,
        with seeds drawn, one line with ``gid="seeds"`` holding every (temperature, ELBO) pair.
    """
    from bayesstruct.families.network import StructurePosterior

    items = list(temperatures) if isinstance(temperatures, (list, tuple)) else None
    if items and all(isinstance(r, (TemperatureSweepRow, StructurePosterior)) for r in items):
        if elbos is not None or stderr is not None:
            raise InvalidArgumentError("with sweep rows or posteriors, leave `elbos` and `stderr` None")
        temps = np.array([r.temperature for r in items], dtype=float)
        vals = np.array([r.elbo for r in items], dtype=float)
        ses = [getattr(r, "elbo_stderr", None) for r in items]
        se = None if all(s is None for s in ses) else np.array([0.0 if s is None else s for s in ses])
        per_seed = [tuple(getattr(r, "elbos", None) or ()) for r in items]
    else:
        per_seed = None
        if elbos is None:
            raise InvalidArgumentError("`elbos` is required with plain temperatures (or pass sweep rows/posteriors)")
        temps = _as_numpy(temperatures, "temperatures")
        vals = _as_numpy(elbos, "elbos")
        se = None if stderr is None else _as_numpy(stderr, "stderr")
        if temps.ndim != 1 or temps.size == 0:
            raise InvalidArgumentError(f"`temperatures` must be a non-empty 1-D array; got shape {temps.shape}")
        if vals.shape != temps.shape:
            raise InvalidArgumentError(
                f"`elbos` must have one value per temperature: {temps.size}; got shape {vals.shape}"
            )
        if se is not None and se.shape != temps.shape:
            raise InvalidArgumentError(
                f"`stderr` must have one value per temperature: {temps.size}; got shape {se.shape}"
            )
    if (temps <= 0).any():
        raise InvalidArgumentError(f"`temperatures` must be > 0; got {temps.tolist()}")
    if se is not None and (se < 0).any():
        raise InvalidArgumentError(f"`stderr` must be >= 0; got {se.tolist()}")
    if not (isinstance(num_stderr, numbers.Real) and num_stderr >= 0):
        raise InvalidArgumentError(f"`num_stderr` must be a non-negative number; got {num_stderr!r}")
    if not isinstance(show_seeds, bool):
        raise InvalidArgumentError(f"`show_seeds` must be True or False; got {show_seeds!r}")
    order = np.argsort(temps, kind="stable")
    temps, vals = temps[order], vals[order]
    se = None if se is None else se[order]
    if per_seed is not None:
        per_seed = [per_seed[i] for i in order]
    num_seeds = {len(v) for v in per_seed} if per_seed is not None else set()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    seeds = f"{num_seeds.pop()} seeds" if len(num_seeds) == 1 and 0 not in num_seeds else "seeds"
    default = "mean ELBO" if se is None else f"mean ELBO ± {num_stderr:g} s.e. over {seeds}"
    container = ax.errorbar(temps, vals, yerr=None if se is None else num_stderr * se, fmt="o-", ms=5, capsize=3,
                            lw=1.2, color=_POSTERIOR_COLOR, label=default if label is None else label)
    handles, texts = [container], [container.get_label()]
    if show_seeds and per_seed is not None and any(per_seed):
        sx = np.concatenate([np.full(len(v), t) for t, v in zip(temps, per_seed)])
        sy = np.concatenate([np.asarray(v, dtype=float) for v in per_seed])
        # a small shift to the right (multiplicative on a log axis) keeps the seeds off the mean's bar
        sx = sx * 1.08 if logx else sx + 0.015 * (float(np.ptp(temps)) or 1.0)
        (seed_line,) = ax.plot(sx, sy, "o", ms=5, mfc="none", mec=_SEED_COLOR, mew=1.0, ls="", zorder=2,
                               label="single seeds", gid="seeds")
        handles.append(seed_line)
        texts.append("ELBO of each seed")
    best = int(np.argmax(vals))
    (star,) = ax.plot([temps[best]], [vals[best]], "*", color=_BEST_COLOR, ms=14, zorder=3,
                      label=f"best: $\\lambda_{{\\mathrm{{temp}}}}$ = {temps[best]:g}")
    handles.append(star)
    texts.append(f"highest mean: $\\lambda_{{\\mathrm{{temp}}}}$ = {temps[best]:g}"
                 + (" (within the error bars)" if se is not None and _within_error_bars(vals, se, num_stderr, best)
                    else ""))
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel("prior temperature $\\lambda_{\\mathrm{temp}}$")
    ax.set_ylabel("ELBO  [nats]  (bound on log p(y | x, $\\lambda_{\\mathrm{temp}}$))")
    ax.grid(True, alpha=0.3)
    ax.legend(handles, texts, loc="best", fontsize="small")
    ax.set_title("evidence bound against the structure prior's temperature" if title is None else title,
                 fontsize=10)
    return ax


def _within_error_bars(vals: np.ndarray, se: np.ndarray, num_stderr: float, best: int) -> bool:
    """Whether the highest mean's error bar overlaps the runner-up's."""
    if len(vals) < 2:
        return False
    others = [i for i in range(len(vals)) if i != best]
    runner = max(others, key=lambda i: vals[i])
    return bool(vals[best] - num_stderr * se[best] <= vals[runner] + num_stderr * se[runner])
