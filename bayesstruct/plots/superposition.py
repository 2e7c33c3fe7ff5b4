r"""Figures of superpositions (:mod:`bayesstruct.families.superposition`).

=====================================  =====================================================
:func:`plot_superposition`             a tree drawn as the lecture numbers it: vertices
                                       numbered depth first, each with its function, vertex
                                       0 the output
:func:`plot_superposition_posterior`   :math:`p(\Gamma \mid D)` of the top trees, exact
                                       (enumeration) beside the MH chain's frequencies
=====================================  =====================================================

Conventions as in :mod:`bayesstruct.plots`: ``ax=None`` draws a new figure, the Axes is
returned, nothing calls ``plt.show``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import matplotlib.pyplot as plt
import numpy as np

from bayesstruct.exceptions import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from bayesstruct.families.superposition import SuperpositionSamples

__all__ = ["plot_superposition", "plot_superposition_posterior"]


def plot_superposition(tree: Any, ax: "Axes | None" = None, *, title: str | None = None) -> "Axes":
    """Draw the tree with its vertices numbered as in :attr:`Superposition.edges`.

    Each vertex shows ``number: function``; leaves are the variables. Vertex 0, the output, sits
    above the root.
    """
    from bayesstruct.families.superposition import as_superposition

    tree = as_superposition(tree)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.4 * max(3, tree.size), 0.9 * (tree.depth + 2)))
    edges = tree.edges
    children: dict[int, list[int]] = {}
    label = {0: "0: y"}
    for parent, child, op in edges:
        children.setdefault(parent, []).append(child)
        label[child] = f"{child}: {op}"
    pos: dict[int, tuple[float, float]] = {}
    next_leaf = [0.0]

    def place(v: int, depth: int) -> float:
        kids = children.get(v, [])
        xs = [place(k, depth + 1) for k in kids]
        if xs:
            x = float(np.mean(xs))
        else:
            x = next_leaf[0]
            next_leaf[0] += 1.0
        pos[v] = (x, -depth)
        return x

    place(0, 0)
    for parent, child, _ in edges:
        (x0, y0), (x1, y1) = pos[parent], pos[child]
        ax.plot([x0, x1], [y0, y1], color="0.5", lw=1.2, zorder=1)
    for v, (x, y) in pos.items():
        leaf = v not in children
        ax.text(x, y, label[v], ha="center", va="center", zorder=2, fontsize=9,
                bbox=dict(boxstyle="round,pad=0.3", fc="#dfe9f5" if leaf else ("white" if v else "0.9"), ec="0.3"))
    xs = [p[0] for p in pos.values()]
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(-tree.depth - 0.6, 0.6)
    ax.axis("off")
    ax.set_title(title if title is not None else str(tree), fontsize=10)
    return ax


def plot_superposition_posterior(exact: Any = None, samples: "SuperpositionSamples | None" = None,
                                 ax: "Axes | None" = None, *, top: int = 10, truth: Any = None,
                                 title: str | None = None) -> "Axes":
    r"""Horizontal bars of :math:`p(\Gamma \mid D)` for the ``top`` trees.

    Parameters
    ----------
    exact : ComparisonTable or dict of str to float, optional
        The enumerated posterior (``compare`` on a :class:`SuperpositionFamily`).
    samples : SuperpositionSamples, optional
        An MH chain; its visit frequencies are drawn beside the exact bars.
    top : int
        How many trees (ranked by the exact posterior when given, else by the chain).
    truth : Superposition or str, optional
        The generating tree, marked with a star.
    """
    from bayesstruct.compare import ComparisonTable
    from bayesstruct.families.superposition import as_superposition

    if exact is None and samples is None:
        raise InvalidArgumentError("give `exact` (a ComparisonTable or a dict) and/or `samples`")
    if isinstance(exact, ComparisonTable):
        exact = {str(r.structure["tree"]): r.posterior_probability for r in exact.rows}
    elif exact is not None and not isinstance(exact, Mapping):
        raise InvalidArgumentError(f"`exact` must be a ComparisonTable or a dict tree -> probability; got {type(exact).__name__}")
    chain = samples.posterior() if samples is not None else None
    ranked = exact if exact is not None else chain
    names = [k for k, _ in sorted(ranked.items(), key=lambda kv: -kv[1])][: max(1, int(top))]
    truth = str(as_superposition(truth).canonical()) if truth is not None else None
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 0.35 * len(names) + 1.2))
    yy = np.arange(len(names))[::-1]
    h = 0.4 if exact is not None and chain is not None else 0.7
    if exact is not None:
        ax.barh(yy + (h / 2 if chain is not None else 0), [exact.get(n, 0.0) for n in names], height=h,
                color="0.25", label="exact (enumeration)")
    if chain is not None:
        ax.barh(yy - (h / 2 if exact is not None else 0), [chain.get(n, 0.0) for n in names], height=h,
                color="tab:orange", label=f"MH, {len(samples.trees):,} draws")
    ax.set_yticks(yy, [("★ " if n == truth else "") + n for n in names], fontsize=8)
    ax.set_xlabel("p(Γ | D)")
    ax.set_xlim(0, 1)
    ax.legend(loc="lower right", fontsize=8)
    if title is not None:
        ax.set_title(title, fontsize=10)
    return ax
