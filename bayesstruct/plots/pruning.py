"""Figures of pruning: weight histograms before/after and test error against the fraction kept.

Only drawing: the numbers come from :func:`bayesstruct.prune.weight_histogram` and from the
per-round history of :func:`bayesstruct.prune.iterative_prune` (or any list of
``(fraction kept, test error)`` pairs). Each function takes ``ax=None`` (a new figure) or an
Axes, and returns the Axes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from bayesstruct.exceptions import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from bayesstruct.prune.iterative import WeightHistogram

__all__ = ["plot_weight_histogram", "plot_pruning_curve"]


def plot_weight_histogram(hist: "WeightHistogram", ax: "Axes | None" = None, *, label: str | None = None, **bar_kwargs: Any) -> "Axes":
    """Bars of a :class:`~bayesstruct.prune.WeightHistogram` (counts per bin of weight value).

    The title (unless ``label`` is given) states how many weights are non-zero, so the
    pruned zeros -- left out of the bars -- are still accounted for.
    """
    counts, edges = np.asarray(getattr(hist, "counts", None)), np.asarray(getattr(hist, "edges", None))
    if counts.ndim != 1 or edges.shape != (counts.size + 1,):
        raise InvalidArgumentError(f"`hist` must be a WeightHistogram (counts (B,), edges (B + 1,)); got {type(hist).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    ax.stairs(counts, edges, fill=True, **bar_kwargs)
    ax.set_xlabel("weight value")
    ax.set_ylabel("count")
    nonzero = hist.num_weights - hist.num_zero
    ax.set_title(label if label is not None else f"{nonzero} of {hist.num_weights} weights non-zero")
    return ax


def plot_pruning_curve(curves: Mapping[str, Sequence[tuple[float, float]]], ax: "Axes | None" = None, *,
                       log_error: bool = True) -> "Axes":
    """Test error against the fraction of weights kept, one line per method.

    ``curves``: method label -> ``[(fraction kept, test error), ...]``. The x axis is
    logarithmic (base 2) and runs from dense (1) on the left to sparse on the right.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise InvalidArgumentError("`curves` must be a non-empty mapping label -> [(fraction kept, test error), ...]")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    markers = "osD^v<>ph*"
    for i, (label, rows) in enumerate(curves.items()):
        pts = np.asarray(list(rows), dtype=float)
        if pts.ndim != 2 or pts.shape[1] != 2 or not len(pts):
            raise InvalidArgumentError(f"`curves[{label!r}]` must be a list of (fraction kept, test error) pairs")
        if ((pts[:, 0] <= 0) | (pts[:, 0] > 1)).any():
            raise InvalidArgumentError(f"`curves[{label!r}]`: fractions kept must lie in (0, 1]")
        ax.plot(pts[:, 0], pts[:, 1], marker=markers[i % len(markers)], label=str(label))
    ax.set_xscale("log", base=2)
    if not ax.xaxis_inverted():
        ax.invert_xaxis()
    if log_error:
        ax.set_yscale("log")
    ax.set_xlabel("fraction of weights kept")
    ax.set_ylabel("test error")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return ax
