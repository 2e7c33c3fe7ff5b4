r"""Posterior summaries of cascading-IBP belief-net chains: ArviZ ``InferenceData`` and JSON.

The structure chain of :mod:`bayesstruct.families.belief_net` (Adams, Wallach &
Ghahramani, AISTATS 2010) records, per kept sweep s, scalar statistics of the sampled
network structure :math:`Γ^{(s)} = [Z_1, ..., Z_{L+1}]`:

=================  ================================================================
``depth``          L, the number of non-empty hidden layers
``width_<m>``      :math:`K_m`, the number of units in hidden layer m (0 when L < m)
``num_edges``      :math:`\sum_m \sum_{ik} Z_m[i, k]`
``alpha``          the CIBP width parameter α of the sweep
``beta``           the CIBP sparsity parameter β of the sweep
``log_joint``      :math:`\log p(Γ, θ, \text{data} \mid α, β)` of the sweep's state
=================  ================================================================

:func:`to_inference_data` stacks one or several chains (different seeds) into an
:class:`arviz.InferenceData` whose ``posterior`` group holds these variables with dims
``(chain, draw)`` (and ``num_hidden_units``, :math:`\sum_m K_m`), so ``az.rhat``, ``az.ess``
and ``az.plot_trace`` apply directly.
:func:`posterior_summary` turns it into the plain dict that ``bayesstruct dbn --json``
writes. ArviZ is imported lazily (through :mod:`bayesstruct.io`).

Anything with the attributes (or mapping keys) ``depth``, ``num_edges`` and ``widths``
(one sequence of hidden-layer widths per draw) is accepted as a chain, plus ``alpha``,
``beta``, ``log_joint`` when present -- :class:`~bayesstruct.families.belief_net.BeliefNetSamples`,
:class:`~bayesstruct.families.dbn.CIBPSamples` (its ``log_target`` is reported as
``log_joint``) or a dict of columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesstruct.exceptions import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az

__all__ = ["SCALAR_STATS", "chain_columns", "per_draw_stats", "to_inference_data", "posterior_summary", "width_names"]

#: scalar statistics kept per draw, besides the per-layer widths
SCALAR_STATS = ("depth", "num_edges", "alpha", "beta", "log_joint")
_ALIASES = {"log_joint": ("log_joint", "log_target")}


def _get(chain: Any, name: str) -> Any:
    for key in _ALIASES.get(name, (name,)):
        if isinstance(chain, Mapping):
            if key in chain:
                return chain[key]
        elif hasattr(chain, key):
            return getattr(chain, key)
    return None


def chain_columns(chain: Any, where: str = "samples") -> dict[str, Any]:
    """One chain's statistics as ``{"depth": (S,), ..., "widths": list of S tuples}``.

    Statistics the chain lacks (``alpha``/``beta``/``log_joint`` of a prior-only chain)
    are left out. Raises :class:`InvalidArgumentError` naming ``where`` if ``depth``,
    ``num_edges`` or ``widths`` is missing or the lengths disagree.
    """
    out: dict[str, Any] = {}
    for name in ("depth", "num_edges", "widths"):
        if _get(chain, name) is None:
            raise InvalidArgumentError(
                f"`{where}` must have `depth`, `num_edges` and `widths` (a BeliefNetSamples, CIBPSamples or a dict of "
                f"those columns); it lacks `{name}` (got {type(chain).__name__})")
    widths = [tuple(int(k) for k in w) for w in _get(chain, "widths")]
    for name in SCALAR_STATS:
        value = _get(chain, name)
        if value is None:
            continue
        a = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)
        a = a.astype(np.int64 if name in ("depth", "num_edges") else np.float64)
        if a.ndim != 1 or a.shape[0] != len(widths):
            raise InvalidArgumentError(f"`{where}.{name}` must have shape ({len(widths)},) (one value per draw, "
                                       f"like `widths`); got {a.shape}")
        out[name] = a
    if not np.array_equal(out["depth"], [len(w) for w in widths]):
        raise InvalidArgumentError(f"`{where}.depth` disagrees with the number of entries of `{where}.widths`")
    out["widths"] = widths
    return out


def width_names(num_layers: int) -> list[str]:
    """``["width_1", ..., "width_<num_layers>"]``, the posterior variables of the layer widths."""
    return [f"width_{m}" for m in range(1, num_layers + 1)]


def per_draw_stats(columns: Mapping[str, Any], num_layers: int | None = None) -> dict[str, np.ndarray]:
    r"""One chain's ``(S,)`` arrays from :func:`chain_columns`: the scalar statistics it has,
    ``num_hidden_units`` (:math:`\sum_m K_m`) and ``width_1`` ... ``width_<num_layers>`` (0
    where a draw has fewer layers; default ``num_layers``: the largest depth, at least 1)."""
    from bayesstruct._validation import check_positive_int

    widths = columns["widths"]
    if num_layers is None:
        num_layers = max([1] + [len(w) for w in widths])
    num_layers = check_positive_int(num_layers, "num_layers")
    out = {k: columns[k] for k in ("depth", "num_edges")}
    out["num_hidden_units"] = np.array([sum(w) for w in widths], dtype=np.int64)
    for m, name in enumerate(width_names(num_layers), start=1):
        out[name] = np.array([w[m - 1] if len(w) >= m else 0 for w in widths], dtype=np.int64)
    out.update({k: columns[k] for k in SCALAR_STATS if k in columns and k not in out})
    return out


def to_inference_data(samples: Any, *, num_layers: int | None = None) -> "az.InferenceData":
    """ArviZ ``InferenceData`` of one or several structure chains.

    :func:`bayesstruct.io.structure_inference_data` with ``family="belief_net"``, for chains
    given as columns (``depth``, ``num_edges``, ``widths``) rather than by ``stats()``.

    Parameters
    ----------
    samples : BeliefNetSamples, CIBPSamples, dict, or a list of them
        One chain, or one per independent chain (e.g. different seeds), all with the same
        number of draws S.
    num_layers : int, optional
        Number of ``width_<m>`` variables; default the largest depth seen in any draw
        (at least 1). Layers a draw lacks have width 0.

    Returns
    -------
    arviz.InferenceData
        ``posterior`` with variables ``depth``, ``num_edges``, ``num_hidden_units``,
        ``width_1 .. width_M`` and, when the chains have them, ``alpha``, ``beta``,
        ``log_joint``, each of shape ``(num_chains, S)``;
        ``attrs["bayesstruct_family"] = "belief_net"``.

    Raises
    ------
    InvalidArgumentError
        If a chain lacks ``depth``/``num_edges``/``widths``, the chains have different
        numbers of draws or different statistics, or there are no draws.

    Examples
    --------
    >>> from bayesstruct.families import CIBPSampler
    >>> chains = [CIBPSampler(1.0, 1.0, 4, seed=s).run(50, progress=False) for s in (0, 1)]
    >>> idata = to_inference_data(chains)
    >>> idata.posterior["depth"].shape
    (2, 50)
    """
    from bayesstruct.io import structure_inference_data

    chains = list(samples) if isinstance(samples, (list, tuple)) else [samples]
    if not chains:
        raise InvalidArgumentError("`samples` is an empty list; give at least one chain")
    cols = [chain_columns(c, "samples" if len(chains) == 1 else f"samples[{i}]") for i, c in enumerate(chains)]
    if num_layers is None:
        num_layers = max([1] + [len(w) for c in cols for w in c["widths"]])
    return structure_inference_data([per_draw_stats(c, num_layers) for c in cols], family="belief_net")


def _stat(da: Any, az: Any) -> dict[str, Any]:
    """mean, sd, samples (chain-major), num_chains, and ArviZ's R-hat and bulk/tail ESS
    (:func:`bayesstruct.io.chain_diagnostics`; ``None`` where undefined)."""
    from bayesstruct.io import chain_diagnostics

    values = np.asarray(da.values)
    flat = values.reshape(-1)
    out = chain_diagnostics(values)
    samples = [int(v) for v in flat] if np.issubdtype(flat.dtype, np.integer) else [float(v) for v in flat]
    return {"mean": out["mean"], "sd": out["sd"], "samples": samples, **{k: out[k] for k in
            ("num_chains", "r_hat", "ess_bulk", "ess_tail")}}


def posterior_summary(idata: Any) -> dict[str, Any]:
    """The posterior over the structure as a JSON-able dict (the ``bayesstruct dbn --json`` schema).

    Parameters
    ----------
    idata : arviz.InferenceData or anything :func:`to_inference_data` accepts

    Returns
    -------
    dict
        ``{"depth": S, "width_per_layer": [S_1, S_2, ...], "num_edges": S, "alpha": S,
        "beta": S}`` where each S is ``{"mean", "sd", "samples", "num_chains", "r_hat",
        "ess_bulk", "ess_tail"}`` (``samples`` flattened chain after chain; ``r_hat`` is
        ArviZ's rank-normalised split R-hat, ``None`` for a single chain -- run several
        seeds -- and wherever undefined, e.g. a constant trace or fewer than 4 draws) and
        ``width_per_layer[m-1]`` is that of
        :math:`K_m` with an extra key ``"layer": m``. ``alpha``/``beta`` are ``None``
        for chains that do not record them.
    """
    from bayesstruct.io import _quiet_arviz

    if not hasattr(idata, "posterior"):
        idata = to_inference_data(idata)
    post = idata.posterior
    names = sorted((v for v in post.data_vars if v.startswith("width_")), key=lambda v: int(v.split("_")[1]))
    with _quiet_arviz() as az:
        out: dict[str, Any] = {"depth": _stat(post["depth"], az)}
        out["width_per_layer"] = [{"layer": int(v.split("_")[1]), **_stat(post[v], az)} for v in names]
        for k in ("num_edges", "alpha", "beta"):
            out[k] = _stat(post[k], az) if k in post else None
    return out
