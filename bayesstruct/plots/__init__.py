"""Figures of a structure comparison (matplotlib; ArviZ for posterior plots).

Only drawing happens here: numbers come from a
:class:`~bayesstruct.compare.ComparisonTable` (and, for :func:`plot_predictive`, its
``posterior_predictive``), ArviZ objects from :mod:`bayesstruct.io`. No function calls
``plt.show``; each takes ``ax=None`` (a new figure) or an Axes to draw into, and returns
the Axes -- :func:`plot_weights` returns the Figure ArviZ drew. All work under the
non-interactive ``Agg`` backend.

=================================  =====================================================
:func:`plot_evidence`              log evidence ± s.e. per structure and method, with a
                                   zoomed panel on the top structures
:func:`plot_predictive`            data, predictive mean and band of the best structure
                                   and of the model average (PRML fig. 3.8/3.9)
:func:`plot_posterior_probabilities`  bar chart of ``p(s | D)``
:func:`plot_weights`               ``az.plot_forest`` / ``az.plot_posterior`` of weights
:func:`plot_gamma_simplex`         posterior (and prior) draws of an edge's Γ on the 2-simplex
:func:`plot_structure_graph`       a structure graph, line width growing with E[γ]
:func:`plot_elbo_temperature`      ELBO of the structure family against λ_temp
:func:`plot_pruning_curve`         test error against the fraction of weights kept
:func:`plot_weight_histogram`      histogram of the prunable weights
:func:`plot_dbn_trace`             trace plots of a belief-net chain's structure statistics
:func:`plot_structure_posterior`   posterior over depth, widths and edges of belief nets
:func:`plot_fantasies`             fantasies of a belief net next to real images
:func:`plot_structure`             a belief net's layers and edges
:func:`plot_search_history`        a search's γ per epoch (DARTS, FBNet) or rewards (RL controller)
:func:`plot_latency_accuracy`      validation accuracy against latency of found structures
:func:`plot_superposition`         a superposition tree, vertices numbered as the lecture does
:func:`plot_superposition_posterior`  p(Γ | D) of the top trees, exact beside an MH chain
:func:`plot_evidence_by_size`      exact log evidence of every tree against its size
:func:`plot_edge_posterior`        p(j → k | D) of a Bayesian network as a d × d heatmap
:func:`plot_top_dags`              the most probable DAGs of a Bayesian network family
:func:`save_figure`                save tightly cropped at 150 dpi, in PNG and/or PDF/SVG
:func:`primitive_style`            colour, line style and marker of a primitive, the same in every panel
=================================  =====================================================

``sample_gamma_posterior`` and ``elbo_temperature_sweep`` are re-exported from
:mod:`bayesstruct.families.network`, where they live.
"""

from __future__ import annotations

import numbers
import warnings
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.families.base import structure_label
from bayesstruct.plots.structure import (
    elbo_temperature_sweep,
    plot_elbo_temperature,
    plot_gamma_simplex,
    plot_structure_graph,
    sample_gamma_posterior,
)
from bayesstruct.plots.dbn import plot_dbn_trace, plot_fantasies, plot_structure, plot_structure_posterior
from bayesstruct.plots.pruning import plot_pruning_curve, plot_weight_histogram
from bayesstruct.plots.search import plot_latency_accuracy, plot_search_history
from bayesstruct.plots.bayes_net import plot_edge_posterior, plot_top_dags
from bayesstruct.plots.superposition import plot_evidence_by_size, plot_superposition, plot_superposition_posterior
from bayesstruct.plots import style as _style
from bayesstruct.plots.style import primitive_style, save_figure

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from bayesstruct.compare import ComparisonRow, ComparisonTable

__all__ = ["plot_pruning_curve", "plot_weight_histogram", "plot_evidence", "plot_predictive", "plot_posterior_probabilities", "plot_weights", "plot_gamma_simplex",
           "plot_structure_graph", "plot_elbo_temperature", "sample_gamma_posterior", "elbo_temperature_sweep",
           "plot_dbn_trace", "plot_structure_posterior", "plot_fantasies", "plot_structure", "plot_search_history",
           "plot_latency_accuracy", "plot_superposition", "plot_superposition_posterior",
           "plot_edge_posterior", "plot_top_dags", "save_figure", "plot_evidence_by_size", "primitive_style"]

