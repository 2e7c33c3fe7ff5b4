"""Figures of pruning: weight histograms before/after and test error against the fraction kept.

Only drawing: the numbers come from :func:`bayesstruct.prune.weight_histogram` and from the
per-round history of :func:`bayesstruct.prune.iterative_prune` (or any list of
``(fraction kept, test error)`` pairs). Each function takes ``ax=None`` (a new figure) or an
Axes, and returns the Axes. Methods differ in colour (Okabe-Ito, :mod:`bayesstruct.plots.style`)
and in marker, so the curves read in greyscale too.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.plots.style import color, marker

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from bayesstruct.prune.iterative import WeightHistogram

__all__ = ["plot_weight_histogram", "plot_pruning_curve"]

#: labelled ticks of a logarithmic error axis (1-2-3-5 steps), as fractions in (0, 1]
_LOG_ERROR_TICKS = tuple(m * 10.0**e for e in range(-4, 1) for m in (1, 2, 3, 5) if m * 10.0**e <= 1.0)


def plot_weight_histogram(hist: "WeightHistogram", ax: "Axes | None" = None, *, label: str | None = None,
                          log: bool = False, **bar_kwargs: Any) -> "Axes":
    """Bars of a :class:`~bayesstruct.prune.WeightHistogram` (counts per bin of weight value).

    The title (unless ``label`` is given) states how many weights are non-zero, so the
    pruned zeros -- left out of the bars of a histogram made with ``nonzero_only=True``, the
    default -- are still accounted for, and how many weights lie outside the histogram's
    ``range`` (in no bar). ``log=True`` draws the
    counts on a logarithmic axis (as the MNIST benchmark's histograms do). The default colour
    is the first of :mod:`bayesstruct.plots.style`'s palette.
    """
    counts, edges = np.asarray(getattr(hist, "counts", None)), np.asarray(getattr(hist, "edges", None))
    if counts.ndim != 1 or edges.shape != (counts.size + 1,):
        raise InvalidArgumentError(f"`hist` must be a WeightHistogram (counts (B,), edges (B + 1,)); got {type(hist).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    bar_kwargs.setdefault("color", color(0))
    ax.stairs(counts, edges, fill=True, **bar_kwargs)
    ax.set_xlabel("weight value")
    if log:
        ax.set_yscale("log")
        ax.set_ylabel("count (log scale)")
    else:
        ax.set_ylabel("count")
    nonzero = hist.num_weights - hist.num_zero
    outside = int(getattr(hist, "num_outside", 0))
    title = f"{nonzero} of {hist.num_weights} weights non-zero" + (f" ({outside} outside the range, not drawn)"
                                                                   if outside else "")
    ax.set_title(label if label is not None else title)
    return ax


def _fraction_label(x: float) -> str:
    """``1``, ``1/2``, ..., ``1/32`` for powers of two, else 3 significant digits."""
    if x >= 1.0:
        return f"{x:g}"
    k = math.log2(1.0 / x)
    if abs(k - round(k)) < 1e-9:
        return f"1/{2 ** round(k)}"
    f = Fraction(x).limit_denominator(64)
    return f"{f.numerator}/{f.denominator}" if abs(float(f) - x) < 1e-9 else f"{x:.3g}"


def _percent(v: float) -> str:
    return f"{100 * v:.0f}%" if v >= 0.01 else f"{100 * v:.2g}%"


def plot_pruning_curve(curves: Mapping[str, Sequence[tuple[float, float]]], ax: "Axes | None" = None, *,
                       log_error: bool = True, kept_ticks: Sequence[float] | None = None,
                       percent: bool = True, legend: bool = True) -> "Axes":
    """Test error against the fraction of weights kept, one line per method.

    ``curves``: method label -> ``[(fraction kept, test error), ...]``. The x axis is
    logarithmic (base 2) and runs from dense (1) on the left to sparse on the right; its ticks
    are ``kept_ticks`` (default: the powers of 1/2 the data span), labelled ``1, 1/2, 1/4, ...``.
    With ``log_error`` the y axis is logarithmic with labelled 1-2-3-5 ticks (1%, 2%, 3%, 5%, 10%, ...;
    ``percent=False`` writes 0.01, 0.02, ...); a test error of exactly 0, which a log axis cannot
    show, is drawn at half the smallest positive error as an open triangle, and the legend says
    so. Method ``i`` gets colour and marker ``i`` of
    :mod:`bayesstruct.plots.style`. ``legend=False`` leaves the legend to the caller (e.g. to
    place it outside the axes).
    """
    if not isinstance(curves, Mapping) or not curves:
        raise InvalidArgumentError("`curves` must be a non-empty mapping label -> [(fraction kept, test error), ...]")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    all_pts = {}
    for label, rows in curves.items():
        pts = np.asarray(list(rows), dtype=float)
        if pts.ndim != 2 or pts.shape[1] != 2 or not len(pts):
            raise InvalidArgumentError(f"`curves[{label!r}]` must be a list of (fraction kept, test error) pairs")
        if ((pts[:, 0] <= 0) | (pts[:, 0] > 1)).any():
            raise InvalidArgumentError(f"`curves[{label!r}]`: fractions kept must lie in (0, 1]")
        if not np.isfinite(pts[:, 1]).all() or (pts[:, 1] < 0).any():
            raise InvalidArgumentError(f"`curves[{label!r}]`: test errors must be finite and >= 0")
        all_pts[label] = pts
    pts = np.concatenate(list(all_pts.values()))
    positive = pts[:, 1][pts[:, 1] > 0]
    # a log axis has no 0: an error of exactly 0 is drawn at a floor below the smallest error, marked
    floor = (float(positive.min()) if positive.size else 0.01) / 2
    zeros = 0
    for i, (label, p) in enumerate(all_pts.items()):
        y = np.where(p[:, 1] > 0, p[:, 1], floor) if log_error else p[:, 1]
        ax.plot(p[:, 0], y, marker=marker(i), color=color(i), label=str(label))
        at_zero = p[:, 1] == 0
        if log_error and at_zero.any():
            ax.plot(p[at_zero, 0], np.full(int(at_zero.sum()), floor), "v", color=color(i), ms=10, mfc="none", zorder=3)
            zeros += int(at_zero.sum())
    if zeros:
        shown = _percent(floor) if percent else f"{floor:g}"
        ax.plot([], [], "v", color="0.3", mfc="none", ms=8, label=f"test error 0 ({zeros}), drawn at {shown}")
    ax.set_xscale("log", base=2)
    if not ax.xaxis_inverted():
        ax.invert_xaxis()
    if kept_ticks is None:
        lo = float(pts[:, 0].min())
        kept_ticks = [0.5**k for k in range(0, int(math.floor(math.log2(1.0 / lo) + 1e-9)) + 1)]
    kept_ticks = [float(t) for t in kept_ticks]
    ax.xaxis.set_major_locator(FixedLocator(kept_ticks))
    ax.xaxis.set_major_formatter(plt.FixedFormatter([_fraction_label(t) for t in kept_ticks]))
    ax.xaxis.set_minor_locator(NullLocator())
    if log_error:
        ax.set_yscale("log")
        err = np.where(pts[:, 1] > 0, pts[:, 1], floor)
        if err.size:
            lo, hi = float(err.min()), float(err.max())
            ticks = [t for t in _LOG_ERROR_TICKS if lo / 1.5 <= t <= hi * 1.5]
            if len(ticks) < 3:  # a narrow range: add the 1-2-5 ticks either side
                below = [t for t in _LOG_ERROR_TICKS if t < lo / 1.5][-1:]
                above = [t for t in _LOG_ERROR_TICKS if t > hi * 1.5][:1]
                ticks = below + ticks + above
                ax.set_ylim(min(lo, ticks[0]) / 1.1, max(hi, ticks[-1]) * 1.1)
            ax.yaxis.set_major_locator(FixedLocator(ticks))
            ax.yaxis.set_major_formatter(plt.FixedFormatter([_percent(t) if percent else f"{t:g}" for t in ticks]))
            ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("fraction of weights kept")
    ax.set_ylabel("test error" + (" (log scale)" if log_error else ""))
    ax.grid(True, which="major", alpha=0.3)
    if legend:
        ax.legend(fontsize=8)
    return ax
