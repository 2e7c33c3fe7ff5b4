"""Iterative pruning with retraining (Han, Pool, Tran & Dally, NIPS 2015).

"Learning both weights and connections": train, remove the connections of smallest
saliency, *retrain the survivors starting from the weights they had* (never
re-initialised), and repeat. Each round ``r`` reaches a target fraction ``k_r`` of the
prunable weights kept; retraining uses an L1 or L2 penalty (the paper finds L2 best with
retraining, L1 best right after pruning). After a few rounds the weight distribution,
unimodal around zero for the dense net, becomes bimodal: the survivors move away from the
pruned gap around zero (the paper's fig. 4). :func:`weight_histogram` counts it.

The removed weights are masked (:func:`bayesstruct.prune.prune`), so no round revives a
weight an earlier round removed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from bayesstruct import _json
from bayesstruct._validation import check_seed
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.prune.saliency import (
    Scope,
    _batches,
    _check_batches,
    _check_finite_weights,
    _check_layers,
    _check_model_takes,
    _enum,
    _is_real,
    get_masks,
    get_saliency,
    prune,
)
from bayesstruct.prune.training import _check_loss_fn, _check_optimizer, _int, _number, _param_dtype, check_data, evaluate, train

__all__ = ["WeightHistogram", "RoundResult", "IterativeResult", "weight_histogram", "iterative_prune", "fraction_kept"]

REGULARIZATIONS = ("l1", "l2", "none")


def fraction_kept(model: nn.Module) -> float:
    """Fraction of the prunable weights that are non-zero: ``sum_l nnz(W_l) / sum_l numel(W_l)``.

    The prunable weights are those of every ``nn.Linear``/``nn.Conv2d`` layer; biases are not
    counted. A masked weight is exactly zero, so on a masked model this is the fraction not
    masked; it stays the same after :func:`bayesstruct.prune.remove_pruning` bakes the masks
    in (the pruned entries are zeros then, not masked), and it counts a kept weight that is
    exactly zero (e.g. quantised to a zero centroid) as removed. This is the definition of
    :attr:`bayesstruct.prune.Account.fraction_kept` (``num_nonzero / num_weights``).

    Parameters
    ----------
    model : nn.Module
        With at least one ``nn.Linear``/``nn.Conv2d`` layer.

    Returns
    -------
    float
        In ``[0, 1]``.

    Examples
    --------
    >>> import torch
    >>> from bayesstruct.prune import prune, remove_pruning
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 2))
    >>> _ = prune(net, "magnitude", amount=0.25)
    >>> fraction_kept(net), fraction_kept(remove_pruning(net))
    (0.75, 0.75)
    """
    return _nonzero(model) / sum(mod.weight.numel() for _, mod in _check_layers(model))


@dataclass(frozen=True)
class WeightHistogram:
    """Histogram of the prunable weights of a model.

    Attributes
    ----------
    counts : ndarray of int, ``(num_bins,)``
        Counts per bin (of the non-zero weights when made with ``nonzero_only=True``).
    edges : ndarray of float, ``(num_bins + 1,)``
        Bin edges, increasing.
    num_zero : int
        Weights exactly zero (pruned ones included).
    num_weights : int
        All prunable weights.
    num_outside : int
        Weights the histogram would count (the non-zero ones with ``nonzero_only=True``, else
        all) that lie outside ``edges``, so in no bin: ``counts.sum() + num_outside`` is the
        number counted.
    """

    counts: np.ndarray
    edges: np.ndarray
    num_zero: int
    num_weights: int
    num_outside: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts.tolist(), "edges": self.edges.tolist(), "num_zero": self.num_zero,
                "num_weights": self.num_weights, "num_outside": self.num_outside}

    def __repr__(self) -> str:
        """One line: the counts, the range and number of bins, and the (at most 4 highest) modes -- not the arrays."""
        modes = self.modes()
        low, high = (float(self.edges[0]), float(self.edges[-1])) if len(self.edges) else (math.nan, math.nan)
        tiny = 1e-9 * max(abs(low), abs(high))
        fmt = lambda m: f"{0.0 if abs(m) <= tiny else m:.3g}"  # noqa: E731  (a centre at 0 is not 6.9e-18)
        if len(modes) > 4:  # a noisy histogram has many local maxima: show the 4 highest, in order of position
            centres = 0.5 * (self.edges[1:] + self.edges[:-1])
            height = {m: int(self.counts[int(np.argmin(np.abs(centres - m)))]) for m in modes}
            top = sorted(sorted(modes, key=lambda m: -height[m])[:4])
            shown = ", ".join(fmt(m) for m in top) + f", ... (+{len(modes) - 4} lower)"
        else:
            shown = ", ".join(fmt(m) for m in modes)
        return (f"WeightHistogram(num_weights={self.num_weights}, num_zero={self.num_zero}, counted={int(self.counts.sum())}, "
                f"range=({low:.3g}, {high:.3g}), bins={len(self.counts)}, modes=[{shown}])")

    def modes(self) -> list[float]:
        """Bin centres of the local maxima of ``counts`` (a strict rise before, a fall after, plateaus allowed)."""
        c, centres = self.counts, 0.5 * (self.edges[1:] + self.edges[:-1])
        out, i = [], 0
        while i < len(c):
            j = i
            while j + 1 < len(c) and c[j + 1] == c[i]:
                j += 1
            left = c[i - 1] if i > 0 else -1
            right = c[j + 1] if j + 1 < len(c) else -1
            if c[i] > 0 and c[i] > left and c[i] > right:
                out.append(float(centres[(i + j) // 2]))
            i = j + 1
        return out


def weight_histogram(
    model: nn.Module, *, bins: int | Sequence[float] = 81, range: tuple[float, float] | None = None, nonzero_only: bool = True
) -> WeightHistogram:
    """Histogram of all prunable weights of ``model`` (``numpy.histogram`` semantics).

    Parameters
    ----------
    bins : int or sequence of edges
    range : (low, high), optional
        Default: symmetric ``(-m, m)`` with ``m`` the largest ``|w|``, so histograms of the same
        model before and after pruning share a centre.
    nonzero_only : bool
        Count only non-zero weights (the pruned zeros would otherwise dominate one bin).
    """
    _check_finite_weights(_check_layers(model))
    bins, range = _check_bins(bins, range)
    return _histogram(_flat_weights(model), bins, range, nonzero_only)


def _check_bins(bins: Any, range: Any) -> tuple[Any, Any]:
    """``bins`` an integer >= 1 or increasing finite edges; ``range`` None or finite ``(low, high)`` with low < high."""
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise InvalidArgumentError(f"`bins` must be an integer >= 1 or a sequence of increasing bin edges; got {bins!r}")
    else:
        try:
            edges = np.asarray(bins.detach().cpu() if torch.is_tensor(bins) else bins, dtype=np.float64)
        except (TypeError, ValueError):
            edges = None
        if edges is None or edges.ndim != 1 or edges.size < 2 or not np.isfinite(edges).all() or not (np.diff(edges) > 0).all():
            raise InvalidArgumentError(
                f"`bins` must be an integer >= 1 or a sequence of at least 2 increasing finite bin edges; got {bins!r}"
            )
        bins = edges
    if range is not None:
        ok = isinstance(range, (tuple, list)) and len(range) == 2 and all(_is_real(v) and math.isfinite(v) for v in range)
        if not ok or not range[0] < range[1]:
            raise InvalidArgumentError(f"`range` must be None or finite (low, high) with low < high; got {range!r}")
        range = (float(range[0]), float(range[1]))
    return bins, range


def _flat_weights(model: nn.Module) -> np.ndarray:
    return torch.cat([m.weight.detach().reshape(-1).double() for _, m in _check_layers(model)]).cpu().numpy()


def _histogram(w: np.ndarray, bins: Any, range: tuple[float, float] | None, nonzero_only: bool) -> WeightHistogram:
    num_zero = int((w == 0).sum())
    values = w[w != 0] if nonzero_only else w
    if range is None:
        m = float(np.abs(w).max()) if w.size else 1.0
        m = m if m > 0 else 1.0
        range = (-m, m)
    counts, edges = np.histogram(values, bins=bins, range=range)
    return WeightHistogram(counts=counts.astype(np.int64), edges=edges, num_zero=num_zero, num_weights=int(w.size),
                           num_outside=int(values.size - counts.sum()))


@dataclass(frozen=True)
class RoundResult:
    """One round: prune to ``target_kept`` then retrain. Errors are fractions misclassified."""

    round: int
    amount: float  # fraction of all surviving weights removed this round
    target_kept: float
    fraction_kept: float
    num_nonzero: int
    train_error: float
    test_error: float | None
    test_error_before_retrain: float | None
    train_loss: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class IterativeResult:
    """Per-round history of :func:`iterative_prune` and the weight histograms before/after.

    ``rounds[0]`` is round 0: the model as given (nothing pruned, no retraining).
    """

    method: str
    regularization: str
    strength: float
    rounds: tuple[RoundResult, ...]
    histogram_before: WeightHistogram = field(repr=False)
    histogram_after: WeightHistogram = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "regularization": self.regularization,
            "strength": self.strength,
            "rounds": [r.to_dict() for r in self.rounds],
            "histogram_before": self.histogram_before.to_dict(),
            "histogram_after": self.histogram_after.to_dict(),
        }

    def to_json(self, **kwargs: Any) -> str:
        return _json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.4f}"

        lines = [f"iterative {self.method} pruning, {self.regularization} (strength {self.strength:g})",
                 f"{'round':>5}{'kept':>9}{'non-zero':>10}{'train err':>11}{'test err':>10}{'before rt':>11}"]
        for r in self.rounds:
            lines.append(f"{r.round:>5}{r.fraction_kept:>9.4f}{r.num_nonzero:>10}{r.train_error:>11.4f}"
                         f"{f(r.test_error):>10}{f(r.test_error_before_retrain):>11}")
        return "\n".join(lines)


def _schedule(schedule: Any, amounts: Any, rounds: Any, start: float = 1.0) -> list[float]:
    """Targets ``k_1 > k_2 > ...`` of the fraction kept (of all prunable weights); ``amounts`` count from ``start``,
    the fraction kept before the first round (so an already pruned model is pruned further)."""
    given = [name for name, v in (("schedule", schedule), ("amounts", amounts)) if v is not None]
    if len(given) != 1:
        raise InvalidArgumentError(
            "pass exactly one of `schedule` (fractions of the prunable weights kept after each round, decreasing, in (0, 1]) "
            f"and `amounts` (fraction of the survivors removed each round, in [0, 1)); got {given or 'neither'}"
        )
    if torch.is_tensor(schedule) or isinstance(schedule, np.ndarray):
        schedule = schedule.tolist()
    if torch.is_tensor(amounts) or isinstance(amounts, np.ndarray):
        amounts = amounts.tolist()
    if rounds is not None and not _is_real(amounts):
        raise InvalidArgumentError(f"`rounds` goes with a single number `amounts` (e.g. amounts=0.5, rounds=4); got rounds={rounds!r}")
    if amounts is not None:
        if _is_real(amounts):
            if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
                raise InvalidArgumentError(f"`rounds` must be an integer >= 1 with a single `amounts`; got {rounds!r}")
            amounts = [amounts] * rounds
        if isinstance(amounts, (str, bytes)) or not hasattr(amounts, "__iter__"):
            raise InvalidArgumentError(f"`amounts` must be a number in [0, 1) or a sequence of them; got {amounts!r}")
        out, keep = [], float(start)
        for a in amounts:
            if not _is_real(a) or not 0.0 <= a < 1.0:
                raise InvalidArgumentError(f"`amounts` must be numbers in [0, 1), the fraction of survivors removed per round; got {a!r}")
            keep *= 1.0 - a
            out.append(keep)
    else:
        if not _is_real(schedule) and (isinstance(schedule, (str, bytes)) or not hasattr(schedule, "__iter__")):
            raise InvalidArgumentError(
                f"`schedule` must be non-increasing fractions kept in (0, 1] (e.g. [0.5, 0.25, 0.125]); got {schedule!r}"
            )
        out = [schedule] if _is_real(schedule) else list(schedule)
        prev = 1.0
        for k in out:
            if not _is_real(k) or not 0.0 < k <= prev:
                raise InvalidArgumentError(
                    f"`schedule` must be non-increasing fractions kept in (0, 1] (e.g. [0.5, 0.25, 0.125]); got {schedule!r}"
                )
            prev = k
        out = [float(k) for k in out]
    if not out:
        raise InvalidArgumentError("the schedule has no rounds")
    return out


def iterative_prune(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    schedule: Sequence[float] | None = None,
    amounts: Sequence[float] | float | None = None,
    rounds: int | None = None,
    retrain_epochs: int = 5,
    regularization: str = "l2",
    strength: float = 1e-4,
    method: str = "magnitude",
    scope: str = "global",
    test_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    lr: float = 1e-3,
    batch_size: int = 128,
    optimizer: str = "adam",
    loss_fn: Callable = F.cross_entropy,
    saliency_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    seed: int = 0,
    progress: bool = True,
    **saliency_options: Any,
) -> IterativeResult:
    """Prune -> retrain from the previous optimum, repeated (Han et al. 2015); in place.

    Round ``r`` removes ``n_r - round(k_r * N)`` of the ``n_r`` survivors by ``method`` (so the
    fraction kept after the round is ``k_r`` up to one weight in ``N``; with ``scope="layer"``
    every layer keeps ``k_r`` of its own weights), then trains the survivors for
    ``retrain_epochs`` epochs with the ``regularization`` penalty (see
    :func:`bayesstruct.prune.training.train`). Weights are never re-initialised.

    Parameters
    ----------
    model : nn.Module
        A trained network (its ``nn.Linear``/``nn.Conv2d`` weights are pruned).
    data : (x, y)
        Training data (retraining and the reported train error).
    schedule : sequence of float, optional
        Fractions of the prunable weights kept after each round, non-increasing in (0, 1]
        (of *all* prunable weights, so a model pruned before continues from where it is; a
        target above its current fraction kept removes nothing that round).
    amounts : float or sequence of float, optional
        Instead: the fraction of the *survivors* removed in each round (a single number with
        ``rounds``), e.g. ``amounts=0.5, rounds=4`` keeps 1/2, 1/4, 1/8, 1/16.
    retrain_epochs : int >= 0
    regularization : {"l2", "l1", "none"}
        The penalty during retraining, with ``strength`` (``l2``: ``strength/2 * sum w^2``;
        ``l1``: ``strength * sum |w|``).
    method, scope, saliency_options
        Passed to :func:`bayesstruct.prune.prune` (``"magnitude"`` is the paper's).
    test_data : (x, y), optional
        Reported test error after each round and before its retraining.
    lr, batch_size, optimizer, loss_fn, seed
        Retraining (round ``r`` uses seed ``seed + r``).
    saliency_data : (x, y), optional
        Data for OBD/OBS saliencies (default: ``data``).
    progress : bool

    Returns
    -------
    IterativeResult
    """
    layers = _check_layers(model)
    _check_finite_weights(layers)
    x, y = check_data(data)
    if test_data is not None:
        tx, ty = check_data(test_data, "test_data")
        _check_model_takes(model, tx.to(_param_dtype(model)), ty, F.cross_entropy, name="test_data")
    # everything a round needs is checked before the first round prunes `model` in place
    lr = _number(lr, "lr", positive=True)
    batch_size = _int(batch_size, "batch_size", 1)
    _check_optimizer(optimizer)
    seed = check_seed(seed)
    _enum(Scope, scope, "scope")
    saliency = get_saliency(method, **saliency_options)
    _check_model_takes(model, x.to(_param_dtype(model)), y, F.cross_entropy if loss_fn is F.cross_entropy else None)
    _check_loss_fn(model, loss_fn, x.to(_param_dtype(model)), y, batch_size)
    if saliency_data is not None and saliency.needs_data:
        batches = _batches(saliency_data, "saliency_data")
        _check_batches(batches, "saliency_data")
        for bx, by in batches:
            _check_model_takes(model, bx, by, loss_fn, name="saliency_data")
    targets = _schedule(schedule, amounts, rounds, fraction_kept(model))
    reg = str(regularization).strip().lower()
    if reg not in REGULARIZATIONS:
        raise InvalidArgumentError(f"`regularization` must be one of {REGULARIZATIONS}; got {regularization!r}")
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength) or strength < 0:
        raise InvalidArgumentError(f"`strength` must be a finite number >= 0; got {strength!r}")
    if isinstance(retrain_epochs, bool) or not isinstance(retrain_epochs, int) or retrain_epochs < 0:
        raise InvalidArgumentError(f"`retrain_epochs` must be an integer >= 0; got {retrain_epochs!r}")
    penalty = {"l1": strength, "l2": 0.0} if reg == "l1" else {"l1": 0.0, "l2": strength if reg == "l2" else 0.0}
    sal_data = saliency_data if saliency_data is not None else (x, y)
    test_err = (lambda: evaluate(model, test_data)) if test_data is not None else (lambda: None)

    w_before = _flat_weights(model)
    rows = [RoundResult(0, 0.0, 1.0, fraction_kept(model), _nonzero(model), evaluate(model, (x, y)), test_err(), None, None)]
    bar = tqdm(targets, desc="prune+retrain", unit="round", disable=not progress, leave=False)
    for r, keep in enumerate(bar, start=1):
        masks = get_masks(model)
        amount, overall = _amount(masks, keep, scope)
        prune(model, method, amount=amount, scope=scope, loss_fn=loss_fn, data=sal_data, **saliency_options)
        before = test_err()
        hist = train(model, (x, y), epochs=retrain_epochs, lr=lr, batch_size=batch_size, optimizer=optimizer,
                     loss_fn=loss_fn, seed=seed + r, progress=False, **penalty)
        rows.append(RoundResult(r, overall, keep, fraction_kept(model), _nonzero(model), evaluate(model, (x, y)),
                                test_err(), before, hist.loss[-1] if hist.loss else None))
        bar.set_postfix(kept=f"{rows[-1].fraction_kept:.4f}", err=f"{rows[-1].train_error:.4f}")
    bar.close()
    w_after = _flat_weights(model)
    m = max(float(np.abs(w_before).max()) if w_before.size else 0.0, float(np.abs(w_after).max()) if w_after.size else 0.0) or 1.0
    return IterativeResult(method=str(method), regularization=reg, strength=float(strength), rounds=tuple(rows),
                           histogram_before=_histogram(w_before, 81, (-m, m), True),
                           histogram_after=_histogram(w_after, 81, (-m, m), True))


def _nonzero(model: nn.Module) -> int:
    """Non-zero prunable weights (the numerator of :func:`fraction_kept`)."""
    return sum(int(torch.count_nonzero(mod.weight.detach())) for _, mod in _check_layers(model))


def _fraction_to_remove(alive: float, target: float) -> float:
    """Fraction of ``alive`` survivors to remove to leave ``target``, clipped to ``[0, 1)``."""
    if alive == 0:
        return 0.0
    return min(max((alive - target) / alive, 0.0), math.nextafter(1.0, 0.0))


def _amount(masks: dict[str, torch.Tensor], keep: float, scope: Any) -> tuple[float | dict[str, float], float]:
    """The ``amount`` for :func:`prune` that leaves ``round(keep * N)`` weights, and the fraction of all survivors it removes.

    Under ``scope="layer"`` each layer keeps ``round(keep * N_layer)``: one amount per layer, since the
    layers' fractions kept may differ before the round (a model pruned earlier, or a first OBS round).
    """
    alive = {n: float(m.sum()) for n, m in masks.items()}
    if str(getattr(scope, "value", scope)).lower() == "layer":
        targets = {n: float(round(keep * m.numel())) for n, m in masks.items()}
        amounts = {n: _fraction_to_remove(alive[n], targets[n]) for n in masks}
        removed = sum(int(round(amounts[n] * alive[n])) for n in masks)
        return amounts, removed / sum(alive.values()) if sum(alive.values()) else 0.0
    total = sum(m.numel() for m in masks.values())
    amount = _fraction_to_remove(sum(alive.values()), round(keep * total))
    return amount, amount
