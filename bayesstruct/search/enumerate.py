r"""Enumerating distinct structures by KL penalties (the lecture's "перебор структур"; Bakhteev's thesis).

After :math:`k` searches have found :math:`\Gamma_1, \dots, \Gamma_k`, search again with the
regulariser

.. math::

    \lambda_1 \mathrm{KL}(\Gamma \,\|\, \Gamma_1) + \dots + \lambda_k \mathrm{KL}(\Gamma \,\|\, \Gamma_k)

added to the structure quality that is maximised -- the lecture's sequence
:math:`\lambda_{struct} = [0, 0, 0] \to [1, 0, 0] \to [1, 1, 0]` -- so that each search is
pushed away from the structures found before it. :math:`\Gamma` is the search's distribution
over the primitives of every edge (:func:`~bayesstruct.search.structure_kl`).

The penalty repels distributions, not structures: :math:`\mathrm{KL}(\Gamma \,\|\, \Gamma_k)` is
smallest (0) at :math:`\Gamma = \Gamma_k` with a zero gradient there, and it is small near
:math:`\Gamma_k` whenever :math:`\Gamma_k` is far from one-hot -- it is at most the sum over
the edges of :math:`\log(1 / \min_i \gamma_i)` for the entries :math:`\gamma_i` of
:math:`\Gamma_k` on the edge. A search started at the uniform :math:`\Gamma` after a first
one that ended at a soft :math:`\Gamma_1` (DARTS with a small ``arch_lr`` ends near
:math:`(0.32, 0.40, 0.28)` on the tests' XOR graph) starts where the penalty is flat, is
barely pushed, and its argmax -- the structure -- can be the same again, all
the more with a small :math:`\lambda` or few architecture epochs. :func:`enumerate_structures`
checks the argmax structures and drops repeats (with a warning that gives the count).
"""

from __future__ import annotations

import warnings
from typing import Any

from bayesstruct._validation import check_nonnegative, check_positive_int
from bayesstruct.exceptions import ConstantStructureWarning, InvalidArgumentError
from bayesstruct.nn.graph import StructureGraph
from bayesstruct.search.base import SearchResult, _REGISTRY
from bayesstruct.search.darts import _Differentiable

__all__ = ["enumerate_structures"]


def enumerate_structures(graph: StructureGraph, x: Any, y: Any, num_structures: int = 3, *, penalty: float = 1.0,
                         method: str = "darts", val_data: tuple[Any, Any] | None = None, val_fraction: float = 0.5,
                         task: str = "classification", noise_scale: float = 1.0, seed: int = 0,
                         progress: bool = True, distinct: bool = True, **options: Any) -> list[SearchResult]:
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
    distinct : bool, default True
        Return only the searches whose structure (the argmax of :math:`\Gamma_k` on every
        searched edge, ``result.choice()``) differs from every earlier one; ``False``
        returns all ``num_structures`` searches. Either way a
        :class:`UserWarning` gives the number of distinct structures when a search repeated
        an earlier structure (raise ``penalty`` or the search's ``arch_lr`` / ``num_epochs``).
    **options
        The search's own options (``num_epochs``, ``arch_lr``, ...).

    Returns
    -------
    list of SearchResult
        In the order found; ``result.gamma`` of each is the :math:`\Gamma_k` the later ones
        avoid. Every search is repelled from all the :math:`\Gamma` found before it, the
        dropped repeats included (each repeat has a :math:`\Gamma` of its own). With
        ``distinct=True`` the list may be shorter than ``num_structures``;
        ``result.diagnostics["search_index"]`` is each result's position (0-based) in the
        sequence of searches.
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
    if not isinstance(distinct, bool):
        raise InvalidArgumentError(f"`distinct` must be True or False; got {distinct!r}")
    found: list[SearchResult] = []
    first_of: dict[tuple, int] = {}  # structure -> index of the search that first found it
    repeats: list[tuple[int, int]] = []
    for index in range(num_structures):
        try:
            searcher = cls(repel=[(lam, r.gamma) for r in found], **options)
        except TypeError as exc:
            raise InvalidArgumentError(f"bad option for search method {cls.name!r}: {exc}") from None
        with warnings.catch_warnings():  # a constant predictor is one of the structures an enumeration lists
            warnings.simplefilter("ignore", ConstantStructureWarning)
            result = searcher.run(graph, x, y, val_data=val_data, val_fraction=val_fraction, task=task,
                                  noise_scale=noise_scale, seed=seed, progress=progress)
        result.diagnostics["search_index"] = index
        key = tuple(sorted(result.choice().items()))
        if key in first_of:
            repeats.append((index, first_of[key]))
        else:
            first_of[key] = index
        found.append(result)
    if repeats:
        which = "; ".join(f"search {i + 1} repeated search {j + 1}" for i, j in repeats)
        kept = "only these are returned" if distinct else "all searches are returned (distinct=False)"
        warnings.warn(
            f"enumerate_structures: {num_structures} searches found {len(first_of)} distinct structure(s) "
            f"({which}); {kept}. " + ("`penalty`=0 repeats the same search" if lam == 0 else
                                      f"The KL penalty (`penalty`={lam:g}) was too weak to move the argmax: raise "
                                      "`penalty`, or the search's `arch_lr` / `num_epochs`"),
            UserWarning, stacklevel=2)
    if distinct:
        repeated = {i for i, _ in repeats}
        found = [r for i, r in enumerate(found) if i not in repeated]
    return found
