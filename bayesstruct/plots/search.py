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

from typing import TYPE_CHECKING, Sequence

import matplotlib.pyplot as plt
import numpy as np

from bayesstruct.exceptions import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from bayesstruct.search import SearchResult

__all__ = ["plot_search_history", "plot_latency_accuracy"]


def plot_search_history(result: "SearchResult", ax: "Axes | None" = None, *, edge: tuple[int, int] | None = None,
                        title: str | None = None) -> "Axes":
    """How a search moved: the edge's :math:`\\gamma` per epoch, or the controller's rewards per update.

    Parameters
    ----------
    result : SearchResult
    edge : (j, k), optional
        The edge to draw for DARTS / FBNet (default: the first searched edge).
    title : str, optional
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
        for i, name in enumerate(result.graph.edges[edge]):
            lw = 2.5 if name == result.network.choice[edge] else 1.5
            ax.plot(epochs, gam[:, i], lw=lw, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"$\\gamma^{{{edge[0]},{edge[1]}}}$")
        ax.set_ylim(0, 1)
    elif hist and "update" in hist[0]:
        updates = np.array([h["update"] for h in hist])
        ax.plot(updates, [h["mean_reward"] for h in hist], label="mean reward of the batch")
        ax.plot(updates, [h["best_reward"] for h in hist], "--", label="best so far")
        ax.plot(updates, [h["baseline"] for h in hist], ":", label="baseline $b$")
        ax.set_xlabel("controller update")
    else:
        samples = np.array([h["sample"] for h in hist])
        ax.plot(samples, [h["reward"] for h in hist], "o", label="reward of the structure")
        ax.plot(samples, [h["best_reward"] for h in hist], "--", label="best so far")
        ax.set_xlabel("structures trained")
    if "gamma" not in (hist[0] if hist else {}):
        kind = result.diagnostics.get("reward", "custom")
        ax.set_ylabel({"accuracy": "reward: validation accuracy",
                       "log-likelihood": "reward: mean validation log-likelihood"}.get(kind, "reward"))
    ax.set_title(title if title is not None else result.method)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_latency_accuracy(latency: Sequence[float], accuracy: Sequence[float], labels: Sequence[str] | None = None,
                          ax: "Axes | None" = None, *, reference: tuple[Sequence[float], Sequence[float]] | None = None,
                          unit: str = "µs") -> "Axes":
    """Validation accuracy against the latency of each found structure (one point per search).

    ``latency``, ``accuracy``: equal-length sequences (e.g. ``r.diagnostics["latency"]`` and
    ``r.val_accuracy`` of FBNet searches at several latency exponents); ``labels`` annotate
    the points (labels of coinciding points are joined). ``reference=(latency, accuracy)``
    draws other structures underneath in grey (e.g. every structure of the space, trained).
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
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    if reference is not None:
        if not (isinstance(reference, (tuple, list)) and len(reference) == 2):
            raise InvalidArgumentError("`reference` must be the pair (latency, accuracy)")
        rl, ra = pair(*reference, "reference")
        ax.plot(rl, ra, "o", color="0.75", ms=4, label="every structure")
    ax.plot(lat, acc, "o", color="tab:red", label="found")
    groups: dict[tuple[float, float], list[str]] = {}
    for i, text in enumerate(labels or []):
        groups.setdefault((float(lat[i]), float(acc[i])), []).append(str(text))
    for (x, y), texts in groups.items():
        ax.annotate(", ".join(texts), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel(f"latency of the structure ({unit})")
    ax.set_ylabel("validation accuracy")
    ax.grid(True, alpha=0.3)
    if reference is not None:
        ax.legend(fontsize=8)
    return ax
