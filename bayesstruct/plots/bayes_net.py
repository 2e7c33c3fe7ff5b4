"""Figures of a Bayesian-network structure posterior: only drawing.

==================================  ====================================================
:func:`plot_edge_posterior`         ``d × d`` heatmap of ``p(i → j | D)``, the true
                                    DAG's edges outlined when given
:func:`plot_top_dags`               the most probable DAGs drawn as graphs, with their
                                    posterior probabilities
==================================  ====================================================

Both take a :class:`~bayesstruct.compare.ComparisonTable` of a
:class:`~bayesstruct.families.bayes_net.BayesianNetworkFamily` (or, for the heatmap, a
:class:`~bayesstruct.families.bayes_net.DAGSamples` or a ready ``(d, d)`` matrix). Nothing
calls ``plt.show``; all work under the ``Agg`` backend.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, Rectangle

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.plots import style as _style

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_edge_posterior", "plot_top_dags"]

_TRUE_COLOR = _style.color(3)  # Okabe-Ito vermillion


def _arrows(text: str) -> str:
    """``"0->2, 1->2"`` (``str(DAG)``) with typographic arrows, for figure text only."""
    return text.replace("->", "→")


def _edge_matrix(result: Any) -> np.ndarray:
    from bayesstruct.compare import ComparisonTable
    from bayesstruct.families.bayes_net import DAGSamples, edge_posterior

    if isinstance(result, (ComparisonTable, DAGSamples)):
        P = edge_posterior(result).numpy()
    else:
        try:
            P = np.asarray(result.detach().cpu() if hasattr(result, "detach") else result, dtype=float)
        except (TypeError, ValueError):
            raise InvalidArgumentError("`result` must be a ComparisonTable, DAGSamples or a (d, d) array of "
                                       f"probabilities; got {type(result).__name__}") from None
        if P.ndim != 2 or P.shape[0] != P.shape[1] or P.shape[0] == 0:
            raise InvalidArgumentError(f"`result` as an array must be square (d, d); got shape {P.shape}")
        if not np.all(np.isfinite(P)) or P.min() < 0 or P.max() > 1:
            raise InvalidArgumentError("`result` must hold probabilities in [0, 1]")
    return P


def _names(variable_names: Sequence[str] | None, d: int) -> list[str]:
    if variable_names is None:
        return [str(i) for i in range(d)]
    names = [str(v) for v in variable_names]
    if len(names) != d:
        raise InvalidArgumentError(f"`variable_names` must name the {d} variables; got {len(names)} names")
    return names


def _true_dag(true_dag: Any, d: int):
    if true_dag is None:
        return None
    from bayesstruct.families.bayes_net import DAG

    return DAG(true_dag, num_variables=d)


def plot_edge_posterior(result: Any, *, true_dag: Any = None, ax: "Axes | None" = None,
                        variable_names: Sequence[str] | None = None, annotate: bool = True,
                        title: str | None = None) -> "Axes":
    """Heatmap of the posterior edge probabilities ``P[i, j] = p(i → j | D)``.

    Rows are parents ``i``, columns children ``j``; the diagonal (no self-loops) is grey,
    as the default title says. Each cell prints its probability when ``annotate``; the
    edges of ``true_dag`` are outlined in vermillion, listed in the legend with "→".

    Parameters
    ----------
    result : ComparisonTable, DAGSamples or array-like ``(d, d)``
        What :func:`~bayesstruct.families.bayes_net.edge_posterior` accepts, or its output.
    true_dag : DAG or anything DAG accepts, optional
        The graph that generated the data.
    ax : matplotlib Axes, optional
    variable_names : sequence of str, optional
        Tick labels (default the node indices).
    annotate : bool
        Print the probabilities.
    title : str, optional

    Returns
    -------
    matplotlib Axes
        With one image (``ax.images[0]``, the matrix with a NaN diagonal), a colour bar,
        and one ``Rectangle`` in ``ax.patches`` per true edge (``gid="true-edge"``).
    """
    P = _edge_matrix(result)
    d = P.shape[0]
    names = _names(variable_names, d)
    truth = _true_dag(true_dag, d)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.1 * d + 2.4, 1.1 * d + 1.4), layout="constrained")
    shown = P.astype(float).copy()
    np.fill_diagonal(shown, np.nan)
    cmap = plt.get_cmap("Blues").with_extremes(bad="0.92")
    im = ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=1.0)
    ax.figure.colorbar(im, ax=ax, label="p(i → j | D)", shrink=0.85)
    if annotate:
        for i in range(d):
            for j in range(d):
                if i != j:
                    ax.text(j, i, f"{P[i, j]:.2f}", ha="center", va="center", fontsize="small",
                            color="white" if P[i, j] > 0.6 else "black")
    if truth is not None:
        for i, j in truth.edges:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec=_TRUE_COLOR, lw=2.5, gid="true-edge"))
        ax.plot([], [], "s", mfc="none", mec=_TRUE_COLOR, mew=2, label=f"true edges ({_arrows(str(truth))})")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize="small", frameon=False)
    ax.set_xticks(range(d), names)
    ax.set_yticks(range(d), names)
    ax.set_xlabel("child j")
    ax.set_ylabel("parent i")
    ax.set_title(title or "posterior edge probabilities p(i → j | D)\n(grey diagonal: no self-loops)")
    return ax


def _draw_dag(ax: "Axes", dag: Any, names: list[str]) -> None:
    d = len(dag)
    angles = [math.pi / 2 - 2 * math.pi * k / d for k in range(d)]
    pos = np.array([[math.cos(a), math.sin(a)] for a in angles]) if d > 1 else np.zeros((1, 2))
    ax.scatter(pos[:, 0], pos[:, 1], s=520, c="white", edgecolors="black", zorder=3)
    for k, name in enumerate(names):
        ax.text(pos[k, 0], pos[k, 1], name, ha="center", va="center", zorder=4)
    for i, j in dag.edges:
        ax.add_patch(FancyArrowPatch(pos[i], pos[j], arrowstyle="-|>", mutation_scale=14, lw=1.4, shrinkA=13,
                                     shrinkB=13, color="black", gid="edge"))
    # autoscaled (not fixed) limits around the circle, which "datalim" below may widen without a warning
    ax.update_datalim(np.array([[-1.45, -1.45], [1.45, 1.45]]))
    ax.margins(0.0)
    ax.autoscale_view()
    # "datalim": the Axes keep the box the layout gives them (so the edge list under them stays in the
    # figure) and the data limits grow instead, so the circle stays round
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_top_dags(table: Any, num_dags: int = 4, *, true_dag: Any = None,
                  variable_names: Sequence[str] | None = None, edge_arrow: str = "->") -> "Figure":
    """The ``num_dags`` most probable DAGs of a comparison, drawn with their ``p(G | D)``.

    Nodes sit on a circle (node 0 at the top, clockwise); each panel's title gives the
    rank, the posterior probability and, when ``true_dag`` is given, marks the true graph;
    its x label lists the edges. The suptitle says what the numbers are (exact ``p(G | D)``
    over how many DAGs, or visit frequencies of how many MCMC draws). The figure is tall
    enough for the edge lists, also when saved without ``bbox_inches="tight"``.

    Parameters
    ----------
    table : ComparisonTable or DAGSamples
        Of a :class:`~bayesstruct.families.bayes_net.BayesianNetworkFamily` (exact ``p(G | D)``),
        or draws of :class:`~bayesstruct.families.bayes_net.StructureMCMC` (visit frequencies).
    num_dags : int
        Panels to draw (at most the number of rows).
    true_dag : DAG or anything DAG accepts, optional
    variable_names : sequence of str, optional
    edge_arrow : str
        The arrow in the edge lists under the panels: ``"->"`` (default) writes ``str(dag)``
        as it is, ``"→"`` a typographic arrow for slides and papers.

    Returns
    -------
    matplotlib Figure
        One Axes per DAG, in order of rank, each with one ``FancyArrowPatch`` per edge
        (``gid="edge"``).
    """
    from bayesstruct.compare import ComparisonTable
    from bayesstruct.families.bayes_net import DAG, DAGSamples

    if isinstance(table, DAGSamples):
        ranked = list(table.posterior_probabilities().items())
        suptitle = f"most visited DAGs\nvisit frequency in {len(table.dags):,} structure-MCMC draws"
    elif isinstance(table, ComparisonTable):
        if not table.rows or "dag" not in table.rows[0].structure:
            raise InvalidArgumentError("`table` must compare DAGs (a BayesianNetworkFamily's table)")
        ranked = [(r.structure["dag"], r.posterior_probability) for r in table.rows]
        suptitle = (f"most probable DAGs ({table.family.name})\n"
                    f"p(G | D) from the {table.reference_method} evidence of all {len(table.rows):,} DAGs compared")
    else:
        raise InvalidArgumentError(f"`table` must be a ComparisonTable (from bayesstruct.compare) or DAGSamples; got "
                                   f"{type(table).__name__}")
    if isinstance(num_dags, bool) or not isinstance(num_dags, (int, np.integer)) or num_dags < 1:
        raise InvalidArgumentError(f"`num_dags` must be a positive integer; got {num_dags!r}")
    rows = ranked[: int(num_dags)]
    d = len(DAG(rows[0][0]))
    names = _names(variable_names, d)
    truth = _true_dag(true_dag, d)
    if not isinstance(edge_arrow, str) or not edge_arrow:
        raise InvalidArgumentError(f"`edge_arrow` must be a non-empty string such as '->' or '→'; got {edge_arrow!r}")
    fig, axes = plt.subplots(1, len(rows), figsize=(max(2.6 * len(rows), 6.0), 3.4), layout="constrained",
                             squeeze=False)
    for k, (ax, (dag, prob)) in enumerate(zip(axes[0], rows)):
        dag = DAG(dag)
        _draw_dag(ax, dag, names)
        is_true = truth is not None and dag == truth
        ax.set_title(f"#{k + 1}: p = {prob:.3f}" + (" (true)" if is_true else ""),
                     color=_TRUE_COLOR if is_true else "black", fontsize="medium")
        ax.set_xlabel(str(dag).replace("->", edge_arrow), fontsize="small")
    fig.suptitle(suptitle, fontsize="medium")
    return fig
