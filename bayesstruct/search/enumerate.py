r"""Enumerating distinct structures by KL penalties (the lecture's "перебор структур"; Bakhteev's thesis).

After :math:`k` searches have found :math:`\Gamma_1, \dots, \Gamma_k`, search again with the
regulariser

.. math::

    \lambda_1 \mathrm{KL}(\Gamma \,\|\, \Gamma_1) + \dots + \lambda_k \mathrm{KL}(\Gamma \,\|\, \Gamma_k)

added to the structure quality that is maximised -- the lecture's sequence
:math:`\lambda_{struct} = [0, 0, 0] \to [1, 0, 0] \to [1, 1, 0]` -- so that each search is
pushed away from the structures found before it. :math:`\Gamma` is the search's distribution
over the primitives of every edge (:func:`~bayesstruct.search.structure_kl`).
"""

from __future__ import annotations

from typing import Any

from bayesstruct._validation import check_nonnegative, check_positive_int
from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.nn.graph import StructureGraph
from bayesstruct.search.base import SearchResult, _REGISTRY
from bayesstruct.search.darts import _Differentiable

__all__ = ["enumerate_structures"]


def enumerate_structures(graph: StructureGraph, x: Any, y: Any, num_structures: int = 3, *, penalty: float = 1.0,
                         method: str = "darts", val_data: tuple[Any, Any] | None = None, val_fraction: float = 0.5,
                         task: str = "classification", noise_scale: float = 1.0, seed: int = 0,
                         progress: bool = True, **options: Any) -> list[SearchResult]:
    r"""Run ``num_structures`` searches, search :math:`k` repelled from the :math:`k - 1` found before.

    Parameters
    ----------
    graph, x, y, val_data, val_fraction, task, noise_scale, seed, progress
        As :func:`~bayesstruct.search.search`; every search uses the same split and seed, so
        the penalties are the only difference between them.
    num_structures : int
        How many searches (the first one unpenalised).
    penalty : float
        :math:`\lambda` of every earlier structure (the lecture's :math:`\lambda_{struct}`
        entries equal to 1 are ``penalty=1``); 0 repeats the same search.
    method : {"darts", "fbnet"}
        A differentiable search (one with a ``repel`` option).
    **options
        The search's own options (``num_epochs``, ``arch_lr``, ...).

    Returns
    -------
    list of SearchResult
        In the order found; ``result.gamma`` of each is the :math:`\Gamma_k` the later ones avoid.
    """
    num_structures = check_positive_int(num_structures, "num_structures")
    lam = check_nonnegative(penalty, "penalty")
    cls = _REGISTRY.lookup(method) if isinstance(method, str) else None
    if cls is None or not issubclass(cls, _Differentiable):
        raise InvalidArgumentError(
            f"`method` must name a differentiable search with a `repel` option (darts, fbnet); got {method!r}"
        )
    if "repel" in options:
        raise InvalidArgumentError("`repel` is set by enumerate_structures itself; pass `penalty` instead")
    found: list[SearchResult] = []
    for _ in range(num_structures):
        try:
            searcher = cls(repel=[(lam, r.gamma) for r in found], **options)
        except TypeError as exc:
            raise InvalidArgumentError(f"bad option for search method {cls.name!r}: {exc}") from None
        found.append(searcher.run(graph, x, y, val_data=val_data, val_fraction=val_fraction, task=task,
                                  noise_scale=noise_scale, seed=seed, progress=progress))
    return found
