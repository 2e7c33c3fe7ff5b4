r"""Figures of a structure search (:mod:`bayesstruct.search`).

=====================================  =====================================================
:func:`plot_search_history`            DARTS / FBNet: :math:`\gamma` of each primitive of an
                                       edge against the epoch (the weight-only warmup
                                       shaded); the RL controller: mean and best reward
                                       against the update
:func:`plot_latency_accuracy`          validation accuracy against latency, one point per
                                       search (FBNet's trade-off)
=====================================  =====================================================

Conventions as in :mod:`bayesstruct.plots`: ``ax=None`` draws a new figure, the Axes is
returned, nothing calls ``plt.show``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.plots.style import color, marker, primitive_style

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from bayesstruct.search import SearchResult

__all__ = ["plot_search_history", "plot_latency_accuracy", "primitive_style"]

def _join_labels(texts: list[str]) -> str:
    """``"a=1", "a=2"`` -> ``"a ∈ {1, 2}"``; anything else joined by commas."""
    if len(texts) > 1 and all(t.count("=") == 1 for t in texts):
        keys = {t.split("=")[0] for t in texts}
        if len(keys) == 1:
            return f"{keys.pop()} ∈ {{{', '.join(t.split('=')[1] for t in texts)}}}"
    return ", ".join(texts)


def plot_search_history(result: "SearchResult", ax: "Axes | None" = None, *, edge: tuple[int, int] | None = None,
                        title: str | None = None, styles: Mapping[str, Mapping[str, Any]] | None = None,
                        reward_unit: str | None = None) -> "Axes":
    """How a search moved: the edge's :math:`\\gamma` per epoch, or the controller's rewards per update.

    Parameters
    ----------
    result : SearchResult
    edge : (j, k), optional
        The edge to draw for DARTS / FBNet (default: the first searched edge).
    title : str, optional
    styles : mapping of str to dict, optional
        Line properties per primitive name (default :func:`primitive_style`: colour, line style
        and marker keyed by the name, so a primitive looks the same on every edge's panel).
    reward_unit : str, optional
        Unit of the reward in the y label (default: "nats per validation example" for the
        log-likelihood reward, none for accuracy).
    """
    from bayesstruct.search import SearchResult

    if not isinstance(result, SearchResult):
        raise InvalidArgumentError(f"`result` must be a SearchResult (bayesstruct.search); got {type(result).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    hist = result.history
    if hist and "gamma" in hist[0]:
        edges = list(result.gamma)
        edge = edges[0] if edge is None else tuple(edge)
        if edge not in result.gamma:
            raise InvalidArgumentError(f"`edge` must be one of the searched edges {edges}; got {edge!r}")
        epochs = np.array([h["epoch"] for h in hist])
        gam = np.array([h["gamma"][edge].tolist() for h in hist])
        warm = [h["epoch"] for h in hist if not h.get("searching", True)]
        if warm:
            ax.axvspan(0.5, max(warm) + 0.5, color="0.9", label="weights only")
        every = max(1, len(epochs) // 8)
        for i, name in enumerate(result.graph.edges[edge]):
            chosen = name == result.network.choice[edge]
            sty = dict(primitive_style(name))
            sty.update((styles or {}).get(name, {}))
            ax.plot(epochs, gam[:, i], lw=2.6 if chosen else 1.5, markevery=(i % every, every), ms=5,
                    label=name, **sty)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"$\\gamma^{{{edge[0]},{edge[1]}}}$")
        ax.set_ylim(0, 1)
    elif hist and "update" in hist[0]:
        updates = np.array([h["update"] for h in hist])
        ax.plot(updates, [h["mean_reward"] for h in hist], color=color(0), marker=marker(0), ms=4,
                label="mean reward of the batch")
        ax.plot(updates, [h["best_reward"] for h in hist], "--", color=color(1), label="best so far")
        ax.plot(updates, [h["baseline"] for h in hist], ":", color=color(2), lw=2, label="baseline $b$")
        ax.set_xlabel("controller update")
    else:
        samples = np.array([h["sample"] for h in hist])
        ax.plot(samples, [h["reward"] for h in hist], "o", color=color(0), label="reward of the structure")
        ax.plot(samples, [h["best_reward"] for h in hist], "--", color=color(1), label="best so far")
        ax.set_xlabel("structures trained")
    if "gamma" not in (hist[0] if hist else {}):
        kind = result.diagnostics.get("reward", "custom")
        label = {"accuracy": "reward: validation accuracy",
                 "log-likelihood": "reward: mean validation log-likelihood"}.get(kind, "reward")
        unit = reward_unit if reward_unit is not None else ("nats per example" if kind == "log-likelihood" else None)
        ax.set_ylabel(label + (f"\n({unit})" if unit else ""))
    ax.set_title(title if title is not None else result.method)
    ax.grid(True, alpha=0.3)
    if hist and "gamma" in hist[0]:
        ax.legend(fontsize=8, title="thick line: the chosen primitive", title_fontsize=7)
    else:
        ax.legend(fontsize=8)
    return ax


def plot_latency_accuracy(latency: Sequence[float], accuracy: Sequence[float], labels: Sequence[str] | None = None,
                          ax: "Axes | None" = None, *, reference: tuple[Sequence[float], Sequence[float]] | None = None,
                          unit: str = "µs", ylim: tuple[float, float] | None = None,
                          xlabel: str | None = None) -> "Axes":
    """Validation accuracy against the latency of each found structure (one point per search).

    ``latency``, ``accuracy``: equal-length sequences (e.g. ``r.diagnostics["latency"]`` and
    ``r.val_accuracy`` of FBNet searches at several latency exponents); ``labels`` annotate
    the points (labels of coinciding points are joined: ``"λ=0", "λ=2"`` become ``"λ ∈ {0, 2}"``).
    ``reference=(latency, accuracy)`` draws other structures underneath in grey (e.g. every
    structure of the space, trained); a reference point that stands for several coinciding
    structures is labelled ``×k``.

    ``ylim=(lo, hi)`` zooms the accuracy axis without hiding anything: points outside it are
    drawn on the nearest edge as open triangles (▼ below, ▲ above), and the legend says how
    many there are. ``xlabel`` replaces the default "latency of the structure (µs)".
    """
    def pair(lat, acc, name):
        lat = np.asarray(lat, dtype=float).reshape(-1)
        acc = np.asarray(acc, dtype=float).reshape(-1)
        if lat.shape != acc.shape or not len(lat):
            raise InvalidArgumentError(f"`{name}` latency and accuracy must be non-empty and of equal length; "
                                       f"got {len(lat)} and {len(acc)}")
        return lat, acc

    lat, acc = pair(latency, accuracy, "latency`/`accuracy")
    if labels is not None and len(labels) != len(lat):
        raise InvalidArgumentError(f"`labels` must have one entry per point ({len(lat)}); got {len(labels)}")
    if ylim is not None:
        if not (isinstance(ylim, (tuple, list)) and len(ylim) == 2 and float(ylim[0]) < float(ylim[1])):
            raise InvalidArgumentError(f"`ylim` must be (low, high) with low < high; got {ylim!r}")
        ylim = (float(ylim[0]), float(ylim[1]))
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))

    def clip(a):
        if ylim is None:
            return a, np.zeros(a.shape, bool), np.zeros(a.shape, bool)
        return np.clip(a, *ylim), a < ylim[0], a > ylim[1]

    grey, found = "0.6", "black"
    if reference is not None:
        if not (isinstance(reference, (tuple, list)) and len(reference) == 2):
            raise InvalidArgumentError("`reference` must be the pair (latency, accuracy)")
        rl, ra = pair(*reference, "reference")
        shown, below, above = clip(ra)
        inside = ~(below | above)
        ax.plot(rl, np.where(inside, ra, np.nan), "o", color=grey, ms=4,
                label=f"every structure ({len(rl)})")
        for mask, m, where in ((below, "v", "below"), (above, "^", "above")):
            if mask.any():
                ax.plot(rl[mask], shown[mask], m, mfc="none", mec="0.35", ms=6, clip_on=False,
                        label=f"{int(mask.sum())} structures {where} {ylim[0] if where == 'below' else ylim[1]:g}, "
                              f"drawn on the edge")
        counts: dict[tuple[float, float], int] = {}
        for x, y_ in zip(rl, shown):
            counts[(round(float(x), 6), round(float(y_), 6))] = counts.get((round(float(x), 6), round(float(y_), 6)), 0) + 1
        for (x, y_), k in counts.items():
            if k > 1:
                ax.annotate(f"×{k}", (x, y_), textcoords="offset points", xytext=(3, -9), fontsize=6, color="0.4")
    shown, below, above = clip(acc)
    inside = ~(below | above)
    ax.plot(lat, np.where(inside, acc, np.nan), "D", color=found, ms=7, label="found", zorder=3)
    for mask, m, where in ((below, "v", "below"), (above, "^", "above")):
        if mask.any():
            ax.plot(lat[mask], shown[mask], m, color=found, ms=8, clip_on=False, zorder=3,
                    label=f"found, {where} {ylim[0] if where == 'below' else ylim[1]:g} (drawn on the edge)")
    groups: dict[tuple[float, float], list[str]] = {}
    for i, text in enumerate(labels or []):
        groups.setdefault((float(lat[i]), float(shown[i])), []).append(str(text))
    for (x, y_), texts in groups.items():
        ax.annotate(_join_labels(texts), (x, y_), textcoords="offset points", xytext=(6, 5), fontsize=8, zorder=4)
    ax.set_xlabel(f"latency of the structure ({unit})" if xlabel is None else xlabel)
    ax.set_ylabel("validation accuracy")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(True, alpha=0.3)
    if reference is not None or ylim is not None:
        ax.legend(fontsize=8)
    return ax
