r"""Figures of superpositions (:mod:`bayesstruct.families.superposition`).

=====================================  =====================================================
:func:`plot_superposition`             a tree drawn as the lecture numbers it: vertices
                                       numbered depth first, each with its function, vertex
                                       0 the output
:func:`plot_superposition_posterior`   :math:`p(\Gamma \mid D)` of the top trees, exact
                                       (enumeration) beside the MH chain's frequencies
:func:`plot_evidence_by_size`          the log evidence of every tree against its size;
                                       trees below a window are marked on the lower edge
=====================================  =====================================================

Conventions as in :mod:`bayesstruct.plots`: ``ax=None`` draws a new figure, the Axes is
returned, nothing calls ``plt.show``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.plots.style import color

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from bayesstruct.families.superposition import SuperpositionSamples

__all__ = ["plot_superposition", "plot_superposition_posterior", "plot_evidence_by_size"]

#: what the star before a tree name means, in every superposition figure
TRUTH_LABEL = "true (generating) tree"


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
                                 title: str | None = None, truth_label: str = TRUTH_LABEL,
                                 values: bool = True) -> "Axes":
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
        The generating tree, marked with a star "★" in its tick label; the legend explains
        the star as ``truth_label``.
    values : bool
        Print each probability at the end of its bar ("<0.001" for tiny ones), so that
        bars too short to see still show a number.
    """
    from bayesstruct.compare import ComparisonTable
    from bayesstruct.families.superposition import as_superposition

    if exact is None and samples is None:
        raise InvalidArgumentError("give `exact` (a ComparisonTable or a dict) and/or `samples`")
    if isinstance(exact, ComparisonTable):
        exact = {str(r.structure["tree"]): r.posterior_probability for r in exact.rows}
    elif exact is not None and not isinstance(exact, Mapping):
        raise InvalidArgumentError(f"`exact` must be a ComparisonTable or a dict tree -> probability; got {type(exact).__name__}")

    def canonical(probs: Mapping | None, name: str) -> dict[str, float] | None:
        """Keys as canonical tree strings (as ``truth`` and the chain's are), probabilities of equal trees summed."""
        if probs is None:
            return None
        if not probs:
            raise InvalidArgumentError(f"`{name}` holds no trees; nothing to draw")
        out: dict[str, float] = {}
        for k, v in probs.items():
            key = str(as_superposition(k).canonical())
            out[key] = out.get(key, 0.0) + float(v)
        return out

    exact = canonical(exact, "exact")
    chain = canonical(samples.posterior(), "samples") if samples is not None else None
    ranked = exact if exact is not None else chain
    names = [k for k, _ in sorted(ranked.items(), key=lambda kv: -kv[1])][: max(1, int(top))]
    truth = str(as_superposition(truth).canonical()) if truth is not None else None
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 0.35 * len(names) + 1.2))
    yy = np.arange(len(names))[::-1]
    h = 0.4 if exact is not None and chain is not None else 0.7
    bars = []
    if exact is not None:
        p = [exact.get(n, 0.0) for n in names]
        y0 = yy + (h / 2 if chain is not None else 0)
        ax.barh(y0, p, height=h, color="0.25", label="exact (enumeration)")
        bars.append((y0, p))
    if chain is not None:
        p = [chain.get(n, 0.0) for n in names]
        y0 = yy - (h / 2 if exact is not None else 0)
        ax.barh(y0, p, height=h, color=color(1), hatch="///", edgecolor="white", lw=0,
                label=f"MH, {len(samples.trees):,} draws")
        bars.append((y0, p))
    if values:
        for y0, p in bars:
            for yv, v in zip(y0, p):
                ax.text(v + 0.01, yv, f"{v:.3f}" if v >= 0.001 else ("<0.001" if v > 0 else "0"), va="center",
                        ha="left", fontsize=7, color="0.2")
    ax.set_yticks(yy, [("★ " if n == truth else "") + n for n in names], fontsize=8)
    ax.set_xlabel("p(Γ | D)")
    ax.set_xlim(0, 1.08 if values else 1)
    handles, labels = ax.get_legend_handles_labels()
    if truth is not None and truth in names:
        handles.append(Line2D([], [], linestyle="none", marker="$★$", color="black", ms=8))
        labels.append(f"★ = {truth_label}")
    ax.legend(handles, labels, loc="lower right", fontsize=8)
    if title is not None:
        ax.set_title(title, fontsize=10)
    return ax


def plot_evidence_by_size(sizes: Sequence[int], log_evidence: Sequence[float], ax: "Axes | None" = None, *,
                          floor: float | None = None, highlight: tuple[int, float] | None = None,
                          highlight_label: str = TRUTH_LABEL, jitter: float = 0.1, seed: int = 0,
                          title: str | None = None) -> "Axes":
    """The log evidence of each tree against its number of vertices (one dot per tree).

    ``floor`` (a log evidence) zooms the y axis to ``[floor, max]`` without dropping trees:
    those below it are drawn on the lower edge as open triangles (▼) and the legend says how
    many there are. ``highlight=(size, log evidence)`` marks one tree (e.g. the true one) with
    a star, labelled ``highlight_label``. ``jitter`` spreads the dots horizontally by at most
    that much (seeded by ``seed``; only the drawing moves).
    """
    sizes = np.asarray(sizes, dtype=float).reshape(-1)
    lz = np.asarray(log_evidence, dtype=float).reshape(-1)
    if sizes.shape != lz.shape or not len(lz):
        raise InvalidArgumentError(f"`sizes` and `log_evidence` must be non-empty and of equal length; "
                                   f"got {len(sizes)} and {len(lz)}")
    if floor is not None and floor >= float(np.max(lz)):
        raise InvalidArgumentError(f"`floor` {floor:g} must lie below the largest log evidence {float(np.max(lz)):g}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    dx = np.random.default_rng(seed).uniform(-abs(jitter), abs(jitter), len(sizes))
    top = float(np.max(lz))
    below = lz < floor if floor is not None else np.zeros(lz.shape, bool)
    ax.scatter(sizes[~below] + dx[~below], lz[~below], s=8, color="0.4", label=f"a tree ({len(lz)} in all)")
    if below.any():
        ax.scatter(sizes[below] + dx[below], np.full(int(below.sum()), floor), s=22, marker="v", facecolors="none",
                   edgecolors=color(0), lw=0.8, clip_on=False, zorder=3,
                   label=f"{int(below.sum())} trees below {floor:g}, drawn on the edge")
    if highlight is not None:
        hidden = floor is not None and highlight[1] < floor  # drawn on the edge too, and the legend says so
        ax.scatter([highlight[0]], [max(highlight[1], floor) if hidden else highlight[1]], marker="*", s=170,
                   color=color(3), edgecolors="black", lw=0.5, zorder=4, clip_on=False,
                   label=f"★ {highlight_label}" + (f" (at {highlight[1]:.4g}, below the edge)" if hidden else ""))
    ax.set_xticks(range(int(sizes.min()), int(sizes.max()) + 1))
    ax.set_xlabel("vertices |Γ|")
    ax.set_ylabel("log p(y | x, Γ) (nats)")
    lo = floor if floor is not None and below.any() else float(np.min(lz))
    pad = 0.04 * (top - lo) if top > lo else 1.0
    ax.set_ylim(lo if floor is not None and below.any() else lo - pad, top + 3 * pad)
    ax.legend(fontsize=8, loc="upper left")
    if title is not None:
        ax.set_title(title, fontsize=10)
    return ax