#: colors (Okabe-Ito, :mod:`bayesstruct.plots.style`): exact is black, the other methods take the
#: palette and a marker shape each in table order, so they also read in greyscale
_EXACT_COLOR = "black"
_BEST_COLOR = _style.color(3)      # vermillion
_AVERAGE_COLOR = _style.color(0)   # blue
_TRUTH_COLOR = "black"             # drawn dotted
_OTHER_COLOR = "0.6"


def _check_table(table: Any) -> None:
    from bayesstruct.compare import ComparisonTable

    if not isinstance(table, ComparisonTable):
        raise InvalidArgumentError(f"`table` must be a ComparisonTable (from bayesstruct.compare); "
                                   f"got {type(table).__name__}")


def _natural_rows(table: "ComparisonTable") -> list["ComparisonRow"]:
    """Rows in the family's structure order (degree 0, 1, 2, ...) rather than by evidence."""
    try:
        order = {structure_label(s): i for i, s in enumerate(table.family.structures())}
    except Exception:  # a family that cannot enumerate its space: keep the table's order
        order = {}
    rows = list(table.rows)
    return sorted(rows, key=lambda r: order.get(structure_label(r.structure), len(order) + rows.index(r)))


def _positions(rows: Sequence["ComparisonRow"]) -> tuple[np.ndarray, str, list[str] | None]:
    """x positions of the structures: the value itself for one numeric key (the degree), else 0..K-1."""
    keys = {tuple(r.structure) for r in rows}
    if len(keys) == 1:
        (key_tuple,) = keys
        values = [r.structure[key_tuple[0]] for r in rows] if len(key_tuple) == 1 else None
        if values is not None and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values) \
                and len(set(values)) == len(values):
            return np.asarray(values, dtype=float), key_tuple[0], None
    return np.arange(len(rows), dtype=float), "structure", [structure_label(r.structure) for r in rows]


def _set_structure_axis(ax: "Axes", pos: np.ndarray, xlabel: str, ticklabels: list[str] | None) -> None:
    ax.set_xlabel(xlabel)
    if ticklabels is None:
        if np.allclose(pos, np.round(pos)) and len(pos) <= 30:
            ax.set_xticks(pos)
    else:
        ax.set_xticks(pos)
        ax.set_xticklabels(ticklabels, rotation=30 if max(map(len, ticklabels)) > 6 else 0, ha="right"
                           if max(map(len, ticklabels)) > 6 else "center")


def _method_colors(methods: Sequence[str]) -> dict[str, str]:
    others = [m for m in methods if m != "exact"]
    colors = {m: _style.color(i) for i, m in enumerate(others)}
    colors["exact"] = _EXACT_COLOR
    return colors


def _method_markers(methods: Sequence[str]) -> dict[str, str]:
    """One marker shape per non-exact method (o, s, D, ^, ...), in table order."""
    others = [m for m in methods if m != "exact"]
    return {m: _style.marker(i) for i, m in enumerate(others)}


def _draw_evidence(ax: "Axes", table: "ComparisonTable", rows: list, pos: np.ndarray, num_stderr: float,
                   keep: np.ndarray | None = None) -> None:
    """Evidence of ``rows`` at ``pos``; with ``keep``, only the rows where it is True.

    The exact line is broken (NaN) at the rows left out, so that on a zoomed panel no segment
    runs to a point outside the window.
    """
    methods = list(table.methods)
    colors = _method_colors(methods)
    markers = _method_markers(methods)
    keep = np.ones(len(rows), bool) if keep is None else np.asarray(keep, bool)
    estimated = [m for m in methods if m != "exact"]
    step = float(np.min(np.diff(np.unique(pos)))) if len(pos) > 1 else 1.0
    n = len(estimated)
    offsets = (np.arange(n) - (n - 1) / 2) * (0.5 * step / max(n, 1)) if n > 1 else np.zeros(n)
    if "exact" in methods:
        exact = np.array([r.estimates["exact"].log_evidence if k else np.nan for r, k in zip(rows, keep)])
        ax.plot(pos, exact, "-", color=_EXACT_COLOR, lw=1.2, label="exact", zorder=1)
    for m, off in zip(estimated, offsets):
        vals = np.array([r.estimates[m].log_evidence for r in rows])[keep]
        se = [r.estimates[m].stderr for r, k in zip(rows, keep) if k]
        has_se = any(s is not None for s in se)
        yerr = num_stderr * np.array([0.0 if s is None else s for s in se]) if has_se else None
        label = f"{m} (±{num_stderr:g} s.e.)" if has_se else f"{m} (no s.e.)"
        ax.errorbar(pos[keep] + off, vals, yerr=yerr, fmt=markers[m], ms=5, mfc="white", mew=1.3, capsize=3,
                    lw=1.0, color=colors[m], label=label, zorder=2)
    ax.set_ylabel("log evidence  log p(D | s)  [nats]")
    ax.grid(True, axis="y", alpha=0.3)


def plot_evidence(table: "ComparisonTable", ax: "Axes | None" = None, *, zoom: float | None = 10.0,
                  num_stderr: float = 2.0, zoom_ax: "Axes | None" = None) -> "Axes":
    """Log evidence per structure for every method of ``table``, on one plot.

    Each Monte Carlo method is drawn as hollow points with error bars of ``num_stderr``
    standard errors (2 ≈ 95 %), shifted slightly left or right so the methods do not overlap,
    each method in its own colour (Okabe-Ito) *and* marker shape, so the figure reads in
    greyscale; the ``exact`` evidence, where the table has it, is a black line. Structures are in the
    family's order, the x axis is the structure value when there is one numeric structure
    argument (e.g. ``degree``), else the labels.

    Evidence of poor structures can be tens of nats below the best (degree 0 on the
    sinusoid: -80 against -17), which squeezes the differences that matter. So when some
    structure lies more than ``zoom`` nats below the best (under ``table.reference_method``),
    a second panel shows only the structures within ``zoom`` nats of the best (the exact
    line is broken at the structures left out, so no segment leaves the window), and a
    dashed box marks that region on the full panel.

    Parameters
    ----------
    table : ComparisonTable
    ax : matplotlib Axes, optional
        Draw the full range here; default a new figure (with two panels when zooming).
    zoom : float or None
        Width in nats of the zoomed window below the best structure; ``None`` for no zoom
        panel. With ``ax`` given, the zoomed panel is drawn only into ``zoom_ax``.
    num_stderr : float
        Half-width of the error bars in standard errors.
    zoom_ax : matplotlib Axes, optional
        Where to draw the zoomed panel when ``ax`` is given.

    Returns
    -------
    matplotlib Axes
        The full-range panel; the zoomed one, if drawn, is ``ax.figure.axes[1]`` for a new
        figure (or ``zoom_ax``). Each panel holds one ``ErrorbarContainer`` per non-exact
        method (``ax.containers``) and one line labelled ``"exact"``.
    """
    _check_table(table)
    if zoom is not None and not (isinstance(zoom, numbers.Real) and zoom > 0):
        raise InvalidArgumentError(f"`zoom` must be a positive number of nats or None; got {zoom!r}")
    if not (isinstance(num_stderr, numbers.Real) and num_stderr >= 0):
        raise InvalidArgumentError(f"`num_stderr` must be a non-negative number; got {num_stderr!r}")
    rows = _natural_rows(table)
    pos, xlabel, ticklabels = _positions(rows)
    ref = np.array([r.estimates[table.reference_method].log_evidence for r in rows])
    inside = ref >= ref.max() - zoom if zoom is not None else np.ones(len(rows), bool)
    want_zoom = zoom is not None and not inside.all()
    if ax is None:
        if want_zoom:
            _, (ax, zoom_ax) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
        else:
            _, ax = plt.subplots(figsize=(7, 4.8), layout="constrained")
    panels = [ax] + ([zoom_ax] if want_zoom and zoom_ax is not None else [])
    for a in panels:
        _draw_evidence(a, table, rows, pos, num_stderr, keep=inside if a is zoom_ax else None)
        _set_structure_axis(a, pos, xlabel, ticklabels)
    ax.set_title(f"{table.family.name}: log evidence per structure")
    if len(panels) == 2:
        step = float(np.min(np.diff(np.unique(pos)))) if len(pos) > 1 else 1.0
        lo_vals, hi_vals = [], []
        for m in table.methods:
            for r, keep in zip(rows, inside):
                if keep:
                    e = r.estimates[m]
                    half = num_stderr * (e.stderr or 0.0)
                    lo_vals.append(e.log_evidence - half)
                    hi_vals.append(e.log_evidence + half)
        lo, hi = min(lo_vals), max(hi_vals)
        pad = max(0.08 * (hi - lo), 0.05)
        x_lo, x_hi = pos[inside].min() - 0.5 * step, pos[inside].max() + 0.5 * step
        zoom_ax.set_xlim(x_lo, x_hi)
        zoom_ax.set_ylim(lo - pad, hi + pad)
        if ticklabels is None and np.allclose(pos, np.round(pos)):
            zoom_ax.set_xticks(pos[inside])
        zoom_ax.set_title(f"zoom: structures within {zoom:g} nats of the best ({table.reference_method})")
        ax.add_patch(Rectangle((x_lo, lo - pad), x_hi - x_lo, hi - lo + 2 * pad, fill=False, ls="--", lw=1.0,
                               ec="0.4", zorder=0))
        ax.annotate("zoomed →", (x_hi, lo - pad), xytext=(-2, -3), textcoords="offset points", ha="right",
                    va="top", fontsize="small", color="0.3")
    if zoom_ax is not None and len(panels) == 1:  # every structure within `zoom` nats: nothing to zoom into
        zoom_ax.text(0.5, 0.5, f"every structure is within {zoom:g} nats of the best:\nthe left panel shows them all",
                     ha="center", va="center", transform=zoom_ax.transAxes, fontsize="small", color="0.3")
        zoom_ax.set_axis_off()
    (panels[-1]).legend(loc="best", fontsize="small", title="method (hollow markers; most error\n"
                                                             "bars are smaller than the markers)",
                        title_fontsize="small")
    return ax


def plot_predictive(table: "ComparisonTable", x_grid: Any = None, level: float = 0.9, ax: "Axes | None" = None, *,
                    truth: Callable[[np.ndarray], Any] | None = None, num_samples: int = 1000,
                    seed: int = 0) -> "Axes":
    """Data with the posterior predictive of the best structure and of the model average.

    As PRML fig. 3.8/3.9: the mean of ``p(y* | x*, D)`` and its central ``level`` predictive
    interval of y for the top structure of ``table`` (vermillion, solid mean, filled band),
    and for the Bayesian model average ``Σ_s p(s | D) p(y* | x*, D, s)`` (blue, dashed mean,
    dashed outline); the data as open circles and, optionally, the true function (black,
    dotted). The draws come from ``table.posterior_predictive(x_grid)`` and include the
    observation noise, so the bands are intervals of y, not of the mean function. The
    legend sits outside the axes, to the right.

    Parameters
    ----------
    table : ComparisonTable
    x_grid : array-like ``(G,)``, optional
        Inputs to predict at; default 200 points spanning the data.
    level : float in (0, 1)
        Probability mass of the band.
    ax : matplotlib Axes, optional
    truth : callable, optional
        The noise-free function, called with a numpy array ``(G,)`` and returning ``(G,)``,
        e.g. ``lambda x: np.sin(2 * np.pi * x)``.
    num_samples : int
        Predictive draws per curve.
    seed : int
        Seed of the predictive draws.

    Returns
    -------
    matplotlib Axes
        With two bands (``PolyCollection``), the data (``PathCollection``) and two mean
        lines (three with ``truth``).
    """
    from bayesstruct.compare import PosteriorPredictive

    _check_table(table)
    if not (isinstance(level, numbers.Real) and 0 < level < 1):
        raise InvalidArgumentError(f"`level` must be a probability in (0, 1), e.g. 0.9; got {level!r}")
    if truth is not None and not callable(truth):
        raise InvalidArgumentError(f"`truth` must be a callable x -> f(x); got {type(truth).__name__}")
    if table.y is None:
        raise InvalidArgumentError(f"plot_predictive draws y against x, and {table.family.name!r} has no y")
    x = table.x.detach().cpu().numpy()
    y = table.y.detach().cpu().numpy()
    if x.ndim != 1:
        raise InvalidArgumentError(f"plot_predictive draws 1-D inputs; the table's x has shape {x.shape}")
    if x_grid is None:
        x_grid = np.linspace(x.min(), x.max(), 200)
    grid = np.asarray(x_grid.detach().cpu() if hasattr(x_grid, "detach") else x_grid, dtype=float)
    if grid.ndim != 1 or grid.size < 2:
        raise InvalidArgumentError(f"`x_grid` must be 1-D with at least 2 points; got shape {grid.shape}")
    pp = table.posterior_predictive(grid, num_samples=num_samples, seed=seed)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4.8), layout="constrained")
    best_label = structure_label(table.best)
    pct = f"{100 * level:g}%"
    # best: a filled band; average: an outlined (dashed) band, so the two stay apart where they overlap
    curves = [(pp.best, _BEST_COLOR, "-", f"best ({best_label})", dict(facecolor=_BEST_COLOR, alpha=0.2, lw=0)),
              (pp.average, _AVERAGE_COLOR, "--", "model average",
               dict(facecolor="none", edgecolor=_AVERAGE_COLOR, linestyle="--", lw=1.2))]
    for draws, color, ls, name, style in curves:
        mean, lo, hi = (t.detach().cpu().numpy() for t in PosteriorPredictive.band(draws, level))
        ax.fill_between(grid, lo, hi, label=f"{name}: {pct} predictive interval of y", **style)
        ax.plot(grid, mean, ls, color=color, lw=1.8, label=f"{name}: mean")
    if truth is not None:
        f = np.asarray(truth(grid), dtype=float)
        if f.shape != grid.shape:
            raise InvalidArgumentError(f"`truth` must return an array of shape {grid.shape}; got {f.shape}")
        ax.plot(grid, f, ":", color=_TRUTH_COLOR, lw=1.6, label="truth (noise-free)")
    ax.scatter(x, y, s=28, facecolors="none", edgecolors="black", linewidths=1.0, label="data", zorder=3)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"{table.family.name}: posterior predictive, best structure vs model average")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", borderaxespad=0.0,
              title=f"bands: {pct} of p(y* | x*, D),\nobservation noise included", title_fontsize="small")
    return ax


def plot_posterior_probabilities(table: "ComparisonTable", ax: "Axes | None" = None) -> "Axes":
    """Bar chart of the posterior probability ``p(s | D)`` of each structure.

    ``p(s | D) = p(D | s) p(s) / Σ_s' p(D | s') p(s')`` with the evidence of
    ``table.reference_method``; the best structure's bar is vermillion (with its own legend
    entry), the others grey, and the prior ``p(s)`` is marked by a short black line on each
    bar. Every bar is labelled with its probability (``"<0.01"`` below 0.005, so a bar too
    low to see still reads as "≈ 0", not "missing"), above both the bar and the prior mark.

    Parameters
    ----------
    table : ComparisonTable
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        One bar (``Rectangle`` in ``ax.patches``) per structure, in the family's order.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    _check_table(table)
    rows = _natural_rows(table)
    pos, xlabel, ticklabels = _positions(rows)
    probs = np.array([r.posterior_probability for r in rows])
    prior = np.exp([r.log_prior for r in rows])
    best = structure_label(table.best)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    colors = [_BEST_COLOR if structure_label(r.structure) == best else _OTHER_COLOR for r in rows]
    step = float(np.min(np.diff(np.unique(pos)))) if len(pos) > 1 else 1.0
    bars = ax.bar(pos, probs, width=0.7 * step, color=colors, edgecolor="black", lw=0.6)
    bars.set_label("p(s | D)")
    (prior_line,) = ax.plot(pos, prior, "_", color="black", ms=16, mew=1.5, label="prior p(s)")
    top = max(probs.max(), prior.max())
    for p, v, q in zip(pos, probs, prior):
        text = f"{v:.2f}" if v >= 0.005 else "<0.01"
        # above the bar and the prior mark, whichever is higher (the mark is drawn at q)
        ax.annotate(text, (p, max(v, q)), xytext=(0, 4), textcoords="offset points",
                    ha="center", va="bottom", fontsize="small", color="0.35" if v < 0.005 else "black")
    ax.set_ylim(0, top * 1.15 + 0.02)  # room for the labels above a bar near 1 (no tick above 1)
    ax.set_yticks([t for t in ax.get_yticks() if -1e-9 <= t <= 1.0 + 1e-9])
    _set_structure_axis(ax, pos, xlabel, ticklabels)
    ax.set_ylabel("posterior probability  p(s | D)")
    ax.set_title(f"{table.family.name}: posterior over structures (evidence: {table.reference_method})")
    handles = [Patch(facecolor=_BEST_COLOR, edgecolor="black", lw=0.6, label=f"p(s | D), best ({best})"),
               Patch(facecolor=_OTHER_COLOR, edgecolor="black", lw=0.6, label="p(s | D), other structures"),
               Line2D([], [], ls="", marker="_", color="black", ms=16, mew=1.5, label=prior_line.get_label())]
    ax.legend(handles=handles, loc="best", fontsize="small")
    return ax


def plot_weights(idata: "az.InferenceData | Mapping[str, az.InferenceData]", kind: str = "forest",
                 var_names: Sequence[str] | str = ("w",), **kwargs: Any) -> "Figure":
    """Posterior of the weights with ArviZ: ``az.plot_forest`` or ``az.plot_posterior``.

    Parameters
    ----------
    idata : arviz.InferenceData or dict of str to InferenceData
        From :func:`bayesstruct.io.to_inference_data`; a dict (e.g.
        :func:`bayesstruct.io.table_inference_data`) draws one forest with a row group per
        structure (``kind="forest"`` only).
    kind : {"forest", "posterior"}
        ``"forest"``: HDI intervals of each weight; ``"posterior"``: one density panel per
        weight component.
    var_names : str or sequence of str
        Posterior variables to draw (the polynomial family's weights are ``"w"``, shape
        ``(chain, draw, M + 1)``).
    **kwargs
        Passed to the ArviZ function (``hdi_prob``, ``figsize``, ``textsize``, ...). Defaults
        here: ``hdi_prob=0.9`` (the level of :func:`plot_predictive`'s bands, not ArviZ's
        0.94) and ``textsize=10`` (ArviZ's auto-scaled text is about 1.5 times larger than
        the other figures').

    Returns
    -------
    matplotlib Figure
        Its x axis is labelled "weight value" and every row is labelled in full (``w[1]``,
        not ArviZ's ``[1]``); the suptitle names the structure and the method (for
        ``laplace``: the Gaussian approximation at the MAP).
    """
    if kind not in ("forest", "posterior"):
        raise InvalidArgumentError(f"`kind` must be 'forest' or 'posterior'; got {kind!r}")
    var_names = [var_names] if isinstance(var_names, str) else list(var_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    if isinstance(idata, Mapping) and not isinstance(idata, az.InferenceData):  # InferenceData is a Mapping too
        models = dict(idata)
        if not models:
            raise InvalidArgumentError("`idata` is an empty dict")
        if kind == "posterior" and len(models) > 1:
            raise InvalidArgumentError("kind='posterior' draws one InferenceData; pass one (e.g. idatas['degree=3']) "
                                       "or use kind='forest' to compare structures")
    else:
        models = {"": idata}
    for name, data in models.items():
        if not hasattr(data, "groups") or "posterior" not in data.groups():
            where = f"`idata`{f'[{name!r}]' if name else ''}"
            raise InvalidArgumentError(f"{where} must be an InferenceData with a posterior group (see "
                                       f"bayesstruct.io.to_inference_data); got {type(data).__name__}")
        missing = [v for v in var_names if v not in data.posterior.data_vars]
        if missing:
            raise InvalidArgumentError(f"`var_names` {missing} not in the posterior{f' of {name!r}' if name else ''}; "
                                       f"its variables: {list(data.posterior.data_vars)}")
    with warnings.catch_warnings():
        # ArviZ 0.23's own deprecation noise (its 1.x migration, its use of matplotlib's API)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices of the padded components
        kwargs.setdefault("hdi_prob", 0.9)
        kwargs.setdefault("textsize", 10)
        if kind == "forest":
            kwargs.setdefault("combined", True)
            if len(models) > 1:
                aligned = _align_components(models, var_names)
                axes = az.plot_forest(aligned, model_names=list(models), var_names=var_names, **kwargs)
            else:
                axes = az.plot_forest(next(iter(models.values())), var_names=var_names, **kwargs)
        else:
            axes = az.plot_posterior(next(iter(models.values())), var_names=var_names, **kwargs)
    fig = np.ravel(axes)[0].figure
    if kind == "forest":
        ax0 = np.ravel(axes)[0]
        ax0.set_xlabel("weight value", fontsize=kwargs["textsize"])
        if kwargs.get("quartiles", True) and kwargs.get("kind", "forestplot") == "forestplot":
            # ArviZ titles the panel "90.0% HDI" only; its thick line and circle are unexplained
            ax0.set_title(f"thin: {ax0.get_title()}, thick: 25-75% quantiles, circle: median",
                          fontsize=kwargs["textsize"])
        _full_row_labels(ax0)
    if len(models) == 1:
        attrs = next(iter(models.values())).attrs
        method = attrs.get("bayesstruct_method")
        described = {"laplace": "laplace: Gaussian approximation at the MAP"}
        parts = [str(attrs["structure"])] if "structure" in attrs else []
        if method is not None:
            parts.append(described.get(str(method), str(method)))
        what = ", ".join(parts)
        if what:
            fig.suptitle(f"posterior of {', '.join(var_names)} ({what})", fontsize=kwargs["textsize"] + 1)
    return fig


def _full_row_labels(ax: "Axes") -> None:
    """ArviZ's forest rows read ``w[0]``, ``[1]``, ``[2]``: write the variable name on every row."""
    labels = [t.get_text() for t in ax.get_yticklabels()]
    if not labels:
        return
    fixed, name = [], ""
    # ArviZ lists the rows bottom-up: the named row (w[0]) is the last tick
    for text in reversed(labels):
        if "[" in text and not text.startswith("["):
            name = text[: text.index("[")]
        fixed.append(name + text if text.startswith("[") and name else text)
    ax.set_yticks(ax.get_yticks(), list(reversed(fixed)))


def _align_components(models: Mapping[str, Any], var_names: list[str]) -> list[Any]:
    """Posteriors of ``var_names`` reindexed to the union of their coordinates, NaN where absent.

    Structures of different size have weights of different length (``w_dim_0`` = 0..3 for
    degree 3, 0..5 for degree 5); ArviZ 0.23's forest plot mislabels rows of such ragged
    models, so each model is padded to the common coordinates first.
    """
    import arviz as az

    posteriors = [data.posterior[var_names] for data in models.values()]
    dims = {d for post in posteriors for d in post.dims if d not in ("chain", "draw")}
    union = {}
    for d in dims:
        values = [v for post in posteriors if d in post.dims for v in post[d].values.tolist()]
        unique = list(dict.fromkeys(values))
        try:
            unique = sorted(unique)
        except TypeError:
            pass
        union[d] = unique
    out = []
    for post in posteriors:
        index = {d: union[d] for d in post.dims if d in union and post[d].values.tolist() != union[d]}
        out.append(az.InferenceData(posterior=post.reindex(index) if index else post))
    return out
